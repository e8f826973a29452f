//! Seccomp: OCI profiles compiled to classic BPF, loaded with seccomp(2), and Docker's default
//! profile.
//!
//! Compile first, load later: [`compile`] does all the allocation and name lookups, and
//! [`SeccompProgram::load`] is one system call, safe to run in a child after `fork()`.
//!
//! How a profile becomes a filter (the semantics runc gives it through libseccomp, with the
//! differences noted):
//!
//! - **Architectures.** The filter first checks `seccomp_data.arch`. The host's native ABI is
//!   always accepted; the compat ABIs the profile lists (`SCMP_ARCH_X86` and `SCMP_ARCH_X32` on
//!   x86_64 hosts, `SCMP_ARCH_ARM` on aarch64 hosts) get their own syscall tables and their own
//!   section of the program. Any other arch value, and x32 numbers when x32 is not listed, is
//!   killed with `SECCOMP_RET_KILL_PROCESS`, like libseccomp's bad-arch action. Architectures
//!   that cannot occur on the host (`SCMP_ARCH_MIPS` on x86_64) are ignored.
//! - **Rules.** Rules are tried in profile order; the first whose conditions all hold decides.
//!   A rule's conditions are ANDed. A syscall name missing from an architecture's table is
//!   skipped with a `tracing::debug` event, as runc does.
//! - **Arguments** are 64-bit and compared as high and low 32-bit halves on 64-bit ABIs (x86_64,
//!   x32, aarch64). On the 32-bit ABIs (i386, arm) only the low half is compared, against the
//!   low half of the rule's value, as libseccomp does: the kernel ignores the upper half there.
//! - **Actions**: `SCMP_ACT_KILL`/`KILL_THREAD`, `KILL_PROCESS`, `TRAP`, `ERRNO` (`errnoRet`,
//!   default `EPERM`), `TRACE` (`errnoRet` as the message, default `EPERM`), `LOG`, `ALLOW` and
//!   `NOTIFY` (which makes [`SeccompProgram::load`] ask the kernel for a listener fd).
//!
//! Multiplexed calls are filtered as the numbers the kernel sees: on i386, `socketcall` and
//! `ipc` are separate syscalls from `socket` and `msgget`, so a rule on `socket`'s arguments does
//! not reach `socketcall(SYS_SOCKET, ...)` (Docker's profile allows `socketcall` outright).

mod bpf;
mod compiler;
mod docker;
mod load;
mod syscalls;

#[cfg(test)]
mod interpreter;
#[cfg(test)]
mod priv_tests;
#[cfg(test)]
mod tests;

use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

pub use bpf::SockFilter;
pub use compiler::{compile, compile_for, keep_precompiled, precompiled_image};
pub use docker::docker_default;

/// Host architectures berth compiles seccomp filters for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Arch {
    /// x86_64 (`AUDIT_ARCH_X86_64`); compat ABIs i386 and x32.
    X86_64,
    /// aarch64 little-endian (`AUDIT_ARCH_AARCH64`); compat ABI 32-bit ARM EABI.
    Aarch64,
}

impl Arch {
    /// The architecture this binary was built for, or `None` where berth has no syscall tables.
    pub const fn host() -> Option<Arch> {
        if cfg!(target_arch = "x86_64") {
            Some(Arch::X86_64)
        } else if cfg!(target_arch = "aarch64") {
            Some(Arch::Aarch64)
        } else {
            None
        }
    }

    /// The name Docker's profile uses for this architecture (Go's `GOARCH`).
    pub const fn docker_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::Aarch64 => "arm64",
        }
    }
}

/// A compiled seccomp filter with the `seccomp(2)` flags it is to be loaded with.
///
/// Built by [`compile`] or [`compile_for`]; loading it ([`SeccompProgram::load`]) allocates
/// nothing, so a child can load it between `fork()` and `execve()`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeccompProgram {
    instructions: Vec<SockFilter>,
    flags: u32,
    listener_path: Option<PathBuf>,
    listener_metadata: Option<String>,
}

impl SeccompProgram {
    /// The BPF instructions, as the kernel will run them.
    pub fn instructions(&self) -> &[SockFilter] {
        &self.instructions
    }

    /// Number of BPF instructions (the kernel accepts at most 4096).
    pub fn len(&self) -> usize {
        self.instructions.len()
    }

    /// Whether the program has no instructions (never true for a compiled profile).
    pub fn is_empty(&self) -> bool {
        self.instructions.is_empty()
    }

    /// The `SECCOMP_FILTER_FLAG_*` bits [`SeccompProgram::load`] passes to `seccomp(2)`.
    pub fn filter_flags(&self) -> u32 {
        self.flags
    }

    /// Whether some rule uses `SCMP_ACT_NOTIFY`, so loading returns a listener fd.
    pub fn uses_notify(&self) -> bool {
        self.flags & load::FLAG_NEW_LISTENER != 0
    }

    /// The profile's `listenerPath`: the unix socket the caller sends the listener fd to, with
    /// the container state, after loading.
    pub fn listener_path(&self) -> Option<&Path> {
        self.listener_path.as_deref()
    }

    /// The profile's `listenerMetadata`, opaque data the caller passes to the seccomp agent.
    pub fn listener_metadata(&self) -> Option<&str> {
        self.listener_metadata.as_deref()
    }

    /// Installs the filter on the calling thread (all threads with `SECCOMP_FILTER_FLAG_TSYNC`).
    ///
    /// The caller must first set `no_new_privs` (`prctl(PR_SET_NO_NEW_PRIVS)`) or hold
    /// `CAP_SYS_ADMIN`; this function does not. Returns the user-notification listener when the
    /// profile uses `SCMP_ACT_NOTIFY`. Allocates nothing: safe after `fork()`.
    pub fn load(&self) -> Result<Option<OwnedFd>, SeccompError> {
        load::install(&self.instructions, self.flags)
    }
}

/// Errors from compiling or loading a seccomp profile.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// The binary was built for an architecture berth has no syscall tables for.
    #[error(
        "berth has no seccomp syscall tables for this host architecture; \
         build for x86_64 or aarch64, or run the container without a seccomp profile"
    )]
    UnsupportedHostArch,

    /// `defaultErrnoRet` does not fit the 16 data bits of a seccomp return value.
    #[error(
        "defaultErrnoRet {value} does not fit a seccomp return value; use an errno below 65536"
    )]
    DefaultErrnoOutOfRange {
        /// The value from the profile.
        value: u32,
    },

    /// A rule's `errnoRet` does not fit the 16 data bits of a seccomp return value.
    #[error(
        "errnoRet {value} in the rule for syscall {syscall} does not fit a seccomp return value; \
         use an errno below 65536"
    )]
    ErrnoOutOfRange {
        /// First syscall name of the rule.
        syscall: String,
        /// The value from the profile.
        value: u32,
    },

    /// A rule tests an argument index seccomp cannot see.
    #[error(
        "argument index {index} in the rule for syscall {syscall} is out of range; \
         seccomp can test arguments 0 to 5"
    )]
    ArgIndexOutOfRange {
        /// First syscall name of the rule.
        syscall: String,
        /// The index from the profile.
        index: usize,
    },

    /// `SCMP_ACT_NOTIFY` as the default action would block the runtime itself.
    #[error(
        "SCMP_ACT_NOTIFY cannot be the default action: the runtime's own syscalls after loading \
         would wait for an agent that has no listener yet; notify specific syscalls instead"
    )]
    NotifyAsDefaultAction,

    /// The compiled program is longer than the kernel accepts.
    #[error(
        "compiled seccomp program has {len} instructions, over the kernel limit of {limit}; \
         merge rules or drop argument conditions"
    )]
    ProgramTooLong {
        /// Instructions in the compiled program.
        len: usize,
        /// The kernel's limit (`BPF_MAXINSNS`).
        limit: usize,
    },

    /// A bug in berth's BPF assembler: a jump to a label that is missing or behind it.
    #[error("internal error in berth's seccomp compiler: jump label {label} {problem}")]
    Label {
        /// The label's number.
        label: usize,
        /// What is wrong with it.
        problem: &'static str,
    },

    /// `seccomp(SECCOMP_SET_MODE_FILTER)` failed.
    #[error(
        "installing the seccomp filter (flags {flags:#x}) failed; set no_new_privs or hold \
         CAP_SYS_ADMIN first, and drop flags the kernel does not support"
    )]
    Load {
        /// The `SECCOMP_FILTER_FLAG_*` bits passed.
        flags: u32,
        /// The kernel's error.
        #[source]
        source: io::Error,
    },

    /// `SECCOMP_FILTER_FLAG_TSYNC` could not move another thread onto the new filter.
    #[error(
        "seccomp filter not installed: thread {thread} could not be synchronized \
         (SECCOMP_FILTER_FLAG_TSYNC); load the filter before that thread diverges"
    )]
    Tsync {
        /// The thread id the kernel reported.
        thread: i64,
    },
}
