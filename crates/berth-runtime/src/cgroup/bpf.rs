//! The `bpf(2)` calls that put a device program on a v2 cgroup: load it, attach it to the
//! cgroup directory with `BPF_F_ALLOW_MULTI`, then detach the programs attached before (as
//! runc does, so an update never leaves a window without a filter). Thin wrappers returning
//! `io::Error`; the only `unsafe` of the cgroup module.
#![expect(unsafe_code, reason = "bpf(2) has no safe wrapper in rustix or std")]

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use rustix::fs::{Mode, OFlags};

use super::devices::DeviceProgram;

const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_DETACH: libc::c_int = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
const BPF_PROG_QUERY: libc::c_int = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;
const LICENSE: &CStr = c"Apache";
/// More programs than this on one cgroup would be someone else's doing.
const MAX_QUERIED: usize = 64;

/// `union bpf_attr` as `BPF_PROG_LOAD` reads it (the prefix the kernel needs; it zero-fills
/// the rest).
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// `union bpf_attr` for `BPF_PROG_ATTACH` and `BPF_PROG_DETACH`.
#[repr(C)]
#[derive(Default)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

/// `union bpf_attr` for `BPF_PROG_QUERY`.
#[repr(C)]
#[derive(Default)]
struct ProgQueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

/// `union bpf_attr` for `BPF_PROG_GET_FD_BY_ID`.
#[repr(C)]
#[derive(Default)]
struct GetFdByIdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// Calls `bpf(cmd, attr, sizeof attr)`.
///
/// # Safety
/// `attr` must be the attribute struct `cmd` reads, and every pointer in it must be valid for
/// what the kernel reads or writes through it during the call.
unsafe fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: the caller vouches for `attr` matching `cmd`; the size passed is its size, so
    // the kernel reads and writes only within it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            std::ptr::from_mut(attr).cast::<libc::c_void>(),
            std::mem::size_of::<T>(),
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn owned_fd(ret: libc::c_long) -> io::Result<OwnedFd> {
    let fd = RawFd::try_from(ret).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: the kernel just returned this descriptor to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn fd_u32(fd: &OwnedFd) -> u32 {
    // descriptors are never negative
    u32::try_from(fd.as_raw_fd()).unwrap_or(u32::MAX)
}

fn load(program: &DeviceProgram) -> io::Result<OwnedFd> {
    let bytes = program.bytes();
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: u32::try_from(program.instructions().len())
            .map_err(|_| io::Error::from_raw_os_error(libc::E2BIG))?,
        insns: bytes.as_ptr() as u64,
        license: LICENSE.as_ptr() as u64,
        expected_attach_type: BPF_CGROUP_DEVICE,
        ..ProgLoadAttr::default()
    };
    attr.prog_name[..12].copy_from_slice(b"berth_device");
    // SAFETY: a BPF_PROG_LOAD attribute whose `insns` and `license` point at `bytes` and
    // `LICENSE`, both alive for the call; no log buffer is given.
    let ret = unsafe { bpf(BPF_PROG_LOAD, &mut attr)? };
    owned_fd(ret)
}

fn attached(cgroup: &OwnedFd) -> io::Result<Vec<u32>> {
    let mut ids = [0u32; MAX_QUERIED];
    let mut attr = ProgQueryAttr {
        target_fd: fd_u32(cgroup),
        attach_type: BPF_CGROUP_DEVICE,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: MAX_QUERIED as u32,
        ..ProgQueryAttr::default()
    };
    // SAFETY: a BPF_PROG_QUERY attribute whose `prog_ids` points at `ids`, room for
    // `prog_cnt` ids, alive for the call.
    unsafe { bpf(BPF_PROG_QUERY, &mut attr)? };
    let count = usize::try_from(attr.prog_cnt).unwrap_or(0).min(MAX_QUERIED);
    Ok(ids[..count].to_vec())
}

fn program_by_id(id: u32) -> io::Result<OwnedFd> {
    let mut attr = GetFdByIdAttr {
        prog_id: id,
        ..GetFdByIdAttr::default()
    };
    // SAFETY: a BPF_PROG_GET_FD_BY_ID attribute without pointers.
    let ret = unsafe { bpf(BPF_PROG_GET_FD_BY_ID, &mut attr)? };
    owned_fd(ret)
}

fn attach_or_detach(
    cmd: libc::c_int,
    cgroup: &OwnedFd,
    program: &OwnedFd,
    flags: u32,
) -> io::Result<()> {
    let mut attr = ProgAttachAttr {
        target_fd: fd_u32(cgroup),
        attach_bpf_fd: fd_u32(program),
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: flags,
        ..ProgAttachAttr::default()
    };
    // SAFETY: a BPF_PROG_ATTACH/DETACH attribute without pointers.
    unsafe { bpf(cmd, &mut attr)? };
    Ok(())
}

/// Makes `program` the device filter of the cgroup `dir`, replacing what berth (or anyone)
/// attached there before.
pub(crate) fn replace_device_program(dir: &Path, program: &DeviceProgram) -> io::Result<()> {
    let cgroup = rustix::fs::open(
        dir,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let old = attached(&cgroup)?;
    let new = load(program)?;
    attach_or_detach(BPF_PROG_ATTACH, &cgroup, &new, BPF_F_ALLOW_MULTI)?;
    for id in old {
        let program = match program_by_id(id) {
            Ok(program) => program,
            Err(err) if err.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(err) => return Err(err),
        };
        match attach_or_detach(BPF_PROG_DETACH, &cgroup, &program, 0) {
            Ok(()) => {}
            Err(err) if err.raw_os_error() == Some(libc::ENOENT) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// The ids of the device programs attached to the cgroup `dir`.
#[cfg(test)]
pub(crate) fn attached_programs(dir: &Path) -> io::Result<Vec<u32>> {
    let cgroup = rustix::fs::open(
        dir,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    attached(&cgroup)
}
