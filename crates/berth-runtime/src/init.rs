//! The child side of container creation: everything between clone and execve, in order.
//! Runs single-threaded in the freshly cloned process; reports failure through the status pipe.

use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, PosixRlimitType, Spec};

use crate::rootfs::{self, RootfsPlan};
use crate::sys;

/// Status-pipe tags.
pub(crate) const TAG_READY: u8 = b'R';
pub(crate) const TAG_ERROR: u8 = b'E';

/// How the container's stdio is wired.
pub enum ProcessIo {
    /// Plain fds (pipes, files, /dev/null) for stdin, stdout and stderr.
    Fds {
        /// stdin; `/dev/null` when `None`.
        stdin: Option<OwnedFd>,
        /// stdout.
        stdout: OwnedFd,
        /// stderr.
        stderr: OwnedFd,
    },
    /// A pseudo-terminal: the slave becomes the controlling terminal and fds 0-2.
    Terminal {
        /// The slave fd.
        slave: OwnedFd,
        /// Its path (for /dev/console).
        path: PathBuf,
    },
    /// Keep the caller's fds 0-2 (the runtime CLI when it is not given a console socket).
    Inherit,
}

/// Why the child failed, with the exit code Docker would use.
#[derive(Debug)]
pub(crate) struct InitFailure {
    pub code: u8,
    pub message: String,
}

impl InitFailure {
    fn new(code: u8, message: impl Into<String>) -> InitFailure {
        InitFailure {
            code,
            message: message.into(),
        }
    }
}

fn fail<E: std::fmt::Display>(stage: &str) -> impl FnOnce(E) -> InitFailure + '_ {
    move |e| InitFailure::new(125, format!("{stage}: {e}"))
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

pub(crate) struct ChildPlan<'a> {
    pub spec: &'a Spec,
    pub rootfs: PathBuf,
    pub overlay: Option<String>,
    pub io: ProcessIo,
    pub go: OwnedFd,
    pub status: OwnedFd,
    pub start: Option<OwnedFd>,
    pub preserve_fds: u32,
    pub unshare_cgroup: bool,
    pub join: Vec<(LinuxNamespaceType, PathBuf)>,
    pub seccomp: Option<crate::seccomp::SeccompProgram>,
}

/// Runs in the child: never returns.
pub(crate) fn run_child(mut plan: ChildPlan<'_>) -> ! {
    let failure = match setup_and_exec(&mut plan) {
        Ok(never) => match never {},
        Err(f) => f,
    };
    let mut msg = vec![TAG_ERROR, failure.code];
    msg.extend_from_slice(failure.message.as_bytes());
    let mut status = std::fs::File::from(plan.status);
    let _ = status.write_all(&msg);
    drop(status);
    sys::exit_now(failure.code as i32)
}

fn dup_to(fd: &OwnedFd, target: i32) -> Result<(), InitFailure> {
    sys::dup_onto(fd.as_raw_fd(), target).map_err(fail("wiring stdio"))
}

/// Waits for the parent to have moved this process into its cgroup, then creates the cgroup
/// namespace (whose root is the cgroup this process is in at that moment).
fn sync_with_parent(go: &OwnedFd, unshare_cgroup: bool) -> Result<(), InitFailure> {
    let mut byte = [0u8; 1];
    let mut go = std::fs::File::from(go.try_clone().map_err(fail("cloning sync fd"))?);
    match go.read(&mut byte) {
        Ok(1) => {}
        _ => {
            return Err(InitFailure::new(
                125,
                "runtime parent went away before the container started",
            ))
        }
    }
    if unshare_cgroup {
        sys::unshare(libc::CLONE_NEWCGROUP).map_err(fail("creating cgroup namespace"))?;
    }
    Ok(())
}

fn setup_and_exec(plan: &mut ChildPlan<'_>) -> Result<std::convert::Infallible, InitFailure> {
    // The parent moves this process into its cgroup meanwhile (the move can wait for an RCU
    // grace period): set up what does not depend on the cgroup first, and wait for the parent
    // just before the first cgroup mount (or after the root is ready). With a user namespace,
    // or namespaces to join, keep the plain order: wait first.
    let early_wait = !plan.join.is_empty()
        || plan
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .is_some_and(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::User));
    let mut synced = false;
    if early_wait {
        sync_with_parent(&plan.go, plan.unshare_cgroup)?;
        synced = true;
    }
    for (typ, path) in &plan.join {
        let f = std::fs::File::open(path).map_err(|e| {
            InitFailure::new(125, format!("opening namespace {}: {e}", path.display()))
        })?;
        rustix::thread::move_into_link_name_space(std::os::fd::AsFd::as_fd(&f), None).map_err(
            |e| {
                InitFailure::new(
                    125,
                    format!("joining {typ:?} namespace {}: {e}", path.display()),
                )
            },
        )?;
    }
    let spec = plan.spec;
    let process = spec
        .process()
        .clone()
        .ok_or_else(|| InitFailure::new(125, "config.json has no process"))?;
    let linux = spec.linux().clone().unwrap_or_default();
    let namespaces = linux.namespaces().clone().unwrap_or_default();
    let has_ns = |t: LinuxNamespaceType| namespaces.iter().any(|n| n.typ() == t);

    // stdio
    match &plan.io {
        ProcessIo::Fds {
            stdin,
            stdout,
            stderr,
        } => {
            let null;
            let stdin = match stdin {
                Some(fd) => fd,
                None => {
                    null = OwnedFd::from(
                        std::fs::File::open("/dev/null").map_err(fail("opening /dev/null"))?,
                    );
                    &null
                }
            };
            dup_to(stdin, 0)?;
            dup_to(stdout, 1)?;
            dup_to(stderr, 2)?;
        }
        ProcessIo::Terminal { slave, .. } => {
            rustix::process::setsid().map_err(fail("creating a session"))?;
            rustix::process::ioctl_tiocsctty(slave)
                .map_err(fail("setting the controlling terminal"))?;
            dup_to(slave, 0)?;
            dup_to(slave, 1)?;
            dup_to(slave, 2)?;
        }
        ProcessIo::Inherit => {}
    }

    if has_ns(LinuxNamespaceType::Uts) {
        if let Some(h) = spec.hostname() {
            rustix::system::sethostname(h.as_bytes()).map_err(fail("setting hostname"))?;
        }
        if let Some(d) = spec.domainname() {
            rustix::system::setdomainname(d.as_bytes()).map_err(fail("setting domainname"))?;
        }
    }

    // the file system
    if has_ns(LinuxNamespaceType::Mount) {
        let console = match &plan.io {
            ProcessIo::Terminal { path, .. } => Some(path.clone()),
            _ => None,
        };
        let rplan = RootfsPlan {
            spec,
            rootfs: plan.rootfs.clone(),
            overlay: plan.overlay.take(),
            console,
        };
        let (go, unshare_cgroup) = (&plan.go, plan.unshare_cgroup);
        let mut sync_error = None;
        let mut before_cgroup = || -> bool {
            if synced {
                return true;
            }
            match sync_with_parent(go, unshare_cgroup) {
                Ok(()) => {
                    synced = true;
                    true
                }
                Err(e) => {
                    sync_error = Some(e);
                    false
                }
            }
        };
        let setup = rootfs::setup(&rplan, &mut before_cgroup);
        if let Some(e) = sync_error {
            return Err(e);
        }
        setup.map_err(|e| InitFailure::new(125, chain(&e)))?;
        rootfs::finish(spec).map_err(|e| InitFailure::new(125, chain(&e)))?;
    } else {
        return Err(InitFailure::new(125, "a mount namespace is required (berth does not run containers in the host's mount namespace)"));
    }

    // limits and identity
    for r in process.rlimits().clone().unwrap_or_default() {
        let resource = rlimit_resource(r.typ());
        rustix::process::setrlimit(
            resource,
            rustix::process::Rlimit {
                current: Some(r.soft()),
                maximum: Some(r.hard()),
            },
        )
        .map_err(|e| {
            InitFailure::new(
                125,
                format!(
                    "setting rlimit {:?} to {}:{}: {e} (the host's hard limit may be lower)",
                    r.typ(),
                    r.soft(),
                    r.hard()
                ),
            )
        })?;
    }
    if let Some(adj) = process.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .map_err(fail("writing oom_score_adj"))?;
    }
    let user = process.user();
    let caps = process.capabilities().clone().unwrap_or_default();
    let names = |s: &Option<oci_spec::runtime::Capabilities>| -> Vec<String> {
        s.as_ref()
            .map(|set| {
                set.iter()
                    .map(|c| format!("CAP_{}", c.to_string().trim_start_matches("CAP_")))
                    .collect()
            })
            .unwrap_or_default()
    };
    let bounding = names(caps.bounding());
    let effective = names(caps.effective());
    let permitted = names(caps.permitted());
    let inheritable = names(caps.inheritable());
    let ambient = names(caps.ambient());
    let nnp = process.no_new_privileges().unwrap_or(false);

    // without no_new_privileges the filter must be loaded while we still hold CAP_SYS_ADMIN
    if !nnp {
        if let Some(p) = &plan.seccomp {
            p.load()
                .map_err(|e| InitFailure::new(125, format!("loading seccomp filter: {e}")))?;
        }
    }
    for n in 0..=sys::last_cap() {
        let name = crate::caps::ALL.get(n as usize).copied().unwrap_or("");
        if !bounding.iter().any(|b| b == name) {
            sys::capbset_drop(n).map_err(fail("dropping a bounding capability"))?;
        }
    }
    rustix::thread::set_keep_capabilities(true)
        .map_err(fail("keeping capabilities across setuid"))?;
    sys::set_ids(
        user.uid(),
        user.gid(),
        &user.additional_gids().clone().unwrap_or_default(),
    )
    .map_err(|e| {
        InitFailure::new(
            125,
            format!("switching to user {}:{}: {e}", user.uid(), user.gid()),
        )
    })?;
    // never ask for more than this process holds (a privileged container gets all of it)
    let held = rustix::thread::capabilities(None)
        .map(|c| c.permitted)
        .map_err(fail("reading capabilities"))?;
    let to = |v: &[String]| {
        crate::caps::to_set(v)
            .map(|s| s & held)
            .map_err(|e| InitFailure::new(125, e.to_string()))
    };
    rustix::thread::set_capabilities(
        None,
        rustix::thread::CapabilitySets {
            effective: to(&effective)?,
            permitted: to(&permitted)?,
            inheritable: to(&inheritable)?,
        },
    )
    .map_err(fail("setting capabilities"))?;
    for a in &ambient {
        let n = crate::caps::number(a).map_err(|e| InitFailure::new(125, e.to_string()))?;
        sys::ambient_raise(n).map_err(fail("raising an ambient capability"))?;
    }
    if let Some(mask) = process.user().umask() {
        sys::set_umask(mask);
    }
    if nnp {
        rustix::thread::set_no_new_privs(true).map_err(fail("setting no_new_privileges"))?;
    }

    let cwd = process.cwd();
    std::env::set_current_dir(cwd).map_err(|e| {
        InitFailure::new(
            125,
            format!(
                "chdir to cwd (\"{}\") set in config.json failed: {e}",
                cwd.display()
            ),
        )
    })?;

    let args = process.args().clone().unwrap_or_default();
    let Some(arg0) = args.first() else {
        return Err(InitFailure::new(125, "config.json: process.args is empty"));
    };
    let env = process.env().clone().unwrap_or_default();
    let path = resolve_executable(arg0, &env)?;
    let c = |s: &str| {
        CString::new(s)
            .map_err(|_| InitFailure::new(125, format!("argument {s:?} contains a NUL byte")))
    };
    let argv = args.iter().map(|a| c(a)).collect::<Result<Vec<_>, _>>()?;
    let envp = env.iter().map(|e| c(e)).collect::<Result<Vec<_>, _>>()?;
    let cpath = c(&path.to_string_lossy())?;

    // nothing of ours crosses exec: every fd above stdio (and preserved fds) becomes CLOEXEC
    sys::cloexec_from(3 + plan.preserve_fds).map_err(fail("closing runtime file descriptors"))?;
    if let Some(start) = plan.start.take() {
        let mut status =
            std::fs::File::from(plan.status.try_clone().map_err(fail("cloning status fd"))?);
        status
            .write_all(&[TAG_READY])
            .map_err(fail("reporting ready"))?;
        let mut start = std::fs::File::from(start);
        let mut b = [0u8; 1];
        match start.read(&mut b) {
            Ok(1) => {}
            _ => {
                return Err(InitFailure::new(
                    125,
                    "container deleted before it was started",
                ))
            }
        }
    }
    if nnp {
        if let Some(p) = &plan.seccomp {
            p.load()
                .map_err(|e| InitFailure::new(125, format!("loading seccomp filter: {e}")))?;
        }
    }
    let e = sys::execve(&cpath, &argv, &envp);
    Err(exec_failure(arg0, e))
}

fn exec_failure(arg0: &str, e: std::io::Error) -> InitFailure {
    match e.raw_os_error() {
        Some(libc::ENOENT) => InitFailure::new(
            127,
            format!("exec: \"{arg0}\": stat {arg0}: no such file or directory"),
        ),
        Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::ENOEXEC) => {
            InitFailure::new(126, format!("exec: \"{arg0}\": permission denied"))
        }
        _ => InitFailure::new(126, format!("exec: \"{arg0}\": {e}")),
    }
}

/// Finds the executable as execvp would, with the container's PATH.
fn resolve_executable(arg0: &str, env: &[String]) -> Result<PathBuf, InitFailure> {
    if arg0.contains('/') {
        return Ok(PathBuf::from(arg0));
    }
    let path_var = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path_var.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(arg0);
        if let Ok(md) = std::fs::metadata(&candidate) {
            if md.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(InitFailure::new(
        127,
        format!("exec: \"{arg0}\": executable file not found in $PATH"),
    ))
}

fn rlimit_resource(t: PosixRlimitType) -> rustix::process::Resource {
    use rustix::process::Resource as R;
    match t {
        PosixRlimitType::RlimitCpu => R::Cpu,
        PosixRlimitType::RlimitFsize => R::Fsize,
        PosixRlimitType::RlimitData => R::Data,
        PosixRlimitType::RlimitStack => R::Stack,
        PosixRlimitType::RlimitCore => R::Core,
        PosixRlimitType::RlimitRss => R::Rss,
        PosixRlimitType::RlimitNproc => R::Nproc,
        PosixRlimitType::RlimitNofile => R::Nofile,
        PosixRlimitType::RlimitMemlock => R::Memlock,
        PosixRlimitType::RlimitAs => R::As,
        PosixRlimitType::RlimitLocks => R::Locks,
        PosixRlimitType::RlimitSigpending => R::Sigpending,
        PosixRlimitType::RlimitMsgqueue => R::Msgqueue,
        PosixRlimitType::RlimitNice => R::Nice,
        PosixRlimitType::RlimitRtprio => R::Rtprio,
        PosixRlimitType::RlimitRttime => R::Rttime,
    }
}
