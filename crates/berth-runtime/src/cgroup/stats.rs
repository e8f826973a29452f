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
    /// Block I/O figures (v1 `blkio`, v2 `io`).
    pub blkio: Option<BlkioStats>,
}

/// Bytes and operations per block device, in Docker's `blkio_stats` terms.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlkioStats {
    /// Bytes moved (`io_service_bytes_recursive`): v1 `blkio.throttle.io_service_bytes_recursive`
    /// (else `blkio.io_service_bytes_recursive`), v2 `io.stat` `rbytes`/`wbytes`.
    pub service_bytes: Vec<BlkioEntry>,
    /// Operations (`io_serviced_recursive`): v1 `..._io_serviced_recursive`, v2 `rios`/`wios`.
    pub serviced: Vec<BlkioEntry>,
}

/// One `major:minor op value` figure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlkioEntry {
    /// Device major number.
    pub major: u64,
    /// Device minor number.
    pub minor: u64,
    /// `read`, `write`, `sync`, `async`, `discard` or `total` (v1 spells them capitalised; v2
    /// gives `read` and `write`, as Docker reports them).
    pub op: String,
    /// Bytes or operations.
    pub value: u64,
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
    /// Nanoseconds per CPU (v1 `cpuacct.usage_percpu`; v2 has no such file: empty).
    pub percpu_ns: Vec<u64>,
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

/// Parses v1's `blkio.*_recursive` files: `MAJ:MIN Op value` lines and a final `Total value`.
pub(crate) fn parse_blkio_v1(path: &Path, text: &str) -> Result<Vec<BlkioEntry>, CgroupError> {
    let mut out = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [device, op, value] = fields[..] else {
            continue;
        };
        let Some((major, minor)) = device.split_once(':') else {
            continue;
        };
        out.push(BlkioEntry {
            major: parse_u64(path, major)?,
            minor: parse_u64(path, minor)?,
            op: op.to_owned(),
            value: parse_u64(path, value)?,
        });
    }
    Ok(out)
}

/// Parses v2's `io.stat` (`MAJ:MIN rbytes=.. wbytes=.. rios=.. wios=..` per device) into
/// Docker's byte and operation lists (`read`/`write` entries, as dockerd reports v2).
pub(crate) fn parse_io_stat_v2(path: &Path, text: &str) -> Result<BlkioStats, CgroupError> {
    let mut stats = BlkioStats::default();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some((major, minor)) = fields.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (major, minor) = (parse_u64(path, major)?, parse_u64(path, minor)?);
        for field in fields {
            let Some((key, value)) = field.split_once('=') else {
                continue;
            };
            let (list, op) = match key {
                "rbytes" => (&mut stats.service_bytes, "read"),
                "wbytes" => (&mut stats.service_bytes, "write"),
                "rios" => (&mut stats.serviced, "read"),
                "wios" => (&mut stats.serviced, "write"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.to_owned(),
                value: parse_u64(path, value)?,
            });
        }
    }
    Ok(stats)
}

/// The host's CPU time in nanoseconds (the `cpu` line of `<proc_root>/stat`, user to steal,
/// in USER_HZ ticks) and the number of CPUs listed there: Docker's `system_cpu_usage` and
/// `online_cpus`.
pub fn system_cpu_usage(proc_root: &Path) -> Result<(u64, u32), CgroupError> {
    let path = proc_root.join("stat");
    let text = std::fs::read_to_string(&path).map_err(|source| CgroupError::Read {
        path: path.clone(),
        source,
    })?;
    parse_proc_stat(&path, &text)
}

/// The host's memory in bytes (`MemTotal` of `<proc_root>/meminfo`): Docker's memory limit of
/// a container without one.
pub fn host_memory_bytes(proc_root: &Path) -> Result<u64, CgroupError> {
    let path = proc_root.join("meminfo");
    let text = std::fs::read_to_string(&path).map_err(|source| CgroupError::Read {
        path: path.clone(),
        source,
    })?;
    let kib = text
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .map(|v| v.trim().trim_end_matches("kB").trim())
        .ok_or_else(|| CgroupError::Parse {
            path: path.clone(),
            content: text.lines().next().unwrap_or("").to_owned(),
        })?;
    Ok(parse_u64(&path, kib)?.saturating_mul(1024))
}

/// See [`system_cpu_usage`].
pub(crate) fn parse_proc_stat(path: &Path, text: &str) -> Result<(u64, u32), CgroupError> {
    let mut total = None;
    let mut cpus = 0u32;
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        match fields.next() {
            Some("cpu") => {
                let mut ticks = 0u64;
                // user nice system idle iowait irq softirq steal (guest time is inside user)
                for value in fields.take(8) {
                    ticks = ticks.saturating_add(parse_u64(path, value)?);
                }
                total = Some(ticks.saturating_mul(super::v1::NANOS_PER_USER_TICK));
            }
            Some(name) if name.starts_with("cpu") => cpus += 1,
            _ => {}
        }
    }
    let total = total.ok_or_else(|| CgroupError::Parse {
        path: path.to_path_buf(),
        content: text.lines().next().unwrap_or("").to_owned(),
    })?;
    Ok((total, cpus))
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn proc_stat_gives_host_cpu_time_and_cpu_count() {
        let text = "cpu  100 2 30 400 5 6 7 8 9 10\ncpu0 50 1 15 200 2 3 3 4 0 0\ncpu1 50 1 15 200 3 3 4 4 0 0\nintr 1 2 3\nctxt 99\n";
        let (total, cpus) = parse_proc_stat(Path::new("/proc/stat"), text).unwrap();
        // user..steal (guest and guest_nice are already inside user), 10 ms ticks
        assert_eq!(total, (100 + 2 + 30 + 400 + 5 + 6 + 7 + 8) * 10_000_000);
        assert_eq!(cpus, 2);
        assert!(matches!(
            parse_proc_stat(Path::new("/proc/stat"), "intr 1\n").unwrap_err(),
            CgroupError::Parse { .. }
        ));
        assert!(matches!(
            parse_proc_stat(Path::new("/proc/stat"), "cpu 1 x 3\n").unwrap_err(),
            CgroupError::Parse { .. }
        ));
    }

    #[test]
    fn real_proc_stat_reads() {
        let (total, cpus) = system_cpu_usage(Path::new("/proc")).unwrap();
        assert!(total > 0 && cpus >= 1);
        assert!(host_memory_bytes(Path::new("/proc")).unwrap() > 1 << 20);
    }
}
