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
//! attached (`SCM_RIGHTS`): the write end of the report pipe and the shim log. The zygote
//! answers with the pid of the process it forked (4 bytes, native endian; negative: an errno).
//! End of file on the socket (the daemon went away) ends the zygote.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};

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
    /// and `log` as its stderr. Returns the pid of the forked process (which forks the shim
    /// proper and exits, as an executed shim does). An error means the zygote is gone or broken:
    /// drop it and execute the shim instead.
    pub fn spawn_shim(&mut self, config: &Path, report: OwnedFd, log: OwnedFd) -> io::Result<i32> {
        use std::os::unix::ffi::OsStrExt;
        let fds = [report.as_fd(), log.as_fd()];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
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
        drop((report, log));
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
    let sock = rustix::stdio::stdin();
    let mut buf = vec![0u8; 4096];
    loop {
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
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
        let answer: i32 = if fds.len() != 2 || msg.flags.contains(ReturnFlags::CTRUNC) {
            -libc::EINVAL
        } else {
            let config = PathBuf::from(
                <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&buf[..msg.bytes]),
            );
            let log = fds.pop().expect("two fds");
            let report = fds.pop().expect("two fds");
            fork_shim(&config, report, log)
        };
        drop(fds);
        if rustix::io::write(sock, &answer.to_ne_bytes()).is_err() {
            return 1;
        }
    }
}

/// Forks a process that becomes what `berth shim CONFIG` would have been; waits for it (it
/// exits as soon as it has forked the shim proper). Returns its pid or a negative errno.
fn fork_shim(config: &Path, report: OwnedFd, log: OwnedFd) -> i32 {
    match crate::sys::clone_process(0) {
        Ok(crate::sys::Forked::Child) => {
            // stdin: nothing (not the daemon's socket); stdout: the report pipe; stderr: log
            let wired = std::fs::File::open("/dev/null").and_then(|null| {
                crate::sys::dup_onto(null.as_raw_fd(), 0)?;
                crate::sys::dup_onto(report.as_raw_fd(), 1)?;
                crate::sys::dup_onto(log.as_raw_fd(), 2)
            });
            drop((report, log));
            let code = match wired {
                Ok(()) => super::main(config),
                Err(_) => 125,
            };
            crate::sys::exit_now(code)
        }
        Ok(crate::sys::Forked::Parent(pid)) => {
            drop((report, log));
            if let Some(p) = rustix::process::Pid::from_raw(pid) {
                while let Err(rustix::io::Errno::INTR) =
                    rustix::process::waitpid(Some(p), rustix::process::WaitOptions::empty())
                {
                }
            }
            pid
        }
        Err(e) => -e.raw_os_error().unwrap_or(libc::EIO),
    }
}
