//! `exec`: one more process inside a running container. The parent joins the container's pid
//! namespace (for its children) and clones; the child waits until the parent moved it into
//! the container's cgroup, joins the container init's other namespaces (mount last), resolves
//! the user from the container's own /etc/passwd and /etc/group, and then goes through the
//! same security steps as the container's init (rlimits, seccomp, capabilities, user,
//! no_new_privileges, close-on-exec of every runtime fd) before execve.

use std::path::PathBuf;

use oci_spec::runtime::{LinuxCapabilitiesBuilder, LinuxNamespaceType, Spec};
use serde::{Deserialize, Serialize};

use crate::container::{spawn_child, Created, RuntimeError};
use crate::init::{run_exec_child, ExecChildPlan, ProcessIo};

/// What to run, with Docker's exec overrides of the container's process.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExecProcess {
    /// argv (`args[0]` is looked up in the env's PATH).
    pub args: Vec<String>,
    /// The whole environment (the container's plus the exec's); HOME is added from the
    /// user's passwd entry when missing.
    pub env: Vec<String>,
    /// Working directory; the container's when `None`.
    #[serde(default)]
    pub cwd: Option<String>,
    /// `user[:group]`, resolved inside the container; the container's user when `None`.
    #[serde(default)]
    pub user: Option<String>,
    /// Every capability (`docker exec --privileged`).
    #[serde(default)]
    pub privileged: bool,
    /// Whether stdio is a terminal.
    #[serde(default)]
    pub tty: bool,
}

/// What `exec` needs.
pub struct ExecOptions<'a> {
    /// The container's spec (its process gives the security settings).
    pub spec: &'a Spec,
    /// The container's init, in the caller's pid namespace.
    pub pid: i32,
    /// The process.
    pub process: &'a ExecProcess,
    /// stdio wiring.
    pub io: ProcessIo,
    /// Stop before execve until [`Created::start`].
    pub wait_for_start: bool,
}

fn io(op: impl Into<String>) -> impl FnOnce(std::io::Error) -> RuntimeError {
    let op = op.into();
    move |source| RuntimeError::Io { op, source }
}

fn proc_name(t: LinuxNamespaceType) -> Option<&'static str> {
    Some(match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::User | LinuxNamespaceType::Time => return None,
    })
}

/// Starts `process` in the container whose init is `pid`. `join_cgroup` moves the new
/// process (its pid in the caller's namespace) into the container's cgroup before it runs.
///
/// The caller must be single-threaded: it joins the container's pid namespace for its
/// children (the shim, which exists for this one process, is).
pub fn exec(
    opts: ExecOptions<'_>,
    join_cgroup: impl FnOnce(i32) -> Result<(), String>,
) -> Result<Created, RuntimeError> {
    let spec = opts.spec;
    let process = opts.process;
    if process.args.is_empty() {
        return Err(RuntimeError::Spec("exec: no command given".into()));
    }
    let target = rustix::process::Pid::from_raw(opts.pid)
        .ok_or_else(|| RuntimeError::Spec(format!("invalid container pid {}", opts.pid)))?;
    // pin the init: its namespace files are opened while this pidfd says it lives
    let pidfd =
        rustix::process::pidfd_open(target, rustix::process::PidfdFlags::empty()).map_err(|e| {
            io(format!(
                "the container's process {} is gone (is the container running?)",
                opts.pid
            ))(e.into())
        })?;
    let linux = spec.linux().clone().unwrap_or_default();
    let listed: Vec<LinuxNamespaceType> = linux
        .namespaces()
        .clone()
        .unwrap_or_default()
        .iter()
        .map(|n| n.typ())
        .collect();
    // joined in this order; the mount namespace last
    let order = [
        LinuxNamespaceType::Cgroup,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Mount,
    ];
    let mut namespaces = Vec::new();
    let open = |t: LinuxNamespaceType| -> Result<std::fs::File, RuntimeError> {
        let name = proc_name(t).expect("supported namespace");
        let path = PathBuf::from(format!("/proc/{}/ns/{name}", opts.pid));
        std::fs::File::open(&path).map_err(io(format!("opening {}", path.display())))
    };
    for t in order {
        if listed.contains(&t) {
            namespaces.push((t, open(t)?));
        }
    }
    if !listed.contains(&LinuxNamespaceType::Mount) {
        return Err(RuntimeError::Spec(
            "the container has no mount namespace of its own".into(),
        ));
    }
    let pid_ns = if listed.contains(&LinuxNamespaceType::Pid) {
        Some(open(LinuxNamespaceType::Pid)?)
    } else {
        None
    };
    // still the same process? (a pidfd polls readable once it exited)
    if crate::sys::readable_now(&pidfd).unwrap_or(false) {
        return Err(RuntimeError::Spec(format!(
            "the container's process {} exited; the container is not running",
            opts.pid
        )));
    }
    if let Some(f) = &pid_ns {
        // our children are born in the container's pid namespace
        rustix::thread::move_into_link_name_space(
            std::os::fd::AsFd::as_fd(f),
            Some(rustix::thread::LinkNameSpaceType::ProcessID),
        )
        .map_err(|e| io("joining the container's pid namespace")(e.into()))?;
    }
    let seccomp = match linux.seccomp() {
        Some(profile) => Some(crate::seccomp::compile(profile).map_err(RuntimeError::Seccomp)?),
        None => None,
    };

    // the container's process with the exec's overrides
    let mut oci = spec
        .process()
        .clone()
        .ok_or_else(|| RuntimeError::Spec("config.json has no process".into()))?;
    oci.set_args(Some(process.args.clone()));
    oci.set_env(Some(process.env.clone()));
    if let Some(cwd) = process.cwd.as_ref().filter(|c| !c.is_empty()) {
        if !cwd.starts_with('/') {
            return Err(RuntimeError::Spec(format!(
                "the working directory '{cwd}' is invalid, it needs to be an absolute path"
            )));
        }
        oci.set_cwd(PathBuf::from(cwd));
    }
    oci.set_terminal(Some(process.tty));
    if process.privileged {
        let names: Vec<String> = crate::caps::ALL.iter().map(|c| c.to_string()).collect();
        let all = crate::defaults::capability_set(&names);
        let caps = LinuxCapabilitiesBuilder::default()
            .bounding(all.clone())
            .effective(all.clone())
            .permitted(all.clone())
            .inheritable(std::collections::HashSet::new())
            .ambient(std::collections::HashSet::new())
            .build()
            .map_err(|e| RuntimeError::Spec(format!("capabilities: {e}")))?;
        oci.set_capabilities(Some(caps));
    }
    let user = process.user.as_deref().filter(|u| !u.is_empty());
    let io_plan = opts.io;
    spawn_child(
        0,
        opts.wait_for_start,
        None,
        join_cgroup,
        move |go, status, start| {
            run_exec_child(ExecChildPlan {
                process: oci,
                user,
                namespaces,
                io: io_plan,
                go,
                status,
                start,
                seccomp,
            })
        },
    )
}

/// Sends `fd` over the unix socket `socket` (SCM_RIGHTS) with `data` beside it (runc sends a
/// console's path; an empty message would carry no descriptor).
pub fn send_fd(
    socket: &impl std::os::fd::AsFd,
    fd: &impl std::os::fd::AsFd,
    data: &[u8],
) -> std::io::Result<()> {
    let fds = [fd.as_fd()];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = rustix::net::SendAncillaryBuffer::new(&mut space);
    if !control.push(rustix::net::SendAncillaryMessage::ScmRights(&fds)) {
        return Err(std::io::Error::other("control buffer too small"));
    }
    rustix::net::sendmsg(
        socket,
        &[std::io::IoSlice::new(data)],
        &mut control,
        rustix::net::SendFlags::empty(),
    )?;
    Ok(())
}

/// Receives one fd sent with [`send_fd`].
pub fn recv_fd(socket: &impl std::os::fd::AsFd) -> std::io::Result<std::os::fd::OwnedFd> {
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = rustix::net::RecvAncillaryBuffer::new(&mut space);
    let mut byte = [0u8; 1];
    rustix::net::recvmsg(
        socket,
        &mut [std::io::IoSliceMut::new(&mut byte)],
        &mut control,
        rustix::net::RecvFlags::CMSG_CLOEXEC,
    )?;
    for msg in control.drain() {
        if let rustix::net::RecvAncillaryMessage::ScmRights(mut fds) = msg {
            if let Some(fd) = fds.next() {
                return Ok(fd);
            }
        }
    }
    Err(std::io::Error::other(
        "no terminal was received from the exec process",
    ))
}
