//! The few `bpf(2)` commands [`crate::localports`] needs, over the raw syscall (no libbpf, no
//! object files: its programs are a few dozen instructions, assembled here by [`Asm`]).
//!
//! Every object is an owned file descriptor: a map or program lives while some fd or link holds
//! it, and a link detaches its program when its fd closes (also when the process dies, `kill -9`
//! included), so nothing berth attaches outlives the daemon that attached it.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

// commands (enum bpf_cmd)
const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_MAP_DELETE_ELEM: libc::c_long = 3;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_LINK_CREATE: libc::c_long = 28;

/// Map types (enum bpf_map_type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum MapType {
    /// `BPF_MAP_TYPE_HASH`.
    Hash = 1,
    /// `BPF_MAP_TYPE_LRU_HASH`: the least recently used element makes room.
    LruHash = 9,
}

/// `BPF_F_NO_PREALLOC`: a hash map allocates its elements when they are added.
pub const F_NO_PREALLOC: u32 = 1;

/// `BPF_PROG_TYPE_CGROUP_SOCK_ADDR`.
pub const PROG_TYPE_CGROUP_SOCK_ADDR: u32 = 18;
/// `BPF_CGROUP_INET4_CONNECT`.
pub const ATTACH_INET4_CONNECT: u32 = 10;
/// `BPF_CGROUP_INET4_GETPEERNAME`.
pub const ATTACH_INET4_GETPEERNAME: u32 = 29;

/// `union bpf_attr`, as bytes: each command fills the fields it uses at their offsets in the
/// UAPI header; the rest stays zero, as the kernel requires.
struct Attr([u64; 16]);

impl Attr {
    fn new() -> Self {
        Attr([0; 16])
    }

    fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: [u64; 16] is 128 initialized bytes with no padding, and every byte pattern
        // is a valid u64, so viewing it as bytes (alignment 1) for the lifetime of the borrow
        // is sound.
        unsafe { std::slice::from_raw_parts_mut(self.0.as_mut_ptr().cast::<u8>(), 128) }
    }

    fn u32(mut self, offset: usize, value: u32) -> Self {
        self.bytes()[offset..offset + 4].copy_from_slice(&value.to_ne_bytes());
        self
    }

    fn u64(mut self, offset: usize, value: u64) -> Self {
        self.bytes()[offset..offset + 8].copy_from_slice(&value.to_ne_bytes());
        self
    }

    fn name(mut self, offset: usize, name: &str) -> Self {
        // BPF_OBJ_NAME_LEN is 16 with the NUL; the kernel accepts [A-Za-z0-9_.]
        let n = name.len().min(15);
        self.bytes()[offset..offset + n].copy_from_slice(&name.as_bytes()[..n]);
        self
    }

    fn call(mut self, cmd: libc::c_long) -> io::Result<libc::c_long> {
        let size = self.0.len() * 8;
        // SAFETY: bpf(2) reads (and for some commands writes) at most `size` bytes of the
        // attribute, which is ours and lives across the call; every pointer stored in it
        // (keys, values, instructions, the license, the log) points to memory the caller
        // keeps alive and sized as the command requires.
        let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, self.0.as_mut_ptr(), size) };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r)
        }
    }

    fn call_fd(self, cmd: libc::c_long) -> io::Result<OwnedFd> {
        let fd = self.call(cmd)?;
        // SAFETY: on success these commands return a new file descriptor that nothing else
        // owns; it becomes the OwnedFd's alone.
        Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
    }
}

/// The cookie of the calling thread's network namespace (`SO_NETNS_COOKIE`), the value
/// `bpf_get_netns_cookie` gives programs for sockets of that namespace.
pub fn netns_cookie() -> io::Result<u64> {
    const SO_NETNS_COOKIE: libc::c_int = 71;
    let socket = rustix::net::socket(
        rustix::net::AddressFamily::INET,
        rustix::net::SocketType::DGRAM,
        None,
    )?;
    let mut cookie = 0u64;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: the socket fd is open for the call; the kernel writes at most `len` (8) bytes
    // into `cookie`, a live u64, and the new length into `len`.
    let r = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_NETNS_COOKIE,
            (&mut cookie as *mut u64).cast(),
            &mut len,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(cookie)
}

/// A BPF map.
#[derive(Debug)]
pub struct Map {
    fd: OwnedFd,
    key_size: usize,
    value_size: usize,
}

impl Map {
    /// Creates a map (`BPF_MAP_CREATE`).
    pub fn create(
        map_type: MapType,
        name: &str,
        key_size: usize,
        value_size: usize,
        max_entries: u32,
        flags: u32,
    ) -> io::Result<Map> {
        let fd = Attr::new()
            .u32(0, map_type as u32)
            .u32(4, key_size as u32)
            .u32(8, value_size as u32)
            .u32(12, max_entries)
            .u32(16, flags)
            .name(28, name)
            .call_fd(BPF_MAP_CREATE)?;
        Ok(Map {
            fd,
            key_size,
            value_size,
        })
    }

    fn check(&self, key: &[u8], value: Option<&[u8]>) -> io::Result<()> {
        if key.len() != self.key_size || value.is_some_and(|v| v.len() != self.value_size) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "BPF map key or value of the wrong size",
            ));
        }
        Ok(())
    }

    /// Adds or replaces the element `key` (`BPF_MAP_UPDATE_ELEM`, `BPF_ANY`).
    pub fn update(&self, key: &[u8], value: &[u8]) -> io::Result<()> {
        self.check(key, Some(value))?;
        Attr::new()
            .u32(0, self.fd.as_raw_fd() as u32)
            .u64(8, key.as_ptr() as u64)
            .u64(16, value.as_ptr() as u64)
            .call(BPF_MAP_UPDATE_ELEM)
            .map(drop)
    }

    /// Removes the element `key`; `Ok(false)` when there was none.
    pub fn delete(&self, key: &[u8]) -> io::Result<bool> {
        self.check(key, None)?;
        match Attr::new()
            .u32(0, self.fd.as_raw_fd() as u32)
            .u64(8, key.as_ptr() as u64)
            .call(BPF_MAP_DELETE_ELEM)
        {
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The value of `key`, if the map has it.
    pub fn lookup(&self, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        self.check(key, None)?;
        let mut value = vec![0u8; self.value_size];
        match Attr::new()
            .u32(0, self.fd.as_raw_fd() as u32)
            .u64(8, key.as_ptr() as u64)
            .u64(16, value.as_mut_ptr() as u64)
            .call(BPF_MAP_LOOKUP_ELEM)
        {
            Ok(_) => Ok(Some(value)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The map's fd, for [`Asm::ld_map`].
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// A loaded program.
#[derive(Debug)]
pub struct Program {
    fd: OwnedFd,
}

/// Why the kernel refused a program: the error and the verifier's log.
#[derive(Debug)]
pub struct LoadError {
    /// The error of `BPF_PROG_LOAD`.
    pub error: io::Error,
    /// The verifier's log (empty when it wrote none).
    pub log: String,
}

impl Program {
    /// Loads a program (`BPF_PROG_LOAD`), GPL-licensed (the helpers berth uses need no
    /// more), for `expected_attach_type`. On failure the load is retried with the
    /// verifier's log, so the error says what it refused.
    pub fn load(
        prog_type: u32,
        expected_attach_type: u32,
        name: &str,
        insns: &[Insn],
    ) -> Result<Program, LoadError> {
        let license: &CStr = c"GPL";
        let attempt = |log: &mut [u8]| {
            Attr::new()
                .u32(0, prog_type)
                .u32(4, insns.len() as u32)
                .u64(8, insns.as_ptr() as u64)
                .u64(16, license.as_ptr() as u64)
                .u32(24, u32::from(!log.is_empty()))
                .u32(28, log.len() as u32)
                // no log: the buffer pointer must be null too
                .u64(
                    32,
                    if log.is_empty() {
                        0
                    } else {
                        log.as_mut_ptr() as u64
                    },
                )
                .name(48, name)
                .u32(68, expected_attach_type)
                .call_fd(BPF_PROG_LOAD)
        };
        match attempt(&mut []) {
            Ok(fd) => Ok(Program { fd }),
            Err(error) => {
                let mut log = vec![0u8; 64 * 1024];
                let _ = attempt(&mut log);
                let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
                Err(LoadError {
                    error,
                    log: String::from_utf8_lossy(&log[..end]).trim().to_string(),
                })
            }
        }
    }

    /// Attaches the program to the cgroup (v2) directory `cgroup` as `attach_type`
    /// (`BPF_LINK_CREATE`). It runs beside the programs others attached there; it stays
    /// attached while the returned link is open.
    pub fn attach_cgroup(&self, cgroup: BorrowedFd<'_>, attach_type: u32) -> io::Result<Link> {
        let fd = Attr::new()
            .u32(0, self.fd.as_raw_fd() as u32)
            .u32(4, cgroup.as_raw_fd() as u32)
            .u32(8, attach_type)
            .call_fd(BPF_LINK_CREATE)?;
        Ok(Link { _fd: fd })
    }
}

/// An attached program; closing it detaches the program.
#[derive(Debug)]
pub struct Link {
    _fd: OwnedFd,
}

/// One instruction (`struct bpf_insn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

/// Registers: r0 holds results, r1-r5 arguments (clobbered by calls), r6-r9 survive calls,
/// r10 is the read-only frame pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Reg {
    R0 = 0,
    R1,
    R2,
    R3,
    R4,
    R5,
    R6,
    R7,
    R8,
    R9,
    R10,
}

/// Access sizes of loads and stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// 4 bytes.
    W = 0x00,
    /// 8 bytes.
    Dw = 0x18,
}

/// Conditions of [`Asm::jump_if`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cond {
    /// `==` an immediate.
    Eq = 0x10,
    /// `!=` an immediate.
    Ne = 0x50,
}

const ALU64: u8 = 0x07;
const JMP: u8 = 0x05;
const LDX_MEM: u8 = 0x01 | 0x60;
const STX_MEM: u8 = 0x03 | 0x60;
const ST_MEM: u8 = 0x02 | 0x60;
const MOV: u8 = 0xb0;
const ADD: u8 = 0x00;
const AND: u8 = 0x50;
const SRC_X: u8 = 0x08;

/// A label of [`Asm`]: a place to jump to, bound once with [`Asm::bind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label(usize);

/// A tiny assembler: the instructions, and forward jumps patched when their label is bound.
#[derive(Debug, Default)]
pub struct Asm {
    insns: Vec<Insn>,
    labels: Vec<Option<usize>>,
    fixups: Vec<(usize, Label)>,
}

fn insn(code: u8, dst: Reg, src: Reg, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (dst as u8) | ((src as u8) << 4),
        off,
        imm,
    }
}

impl Asm {
    /// An empty program.
    pub fn new() -> Self {
        Self::default()
    }

    /// A new, unbound label.
    pub fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }

    /// Binds `label` to the next instruction.
    pub fn bind(&mut self, label: Label) {
        self.labels[label.0] = Some(self.insns.len());
    }

    /// `dst = src`.
    pub fn mov(&mut self, dst: Reg, src: Reg) {
        self.insns.push(insn(ALU64 | MOV | SRC_X, dst, src, 0, 0));
    }

    /// `dst = imm`.
    pub fn mov_imm(&mut self, dst: Reg, imm: i32) {
        self.insns.push(insn(ALU64 | MOV, dst, Reg::R0, 0, imm));
    }

    /// `dst += imm`.
    pub fn add_imm(&mut self, dst: Reg, imm: i32) {
        self.insns.push(insn(ALU64 | ADD, dst, Reg::R0, 0, imm));
    }

    /// `dst &= imm`.
    pub fn and_imm(&mut self, dst: Reg, imm: i32) {
        self.insns.push(insn(ALU64 | AND, dst, Reg::R0, 0, imm));
    }

    /// `dst = *(size *)(src + off)`.
    pub fn load(&mut self, size: Size, dst: Reg, src: Reg, off: i16) {
        self.insns
            .push(insn(LDX_MEM | size as u8, dst, src, off, 0));
    }

    /// `*(size *)(dst + off) = src`.
    pub fn store(&mut self, size: Size, dst: Reg, off: i16, src: Reg) {
        self.insns
            .push(insn(STX_MEM | size as u8, dst, src, off, 0));
    }

    /// `*(size *)(dst + off) = imm`.
    pub fn store_imm(&mut self, size: Size, dst: Reg, off: i16, imm: i32) {
        self.insns
            .push(insn(ST_MEM | size as u8, dst, Reg::R0, off, imm));
    }

    /// `dst = map` (the two-slot `ld_imm64` with `BPF_PSEUDO_MAP_FD`).
    pub fn ld_map(&mut self, dst: Reg, map: &Map) {
        self.insns.push(insn(0x18, dst, Reg::R1, 0, map.raw_fd()));
        self.insns.push(insn(0, Reg::R0, Reg::R0, 0, 0));
    }

    /// `r0 = helper(r1..r5)`.
    pub fn call(&mut self, helper: i32) {
        self.insns
            .push(insn(JMP | 0x80, Reg::R0, Reg::R0, 0, helper));
    }

    /// `if dst COND imm goto label`.
    pub fn jump_if(&mut self, cond: Cond, dst: Reg, imm: i32, label: Label) {
        self.fixups.push((self.insns.len(), label));
        self.insns
            .push(insn(JMP | cond as u8, dst, Reg::R0, 0, imm));
    }

    /// `return r0`.
    pub fn exit(&mut self) {
        self.insns.push(insn(JMP | 0x90, Reg::R0, Reg::R0, 0, 0));
    }

    /// The program, its jumps resolved.
    ///
    /// # Panics
    /// When a label used is never bound (a bug in the program's assembly).
    pub fn finish(mut self) -> Vec<Insn> {
        for (at, label) in std::mem::take(&mut self.fixups) {
            let target = self.labels[label.0].expect("every jump's label is bound");
            self.insns[at].off = (target as isize - at as isize - 1) as i16;
        }
        self.insns
    }
}

/// Helper numbers (`__BPF_FUNC_MAPPER`).
pub mod helper {
    /// `bpf_map_lookup_elem(map, key)`.
    pub const MAP_LOOKUP_ELEM: i32 = 1;
    /// `bpf_map_update_elem(map, key, value, flags)`.
    pub const MAP_UPDATE_ELEM: i32 = 2;
    /// `bpf_get_socket_cookie(ctx)`.
    pub const GET_SOCKET_COOKIE: i32 = 46;
    /// `bpf_get_netns_cookie(ctx)`.
    pub const GET_NETNS_COOKIE: i32 = 122;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jumps_are_relative_to_the_next_instruction() {
        let mut a = Asm::new();
        let out = a.label();
        a.jump_if(Cond::Ne, Reg::R2, 6, out); // 0
        a.mov_imm(Reg::R0, 0); // 1
        a.exit(); // 2
        a.bind(out);
        a.mov_imm(Reg::R0, 1); // 3
        a.exit();
        let insns = a.finish();
        assert_eq!(insns[0].off, 2);
        assert_eq!(insns[0].code, 0x55); // BPF_JMP | BPF_JNE | BPF_K
        assert_eq!(insns[0].regs, 2);
        assert_eq!(insns[0].imm, 6);
    }

    #[test]
    fn encodings_match_the_uapi() {
        let mut a = Asm::new();
        a.mov(Reg::R6, Reg::R1);
        a.load(Size::W, Reg::R7, Reg::R6, 4);
        a.store(Size::Dw, Reg::R10, -16, Reg::R0);
        a.store_imm(Size::W, Reg::R10, -4, 0);
        a.call(helper::GET_NETNS_COOKIE);
        let i = a.finish();
        assert_eq!((i[0].code, i[0].regs), (0xbf, 0x16)); // mov64 r6, r1
        assert_eq!((i[1].code, i[1].regs, i[1].off), (0x61, 0x67, 4)); // ldxw r7, [r6+4]
        assert_eq!((i[2].code, i[2].regs, i[2].off), (0x7b, 0x0a, -16)); // stxdw [r10-16], r0
        assert_eq!((i[3].code, i[3].regs), (0x62, 0x0a)); // stw [r10-4], 0
        assert_eq!((i[4].code, i[4].imm), (0x85, 122)); // call
        assert_eq!(std::mem::size_of::<Insn>(), 8);
    }
}
