//! A classic-BPF interpreter for seccomp programs, with the kernel's load-time checks, so tests
//! can run compiled filters against made-up `seccomp_data` without installing them.

use super::bpf::{
    SockFilter, BPF_ABS, BPF_ALU, BPF_AND, BPF_JA, BPF_JEQ, BPF_JGE, BPF_JGT, BPF_JMP, BPF_K,
    BPF_LD, BPF_RET, BPF_W, MAX_INSTRUCTIONS,
};

const BPF_JSET: u16 = 0x40;
const SECCOMP_DATA_SIZE: u32 = 64;

/// `struct seccomp_data`, what the kernel hands a filter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct SeccompData {
    pub(super) nr: u32,
    pub(super) arch: u32,
    pub(super) instruction_pointer: u64,
    pub(super) args: [u64; 6],
}

impl SeccompData {
    /// The 32-bit word at `offset`, in the host's byte order as the kernel lays it out.
    fn word(&self, offset: u32) -> u32 {
        let mut bytes = [0u8; SECCOMP_DATA_SIZE as usize];
        bytes[0..4].copy_from_slice(&self.nr.to_ne_bytes());
        bytes[4..8].copy_from_slice(&self.arch.to_ne_bytes());
        bytes[8..16].copy_from_slice(&self.instruction_pointer.to_ne_bytes());
        for (index, arg) in self.args.iter().enumerate() {
            bytes[16 + 8 * index..24 + 8 * index].copy_from_slice(&arg.to_ne_bytes());
        }
        let at = offset as usize;
        u32::from_ne_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
    }
}

/// The checks `bpf_check_classic` and `seccomp_check_filter` make before accepting a program:
/// length, opcodes seccomp allows, aligned in-bounds loads, jumps inside the program, a return
/// at the end.
pub(super) fn validate(program: &[SockFilter]) -> Result<(), String> {
    if program.is_empty() || program.len() > MAX_INSTRUCTIONS {
        return Err(format!("length {} not in 1..=4096", program.len()));
    }
    for (pc, insn) in program.iter().enumerate() {
        let remaining = program.len() - pc - 1;
        match insn.code {
            code if code == BPF_LD | BPF_W | BPF_ABS => {
                if insn.k % 4 != 0 || insn.k >= SECCOMP_DATA_SIZE {
                    return Err(format!("{pc}: bad load offset {}", insn.k));
                }
            }
            code if code == BPF_ALU | BPF_AND | BPF_K => {}
            code if code == BPF_RET | BPF_K => {}
            code if code == BPF_JMP | BPF_JA | BPF_K => {
                if insn.k as usize >= remaining {
                    return Err(format!("{pc}: ja {} leaves the program", insn.k));
                }
            }
            code if [BPF_JEQ, BPF_JGT, BPF_JGE, BPF_JSET]
                .iter()
                .any(|&op| code == BPF_JMP | op | BPF_K) =>
            {
                if usize::from(insn.jt) >= remaining || usize::from(insn.jf) >= remaining {
                    return Err(format!(
                        "{pc}: jump ({}, {}) leaves the program",
                        insn.jt, insn.jf
                    ));
                }
            }
            code => return Err(format!("{pc}: opcode {code:#x} not allowed in seccomp")),
        }
    }
    match program.last() {
        Some(last) if last.code == BPF_RET | BPF_K => Ok(()),
        _ => Err("program does not end in a return".to_owned()),
    }
}

/// Runs `program` on `data` and returns the `SECCOMP_RET_*` value; panics on a malformed
/// program (run [`validate`] first).
pub(super) fn run(program: &[SockFilter], data: &SeccompData) -> u32 {
    let mut accumulator: u32 = 0;
    let mut pc = 0;
    loop {
        let insn = program[pc];
        pc += 1;
        match insn.code {
            code if code == BPF_LD | BPF_W | BPF_ABS => accumulator = data.word(insn.k),
            code if code == BPF_ALU | BPF_AND | BPF_K => accumulator &= insn.k,
            code if code == BPF_RET | BPF_K => return insn.k,
            code if code == BPF_JMP | BPF_JA | BPF_K => pc += insn.k as usize,
            code => {
                let taken = match code & !(BPF_JMP | BPF_K) {
                    BPF_JEQ => accumulator == insn.k,
                    BPF_JGT => accumulator > insn.k,
                    BPF_JGE => accumulator >= insn.k,
                    BPF_JSET => accumulator & insn.k != 0,
                    _ => panic!("opcode {code:#x} at {}", pc - 1),
                };
                pc += usize::from(if taken { insn.jt } else { insn.jf });
            }
        }
    }
}
