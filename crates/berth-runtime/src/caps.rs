//! Capability names, Docker's default set, and applying an OCI `process.capabilities`.

use rustix::thread::{CapabilitySet, CapabilitySets};

/// Every capability Linux defines, by number.
pub const ALL: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Docker's default capability set for containers.
pub const DOCKER_DEFAULT: [&str; 14] = [
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
];

/// Why a capability name was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown capability {0:?}: use names like CAP_NET_ADMIN (or NET_ADMIN), or ALL")]
pub struct CapabilityError(pub String);

/// The number of a capability name (`CAP_NET_ADMIN`, `net_admin`, `NET_ADMIN`).
pub fn number(name: &str) -> Result<u32, CapabilityError> {
    let upper = name.trim().to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    ALL.iter()
        .position(|c| *c == full)
        .map(|n| n as u32)
        .ok_or_else(|| CapabilityError(name.to_string()))
}

/// The canonical name of a capability (`CAP_` prefixed, upper case).
pub fn canonical(name: &str) -> Result<String, CapabilityError> {
    number(name).map(|n| ALL[n as usize].to_string())
}

/// Docker's `--cap-add`/`--cap-drop` arithmetic over the default set (`ALL` allowed in both).
pub fn adjust(
    base: &[&str],
    add: &[String],
    drop: &[String],
) -> Result<Vec<String>, CapabilityError> {
    let mut set: Vec<String> = base.iter().map(|s| s.to_string()).collect();
    let is_all = |v: &[String]| v.iter().any(|c| c.eq_ignore_ascii_case("ALL"));
    if is_all(drop) {
        set.clear();
    } else {
        for d in drop {
            let c = canonical(d)?;
            set.retain(|x| *x != c);
        }
    }
    if is_all(add) {
        set = ALL.iter().map(|s| s.to_string()).collect();
    } else {
        for a in add {
            let c = canonical(a)?;
            if !set.contains(&c) {
                set.push(c);
            }
        }
    }
    Ok(set)
}

/// A set of capability names as a bitmask.
pub fn to_set(names: &[String]) -> Result<CapabilitySet, CapabilityError> {
    let mut bits = 0u64;
    for n in names {
        bits |= 1 << number(n)?;
    }
    Ok(CapabilitySet::from_bits_retain(bits))
}

/// The capability sets of the current process, by name (for tests and `top`-like tools).
pub fn current() -> std::io::Result<CapabilitySets> {
    rustix::thread::capabilities(None).map_err(Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(number("CAP_CHOWN"), Ok(0));
        assert_eq!(number("net_admin"), Ok(12));
        assert_eq!(number("SYS_ADMIN"), Ok(21));
        assert_eq!(number("CAP_CHECKPOINT_RESTORE"), Ok(40));
        assert!(number("CAP_FLY").is_err());
    }

    #[test]
    fn add_and_drop_like_docker() {
        let s = adjust(&DOCKER_DEFAULT, &["NET_ADMIN".into()], &["chown".into()]).expect("valid");
        assert!(s.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(!s.contains(&"CAP_CHOWN".to_string()));
        assert_eq!(s.len(), DOCKER_DEFAULT.len());
        let s = adjust(&DOCKER_DEFAULT, &["KILL".into()], &["ALL".into()]).expect("valid");
        assert_eq!(s, vec!["CAP_KILL".to_string()]);
        let s = adjust(&DOCKER_DEFAULT, &["ALL".into()], &[]).expect("valid");
        assert_eq!(s.len(), ALL.len());
        assert!(adjust(&DOCKER_DEFAULT, &["BOGUS".into()], &[]).is_err());
        let bits = to_set(&["CAP_KILL".into(), "CAP_CHOWN".into()]).expect("valid");
        assert_eq!(bits.bits(), (1 << 5) | 1);
    }
}
