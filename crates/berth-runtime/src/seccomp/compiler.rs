//! OCI `LinuxSeccomp` → classic BPF.
//!
//! Program layout:
//!
//! ```text
//!   ld  arch
//!   jeq <native audit arch>  → native section
//!   jeq <compat audit arch>  → compat section        (one per listed compat ABI)
//!   ret KILL_PROCESS                                  (bad arch)
//! section:
//!   ld  nr
//!   [x86_64 only] jge X32_SYSCALL_BIT → x32 dispatch, or KILL_PROCESS when x32 is not listed
//!   binary search over ranges of syscall numbers; each leaf runs the rules of its syscall
//!   in order and returns
//! ```
//!
//! Each section maps every syscall number to a *block*: the ordered rules for that number, cut
//! after the first rule without conditions, ending in the default action. Neighbouring numbers
//! with equal blocks (most often plain ALLOW, or the default action for numbers the profile
//! does not name) form one range, and a balanced tree of `jge` splits finds the range in
//! `log2(ranges)` steps. Far jumps are left to the assembler's trampolines.

use std::collections::BTreeMap;

use oci_spec::runtime::{
    Arch as OciArch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};

use super::bpf::{Assembler, Cmp, Label, SockFilter, Target, MAX_INSTRUCTIONS};
use super::load;
use super::syscalls::{Abi, X32_SYSCALL_BIT};
use super::{Arch, SeccompError, SeccompProgram};

/// `SECCOMP_RET_*` actions.
pub(crate) mod ret {
    /// Kill the whole process.
    pub(crate) const KILL_PROCESS: u32 = 0x8000_0000;
    /// Kill the calling thread.
    pub(crate) const KILL_THREAD: u32 = 0x0000_0000;
    /// Send `SIGSYS`.
    pub(crate) const TRAP: u32 = 0x0003_0000;
    /// Fail with the errno in the data bits.
    pub(crate) const ERRNO: u32 = 0x0005_0000;
    /// Ask the user-notification listener.
    pub(crate) const USER_NOTIF: u32 = 0x7fc0_0000;
    /// Notify a ptrace tracer, message in the data bits.
    pub(crate) const TRACE: u32 = 0x7ff0_0000;
    /// Allow and log.
    pub(crate) const LOG: u32 = 0x7ffc_0000;
    /// Allow.
    pub(crate) const ALLOW: u32 = 0x7fff_0000;
}

/// Offsets in `struct seccomp_data`.
const OFFSET_NR: u32 = 0;
const OFFSET_ARCH: u32 = 4;
const OFFSET_ARGS: u32 = 16;

/// `EPERM`, the errno of `SCMP_ACT_ERRNO` and the message of `SCMP_ACT_TRACE` when the profile
/// gives none (runc's choice).
const DEFAULT_ERRNO: u32 = 1;

/// A profile compiled ahead of time (see [`keep_precompiled`]): its compact JSON, the program's
/// instructions (8 bytes each, native endian) and flags, in pages of their own that nothing
/// writes again. The zygote's heap is left as it was, so the shims it forks do not copy the
/// pages they share with it as their own allocations land next to the zygote's (an idle
/// shim's private memory counts for every container). The shim zygote keeps Docker's
/// default profile this way: every container that runs with it takes the program instead of
/// compiling it again (about 0.6 ms of each start here).
struct Precompiled {
    json: &'static [u8],
    instructions: &'static [u8],
    flags: u32,
}

static PRECOMPILED: std::sync::OnceLock<Precompiled> = std::sync::OnceLock::new();

/// `profile` compiled, as [`keep_precompiled`] takes it: the profile's compact JSON followed
/// by the instructions (8 bytes each, native endian), the length of the JSON, the flags.
/// The shim zygote has a short-lived child make this, so that none of the compiler's
/// allocations touch the zygote's heap.
pub fn precompiled_image(profile: &LinuxSeccomp) -> Option<(Vec<u8>, usize, u32)> {
    let (Ok(mut image), Ok(program)) = (serde_json::to_vec(profile), compile(profile)) else {
        return None;
    };
    if program.listener_path.is_some() || program.listener_metadata.is_some() {
        return None;
    }
    let json_len = image.len();
    for i in &program.instructions {
        image.extend_from_slice(&i.code.to_ne_bytes());
        image.extend_from_slice(&[i.jt, i.jf]);
        image.extend_from_slice(&i.k.to_ne_bytes());
    }
    Some((image, json_len, program.flags))
}

/// Keeps a [`precompiled_image`] (in memory that lives as long as the process) for every
/// later [`compile`] of an equal profile. Ignored after the first, or if malformed.
pub fn keep_precompiled(image: &'static [u8], json_len: usize, flags: u32) {
    if json_len > image.len() || !(image.len() - json_len).is_multiple_of(8) {
        return;
    }
    let (json, instructions) = image.split_at(json_len);
    let _ = PRECOMPILED.set(Precompiled {
        json,
        instructions,
        flags,
    });
}

/// Compiles `profile` for the architecture this binary runs on (or takes the program of an
/// equal profile compiled ahead of time, see [`keep_precompiled`]).
pub fn compile(profile: &LinuxSeccomp) -> Result<SeccompProgram, SeccompError> {
    if let Some(known) = PRECOMPILED.get() {
        if serde_json::to_vec(profile).is_ok_and(|json| json == known.json) {
            return Ok(SeccompProgram {
                instructions: known
                    .instructions
                    .chunks_exact(8)
                    .map(|b| SockFilter {
                        code: u16::from_ne_bytes([b[0], b[1]]),
                        jt: b[2],
                        jf: b[3],
                        k: u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
                    })
                    .collect(),
                flags: known.flags,
                listener_path: None,
                listener_metadata: None,
            });
        }
    }
    compile_for(
        profile,
        Arch::host().ok_or(SeccompError::UnsupportedHostArch)?,
    )
}

/// Compiles `profile` for a host of architecture `arch`.
///
/// Compat ABIs: on x86_64 hosts, i386 (`SCMP_ARCH_X86`) and x32 (`SCMP_ARCH_X32`) have full
/// tables and are filtered by the same rules as the native ABI when the profile lists them; on
/// aarch64 hosts the same holds for 32-bit ARM (`SCMP_ARCH_ARM`). A compat ABI the profile does
/// not list is killed (`SECCOMP_RET_KILL_PROCESS`), as is any other `seccomp_data.arch`.
pub fn compile_for(profile: &LinuxSeccomp, arch: Arch) -> Result<SeccompProgram, SeccompError> {
    let policy = Policy::from_profile(profile)?;
    let abis = abis(profile, arch);

    let mut asm = Assembler::new();
    asm.load(OFFSET_ARCH);
    let mut sections = Vec::new();
    for audit_arch in audit_arches(&abis) {
        let label = asm.label();
        asm.jump(Cmp::Eq, audit_arch, Target::Label(label), Target::Next);
        sections.push((audit_arch, label));
    }
    asm.ret(ret::KILL_PROCESS);

    for (audit_arch, label) in sections {
        asm.bind(label);
        asm.load(OFFSET_NR);
        if audit_arch == Abi::X86_64.audit_arch() {
            // x32 shares x86_64's audit arch and is told apart by the number.
            let native = asm.label();
            asm.jump(
                Cmp::Ge,
                X32_SYSCALL_BIT,
                Target::Next,
                Target::Label(native),
            );
            if abis.contains(&Abi::X32) {
                emit_section(&mut asm, &policy, Abi::X32);
            } else {
                asm.ret(ret::KILL_PROCESS);
            }
            asm.bind(native);
            emit_section(&mut asm, &policy, Abi::X86_64);
        } else if let Some(&abi) = abis.iter().find(|abi| abi.audit_arch() == audit_arch) {
            // Every other audit arch belongs to exactly one ABI.
            emit_section(&mut asm, &policy, abi);
        }
    }

    let instructions = asm.finish()?;
    if instructions.len() > MAX_INSTRUCTIONS {
        return Err(SeccompError::ProgramTooLong {
            len: instructions.len(),
            limit: MAX_INSTRUCTIONS,
        });
    }
    Ok(SeccompProgram {
        instructions,
        flags: policy.flags,
        listener_path: profile.listener_path().clone(),
        listener_metadata: profile.listener_metadata().clone(),
    })
}

/// The ABIs the filter accepts: the native one first, then the listed compat ABIs.
fn abis(profile: &LinuxSeccomp, arch: Arch) -> Vec<Abi> {
    let native = match arch {
        Arch::X86_64 => Abi::X86_64,
        Arch::Aarch64 => Abi::Aarch64,
    };
    let mut abis = vec![native];
    for listed in profile.architectures().iter().flatten() {
        let abi = match (arch, listed) {
            (_, OciArch::ScmpArchNative) => Some(native),
            (Arch::X86_64, OciArch::ScmpArchX86_64) => Some(Abi::X86_64),
            (Arch::X86_64, OciArch::ScmpArchX86) => Some(Abi::I386),
            (Arch::X86_64, OciArch::ScmpArchX32) => Some(Abi::X32),
            (Arch::Aarch64, OciArch::ScmpArchAarch64) => Some(Abi::Aarch64),
            (Arch::Aarch64, OciArch::ScmpArchArm) => Some(Abi::Arm),
            _ => None,
        };
        match abi {
            Some(abi) if !abis.contains(&abi) => abis.push(abi),
            Some(_) => {}
            None => tracing::debug!(
                architecture = %listed,
                host = ?arch,
                "seccomp architecture cannot occur on this host; ignored"
            ),
        }
    }
    abis
}

/// Distinct audit arches of `abis`, in order.
fn audit_arches(abis: &[Abi]) -> Vec<u32> {
    let mut out: Vec<u32> = Vec::new();
    for abi in abis {
        if !out.contains(&abi.audit_arch()) {
            out.push(abi.audit_arch());
        }
    }
    out
}

/// Comparison of one argument condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Op {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    /// `(arg & mask) == value`
    MaskedEq,
}

/// `args[index] <op> value` (`MaskedEq`: `args[index] & value == value_two`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Condition {
    index: u32,
    op: Op,
    value: u64,
    value_two: u64,
}

/// Conditions (ANDed) and the action when they all hold.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Rule {
    conditions: Vec<Condition>,
    action: u32,
}

/// The profile, validated and with actions encoded; architecture-independent.
#[derive(Debug)]
struct Policy {
    default_action: u32,
    /// `(names, rule)` in profile order.
    rules: Vec<(Vec<String>, Rule)>,
    flags: u32,
}

impl Policy {
    fn from_profile(profile: &LinuxSeccomp) -> Result<Self, SeccompError> {
        if profile.default_action() == LinuxSeccompAction::ScmpActNotify {
            return Err(SeccompError::NotifyAsDefaultAction);
        }
        let default_errno = profile.default_errno_ret();
        if let Some(value) = default_errno.filter(|&value| value > u32::from(u16::MAX)) {
            return Err(SeccompError::DefaultErrnoOutOfRange { value });
        }
        let default_action = encode_action(profile.default_action(), default_errno);

        let mut rules = Vec::new();
        let mut notify = false;
        for syscall in profile.syscalls().iter().flatten() {
            let first_name = || syscall.names().first().cloned().unwrap_or_default();
            if let Some(value) = syscall.errno_ret().filter(|&v| v > u32::from(u16::MAX)) {
                return Err(SeccompError::ErrnoOutOfRange {
                    syscall: first_name(),
                    value,
                });
            }
            let mut conditions = Vec::new();
            for arg in syscall.args().iter().flatten() {
                let index = u32::try_from(arg.index())
                    .ok()
                    .filter(|&index| index < 6)
                    .ok_or_else(|| SeccompError::ArgIndexOutOfRange {
                        syscall: first_name(),
                        index: arg.index(),
                    })?;
                conditions.push(Condition {
                    index,
                    op: match arg.op() {
                        LinuxSeccompOperator::ScmpCmpNe => Op::Ne,
                        LinuxSeccompOperator::ScmpCmpLt => Op::Lt,
                        LinuxSeccompOperator::ScmpCmpLe => Op::Le,
                        LinuxSeccompOperator::ScmpCmpEq => Op::Eq,
                        LinuxSeccompOperator::ScmpCmpGe => Op::Ge,
                        LinuxSeccompOperator::ScmpCmpGt => Op::Gt,
                        LinuxSeccompOperator::ScmpCmpMaskedEq => Op::MaskedEq,
                    },
                    value: arg.value(),
                    value_two: arg.value_two().unwrap_or(0),
                });
            }
            notify |= syscall.action() == LinuxSeccompAction::ScmpActNotify;
            let rule = Rule {
                conditions,
                action: encode_action(syscall.action(), syscall.errno_ret()),
            };
            rules.push((syscall.names().clone(), rule));
        }

        Ok(Policy {
            default_action,
            rules,
            flags: filter_flags(profile.flags().as_deref().unwrap_or_default(), notify),
        })
    }
}

/// The `SECCOMP_RET_*` value of an OCI action.
fn encode_action(action: LinuxSeccompAction, errno_ret: Option<u32>) -> u32 {
    let data = errno_ret.unwrap_or(DEFAULT_ERRNO) & 0xffff;
    match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => ret::KILL_THREAD,
        LinuxSeccompAction::ScmpActKillProcess => ret::KILL_PROCESS,
        LinuxSeccompAction::ScmpActTrap => ret::TRAP,
        LinuxSeccompAction::ScmpActErrno => ret::ERRNO | data,
        LinuxSeccompAction::ScmpActTrace => ret::TRACE | data,
        LinuxSeccompAction::ScmpActLog => ret::LOG,
        LinuxSeccompAction::ScmpActNotify => ret::USER_NOTIF,
        LinuxSeccompAction::ScmpActAllow => ret::ALLOW,
    }
}

/// `SECCOMP_FILTER_FLAG_*` bits for the profile's flags.
///
/// `NEW_LISTENER` is added when a rule notifies; with `TSYNC` as well, `TSYNC_ESRCH` is added
/// (the kernel refuses `TSYNC | NEW_LISTENER` without it). `WAIT_KILLABLE_RECV` is only valid
/// with a listener and is dropped when no rule notifies.
fn filter_flags(flags: &[LinuxSeccompFilterFlag], notify: bool) -> u32 {
    let mut bits = 0;
    for flag in flags {
        bits |= match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => load::FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => load::FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => load::FLAG_SPEC_ALLOW,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv if notify => {
                load::FLAG_WAIT_KILLABLE_RECV
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                tracing::debug!("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV ignored: no rule notifies");
                0
            }
        };
    }
    if notify {
        bits |= load::FLAG_NEW_LISTENER;
        if bits & load::FLAG_TSYNC != 0 {
            bits |= load::FLAG_TSYNC_ESRCH;
        }
    }
    bits
}

/// The dispatch tree and rule blocks of one ABI. Expects `A = nr`.
fn emit_section(asm: &mut Assembler, policy: &Policy, abi: Abi) {
    let mut by_number: BTreeMap<u32, Vec<&Rule>> = BTreeMap::new();
    let mut unknown: Vec<&str> = Vec::new();
    for (names, rule) in &policy.rules {
        for name in names {
            let Some(number) = abi.number(name) else {
                unknown.push(name);
                continue;
            };
            let rules = by_number.entry(number).or_default();
            // Two names of one entry can be aliases of one number (arm).
            if !rules.last().is_some_and(|last| std::ptr::eq(*last, rule)) {
                rules.push(rule);
            }
        }
    }
    if !unknown.is_empty() {
        tracing::debug!(
            arch = abi.name(),
            syscalls = ?unknown,
            "syscalls unknown on this architecture; their rules are skipped"
        );
    }

    let default_block = vec![Rule {
        conditions: Vec::new(),
        action: policy.default_action,
    }];
    // (first number, block) for consecutive ranges covering 0..=u32::MAX.
    let mut ranges: Vec<(u32, Vec<Rule>)> = vec![(0, default_block.clone())];
    let mut previous: Option<u32> = None;
    for (&number, rules) in &by_number {
        let block = block(rules, policy.default_action);
        if let Some(previous) = previous.filter(|&previous| previous + 1 < number) {
            push_range(&mut ranges, previous + 1, &default_block);
        }
        push_range(&mut ranges, number, &block);
        previous = Some(number);
    }
    if let Some(after) = previous.and_then(|previous| previous.checked_add(1)) {
        push_range(&mut ranges, after, &default_block);
    }
    emit_tree(asm, &ranges, abi);
}

fn push_range(ranges: &mut Vec<(u32, Vec<Rule>)>, start: u32, block: &[Rule]) {
    if ranges
        .last()
        .is_some_and(|(_, last)| last.as_slice() == block)
    {
        return;
    }
    if ranges
        .last()
        .is_some_and(|&(last_start, _)| last_start == start)
    {
        ranges.pop();
    }
    ranges.push((start, block.to_vec()));
}

/// The canonical block of one syscall: its rules in order, cut after the first unconditional
/// one, ending with an unconditional rule (the default action when none of the rules is).
/// Conditional rules right before the final rule with the same action are dropped: whether
/// they match or not, the result is the same.
fn block(rules: &[&Rule], default_action: u32) -> Vec<Rule> {
    let mut out: Vec<Rule> = Vec::new();
    for rule in rules {
        out.push((*rule).clone());
        if rule.conditions.is_empty() {
            break;
        }
    }
    if out.last().is_none_or(|rule| !rule.conditions.is_empty()) {
        out.push(Rule {
            conditions: Vec::new(),
            action: default_action,
        });
    }
    while let [.., before, last] = out.as_slice() {
        if before.action != last.action {
            break;
        }
        let last = out.pop();
        out.pop();
        out.extend(last);
    }
    out
}

/// Binary search on `A = nr` over `ranges` (sorted by start, covering every number).
fn emit_tree(asm: &mut Assembler, ranges: &[(u32, Vec<Rule>)], abi: Abi) {
    match ranges {
        [] => {}
        [(_, block)] => emit_block(asm, block, abi),
        _ => {
            let middle = ranges.len() / 2;
            let upper = asm.label();
            asm.jump(
                Cmp::Ge,
                ranges[middle].0,
                Target::Label(upper),
                Target::Next,
            );
            emit_tree(asm, &ranges[..middle], abi);
            asm.bind(upper);
            emit_tree(asm, &ranges[middle..], abi);
        }
    }
}

/// The rules of one syscall; ends in a return.
fn emit_block(asm: &mut Assembler, block: &[Rule], abi: Abi) {
    for rule in block {
        if rule.conditions.is_empty() {
            asm.ret(rule.action);
            return;
        }
        let next_rule = asm.label();
        for condition in &rule.conditions {
            emit_condition(asm, condition, next_rule, abi.has_32bit_args());
        }
        asm.ret(rule.action);
        asm.bind(next_rule);
    }
}

/// Falls through when `condition` holds, jumps to `fail` otherwise. Clobbers `A`.
///
/// 64-bit values are compared as (high, low) halves: the high halves decide unless they are
/// equal, then the low halves do. Arguments are little-endian in `seccomp_data` on every ABI
/// berth supports.
fn emit_condition(asm: &mut Assembler, condition: &Condition, fail_label: Label, low_only: bool) {
    let low_offset = OFFSET_ARGS + 8 * condition.index;
    let high_offset = low_offset + 4;
    let (value_high, value_low) = halves(condition.value);
    let (two_high, two_low) = halves(condition.value_two);
    let fail = Target::Label(fail_label);
    let next = Target::Next;

    // The last step of every comparison: on the low halves (the only ones for 32-bit ABIs).
    let low = |asm: &mut Assembler| {
        asm.load(low_offset);
        match condition.op {
            Op::Eq => asm.jump(Cmp::Eq, value_low, next, fail),
            Op::Ne => asm.jump(Cmp::Eq, value_low, fail, next),
            Op::Gt => asm.jump(Cmp::Gt, value_low, next, fail),
            Op::Ge => asm.jump(Cmp::Ge, value_low, next, fail),
            Op::Lt => asm.jump(Cmp::Ge, value_low, fail, next),
            Op::Le => asm.jump(Cmp::Gt, value_low, fail, next),
            Op::MaskedEq => {
                asm.and(value_low);
                asm.jump(Cmp::Eq, two_low, next, fail);
            }
        }
    };
    if low_only {
        low(asm);
        return;
    }

    let holds = asm.label();
    let holds_target = Target::Label(holds);
    match condition.op {
        Op::Eq => {
            asm.load(high_offset);
            asm.jump(Cmp::Eq, value_high, next, fail);
        }
        // Different high halves already make the values differ.
        Op::Ne => {
            asm.load(high_offset);
            asm.jump(Cmp::Eq, value_high, next, holds_target);
        }
        Op::Gt | Op::Ge => {
            asm.load(high_offset);
            asm.jump(Cmp::Gt, value_high, holds_target, next);
            asm.jump(Cmp::Eq, value_high, next, fail);
        }
        Op::Lt | Op::Le => {
            asm.load(high_offset);
            asm.jump(Cmp::Ge, value_high, next, holds_target);
            asm.jump(Cmp::Eq, value_high, next, fail);
        }
        // With a mask whose high half is zero the high halves compare as 0 == two_high.
        Op::MaskedEq if value_high == 0 && two_high != 0 => {
            asm.goto(fail_label);
            return;
        }
        Op::MaskedEq if value_high == 0 => {}
        Op::MaskedEq => {
            asm.load(high_offset);
            asm.and(value_high);
            asm.jump(Cmp::Eq, two_high, next, fail);
        }
    }
    low(asm);
    asm.bind(holds);
}

/// (high, low) 32-bit halves.
fn halves(value: u64) -> (u32, u32) {
    ((value >> 32) as u32, value as u32)
}
