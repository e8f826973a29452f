//! What a cgroup reports: usage, limits and state, the same shape on v1 and v2.

use std::collections::BTreeMap;
use std::path::Path;

use super::error::CgroupError;
use super::fs::parse_u64;

/// A limit as the kernel reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// No limit (`max` on v2, the kernel's largest value on v1).
    Max,
    /// A limit in the file's unit (bytes, tasks).
    Value(u64),
}

/// State of a cgroup's freezer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreezerState {
    /// Running.
    Thawed,
    /// Asked to freeze; some tasks are not frozen yet.
    Freezing,
    /// Every task is frozen.
    Frozen,
}

/// Usage and limits of one cgroup; a part is `None` when its controller is not there.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CgroupStats {
    /// Memory controller figures.
    pub memory: Option<MemoryStats>,
    /// CPU accounting figures.
    pub cpu: Option<CpuStats>,
    /// pids controller figures.
    pub pids: Option<PidsStats>,
}

/// Memory usage and limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryStats {
    /// Current usage in bytes (v1 `memory.usage_in_bytes`, v2 `memory.current`).
    pub usage_bytes: u64,
    /// Peak usage in bytes (v1 `memory.max_usage_in_bytes`, v2 `memory.peak` on 5.19+).
    pub max_usage_bytes: Option<u64>,
    /// The hard limit (v1 `memory.limit_in_bytes`, v2 `memory.max`).
    pub limit: Limit,
    /// Swap in use, in bytes (v1 memsw usage minus usage, v2 `memory.swap.current`).
    pub swap_usage_bytes: Option<u64>,
    /// Processes killed by the OOM killer in this cgroup (see `Cgroup::oom_kill_count`).
    pub oom_kills: Option<u64>,
    /// Every counter of `memory.stat` (for `docker stats`' cache/inactive_file arithmetic).
    pub stat: BTreeMap<String, u64>,
}

/// CPU time and throttling.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CpuStats {
    /// Total CPU time in nanoseconds (v1 `cpuacct.usage`, v2 `cpu.stat` `usage_usec` × 1000).
    pub usage_ns: u64,
    /// User CPU time in nanoseconds.
    pub user_ns: Option<u64>,
    /// System CPU time in nanoseconds.
    pub system_ns: Option<u64>,
    /// Enforcement periods elapsed (`nr_periods`), with a CPU quota.
    pub periods: Option<u64>,
    /// Periods in which the cgroup was throttled (`nr_throttled`).
    pub throttled_periods: Option<u64>,
    /// Time throttled in nanoseconds (v1 `throttled_time`, v2 `throttled_usec` × 1000).
    pub throttled_ns: Option<u64>,
}

/// Task count and limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PidsStats {
    /// Tasks in the cgroup (`pids.current`).
    pub current: u64,
    /// The limit (`pids.max`).
    pub limit: Limit,
}

/// Parses a flat-keyed file (`key value` per line) into a map.
pub(crate) fn parse_flat_keyed(
    path: &Path,
    text: &str,
) -> Result<BTreeMap<String, u64>, CgroupError> {
    let mut map = BTreeMap::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let (Some(key), Some(value)) = (fields.next(), fields.next()) else {
            continue;
        };
        map.insert(key.to_owned(), parse_u64(path, value)?);
    }
    Ok(map)
}
