//! The commands around a running container: exec, ps, pause/resume, update, events; and the
//! bundle helpers spec and features.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context};

use super::lifecycle::{foreground, load_spec, wait_exit, write_pid_file};
use super::parse::{self, b, v};
use super::state::State;
use super::Ctx;

/// The newest runtime-spec version berth runtime knows (newer 1.x minors are accepted).
pub const OCI_VERSION_MAX: &str = "1.3.0";

use berth_runtime::error_chain as chain;

fn out(s: &str) {
    let _ = std::io::stdout().write_all(s.as_bytes());
}

fn running(ctx: &Ctx, id: &str) -> anyhow::Result<State> {
    let st = State::load(&ctx.root, id)?;
    match st.status(&ctx.root) {
        "stopped" => bail!("container {id} is not running (stopped)"),
        _ => Ok(st),
    }
}

/// `exec [flags] ID CMD...` (or `--process FILE`).
pub fn exec(ctx: &Ctx, args: &[String]) -> anyhow::Result<u8> {
    let table = [
        v("process", Some('p')),
        v("env", Some('e')),
        v("cwd", None),
        v("user", Some('u')),
        b("tty", Some('t')),
        b("detach", Some('d')),
        v("pid-file", None),
        v("console-socket", None),
        v("cap", Some('c')),
        b("no-new-privs", None),
        v("process-label", None),
        v("apparmor", None),
        v("preserve-fds", None),
        v("additional-gids", Some('g')),
        v("cgroup", None),
        b("ignore-paused", None),
    ];
    let p = parse::parse(args, &table, Some(1)).map_err(anyhow::Error::msg)?;
    let Some((id, cmd)) = p.args.split_first() else {
        bail!("\"exec\" requires a container id");
    };
    let st = running(ctx, id)?;
    if st.status(&ctx.root) == "paused" && !p.has("ignore-paused") {
        bail!("cannot exec in a paused container (use --ignore-paused to override)");
    }
    let spec = load_spec(&st.bundle)?;
    let base = spec.process().clone().unwrap_or_default();
    let mut process = berth_runtime::exec::ExecProcess {
        args: cmd.to_vec(),
        env: base.env().clone().unwrap_or_default(),
        cwd: Some(base.cwd().display().to_string()),
        user: Some(format!("{}:{}", base.user().uid(), base.user().gid())),
        privileged: false,
        tty: p.has("tty"),
    };
    if let Some(file) = p.get("process") {
        let bytes = std::fs::read(file).with_context(|| format!("reading {file}"))?;
        let proc: oci_spec::runtime::Process =
            serde_json::from_slice(&bytes).with_context(|| format!("parsing {file}"))?;
        process.args = proc.args().clone().unwrap_or_default();
        process.env = proc.env().clone().unwrap_or_default();
        process.cwd = Some(proc.cwd().display().to_string());
        process.user = Some(format!("{}:{}", proc.user().uid(), proc.user().gid()));
        process.tty = proc.terminal().unwrap_or(false);
    }
    for e in p.all("env") {
        let key = e.split('=').next().unwrap_or_default();
        process.env.retain(|x| x.split('=').next() != Some(key));
        process.env.push(e.clone());
    }
    if let Some(c) = p.get("cwd") {
        process.cwd = Some(c.to_string());
    }
    if let Some(u) = p.get("user") {
        process.user = Some(u.to_string());
    }
    if !p.all("cap").is_empty() {
        bail!("exec --cap is not supported by berth runtime; the container's capabilities apply");
    }
    if process.args.is_empty() {
        bail!("exec: no command given (args must not be empty)");
    }
    let mut proxy = None;
    let io = match (process.tty, p.get("console-socket")) {
        (true, Some(sock)) => berth_runtime::ProcessIo::ConsoleSocket {
            socket: std::os::unix::net::UnixStream::connect(sock)
                .with_context(|| format!("connecting to console socket {sock}"))?
                .into(),
        },
        (true, None) if p.has("detach") => {
            bail!("cannot allocate tty if berth runtime will detach without setting console socket")
        }
        // in the foreground the terminal is proxied here: the process sends its master back
        (true, None) => {
            let (ours, theirs) =
                std::os::unix::net::UnixStream::pair().context("creating a socket pair")?;
            proxy = Some(ours);
            berth_runtime::ProcessIo::ConsoleSocket {
                socket: theirs.into(),
            }
        }
        (false, _) => berth_runtime::ProcessIo::Inherit,
    };
    let opts = berth_runtime::exec::ExecOptions {
        spec: &spec,
        pid: st.pid,
        process: &process,
        io,
        wait_for_start: false,
    };
    let cg = st.cgroup()?;
    let created = berth_runtime::exec::exec(opts, |pid| {
        let p = rustix::process::Pid::from_raw(pid).ok_or("invalid pid")?;
        cg.add_pid(p).map_err(|e| chain(&e))
    })
    .map_err(|e| anyhow::anyhow!(chain(&e)))?;
    if let Some(pf) = p.get("pid-file") {
        write_pid_file(pf, created.pid)?;
    }
    if p.has("detach") {
        return Ok(0);
    }
    if let Some(sock) = proxy {
        let master = berth_runtime::exec::recv_fd(&sock).context("receiving the terminal")?;
        return Ok(foreground(created.pid, Some(&master), None));
    }
    Ok(wait_exit(created.pid))
}

/// `ps [--format table|json] ID [ps options]`.
pub fn ps(ctx: &Ctx, args: &[String]) -> anyhow::Result<u8> {
    let p = parse::parse(args, &[v("format", Some('f'))], Some(1)).map_err(anyhow::Error::msg)?;
    let Some((id, ps_args)) = p.args.split_first() else {
        bail!("\"ps\" requires a container id");
    };
    let st = running(ctx, id)?;
    let pids: Vec<i32> = st
        .cgroup()?
        .procs()
        .map_err(|e| anyhow::anyhow!(chain(&e)))?
        .into_iter()
        .map(|p| p.as_raw_nonzero().get())
        .collect();
    if p.get("format") == Some("json") {
        out(&format!(
            "{}\n",
            serde_json::to_string(&pids).expect("json")
        ));
        return Ok(0);
    }
    let ps_args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let output = std::process::Command::new("ps")
        .args(&ps_args)
        .output()
        .context("running ps")?;
    if !output.status.success() {
        bail!(
            "ps {}: {}",
            ps_args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let col = header
        .split_whitespace()
        .position(|c| c == "PID")
        .ok_or_else(|| anyhow::anyhow!("couldn't find PID field in ps output"))?;
    let mut s = format!("{header}\n");
    for l in lines {
        let pid: Option<i32> = l.split_whitespace().nth(col).and_then(|x| x.parse().ok());
        if pid.is_some_and(|x| pids.contains(&x)) {
            s.push_str(l);
            s.push('\n');
        }
    }
    out(&s);
    Ok(0)
}

/// `pause ID` / `resume ID`.
pub fn pause(ctx: &Ctx, args: &[String], freeze: bool) -> anyhow::Result<u8> {
    let p = parse::parse(args, &[], None).map_err(anyhow::Error::msg)?;
    let Some(id) = p.args.first() else {
        bail!("this command requires a container id");
    };
    let st = running(ctx, id)?;
    let status = st.status(&ctx.root);
    if freeze && status != "running" {
        bail!("container not running");
    }
    if !freeze && status != "paused" {
        bail!("container not paused");
    }
    let cg = st.cgroup()?;
    if freeze { cg.freeze() } else { cg.thaw() }.map_err(|e| anyhow::anyhow!(chain(&e)))?;
    Ok(0)
}

/// `update [flags] ID`.
pub fn update(ctx: &Ctx, args: &[String]) -> anyhow::Result<u8> {
    let table = [
        v("resources", Some('r')),
        v("memory", Some('m')),
        v("memory-reservation", None),
        v("memory-swap", None),
        v("cpu-quota", None),
        v("cpu-period", None),
        v("cpu-shares", None),
        v("cpuset-cpus", None),
        v("cpuset-mems", None),
        v("pids-limit", None),
        v("blkio-weight", None),
    ];
    let p = parse::parse(args, &table, None).map_err(anyhow::Error::msg)?;
    let Some(id) = p.args.first() else {
        bail!("\"update\" requires a container id");
    };
    let st = running(ctx, id)?;
    let mut r: oci_spec::runtime::LinuxResources = match p.get("resources") {
        Some("-") => {
            serde_json::from_reader(std::io::stdin()).context("parsing resources from stdin")?
        }
        Some(f) => {
            serde_json::from_slice(&std::fs::read(f).with_context(|| format!("reading {f}"))?)
                .with_context(|| format!("parsing {f}"))?
        }
        None => Default::default(),
    };
    let num = |name: &str| -> anyhow::Result<Option<i64>> {
        match p.get(name) {
            None => Ok(None),
            Some(s) => Ok(Some(
                parse_size(s).with_context(|| format!("--{name} {s}"))?,
            )),
        }
    };
    let mut mem = (*r.memory()).unwrap_or_default();
    let mut mem_set = r.memory().is_some();
    if let Some(m) = num("memory")? {
        mem.set_limit(Some(m));
        mem_set = true;
    }
    if let Some(m) = num("memory-reservation")? {
        mem.set_reservation(Some(m));
        mem_set = true;
    }
    if let Some(m) = num("memory-swap")? {
        mem.set_swap(Some(m));
        mem_set = true;
    }
    if mem_set {
        r.set_memory(Some(mem));
    }
    let mut cpu = r.cpu().clone().unwrap_or_default();
    let mut cpu_set = r.cpu().is_some();
    if let Some(q) = num("cpu-quota")? {
        cpu.set_quota(Some(q));
        cpu_set = true;
    }
    if let Some(q) = num("cpu-period")? {
        cpu.set_period(Some(q as u64));
        cpu_set = true;
    }
    if let Some(q) = num("cpu-shares")? {
        cpu.set_shares(Some(q as u64));
        cpu_set = true;
    }
    if let Some(c) = p.get("cpuset-cpus") {
        cpu.set_cpus(Some(c.to_string()));
        cpu_set = true;
    }
    if let Some(c) = p.get("cpuset-mems") {
        cpu.set_mems(Some(c.to_string()));
        cpu_set = true;
    }
    if cpu_set {
        r.set_cpu(Some(cpu));
    }
    if let Some(n) = num("pids-limit")? {
        let mut pids = oci_spec::runtime::LinuxPids::default();
        pids.set_limit(n);
        r.set_pids(Some(pids));
    }
    if p.get("blkio-weight").is_some() {
        bail!("update --blkio-weight is not supported by berth runtime");
    }
    st.cgroup()?
        .apply(&r)
        .map_err(|e| anyhow::anyhow!(chain(&e)))?;
    Ok(0)
}

/// `123`, `64k`, `256m`, `1g` (binary units, as runc's units.RAMInBytes); `-1` for none.
fn parse_size(s: &str) -> anyhow::Result<i64> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n);
    }
    let lower = s.to_ascii_lowercase();
    let lower = lower.trim_end_matches('b').trim_end_matches('i');
    let (num, mult) = match lower.chars().last() {
        Some('k') => (&lower[..lower.len() - 1], 1i64 << 10),
        Some('m') => (&lower[..lower.len() - 1], 1 << 20),
        Some('g') => (&lower[..lower.len() - 1], 1 << 30),
        Some('t') => (&lower[..lower.len() - 1], 1 << 40),
        _ => bail!("invalid size"),
    };
    let n: f64 = num.trim().parse().context("invalid size")?;
    Ok((n * mult as f64) as i64)
}

fn stats_json(id: &str, s: &berth_runtime::cgroup::CgroupStats) -> serde_json::Value {
    use berth_runtime::cgroup::Limit;
    let limit = |l: Limit| match l {
        Limit::Max => u64::MAX,
        Limit::Value(v) => v,
    };
    let mut data = serde_json::json!({});
    if let Some(c) = &s.cpu {
        data["cpu"] = serde_json::json!({
            "usage": {"total": c.usage_ns, "percpu": c.percpu_ns, "kernel": c.system_ns.unwrap_or(0), "user": c.user_ns.unwrap_or(0)},
            "throttling": {"periods": c.periods.unwrap_or(0), "throttledPeriods": c.throttled_periods.unwrap_or(0), "throttledTime": c.throttled_ns.unwrap_or(0)},
        });
    }
    if let Some(m) = &s.memory {
        data["memory"] = serde_json::json!({
            "usage": {"usage": m.usage_bytes, "max": m.max_usage_bytes.unwrap_or(0), "limit": limit(m.limit)},
            "swap": {"usage": m.swap_usage_bytes.unwrap_or(0)},
            "raw": m.stat,
        });
    }
    if let Some(p) = &s.pids {
        data["pids"] = serde_json::json!({"current": p.current, "limit": limit(p.limit)});
    }
    if let Some(b) = &s.blkio {
        let entries = |v: &[berth_runtime::cgroup::BlkioEntry]| -> Vec<serde_json::Value> {
            v.iter().map(|e| serde_json::json!({"major": e.major, "minor": e.minor, "op": e.op, "value": e.value})).collect()
        };
        data["blkio"] = serde_json::json!({
            "ioServiceBytesRecursive": entries(&b.service_bytes),
            "ioServicedRecursive": entries(&b.serviced),
        });
    }
    serde_json::json!({"type": "stats", "id": id, "data": data})
}

/// `events [--stats] [--interval 5s] ID`.
pub fn events(ctx: &Ctx, args: &[String]) -> anyhow::Result<u8> {
    let p = parse::parse(args, &[b("stats", None), v("interval", None)], None)
        .map_err(anyhow::Error::msg)?;
    let Some(id) = p.args.first() else {
        bail!("\"events\" requires a container id");
    };
    let st = running(ctx, id)?;
    let cg = st.cgroup()?;
    let interval = match p.get("interval") {
        Some(s) => {
            let secs: f64 = s
                .trim_end_matches('s')
                .parse()
                .with_context(|| format!("--interval {s}"))?;
            std::time::Duration::from_secs_f64(secs)
        }
        None => std::time::Duration::from_secs(5),
    };
    loop {
        let s = cg.stats().map_err(|e| anyhow::anyhow!(chain(&e)))?;
        out(&format!("{}\n", stats_json(id, &s)));
        if p.has("stats") {
            return Ok(0);
        }
        std::thread::sleep(interval);
        if st.status(&ctx.root) == "stopped" {
            return Ok(0);
        }
    }
}

/// `spec [--bundle DIR]`: a default config.json as `runc spec` writes it.
pub fn spec(_ctx: &Ctx, args: &[String]) -> anyhow::Result<u8> {
    let p = parse::parse(args, &[v("bundle", Some('b')), b("rootless", None)], None)
        .map_err(anyhow::Error::msg)?;
    if p.has("rootless") {
        bail!("spec --rootless: rootless containers (user namespaces) are not supported by berth runtime yet");
    }
    let dir = PathBuf::from(p.get("bundle").unwrap_or("."));
    let path = dir.join("config.json");
    if path.exists() {
        bail!("File {} exists. Remove it first", path.display());
    }
    let text = serde_json::to_string_pretty(&default_spec()).expect("json");
    std::fs::write(&path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    Ok(0)
}

fn default_spec() -> serde_json::Value {
    let caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    serde_json::json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps, "ambient": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "runc",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}

/// `features`: what this runtime supports, in runc's JSON shape (runtime-spec features.md).
pub fn features(_ctx: &Ctx, _args: &[String]) -> anyhow::Result<u8> {
    let caps: Vec<String> = berth_runtime::caps::ALL
        .iter()
        .map(|c| c.to_string())
        .collect();
    let v = serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION_MAX,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": [
            "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "mand",
            "noatime", "nodev", "nodiratime", "noexec", "nomand", "norelatime", "nostrictatime",
            "nosuid", "private", "rbind", "relatime", "remount", "ro", "rprivate", "rshared",
            "rslave", "runbindable", "rw", "shared", "slave", "strictatime", "suid", "sync",
            "unbindable"
        ],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
                "knownFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
                "supportedFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
            },
            "apparmor": {"enabled": super::lifecycle::apparmor_enabled()},
            "selinux": {"enabled": super::lifecycle::selinux_enabled()},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": false}}
        },
        "annotations": {
            "org.opencontainers.runc.checkpoint.enabled": "false",
            "io.github.berth.runtime.version": env!("CARGO_PKG_VERSION")
        }
    });
    out(&format!(
        "{}\n",
        serde_json::to_string_pretty(&v).expect("json")
    ));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runc::lifecycle::parse_signal;
    use std::path::Path;

    #[test]
    fn sizes_and_signals_parse() {
        assert_eq!(parse_size("64m").expect("ok"), 64 << 20);
        assert_eq!(parse_size("1g").expect("ok"), 1 << 30);
        assert_eq!(parse_size("-1").expect("ok"), -1);
        assert!(parse_size("x").is_err());
        assert_eq!(parse_signal("KILL").expect("ok"), 9);
        assert_eq!(parse_signal("SIGUSR1").expect("ok"), libc::SIGUSR1);
        assert_eq!(parse_signal("15").expect("ok"), 15);
        assert!(parse_signal("NOPE").is_err());
    }

    #[test]
    fn default_spec_is_a_valid_oci_spec() {
        let s: oci_spec::runtime::Spec =
            serde_json::from_value(default_spec()).expect("parses as a spec");
        assert_eq!(
            s.root().as_ref().map(|r| r.path().clone()),
            Some(Path::new("rootfs").to_path_buf())
        );
    }
}
