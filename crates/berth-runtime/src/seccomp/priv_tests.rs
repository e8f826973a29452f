//! Privileged tests: real filters loaded in forked children (root, so that without the filter
//! the denied calls would succeed).
//!
//! The test harness is multi-threaded, so a forked child may only make async-signal-safe
//! calls: everything that allocates (compiling the profile) happens before `fork()`.
#![expect(
    unsafe_code,
    reason = "fork, waitpid, prctl, ioctl and raw syscalls in forked children"
)]

use std::io;
use std::os::fd::AsRawFd;

use berth_testkit::priv_test;
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSyscall};

use super::{compile, docker_default, Arch, SeccompProgram};

/// Runs `child` in a forked process, returns its exit code. The child is killed by `SIGALRM`
/// after 10 seconds so a hang fails the test instead of stalling the suite.
fn in_child(child: impl FnOnce() -> i32) -> i32 {
    let status = wait_status_of(child);
    assert!(
        libc::WIFEXITED(status),
        "child did not exit normally: wait status {status:#x}"
    );
    libc::WEXITSTATUS(status)
}

/// Runs `child` in a forked process, returns its raw wait status.
fn wait_status_of(child: impl FnOnce() -> i32) -> i32 {
    // SAFETY: the child only runs `child`, which makes raw system calls and allocates nothing
    // (the program was compiled before), and leaves with `_exit`, so the locks other test
    // threads may hold at fork time are never needed in it.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: alarm(2) only sets a timer.
        unsafe { libc::alarm(10) };
        let code = child();
        // SAFETY: _exit(2) ends the child without running the parent's atexit handlers or
        // flushing its stdio buffers.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: `pid` is our child and `status` a valid place for its status.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid, "waitpid: {}", io::Error::last_os_error());
    status
}

/// Sets `no_new_privs`, which seccomp(2) needs from an unprivileged caller (the tests show the
/// order a runtime uses).
fn set_no_new_privs() -> bool {
    // SAFETY: prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) takes integers only.
    unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 }
}

/// Keeps a child the filter kills with `SIGSYS` from leaving a core file behind.
fn no_core_dump() -> bool {
    let none = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit(2) reads the `rlimit` it is given.
    unsafe { libc::setrlimit(libc::RLIMIT_CORE, &none) == 0 }
}

/// Whether the last call failed with `EPERM`.
fn failed_with_eperm(result: libc::c_long) -> bool {
    result == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

fn docker_profile(caps: &[&str]) -> LinuxSeccomp {
    let caps: Vec<String> = caps.iter().map(|cap| (*cap).to_owned()).collect();
    let arch = Arch::host().expect("tests run on x86_64 or aarch64");
    docker_default(&caps, arch)
}

fn docker_program(caps: &[&str]) -> SeccompProgram {
    compile(&docker_profile(caps)).expect("Docker's profile compiles")
}

priv_test! {
    fn docker_default_denies_namespaces_mounts_and_keyrings() {
        let program = docker_program(&["CAP_CHOWN", "CAP_SETUID", "CAP_SETGID", "CAP_SYS_CHROOT"]);
        let code = in_child(|| {
            if !set_no_new_privs() {
                return 100;
            }
            match program.load() {
                Ok(None) => {}
                _ => return 101,
            }
            let mut failures = 0;
            // SAFETY: unshare(2) takes flags only; CLONE_NEWNS would only affect this child.
            if !failed_with_eperm(libc::c_long::from(unsafe { libc::unshare(libc::CLONE_NEWNS) })) {
                failures |= 1;
            }
            // Paths that do not exist: without the filter this fails with ENOENT, not EPERM, and
            // mounts nothing.
            // SAFETY: every pointer is a NUL-terminated literal or null (data is optional).
            let mounted = unsafe {
                libc::mount(
                    c"/nonexistent-berth-seccomp-source".as_ptr(),
                    c"/nonexistent-berth-seccomp-target".as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND,
                    std::ptr::null(),
                )
            };
            if !failed_with_eperm(libc::c_long::from(mounted)) {
                failures |= 2;
            }
            // keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0): harmless if allowed.
            // SAFETY: keyctl with integer arguments only.
            let keyctl = unsafe { libc::syscall(libc::SYS_keyctl, 0, -3, 0) };
            if !failed_with_eperm(keyctl) {
                failures |= 4;
            }
            // SAFETY: getpid(2) has no arguments.
            let raw_pid = unsafe { libc::syscall(libc::SYS_getpid) };
            if raw_pid <= 0 || raw_pid != libc::c_long::from(std::process::id() as i32) {
                failures |= 8;
            }
            // clone(CLONE_NEWUSER | SIGCHLD): the masked-flags rule denies it.
            let flags = libc::c_long::from(libc::CLONE_NEWUSER | libc::SIGCHLD);
            // SAFETY: a fork-like clone (no CLONE_VM, null stack); a child, if one were made,
            // exits at once.
            let cloned = unsafe { libc::syscall(libc::SYS_clone, flags, 0, 0, 0, 0) };
            if cloned == 0 {
                // SAFETY: leaving the accidental grandchild at once.
                unsafe { libc::_exit(0) };
            }
            if !failed_with_eperm(cloned) {
                failures |= 16;
            }
            failures
        });
        assert_eq!(
            code, 0,
            "failure bits: 1 unshare, 2 mount, 4 keyctl, 8 getpid, 16 clone(CLONE_NEWUSER); \
             100 prctl, 101 load"
        );
    }
}

priv_test! {
    fn docker_default_with_sys_admin_allows_unshare() {
        let program = docker_program(&["CAP_SYS_ADMIN"]);
        let code = in_child(|| {
            if !set_no_new_privs() || program.load().is_err() {
                return 100;
            }
            // SAFETY: unshare(2) takes flags only; the new mount namespace is this child's.
            if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
                return 1;
            }
            0
        });
        assert_eq!(code, 0, "1: unshare failed; 100: prctl or load failed");
    }
}

priv_test! {
    fn notify_returns_a_listener_that_answers_for_the_child() {
        let mut rule = LinuxSyscall::default();
        rule.set_names(vec!["getppid".to_owned()])
            .set_action(LinuxSeccompAction::ScmpActNotify);
        let mut profile = LinuxSeccomp::default();
        profile
            .set_default_action(LinuxSeccompAction::ScmpActAllow)
            .set_syscalls(Some(vec![rule]));
        let program = compile(&profile).expect("profile compiles");
        assert!(program.uses_notify());

        let code = in_child(|| {
            if !set_no_new_privs() {
                return 100;
            }
            let listener = match program.load() {
                Ok(Some(listener)) => listener,
                _ => return 101,
            };
            let fd = listener.as_raw_fd();
            // SAFETY: F_GETFD on an fd we own only reads its flags.
            if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
                return 102;
            }
            // The grandchild inherits the filter; its getppid() waits for our answer.
            // SAFETY: as in `in_child`: the grandchild makes one raw syscall and `_exit`s.
            let pid = unsafe { libc::fork() };
            if pid < 0 {
                return 103;
            }
            if pid == 0 {
                // SAFETY: getppid has no arguments; _exit ends the grandchild.
                unsafe {
                    let answer = libc::syscall(libc::SYS_getppid);
                    libc::_exit(if answer == 4242 { 0 } else { 1 });
                }
            }
            let mut request = libc::seccomp_notif {
                id: 0,
                pid: 0,
                flags: 0,
                data: libc::seccomp_data {
                    nr: 0,
                    arch: 0,
                    instruction_pointer: 0,
                    args: [0; 6],
                },
            };
            // SAFETY: SECCOMP_IOCTL_NOTIF_RECV fills a zeroed `struct seccomp_notif`, which
            // `request` is.
            if unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_RECV, &mut request) } != 0 {
                return 104;
            }
            if i64::from(request.data.nr) != libc::SYS_getppid
                || request.pid != pid as u32
            {
                return 105;
            }
            let response = libc::seccomp_notif_resp {
                id: request.id,
                val: 4242,
                error: 0,
                flags: 0,
            };
            // SAFETY: SECCOMP_IOCTL_NOTIF_SEND reads a `struct seccomp_notif_resp`.
            if unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_SEND, &response) } != 0 {
                return 106;
            }
            let mut status = 0;
            // SAFETY: `pid` is our child and `status` a valid place for its status.
            if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
                return 107;
            }
            if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
                return 108;
            }
            0
        });
        assert_eq!(
            code, 0,
            "100 prctl, 101 load gave no listener, 102 listener fd invalid, 103 fork, \
             104 NOTIF_RECV, 105 wrong notification, 106 NOTIF_SEND, 107 waitpid, \
             108 the notified getppid did not return the supervisor's answer"
        );
    }
}

/// An i386 system call from this 64-bit process through `int 0x80`, which the kernel runs (and
/// seccomp sees) as `AUDIT_ARCH_I386`. Only the number is set: the calls tested take no
/// pointers or are refused before their arguments are read. Returns eax: the result or -errno.
#[cfg(target_arch = "x86_64")]
fn int80(number: i32) -> i32 {
    let result: i32;
    // SAFETY: `int 0x80` takes the number in eax and returns in eax; r8-r11 are declared
    // clobbered (older kernels zeroed them on this path). No memory of ours is handed over.
    unsafe {
        std::arch::asm!(
            "int 0x80",
            inlateout("eax") number => result,
            out("r8") _,
            out("r9") _,
            out("r10") _,
            out("r11") _,
        );
    }
    result
}

/// An x32 system call: the x86_64 `syscall` instruction with `__X32_SYSCALL_BIT` set.
#[cfg(target_arch = "x86_64")]
fn x32_syscall(number: libc::c_long) -> libc::c_long {
    // SAFETY: the calls tested take no arguments or are refused before reading them.
    unsafe { libc::syscall(0x4000_0000 | number) }
}

#[cfg(target_arch = "x86_64")]
priv_test! {
    fn x32_follows_the_profile_or_is_killed() {
        // Docker's profile lists x32: its numbers go through the same rules.
        let program = docker_program(&["CAP_CHOWN"]);
        let code = in_child(|| {
            if !set_no_new_privs() || program.load().is_err() {
                return 100;
            }
            let mut failures = 0;
            // Allowed: the pid, or ENOSYS where the kernel has no x32 ABI.
            let pid = x32_syscall(libc::SYS_getpid);
            if pid != libc::c_long::from(std::process::id() as i32)
                && !(pid == -1
                    && io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS))
            {
                failures |= 1;
            }
            if !failed_with_eperm(x32_syscall(libc::SYS_keyctl)) {
                failures |= 2;
            }
            if !failed_with_eperm(x32_syscall(libc::SYS_unshare)) {
                failures |= 4;
            }
            failures
        });
        assert_eq!(code, 0, "failure bits: 1 getpid, 2 keyctl, 4 unshare; 100 prctl or load");

        // Without x32 in the profile, an x32 number kills the process.
        let mut native_only = docker_profile(&["CAP_CHOWN"]);
        native_only.set_architectures(None);
        let program = compile(&native_only).expect("profile compiles");
        let status = wait_status_of(|| {
            if !no_core_dump() || !set_no_new_privs() || program.load().is_err() {
                return 100;
            }
            x32_syscall(libc::SYS_getpid);
            0
        });
        assert!(
            libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGSYS,
            "expected death by SIGSYS, got wait status {status:#x}"
        );
    }
}

#[cfg(target_arch = "x86_64")]
priv_test! {
    fn i386_follows_the_profile_or_is_killed() {
        const I386_MOUNT: i32 = 21;
        const I386_GETPID: i32 = 20;
        const I386_KEYCTL: i32 = 288;
        let probe = wait_status_of(|| {
            if int80(I386_GETPID) == std::process::id() as i32 { 0 } else { 1 }
        });
        assert!(
            libc::WIFEXITED(probe) && libc::WEXITSTATUS(probe) == 0,
            "this test needs the kernel's IA32 emulation (int 0x80), which is off here \
             (wait status {probe:#x})"
        );

        // Docker's profile lists x86: i386 numbers go through the same rules.
        let program = docker_program(&["CAP_CHOWN"]);
        let code = in_child(|| {
            if !set_no_new_privs() || program.load().is_err() {
                return 100;
            }
            let mut failures = 0;
            if int80(I386_GETPID) != std::process::id() as i32 {
                failures |= 1;
            }
            if int80(I386_MOUNT) != -libc::EPERM {
                failures |= 2;
            }
            if int80(I386_KEYCTL) != -libc::EPERM {
                failures |= 4;
            }
            failures
        });
        assert_eq!(code, 0, "failure bits: 1 getpid, 2 mount, 4 keyctl; 100 prctl or load");

        // Without x86 in the profile, the i386 ABI kills the process.
        let mut native_only = docker_profile(&["CAP_CHOWN"]);
        native_only.set_architectures(None);
        let program = compile(&native_only).expect("profile compiles");
        let status = wait_status_of(|| {
            if !no_core_dump() || !set_no_new_privs() || program.load().is_err() {
                return 100;
            }
            int80(I386_GETPID);
            0
        });
        assert!(
            libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGSYS,
            "expected death by SIGSYS, got wait status {status:#x}"
        );
    }
}
