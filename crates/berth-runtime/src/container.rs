//! The parent side of container creation: compile what must be ready before clone, clone into
//! the new namespaces, let the child go once its cgroup is joined, and learn whether it
//! reached execve. Shared by the shim and by `berth runtime` (the runc-compatible mode).

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::init::{run_child, ChildPlan, ProcessIo, TAG_ERROR, TAG_READY};
use crate::sys::{self, Forked};

/// Errors of the runtime.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The spec asks for something invalid or unsupported.
    #[error("config.json: {0}")]
    Spec(String),
    /// A system call in the runtime itself failed.
    #[error("{op}")]
    Io {
        /// What was being done.
        op: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The container process failed before or at execve; `code` is what Docker would exit with
    /// (126 not executable, 127 not found, 125 anything else).
    #[error("{message}")]
    Init {
        /// Exit code.
        code: u8,
        /// What the child reported.
        message: String,
    },
    /// Joining the container's cgroup failed.
    #[error("joining cgroup: {0}")]
    Cgroup(String),
    /// The seccomp profile did not compile.
    #[error("seccomp profile")]
    Seccomp(#[source] crate::seccomp::SeccompError),
}

fn io(op: impl Into<String>) -> impl FnOnce(std::io::Error) -> RuntimeError {
    let op = op.into();
    move |source| RuntimeError::Io { op, source }
}

/// What to create.
pub struct CreateOptions<'a> {
    /// The OCI spec.
    pub spec: &'a Spec,
    /// The bundle directory (root.path is relative to it unless absolute).
    pub bundle: &'a Path,
    /// Overlay mount data for berth's images: mounted at the root inside the new mount
    /// namespace, so it disappears with the container and never leaks into the host.
    pub overlay: Option<String>,
    /// stdio wiring.
    pub io: ProcessIo,
    /// Stop before execve until [`Created::start`] (runc's create/start split).
    pub wait_for_start: bool,
    /// Extra fds (3..3+N) to keep across execve.
    pub preserve_fds: u32,
    /// A network namespace made ahead of time that nothing else uses (only its loopback,
    /// down): the container joins it instead of cloning a new one when the spec asks for a
    /// new network namespace and no new user namespace. Creating a network namespace is the
    /// kernel's slowest step of a container start (about 1 ms here); the shim zygote makes
    /// the next one while it waits (see `shim::zygote`).
    pub netns: Option<OwnedFd>,
}

/// What the container process does for runc's mode besides the spec: the hooks that run in
/// the container (createContainer before pivot_root, startContainer just before execve), with
/// the state they read on stdin (its `pid` and `status` are filled in by the process).
#[derive(Clone, Debug, Default)]
pub struct ChildHooks {
    /// The container's state as hooks see it.
    pub state: crate::hooks::OciState,
    /// createContainer hooks.
    pub create_container: Vec<oci_spec::runtime::Hook>,
    /// startContainer hooks.
    pub start_container: Vec<oci_spec::runtime::Hook>,
}

/// A container process that exists (waiting to start, or running).
pub struct Created {
    /// Its pid in the caller's pid namespace.
    pub pid: i32,
    status: std::fs::File,
    start: Option<std::fs::File>,
}

fn clone_flag(t: LinuxNamespaceType) -> Option<libc::c_int> {
    Some(match t {
        LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
        LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
        LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
        LinuxNamespaceType::Network => libc::CLONE_NEWNET,
        // the cgroup namespace is unshared by the child after it joined its cgroup
        LinuxNamespaceType::Cgroup => return None,
        LinuxNamespaceType::User => libc::CLONE_NEWUSER,
        LinuxNamespaceType::Time => return None,
    })
}

/// Reads the status pipe: `Ok(true)` for ready, `Ok(false)` for EOF (execve happened).
fn read_status(status: &mut std::fs::File) -> Result<bool, RuntimeError> {
    let mut buf = Vec::new();
    let mut tag = [0u8; 1];
    match status.read(&mut tag) {
        Ok(0) => return Ok(false),
        Ok(_) => {}
        Err(e) => return Err(io("reading container status")(e)),
    }
    match tag[0] {
        TAG_READY => Ok(true),
        TAG_ERROR => {
            status
                .read_to_end(&mut buf)
                .map_err(io("reading container error"))?;
            let code = buf.first().copied().unwrap_or(125);
            let message = String::from_utf8_lossy(buf.get(1..).unwrap_or_default()).into_owned();
            Err(RuntimeError::Init { code, message })
        }
        other => Err(RuntimeError::Init {
            code: 125,
            message: format!("unexpected status byte {other}"),
        }),
    }
}

/// Creates the container process. `join_cgroup` runs in the parent with the child's pid before
/// the child may proceed (so limits apply from its first instruction).
pub fn create(
    opts: CreateOptions<'_>,
    join_cgroup: impl FnOnce(i32) -> Result<(), String>,
) -> Result<Created, RuntimeError> {
    create_inner(opts, None, None, join_cgroup)
}

/// Like [`create`] with `wait_for_start`, but the process waits for a byte on `start` (the
/// read side of runc's exec fifo, opened read-write so it never sees EOF) instead of a pipe
/// this process holds: another process (`berth runtime start`) lets it run.
pub fn create_waiting_on(
    opts: CreateOptions<'_>,
    start: OwnedFd,
    join_cgroup: impl FnOnce(i32) -> Result<(), String>,
) -> Result<Created, RuntimeError> {
    create_inner(opts, Some(start), None, join_cgroup)
}

/// The container process of `berth runtime` (runc's command line): like [`create`] (or
/// [`create_waiting_on`] with `start`), and the process runs `hooks` itself and honours the
/// parts of the spec only that mode accepts (personality, the seccomp listener socket).
pub fn create_oci(
    opts: CreateOptions<'_>,
    start: Option<OwnedFd>,
    hooks: ChildHooks,
    join_cgroup: impl FnOnce(i32) -> Result<(), String>,
) -> Result<Created, RuntimeError> {
    create_inner(opts, start, Some(hooks), join_cgroup)
}

fn create_inner(
    opts: CreateOptions<'_>,
    start_fd: Option<OwnedFd>,
    hooks: Option<ChildHooks>,
    join_cgroup: impl FnOnce(i32) -> Result<(), String>,
) -> Result<Created, RuntimeError> {
    let spec = opts.spec;
    let linux = spec.linux().clone().unwrap_or_default();
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| RuntimeError::Spec("root is missing".into()))?;
    let rootfs: PathBuf = if root.path().is_absolute() {
        root.path().clone()
    } else {
        opts.bundle.join(root.path())
    };
    if opts.overlay.is_none() && !rootfs.is_dir() {
        return Err(RuntimeError::Spec(format!(
            "root.path {} is not a directory",
            rootfs.display()
        )));
    }
    let mut flags = 0;
    let mut join = Vec::new();
    let mut unshare_cgroup = false;
    for ns in linux.namespaces().clone().unwrap_or_default() {
        match (ns.typ(), ns.path()) {
            (LinuxNamespaceType::User, None) => {
                let mapped = |m: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| {
                    m.as_ref().is_some_and(|m| !m.is_empty())
                };
                if !mapped(linux.uid_mappings()) || !mapped(linux.gid_mappings()) {
                    return Err(RuntimeError::Spec(
                        "a new user namespace needs linux.uidMappings and linux.gidMappings".into(),
                    ));
                }
                flags |= libc::CLONE_NEWUSER;
            }
            (LinuxNamespaceType::Time, _) => {
                return Err(RuntimeError::Spec(
                    "time namespaces are not supported yet; remove the \"time\" namespace".into(),
                ))
            }
            (LinuxNamespaceType::Pid, Some(p)) => {
                // children of this process will be born in that pid namespace
                let f = std::fs::File::open(p)
                    .map_err(io(format!("opening pid namespace {}", p.display())))?;
                rustix::thread::move_into_link_name_space(
                    std::os::fd::AsFd::as_fd(&f),
                    Some(rustix::thread::LinkNameSpaceType::ProcessID),
                )
                .map_err(|e| io(format!("joining pid namespace {}", p.display()))(e.into()))?;
            }
            (t, Some(p)) => join.push((t, p.clone())),
            (LinuxNamespaceType::Cgroup, None) => unshare_cgroup = true,
            (t, None) => flags |= clone_flag(t).unwrap_or(0),
        }
    }
    // a user namespace to join goes first: the others may belong to it
    join.sort_by_key(|(t, _)| *t != LinuxNamespaceType::User);
    // a pre-made network namespace stands in for a new one, unless the container gets a
    // user namespace of its own (which must own its network namespace)
    let netns = match opts.netns {
        Some(fd) if flags & libc::CLONE_NEWNET != 0 && flags & libc::CLONE_NEWUSER == 0 => {
            flags &= !libc::CLONE_NEWNET;
            Some(fd)
        }
        _ => None,
    };
    let seccomp = match linux.seccomp() {
        Some(profile) => Some(crate::seccomp::compile(profile).map_err(RuntimeError::Seccomp)?),
        None => None,
    };
    // a new user namespace gets its mappings from here, before the child goes on
    let maps = (flags & libc::CLONE_NEWUSER != 0).then(|| {
        let render = |m: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| -> String {
            m.iter()
                .flatten()
                .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
                .collect()
        };
        (render(linux.uid_mappings()), render(linux.gid_mappings()))
    });
    let join_cgroup = move |pid: i32| -> Result<(), String> {
        join_cgroup(pid)?;
        if let Some((uid_map, gid_map)) = &maps {
            for (file, map) in [("uid_map", uid_map), ("gid_map", gid_map)] {
                let path = format!("/proc/{pid}/{file}");
                std::fs::write(&path, map)
                    .map_err(|e| format!("writing {path} ({}): {e}", map.trim()))?;
            }
        }
        Ok(())
    };
    let new_user_namespace = flags & libc::CLONE_NEWUSER != 0;
    let (overlay, io) = (opts.overlay, opts.io);
    let preserve_fds = opts.preserve_fds;
    spawn_child(
        flags,
        opts.wait_for_start || start_fd.is_some(),
        start_fd,
        join_cgroup,
        move |go, status, start| {
            run_child(ChildPlan {
                spec,
                rootfs,
                overlay,
                io,
                go,
                status,
                start,
                preserve_fds,
                unshare_cgroup,
                join,
                seccomp,
                hooks,
                new_user_namespace,
                netns,
            })
        },
    )
}

/// Clones a child (with `flags` namespaces) that runs `child(go, status, start)` (which
/// never returns); the parent
/// joins it to its cgroup, lets it go, and learns whether it reached execve (or, with
/// `wait_for_start`, stopped just before it).
pub(crate) fn spawn_child(
    flags: libc::c_int,
    wait_for_start: bool,
    start_fd: Option<OwnedFd>,
    join_cgroup: impl FnOnce(i32) -> Result<(), String>,
    child: impl FnOnce(OwnedFd, OwnedFd, Option<OwnedFd>),
) -> Result<Created, RuntimeError> {
    let (go_r, go_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| io("creating sync pipe")(e.into()))?;
    let (st_r, st_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| io("creating status pipe")(e.into()))?;
    let (start_r, start_w): (Option<OwnedFd>, Option<OwnedFd>) = if let Some(fd) = start_fd {
        (Some(fd), None)
    } else if wait_for_start {
        let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
            .map_err(|e| io("creating start pipe")(e.into()))?;
        (Some(r), Some(w))
    } else {
        (None, None)
    };
    match sys::clone_process(flags).map_err(io("cloning the container process"))? {
        Forked::Child => {
            drop(go_w);
            drop(st_r);
            drop(start_w);
            child(go_r, st_w, start_r);
            // the child plans never return; should one, it must not run on as the parent
            sys::exit_now(125)
        }
        Forked::Parent(pid) => {
            drop(go_r);
            drop(st_w);
            drop(start_r);
            // the child's copy of everything else (stdio ends) is its own; ours goes with
            // the closure
            drop(child);
            let mut status = std::fs::File::from(st_r);
            let kill_child = |pid: i32| {
                if let Some(p) = rustix::process::Pid::from_raw(pid) {
                    let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
                    let _ =
                        rustix::process::waitpid(Some(p), rustix::process::WaitOptions::empty());
                }
            };
            if let Err(e) = join_cgroup(pid) {
                kill_child(pid);
                return Err(RuntimeError::Cgroup(e));
            }
            let mut go = std::fs::File::from(go_w);
            if let Err(e) = go.write_all(&[1]) {
                kill_child(pid);
                return Err(io("releasing the container process")(e));
            }
            drop(go);
            match read_status(&mut status) {
                Ok(ready) => {
                    if wait_for_start && !ready {
                        return Err(RuntimeError::Init {
                            code: 125,
                            message: "container process exited during setup".into(),
                        });
                    }
                    Ok(Created {
                        pid,
                        status,
                        start: start_w.map(std::fs::File::from),
                    })
                }
                Err(e) => {
                    if let Some(p) = rustix::process::Pid::from_raw(pid) {
                        let _ = rustix::process::waitpid(
                            Some(p),
                            rustix::process::WaitOptions::empty(),
                        );
                    }
                    Err(e)
                }
            }
        }
    }
}

impl Created {
    /// A created container from its pid and the status and start pipes of [`Created::into_parts`]
    /// (handed over from the process that created it).
    pub fn from_parts(pid: i32, status: std::fs::File, start: Option<std::fs::File>) -> Created {
        Created { pid, status, start }
    }

    /// The pid and the status and start pipes, to hand over to another process.
    pub fn into_parts(self) -> (i32, std::fs::File, Option<std::fs::File>) {
        (self.pid, self.status, self.start)
    }

    /// Lets a container created with `wait_for_start` run; returns once it reached execve.
    pub fn start(&mut self) -> Result<(), RuntimeError> {
        let Some(mut start) = self.start.take() else {
            return Ok(());
        };
        start
            .write_all(&[1])
            .map_err(io("starting the container"))?;
        drop(start);
        match read_status(&mut self.status)? {
            false => Ok(()),
            true => Err(RuntimeError::Init {
                code: 125,
                message: "container reported ready twice".into(),
            }),
        }
    }
}

/// Blocks `signals` and returns a signalfd that reads them, for a runtime process that
/// forwards signals to its container (`berth runtime run` in the foreground). Call it after
/// the container process was created: children inherit the blocked set.
pub fn signalfd(signals: &[i32]) -> std::io::Result<OwnedFd> {
    sys::block_into_signalfd(signals)
}

/// Reads one signal number from a [`signalfd`] (its `signalfd_siginfo` starts with it).
pub fn read_signal(fd: &OwnedFd) -> std::io::Result<i32> {
    let mut info = [0u8; 128];
    let n = rustix::io::read(fd, &mut info)?;
    if n < 4 {
        return Err(std::io::Error::other("short read from signalfd"));
    }
    Ok(u32::from_ne_bytes([info[0], info[1], info[2], info[3]]) as i32)
}
