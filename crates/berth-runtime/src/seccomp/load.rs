//! The `seccomp(2)` call that installs a compiled filter. Neither rustix nor std wraps it.
#![expect(
    unsafe_code,
    reason = "seccomp(2) takes a raw pointer to the program and may return a new fd"
)]

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use super::{SeccompError, SockFilter};

/// `SECCOMP_FILTER_FLAG_TSYNC`
pub(crate) const FLAG_TSYNC: u32 = 1 << 0;
/// `SECCOMP_FILTER_FLAG_LOG`
pub(crate) const FLAG_LOG: u32 = 1 << 1;
/// `SECCOMP_FILTER_FLAG_SPEC_ALLOW`
pub(crate) const FLAG_SPEC_ALLOW: u32 = 1 << 2;
/// `SECCOMP_FILTER_FLAG_NEW_LISTENER`
pub(crate) const FLAG_NEW_LISTENER: u32 = 1 << 3;
/// `SECCOMP_FILTER_FLAG_TSYNC_ESRCH`
pub(crate) const FLAG_TSYNC_ESRCH: u32 = 1 << 4;
/// `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`
pub(crate) const FLAG_WAIT_KILLABLE_RECV: u32 = 1 << 5;

/// `struct sock_fprog`.
#[repr(C)]
struct SockFprog {
    len: u16,
    filter: *const SockFilter,
}

/// Installs `program` with `flags`; returns the listener fd when `flags` has `NEW_LISTENER`.
///
/// No allocation, no locks: callable in a child between `fork()` and `execve()`.
pub(super) fn install(program: &[SockFilter], flags: u32) -> Result<Option<OwnedFd>, SeccompError> {
    let len = u16::try_from(program.len()).map_err(|_| SeccompError::ProgramTooLong {
        len: program.len(),
        limit: super::bpf::MAX_INSTRUCTIONS,
    })?;
    let fprog = SockFprog {
        len,
        filter: program.as_ptr(),
    };
    // SAFETY: SECCOMP_SET_MODE_FILTER reads a `struct sock_fprog` from the third argument;
    // `fprog` is one, on this stack frame, and its `filter` points at `len` initialised
    // `SockFilter`s (layout-identical to `struct sock_filter`) borrowed for the whole call. The
    // kernel copies the program before returning and keeps no pointer into our memory. The
    // variadic arguments are passed as the `unsigned long`s the syscall ABI expects.
    let result = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::c_ulong::from(libc::SECCOMP_SET_MODE_FILTER),
            libc::c_ulong::from(flags),
            &fprog as *const SockFprog,
        )
    };
    if result < 0 {
        return Err(SeccompError::Load {
            flags,
            source: io::Error::last_os_error(),
        });
    }
    if flags & FLAG_NEW_LISTENER != 0 {
        let fd = RawFd::try_from(result).map_err(|_| SeccompError::Load {
            flags,
            source: io::Error::from(io::ErrorKind::InvalidData),
        })?;
        // SAFETY: with SECCOMP_FILTER_FLAG_NEW_LISTENER a successful seccomp(2) returns a new
        // file descriptor for the listener, open and owned by nobody else yet.
        return Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }));
    }
    if result > 0 {
        // TSYNC without TSYNC_ESRCH reports the thread that could not be synchronized.
        return Err(SeccompError::Tsync { thread: result });
    }
    Ok(None)
}
