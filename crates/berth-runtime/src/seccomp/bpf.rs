//! Classic BPF for seccomp: the instruction the kernel takes, and a small assembler with forward
//! labels that inserts `ja` trampolines where a conditional jump is longer than 255.

use super::SeccompError;

/// One classic-BPF instruction, laid out as the kernel's `struct sock_filter`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SockFilter {
    /// Opcode: class, size, mode or operation, source.
    pub code: u16,
    /// Forward offset taken when a conditional jump's test holds.
    pub jt: u8,
    /// Forward offset taken when a conditional jump's test fails.
    pub jf: u8,
    /// Constant operand: load offset, comparison value, jump offset for `ja`, return value.
    pub k: u32,
}

const _: () = assert!(std::mem::size_of::<SockFilter>() == 8);

pub(crate) const BPF_LD: u16 = 0x00;
pub(crate) const BPF_ALU: u16 = 0x04;
pub(crate) const BPF_JMP: u16 = 0x05;
pub(crate) const BPF_RET: u16 = 0x06;
pub(crate) const BPF_W: u16 = 0x00;
pub(crate) const BPF_ABS: u16 = 0x20;
pub(crate) const BPF_K: u16 = 0x00;
pub(crate) const BPF_AND: u16 = 0x50;
pub(crate) const BPF_JA: u16 = 0x00;
pub(crate) const BPF_JEQ: u16 = 0x10;
pub(crate) const BPF_JGT: u16 = 0x20;
pub(crate) const BPF_JGE: u16 = 0x30;

/// The kernel's limit on a classic-BPF program (`BPF_MAXINSNS`).
pub(crate) const MAX_INSTRUCTIONS: usize = 4096;

/// Longest distance a conditional jump's `jt`/`jf` can encode.
const MAX_SHORT_JUMP: usize = u8::MAX as usize;

/// A position in the program, bound later with [`Assembler::bind`]; jumps only go forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Label(usize);

/// Where a conditional jump goes on one of its branches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// The instruction after the jump.
    Next,
    /// A label bound further on.
    Label(Label),
}

/// Comparison of a conditional jump, between the accumulator and `k` (unsigned).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cmp {
    /// `A == k`
    Eq,
    /// `A > k`
    Gt,
    /// `A >= k`
    Ge,
}

impl Cmp {
    fn opcode(self) -> u16 {
        BPF_JMP
            | BPF_K
            | match self {
                Cmp::Eq => BPF_JEQ,
                Cmp::Gt => BPF_JGT,
                Cmp::Ge => BPF_JGE,
            }
    }
}

#[derive(Clone, Copy, Debug)]
enum Item {
    /// `A = seccomp_data[offset]` (32-bit word)
    Load(u32),
    /// `A &= k`
    And(u32),
    /// `return k`
    Ret(u32),
    /// `if A <cmp> k goto jt else goto jf`
    Jump {
        cmp: Cmp,
        k: u32,
        jt: Target,
        jf: Target,
    },
    /// `goto label` (32-bit offset)
    Goto(Label),
    /// Binds a label to the next instruction; emits nothing.
    Bind(Label),
}

/// Builds a program from instructions and forward labels.
#[derive(Debug, Default)]
pub(crate) struct Assembler {
    items: Vec<Item>,
    labels: usize,
}

impl Assembler {
    /// An empty program.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// A fresh label, to be bound once, after every jump to it.
    pub(crate) fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }

    /// Binds `label` to the next instruction emitted.
    pub(crate) fn bind(&mut self, label: Label) {
        self.items.push(Item::Bind(label));
    }

    /// Loads the 32-bit word at `offset` of `struct seccomp_data` into the accumulator.
    pub(crate) fn load(&mut self, offset: u32) {
        self.items.push(Item::Load(offset));
    }

    /// `A &= k`.
    pub(crate) fn and(&mut self, k: u32) {
        self.items.push(Item::And(k));
    }

    /// Returns `k` (a `SECCOMP_RET_*` action) to the kernel.
    pub(crate) fn ret(&mut self, k: u32) {
        self.items.push(Item::Ret(k));
    }

    /// Conditional jump on the accumulator.
    pub(crate) fn jump(&mut self, cmp: Cmp, k: u32, jt: Target, jf: Target) {
        self.items.push(Item::Jump { cmp, k, jt, jf });
    }

    /// Unconditional jump.
    pub(crate) fn goto(&mut self, label: Label) {
        self.items.push(Item::Goto(label));
    }

    /// Lays the program out and encodes it.
    ///
    /// A conditional jump whose target is more than 255 instructions ahead becomes a short jump
    /// to a `ja` right after it (`ja` takes a 32-bit offset). Inserting trampolines can push
    /// other jumps out of range, so layout repeats until nothing changes; branches only ever
    /// become long, so this ends.
    pub(crate) fn finish(self) -> Result<Vec<SockFilter>, SeccompError> {
        // Per item: whether its true and false branches go through a trampoline.
        let mut long = vec![(false, false); self.items.len()];
        loop {
            let (positions, labels) = self.layout(&long);
            let mut changed = false;
            for (index, item) in self.items.iter().enumerate() {
                let Item::Jump { jt, jf, .. } = *item else {
                    continue;
                };
                let next = positions[index] + 1;
                let (long_true, long_false) = &mut long[index];
                for (target, is_long) in [(jt, long_true), (jf, long_false)] {
                    if let Target::Label(label) = target {
                        if !*is_long && resolve(&labels, label, next)? > MAX_SHORT_JUMP {
                            *is_long = true;
                            changed = true;
                        }
                    }
                }
            }
            if !changed {
                return self.encode(&long, &positions, &labels);
            }
        }
    }

    fn size(item: &Item, long: (bool, bool)) -> usize {
        match item {
            Item::Bind(_) => 0,
            Item::Jump { .. } => 1 + usize::from(long.0) + usize::from(long.1),
            _ => 1,
        }
    }

    /// Instruction index of every item, and of every label (`None` while unbound).
    fn layout(&self, long: &[(bool, bool)]) -> (Vec<usize>, Vec<Option<usize>>) {
        let mut positions = Vec::with_capacity(self.items.len());
        let mut labels = vec![None; self.labels];
        let mut pc = 0;
        for (item, &item_long) in self.items.iter().zip(long) {
            positions.push(pc);
            if let Item::Bind(Label(label)) = item {
                labels[*label] = Some(pc);
            }
            pc += Self::size(item, item_long);
        }
        (positions, labels)
    }

    fn encode(
        &self,
        long: &[(bool, bool)],
        positions: &[usize],
        labels: &[Option<usize>],
    ) -> Result<Vec<SockFilter>, SeccompError> {
        let mut out = Vec::with_capacity(positions.last().map_or(0, |last| last + 3));
        for (index, item) in self.items.iter().enumerate() {
            let next = positions[index] + 1;
            match *item {
                Item::Bind(_) => {}
                Item::Load(offset) => out.push(stmt(BPF_LD | BPF_W | BPF_ABS, offset)),
                Item::And(k) => out.push(stmt(BPF_ALU | BPF_AND | BPF_K, k)),
                Item::Ret(k) => out.push(stmt(BPF_RET | BPF_K, k)),
                Item::Goto(label) => out.push(goto(resolve(labels, label, next)?)),
                Item::Jump { cmp, k, jt, jf } => {
                    let (long_true, long_false) = long[index];
                    let trampolines = usize::from(long_true) + usize::from(long_false);
                    let mut pending = Vec::with_capacity(2);
                    let mut branch = |target: Target, is_long: bool| match target {
                        // The fall-through instruction comes after any trampolines.
                        Target::Next => Ok(trampolines),
                        Target::Label(label) if is_long => {
                            pending.push(label);
                            Ok(pending.len() - 1)
                        }
                        Target::Label(label) => resolve(labels, label, next),
                    };
                    let jt = branch(jt, long_true)?;
                    let jf = branch(jf, long_false)?;
                    out.push(SockFilter {
                        code: cmp.opcode(),
                        jt: short(jt),
                        jf: short(jf),
                        k,
                    });
                    for label in pending {
                        let from = out.len() + 1;
                        out.push(goto(resolve(labels, label, from)?));
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Distance from instruction `from` (the one after the jump) to `label`.
fn resolve(labels: &[Option<usize>], label: Label, from: usize) -> Result<usize, SeccompError> {
    let Label(number) = label;
    let at = labels
        .get(number)
        .copied()
        .flatten()
        .ok_or(SeccompError::Label {
            label: number,
            problem: "is never bound",
        })?;
    at.checked_sub(from).ok_or(SeccompError::Label {
        label: number,
        problem: "is bound before a jump to it (BPF jumps only go forward)",
    })
}

fn short(offset: usize) -> u8 {
    u8::try_from(offset).expect("layout makes every short jump 255 or less")
}

fn stmt(code: u16, k: u32) -> SockFilter {
    SockFilter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn goto(offset: usize) -> SockFilter {
    let k = u32::try_from(offset).expect("programs are far shorter than 2^32 instructions");
    stmt(BPF_JMP | BPF_JA | BPF_K, k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_jumps_are_encoded_directly() {
        let mut asm = Assembler::new();
        let end = asm.label();
        asm.load(0);
        asm.jump(Cmp::Eq, 7, Target::Label(end), Target::Next);
        asm.ret(1);
        asm.bind(end);
        asm.ret(2);
        let program = asm.finish().expect("assembles");
        assert_eq!(program.len(), 4);
        assert_eq!(program[1].jt, 1);
        assert_eq!(program[1].jf, 0);
    }

    #[test]
    fn long_jumps_get_trampolines() {
        let mut asm = Assembler::new();
        let far = asm.label();
        asm.load(0);
        asm.jump(Cmp::Eq, 7, Target::Label(far), Target::Next);
        for k in 0..300 {
            asm.ret(k);
        }
        asm.bind(far);
        asm.ret(9999);
        let program = asm.finish().expect("assembles");
        // ld, jeq (jt -> ja), ja, 300 rets, ret
        assert_eq!(program.len(), 304);
        assert_eq!((program[1].jt, program[1].jf), (0, 1));
        assert_eq!(program[2].code, BPF_JMP | BPF_JA | BPF_K);
        assert_eq!(program[2].k as usize + 3, 303);
        assert_eq!(program[303].k, 9999);
    }

    #[test]
    fn both_branches_long() {
        let mut asm = Assembler::new();
        let first = asm.label();
        let second = asm.label();
        asm.jump(Cmp::Gt, 1, Target::Label(first), Target::Label(second));
        for k in 0..300 {
            asm.ret(k);
        }
        asm.bind(first);
        asm.ret(10_000);
        for k in 0..300 {
            asm.ret(k);
        }
        asm.bind(second);
        asm.ret(20_000);
        let program = asm.finish().expect("assembles");
        assert_eq!((program[0].jt, program[0].jf), (0, 1));
        assert_eq!(program[1 + 1 + program[1].k as usize].k, 10_000);
        assert_eq!(program[2 + 1 + program[2].k as usize].k, 20_000);
    }

    #[test]
    fn unbound_and_backward_labels_are_errors() {
        let mut asm = Assembler::new();
        let never = asm.label();
        asm.goto(never);
        assert!(matches!(asm.finish(), Err(SeccompError::Label { .. })));

        let mut asm = Assembler::new();
        let back = asm.label();
        asm.bind(back);
        asm.ret(0);
        asm.goto(back);
        assert!(matches!(asm.finish(), Err(SeccompError::Label { .. })));
    }
}
