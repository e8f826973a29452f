//! System call name → number tables, one per kernel ABI a seccomp filter can see.
//!
//! The tables are plain `(name, number)` arrays sorted by number; lookups scan them, which costs
//! a few microseconds per profile and keeps the data easy to check against the kernel's tables.

mod aarch64;
mod arm;
mod i386;
mod x32;
mod x86_64;

/// `__X32_SYSCALL_BIT`: x32 syscalls arrive as `AUDIT_ARCH_X86_64` with this bit in the number.
pub(crate) const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// A kernel syscall ABI, as a seccomp filter tells them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Abi {
    /// x86_64 native.
    X86_64,
    /// x32 on x86_64: same audit arch, numbers with [`X32_SYSCALL_BIT`].
    X32,
    /// 32-bit x86 on x86_64.
    I386,
    /// aarch64 native.
    Aarch64,
    /// 32-bit ARM EABI on aarch64.
    Arm,
}

impl Abi {
    /// Every ABI with a table.
    #[cfg(test)]
    pub(crate) const ALL: [Abi; 5] = [Abi::X86_64, Abi::X32, Abi::I386, Abi::Aarch64, Abi::Arm];

    /// The value the kernel puts in `seccomp_data.arch` (`AUDIT_ARCH_*`).
    pub(crate) const fn audit_arch(self) -> u32 {
        match self {
            Abi::X86_64 | Abi::X32 => 0xc000_003e,
            Abi::I386 => 0x4000_0003,
            Abi::Aarch64 => 0xc000_00b7,
            Abi::Arm => 0x4000_0028,
        }
    }

    /// Short name for log events and errors.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Abi::X86_64 => "x86_64",
            Abi::X32 => "x32",
            Abi::I386 => "i386",
            Abi::Aarch64 => "aarch64",
            Abi::Arm => "arm",
        }
    }

    /// Whether syscall arguments are 32-bit, so only their low halves are compared.
    pub(crate) const fn has_32bit_args(self) -> bool {
        matches!(self, Abi::I386 | Abi::Arm)
    }

    fn table(self) -> &'static [(&'static str, u32)] {
        match self {
            Abi::X86_64 => x86_64::SYSCALLS,
            Abi::X32 => x32::SYSCALLS,
            Abi::I386 => i386::SYSCALLS,
            Abi::Aarch64 => aarch64::SYSCALLS,
            Abi::Arm => arm::SYSCALLS,
        }
    }

    /// The number the kernel puts in `seccomp_data.nr` for `name`, if this ABI has the call.
    pub(crate) fn number(self, name: &str) -> Option<u32> {
        let bias = if self == Abi::X32 { X32_SYSCALL_BIT } else { 0 };
        self.table()
            .iter()
            .find(|(candidate, _)| *candidate == name)
            .map(|&(_, number)| number | bias)
    }

    /// Every `(name, number)` of this ABI, numbers as in `seccomp_data.nr`.
    #[cfg(test)]
    pub(crate) fn entries(self) -> impl Iterator<Item = (&'static str, u32)> {
        let bias = if self == Abi::X32 { X32_SYSCALL_BIT } else { 0 };
        self.table()
            .iter()
            .map(move |&(name, number)| (name, number | bias))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn tables_are_sorted_and_names_unique() {
        for abi in Abi::ALL {
            let table = abi.table();
            assert!(
                table.windows(2).all(|pair| pair[0].1 <= pair[1].1),
                "{} table not sorted by number",
                abi.name()
            );
            let mut names = HashSet::new();
            for (name, _) in table {
                assert!(names.insert(name), "{} lists {name} twice", abi.name());
            }
        }
    }

    #[test]
    fn well_known_numbers() {
        let cases: &[(Abi, &str, u32)] = &[
            (Abi::X86_64, "read", 0),
            (Abi::X86_64, "getpid", 39),
            (Abi::X86_64, "clone", 56),
            (Abi::X86_64, "personality", 135),
            (Abi::X86_64, "mount", 165),
            (Abi::X86_64, "keyctl", 250),
            (Abi::X86_64, "unshare", 272),
            (Abi::X86_64, "clone3", 435),
            (Abi::X86_64, "mseal", 462),
            (Abi::X86_64, "listns", 470),
            (Abi::X86_64, "uselib", 134),
            (Abi::X32, "read", X32_SYSCALL_BIT),
            (Abi::X32, "ioctl", X32_SYSCALL_BIT + 514),
            (Abi::X32, "execve", X32_SYSCALL_BIT + 520),
            (Abi::I386, "socketcall", 102),
            (Abi::I386, "clone", 120),
            (Abi::I386, "socket", 359),
            (Abi::I386, "_llseek", 140),
            (Abi::Aarch64, "openat", 56),
            (Abi::Aarch64, "clone", 220),
            (Abi::Aarch64, "personality", 92),
            (Abi::Arm, "set_tls", 0x000f_0005),
            (Abi::Arm, "arm_sync_file_range", 341),
            (Abi::Arm, "sync_file_range2", 341),
        ];
        for &(abi, name, number) in cases {
            assert_eq!(abi.number(name), Some(number), "{} {name}", abi.name());
        }
        assert_eq!(Abi::X86_64.number("chown32"), None);
        assert_eq!(Abi::X32.number("rt_sigaction"), Some(X32_SYSCALL_BIT + 512));
        assert_eq!(Abi::Aarch64.number("open"), None);
    }

    /// The host's table agrees with the libc crate on every name both know.
    #[test]
    fn host_table_matches_libc() {
        #[cfg(target_arch = "x86_64")]
        let (abi, known) = (
            Abi::X86_64,
            [
                ("read", libc::SYS_read),
                ("openat", libc::SYS_openat),
                ("clone", libc::SYS_clone),
                ("clone3", libc::SYS_clone3),
                ("keyctl", libc::SYS_keyctl),
                ("unshare", libc::SYS_unshare),
                ("mount", libc::SYS_mount),
                ("seccomp", libc::SYS_seccomp),
                ("futex_waitv", libc::SYS_futex_waitv),
                ("fchmodat2", libc::SYS_fchmodat2),
            ],
        );
        #[cfg(target_arch = "aarch64")]
        let (abi, known) = (
            Abi::Aarch64,
            [
                ("read", libc::SYS_read),
                ("openat", libc::SYS_openat),
                ("clone", libc::SYS_clone),
                ("clone3", libc::SYS_clone3),
                ("keyctl", libc::SYS_keyctl),
                ("unshare", libc::SYS_unshare),
                ("mount", libc::SYS_mount),
                ("seccomp", libc::SYS_seccomp),
                ("futex_waitv", libc::SYS_futex_waitv),
                ("mseal", libc::SYS_mseal),
            ],
        );
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        for (name, number) in known {
            assert_eq!(abi.number(name).map(i64::from), Some(number), "{name}");
        }
    }
}
