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
    /// A terminal allocated inside the container (its /dev/ptmx, once its mounts are
    /// joined), whose master is sent to the caller over this unix socket (SCM_RIGHTS).
    /// For `exec` only: a container's init has no mounts of its own yet at that point.
    ConsoleSocket {
        /// One end of a socket pair; the caller receives on the other.
        socket: OwnedFd,
    },
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
    /// runc's mode: hooks the process runs itself (and the state they read).
    pub hooks: Option<crate::container::ChildHooks>,
    /// The process was cloned into a new user namespace (its maps are written at `go`).
    pub new_user_namespace: bool,
    /// A fresh network namespace to join instead of a cloned one (see
    /// `CreateOptions::netns`).
    pub netns: Option<OwnedFd>,
}

/// What only `berth runtime`'s container process does before execve: startContainer hooks
/// and handing the seccomp listener to the agent at the spec's `listenerPath`.
#[derive(Default)]
pub(crate) struct ExecExtras {
    /// startContainer hooks and the state for them (and for the listener).
    pub hooks: Option<crate::container::ChildHooks>,
    /// Connected to `listenerPath` before pivot_root (the path is the runtime's view).
    pub listener: Option<std::os::unix::net::UnixStream>,
}

/// Runs in the child: never returns.
pub(crate) fn run_child(mut plan: ChildPlan<'_>) -> ! {
    let failure = match setup_and_exec(&mut plan) {
        Ok(never) => match never {},
        Err(f) => f,
    };
    report_and_exit(plan.status, failure)
}

/// Sends the failure up the status pipe and ends the child with its code.
fn report_and_exit(status: OwnedFd, failure: InitFailure) -> ! {
    let mut msg = vec![TAG_ERROR, failure.code];
    msg.extend_from_slice(failure.message.as_bytes());
    let mut status = std::fs::File::from(status);
    let _ = status.write_all(&msg);
    drop(status);
    sys::exit_now(failure.code as i32)
}

/// Waits for the parent's go byte (the cgroup is joined).
fn wait_for_go(go: &OwnedFd) -> Result<(), InitFailure> {
    let mut byte = [0u8; 1];
    let mut go = std::fs::File::from(go.try_clone().map_err(fail("cloning sync fd"))?);
    match go.read(&mut byte) {
        Ok(1) => Ok(()),
        _ => Err(InitFailure::new(
            125,
            "runtime parent went away before the container started",
        )),
    }
}

/// Makes the planned fds the process's stdio (and the terminal its controlling one).
fn wire_stdio(io: &ProcessIo) -> Result<(), InitFailure> {
    match io {
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
        ProcessIo::ConsoleSocket { socket } => {
            let master = rustix::pty::openpt(
                rustix::pty::OpenptFlags::RDWR
                    | rustix::pty::OpenptFlags::NOCTTY
                    | rustix::pty::OpenptFlags::CLOEXEC,
            )
            .map_err(fail("opening the container's /dev/ptmx"))?;
            rustix::pty::grantpt(&master).map_err(fail("granting the terminal"))?;
            rustix::pty::unlockpt(&master).map_err(fail("unlocking the terminal"))?;
            let name =
                rustix::pty::ptsname(&master, Vec::new()).map_err(fail("naming the terminal"))?;
            let slave = rustix::fs::open(
                name.as_c_str(),
                rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NOCTTY | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )
            .map_err(fail("opening the terminal"))?;
            crate::exec::send_fd(socket, &master, b"t").map_err(fail("sending the terminal"))?;
            drop(master);
            rustix::process::setsid().map_err(fail("creating a session"))?;
            rustix::process::ioctl_tiocsctty(&slave)
                .map_err(fail("setting the controlling terminal"))?;
            dup_to(&slave, 0)?;
            dup_to(&slave, 1)?;
            dup_to(&slave, 2)?;
        }
        ProcessIo::Inherit => {}
    }
    Ok(())
}

fn dup_to(fd: &OwnedFd, target: i32) -> Result<(), InitFailure> {
    sys::dup_onto(fd.as_raw_fd(), target).map_err(fail("wiring stdio"))
}

/// Waits for the parent to have moved this process into its cgroup, then creates the cgroup
/// namespace (whose root is the cgroup this process is in at that moment).
fn sync_with_parent(go: &OwnedFd, unshare_cgroup: bool) -> Result<(), InitFailure> {
    wait_for_go(go)?;
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
    if let Some(fd) = plan.netns.take() {
        // first of all: sysfs, mounted below, shows the network namespace of its mounter
        rustix::thread::move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&fd),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .map_err(|e| {
            InitFailure::new(125, format!("joining the pre-made network namespace: {e}"))
        })?;
    }
    let mut synced = false;
    if early_wait {
        sync_with_parent(&plan.go, plan.unshare_cgroup)?;
        synced = true;
    }
    if plan.new_user_namespace {
        // the parent wrote the id maps: become the namespace's root (host ids of the map)
        rustix::thread::set_keep_capabilities(true)
            .map_err(fail("keeping capabilities across setuid"))?;
        sys::set_ids(0, 0, &[]).map_err(fail("becoming root of the user namespace"))?;
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
    // runc's mode: this process's pid as the runtime sees it (the host's /proc, before
    // pivot_root), for the state hooks and the seccomp agent read; and the agent's socket,
    // reached through the runtime's view of the file system
    let mut extras = ExecExtras::default();
    if let Some(mut hooks) = plan.hooks.take() {
        hooks.state.pid = std::fs::read_link("/proc/self")
            .ok()
            .and_then(|p| p.to_str()?.parse().ok())
            .unwrap_or(0);
        if let Some(path) = plan.seccomp.as_ref().and_then(|s| s.listener_path()) {
            let sock = std::os::unix::net::UnixStream::connect(path).map_err(|e| {
                InitFailure::new(
                    125,
                    format!(
                        "connecting to the seccomp listener socket {}: {e}",
                        path.display()
                    ),
                )
            })?;
            extras.listener = Some(sock);
        }
        extras.hooks = Some(hooks);
    }
    let namespaces = linux.namespaces().clone().unwrap_or_default();
    let has_ns = |t: LinuxNamespaceType| namespaces.iter().any(|n| n.typ() == t);

    if matches!(plan.io, ProcessIo::ConsoleSocket { .. }) {
        return Err(InitFailure::new(
            125,
            "a console socket is for exec only; give the container a terminal",
        ));
    }
    wire_stdio(&plan.io)?;

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
        let create_hooks = || -> std::io::Result<()> {
            let Some(h) = &extras.hooks else {
                return Ok(());
            };
            if h.create_container.is_empty() {
                return Ok(());
            }
            let mut state = h.state.clone();
            state.status = "creating".into();
            crate::hooks::run("createContainer", &h.create_container, &state.to_json())
                .map_err(|e| std::io::Error::other(crate::error_chain(&e)))
        };
        let rplan = RootfsPlan {
            spec,
            rootfs: plan.rootfs.clone(),
            overlay: plan.overlay.take(),
            console,
            before_pivot: Some(&create_hooks),
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
        setup.map_err(|e| InitFailure::new(125, crate::error_chain(&e)))?;
        rootfs::finish(spec).map_err(|e| InitFailure::new(125, crate::error_chain(&e)))?;
    } else {
        return Err(InitFailure::new(125, "a mount namespace is required (berth does not run containers in the host's mount namespace)"));
    }

    if let Some(p) = linux.personality() {
        set_personality(p)?;
    }
    let seccomp = plan.seccomp.take();
    let start = plan.start.take();
    apply_and_exec(
        &process,
        seccomp.as_ref(),
        plan.preserve_fds,
        &plan.status,
        start,
        extras,
    )
}

/// `linux.personality`: the execution domain (LINUX, LINUX32); no flags are defined.
fn set_personality(p: &oci_spec::runtime::LinuxPersonality) -> Result<(), InitFailure> {
    use oci_spec::runtime::LinuxPersonalityDomain as D;
    const PER_LINUX: u64 = 0;
    const PER_LINUX32: u64 = 8;
    if let Some(flag) = p.flags().as_ref().and_then(|f| f.first()) {
        return Err(InitFailure::new(
            125,
            format!("linux.personality.flags: unknown flag {flag:?} (the spec defines none)"),
        ));
    }
    let domain = match p.domain() {
        D::PerLinux => PER_LINUX,
        D::PerLinux32 => PER_LINUX32,
    };
    sys::personality(domain).map_err(fail("setting the personality"))
}

/// Hands the seccomp listener fd to the agent: the container process state as JSON
/// (runtime-spec `ContainerProcessState`) with the fd attached (SCM_RIGHTS).
fn send_listener(
    sock: &std::os::unix::net::UnixStream,
    fd: &OwnedFd,
    seccomp: &crate::seccomp::SeccompProgram,
    hooks: Option<&crate::container::ChildHooks>,
) -> Result<(), InitFailure> {
    let mut state = hooks.map(|h| h.state.clone()).unwrap_or_default();
    state.status = "creating".into();
    let msg = serde_json::json!({
        "ociVersion": state.oci_version,
        "fds": ["seccompFd"],
        "pid": state.pid,
        "metadata": seccomp.listener_metadata().unwrap_or(""),
        "state": state,
    });
    let bytes = serde_json::to_vec(&msg).map_err(fail("encoding the seccomp state"))?;
    let fds = [std::os::fd::AsFd::as_fd(fd)];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = rustix::net::SendAncillaryBuffer::new(&mut space);
    if !control.push(rustix::net::SendAncillaryMessage::ScmRights(&fds)) {
        return Err(InitFailure::new(
            125,
            "seccomp listener: control buffer too small",
        ));
    }
    rustix::net::sendmsg(
        sock,
        &[std::io::IoSlice::new(&bytes)],
        &mut control,
        rustix::net::SendFlags::empty(),
    )
    .map_err(fail("sending the seccomp listener fd"))?;
    Ok(())
}

/// The process part shared by a container's init and `exec`: rlimits, oom score, seccomp,
/// capabilities, user, umask, no_new_privileges, cwd, and execve with every fd of the
/// runtime above stdio (and `preserve_fds`) close-on-exec. With `start`, reports ready on
/// `status` and waits for the start byte just before execve.
pub(crate) fn apply_and_exec(
    process: &oci_spec::runtime::Process,
    seccomp: Option<&crate::seccomp::SeccompProgram>,
    preserve_fds: u32,
    status: &OwnedFd,
    start: Option<OwnedFd>,
    extras: ExecExtras,
) -> Result<std::convert::Infallible, InitFailure> {
    let load_seccomp = |p: &crate::seccomp::SeccompProgram| -> Result<(), InitFailure> {
        let listener = p
            .load()
            .map_err(|e| InitFailure::new(125, format!("loading seccomp filter: {e}")))?;
        if let (Some(fd), Some(sock)) = (listener, &extras.listener) {
            send_listener(sock, &fd, p, extras.hooks.as_ref())?;
        }
        Ok(())
    };
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
        if let Some(p) = &seccomp {
            load_seccomp(p)?;
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
    sys::cloexec_from(3 + preserve_fds).map_err(fail("closing runtime file descriptors"))?;
    // the start fd stays open (close-on-exec) until execve: runc's `start` waits for that
    let mut _started = None;
    if let Some(start) = start {
        let mut status =
            std::fs::File::from(status.try_clone().map_err(fail("cloning status fd"))?);
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
        _started = Some(start);
    }
    if let Some(h) = extras
        .hooks
        .as_ref()
        .filter(|h| !h.start_container.is_empty())
    {
        let mut state = h.state.clone();
        state.status = "created".into();
        crate::hooks::run("startContainer", &h.start_container, &state.to_json())
            .map_err(|e| InitFailure::new(125, crate::error_chain(&e)))?;
    }
    if nnp {
        if let Some(p) = &seccomp {
            load_seccomp(p)?;
        }
    }
    apply_labels(process)?;
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

/// The child side of `exec`: an extra process in a running container.
pub(crate) struct ExecChildPlan<'a> {
    /// The container's process with the exec's args, env, cwd, terminal and capabilities.
    pub process: oci_spec::runtime::Process,
    /// `user[:group]` to resolve inside the container; `None` keeps the container's user.
    pub user: Option<&'a str>,
    /// The container's namespaces to join (not the pid namespace: the parent joined it for
    /// its children), in order.
    pub namespaces: Vec<(LinuxNamespaceType, std::fs::File)>,
    pub io: ProcessIo,
    pub go: OwnedFd,
    pub status: OwnedFd,
    pub start: Option<OwnedFd>,
    pub seccomp: Option<crate::seccomp::SeccompProgram>,
}

/// Runs in the exec child: never returns.
pub(crate) fn run_exec_child(mut plan: ExecChildPlan<'_>) -> ! {
    let failure = match exec_setup(&mut plan) {
        Ok(never) => match never {},
        Err(f) => f,
    };
    report_and_exit(plan.status, failure)
}

fn exec_setup(plan: &mut ExecChildPlan<'_>) -> Result<std::convert::Infallible, InitFailure> {
    wait_for_go(&plan.go)?;
    // the cgroup namespace after the cgroup was joined (the go byte), the mount namespace
    // last: joining it makes the container's root our root and cwd
    for (typ, f) in &plan.namespaces {
        rustix::thread::move_into_link_name_space(std::os::fd::AsFd::as_fd(f), None).map_err(
            |e| {
                InitFailure::new(
                    125,
                    format!("joining the container's {typ:?} namespace: {e}"),
                )
            },
        )?;
    }
    wire_stdio(&plan.io)?;
    // users and groups as the container sees them (its /etc, after joining its mounts)
    let passwd = std::fs::read_to_string("/etc/passwd").ok();
    let group = std::fs::read_to_string("/etc/group").ok();
    let mut process = plan.process.clone();
    let home = match plan.user {
        Some(u) => {
            let r = crate::user::resolve_user(u, passwd.as_deref(), group.as_deref())
                .map_err(|e| InitFailure::new(126, e))?;
            let mut user = process.user().clone();
            user.set_uid(r.uid);
            user.set_gid(r.gid);
            user.set_additional_gids(Some(r.additional.clone()));
            process.set_user(user);
            r.home
        }
        None => crate::user::resolve_user(
            &process.user().uid().to_string(),
            passwd.as_deref(),
            group.as_deref(),
        )
        .map(|r| r.home)
        .unwrap_or_else(|_| "/".into()),
    };
    let mut env = process.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={home}"));
        process.set_env(Some(env));
    }
    let seccomp = plan.seccomp.take();
    let start = plan.start.take();
    apply_and_exec(
        &process,
        seccomp.as_ref(),
        0,
        &plan.status,
        start,
        ExecExtras::default(),
    )
}

/// AppArmor profile and SELinux label for the exec that follows; refused by name on a host
/// that has neither.
fn apply_labels(process: &oci_spec::runtime::Process) -> Result<(), InitFailure> {
    if let Some(profile) = process
        .apparmor_profile()
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        let attr = "/proc/self/attr/apparmor/exec";
        let attr = if Path::new(attr).exists() {
            attr
        } else {
            "/proc/self/attr/exec"
        };
        std::fs::write(attr, format!("exec {profile}")).map_err(|e| {
            InitFailure::new(
                125,
                format!(
                    "process.apparmorProfile {profile:?}: {e} (is AppArmor enabled on this host?)"
                ),
            )
        })?;
    }
    if let Some(label) = process.selinux_label().as_deref().filter(|l| !l.is_empty()) {
        std::fs::write("/proc/self/attr/exec", label).map_err(|e| {
            InitFailure::new(
                125,
                format!("process.selinuxLabel {label:?}: {e} (is SELinux enabled on this host?)"),
            )
        })?;
    }
    Ok(())
}
