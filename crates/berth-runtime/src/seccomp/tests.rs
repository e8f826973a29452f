//! Compiler and Docker-profile tests: compiled programs run through the BPF interpreter.

use std::collections::HashMap;

use oci_spec::runtime::{
    Arch as OciArch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompFilterFlag, LinuxSeccompOperator, LinuxSyscall,
};

use super::compiler::ret;
use super::interpreter::{run, validate, SeccompData};
use super::load;
use super::syscalls::{Abi, X32_SYSCALL_BIT};
use super::{compile_for, docker_default, Arch, SeccompError, SeccompProgram};

const EPERM: u32 = ret::ERRNO | 1;
const ENOSYS: u32 = ret::ERRNO | 38;

/// Docker's default capability set.
fn docker_caps() -> Vec<String> {
    [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FSETID",
        "CAP_FOWNER",
        "CAP_MKNOD",
        "CAP_NET_RAW",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETFCAP",
        "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
        "CAP_KILL",
        "CAP_AUDIT_WRITE",
    ]
    .iter()
    .map(|cap| (*cap).to_owned())
    .collect()
}

fn with_cap(cap: &str) -> Vec<String> {
    let mut caps = docker_caps();
    caps.push(cap.to_owned());
    caps
}

fn arch_of(abi: Abi) -> Arch {
    match abi {
        Abi::X86_64 | Abi::X32 | Abi::I386 => Arch::X86_64,
        Abi::Aarch64 | Abi::Arm => Arch::Aarch64,
    }
}

fn compiled(profile: &LinuxSeccomp, arch: Arch) -> SeccompProgram {
    let program = compile_for(profile, arch).expect("profile compiles");
    validate(program.instructions()).expect("kernel would accept the program");
    program
}

fn nr(abi: Abi, name: &str) -> u32 {
    abi.number(name)
        .unwrap_or_else(|| panic!("{name} on {}", abi.name()))
}

/// What the filter returns for syscall `name` with `args` on `abi`.
fn verdict(program: &SeccompProgram, abi: Abi, name: &str, args: &[u64]) -> u32 {
    verdict_nr(program, abi, nr(abi, name), args)
}

fn verdict_nr(program: &SeccompProgram, abi: Abi, number: u32, args: &[u64]) -> u32 {
    let mut data = SeccompData {
        nr: number,
        arch: abi.audit_arch(),
        instruction_pointer: 0x7fff_0000_1234,
        args: [0; 6],
    };
    data.args[..args.len()].copy_from_slice(args);
    run(program.instructions(), &data)
}

fn syscall(names: &[&str], action: LinuxSeccompAction, args: Vec<LinuxSeccompArg>) -> LinuxSyscall {
    let mut syscall = LinuxSyscall::default();
    syscall
        .set_names(names.iter().map(|name| (*name).to_owned()).collect())
        .set_action(action);
    if !args.is_empty() {
        syscall.set_args(Some(args));
    }
    syscall
}

fn arg(
    index: usize,
    op: LinuxSeccompOperator,
    value: u64,
    value_two: Option<u64>,
) -> LinuxSeccompArg {
    let builder = LinuxSeccompArgBuilder::default()
        .index(index)
        .op(op)
        .value(value);
    match value_two {
        Some(value_two) => builder.value_two(value_two),
        None => builder,
    }
    .build()
    .expect("all fields set")
}

fn profile(default: LinuxSeccompAction, syscalls: Vec<LinuxSyscall>) -> LinuxSeccomp {
    let mut profile = LinuxSeccomp::default();
    profile
        .set_default_action(default)
        .set_syscalls(Some(syscalls));
    profile
}

/// The profile's meaning, evaluated directly: first rule naming the syscall whose conditions
/// hold, else the default. Actions encoded by oci-spec, independently of the compiler.
struct Reference<'a> {
    profile: &'a LinuxSeccomp,
    abi: Abi,
    /// Syscall number → the profile's rules naming it, in order.
    rules: HashMap<u32, Vec<&'a LinuxSyscall>>,
}

impl<'a> Reference<'a> {
    fn new(profile: &'a LinuxSeccomp, abi: Abi) -> Self {
        let mut rules: HashMap<u32, Vec<&LinuxSyscall>> = HashMap::new();
        for syscall in profile.syscalls().iter().flatten() {
            let mut numbers: Vec<u32> = syscall
                .names()
                .iter()
                .filter_map(|name| abi.number(name))
                .collect();
            numbers.dedup();
            for number in numbers {
                rules.entry(number).or_default().push(syscall);
            }
        }
        Reference {
            profile,
            abi,
            rules,
        }
    }

    fn verdict(&self, number: u32, args: &[u64; 6]) -> u32 {
        for syscall in self.rules.get(&number).into_iter().flatten() {
            let holds = syscall.args().iter().flatten().all(|condition| {
                let (value, two) = (condition.value(), condition.value_two().unwrap_or(0));
                let argument = args[condition.index()];
                if self.abi.has_32bit_args() {
                    let low = |value: u64| value & 0xffff_ffff;
                    op_holds(condition.op(), low(argument), low(value), low(two))
                } else {
                    op_holds(condition.op(), argument, value, two)
                }
            });
            if holds {
                return syscall.action().as_u32(syscall.errno_ret());
            }
        }
        self.profile
            .default_action()
            .as_u32(self.profile.default_errno_ret())
    }
}

fn op_holds(op: LinuxSeccompOperator, argument: u64, value: u64, value_two: u64) -> bool {
    match op {
        LinuxSeccompOperator::ScmpCmpNe => argument != value,
        LinuxSeccompOperator::ScmpCmpLt => argument < value,
        LinuxSeccompOperator::ScmpCmpLe => argument <= value,
        LinuxSeccompOperator::ScmpCmpEq => argument == value,
        LinuxSeccompOperator::ScmpCmpGe => argument >= value,
        LinuxSeccompOperator::ScmpCmpGt => argument > value,
        LinuxSeccompOperator::ScmpCmpMaskedEq => argument & value == value_two,
    }
}

const ALL_OPS: [LinuxSeccompOperator; 7] = [
    LinuxSeccompOperator::ScmpCmpNe,
    LinuxSeccompOperator::ScmpCmpLt,
    LinuxSeccompOperator::ScmpCmpLe,
    LinuxSeccompOperator::ScmpCmpEq,
    LinuxSeccompOperator::ScmpCmpGe,
    LinuxSeccompOperator::ScmpCmpGt,
    LinuxSeccompOperator::ScmpCmpMaskedEq,
];

/// Values around the 32-bit boundary and the ends of the range.
const EDGES: [u64; 12] = [
    0,
    1,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_fffe,
    0xffff_ffff,
    0x1_0000_0000,
    0x1_0000_0001,
    0x1_ffff_ffff,
    0x8000_0000_0000_0000,
    u64::MAX - 1,
    u64::MAX,
];

#[test]
fn docker_profile_allows_and_denies() {
    for arch in [Arch::X86_64, Arch::Aarch64] {
        let native = match arch {
            Arch::X86_64 => Abi::X86_64,
            Arch::Aarch64 => Abi::Aarch64,
        };
        let program = compiled(&docker_default(&docker_caps(), arch), arch);
        for name in [
            "read",
            "write",
            "getpid",
            "openat",
            "exit_group",
            "execve",
            "futex",
        ] {
            assert_eq!(verdict(&program, native, name, &[]), ret::ALLOW, "{name}");
        }
        for name in [
            "mount",
            "umount2",
            "unshare",
            "setns",
            "keyctl",
            "add_key",
            "bpf",
            "reboot",
            "init_module",
            "ptrace",
            "kexec_load",
            "pivot_root",
            "swapon",
            "open_by_handle_at",
        ] {
            let expected = if name == "ptrace" { ret::ALLOW } else { EPERM };
            assert_eq!(verdict(&program, native, name, &[]), expected, "{name}");
        }
        // Numbers no table has.
        for number in [1000, 0x3fff_ffff] {
            assert_eq!(verdict_nr(&program, native, number, &[]), EPERM, "{number}");
        }
    }
}

#[test]
fn docker_profile_personality_filter() {
    for abi in [Abi::X86_64, Abi::Aarch64, Abi::I386, Abi::Arm, Abi::X32] {
        let program = compiled(&docker_default(&docker_caps(), arch_of(abi)), arch_of(abi));
        // Docker allows PER_LINUX, PER_LINUX32 (0x0008), UNAME26 and its 32-bit form, and query.
        for persona in [0, 0x0008, 0x2_0000, 0x2_0008, 0xffff_ffff] {
            assert_eq!(
                verdict(&program, abi, "personality", &[persona]),
                ret::ALLOW,
                "{} personality({persona:#x})",
                abi.name()
            );
        }
        // READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE, PER_BSD: denied.
        for persona in [0x0400_0000, 0x0004_0000, 0x0006] {
            assert_eq!(verdict(&program, abi, "personality", &[persona]), EPERM);
        }
        // The upper half counts on 64-bit ABIs; 32-bit ABIs only have the lower half.
        let high = verdict(&program, abi, "personality", &[0x1_0000_0000]);
        let expected = if abi.has_32bit_args() {
            ret::ALLOW
        } else {
            EPERM
        };
        assert_eq!(high, expected, "{} personality(1 << 32)", abi.name());
    }
}

#[test]
fn docker_profile_socket_families() {
    let program = compiled(&docker_default(&docker_caps(), Arch::X86_64), Arch::X86_64);
    for family in [
        libc::AF_UNIX,
        libc::AF_INET,
        libc::AF_INET6,
        libc::AF_NETLINK,
        37,
        39,
        41,
        45,
    ] {
        let family = family as u64;
        assert_eq!(
            verdict(&program, Abi::X86_64, "socket", &[family]),
            ret::ALLOW,
            "{family}"
        );
    }
    for family in [libc::AF_ALG, libc::AF_VSOCK] {
        let family = family as u64;
        assert_eq!(
            verdict(&program, Abi::X86_64, "socket", &[family]),
            EPERM,
            "{family}"
        );
    }
}

#[test]
fn docker_profile_clone_namespaces_need_sys_admin() {
    const CHILD: u64 = libc::SIGCHLD as u64;
    const THREAD: u64 = (libc::CLONE_VM
        | libc::CLONE_FS
        | libc::CLONE_FILES
        | libc::CLONE_SIGHAND
        | libc::CLONE_THREAD
        | libc::CLONE_SYSVSEM
        | libc::CLONE_SETTLS
        | libc::CLONE_PARENT_SETTID
        | libc::CLONE_CHILD_CLEARTID) as u64;
    let namespaces = [
        libc::CLONE_NEWNS,
        libc::CLONE_NEWUSER,
        libc::CLONE_NEWPID,
        libc::CLONE_NEWNET,
        libc::CLONE_NEWUTS,
        libc::CLONE_NEWIPC,
        libc::CLONE_NEWCGROUP,
    ];
    for abi in Abi::ALL {
        let arch = arch_of(abi);
        let plain = compiled(&docker_default(&docker_caps(), arch), arch);
        let admin = compiled(&docker_default(&with_cap("CAP_SYS_ADMIN"), arch), arch);
        for flags in [CHILD, THREAD] {
            assert_eq!(verdict(&plain, abi, "clone", &[flags]), ret::ALLOW);
            assert_eq!(verdict(&admin, abi, "clone", &[flags]), ret::ALLOW);
        }
        for namespace in namespaces {
            let flags = CHILD | namespace as u64;
            assert_eq!(verdict(&plain, abi, "clone", &[flags]), EPERM, "{flags:#x}");
            assert_eq!(
                verdict(&admin, abi, "clone", &[flags]),
                ret::ALLOW,
                "{flags:#x}"
            );
        }
        assert_eq!(verdict(&plain, abi, "clone3", &[]), ENOSYS);
        assert_eq!(verdict(&admin, abi, "clone3", &[]), ret::ALLOW);
        assert_eq!(verdict(&plain, abi, "unshare", &[]), EPERM);
        assert_eq!(verdict(&admin, abi, "unshare", &[]), ret::ALLOW);
        assert_eq!(verdict(&admin, abi, "mount", &[]), ret::ALLOW);
    }
}

#[test]
fn docker_profile_capability_blocks() {
    let cases = [
        ("CAP_SYS_PTRACE", "kcmp"),
        ("CAP_SYS_BOOT", "reboot"),
        ("CAP_SYS_MODULE", "finit_module"),
        ("CAP_SYS_PACCT", "acct"),
        ("CAP_SYS_RAWIO", "iopl"),
        ("CAP_SYS_TIME", "settimeofday"),
        ("CAP_SYS_TTY_CONFIG", "vhangup"),
        ("CAP_SYS_NICE", "mbind"),
        ("CAP_SYSLOG", "syslog"),
        ("CAP_BPF", "bpf"),
        ("CAP_PERFMON", "perf_event_open"),
        ("CAP_DAC_READ_SEARCH", "open_by_handle_at"),
    ];
    let plain = compiled(&docker_default(&docker_caps(), Arch::X86_64), Arch::X86_64);
    for (cap, name) in cases {
        let with = compiled(&docker_default(&with_cap(cap), Arch::X86_64), Arch::X86_64);
        assert_eq!(verdict(&plain, Abi::X86_64, name, &[]), EPERM, "{name}");
        assert_eq!(
            verdict(&with, Abi::X86_64, name, &[]),
            ret::ALLOW,
            "{name} with {cap}"
        );
    }
    // CAP_SYS_CHROOT is in Docker's default set.
    assert_eq!(verdict(&plain, Abi::X86_64, "chroot", &[]), ret::ALLOW);
    // Capability names are matched without regard to case or the CAP_ prefix.
    let lower = compiled(
        &docker_default(&["sys_admin".to_owned()], Arch::X86_64),
        Arch::X86_64,
    );
    assert_eq!(verdict(&lower, Abi::X86_64, "mount", &[]), ret::ALLOW);
}

#[test]
fn docker_profile_arch_specific_entries() {
    let x86 = docker_default(&docker_caps(), Arch::X86_64);
    let arm = docker_default(&docker_caps(), Arch::Aarch64);
    let names = |profile: &LinuxSeccomp| -> Vec<String> {
        profile
            .syscalls()
            .iter()
            .flatten()
            .flat_map(|syscall| syscall.names().clone())
            .collect()
    };
    let (x86_names, arm_names) = (names(&x86), names(&arm));
    for name in ["arch_prctl", "modify_ldt"] {
        assert!(x86_names.iter().any(|n| n == name));
        assert!(!arm_names.iter().any(|n| n == name));
    }
    for name in ["set_tls", "cacheflush", "arm_fadvise64_64"] {
        assert!(arm_names.iter().any(|n| n == name));
        assert!(!x86_names.iter().any(|n| n == name));
    }
    assert!(!x86_names
        .iter()
        .any(|n| n == "s390_runtime_instr" || n == "swapcontext"));
    assert_eq!(
        x86.architectures().as_deref(),
        Some(
            &[
                OciArch::ScmpArchX86_64,
                OciArch::ScmpArchX86,
                OciArch::ScmpArchX32
            ][..]
        )
    );
    assert_eq!(
        arm.architectures().as_deref(),
        Some(&[OciArch::ScmpArchAarch64, OciArch::ScmpArchArm][..])
    );
    assert_eq!(x86.default_action(), LinuxSeccompAction::ScmpActErrno);
    assert_eq!(x86.default_errno_ret(), Some(1));

    let program = compiled(&x86, Arch::X86_64);
    assert_eq!(
        verdict(&program, Abi::X86_64, "arch_prctl", &[]),
        ret::ALLOW
    );
    assert_eq!(verdict(&program, Abi::I386, "modify_ldt", &[]), ret::ALLOW);
    let program = compiled(&arm, Arch::Aarch64);
    assert_eq!(verdict(&program, Abi::Arm, "set_tls", &[]), ret::ALLOW);
    assert_eq!(
        verdict(&program, Abi::Arm, "arm_sync_file_range", &[]),
        ret::ALLOW
    );
}

#[test]
fn wrong_arch_is_killed() {
    let x86 = compiled(&docker_default(&docker_caps(), Arch::X86_64), Arch::X86_64);
    let arm = compiled(
        &docker_default(&docker_caps(), Arch::Aarch64),
        Arch::Aarch64,
    );
    for (program, foreign) in [
        (&x86, Abi::Aarch64),
        (&x86, Abi::Arm),
        (&arm, Abi::X86_64),
        (&arm, Abi::I386),
    ] {
        let data = SeccompData {
            nr: 0,
            arch: foreign.audit_arch(),
            ..SeccompData::default()
        };
        assert_eq!(run(program.instructions(), &data), ret::KILL_PROCESS);
    }
    for arch in [0, 0xdead_beef, 0x8000_003e] {
        let data = SeccompData {
            nr: 39,
            arch,
            ..SeccompData::default()
        };
        assert_eq!(run(x86.instructions(), &data), ret::KILL_PROCESS);
    }
}

#[test]
fn compat_abis_only_when_listed() {
    let mut listed = profile(
        LinuxSeccompAction::ScmpActErrno,
        vec![syscall(
            &["getpid", "read"],
            LinuxSeccompAction::ScmpActAllow,
            vec![],
        )],
    );
    let native_only = compiled(&listed, Arch::X86_64);
    // x32 numbers and i386 are killed when the profile does not list them.
    let x32_getpid = nr(Abi::X32, "getpid");
    assert_eq!(
        verdict_nr(&native_only, Abi::X32, x32_getpid, &[]),
        ret::KILL_PROCESS
    );
    assert_eq!(
        verdict(&native_only, Abi::I386, "getpid", &[]),
        ret::KILL_PROCESS
    );
    assert_eq!(
        verdict(&native_only, Abi::X86_64, "getpid", &[]),
        ret::ALLOW
    );

    listed.set_architectures(Some(vec![
        OciArch::ScmpArchX86_64,
        OciArch::ScmpArchX86,
        OciArch::ScmpArchX32,
        // Cannot occur on x86_64: ignored.
        OciArch::ScmpArchMips,
        OciArch::ScmpArchAarch64,
    ]));
    let all = compiled(&listed, Arch::X86_64);
    assert_eq!(verdict_nr(&all, Abi::X32, x32_getpid, &[]), ret::ALLOW);
    assert_eq!(
        verdict_nr(&all, Abi::X32, X32_SYSCALL_BIT | 9999, &[]),
        EPERM
    );
    assert_eq!(verdict(&all, Abi::I386, "getpid", &[]), ret::ALLOW);
    assert_eq!(verdict(&all, Abi::I386, "open", &[]), EPERM);
    assert_eq!(
        verdict(&all, Abi::Aarch64, "getpid", &[]),
        ret::KILL_PROCESS
    );

    let arm_listed = {
        let mut profile = listed.clone();
        profile.set_architectures(Some(vec![OciArch::ScmpArchNative, OciArch::ScmpArchArm]));
        compiled(&profile, Arch::Aarch64)
    };
    assert_eq!(verdict(&arm_listed, Abi::Arm, "getpid", &[]), ret::ALLOW);
    assert_eq!(
        verdict(&arm_listed, Abi::Aarch64, "getpid", &[]),
        ret::ALLOW
    );
    assert_eq!(
        verdict(&arm_listed, Abi::I386, "getpid", &[]),
        ret::KILL_PROCESS
    );
}

/// Every operator against values on both sides of the 32-bit boundary, on a 64-bit and a
/// 32-bit ABI, compared with Rust's own comparison of the values.
#[test]
fn every_operator_across_the_32_bit_boundary() {
    for op in ALL_OPS {
        for value in EDGES {
            let twos: &[Option<u64>] = if op == LinuxSeccompOperator::ScmpCmpMaskedEq {
                &[
                    None,
                    Some(0),
                    Some(1),
                    Some(0x1_0000_0000),
                    Some(0xffff_ffff),
                    Some(u64::MAX),
                ]
            } else {
                &[None]
            };
            for &value_two in twos {
                let profile = profile(
                    LinuxSeccompAction::ScmpActErrno,
                    vec![syscall(
                        &["read"],
                        LinuxSeccompAction::ScmpActAllow,
                        vec![arg(2, op, value, value_two)],
                    )],
                );
                for abi in [Abi::X86_64, Abi::Aarch64, Abi::I386] {
                    let mut profile = profile.clone();
                    profile.set_architectures(Some(vec![OciArch::ScmpArchX86]));
                    let program = compiled(&profile, arch_of(abi));
                    for argument in EDGES {
                        let args = [7, 7, argument, 7, 7, 7];
                        assert_eq!(
                            verdict(&program, abi, "read", &args),
                            Reference::new(&profile, abi).verdict(nr(abi, "read"), &args),
                            "{} {op:?} value {value:#x} value_two {value_two:?} arg {argument:#x}",
                            abi.name()
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn conditions_are_anded_and_rules_tried_in_order() {
    use LinuxSeccompOperator::{ScmpCmpEq as EQ, ScmpCmpGt as GT, ScmpCmpLt as LT};
    let mut errno_five = syscall(
        &["write"],
        LinuxSeccompAction::ScmpActErrno,
        vec![arg(0, EQ, 1, None), arg(1, EQ, 2, None)],
    );
    errno_five.set_errno_ret(Some(5));
    let profile = profile(
        LinuxSeccompAction::ScmpActKillProcess,
        vec![
            errno_five,
            syscall(
                &["write"],
                LinuxSeccompAction::ScmpActAllow,
                vec![arg(0, LT, 10, None)],
            ),
            syscall(
                &["write"],
                LinuxSeccompAction::ScmpActLog,
                vec![arg(5, GT, 1 << 40, None)],
            ),
            syscall(&["write"], LinuxSeccompAction::ScmpActTrap, vec![]),
            // Never reached: the rule above has no conditions.
            syscall(&["write"], LinuxSeccompAction::ScmpActAllow, vec![]),
        ],
    );
    let program = compiled(&profile, Arch::X86_64);
    let write = |args: &[u64]| verdict(&program, Abi::X86_64, "write", args);
    assert_eq!(write(&[1, 2]), ret::ERRNO | 5);
    assert_eq!(write(&[1, 3]), ret::ALLOW);
    assert_eq!(write(&[3, 2]), ret::ALLOW);
    assert_eq!(write(&[10, 2, 0, 0, 0, 1 << 41]), ret::LOG);
    assert_eq!(write(&[10, 2]), ret::TRAP);
    assert_eq!(
        verdict(&program, Abi::X86_64, "read", &[]),
        ret::KILL_PROCESS
    );
}

#[test]
fn every_action_is_encoded() {
    let cases: [(LinuxSeccompAction, Option<u32>, u32); 12] = [
        (LinuxSeccompAction::ScmpActKill, None, ret::KILL_THREAD),
        (
            LinuxSeccompAction::ScmpActKillThread,
            None,
            ret::KILL_THREAD,
        ),
        (
            LinuxSeccompAction::ScmpActKillProcess,
            None,
            ret::KILL_PROCESS,
        ),
        (LinuxSeccompAction::ScmpActTrap, None, ret::TRAP),
        (LinuxSeccompAction::ScmpActErrno, None, ret::ERRNO | 1),
        (LinuxSeccompAction::ScmpActErrno, Some(38), ret::ERRNO | 38),
        (LinuxSeccompAction::ScmpActErrno, Some(0), ret::ERRNO),
        (LinuxSeccompAction::ScmpActTrace, None, ret::TRACE | 1),
        (LinuxSeccompAction::ScmpActTrace, Some(77), ret::TRACE | 77),
        (LinuxSeccompAction::ScmpActLog, None, ret::LOG),
        (LinuxSeccompAction::ScmpActNotify, None, ret::USER_NOTIF),
        (LinuxSeccompAction::ScmpActAllow, None, ret::ALLOW),
    ];
    for (action, errno_ret, expected) in cases {
        let mut rule = syscall(&["getppid"], action, vec![]);
        rule.set_errno_ret(errno_ret);
        let mut profile = profile(LinuxSeccompAction::ScmpActErrno, vec![rule]);
        profile.set_default_errno_ret(Some(13));
        let program = compiled(&profile, Arch::X86_64);
        assert_eq!(
            verdict(&program, Abi::X86_64, "getppid", &[]),
            expected,
            "{action:?}"
        );
        assert_eq!(
            verdict(&program, Abi::X86_64, "getpid", &[]),
            ret::ERRNO | 13
        );
        assert_eq!(
            program.uses_notify(),
            action == LinuxSeccompAction::ScmpActNotify
        );
    }
}

#[test]
fn unknown_names_are_skipped() {
    let profile = profile(
        LinuxSeccompAction::ScmpActErrno,
        vec![syscall(
            &["no_such_syscall", "getpid", "chown32"],
            LinuxSeccompAction::ScmpActAllow,
            vec![],
        )],
    );
    let program = compiled(&profile, Arch::X86_64);
    assert_eq!(verdict(&program, Abi::X86_64, "getpid", &[]), ret::ALLOW);
}

#[test]
fn invalid_profiles_are_rejected() {
    let bad_index = profile(
        LinuxSeccompAction::ScmpActErrno,
        vec![syscall(
            &["read"],
            LinuxSeccompAction::ScmpActAllow,
            vec![arg(6, LinuxSeccompOperator::ScmpCmpEq, 0, None)],
        )],
    );
    assert!(matches!(
        compile_for(&bad_index, Arch::X86_64),
        Err(SeccompError::ArgIndexOutOfRange { index: 6, ref syscall }) if syscall == "read"
    ));

    let mut bad_errno = syscall(&["read"], LinuxSeccompAction::ScmpActErrno, vec![]);
    bad_errno.set_errno_ret(Some(70_000));
    let bad_errno = profile(LinuxSeccompAction::ScmpActAllow, vec![bad_errno]);
    assert!(matches!(
        compile_for(&bad_errno, Arch::X86_64),
        Err(SeccompError::ErrnoOutOfRange { value: 70_000, .. })
    ));

    let mut bad_default = profile(LinuxSeccompAction::ScmpActErrno, vec![]);
    bad_default.set_default_errno_ret(Some(1 << 16));
    assert!(matches!(
        compile_for(&bad_default, Arch::X86_64),
        Err(SeccompError::DefaultErrnoOutOfRange { value: 0x1_0000 })
    ));

    let notify_default = profile(LinuxSeccompAction::ScmpActNotify, vec![]);
    assert!(matches!(
        compile_for(&notify_default, Arch::Aarch64),
        Err(SeccompError::NotifyAsDefaultAction)
    ));

    // 2000 conditional rules of several instructions each cannot fit in 4096.
    let huge = profile(
        LinuxSeccompAction::ScmpActErrno,
        (0..2000)
            .map(|value| {
                syscall(
                    &["ioctl"],
                    LinuxSeccompAction::ScmpActAllow,
                    vec![arg(1, LinuxSeccompOperator::ScmpCmpEq, value, None)],
                )
            })
            .collect(),
    );
    let error = compile_for(&huge, Arch::X86_64).expect_err("too long");
    assert!(matches!(
        error,
        SeccompError::ProgramTooLong { limit: 4096, .. }
    ));
    assert!(error.to_string().contains("4096"));
}

#[test]
fn flags_follow_the_profile() {
    let mut notify = profile(
        LinuxSeccompAction::ScmpActAllow,
        vec![syscall(
            &["getppid"],
            LinuxSeccompAction::ScmpActNotify,
            vec![],
        )],
    );
    notify.set_flags(Some(vec![
        LinuxSeccompFilterFlag::SeccompFilterFlagTsync,
        LinuxSeccompFilterFlag::SeccompFilterFlagLog,
        LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow,
        LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv,
    ]));
    notify.set_listener_path(Some("/run/agent.sock".into()));
    notify.set_listener_metadata(Some("meta".to_owned()));
    let program = compiled(&notify, Arch::X86_64);
    assert_eq!(
        program.filter_flags(),
        load::FLAG_TSYNC
            | load::FLAG_LOG
            | load::FLAG_SPEC_ALLOW
            | load::FLAG_WAIT_KILLABLE_RECV
            | load::FLAG_NEW_LISTENER
            | load::FLAG_TSYNC_ESRCH
    );
    assert!(program.uses_notify());
    assert_eq!(
        program.listener_path(),
        Some(std::path::Path::new("/run/agent.sock"))
    );
    assert_eq!(program.listener_metadata(), Some("meta"));

    let mut plain = profile(LinuxSeccompAction::ScmpActAllow, vec![]);
    plain.set_flags(Some(vec![
        LinuxSeccompFilterFlag::SeccompFilterFlagTsync,
        LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv,
    ]));
    let program = compiled(&plain, Arch::X86_64);
    assert_eq!(program.filter_flags(), load::FLAG_TSYNC);
    assert!(!program.uses_notify());
}

/// The whole Docker profile, for every architecture and capability set, fits the kernel's
/// limit, passes its checks, and means what the profile says for every syscall number.
#[test]
fn docker_profile_compiles_and_matches_reference() {
    let all_caps: Vec<String> = [
        "CAP_SYS_ADMIN",
        "CAP_SYS_PTRACE",
        "CAP_SYS_BOOT",
        "CAP_SYS_MODULE",
        "CAP_SYS_PACCT",
        "CAP_SYS_RAWIO",
        "CAP_SYS_TIME",
        "CAP_SYS_TTY_CONFIG",
        "CAP_SYS_NICE",
        "CAP_SYSLOG",
        "CAP_BPF",
        "CAP_PERFMON",
        "CAP_DAC_READ_SEARCH",
    ]
    .iter()
    .map(|cap| (*cap).to_owned())
    .chain(docker_caps())
    .collect();
    for caps in [Vec::new(), docker_caps(), all_caps] {
        for arch in [Arch::X86_64, Arch::Aarch64] {
            let profile = docker_default(&caps, arch);
            let program = compiled(&profile, arch);
            assert!(program.len() < 4096, "{} instructions", program.len());
            for abi in Abi::ALL.into_iter().filter(|&abi| arch_of(abi) == arch) {
                let reference = Reference::new(&profile, abi);
                let numbers = abi
                    .entries()
                    .flat_map(|(_, number)| [number, number + 1])
                    .chain([0, X32_SYSCALL_BIT - 1, 0xffff_ffff]);
                for number in numbers {
                    if abi == Abi::X32 && number < X32_SYSCALL_BIT {
                        continue;
                    }
                    if abi == Abi::X86_64 && number >= X32_SYSCALL_BIT {
                        continue;
                    }
                    for args in [
                        [0; 6],
                        [0x8, 0, 0, 0, 0, 0],
                        [u64::MAX; 6],
                        [0x1000_0011, 1, 2, 3, 4, 5],
                    ] {
                        assert_eq!(
                            verdict_nr(&program, abi, number, &args),
                            reference.verdict(number, &args),
                            "{} nr {number:#x} args {args:x?}",
                            abi.name()
                        );
                    }
                }
            }
        }
    }
}

/// Docker's profile is big enough that the dispatch needs jumps beyond 255 instructions; the
/// program must still be valid and correct.
#[test]
fn long_programs_use_trampolines() {
    // One distinct errno per syscall: no two neighbours share a block, so every syscall is
    // its own leaf and the tree spans the whole table.
    let rules = Abi::X86_64
        .entries()
        .enumerate()
        .map(|(index, (name, _))| {
            let mut rule = syscall(
                &[name],
                LinuxSeccompAction::ScmpActErrno,
                vec![arg(0, LinuxSeccompOperator::ScmpCmpNe, 0, None)],
            );
            rule.set_errno_ret(Some(u32::try_from(index).expect("small") + 1));
            rule
        })
        .collect();
    let profile = profile(LinuxSeccompAction::ScmpActAllow, rules);
    let program = compiled(&profile, Arch::X86_64);
    let reference = Reference::new(&profile, Abi::X86_64);
    let ja = super::bpf::BPF_JMP | super::bpf::BPF_JA;
    assert!(program.instructions().iter().any(|insn| insn.code == ja));
    assert!(program.len() < 4096, "{} instructions", program.len());
    for (name, number) in Abi::X86_64.entries() {
        for args in [[0; 6], [1; 6]] {
            assert_eq!(
                verdict_nr(&program, Abi::X86_64, number, &args),
                reference.verdict(number, &args),
                "{name}"
            );
        }
    }
}

#[test]
fn a_precompiled_profile_is_taken_for_an_equal_one_read_back_from_json() {
    let Some(arch) = Arch::host() else { return };
    let default = docker_default(&docker_caps(), arch);
    let (image, json_len, flags) = super::precompiled_image(&default).expect("test setup");
    super::keep_precompiled(Box::leak(image.into_boxed_slice()), json_len, flags);
    // what the engine writes into config.json and the shim's helper reads back
    let read_back: LinuxSeccomp =
        serde_json::from_slice(&serde_json::to_vec(&default).expect("test setup"))
            .expect("test setup");
    assert_eq!(
        read_back, default,
        "the cache is keyed by equality after a JSON round trip"
    );
    let fresh = compile_for(&default, arch).expect("test setup");
    assert_eq!(super::compile(&read_back).expect("test setup"), fresh);
    // another profile is compiled for itself, not answered from the cache
    let mut other_caps = docker_caps();
    other_caps.push("CAP_SYS_ADMIN".into());
    let other = docker_default(&other_caps, arch);
    assert_ne!(other, default);
    assert_eq!(
        super::compile(&other).expect("test setup"),
        compile_for(&other, arch).expect("test setup")
    );
    assert_ne!(super::compile(&other).expect("test setup"), fresh);
}
