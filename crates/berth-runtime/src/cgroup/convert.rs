//! Pure conversions from OCI resource values to what the kernel files take, following runc so
//! that a spec means the same under berth as under runc on either cgroup version.

use std::path::Path;

use super::error::CgroupError;
use super::fs::parse_u64;
use super::stats::Limit;

/// The smallest `cpu.shares` the kernel accepts.
pub const MIN_CPU_SHARES: u64 = 2;
/// The largest `cpu.shares` the kernel accepts.
pub const MAX_CPU_SHARES: u64 = 262_144;

/// v1 `cpu.shares` to v2 `cpu.weight`, as runc converts: `1 + ((shares - 2) * 9999) / 262142`,
/// mapping [2, 262144] onto [1, 10000]. 0 means "unset" and stays 0; out-of-range shares are
/// clamped first, as the kernel clamps them on v1.
pub fn cpu_shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    let shares = shares.clamp(MIN_CPU_SHARES, MAX_CPU_SHARES);
    1 + ((shares - 2) * 9999) / 262_142
}

/// v1 `blkio.weight` (10..=1000) to v2 `io.weight` (1..=10000), as runc converts:
/// `1 + (weight - 10) * 9999 / 990`. 0 means "unset" and stays 0.
pub fn blkio_weight_to_io_weight(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    let weight = u64::from(weight.clamp(10, 1000));
    1 + (weight - 10) * 9999 / 990
}

/// The value for v2 `memory.swap.max` from the OCI `memory.swap` (memory + swap, as on v1) and
/// `memory.limit`, as runc's `ConvertMemorySwapToCgroupV2Value`: `None` means "leave it".
///
/// - limit -1 and no swap: `max` (both unlimited);
/// - swap -1: `max`; swap unset: leave it;
/// - otherwise swap − limit, which needs a positive limit no larger than swap;
///   swap == limit gives `0` (no swap at all).
pub fn swap_v2_value(swap: Option<i64>, limit: Option<i64>) -> Result<Option<String>, CgroupError> {
    const FIELD: &str = "linux.resources.memory.swap";
    let memory = limit.unwrap_or(0);
    let swap = swap.unwrap_or(0);
    if memory == -1 && swap == 0 {
        return Ok(Some("max".to_owned()));
    }
    match swap {
        -1 => return Ok(Some("max".to_owned())),
        0 => return Ok(None),
        s if s < -1 => {
            return Err(CgroupError::invalid(
                FIELD,
                s,
                "must be -1 (unlimited) or a byte count",
            ))
        }
        _ => {}
    }
    if memory == 0 || memory == -1 {
        return Err(CgroupError::invalid(
            FIELD,
            swap,
            "a swap limit needs a memory limit on cgroup v2",
        ));
    }
    if memory < 0 {
        return Err(CgroupError::invalid(
            "linux.resources.memory.limit",
            memory,
            "must be -1 (unlimited) or a byte count",
        ));
    }
    if swap < memory {
        return Err(CgroupError::invalid(
            FIELD,
            swap,
            format!("memory+swap must be at least the memory limit {memory}"),
        ));
    }
    Ok(Some((swap - memory).to_string()))
}

/// A byte limit for a v1 file: `-1` stays `-1` (unlimited), other negatives are refused.
pub fn limit_v1(field: &str, value: i64) -> Result<String, CgroupError> {
    if value < -1 {
        return Err(CgroupError::invalid(
            field,
            value,
            "must be -1 (unlimited) or a byte count",
        ));
    }
    Ok(value.to_string())
}

/// A byte limit for a v2 file: `-1` becomes `max`, other negatives are refused.
pub fn limit_v2(field: &str, value: i64) -> Result<String, CgroupError> {
    match value {
        -1 => Ok("max".to_owned()),
        v if v < -1 => Err(CgroupError::invalid(
            field,
            v,
            "must be -1 (unlimited) or a byte count",
        )),
        v => Ok(v.to_string()),
    }
}

/// `pids.max` from the OCI limit: positive is a count, zero or negative is `max` (Docker treats
/// `--pids-limit 0` and `-1` as unlimited).
pub fn pids_max(limit: i64) -> String {
    if limit > 0 {
        limit.to_string()
    } else {
        "max".to_owned()
    }
}

/// Reads a limit file's content: `max`, or a number where the kernel's "unlimited" (v1's
/// `PAGE_COUNTER_MAX` pages, 9223372036854771712 with 4 KiB pages) counts as unlimited.
pub fn parse_limit(path: &Path, text: &str) -> Result<Limit, CgroupError> {
    let text = text.trim();
    if text == "max" {
        return Ok(Limit::Max);
    }
    let value = parse_u64(path, text)?;
    if value >= 1 << 62 {
        Ok(Limit::Max)
    } else {
        Ok(Limit::Value(value))
    }
}

/// Checks a huge-page size as OCI and the kernel write it (`2MB`, `1GB`, `64KB`) so it can be
/// part of a file name.
pub fn check_page_size(size: &str) -> Result<(), CgroupError> {
    let digits = size.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &size[digits.len()..];
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || !matches!(unit, "KB" | "MB" | "GB")
    {
        return Err(CgroupError::invalid(
            "linux.resources.hugepageLimits.pageSize",
            size,
            "expected a size like 2MB or 1GB",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn cgroup_shares_to_weight_matches_runc() {
        assert_eq!(cpu_shares_to_weight(0), 0);
        assert_eq!(cpu_shares_to_weight(2), 1);
        assert_eq!(cpu_shares_to_weight(1), 1, "clamped to the kernel minimum");
        assert_eq!(cpu_shares_to_weight(512), 20);
        assert_eq!(cpu_shares_to_weight(1024), 39);
        assert_eq!(cpu_shares_to_weight(262_144), 10_000);
        assert_eq!(cpu_shares_to_weight(1 << 40), 10_000);
    }

    #[test]
    fn cgroup_blkio_weight_to_io_weight_matches_runc() {
        assert_eq!(blkio_weight_to_io_weight(0), 0);
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(500), 4950);
        assert_eq!(blkio_weight_to_io_weight(1000), 10_000);
    }

    #[test]
    fn cgroup_swap_conversion_matches_runc() {
        let mib = 1 << 20;
        assert_eq!(swap_v2_value(None, None).unwrap(), None);
        assert_eq!(swap_v2_value(None, Some(64 * mib)).unwrap(), None);
        assert_eq!(
            swap_v2_value(None, Some(-1)).unwrap().as_deref(),
            Some("max")
        );
        assert_eq!(
            swap_v2_value(Some(-1), Some(64 * mib)).unwrap().as_deref(),
            Some("max")
        );
        assert_eq!(
            swap_v2_value(Some(128 * mib), Some(64 * mib))
                .unwrap()
                .as_deref(),
            Some("67108864")
        );
        assert_eq!(
            swap_v2_value(Some(64 * mib), Some(64 * mib))
                .unwrap()
                .as_deref(),
            Some("0")
        );
        let err = swap_v2_value(Some(32 * mib), Some(64 * mib)).unwrap_err();
        assert!(
            err.to_string().contains("at least the memory limit"),
            "{err}"
        );
        assert!(swap_v2_value(Some(64 * mib), None).is_err());
        assert!(swap_v2_value(Some(64 * mib), Some(-1)).is_err());
        assert!(swap_v2_value(Some(-5), Some(64)).is_err());
    }

    #[test]
    fn cgroup_limits_render() {
        assert_eq!(limit_v1("f", -1).unwrap(), "-1");
        assert_eq!(limit_v2("f", -1).unwrap(), "max");
        assert_eq!(limit_v2("f", 4096).unwrap(), "4096");
        assert!(limit_v1("f", -2).is_err());
        assert_eq!(pids_max(10), "10");
        assert_eq!(pids_max(0), "max");
        assert_eq!(pids_max(-1), "max");
        let p = Path::new("memory.limit_in_bytes");
        assert_eq!(parse_limit(p, "9223372036854771712\n").unwrap(), Limit::Max);
        assert_eq!(parse_limit(p, "max").unwrap(), Limit::Max);
        assert_eq!(
            parse_limit(p, "67108864").unwrap(),
            Limit::Value(67_108_864)
        );
        assert!(parse_limit(p, "lots").is_err());
    }

    #[test]
    fn cgroup_page_sizes() {
        check_page_size("2MB").unwrap();
        check_page_size("1GB").unwrap();
        check_page_size("64KB").unwrap();
        assert!(check_page_size("2M").is_err());
        assert!(check_page_size("../2MB").is_err());
        assert!(check_page_size("MB").is_err());
    }
}
