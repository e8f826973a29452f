//! Docker's default seccomp profile (moby `profiles/seccomp/default.json`), as Rust data.
//!
//! The profile is an allowlist: `SCMP_ACT_ERRNO` with `EPERM` for everything not listed. Some
//! entries depend on the container's capabilities (`includes.caps`: added only when every
//! listed capability is held; `excludes.caps`: left out when any is held) or on the host
//! architecture (`includes.arches` / `excludes.arches`, in Go's `GOARCH` names), and some carry
//! argument filters (`personality` values, `socket` families, `clone` namespace flags).
//! [`docker_default`] evaluates those conditions the way moby's `setupSeccomp` does and returns
//! the resulting OCI profile.
//!
//! One entry of Docker's profile has `includes.minKernel: 4.8` (`ptrace`, `process_vm_readv`,
//! `process_vm_writev`: before 4.8 ptrace could bypass seccomp). berth needs a newer kernel for
//! other reasons, so that entry is always included.

use oci_spec::runtime::{
    Arch as OciArch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder,
    LinuxSeccompOperator, LinuxSyscall,
};

use super::Arch;
use LinuxSeccompOperator::{
    ScmpCmpEq as EQ, ScmpCmpGt as GT, ScmpCmpLt as LT, ScmpCmpMaskedEq as MASKED_EQ,
};

/// `EPERM`, Docker's `defaultErrnoRet`.
const EPERM: u32 = 1;
/// `ENOSYS`, what `clone3` fails with without `CAP_SYS_ADMIN`, so libc falls back to `clone`.
const ENOSYS: u32 = 38;

/// The namespace flags `clone` may not carry without `CAP_SYS_ADMIN` (0x7e02_0000).
const CLONE_NAMESPACE_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET) as u64;

/// `personality(2)` values Docker allows: `PER_LINUX`, `PER_LINUX32`, `UNAME26`,
/// `UNAME26 | PER_LINUX32`, and `0xffffffff` (query the current persona).
const PERSONALITIES: [u64; 5] = [0x0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff];

/// What a Docker entry does when it matches.
#[derive(Clone, Copy, Debug)]
enum Action {
    Allow,
    Errno(u32),
}

/// One argument condition of a Docker entry.
#[derive(Clone, Copy, Debug)]
struct Arg {
    index: usize,
    value: u64,
    op: LinuxSeccompOperator,
}

/// One `syscalls[]` entry of Docker's profile.
#[derive(Clone, Copy, Debug)]
struct Entry {
    names: &'static [&'static str],
    action: Action,
    args: &'static [Arg],
    /// Included only when every one of these capabilities is held.
    includes_caps: &'static [&'static str],
    /// Left out when any of these capabilities is held.
    excludes_caps: &'static [&'static str],
    /// Included only on these architectures (`GOARCH` names).
    includes_arches: &'static [&'static str],
    /// Left out on these architectures.
    excludes_arches: &'static [&'static str],
}

const ALLOW: Entry = Entry {
    names: &[],
    action: Action::Allow,
    args: &[],
    includes_caps: &[],
    excludes_caps: &[],
    includes_arches: &[],
    excludes_arches: &[],
};

const fn arg(index: usize, op: LinuxSeccompOperator, value: u64) -> Arg {
    Arg { index, value, op }
}

/// Syscalls every container may make.
const ALWAYS_ALLOWED: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "getxattrat",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listmount",
    "listxattr",
    "listxattrat",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "mseal",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "name_to_handle_at",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "removexattrat",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "riscv_hwprobe",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "setxattrat",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statmount",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "uretprobe",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
];

/// Docker's entries, in its order (rules for one syscall are tried in this order).
const ENTRIES: &[Entry] = &[
    Entry {
        names: ALWAYS_ALLOWED,
        ..ALLOW
    },
    // includes.minKernel 4.8, see the module comment.
    Entry {
        names: &["process_vm_readv", "process_vm_writev", "ptrace"],
        ..ALLOW
    },
    // Every address family but AF_ALG (38) and AF_VSOCK (40).
    Entry {
        names: &["socket"],
        args: &[arg(0, LT, libc::AF_ALG as u64)],
        ..ALLOW
    },
    Entry {
        names: &["socket"],
        args: &[arg(0, EQ, libc::AF_NFC as u64)],
        ..ALLOW
    },
    Entry {
        names: &["socket"],
        args: &[arg(0, GT, libc::AF_VSOCK as u64)],
        ..ALLOW
    },
    Entry {
        names: &["personality"],
        args: &[arg(0, EQ, PERSONALITIES[0])],
        ..ALLOW
    },
    Entry {
        names: &["personality"],
        args: &[arg(0, EQ, PERSONALITIES[1])],
        ..ALLOW
    },
    Entry {
        names: &["personality"],
        args: &[arg(0, EQ, PERSONALITIES[2])],
        ..ALLOW
    },
    Entry {
        names: &["personality"],
        args: &[arg(0, EQ, PERSONALITIES[3])],
        ..ALLOW
    },
    Entry {
        names: &["personality"],
        args: &[arg(0, EQ, PERSONALITIES[4])],
        ..ALLOW
    },
    Entry {
        names: &["sync_file_range2", "swapcontext"],
        includes_arches: &["ppc64le"],
        ..ALLOW
    },
    Entry {
        names: &[
            "arm_fadvise64_64",
            "arm_sync_file_range",
            "sync_file_range2",
            "breakpoint",
            "cacheflush",
            "set_tls",
        ],
        includes_arches: &["arm", "arm64"],
        ..ALLOW
    },
    Entry {
        names: &["arch_prctl"],
        includes_arches: &["amd64", "x32"],
        ..ALLOW
    },
    Entry {
        names: &["modify_ldt"],
        includes_arches: &["amd64", "x32", "x86"],
        ..ALLOW
    },
    Entry {
        names: &[
            "s390_pci_mmio_read",
            "s390_pci_mmio_write",
            "s390_runtime_instr",
        ],
        includes_arches: &["s390", "s390x"],
        ..ALLOW
    },
    Entry {
        names: &["riscv_flush_icache"],
        includes_arches: &["riscv64"],
        ..ALLOW
    },
    Entry {
        names: &["open_by_handle_at"],
        includes_caps: &["CAP_DAC_READ_SEARCH"],
        ..ALLOW
    },
    Entry {
        names: &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "lsm_get_self_attr",
            "lsm_list_modules",
            "lsm_set_self_attr",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
        includes_caps: &["CAP_SYS_ADMIN"],
        ..ALLOW
    },
    // clone without namespace flags (s390 passes the flags second).
    Entry {
        names: &["clone"],
        args: &[arg(0, MASKED_EQ, CLONE_NAMESPACE_FLAGS)],
        excludes_caps: &["CAP_SYS_ADMIN"],
        excludes_arches: &["s390", "s390x"],
        ..ALLOW
    },
    Entry {
        names: &["clone"],
        args: &[arg(1, MASKED_EQ, CLONE_NAMESPACE_FLAGS)],
        includes_arches: &["s390", "s390x"],
        excludes_caps: &["CAP_SYS_ADMIN"],
        ..ALLOW
    },
    // clone3's flags are behind a pointer: fail with ENOSYS so libc falls back to clone.
    Entry {
        names: &["clone3"],
        action: Action::Errno(ENOSYS),
        excludes_caps: &["CAP_SYS_ADMIN"],
        ..ALLOW
    },
    Entry {
        names: &["reboot"],
        includes_caps: &["CAP_SYS_BOOT"],
        ..ALLOW
    },
    Entry {
        names: &["chroot"],
        includes_caps: &["CAP_SYS_CHROOT"],
        ..ALLOW
    },
    Entry {
        names: &["delete_module", "init_module", "finit_module"],
        includes_caps: &["CAP_SYS_MODULE"],
        ..ALLOW
    },
    Entry {
        names: &["acct"],
        includes_caps: &["CAP_SYS_PACCT"],
        ..ALLOW
    },
    Entry {
        names: &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
        includes_caps: &["CAP_SYS_PTRACE"],
        ..ALLOW
    },
    Entry {
        names: &["iopl", "ioperm"],
        includes_caps: &["CAP_SYS_RAWIO"],
        ..ALLOW
    },
    Entry {
        names: &["settimeofday", "stime", "clock_settime", "clock_settime64"],
        includes_caps: &["CAP_SYS_TIME"],
        ..ALLOW
    },
    Entry {
        names: &["vhangup"],
        includes_caps: &["CAP_SYS_TTY_CONFIG"],
        ..ALLOW
    },
    Entry {
        names: &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
        includes_caps: &["CAP_SYS_NICE"],
        ..ALLOW
    },
    Entry {
        names: &["syslog"],
        includes_caps: &["CAP_SYSLOG"],
        ..ALLOW
    },
    Entry {
        names: &["bpf"],
        includes_caps: &["CAP_BPF"],
        ..ALLOW
    },
    Entry {
        names: &["perf_event_open"],
        includes_caps: &["CAP_PERFMON"],
        ..ALLOW
    },
];

/// Docker's default seccomp profile for a container holding `caps` on a host of `arch`.
///
/// `caps` are capability names such as `"CAP_SYS_ADMIN"` (the `CAP_` prefix and case are
/// optional). The profile's architectures are the host's native one and its compat ABIs, as
/// Docker's `archMap` gives them: x86_64 with x86 and x32, aarch64 with arm.
pub fn docker_default(caps: &[String], arch: Arch) -> LinuxSeccomp {
    let goarch = arch.docker_name();
    let syscalls = ENTRIES
        .iter()
        .filter(|entry| applies(entry, caps, goarch))
        .map(|entry| {
            let mut syscall = LinuxSyscall::default();
            syscall.set_names(entry.names.iter().map(|name| (*name).to_owned()).collect());
            match entry.action {
                Action::Allow => syscall.set_action(LinuxSeccompAction::ScmpActAllow),
                Action::Errno(errno) => syscall
                    .set_action(LinuxSeccompAction::ScmpActErrno)
                    .set_errno_ret(Some(errno)),
            };
            if !entry.args.is_empty() {
                let args = entry.args.iter().map(|condition| {
                    LinuxSeccompArgBuilder::default()
                        .index(condition.index)
                        .value(condition.value)
                        .op(condition.op)
                        .build()
                        .expect("every LinuxSeccompArg field has a default, so build cannot fail")
                });
                syscall.set_args(Some(args.collect()));
            }
            syscall
        })
        .collect();

    let architectures = match arch {
        Arch::X86_64 => vec![
            OciArch::ScmpArchX86_64,
            OciArch::ScmpArchX86,
            OciArch::ScmpArchX32,
        ],
        Arch::Aarch64 => vec![OciArch::ScmpArchAarch64, OciArch::ScmpArchArm],
    };
    let mut profile = LinuxSeccomp::default();
    profile
        .set_default_action(LinuxSeccompAction::ScmpActErrno)
        .set_default_errno_ret(Some(EPERM))
        .set_architectures(Some(architectures))
        .set_syscalls(Some(syscalls));
    profile
}

/// Whether Docker includes `entry` for this container.
fn applies(entry: &Entry, caps: &[String], goarch: &str) -> bool {
    (entry.includes_arches.is_empty() || entry.includes_arches.contains(&goarch))
        && !entry.excludes_arches.contains(&goarch)
        && entry.includes_caps.iter().all(|cap| has_cap(caps, cap))
        && !entry.excludes_caps.iter().any(|cap| has_cap(caps, cap))
}

/// Whether `caps` holds `wanted` (`CAP_` followed by upper-case letters).
fn has_cap(caps: &[String], wanted: &str) -> bool {
    let wanted = wanted.strip_prefix("CAP_").unwrap_or(wanted);
    caps.iter().any(|cap| {
        let cap = cap.trim();
        let bare = match cap.get(..4) {
            Some(prefix) if prefix.eq_ignore_ascii_case("cap_") => &cap[4..],
            _ => cap,
        };
        bare.eq_ignore_ascii_case(wanted)
    })
}
