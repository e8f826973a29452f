//! The few libc calls the init needs, declared by hand (the crate has no dependencies, so it
//! builds as one static binary with a bare `rustc`). Linux x86_64/aarch64 with glibc or musl.
#![allow(unsafe_code)]

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

/// `sigset_t`: 1024 bits in glibc (musl's is 128 bytes as well).
#[repr(C)]
pub struct SigSet {
    bits: [u64; 16],
}

#[repr(C)]
struct Timespec {
    tv_sec: i64,
    tv_nsec: i64,
}

extern "C" {
    fn sigfillset(set: *mut SigSet) -> i32;
    fn sigemptyset(set: *mut SigSet) -> i32;
    fn sigdelset(set: *mut SigSet, sig: i32) -> i32;
    fn sigprocmask(how: i32, set: *const SigSet, old: *mut SigSet) -> i32;
    fn sigtimedwait(set: *const SigSet, info: *mut u8, timeout: *const Timespec) -> i32;
    fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
    fn kill(pid: i32, sig: i32) -> i32;
    fn getpid() -> i32;
    fn getpgrp() -> i32;
    fn tcsetpgrp(fd: i32, pgrp: i32) -> i32;
    fn signal(sig: i32, handler: usize) -> usize;
    fn prctl(option: i32, arg2: u64, arg3: u64, arg4: u64, arg5: u64) -> i32;
}

const SIG_BLOCK: i32 = 0;
const SIG_SETMASK: i32 = 2;
const SIG_DFL: usize = 0;
const SIG_IGN: usize = 1;
const WNOHANG: i32 = 1;
const PR_SET_CHILD_SUBREAPER: i32 = 36;
const SIGTTOU: i32 = 22;

impl SigSet {
    /// Every signal except `except`.
    pub fn all_but(except: &[i32]) -> SigSet {
        let mut set = SigSet { bits: [0; 16] };
        // SAFETY: `set` is a valid, writable sigset_t-sized buffer.
        unsafe { sigfillset(&mut set) };
        for sig in except {
            // SAFETY: as above; an invalid number only makes sigdelset return EINVAL.
            unsafe { sigdelset(&mut set, *sig) };
        }
        set
    }

    /// Blocks the signals of this set in the calling thread.
    pub fn block(&self) -> io::Result<()> {
        // SAFETY: `self` is an initialised sigset_t; the old mask is not requested.
        if unsafe { sigprocmask(SIG_BLOCK, self, std::ptr::null_mut()) } == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits up to `timeout_ms` for a (blocked) signal of this set; its number, or None.
    pub fn wait(&self, timeout_ms: u64) -> Option<i32> {
        let ts = Timespec {
            tv_sec: (timeout_ms / 1000) as i64,
            tv_nsec: ((timeout_ms % 1000) * 1_000_000) as i64,
        };
        // SAFETY: valid set and timespec; a null siginfo pointer is allowed.
        let sig = unsafe { sigtimedwait(self, std::ptr::null_mut(), &ts) };
        (sig > 0).then_some(sig)
    }
}

/// Reaps one exited child without blocking: its pid and raw wait status.
pub fn reap_any() -> Option<(i32, i32)> {
    let mut status = 0;
    // SAFETY: `status` is a valid out pointer.
    let pid = unsafe { waitpid(-1, &mut status, WNOHANG) };
    (pid > 0).then_some((pid, status))
}

/// Sends `sig` to `pid` (a negative pid names a process group).
pub fn send(pid: i32, sig: i32) -> io::Result<()> {
    // SAFETY: plain syscall with integer arguments.
    if unsafe { kill(pid, sig) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// This process's pid.
pub fn pid() -> i32 {
    // SAFETY: getpid cannot fail.
    unsafe { getpid() }
}

/// Makes this process the reaper of its orphaned descendants (for when it is not PID 1).
pub fn set_child_subreaper() -> io::Result<()> {
    // SAFETY: plain prctl with integer arguments.
    if unsafe { prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Spawns `cmd` in a process group of its own that takes over the terminal on stdin, if there
/// is one (so ^C on a `-t` container reaches the command, as with tini).
pub fn spawn_isolated(cmd: &mut Command) -> io::Result<Child> {
    cmd.process_group(0);
    // SAFETY: the closure runs in the forked child before execve and calls only
    // async-signal-safe functions (sigemptyset, sigprocmask, signal, tcsetpgrp, getpgrp); it
    // allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            // the init blocks nearly every signal; its command starts with none blocked
            let mut empty = SigSet { bits: [0; 16] };
            sigemptyset(&mut empty);
            if sigprocmask(SIG_SETMASK, &empty, std::ptr::null_mut()) == -1 {
                return Err(io::Error::last_os_error());
            }
            // tcsetpgrp from a background group would stop us with SIGTTOU
            signal(SIGTTOU, SIG_IGN);
            let ret = tcsetpgrp(0, getpgrp());
            let err = io::Error::last_os_error();
            signal(SIGTTOU, SIG_DFL);
            // ENOTTY (no terminal) and ENXIO (no controlling terminal) are fine
            if ret == -1 && !matches!(err.raw_os_error(), Some(25) | Some(6)) {
                return Err(err);
            }
            Ok(())
        })
    };
    cmd.spawn()
}
