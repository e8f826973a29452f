//! The shim zygote: a single-threaded `berth zygote` process, started once by the daemon from
//! the sealed copy of the binary, that forks a new shim for each container start.
//!
//! Executing the (large, dynamically linked) berth binary for every shim costs several
//! milliseconds of loading and relocating before the shim does anything; a fork of a process
//! that has done this once costs a fraction of a millisecond. The forked shims also share the
//! zygote's relocated pages copy-on-write, which keeps the memory of each idle shim small.
//! Shims forked here are the same as executed ones: the same `shim::main` runs with the same
//! stdout (the report pipe) and stderr (the shim log), and `/proc/PID/exe` is the same sealed
//! copy (CVE-2019-5736 class).
//!
//! Protocol over the `SOCK_SEQPACKET` socket that is the zygote's stdin: the daemon sends one
//! message per shim, its payload the path of the shim's `shim.json`, with two descriptors
//! attached (`SCM_RIGHTS`): the write end of the report pipe and the shim log, and up to
//! [`MAX_CLIENTS`] more: connections the shim serves as if they had come to its socket (the
//! daemon's attach streams and its `start`, said ahead, so the container starts the moment
//! it is ready instead of after a round trip through the daemon). The zygote
//! answers with the pid of the process it forked (4 bytes, native endian; negative: an errno).
//! End of file on the socket (the daemon went away) ends the zygote.
//!
//! Between requests the zygote keeps one spare network namespace, made by a short-lived
//! child cloned into a new one: the next shim it forks hands it to its container instead
//! of creating a network namespace (about 1 ms of the kernel's time) while the container
//! starts. Nothing but that one container ever uses a spare.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};

/// How many connected clients one shim request may carry besides its report pipe and log.
pub const MAX_CLIENTS: usize = 4;

/// The daemon's handle on its zygote.
pub struct Zygote {
    sock: OwnedFd,
    child: Child,
}

impl Zygote {
    /// Starts `EXE zygote` (EXE: the sealed copy of berth) with one end of a new socket pair as
    /// its stdin.
    pub fn spawn(exe: &Path) -> io::Result<Zygote> {
        let (ours, theirs) = rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )?;
        let child = Command::new(exe)
            .arg("zygote")
            .stdin(Stdio::from(theirs))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .spawn()?;
        Ok(Zygote { sock: ours, child })
    }

    /// Asks the zygote for a shim running `shim.json` at `config`, with `report` as its stdout
    /// and `log` as its stderr. Returns the pid of the shim. An error means the zygote is gone
    /// or broken: drop it and execute the shim instead.
    /// `clients`: connections (at most [`MAX_CLIENTS`]) the shim takes as connected to its
    /// socket, in this order, once the container is ready.
    pub fn spawn_shim(
        &mut self,
        config: &Path,
        report: OwnedFd,
        log: OwnedFd,
        clients: Vec<OwnedFd>,
    ) -> io::Result<i32> {
        use std::os::unix::ffi::OsStrExt;
        if clients.len() > MAX_CLIENTS {
            return Err(io::Error::other("too many clients for one shim"));
        }
        let mut fds = vec![report.as_fd(), log.as_fd()];
        fds.extend(clients.iter().map(|c| c.as_fd()));
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2 + MAX_CLIENTS))];
        let mut cmsg = SendAncillaryBuffer::new(&mut space);
        if !cmsg.push(SendAncillaryMessage::ScmRights(&fds)) {
            return Err(io::Error::other("control message buffer too small"));
        }
        let payload = config.as_os_str().as_bytes();
        rustix::net::sendmsg(
            &self.sock,
            &[io::IoSlice::new(payload)],
            &mut cmsg,
            SendFlags::NOSIGNAL,
        )?;
        drop((report, log, clients));
        let mut answer = [0u8; 4];
        let n = rustix::io::read(&self.sock, &mut answer)?;
        if n != 4 {
            return Err(io::Error::other("the shim zygote closed its socket"));
        }
        let pid = i32::from_ne_bytes(answer);
        if pid < 0 {
            return Err(io::Error::from_raw_os_error(-pid));
        }
        Ok(pid)
    }
}

impl Drop for Zygote {
    fn drop(&mut self) {
        // closing our end ends the zygote; reap it
        let _ = rustix::net::shutdown(&self.sock, rustix::net::Shutdown::Both);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `berth zygote`: serves shim forks until its stdin reaches end of file. Returns the exit code.
pub fn main() -> i32 {
    let _ = rustix::thread::set_name(c"berth-zygote");
    // the shims forked here are reaped by the kernel when they exit (see fork_shim)
    if crate::sys::ignore_sigchld().is_err() {
        return 1;
    }
    warm();
    refill_spare_netns();
    let sock = rustix::stdio::stdin();
    let mut buf = vec![0u8; 4096];
    loop {
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2 + MAX_CLIENTS))];
        let mut cmsg = RecvAncillaryBuffer::new(&mut space);
        let msg = match rustix::net::recvmsg(
            sock,
            &mut [io::IoSliceMut::new(&mut buf)],
            &mut cmsg,
            RecvFlags::CMSG_CLOEXEC,
        ) {
            Ok(m) => m,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return 1,
        };
        let mut fds: Vec<OwnedFd> = Vec::new();
        for m in cmsg.drain() {
            if let RecvAncillaryMessage::ScmRights(rights) = m {
                fds.extend(rights);
            }
        }
        if msg.bytes == 0 && fds.is_empty() {
            return 0; // the daemon closed the socket
        }
        let answer: i32 = if fds.len() < 2 || msg.flags.contains(ReturnFlags::CTRUNC) {
            -libc::EINVAL
        } else {
            let config = PathBuf::from(
                <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&buf[..msg.bytes]),
            );
            let clients = fds.split_off(2);
            let log = fds.pop().expect("two fds");
            let report = fds.pop().expect("two fds");
            fork_shim(&config, report, log, clients)
        };
        drop(fds);
        if rustix::io::write(sock, &answer.to_ne_bytes()).is_err() {
            return 1;
        }
        // the shim took the spare (its copy of it); make the next one while nobody waits:
        // with a request pending (many starts at once), the next shims make their own, in
        // parallel, instead of waiting here one after the other
        drop(take_spare_netns());
        if crate::sys::readable_now(&sock).is_ok_and(|pending| !pending) {
            refill_spare_netns();
        }
    }
}

/// The zygote's spare network namespace (see the module's documentation); a forked shim
/// has its own copy of the descriptor.
static SPARE_NETNS: std::sync::Mutex<Option<OwnedFd>> = std::sync::Mutex::new(None);

/// Takes this process's copy of the spare network namespace, if it has one.
pub(crate) fn take_spare_netns() -> Option<OwnedFd> {
    SPARE_NETNS.lock().unwrap_or_else(|p| p.into_inner()).take()
}

/// Makes a new spare network namespace: a child cloned into a new one holds it until the
/// zygote has opened it, then exits. No spare (a failure) means shims create their own.
fn refill_spare_netns() {
    let made = (|| -> io::Result<OwnedFd> {
        let (hold_r, hold_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        match crate::sys::clone_process(libc::CLONE_NEWNET)? {
            crate::sys::Forked::Child => {
                drop(hold_w);
                // until the zygote closes its end
                let _ = rustix::io::read(&hold_r, &mut [0u8; 1]);
                crate::sys::exit_now(0)
            }
            crate::sys::Forked::Parent(pid) => {
                drop(hold_r);
                let ns = rustix::fs::open(
                    format!("/proc/{pid}/ns/net"),
                    rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
                    rustix::fs::Mode::empty(),
                );
                drop(hold_w);
                Ok(ns?)
            }
        }
    })();
    *SPARE_NETNS.lock().unwrap_or_else(|p| p.into_inner()) = made.ok();
}

/// Does once, before any fork, what every shim would otherwise do for itself: the cgroup
/// layout, and Docker's default seccomp profile with Docker's default capabilities compiled
/// (what most containers run with; another profile is compiled by its own shim). The
/// compiling is done by a short-lived child that hands the program over through a pipe:
/// the zygote's heap stays as small as it was, so the shims forked from it (which share its
/// pages) do not end up with private copies of pages it dirtied.
fn warm() {
    crate::cgroup::CgroupManager::remember_layout(crate::cgroup::DEFAULT_ROOT, Path::new("/proc"));
    let Some(arch) = crate::seccomp::Arch::host() else {
        return;
    };
    let Ok((r, w)) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC) else {
        return;
    };
    match crate::sys::clone_process(0) {
        Ok(crate::sys::Forked::Child) => {
            drop(r);
            let caps: Vec<String> = crate::caps::DOCKER_DEFAULT
                .iter()
                .map(|c| c.to_string())
                .collect();
            let profile = crate::seccomp::docker_default(&caps, arch);
            if let Some((image, json_len, flags)) = crate::seccomp::precompiled_image(&profile) {
                let mut out = std::fs::File::from(w);
                let mut header = [0u8; 20];
                header[..8].copy_from_slice(&(image.len() as u64).to_ne_bytes());
                header[8..16].copy_from_slice(&(json_len as u64).to_ne_bytes());
                header[16..].copy_from_slice(&flags.to_ne_bytes());
                let _ = std::io::Write::write_all(&mut out, &header)
                    .and_then(|()| std::io::Write::write_all(&mut out, &image));
            }
            crate::sys::exit_now(0)
        }
        Ok(crate::sys::Forked::Parent(_)) => {
            drop(w);
            let mut r = std::fs::File::from(r);
            let mut header = [0u8; 20];
            if std::io::Read::read_exact(&mut r, &mut header).is_err() {
                return;
            }
            let word = |i: usize| u64::from_ne_bytes(header[i..i + 8].try_into().expect("8"));
            let (len, json_len) = (word(0) as usize, word(8) as usize);
            let flags = u32::from_ne_bytes(header[16..].try_into().expect("4"));
            if len > 1 << 20 {
                return;
            }
            if let Some(image) = crate::sys::read_into_own_pages(&mut r, len) {
                crate::seccomp::keep_precompiled(image, json_len, flags);
            }
        }
        Err(_) => {}
    }
}

/// Forks the shim proper: what `berth shim CONFIG` forks after reading its config. The
/// zygote ignores `SIGCHLD` (see [`main`]), so the kernel reaps its shims when they exit and
/// nothing waits for them here; one fork, not the executed shim's two. Returns the shim's
/// pid or a negative errno.
fn fork_shim(config: &Path, report: OwnedFd, log: OwnedFd, clients: Vec<OwnedFd>) -> i32 {
    match crate::sys::clone_process(0) {
        Ok(crate::sys::Forked::Child) => {
            // the shim waits for its container: SIGCHLD as every process has it by default
            // (an ignored SIGCHLD would also pass through execve to the container)
            if crate::sys::default_sigchld().is_err() {
                crate::sys::exit_now(125)
            }
            // stdin: nothing (not the daemon's socket); stdout: the report pipe; stderr: log
            let wired = std::fs::File::open("/dev/null").and_then(|null| {
                crate::sys::dup_onto(null.as_raw_fd(), 0)?;
                crate::sys::dup_onto(report.as_raw_fd(), 1)?;
                crate::sys::dup_onto(log.as_raw_fd(), 2)
            });
            drop((report, log));
            let code = match wired {
                Ok(()) => super::main_forked(config, clients),
                Err(_) => 125,
            };
            crate::sys::exit_now(code)
        }
        Ok(crate::sys::Forked::Parent(pid)) => {
            drop((report, log, clients));
            pid
        }
        Err(e) => -e.raw_os_error().unwrap_or(libc::EIO),
    }
}
