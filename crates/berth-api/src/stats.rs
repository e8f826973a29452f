//! `GET /containers/{id}/stats`: Docker's stats JSON (`StatsResponse`), and the arithmetic the
//! docker CLI applies to it (CPU %, memory without cache, block and network totals).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One stats sample with the previous one's CPU figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatsResponse {
    /// Container name with a leading `/`.
    #[serde(default)]
    pub name: String,
    /// Container ID.
    #[serde(default)]
    pub id: String,
    /// When this sample was read (RFC 3339; Docker's zero time for a stopped container).
    #[serde(default)]
    pub read: String,
    /// When the previous sample was read.
    #[serde(default)]
    pub preread: String,
    /// Process counts.
    #[serde(default)]
    pub pids_stats: PidsStats,
    /// Block I/O.
    #[serde(default)]
    pub blkio_stats: BlkioStats,
    /// Windows only: always 0.
    #[serde(default)]
    pub num_procs: u32,
    /// Windows only: empty.
    #[serde(default)]
    pub storage_stats: serde_json::Map<String, serde_json::Value>,
    /// CPU figures of this sample.
    #[serde(default)]
    pub cpu_stats: CpuStats,
    /// CPU figures of the previous sample.
    #[serde(default)]
    pub precpu_stats: CpuStats,
    /// Memory figures.
    #[serde(default)]
    pub memory_stats: MemoryStats,
    /// Per-interface network figures; absent with `--network none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networks: Option<BTreeMap<String, NetworkStats>>,
}

/// `pids_stats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PidsStats {
    /// Processes (threads) in the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<u64>,
    /// The limit (absent when unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
}

/// `blkio_stats`: lists are `null` when the controller reports nothing, as in Docker.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BlkioStats {
    /// Bytes per device and operation.
    #[serde(default)]
    pub io_service_bytes_recursive: Option<Vec<BlkioEntry>>,
    /// Operations per device and operation.
    #[serde(default)]
    pub io_serviced_recursive: Option<Vec<BlkioEntry>>,
    /// CFQ only: null.
    #[serde(default)]
    pub io_queue_recursive: Option<Vec<BlkioEntry>>,
    /// CFQ only: null.
    #[serde(default)]
    pub io_service_time_recursive: Option<Vec<BlkioEntry>>,
    /// CFQ only: null.
    #[serde(default)]
    pub io_wait_time_recursive: Option<Vec<BlkioEntry>>,
    /// CFQ only: null.
    #[serde(default)]
    pub io_merged_recursive: Option<Vec<BlkioEntry>>,
    /// CFQ only: null.
    #[serde(default)]
    pub io_time_recursive: Option<Vec<BlkioEntry>>,
    /// CFQ only: null.
    #[serde(default)]
    pub sectors_recursive: Option<Vec<BlkioEntry>>,
}

/// One block I/O figure.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BlkioEntry {
    /// Device major.
    pub major: u64,
    /// Device minor.
    pub minor: u64,
    /// `read`, `write`, ... (v1 spells them `Read`, `Write`).
    pub op: String,
    /// The value.
    pub value: u64,
}

/// `cpu_stats` / `precpu_stats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuStats {
    /// Container CPU time.
    #[serde(default)]
    pub cpu_usage: CpuUsage,
    /// Host CPU time in nanoseconds (absent in an empty precpu_stats).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_cpu_usage: Option<u64>,
    /// CPUs online on the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub online_cpus: Option<u32>,
    /// CFS throttling.
    #[serde(default)]
    pub throttling_data: ThrottlingData,
}

/// `cpu_usage`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuUsage {
    /// Total CPU time in nanoseconds.
    #[serde(default)]
    pub total_usage: u64,
    /// Per-CPU nanoseconds (cgroup v1 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percpu_usage: Option<Vec<u64>>,
    /// System time in nanoseconds.
    #[serde(default)]
    pub usage_in_kernelmode: u64,
    /// User time in nanoseconds.
    #[serde(default)]
    pub usage_in_usermode: u64,
}

/// `throttling_data`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ThrottlingData {
    /// Enforcement periods.
    #[serde(default)]
    pub periods: u64,
    /// Periods throttled.
    #[serde(default)]
    pub throttled_periods: u64,
    /// Nanoseconds throttled.
    #[serde(default)]
    pub throttled_time: u64,
}

/// `memory_stats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemoryStats {
    /// Bytes in use (page cache included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<u64>,
    /// Peak bytes (v1, and v2 with `memory.peak`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_usage: Option<u64>,
    /// `memory.stat`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<BTreeMap<String, u64>>,
    /// The limit in bytes (the host's memory when unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
}

/// One interface's counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkStats {
    /// Bytes received.
    #[serde(default)]
    pub rx_bytes: u64,
    /// Bytes sent.
    #[serde(default)]
    pub tx_bytes: u64,
}

impl StatsResponse {
    /// The docker CLI's CPU %: container CPU time over host CPU time since the previous
    /// sample, times the CPUs online (the per-CPU list's length when that is not reported).
    pub fn cpu_percent(&self) -> f64 {
        let cpu_delta = self.cpu_stats.cpu_usage.total_usage as f64
            - self.precpu_stats.cpu_usage.total_usage as f64;
        let system_delta = self.cpu_stats.system_cpu_usage.unwrap_or(0) as f64
            - self.precpu_stats.system_cpu_usage.unwrap_or(0) as f64;
        let online = match self.cpu_stats.online_cpus {
            Some(n) if n > 0 => n as f64,
            _ => self
                .cpu_stats
                .cpu_usage
                .percpu_usage
                .as_ref()
                .map_or(0, Vec::len) as f64,
        };
        if system_delta > 0.0 && cpu_delta > 0.0 {
            cpu_delta / system_delta * online * 100.0
        } else {
            0.0
        }
    }

    /// Memory in use without the inactive page cache (`total_inactive_file` on v1,
    /// `inactive_file` on v2), as the docker CLI shows it.
    pub fn memory_usage(&self) -> u64 {
        let usage = self.memory_stats.usage.unwrap_or(0);
        let stats = self.memory_stats.stats.as_ref();
        let stat = |k: &str| stats.and_then(|s| s.get(k)).copied();
        if let Some(v) = stat("total_inactive_file").filter(|v| *v < usage) {
            return usage - v;
        }
        match stat("inactive_file") {
            Some(v) if v < usage => usage - v,
            _ => usage,
        }
    }

    /// Memory use as a percentage of the limit (0 without a limit).
    pub fn memory_percent(&self) -> f64 {
        match self.memory_stats.limit {
            Some(limit) if limit > 0 => self.memory_usage() as f64 / limit as f64 * 100.0,
            _ => 0.0,
        }
    }

    /// Bytes read and written (the `read`/`write` entries of `io_service_bytes_recursive`).
    pub fn block_io(&self) -> (u64, u64) {
        let mut read = 0u64;
        let mut write = 0u64;
        for e in self.blkio_stats.io_service_bytes_recursive.iter().flatten() {
            match e.op.chars().next().map(|c| c.to_ascii_lowercase()) {
                Some('r') => read = read.saturating_add(e.value),
                Some('w') => write = write.saturating_add(e.value),
                _ => {}
            }
        }
        (read, write)
    }

    /// Bytes received and sent over every interface.
    pub fn network_io(&self) -> (u64, u64) {
        self.networks
            .iter()
            .flatten()
            .fold((0, 0), |(rx, tx), (_, n)| {
                (rx.saturating_add(n.rx_bytes), tx.saturating_add(n.tx_bytes))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(total: u64, pre_total: u64, system: u64, pre_system: u64) -> StatsResponse {
        let mut s = StatsResponse::default();
        s.cpu_stats.cpu_usage.total_usage = total;
        s.cpu_stats.system_cpu_usage = Some(system);
        s.cpu_stats.online_cpus = Some(4);
        s.precpu_stats.cpu_usage.total_usage = pre_total;
        s.precpu_stats.system_cpu_usage = Some(pre_system);
        s
    }

    #[test]
    fn cpu_percent_is_dockers_formula() {
        // 0.5 s of container time over 4 s of host time (1 s on 4 CPUs) = one half CPU = 50 %
        let s = sample(1_500_000_000, 1_000_000_000, 14_000_000_000, 10_000_000_000);
        assert!((s.cpu_percent() - 50.0).abs() < 1e-9, "{}", s.cpu_percent());
        // a busy loop on one CPU of four: 100 %
        let s = sample(2_000_000_000, 1_000_000_000, 14_000_000_000, 10_000_000_000);
        assert!((s.cpu_percent() - 100.0).abs() < 1e-9);
        // no previous sample (one-shot) or no progress: 0
        let mut s = sample(2_000_000_000, 0, 14_000_000_000, 0);
        s.precpu_stats = CpuStats::default();
        assert!(s.cpu_percent() > 0.0, "against zero, as docker computes it");
        let s = sample(1_000_000_000, 1_000_000_000, 14_000_000_000, 10_000_000_000);
        assert_eq!(s.cpu_percent(), 0.0);
        let s = sample(2_000_000_000, 1_000_000_000, 10_000_000_000, 10_000_000_000);
        assert_eq!(s.cpu_percent(), 0.0, "no host time passed");
        // online_cpus absent: the per-CPU list's length
        let mut s = sample(1_500_000_000, 1_000_000_000, 14_000_000_000, 10_000_000_000);
        s.cpu_stats.online_cpus = None;
        s.cpu_stats.cpu_usage.percpu_usage = Some(vec![1, 2]);
        assert!((s.cpu_percent() - 25.0).abs() < 1e-9);
    }

    #[test]
    fn memory_without_inactive_cache() {
        let mut s = StatsResponse::default();
        s.memory_stats.usage = Some(10 << 20);
        s.memory_stats.limit = Some(64 << 20);
        s.memory_stats.stats = Some(BTreeMap::from([("inactive_file".into(), 2 << 20)]));
        assert_eq!(s.memory_usage(), 8 << 20);
        assert!((s.memory_percent() - 12.5).abs() < 1e-9);
        s.memory_stats.stats = Some(BTreeMap::from([("total_inactive_file".into(), 4 << 20)]));
        assert_eq!(s.memory_usage(), 6 << 20, "v1's total_inactive_file");
        s.memory_stats.limit = None;
        assert_eq!(s.memory_percent(), 0.0);
    }

    #[test]
    fn block_io_sums_reads_and_writes() {
        let e = |op: &str, value| BlkioEntry {
            major: 8,
            minor: 0,
            op: op.into(),
            value,
        };
        let mut s = StatsResponse::default();
        s.blkio_stats.io_service_bytes_recursive = Some(vec![
            e("Read", 10),
            e("Write", 20),
            e("Total", 30),
            e("read", 1),
            e("write", 2),
        ]);
        assert_eq!(s.block_io(), (11, 22));
        assert_eq!(s.network_io(), (0, 0));
    }
}
