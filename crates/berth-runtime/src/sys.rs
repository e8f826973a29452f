//! The few raw syscalls the runtime needs that `rustix` does not wrap: clone with namespace
//! flags, execve, close_range, capability bounding/ambient sets, `_exit`, and the madvise/malloc
//! calls that keep an idle shim small.
//! Every function here is a thin wrapper returning `io::Error`; nothing else in the crate
//! calls `libc` for syscalls.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::io;

/// What `clone_process` returned in each process.
pub enum Forked {
    /// In the parent: the child's pid.
    Parent(i32),
    /// In the child.
    Child,
}

/// `clone(flags | SIGCHLD)` without a new stack: fork semantics plus new namespaces.
/// The caller must be single-threaded (the shim and the runtime CLI are), so the child may
/// allocate and take locks freely.
pub fn clone_process(namespace_flags: libc::c_int) -> io::Result<Forked> {
    // SAFETY: a raw clone with a null stack behaves like fork(2): the child continues on a
    // copy-on-write copy of this stack. The callers are single-threaded, so no lock held by
    // another thread can be left locked in the child.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (namespace_flags | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    match ret {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid as i32)),
    }
}

/// `execve(path, argv, envp)`; returns only on failure.
pub fn execve(path: &CStr, argv: &[CString], envp: &[CString]) -> io::Error {
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let mut envp_ptrs: Vec<*const libc::c_char> = envp.iter().map(|e| e.as_ptr()).collect();
    envp_ptrs.push(std::ptr::null());
    // SAFETY: all pointers come from live CStrings owned by the caller and both arrays are
    // NULL-terminated; execve only returns on failure.
    unsafe { libc::execve(path.as_ptr(), argv_ptrs.as_ptr(), envp_ptrs.as_ptr()) };
    io::Error::last_os_error()
}

/// Marks every fd from `first` up close-on-exec (`close_range(first, ~0, CLOSE_RANGE_CLOEXEC)`),
/// so nothing of the runtime leaks into the container (CVE-2024-21626 class).
pub fn cloexec_from(first: u32) -> io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range only changes fd flags of this process; no memory is passed.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, CLOSE_RANGE_CLOEXEC) };
    if ret == 0 {
        return Ok(());
    }
    // kernels before 5.11: walk /proc/self/fd
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd: &i32| *fd >= first as i32)
        .collect();
    for fd in fds {
        // SAFETY: setting FD_CLOEXEC on an fd number; a stale number just fails with EBADF.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(())
}

fn prctl(option: libc::c_int, arg2: libc::c_ulong, arg3: libc::c_ulong) -> io::Result<()> {
    // SAFETY: the prctl options used here take integer arguments only.
    let ret = unsafe { libc::prctl(option, arg2, arg3, 0 as libc::c_ulong, 0 as libc::c_ulong) };
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Drops capability number `cap` from the bounding set.
pub fn capbset_drop(cap: u32) -> io::Result<()> {
    match prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0) {
        // a capability this kernel does not know is not in the set anyway
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(()),
        r => r,
    }
}

/// Raises capability number `cap` in the ambient set.
pub fn ambient_raise(cap: u32) -> io::Result<()> {
    prctl(
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
        cap as libc::c_ulong,
    )
}

/// The highest capability number this kernel knows.
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// `setresuid`/`setresgid`-style identity change of this thread... and process: glibc's
/// setuid broadcasts to all threads, and this process is single-threaded here.
pub fn set_ids(uid: u32, gid: u32, groups: &[u32]) -> io::Result<()> {
    let groups: Vec<libc::gid_t> = groups.to_vec();
    // SAFETY: the pointer and length describe a live Vec of gid_t.
    if unsafe { libc::setgroups(groups.len(), groups.as_ptr()) } == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: integer arguments only.
    if unsafe { libc::setresgid(gid, gid, gid) } == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: integer arguments only.
    if unsafe { libc::setresuid(uid, uid, uid) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Ends the process at once, without running destructors or atexit handlers (for a failed
/// child after clone).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no Rust state.
    unsafe { libc::_exit(code) }
}

/// `umask(mask)`.
pub fn set_umask(mask: u32) {
    // SAFETY: umask cannot fail.
    unsafe { libc::umask(mask as libc::mode_t) };
}

/// `mount(2)` with raw flags (the runtime parses OCI mount options into `MS_*` bits itself).
pub fn mount(
    source: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: u64,
    data: Option<&CStr>,
) -> io::Result<()> {
    let p = |c: Option<&CStr>| c.map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: every pointer is either null or a live NUL-terminated string.
    let ret = unsafe {
        libc::mount(
            p(source),
            target.as_ptr(),
            p(fstype),
            flags as libc::c_ulong,
            p(data) as *const libc::c_void,
        )
    };
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `umount2(target, flags)`.
pub fn umount2(target: &CStr, flags: i32) -> io::Result<()> {
    // SAFETY: target is a live NUL-terminated string.
    if unsafe { libc::umount2(target.as_ptr(), flags) } == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `dup2(fd, target)`, also clearing close-on-exec when `fd == target`.
pub fn dup_onto(fd: std::os::fd::RawFd, target: std::os::fd::RawFd) -> io::Result<()> {
    if fd == target {
        // SAFETY: fcntl on an fd number the caller owns; integer arguments only.
        if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } == -1 {
            return Err(io::Error::last_os_error());
        }
        return Ok(());
    }
    // SAFETY: dup2 on fd numbers; the caller owns `fd` and intends to replace `target`.
    if unsafe { libc::dup2(fd, target) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `unshare(flags)` (the cgroup namespace, after the cgroup was joined).
pub fn unshare(flags: libc::c_int) -> io::Result<()> {
    // SAFETY: unshare takes an integer; this process is single-threaded, so no other thread's
    // view of the namespaces can be invalidated.
    if unsafe { libc::unshare(flags) } == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Puts the calling thread at the kernel's idle priority (`SCHED_IDLE`): it runs only on CPU
/// time no other thread wants. Best effort.
pub fn idle_priority() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid sched_param for the call; pid 0 is the calling thread.
    let _ = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
}

/// Returns the free memory at the top and inside the heap to the kernel (`malloc_trim(0)`), so
/// a long-lived idle process (the shim) does not keep what start-up allocated and freed.
pub fn trim_heap() {
    // SAFETY: malloc_trim only walks glibc's own heap structures; no pointer is passed.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Gives back the pages of this thread's stack mapping `[low, high)` that lie more than
/// `margin` bytes below this function's own frame: every live frame is above that point (the
/// stack grows down, and what runs from here on uses far less than `margin`), so nothing there is
/// in use; the kernel hands out zero pages if the stack grows into them again. Returns how many
/// bytes were dropped (0 when this frame is not inside `[low, high)`).
#[inline(never)]
pub fn release_stack_below(low: usize, high: usize, margin: usize) -> io::Result<usize> {
    let marker = 0u8;
    let here = std::hint::black_box(&marker) as *const u8 as usize;
    if here <= low || here >= high {
        return Ok(0);
    }
    let page = page_size();
    let end = here.saturating_sub(margin) & !(page - 1);
    if end <= low {
        return Ok(0);
    }
    // SAFETY: [low, end) is part of this thread's stack mapping below every live frame (see
    // above); MADV_DONTNEED only replaces those unused pages with fresh zero pages.
    if unsafe { libc::madvise(low as *mut libc::c_void, end - low, libc::MADV_DONTNEED) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(end - low)
}

/// Zaps the page-table entries of `[start, start + len)`, a read-only private file mapping
/// holding no anonymous page (see `shim::memory::clean_file_mappings`): the next access maps
/// the same file page again. The kernel frees page-table pages this leaves empty
/// (`CONFIG_PT_RECLAIM`, Linux 6.14 and later).
pub fn drop_file_pages(start: usize, len: usize) -> io::Result<()> {
    // SAFETY: the range is a whole mapping of this process that is read-only and holds only
    // file pages, so MADV_DONTNEED changes no byte anyone can read: every page comes back
    // from the file, unchanged, on its next access.
    if unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_DONTNEED) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The page size (`sysconf(_SC_PAGESIZE)`).
pub fn page_size() -> usize {
    // SAFETY: sysconf takes an integer and returns one.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 {
        size as usize
    } else {
        4096
    }
}

/// `personality(persona)` (the execution domain of this process and what it execs).
pub fn personality(persona: u64) -> io::Result<()> {
    // SAFETY: personality takes an integer and only changes this process's persona.
    if unsafe { libc::personality(persona as libc::c_ulong) } == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Blocks `signals` in this (single-threaded) process and returns a signalfd that reads them
/// (close-on-exec). Children forked afterwards inherit the mask: block only after cloning.
pub fn block_into_signalfd(signals: &[i32]) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: sigset_t is plain data; sigemptyset initialises it before any other use.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a live sigset_t owned by this frame.
    unsafe { libc::sigemptyset(&mut set) };
    for &s in signals {
        // SAFETY: as above; an invalid number only makes sigaddset fail.
        if unsafe { libc::sigaddset(&mut set, s) } == -1 {
            return Err(io::Error::last_os_error());
        }
    }
    // SAFETY: `set` is initialised; the old mask is not wanted (null).
    if unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) } == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: -1 asks for a new fd; `set` is initialised.
    let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC) };
    if fd == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: signalfd returned a new fd that nothing else owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// Sets the disposition of `SIGCHLD` (no handler, no flags).
fn set_sigchld(handler: libc::sighandler_t) -> io::Result<()> {
    // SAFETY: a zeroed sigaction with SIG_IGN or SIG_DFL installs no handler code
    let rc = unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = handler;
        libc::sigemptyset(&mut act.sa_mask);
        libc::sigaction(libc::SIGCHLD, &act, std::ptr::null_mut())
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Ignores `SIGCHLD`: the kernel reaps this process's children as they exit (no zombies, and
/// nothing for `wait` to collect).
pub fn ignore_sigchld() -> io::Result<()> {
    set_sigchld(libc::SIG_IGN)
}

/// Restores the default `SIGCHLD` (children stay zombies until waited for).
pub fn default_sigchld() -> io::Result<()> {
    set_sigchld(libc::SIG_DFL)
}

/// Reads `len` bytes from `r` straight into anonymous pages of their own, made read-only,
/// that live as long as the process and are shared, never copied, with the processes it
/// forks; no heap allocation. `None` if the kernel gives no memory or the read falls short.
pub fn read_into_own_pages(r: &mut impl io::Read, len: usize) -> Option<&'static [u8]> {
    if len == 0 {
        return Some(&[]);
    }
    // SAFETY: a new private anonymous mapping that nothing else refers to; it is filled
    // through the one mutable slice made here, then made read-only and never unmapped, so
    // the 'static shared slice handed out stays valid and unwritten
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            return None;
        }
        r.read_exact(std::slice::from_raw_parts_mut(p.cast::<u8>(), len))
            .ok()?;
        if libc::mprotect(p, len, libc::PROT_READ) != 0 {
            return None;
        }
        Some(std::slice::from_raw_parts(p.cast::<u8>(), len))
    }
}

/// Whether `fd` is readable right now (a poll that does not wait): a pidfd whose process
/// exited, a socket with a message waiting.
pub fn readable_now(fd: &impl std::os::fd::AsFd) -> io::Result<bool> {
    let mut fds = [rustix::event::PollFd::new(fd, rustix::event::PollFlags::IN)];
    let zero = rustix::time::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    Ok(rustix::event::poll(&mut fds, Some(&zero))? > 0)
}
