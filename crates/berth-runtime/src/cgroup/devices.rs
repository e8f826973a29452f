//! Device access rules (`linux.resources.devices`): parsed once from OCI, then written as v1
//! `devices.allow`/`devices.deny` lines or compiled into the eBPF program that v2 attaches to
//! the cgroup (`BPF_PROG_TYPE_CGROUP_DEVICE`; v2 has no device files).
//!
//! The program gives the rules the meaning they have on v1 when they start from the parent's
//! "allow everything": the last rule matching a device decides, per access bit (read, write,
//! mknod), and a request no rule covers is allowed. Docker's lists start with `deny a *:* rwm`,
//! so every device they do not allow is denied.

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use super::error::CgroupError;

const FIELD: &str = "linux.resources.devices";

/// Access bits as the kernel passes them to device programs (`BPF_DEVCG_ACC_*`).
const ACCESS_MKNOD: u8 = 1;
const ACCESS_READ: u8 = 2;
const ACCESS_WRITE: u8 = 4;
const ACCESS_ALL: u8 = ACCESS_MKNOD | ACCESS_READ | ACCESS_WRITE;
/// Device types as the kernel passes them (`BPF_DEVCG_DEV_*`).
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

/// Which devices a rule covers by type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DeviceKind {
    /// Every type (`a`).
    All,
    /// Block devices (`b`).
    Block,
    /// Character devices (`c`).
    Char,
}

/// One validated device rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DeviceRule {
    /// Allow or deny.
    pub(crate) allow: bool,
    /// Device type.
    pub(crate) kind: DeviceKind,
    /// Major number; `None` for any.
    pub(crate) major: Option<u32>,
    /// Minor number; `None` for any.
    pub(crate) minor: Option<u32>,
    /// `ACCESS_*` bits.
    pub(crate) access: u8,
}

impl DeviceRule {
    /// Validates an OCI rule: types a, b, c; access letters from `rwm` (all three when empty);
    /// a missing or -1 major/minor is a wildcard, as in runc.
    pub(crate) fn parse(rule: &LinuxDeviceCgroup) -> Result<DeviceRule, CgroupError> {
        let kind = match rule.typ().unwrap_or_default() {
            LinuxDeviceType::A => DeviceKind::All,
            LinuxDeviceType::B => DeviceKind::Block,
            LinuxDeviceType::C => DeviceKind::Char,
            other => {
                return Err(CgroupError::invalid(
                    FIELD,
                    other.as_str(),
                    "the device cgroup knows only types a, b and c",
                ))
            }
        };
        let number = |value: Option<i64>| -> Result<Option<u32>, CgroupError> {
            match value {
                None | Some(-1) => Ok(None),
                Some(n) => u32::try_from(n)
                    .ok()
                    .filter(|n| i32::try_from(*n).is_ok())
                    .map(Some)
                    .ok_or_else(|| CgroupError::invalid(FIELD, n, "not a device number")),
            }
        };
        let letters = rule.access().as_deref().unwrap_or("").trim();
        let mut access = 0;
        for letter in letters.chars() {
            access |= match letter {
                'r' => ACCESS_READ,
                'w' => ACCESS_WRITE,
                'm' => ACCESS_MKNOD,
                _ => {
                    return Err(CgroupError::invalid(
                        "linux.resources.devices.access",
                        letters,
                        "only r, w and m are allowed",
                    ))
                }
            };
        }
        if letters.is_empty() {
            access = ACCESS_ALL;
        }
        Ok(DeviceRule {
            allow: rule.allow(),
            kind,
            major: number(rule.major())?,
            minor: number(rule.minor())?,
            access,
        })
    }

    /// The rule as v1 `devices.allow`/`devices.deny` take it: `c 1:3 rwm`.
    pub(crate) fn v1_line(&self) -> String {
        let kind = match self.kind {
            DeviceKind::All => 'a',
            DeviceKind::Block => 'b',
            DeviceKind::Char => 'c',
        };
        let number = |n: Option<u32>| n.map_or_else(|| "*".to_owned(), |n| n.to_string());
        let mut access = String::new();
        for (bit, letter) in [(ACCESS_READ, 'r'), (ACCESS_WRITE, 'w'), (ACCESS_MKNOD, 'm')] {
            if self.access & bit != 0 {
                access.push(letter);
            }
        }
        format!(
            "{kind} {}:{} {access}",
            number(self.major),
            number(self.minor)
        )
    }
}

/// Parses every rule of `linux.resources.devices`.
pub(crate) fn parse_rules(rules: &[LinuxDeviceCgroup]) -> Result<Vec<DeviceRule>, CgroupError> {
    rules.iter().map(DeviceRule::parse).collect()
}

/// One eBPF instruction (`struct bpf_insn`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BpfInsn {
    /// Opcode.
    pub code: u8,
    /// Destination register.
    pub dst: u8,
    /// Source register.
    pub src: u8,
    /// Jump or memory offset.
    pub off: i16,
    /// Immediate.
    pub imm: i32,
}

impl BpfInsn {
    /// The kernel's 8-byte encoding.
    pub fn to_bytes(self) -> [u8; 8] {
        // struct bpf_insn { u8 code; u8 dst_reg:4, src_reg:4; s16 off; s32 imm; }
        let registers = if cfg!(target_endian = "little") {
            (self.src << 4) | (self.dst & 0x0f)
        } else {
            (self.dst << 4) | (self.src & 0x0f)
        };
        let off = self.off.to_ne_bytes();
        let imm = self.imm.to_ne_bytes();
        [
            self.code, registers, off[0], off[1], imm[0], imm[1], imm[2], imm[3],
        ]
    }
}

/// A compiled `BPF_PROG_TYPE_CGROUP_DEVICE` program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceProgram {
    instructions: Vec<BpfInsn>,
}

impl DeviceProgram {
    /// The instructions.
    pub fn instructions(&self) -> &[BpfInsn] {
        &self.instructions
    }

    /// The instructions in the kernel's encoding, ready for `BPF_PROG_LOAD`.
    pub fn bytes(&self) -> Vec<u8> {
        self.instructions
            .iter()
            .flat_map(|i| i.to_bytes())
            .collect()
    }
}

// opcodes (linux/bpf_common.h, linux/bpf.h)
const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const ALU32_AND_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const ALU32_RSH_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const ALU32_MOV_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const ALU64_MOV_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const JMP_JEQ_K: u8 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JMP_JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const JMP_EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

// registers: r1 = context on entry, then scratch; r2 type; r3 undecided access; r4 major; r5 minor
const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> BpfInsn {
    BpfInsn {
        code,
        dst,
        src,
        off,
        imm,
    }
}

/// Compiles `rules` into a device program: rules are checked last to first; a matching deny
/// rule that covers a requested access bit denies; a matching allow rule grants its bits, and
/// once every requested bit is granted the request is allowed; what no rule decides is allowed.
pub(crate) fn compile(rules: &[DeviceRule]) -> DeviceProgram {
    let mut program = vec![
        // struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }
        insn(LDX_MEM_W, R2, R1, 0, 0),
        insn(ALU32_AND_K, R2, 0, 0, 0xffff),
        insn(LDX_MEM_W, R3, R1, 0, 0),
        insn(ALU32_RSH_K, R3, 0, 0, 16),
        insn(LDX_MEM_W, R4, R1, 4, 0),
        insn(LDX_MEM_W, R5, R1, 8, 0),
    ];
    for rule in rules.iter().rev() {
        // jumps in `block` hold their own index until the block's length is known
        let mut block: Vec<BpfInsn> = Vec::new();
        let mut skips = Vec::new();
        let mut skip_unless = |block: &mut Vec<BpfInsn>, register: u8, value: i32| {
            skips.push(block.len());
            block.push(insn(JMP_JNE_K, register, 0, 0, value));
        };
        match rule.kind {
            DeviceKind::All => {}
            DeviceKind::Block => skip_unless(&mut block, R2, DEV_BLOCK),
            DeviceKind::Char => skip_unless(&mut block, R2, DEV_CHAR),
        }
        if let Some(major) = rule.major {
            skip_unless(&mut block, R4, major as i32);
        }
        if let Some(minor) = rule.minor {
            skip_unless(&mut block, R5, minor as i32);
        }
        let access = i32::from(rule.access);
        if rule.allow {
            // grant the rule's bits; allow once nothing requested is left
            block.push(insn(ALU32_AND_K, R3, 0, 0, !access & i32::from(ACCESS_ALL)));
            skips.push(block.len());
            block.push(insn(JMP_JNE_K, R3, 0, 0, 0));
            block.push(insn(ALU64_MOV_K, R0, 0, 0, 1));
        } else {
            // deny if the rule covers any bit still undecided
            block.push(insn(ALU32_MOV_X, R1, R3, 0, 0));
            block.push(insn(ALU32_AND_K, R1, 0, 0, access));
            skips.push(block.len());
            block.push(insn(JMP_JEQ_K, R1, 0, 0, 0));
            block.push(insn(ALU64_MOV_K, R0, 0, 0, 0));
        }
        block.push(insn(JMP_EXIT, 0, 0, 0, 0));
        let length = block.len();
        for index in skips {
            // to the first instruction after the block, relative to the next instruction
            block[index].off = i16::try_from(length - index - 1).unwrap_or(i16::MAX);
        }
        program.extend(block);
    }
    program.push(insn(ALU64_MOV_K, R0, 0, 0, 1));
    program.push(insn(JMP_EXIT, 0, 0, 0, 0));
    DeviceProgram {
        instructions: program,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![expect(clippy::unwrap_used, reason = "tests")]

    use oci_spec::runtime::LinuxDeviceCgroupBuilder;

    use super::*;

    /// Runs the subset of eBPF that [`compile`] emits against one request.
    pub(crate) fn run(
        program: &DeviceProgram,
        kind: char,
        major: u32,
        minor: u32,
        access: &str,
    ) -> bool {
        let kind = match kind {
            'b' => DEV_BLOCK as u32,
            'c' => DEV_CHAR as u32,
            _ => panic!("request type {kind}"),
        };
        let mut bits = 0u32;
        for letter in access.chars() {
            bits |= u32::from(match letter {
                'r' => ACCESS_READ,
                'w' => ACCESS_WRITE,
                'm' => ACCESS_MKNOD,
                _ => panic!("access {access}"),
            });
        }
        let context = [(bits << 16) | kind, major, minor];
        let mut registers = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = program.instructions()[pc];
            pc += 1;
            let (dst, src) = (usize::from(i.dst), usize::from(i.src));
            match i.code {
                LDX_MEM_W => {
                    assert_eq!(src, 1, "loads only from the context");
                    registers[dst] = u64::from(context[usize::try_from(i.off).unwrap() / 4]);
                }
                ALU32_AND_K => registers[dst] = u64::from((registers[dst] as u32) & (i.imm as u32)),
                ALU32_RSH_K => registers[dst] = u64::from((registers[dst] as u32) >> i.imm),
                ALU32_MOV_X => registers[dst] = u64::from(registers[src] as u32),
                ALU64_MOV_K => registers[dst] = i.imm as i64 as u64,
                JMP_JEQ_K | JMP_JNE_K => {
                    let equal = registers[dst] == i.imm as i64 as u64;
                    if equal == (i.code == JMP_JEQ_K) {
                        pc += usize::try_from(i.off).unwrap();
                    }
                }
                JMP_EXIT => return registers[0] == 1,
                other => panic!("opcode {other:#x}"),
            }
        }
    }

    fn rule(
        allow: bool,
        kind: LinuxDeviceType,
        major: Option<i64>,
        minor: Option<i64>,
        access: &str,
    ) -> LinuxDeviceCgroup {
        let mut builder = LinuxDeviceCgroupBuilder::default()
            .allow(allow)
            .typ(kind)
            .access(access);
        if let Some(major) = major {
            builder = builder.major(major);
        }
        if let Some(minor) = minor {
            builder = builder.minor(minor);
        }
        builder.build().unwrap()
    }

    /// Docker's default device cgroup rules.
    pub(crate) fn docker_rules() -> Vec<LinuxDeviceCgroup> {
        use LinuxDeviceType::{A, B, C};
        vec![
            rule(false, A, None, None, "rwm"),
            rule(true, C, None, None, "m"),
            rule(true, B, None, None, "m"),
            rule(true, C, Some(1), Some(3), "rwm"),
            rule(true, C, Some(1), Some(8), "rwm"),
            rule(true, C, Some(1), Some(7), "rwm"),
            rule(true, C, Some(5), Some(0), "rwm"),
            rule(true, C, Some(1), Some(5), "rwm"),
            rule(true, C, Some(1), Some(9), "rwm"),
            rule(true, C, Some(5), Some(1), "rwm"),
            rule(true, C, Some(136), None, "rwm"),
            rule(true, C, Some(5), Some(2), "rwm"),
            rule(true, C, Some(10), Some(200), "rwm"),
        ]
    }

    #[test]
    fn cgroup_devices_docker_defaults() {
        let program = compile(&parse_rules(&docker_rules()).unwrap());
        assert!(run(&program, 'c', 1, 3, "rw"), "/dev/null");
        assert!(run(&program, 'c', 136, 4, "rw"), "/dev/pts/4");
        assert!(run(&program, 'c', 10, 200, "r"), "/dev/net/tun");
        assert!(run(&program, 'b', 8, 0, "m"), "mknod of any block device");
        assert!(!run(&program, 'b', 8, 0, "r"), "reading /dev/sda");
        assert!(!run(&program, 'b', 8, 0, "rm"));
        assert!(!run(&program, 'c', 10, 229, "rw"), "/dev/fuse");
        assert!(!run(&program, 'c', 1, 1, "r"), "/dev/mem");
    }

    #[test]
    fn cgroup_devices_last_rule_wins_per_access_bit() {
        use LinuxDeviceType::{A, C};
        let rules = [
            rule(true, C, Some(1), Some(3), "rwm"),
            rule(false, C, Some(1), Some(3), "w"),
        ];
        let program = compile(&parse_rules(&rules).unwrap());
        assert!(run(&program, 'c', 1, 3, "r"));
        assert!(!run(&program, 'c', 1, 3, "w"));
        assert!(
            !run(&program, 'c', 1, 3, "rw"),
            "a denied bit denies the whole request"
        );
        assert!(
            run(&program, 'c', 1, 4, "rw"),
            "nothing decides: allowed, as on v1"
        );

        let rules = [
            rule(false, A, None, None, "rwm"),
            rule(true, C, Some(1), None, "r"),
        ];
        let program = compile(&parse_rules(&rules).unwrap());
        assert!(run(&program, 'c', 1, 9, "r"));
        assert!(!run(&program, 'c', 1, 9, "rw"), "write was not granted");
        assert!(!run(&program, 'c', 2, 0, "r"));
        let empty = compile(&[]);
        assert!(run(&empty, 'b', 8, 0, "rwm"));
    }

    #[test]
    fn cgroup_devices_rules_parse_and_render_for_v1() {
        let rules = parse_rules(&docker_rules()).unwrap();
        assert_eq!(rules[0].v1_line(), "a *:* rwm");
        assert_eq!(rules[1].v1_line(), "c *:* m");
        assert_eq!(rules[10].v1_line(), "c 136:* rwm");
        let wildcard = rule(true, LinuxDeviceType::C, Some(-1), Some(3), "");
        assert_eq!(DeviceRule::parse(&wildcard).unwrap().v1_line(), "c *:3 rwm");
        let fifo = rule(true, LinuxDeviceType::P, None, None, "rwm");
        assert!(DeviceRule::parse(&fifo).is_err());
        let letters = rule(true, LinuxDeviceType::C, None, None, "rwx");
        assert!(DeviceRule::parse(&letters).is_err());
        let negative = rule(true, LinuxDeviceType::C, Some(-7), None, "r");
        assert!(DeviceRule::parse(&negative).is_err());
    }

    #[test]
    fn cgroup_devices_encoding() {
        let exit = insn(JMP_EXIT, 0, 0, 0, 0).to_bytes();
        assert_eq!(exit, [0x95, 0, 0, 0, 0, 0, 0, 0]);
        let load = insn(LDX_MEM_W, R4, R1, 4, 0).to_bytes();
        if cfg!(target_endian = "little") {
            assert_eq!(load, [0x61, 0x14, 4, 0, 0, 0, 0, 0]);
        }
        assert_eq!(compile(&[]).bytes().len(), 8 * 8);
    }
}
