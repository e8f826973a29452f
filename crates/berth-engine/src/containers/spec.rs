//! Docker's `Config` + `HostConfig` + the image's config → an OCI runtime spec.

use std::path::{Path, PathBuf};

use berth_api::containers::CreateRequest;
use berth_image::manifest::ImageConfig;
use berth_runtime::defaults;
use oci_spec::runtime::{
    LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxMemoryBuilder, LinuxNamespaceType,
    LinuxPidsBuilder, LinuxResourcesBuilder, Mount, MountBuilder, PosixRlimitBuilder,
    PosixRlimitType, Spec,
};

/// What the spec builder needs besides the request.
pub struct SpecInput<'a> {
    /// The create request.
    pub request: &'a CreateRequest,
    /// The image's config.
    pub image: &'a ImageConfig,
    /// The container's ID.
    pub id: &'a str,
    /// The container's state directory (holds hosts, hostname, resolv.conf).
    pub dir: &'a Path,
    /// The image's /etc/passwd, if it has one.
    pub passwd: Option<String>,
    /// The image's /etc/group, if it has one.
    pub group: Option<String>,
    /// The host path of berth-init, when `--init` asks for it.
    pub init: Option<PathBuf>,
}

pub use berth_runtime::user::{resolve_user, ResolvedUser};

fn mount(dest: &str, typ: &str, source: &str, options: Vec<String>) -> Mount {
    MountBuilder::default()
        .destination(PathBuf::from(dest))
        .typ(typ)
        .source(PathBuf::from(source))
        .options(options)
        .build()
        .expect("all mount fields set")
}

/// Parses a signal name or number (`SIGTERM`, `TERM`, `15`).
pub fn signal_number(s: &str) -> Option<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let name = s.trim().to_ascii_uppercase();
    let name = name.strip_prefix("SIG").unwrap_or(&name);
    Some(match name {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "TRAP" => 5,
        "ABRT" | "IOT" => 6,
        "BUS" => 7,
        "FPE" => 8,
        "KILL" => 9,
        "USR1" => 10,
        "SEGV" => 11,
        "USR2" => 12,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        "STKFLT" => 16,
        "CHLD" => 17,
        "CONT" => 18,
        "STOP" => 19,
        "TSTP" => 20,
        "TTIN" => 21,
        "TTOU" => 22,
        "URG" => 23,
        "XCPU" => 24,
        "XFSZ" => 25,
        "VTALRM" => 26,
        "PROF" => 27,
        "WINCH" => 28,
        "IO" | "POLL" => 29,
        "PWR" => 30,
        "SYS" => 31,
        other => {
            if let Some(n) = other.strip_prefix("RTMIN+") {
                return n.parse::<i32>().ok().map(|n| 34 + n).filter(|n| *n <= 64);
            }
            return None;
        }
    })
}

fn rlimit_type(name: &str) -> Option<PosixRlimitType> {
    Some(match name {
        "core" => PosixRlimitType::RlimitCore,
        "cpu" => PosixRlimitType::RlimitCpu,
        "data" => PosixRlimitType::RlimitData,
        "fsize" => PosixRlimitType::RlimitFsize,
        "locks" => PosixRlimitType::RlimitLocks,
        "memlock" => PosixRlimitType::RlimitMemlock,
        "msgqueue" => PosixRlimitType::RlimitMsgqueue,
        "nice" => PosixRlimitType::RlimitNice,
        "nofile" => PosixRlimitType::RlimitNofile,
        "nproc" => PosixRlimitType::RlimitNproc,
        "rss" => PosixRlimitType::RlimitRss,
        "rtprio" => PosixRlimitType::RlimitRtprio,
        "rttime" => PosixRlimitType::RlimitRttime,
        "sigpending" => PosixRlimitType::RlimitSigpending,
        "stack" => PosixRlimitType::RlimitStack,
        "as" => PosixRlimitType::RlimitAs,
        _ => return None,
    })
}

/// The command line: entrypoint + cmd, with Docker's override rules.
pub fn command_line(req: &CreateRequest, image: &ImageConfig) -> Vec<String> {
    let ic = image.config.clone().unwrap_or_default();
    let (entrypoint, cmd_from_image) = match &req.config.entrypoint {
        // an explicit entrypoint (even empty) replaces the image's and drops its CMD
        Some(ep) => (
            ep.iter()
                .filter(|s| !s.is_empty())
                .cloned()
                .collect::<Vec<_>>(),
            false,
        ),
        None => (ic.entrypoint.clone().unwrap_or_default(), true),
    };
    let cmd = if !req.config.cmd.is_empty() {
        req.config.cmd.clone()
    } else if cmd_from_image {
        ic.cmd.clone().unwrap_or_default()
    } else {
        Vec::new()
    };
    let mut args = entrypoint;
    args.extend(cmd);
    args
}

/// Builds the spec. Errors are the user's (bad flag values), phrased to name the fix.
pub fn build(input: &SpecInput<'_>) -> Result<(Spec, Vec<String>), String> {
    let req = input.request;
    let hc = &req.host_config;
    let ic = input.image.config.clone().unwrap_or_default();
    let mut warnings = Vec::new();
    let mut spec = defaults::base_spec();

    let mut args = command_line(req, input.image);
    if args.is_empty() {
        return Err("no command specified".into());
    }
    if input.init.is_some() {
        // `--init`: berth-init is PID 1 and runs the command, as docker-init does
        let mut with_init = vec![super::init::CONTAINER_PATH.to_string(), "--".to_string()];
        with_init.append(&mut args);
        args = with_init;
    }
    let hostname = if req.config.hostname.is_empty() {
        input.id[..12].to_string()
    } else {
        req.config.hostname.clone()
    };
    spec.set_hostname(Some(hostname.clone()));
    if !req.config.domainname.is_empty() {
        spec.set_domainname(Some(req.config.domainname.clone()));
    }

    // environment: image, then the request's overrides, then HOSTNAME/HOME/PATH defaults
    let mut env: Vec<(String, String)> = Vec::new();
    let set = |kv: &str, env: &mut Vec<(String, String)>| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        if let Some(e) = env.iter_mut().find(|(ek, _)| ek == k) {
            e.1 = v.to_string();
        } else {
            env.push((k.to_string(), v.to_string()));
        }
    };
    for kv in ic.env.clone().unwrap_or_default() {
        set(&kv, &mut env);
    }
    for kv in &req.config.env {
        if !kv.contains('=') {
            // `-e NAME` without a value and unset on the client: Docker drops it
            continue;
        }
        set(kv, &mut env);
    }
    if !env.iter().any(|(k, _)| k == "PATH") {
        set(defaults::DEFAULT_PATH, &mut env);
    }
    set(&format!("HOSTNAME={hostname}"), &mut env);

    let user_spec = if req.config.user.is_empty() {
        ic.user.clone().unwrap_or_default()
    } else {
        req.config.user.clone()
    };
    let user = resolve_user(&user_spec, input.passwd.as_deref(), input.group.as_deref())?;
    if !env.iter().any(|(k, _)| k == "HOME") {
        set(&format!("HOME={}", user.home), &mut env);
    }
    let cwd = if !req.config.working_dir.is_empty() {
        req.config.working_dir.clone()
    } else {
        ic.working_dir
            .clone()
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into())
    };
    if !cwd.starts_with('/') {
        return Err(format!(
            "the working directory '{cwd}' is invalid, it needs to be an absolute path"
        ));
    }

    // capabilities
    let caps = if hc.privileged {
        berth_runtime::caps::ALL
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
    } else {
        berth_runtime::caps::adjust(
            &berth_runtime::caps::DOCKER_DEFAULT,
            &hc.cap_add,
            &hc.cap_drop,
        )
        .map_err(|e| e.to_string())?
    };
    let capset = defaults::capability_set(&caps);

    // security options
    let mut nnp = false;
    let mut seccomp_mode: Option<String> = None;
    for opt in &hc.security_opt {
        let (k, v) = opt.split_once(['=', ':']).unwrap_or((opt.as_str(), ""));
        match k {
            "no-new-privileges" => nnp = v.is_empty() || v == "true",
            "seccomp" => seccomp_mode = Some(v.to_string()),
            "label" | "apparmor" if v == "disable" || v == "unconfined" => {}
            "apparmor" | "label" => {
                return Err(format!("--security-opt {opt}: this host has neither AppArmor nor SELinux enabled for berth"))
            }
            _ => return Err(format!("invalid --security-opt {opt:?}: expected no-new-privileges, seccomp=unconfined|PROFILE.json")),
        }
    }

    {
        let process = spec
            .process_mut()
            .as_mut()
            .expect("base spec has a process");
        process.set_args(Some(args));
        process.set_env(Some(env.iter().map(|(k, v)| format!("{k}={v}")).collect()));
        process.set_cwd(PathBuf::from(&cwd));
        process.set_terminal(Some(req.config.tty));
        process.set_no_new_privileges(Some(nnp));
        let u = process.user_mut();
        u.set_uid(user.uid);
        u.set_gid(user.gid);
        u.set_additional_gids(if user.additional.is_empty() {
            None
        } else {
            Some(user.additional.clone())
        });
        // Inheritable and ambient stay empty as in Docker since CVE-2022-24769 (the builder's
        // default would put AUDIT_WRITE, KILL and NET_BIND_SERVICE in both, which hands them
        // to non-root users through the ambient set)
        let mut c = LinuxCapabilitiesBuilder::default()
            .bounding(capset.clone())
            .permitted(capset.clone())
            .inheritable(oci_spec::runtime::Capabilities::new())
            .ambient(oci_spec::runtime::Capabilities::new())
            .build()
            .expect("capability sets");
        // Docker gives root the effective set; other users start with none effective
        if user.uid == 0 {
            c.set_effective(Some(capset.clone()));
        } else {
            c.set_effective(Some(Default::default()));
        }
        process.set_capabilities(Some(c));
        let mut rlimits = Vec::new();
        for u in &hc.ulimits {
            let t =
                rlimit_type(&u.name).ok_or_else(|| format!("invalid ulimit type: {}", u.name))?;
            if u.soft < 0 || u.hard < 0 || u.soft > u.hard {
                return Err(format!(
                    "invalid ulimit {}={}:{}: soft must be <= hard and both non-negative",
                    u.name, u.soft, u.hard
                ));
            }
            rlimits.push(
                PosixRlimitBuilder::default()
                    .typ(t)
                    .soft(u.soft as u64)
                    .hard(u.hard as u64)
                    .build()
                    .expect("rlimit"),
            );
        }
        process.set_rlimits(if rlimits.is_empty() {
            None
        } else {
            Some(rlimits)
        });
        if hc.oom_score_adj != 0 {
            if !(-1000..=1000).contains(&hc.oom_score_adj) {
                return Err(format!(
                    "invalid value {}, range for oom score adj is [-1000, 1000]",
                    hc.oom_score_adj
                ));
            }
            process.set_oom_score_adj(Some(hc.oom_score_adj as i32));
        }
    }

    // mounts: defaults, /etc files, tmpfs, shm size
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    if hc.shm_size > 0 {
        for m in mounts
            .iter_mut()
            .filter(|m| m.destination() == Path::new("/dev/shm"))
        {
            m.set_options(Some(vec![
                "nosuid".into(),
                "noexec".into(),
                "nodev".into(),
                "mode=1777".into(),
                format!("size={}", hc.shm_size),
            ]));
        }
    }
    for (name, dest) in [
        ("hostname", "/etc/hostname"),
        ("hosts", "/etc/hosts"),
        ("resolv.conf", "/etc/resolv.conf"),
    ] {
        let src = input.dir.join(name);
        let ro = if hc.readonly_rootfs { "ro" } else { "rw" };
        mounts.push(mount(
            dest,
            "bind",
            &src.to_string_lossy(),
            vec!["rbind".into(), "rprivate".into(), ro.into()],
        ));
    }
    if let Some(init) = &input.init {
        mounts.push(mount(
            super::init::CONTAINER_PATH,
            "bind",
            &init.to_string_lossy(),
            vec!["bind".into(), "ro".into(), "nosuid".into(), "nodev".into()],
        ));
    }
    for (dest, opts) in &hc.tmpfs {
        if !dest.starts_with('/') {
            return Err(format!(
                "invalid --tmpfs {dest}: the mount destination must be an absolute path"
            ));
        }
        let mut o: Vec<String> = vec!["nosuid".into(), "nodev".into(), "noexec".into()];
        o.extend(
            opts.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        );
        mounts.push(mount(dest, "tmpfs", "tmpfs", o));
    }
    if !hc.binds.is_empty() {
        return Err(
            "volumes (-v) arrive with the volumes issue; berth cannot bind-mount yet".into(),
        );
    }
    spec.set_mounts(Some(mounts));
    if let Some(root) = spec.root_mut() {
        root.set_readonly(Some(hc.readonly_rootfs));
    }

    // namespaces
    let linux = spec.linux_mut().as_mut().expect("base spec has linux");
    let mut namespaces = linux.namespaces().clone().unwrap_or_default();
    // network: a private namespace (bridge or a user-defined network: the daemon adds the
    // veths between create and start; none: loopback only; container:NAME: its path is set
    // at start), or the host's; network names were checked before
    if hc.network_mode == "host" {
        namespaces.retain(|n| n.typ() != LinuxNamespaceType::Network);
    }
    linux.set_namespaces(Some(namespaces));
    if hc.privileged {
        linux.set_masked_paths(None);
        linux.set_readonly_paths(None);
    }

    // resources
    let mut res = LinuxResourcesBuilder::default().build().expect("resources");
    let mut any = false;
    if hc.memory != 0 || hc.memory_swap != 0 {
        if hc.memory < 0 || (hc.memory > 0 && hc.memory < 6 * 1024 * 1024) {
            return Err("Minimum memory limit allowed is 6MB".into());
        }
        if hc.memory_swap > 0 && hc.memory > 0 && hc.memory_swap < hc.memory {
            return Err(
                "Minimum memoryswap limit should be larger than memory limit, see usage".into(),
            );
        }
        if hc.memory_swap != 0 && hc.memory == 0 {
            return Err(
                "You should always set the Memory limit when using Memoryswap limit, see usage"
                    .into(),
            );
        }
        let mut m = LinuxMemoryBuilder::default().build().expect("memory");
        if hc.memory > 0 {
            m.set_limit(Some(hc.memory));
        }
        if hc.memory_swap != 0 {
            m.set_swap(Some(hc.memory_swap));
        } else if hc.memory > 0 {
            // Docker's default: swap equal to the memory limit (memory+swap = 2x)
            m.set_swap(Some(hc.memory * 2));
        }
        res.set_memory(Some(m));
        any = true;
    }
    let mut cpu = LinuxCpuBuilder::default().build().expect("cpu");
    let mut any_cpu = false;
    if hc.nano_cpus != 0 {
        if hc.cpu_quota != 0 || hc.cpu_period != 0 {
            return Err("Conflicting options: Nano CPUs and CPU Period cannot both be set".into());
        }
        let ncpu = std::thread::available_parallelism()
            .map(|n| n.get() as i64)
            .unwrap_or(1);
        if hc.nano_cpus < 0 || hc.nano_cpus > ncpu * 1_000_000_000 {
            return Err(format!(
                "range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
            ));
        }
        cpu.set_period(Some(100_000));
        cpu.set_quota(Some(hc.nano_cpus * 100_000 / 1_000_000_000));
        any_cpu = true;
    }
    if hc.cpu_quota != 0 {
        cpu.set_quota(Some(hc.cpu_quota));
        any_cpu = true;
    }
    if hc.cpu_period != 0 {
        cpu.set_period(Some(hc.cpu_period as u64));
        any_cpu = true;
    }
    if hc.cpu_shares != 0 {
        if hc.cpu_shares < 2 {
            warnings.push("The minimum allowed cpu-shares is 2; it was raised".into());
        }
        cpu.set_shares(Some(hc.cpu_shares.max(2) as u64));
        any_cpu = true;
    }
    if !hc.cpuset_cpus.is_empty() {
        cpu.set_cpus(Some(hc.cpuset_cpus.clone()));
        any_cpu = true;
    }
    if any_cpu {
        res.set_cpu(Some(cpu));
        any = true;
    }
    if let Some(p) = hc.pids_limit.filter(|p| *p != 0) {
        res.set_pids(Some(
            LinuxPidsBuilder::default()
                .limit(if p < 0 { -1 } else { p })
                .build()
                .expect("pids"),
        ));
        any = true;
    }
    res.set_devices(Some(if hc.privileged {
        defaults::privileged_device_rules()
    } else {
        defaults::docker_device_rules()
    }));
    let _ = any;
    linux.set_resources(Some(res));

    // seccomp: Docker's default unless unconfined or privileged
    match seccomp_mode.as_deref() {
        _ if hc.privileged => {}
        Some("unconfined") => {}
        Some(path) if !path.is_empty() => {
            let data = std::fs::read(path)
                .map_err(|e| format!("opening seccomp profile ({path}) failed: {e}"))?;
            let profile: oci_spec::runtime::LinuxSeccomp = serde_json::from_slice(&data)
                .map_err(|e| format!("decoding seccomp profile failed: {e}"))?;
            linux.set_seccomp(Some(profile));
        }
        _ => {
            let arch = berth_runtime::seccomp::Arch::host().ok_or_else(|| {
                "berth's default seccomp profile covers x86_64 and aarch64 hosts; use --security-opt seccomp=unconfined or a profile file".to_string()
            })?;
            linux.set_seccomp(Some(berth_runtime::seccomp::docker_default(&caps, arch)));
        }
    }
    Ok((spec, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nuser:x:1000:\nwheel:x:10:user\naudio:x:29:user,other\n";

    #[test]
    fn users_resolve_like_docker() {
        let r = resolve_user("user", Some(PASSWD), Some(GROUP)).expect("user");
        assert_eq!(
            (r.uid, r.gid, r.additional.clone(), r.home.as_str()),
            (1000, 1000, vec![10, 29], "/home/user")
        );
        let r = resolve_user("1000:29", Some(PASSWD), Some(GROUP)).expect("numeric");
        assert_eq!((r.uid, r.gid), (1000, 29));
        let r = resolve_user("4242", Some(PASSWD), Some(GROUP)).expect("unknown numeric uid");
        assert_eq!((r.uid, r.gid, r.home.as_str()), (4242, 0, "/"));
        let r = resolve_user("", Some(PASSWD), Some(GROUP)).expect("root");
        assert_eq!((r.uid, r.home.as_str()), (0, "/root"));
        assert!(resolve_user("nobody-here", Some(PASSWD), Some(GROUP))
            .expect_err("unknown")
            .contains("no matching entries in passwd file"));
        assert!(resolve_user("user:nogroup", Some(PASSWD), Some(GROUP)).is_err());
    }

    #[test]
    fn init_runs_the_command_and_is_mounted_read_only() {
        let image: ImageConfig = serde_json::from_value(serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "config": {"Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": []},
        }))
        .expect("image config");
        let mut req = CreateRequest::default();
        req.config.cmd = vec!["sleep".into(), "1".into()];
        let dir = PathBuf::from("/var/lib/berth/containers/x");
        let input = |init: Option<PathBuf>| SpecInput {
            request: &req,
            image: &image,
            id: "0123456789abcdef",
            dir: &dir,
            passwd: None,
            group: None,
            init,
        };
        let (spec, _) = build(&input(None)).expect("spec");
        let args = spec.process().as_ref().and_then(|p| p.args().clone());
        assert_eq!(args, Some(vec!["sleep".to_string(), "1".to_string()]));
        let (spec, _) = build(&input(Some(PathBuf::from("/root/bin/berth-init")))).expect("spec");
        let args = spec.process().as_ref().and_then(|p| p.args().clone());
        assert_eq!(
            args,
            Some(vec![
                "/sbin/docker-init".to_string(),
                "--".to_string(),
                "sleep".to_string(),
                "1".to_string()
            ])
        );
        let mounts = spec.mounts().clone().unwrap_or_default();
        let m = mounts
            .iter()
            .find(|m| m.destination() == Path::new("/sbin/docker-init"))
            .expect("init mount");
        assert_eq!(
            m.source().as_deref(),
            Some(Path::new("/root/bin/berth-init"))
        );
        assert!(m
            .options()
            .as_ref()
            .is_some_and(|o| o.iter().any(|x| x == "ro")));
    }

    #[test]
    fn signals() {
        assert_eq!(signal_number("SIGTERM"), Some(15));
        assert_eq!(signal_number("kill"), Some(9));
        assert_eq!(signal_number("9"), Some(9));
        assert_eq!(signal_number("RTMIN+1"), Some(35));
        assert_eq!(signal_number("SIGFOO"), None);
        assert_eq!(signal_number("0"), None);
    }
}
