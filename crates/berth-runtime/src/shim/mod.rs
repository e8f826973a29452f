//! The shim: one small process per container, parent and subreaper of the container's init.
//! It owns the container's stdio (pipes, or a pty for `-t`), writes its json-file logs, serves
//! attach clients on a unix socket, and records the exit status atomically. It runs without an
//! async runtime: one poll loop, a few fds, small buffers.
//!
//! Files in the container's state directory:
//! ```text
//! shim.json        ShimConfig, written by the daemon
//! shim.sock        attach / control socket (or /run/berth/shim/<hash>.sock when the state
//!                  directory's path is too long for a unix socket address; see socket_path)
//! state.json       {"pid", "shim_pid", "started_at"} once running
//! exit.json        {"exit_code", "signal", "oom_killed", "finished_at"} once exited
//! container-json.log[.N]
//! exec/<exec id>/  one directory per exec (shim.json, shim.sock, state.json, exit.json)
//! ```
//! The shim creates its container from a short-lived helper child (see `create_in_helper`)
//! and becomes its subreaper, so the memory the create path touches is never the idle shim's.
//! An exec shim (`ShimConfig::exec`) runs one extra process in the running container
//! ([`crate::exec`]) with the same loop, stdio, socket protocol and exit record, in the
//! exec's own directory; it writes no container log, joins the container's existing
//! cgroup and never removes it.
//! Socket protocol: a client sends one JSON line first: `{"kind":"start"}` (answered with one
//! JSON line) or `{"kind":"attach","stdin":bool}`; attach connections then carry frames
//! `[stream u8][len u32 BE][data]`: stream 0 is stdin towards the container, 1/2 are
//! stdout/stderr towards the client, 3 is a resize (`rows u16, cols u16`), 4 closes stdin.

pub mod external;
pub mod log;
pub mod memory;
pub mod zygote;

use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use self::log::{JsonLog, LogConfig};
use crate::error_chain;
use crate::init::ProcessIo;

/// What the daemon tells a shim.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ShimConfig {
    /// Container ID.
    pub id: String,
    /// The container's state directory.
    pub dir: PathBuf,
    /// The bundle (holds config.json).
    pub bundle: PathBuf,
    /// Overlay data for the root, mounted inside the container's mount namespace.
    pub overlay: Option<String>,
    /// Allocate a pty.
    pub tty: bool,
    /// Keep stdin open for attach clients.
    pub open_stdin: bool,
    /// Log rotation.
    pub log: LogConfig,
    /// Cgroup file-system root (`/sys/fs/cgroup`).
    pub cgroup_root: PathBuf,
    /// Parent cgroup under which the container's own is created (`berth`).
    pub cgroup_parent: String,
    /// Set for an exec shim: run this process in the running container instead of
    /// creating one (`dir` is then the exec's directory, `bundle` the container's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ShimExec>,
    /// An external OCI runtime (runc, crun) to drive instead of berth's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<PathBuf>,
    /// That runtime's state directory (`--root`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_root: Option<PathBuf>,
}

/// The exec part of a [`ShimConfig`].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ShimExec {
    /// The container's init pid (host pid namespace).
    pub container_pid: i32,
    /// What to run.
    pub process: crate::exec::ExecProcess,
    /// Initial terminal size (rows, cols).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_size: Option<(u16, u16)>,
}

/// The container process, created by berth's runtime or by an external one.
enum Launched {
    Own(crate::container::Created),
    External(external::External),
}

impl Launched {
    fn pid(&self) -> i32 {
        match self {
            Launched::Own(c) => c.pid,
            Launched::External(e) => e.pid,
        }
    }

    fn start(&mut self) -> Result<(), crate::container::RuntimeError> {
        match self {
            Launched::Own(c) => c.start(),
            Launched::External(e) => e.start(),
        }
    }

    fn cleanup(&mut self) {
        if let Launched::External(e) = self {
            e.cleanup();
        }
    }
}

/// How long the shim must have had nothing to do after the start before it gives back what
/// the start touched ([`memory::release`]).
const RELEASE_AFTER_IDLE_MS: i64 = 200;

/// Written once the container runs.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RunState {
    /// The container's init pid (host pid namespace).
    pub pid: i32,
    /// The shim's pid.
    pub shim_pid: i32,
    /// RFC 3339.
    pub started_at: String,
}

/// Written when the container exited.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExitState {
    /// Docker's exit code: the status, or 128+signal.
    pub exit_code: i32,
    /// The signal that ended it, if any.
    pub signal: Option<i32>,
    /// Whether the kernel's OOM killer ended a process of the container.
    pub oom_killed: bool,
    /// RFC 3339.
    pub finished_at: String,
    /// Set when the container never ran (the start failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The first line a socket client sends.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Hello {
    /// Let the created container run.
    Start,
    /// Stream stdio.
    Attach {
        /// Forward stdin from this client.
        stdin: bool,
    },
}

/// What the shim reports on its ready fd.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Ready {
    /// The container's pid, on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// What failed, otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Docker's exit code for the failure (125, 126, 127).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u8>,
}

/// Where a container's shim listens: `DIR/shim.sock`, unless that path does not fit in a
/// unix socket address (108 bytes), then `/run/berth/shim/<hash of DIR>.sock`.
pub fn socket_path(dir: &Path) -> PathBuf {
    let direct = dir.join("shim.sock");
    if direct.as_os_str().len() < 100 {
        return direct;
    }
    // FNV-1a over the path: stable across processes, no extra dependency
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in dir.as_os_str().as_encoded_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    PathBuf::from(format!("/run/berth/shim/{h:016x}.sock"))
}

/// Writes `data` to `path` atomically (temp file + rename): a reader sees the old file or the
/// whole new one, also after a `kill -9` of the writer.
///
/// No fsync, on purpose: these are records of processes (state.json, exit.json). After a host
/// crash the processes are gone whatever the records say, and the daemon's reconcile marks such
/// a container exited; an fsync would buy nothing there but costs milliseconds on every start
/// and exit (much more on a busy disk).
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
    }
    std::fs::rename(&tmp, path)
}

/// Frame a chunk for an attach client.
pub fn frame(stream: u8, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(5 + data.len());
    v.push(stream);
    v.extend_from_slice(&(data.len() as u32).to_be_bytes());
    v.extend_from_slice(data);
    v
}

/// Hooks the shim uses for the container's cgroup (implemented over [`crate::cgroup`]).
pub trait ShimCgroup {
    /// Creates the cgroup and moves `pid` into it.
    fn join(&mut self, pid: i32) -> Result<(), String>;
    /// Whether the OOM killer fired in it.
    fn oom_killed(&self) -> bool;
    /// Removes it (killing leftovers).
    fn destroy(&mut self);
    /// The limits `join` writes (from the spec).
    fn set_resources(&mut self, resources: Option<oci_spec::runtime::LinuxResources>);
    /// Takes over the cgroup that `join` made in another process (the create helper), for
    /// `oom_killed` and `destroy`; nothing when there is none.
    fn adopt(&mut self);
}

/// The container's spec, `BUNDLE/config.json`.
fn read_spec(bundle: &Path) -> io::Result<oci_spec::runtime::Spec> {
    let spec_path = bundle.join("config.json");
    serde_json::from_slice(&std::fs::read(&spec_path)?).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {e}", spec_path.display()),
        )
    })
}

/// What the create helper reports besides the two descriptors.
#[derive(Serialize, Deserialize)]
struct HelperReport {
    pid: Option<i32>,
    error: Option<String>,
    code: Option<u8>,
}

/// The create helper that reported its container and was left to exit on its own, while
/// the container started: [`reap_helper`] collects it (0: none).
static UNREAPED_HELPER: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// Waits for the child `pid` to exit and reaps it.
fn reap(pid: i32) {
    if let Some(p) = rustix::process::Pid::from_raw(pid) {
        while let Err(rustix::io::Errno::INTR) =
            rustix::process::waitpid(Some(p), rustix::process::WaitOptions::empty())
        {}
    }
}

/// Reaps the create helper left to exit on its own, once the container runs and the shim
/// has been idle a moment (the helper had nothing left to do but exit); a zombie would hold
/// its task until the container exits. Without waiting: the loop's `wait(-1)` may have reaped
/// it already, and its pid may then belong to an orphan the shim adopted since; one still
/// there is reaped by that `wait` later.
fn reap_helper() {
    let pid = UNREAPED_HELPER.swap(0, std::sync::atomic::Ordering::Relaxed);
    if let Some(p) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::waitpid(Some(p), rustix::process::WaitOptions::NOHANG);
    }
}

/// Creates the container from a short-lived child of the shim: the child parses the spec,
/// creates the container process (which then waits for `start`), joins it to its cgroup and
/// hands the pid and the container's status and start pipes back, then exits; the container
/// process is re-parented to the shim, its subreaper. Everything creating a container touches
/// (the parsed spec, the seccomp program, mount tables, deep stacks, page tables for most of
/// the binary) lives and dies in the helper, so the shim that stays for the container's
/// lifetime holds only what its poll loop needs.
fn create_in_helper(
    config: &ShimConfig,
    cgroup: &mut dyn ShimCgroup,
    io: ProcessIo,
    netns: Option<OwnedFd>,
) -> Result<crate::container::Created, crate::container::RuntimeError> {
    use crate::container::RuntimeError;
    use std::os::fd::AsFd;
    let wrap = |op: &str| {
        let op = op.to_string();
        move |source: io::Error| RuntimeError::Io { op, source }
    };
    let (ours, theirs) = rustix::net::socketpair(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::SEQPACKET,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| wrap("making the create helper's socket")(e.into()))?;
    let helper = match crate::sys::clone_process(0).map_err(wrap("forking the create helper"))? {
        crate::sys::Forked::Child => {
            drop(ours);
            let created = read_spec(&config.bundle)
                .map_err(|e| RuntimeError::Io {
                    op: "reading the spec".into(),
                    source: e,
                })
                .and_then(|spec| {
                    cgroup.set_resources(spec.linux().as_ref().and_then(|l| l.resources().clone()));
                    crate::container::create(
                        crate::container::CreateOptions {
                            spec: &spec,
                            bundle: &config.bundle,
                            overlay: config.overlay.clone(),
                            io,
                            wait_for_start: true,
                            preserve_fds: 0,
                            netns,
                        },
                        |pid| cgroup.join(pid),
                    )
                });
            let (report, fds) = match created {
                Ok(c) => {
                    let (pid, status, start) = c.into_parts();
                    let mut fds: Vec<OwnedFd> = vec![status.into()];
                    fds.extend(start.map(OwnedFd::from));
                    (
                        HelperReport {
                            pid: Some(pid),
                            error: None,
                            code: None,
                        },
                        fds,
                    )
                }
                Err(e) => {
                    let code = match &e {
                        RuntimeError::Init { code, .. } => *code,
                        _ => 125,
                    };
                    (
                        HelperReport {
                            pid: None,
                            error: Some(error_chain(&e)),
                            code: Some(code),
                        },
                        Vec::new(),
                    )
                }
            };
            let payload = serde_json::to_vec(&report).unwrap_or_default();
            let borrowed: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
            let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
            let mut cmsg = rustix::net::SendAncillaryBuffer::new(&mut space);
            let sent = (borrowed.is_empty()
                || cmsg.push(rustix::net::SendAncillaryMessage::ScmRights(&borrowed)))
                && rustix::net::sendmsg(
                    &theirs,
                    &[io::IoSlice::new(&payload)],
                    &mut cmsg,
                    rustix::net::SendFlags::NOSIGNAL,
                )
                .is_ok();
            crate::sys::exit_now(if sent { 0 } else { 125 })
        }
        crate::sys::Forked::Parent(pid) => pid,
    };
    // the container's ends of its stdio belong to the helper (and the container) only, and
    // so does the zygote's spare network namespace
    drop((theirs, io, netns));
    let mut buf = vec![0u8; 16 * 1024];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
    let mut cmsg = rustix::net::RecvAncillaryBuffer::new(&mut space);
    let received = loop {
        match rustix::net::recvmsg(
            &ours,
            &mut [io::IoSliceMut::new(&mut buf)],
            &mut cmsg,
            rustix::net::RecvFlags::CMSG_CLOEXEC,
        ) {
            Err(rustix::io::Errno::INTR) => continue,
            other => break other,
        }
    };
    let mut fds: Vec<OwnedFd> = Vec::new();
    for m in cmsg.drain() {
        if let rustix::net::RecvAncillaryMessage::ScmRights(rights) = m {
            fds.extend(rights);
        }
    }
    // a helper that reported its container has nothing left to do but exit: the poll loop
    // reaps it, and the container starts meanwhile; one that did not report may still be
    // writing the cgroup
    let reported = matches!(&received, Ok(r) if r.bytes > 0) && fds.len() == 2;
    if reported {
        UNREAPED_HELPER.store(helper, std::sync::atomic::Ordering::Relaxed);
    } else {
        reap(helper);
    }
    // the helper made the cgroup (or part of it): ours to watch and to remove from now on
    cgroup.adopt();
    let received = received.map_err(|e| wrap("reading the create helper's report")(e.into()))?;
    let report: HelperReport =
        serde_json::from_slice(&buf[..received.bytes]).map_err(|e| RuntimeError::Init {
            code: 125,
            message: format!("the create helper's report: {e}"),
        })?;
    match (report.pid, fds.len()) {
        (Some(pid), 2) => {
            let start = fds.pop().map(std::fs::File::from);
            let status = std::fs::File::from(fds.pop().expect("two fds"));
            Ok(crate::container::Created::from_parts(pid, status, start))
        }
        _ => Err(RuntimeError::Init {
            code: report.code.unwrap_or(125),
            message: report
                .error
                .unwrap_or_else(|| "the create helper reported no container".into()),
        }),
    }
}

struct Client {
    stream: UnixStream,
    stdin: bool,
    inbuf: Vec<u8>,
    hello_done: bool,
    dead: bool,
}

/// The shim's main: creates the container (stopped before execve), reports to `ready`, waits
/// for a `start` on its socket, then pumps stdio until the container exits. Returns the exit
/// state it recorded. `clients` are served as connections to the socket made before any
/// other, in their order, from the moment the container is ready: the daemon says its
/// attach hellos and `start` on them ahead, and the container runs without waiting for it.
pub fn run(
    config: &ShimConfig,
    cgroup: &mut dyn ShimCgroup,
    ready: OwnedFd,
    clients: Vec<OwnedFd>,
) -> io::Result<ExitState> {
    // the container's own runtime parses the spec in a helper process (create_in_helper),
    // and takes the zygote's spare network namespace (when it forked this shim); an exec or
    // an external runtime needs the spec here, and lets go of the spare at once
    let spare_netns = zygote::take_spare_netns();
    let (spec, mut spare_netns) = match (&config.exec, &config.runtime) {
        (None, None) => (None, spare_netns),
        _ => {
            drop(spare_netns);
            let spec = read_spec(&config.bundle)?;
            cgroup.set_resources(spec.linux().as_ref().and_then(|l| l.resources().clone()));
            (Some(spec), None)
        }
    };
    let sock_path = socket_path(&config.dir);
    if let Some(parent) = sock_path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let _ = std::fs::remove_file(&sock_path);
    let listener = UnixListener::bind(&sock_path)?;
    listener.set_nonblocking(true)?;
    // Docker does not log an exec's output to the container's log
    let mut log = match config.exec {
        Some(_) => None,
        None => Some(JsonLog::open(
            &config.dir.join("container-json.log"),
            config.log.clone(),
        )?),
    };

    // stdio
    // an exec's terminal is made inside the container (its devpts) and its master sent back
    let mut console: Option<UnixStream> = None;
    let (mut stdin_w, mut outputs, pio): (Option<OwnedFd>, Vec<(u8, OwnedFd)>, ProcessIo) =
        if config.tty && config.runtime.is_some() && config.exec.is_none() {
            // an external runtime makes the pty and hands the master over (below)
            (None, Vec::new(), ProcessIo::Inherit)
        } else if config.tty && config.exec.is_some() {
            let (ours, theirs) = UnixStream::pair()?;
            console = Some(ours);
            (
                None,
                Vec::new(),
                ProcessIo::ConsoleSocket {
                    socket: theirs.into(),
                },
            )
        } else if config.tty {
            let master = rustix::pty::openpt(
                rustix::pty::OpenptFlags::RDWR
                    | rustix::pty::OpenptFlags::NOCTTY
                    | rustix::pty::OpenptFlags::CLOEXEC,
            )?;
            rustix::pty::grantpt(&master)?;
            rustix::pty::unlockpt(&master)?;
            let name = rustix::pty::ptsname(&master, Vec::new())?;
            let path = PathBuf::from(name.to_string_lossy().into_owned());
            // O_NOCTTY: the shim is a session leader; the terminal is the process's, not ours
            let slave: OwnedFd = std::os::unix::fs::OpenOptionsExt::custom_flags(
                std::fs::OpenOptions::new().read(true).write(true),
                libc::O_NOCTTY | libc::O_CLOEXEC,
            )
            .open(&path)?
            .into();
            let master_out = master.try_clone()?;
            (
                Some(master),
                vec![(1, master_out)],
                ProcessIo::Terminal { slave, path },
            )
        } else {
            let (out_r, out_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
            let (err_r, err_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
            let (stdin_r, stdin_w) = if config.open_stdin {
                let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
                (Some(r), Some(w))
            } else {
                (None, None)
            };
            (
                stdin_w,
                vec![(1, out_r), (2, err_r)],
                ProcessIo::Fds {
                    stdin: stdin_r,
                    stdout: out_w,
                    stderr: err_w,
                },
            )
        };

    let mut ready = std::fs::File::from(ready);
    let created = match (&config.exec, &config.runtime) {
        (Some(e), _) => crate::exec::exec(
            crate::exec::ExecOptions {
                spec: spec.as_ref().expect("parsed for an exec"),
                pid: e.container_pid,
                process: &e.process,
                io: pio,
                wait_for_start: true,
            },
            |pid| cgroup.join(pid),
        )
        .map(Launched::Own),
        (None, None) => {
            create_in_helper(config, cgroup, pio, spare_netns.take()).map(Launched::Own)
        }
        (None, Some(runtime)) => {
            external::External::create(config, runtime, pio).and_then(|(mut ext, console)| {
                if let Some(master) = console {
                    // the runtime made the pty: its master replaces ours
                    let out =
                        master
                            .try_clone()
                            .map_err(|source| crate::container::RuntimeError::Io {
                                op: "duplicating the pty master".into(),
                                source,
                            });
                    match out {
                        Ok(out) => {
                            stdin_w = Some(master);
                            outputs = vec![(1, out)];
                        }
                        Err(e) => {
                            ext.cleanup();
                            return Err(e);
                        }
                    }
                }
                // the runtime made the cgroup the spec names (berth's path): adopt it for
                // the OOM record and the final clean-up
                if let Err(e) = cgroup.join(ext.pid) {
                    ext.cleanup();
                    return Err(crate::container::RuntimeError::Cgroup(e));
                }
                Ok(Launched::External(ext))
            })
        }
    };
    let mut created = match created {
        Ok(c) => c,
        Err(e) => {
            let code = match &e {
                crate::container::RuntimeError::Init { code, .. } => *code,
                _ => 125,
            };
            let msg = error_chain(&e);
            let _ = ready.write_all(
                format!(
                    "{}\n",
                    serde_json::to_string(&Ready {
                        pid: None,
                        error: Some(msg.clone()),
                        code: Some(code)
                    })?
                )
                .as_bytes(),
            );
            cgroup.destroy();
            let _ = std::fs::remove_file(&sock_path);
            return Ok(ExitState {
                exit_code: code as i32,
                signal: None,
                oom_killed: false,
                finished_at: log::timestamp_now(),
                error: Some(msg),
            });
        }
    };
    let pid = created.pid();
    if let Some(console) = &console {
        // sent before the process reported ready
        let master = crate::exec::recv_fd(console)?;
        if let Some((rows, cols)) = config.exec.as_ref().and_then(|e| e.console_size) {
            if rows > 0 && cols > 0 {
                let _ = rustix::termios::tcsetwinsize(
                    &master,
                    rustix::termios::Winsize {
                        ws_row: rows,
                        ws_col: cols,
                        ws_xpixel: 0,
                        ws_ypixel: 0,
                    },
                );
            }
        }
        outputs = vec![(1, master.try_clone()?)];
        stdin_w = Some(master);
    }
    // an idle shim should hold little memory: the spec is not needed any more, and what
    // parsing it allocated goes back to the kernel
    drop(spec);
    crate::sys::trim_heap();
    let pidfd = rustix::process::pidfd_open(
        rustix::process::Pid::from_raw(pid)
            .ok_or_else(|| io::Error::other("invalid container pid"))?,
        rustix::process::PidfdFlags::empty(),
    )?;
    write_atomic(
        &config.dir.join("state.json"),
        &serde_json::to_vec(&RunState {
            pid,
            shim_pid: std::process::id() as i32,
            started_at: log::timestamp_now(),
        })?,
    )?;
    // one line: the container process holds a copy of this pipe until it execs
    ready.write_all(
        format!(
            "{}\n",
            serde_json::to_string(&Ready {
                pid: Some(pid),
                error: None,
                code: None
            })?
        )
        .as_bytes(),
    )?;
    drop(ready);

    let mut clients: Vec<Client> = clients
        .into_iter()
        .filter_map(|fd| {
            let stream = UnixStream::from(fd);
            stream.set_nonblocking(true).ok()?;
            Some(Client {
                stream,
                stdin: false,
                inbuf: Vec::new(),
                hello_done: false,
                dead: false,
            })
        })
        .collect();
    let mut outputs: Vec<(u8, Option<OwnedFd>)> =
        outputs.into_iter().map(|(s, fd)| (s, Some(fd))).collect();
    let mut exited: Option<(i32, Option<i32>)> = None;
    let mut drain_deadline: Option<std::time::Instant> = None;
    let mut started = false;
    // once the container runs, the shim goes idle: give back what creating it touched
    let mut release_pending = false;
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        // build the poll set: listener, pidfd, outputs, clients
        let mut fds: Vec<rustix::event::PollFd<'_>> = Vec::new();
        fds.push(rustix::event::PollFd::new(
            &listener,
            rustix::event::PollFlags::IN,
        ));
        fds.push(rustix::event::PollFd::new(
            &pidfd,
            rustix::event::PollFlags::IN,
        ));
        let out_base = fds.len();
        let live_outputs: Vec<usize> = outputs
            .iter()
            .enumerate()
            .filter(|(_, (_, fd))| fd.is_some())
            .map(|(i, _)| i)
            .collect();
        for i in &live_outputs {
            fds.push(rustix::event::PollFd::new(
                outputs[*i].1.as_ref().expect("live"),
                rustix::event::PollFlags::IN,
            ));
        }
        let client_base = fds.len();
        let polled_clients = clients.len();
        for c in &clients {
            fds.push(rustix::event::PollFd::new(
                &c.stream,
                rustix::event::PollFlags::IN,
            ));
        }
        let timeout = match (drain_deadline, release_pending) {
            (Some(d), _) => {
                let left = d.saturating_duration_since(std::time::Instant::now());
                Some(rustix::time::Timespec {
                    tv_sec: left.as_secs() as i64,
                    tv_nsec: left.subsec_nanos() as i64,
                })
            }
            // the release waits for a quiet moment: not on the start's path, and never for
            // a container that is done at once
            (None, true) => Some(rustix::time::Timespec {
                tv_sec: 0,
                tv_nsec: RELEASE_AFTER_IDLE_MS * 1_000_000,
            }),
            (None, false) => None,
        };
        let ready = match rustix::event::poll(&mut fds, timeout.as_ref()) {
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        };
        let revents: Vec<rustix::event::PollFlags> = fds.iter().map(|f| f.revents()).collect();
        drop(fds);

        // new clients
        if !revents[0].is_empty() {
            while let Ok((stream, _)) = listener.accept() {
                let _ = stream.set_nonblocking(true);
                clients.push(Client {
                    stream,
                    stdin: false,
                    inbuf: Vec::new(),
                    hello_done: false,
                    dead: false,
                });
            }
        }
        // container output
        for (k, i) in live_outputs.iter().enumerate() {
            let ev = revents[out_base + k];
            if ev.is_empty() {
                continue;
            }
            let (stream_id, fd) = (&outputs[*i].0, outputs[*i].1.as_ref().expect("live"));
            let n = match rustix::io::read(fd, &mut buf) {
                Ok(n) => n,
                Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::AGAIN) => continue,
                Err(_) => 0, // EIO on a pty whose slave closed
            };
            if n == 0 {
                outputs[*i].1 = None;
                continue;
            }
            if let Some(log) = log.as_mut() {
                let _ = log.write((*stream_id as usize).saturating_sub(1), &buf[..n]);
            }
            let f = frame(*stream_id, &buf[..n]);
            for c in clients.iter_mut().filter(|c| c.hello_done && !c.dead) {
                if c.stream.set_nonblocking(false).is_ok() && c.stream.write_all(&f).is_err() {
                    c.dead = true;
                }
                let _ = c.stream.set_nonblocking(true);
            }
        }
        // client input
        for (k, c) in clients.iter_mut().enumerate().take(polled_clients) {
            if revents[client_base + k].is_empty() || c.dead {
                continue;
            }
            match c.stream.read(&mut buf) {
                Ok(0) => c.dead = true,
                Ok(n) => c.inbuf.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => c.dead = true,
            }
            if !c.hello_done {
                if let Some(pos) = c.inbuf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = c.inbuf.drain(..=pos).collect();
                    match serde_json::from_slice::<Hello>(&line) {
                        Ok(Hello::Start) => {
                            let answer = if started {
                                serde_json::json!({"ok": true})
                            } else {
                                match created.start() {
                                    Ok(()) => {
                                        started = true;
                                        release_pending = true;
                                        serde_json::json!({"ok": true})
                                    }
                                    Err(e) => serde_json::json!({"error": error_chain(&e)}),
                                }
                            };
                            let _ = c.stream.set_nonblocking(false);
                            let _ = c.stream.write_all(format!("{answer}\n").as_bytes());
                            c.dead = true;
                        }
                        Ok(Hello::Attach { stdin }) => {
                            c.stdin = stdin;
                            c.hello_done = true;
                        }
                        Err(_) => c.dead = true,
                    }
                }
            }
            // frames from the client
            while c.hello_done && c.inbuf.len() >= 5 {
                let len =
                    u32::from_be_bytes([c.inbuf[1], c.inbuf[2], c.inbuf[3], c.inbuf[4]]) as usize;
                if c.inbuf.len() < 5 + len {
                    break;
                }
                let kind = c.inbuf[0];
                let data: Vec<u8> = c.inbuf.drain(..5 + len).skip(5).collect();
                match kind {
                    0 if c.stdin => {
                        if let Some(w) = &stdin_w {
                            let mut f = std::fs::File::from(w.try_clone()?);
                            if f.write_all(&data).is_err() {
                                stdin_w = None;
                            }
                        }
                    }
                    3 if data.len() == 4 => {
                        if let (true, Some(w)) = (config.tty, &stdin_w) {
                            let ws = rustix::termios::Winsize {
                                ws_row: u16::from_be_bytes([data[0], data[1]]),
                                ws_col: u16::from_be_bytes([data[2], data[3]]),
                                ws_xpixel: 0,
                                ws_ypixel: 0,
                            };
                            let _ = rustix::termios::tcsetwinsize(w, ws);
                        }
                    }
                    4 if c.stdin && !config.tty => stdin_w = None,
                    4 if c.stdin && config.tty => {
                        // EOF on a tty: send ^D
                        if let Some(w) = &stdin_w {
                            let _ = rustix::io::write(w, &[4]);
                        }
                    }
                    _ => {}
                }
            }
        }
        clients.retain(|c| !c.dead);
        if release_pending && ready == 0 && drain_deadline.is_none() {
            release_pending = false;
            reap_helper();
            memory::release();
        }

        // reap: the container's init, and orphans re-parented to us (we are their subreaper)
        if exited.is_none() || !revents[1].is_empty() {
            // wait(), i.e. pid -1: rustix's waitpid(None) is pid 0, this process group only,
            // and an init that made its own session (a terminal, or runc's) is not in it
            while let Ok(Some((p, status))) =
                rustix::process::wait(rustix::process::WaitOptions::NOHANG)
            {
                if p.as_raw_nonzero().get() == pid && exited.is_none() {
                    exited = Some(exit_of(status));
                    // give the pipes a moment to drain what was written before exit
                    drain_deadline =
                        Some(std::time::Instant::now() + std::time::Duration::from_millis(200));
                }
            }
        }
        if exited.is_some() {
            let outputs_done = outputs.iter().all(|(_, fd)| fd.is_none());
            let timed_out = drain_deadline.is_some_and(|d| std::time::Instant::now() >= d);
            if outputs_done || timed_out {
                break;
            }
        }
    }
    if let Some(log) = log.as_mut() {
        let _ = log.flush();
    }
    created.cleanup();
    let (exit_code, signal) = exited.expect("loop ends after exit");
    let state = ExitState {
        exit_code,
        signal,
        oom_killed: cgroup.oom_killed(),
        finished_at: log::timestamp_now(),
        error: None,
    };
    write_atomic(&config.dir.join("exit.json"), &serde_json::to_vec(&state)?)?;
    for mut c in clients {
        let _ = c.stream.shutdown(std::net::Shutdown::Both);
        let _ = c.stream.flush();
    }
    let _ = std::fs::remove_file(&sock_path);
    cgroup.destroy();
    Ok(state)
}

/// Docker's exit code (status, or 128+signal) and the signal.
fn exit_of(status: rustix::process::WaitStatus) -> (i32, Option<i32>) {
    if let Some(code) = status.exit_status() {
        (code, None)
    } else {
        let sig = status.terminating_signal().unwrap_or(9);
        (128 + sig, Some(sig))
    }
}

/// A pidfd for `pid` (readable once it exits), for the daemon's watchers.
pub fn pidfd(pid: i32) -> io::Result<OwnedFd> {
    let p = rustix::process::Pid::from_raw(pid)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "pid 0"))?;
    Ok(rustix::process::pidfd_open(
        p,
        rustix::process::PidfdFlags::empty(),
    )?)
}

/// Sends signal number `sig` to `pid`.
pub fn send_signal(pid: i32, sig: i32) -> io::Result<()> {
    let p = rustix::process::Pid::from_raw(pid)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "pid 0"))?;
    let s = rustix::process::Signal::from_named_raw(sig).ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, format!("invalid signal {sig}"))
    })?;
    Ok(rustix::process::kill_process(p, s)?)
}

/// Whether a process with this pid exists (and is not a zombie).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// [`ShimCgroup`] over the real cgroup manager.
pub struct HostCgroup {
    manager: Option<crate::cgroup::CgroupManager>,
    cgroup: Option<crate::cgroup::Cgroup>,
    id: String,
    resources: Option<oci_spec::runtime::LinuxResources>,
    error: Option<String>,
    /// Join the container's existing cgroup (an exec): no limits written, never removed.
    existing: bool,
}

impl HostCgroup {
    /// Detects the host's cgroup layout under `root`; errors are reported at `join`.
    pub fn new(
        config: &ShimConfig,
        resources: Option<oci_spec::runtime::LinuxResources>,
    ) -> HostCgroup {
        let manager = crate::cgroup::CgroupManager::detect(&config.cgroup_root, Path::new("/proc"))
            .and_then(|m| m.with_parent(&config.cgroup_parent));
        let (manager, error) = match manager {
            Ok(m) => (Some(m), None),
            Err(e) => (None, Some(error_chain(&e))),
        };
        HostCgroup {
            manager,
            cgroup: None,
            id: config.id.clone(),
            resources,
            error,
            existing: config.exec.is_some(),
        }
    }
}

impl ShimCgroup for HostCgroup {
    fn join(&mut self, pid: i32) -> Result<(), String> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let m = self.manager.as_ref().expect("manager without error");
        let cg = if self.existing {
            let cg = m.open(&self.id).map_err(|e| error_chain(&e))?;
            if !cg.exists() {
                return Err(format!("the cgroup of container {} is gone", self.id));
            }
            cg
        } else {
            m.create(&self.id).map_err(|e| error_chain(&e))?
        };
        self.cgroup = Some(cg);
        let cg = self.cgroup.as_ref().expect("just set");
        if let (false, Some(r)) = (self.existing, &self.resources) {
            cg.apply(r).map_err(|e| error_chain(&e))?;
        }
        let p = rustix::process::Pid::from_raw(pid).ok_or_else(|| "invalid pid".to_string())?;
        cg.add_pid(p).map_err(|e| error_chain(&e))
    }

    fn oom_killed(&self) -> bool {
        !self.existing
            && self
                .cgroup
                .as_ref()
                .is_some_and(|c| c.oom_killed().unwrap_or(false))
    }

    fn set_resources(&mut self, resources: Option<oci_spec::runtime::LinuxResources>) {
        self.resources = resources;
    }

    fn adopt(&mut self) {
        if self.cgroup.is_some() {
            return;
        }
        if let Some(m) = &self.manager {
            self.cgroup = m.open(&self.id).ok().filter(|c| c.exists());
        }
    }

    fn destroy(&mut self) {
        if self.existing {
            // the container's cgroup: its own shim removes it
            self.cgroup = None;
            return;
        }
        if let Some(c) = self.cgroup.take() {
            if let Err(e) = c.destroy() {
                let _ = writeln!(
                    io::stderr(),
                    "berth shim {}: removing cgroup: {}",
                    self.id,
                    error_chain(&e)
                );
            }
        }
    }
}

/// `berth shim CONFIG`: detaches from the daemon (double fork, new session), reports on
/// stdout, then runs the container. Returns the process exit code.
pub fn main(config_path: &Path) -> i32 {
    main_as(config_path, true, Vec::new())
}

/// `shim::main` in a process the zygote forked for it, which is detached already (the
/// zygote does not wait for it): no second fork. `clients`: connections the daemon made
/// ahead (see [`run`]).
pub fn main_forked(config_path: &Path, clients: Vec<OwnedFd>) -> i32 {
    main_as(config_path, false, clients)
}

fn main_as(config_path: &Path, detach: bool, clients: Vec<OwnedFd>) -> i32 {
    let config: ShimConfig = match std::fs::read(config_path)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(
                io::stdout(),
                "{}",
                serde_json::json!({"error": format!("reading {}: {e}", config_path.display()), "code": 125})
            );
            return 125;
        }
    };
    // the daemon waits for this process; the shim proper lives on in a grandchild
    match detach.then(|| crate::sys::clone_process(0)) {
        Some(Ok(crate::sys::Forked::Parent(_))) => return 0,
        None | Some(Ok(crate::sys::Forked::Child)) => {}
        Some(Err(e)) => {
            let _ = writeln!(
                io::stdout(),
                "{}",
                serde_json::json!({"error": format!("forking the shim: {e}"), "code": 125})
            );
            return 125;
        }
    }
    let _ = rustix::process::setsid();
    let _ = rustix::process::set_child_subreaper(Some(rustix::process::getpid()));
    // how tools find a container's shim, executed or forked by the zygote: the name
    // `berth-shim` and the container's state directory as working directory
    let _ = rustix::thread::set_name(c"berth-shim");
    let _ = std::env::set_current_dir(&config.dir);
    // our stdout is the daemon's report pipe: keep it as `ready`, point fd 1 at /dev/null
    let ready = match rustix::io::fcntl_dupfd_cloexec(rustix::stdio::stdout(), 3) {
        Ok(fd) => fd,
        Err(_) => return 125,
    };
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        use std::os::fd::AsRawFd;
        let _ = crate::sys::dup_onto(null.as_raw_fd(), 1);
    }
    // the limits come from the spec, which run() (or its create helper) reads
    let mut cgroup = HostCgroup::new(&config, None);
    match run(&config, &mut cgroup, ready, clients) {
        Ok(state) => state.exit_code.clamp(0, 255),
        Err(e) => {
            let _ = writeln!(io::stderr(), "berth shim {}: {e}", config.id);
            let state = ExitState {
                exit_code: 255,
                signal: None,
                oom_killed: false,
                finished_at: log::timestamp_now(),
                error: Some(e.to_string()),
            };
            let _ = write_atomic(
                &config.dir.join("exit.json"),
                &serde_json::to_vec(&state).unwrap_or_default(),
            );
            cgroup.destroy();
            255
        }
    }
}

/// A sealed in-memory copy of the running binary and a path that executes it.
///
/// The daemon runs every shim from this copy, so no process that ever enters a container's
/// namespaces is backed by the berth binary on disk: a container that opens
/// `/proc/PID/exe` of such a process for writing gets `EPERM` from the seals, and the file on
/// disk is never reachable (the CVE-2019-5736 class). Keep the fd open as long as the path is
/// used.
pub fn sealed_self_copy() -> io::Result<(OwnedFd, PathBuf)> {
    use std::os::fd::AsRawFd;
    let mut exe = std::fs::File::open("/proc/self/exe")?;
    let fd = rustix::fs::memfd_create(
        "berth-shim",
        rustix::fs::MemfdFlags::CLOEXEC | rustix::fs::MemfdFlags::ALLOW_SEALING,
    )?;
    let mut f = std::fs::File::from(fd);
    io::copy(&mut exe, &mut f)?;
    rustix::fs::fcntl_add_seals(
        &f,
        rustix::fs::SealFlags::SEAL
            | rustix::fs::SealFlags::SHRINK
            | rustix::fs::SealFlags::GROW
            | rustix::fs::SealFlags::WRITE,
    )?;
    let path = PathBuf::from(format!("/proc/{}/fd/{}", std::process::id(), f.as_raw_fd()));
    Ok((f.into(), path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_paths_fit_a_unix_address() {
        let short = Path::new("/var/lib/berth/containers/abc");
        assert_eq!(socket_path(short), short.join("shim.sock"));
        let long = PathBuf::from(format!(
            "/tmp/berth-demo.XXXXXX/root/containers/{}",
            "a".repeat(64)
        ));
        let p = socket_path(&long);
        assert!(
            p.starts_with("/run/berth/shim") && p.as_os_str().len() < 100,
            "{}",
            p.display()
        );
        assert_eq!(p, socket_path(&long), "stable");
        let other = PathBuf::from(format!(
            "/tmp/berth-demo.XXXXXX/root/containers/{}",
            "b".repeat(64)
        ));
        assert_ne!(p, socket_path(&other));
        let f = frame(1, b"hi");
        assert_eq!(f, vec![1, 0, 0, 0, 2, b'h', b'i']);
    }
}
