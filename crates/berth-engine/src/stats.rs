//! `docker stats`: a container's cgroup figures in Docker's `StatsResponse` shape.

use std::path::Path;

use berth_api::stats::{
    BlkioEntry, BlkioStats, CpuStats, CpuUsage, MemoryStats, PidsStats, StatsResponse,
    ThrottlingData,
};
use berth_runtime::cgroup::{self, Limit};

use crate::containers::{State, ZERO_TIME};
use crate::{Engine, EngineError};

impl Engine {
    /// One sample of a container's usage; `previous` (the last sample of a stream) becomes
    /// `precpu_stats` and `preread`. A container that is not running gives Docker's empty
    /// sample (zero times, zero figures).
    pub fn container_stats(
        &self,
        key: &str,
        previous: Option<&StatsResponse>,
    ) -> Result<StatsResponse, EngineError> {
        let c = self.container(key)?;
        let mut out = StatsResponse {
            name: format!("/{}", c.name),
            id: c.id.clone(),
            read: ZERO_TIME.to_owned(),
            preread: ZERO_TIME.to_owned(),
            ..StatsResponse::default()
        };
        if !matches!(c.state, State::Running | State::Paused) {
            return Ok(out);
        }
        let sample = self
            .cgroup_of(&c.id)?
            .stats()
            .map_err(|e| EngineError::Internal(format!("reading the cgroup of {}: {e}", c.id)))?;
        let proc_root = Path::new("/proc");
        let (system, online) = cgroup::system_cpu_usage(proc_root)
            .map_err(|e| EngineError::Internal(format!("reading host CPU time: {e}")))?;
        out.read = berth_runtime::shim::log::timestamp_now();
        if let Some(prev) = previous {
            out.preread = prev.read.clone();
            out.precpu_stats = prev.cpu_stats.clone();
        }
        if let Some(cpu) = sample.cpu {
            out.cpu_stats = CpuStats {
                cpu_usage: CpuUsage {
                    total_usage: cpu.usage_ns,
                    percpu_usage: (!cpu.percpu_ns.is_empty()).then_some(cpu.percpu_ns),
                    usage_in_kernelmode: cpu.system_ns.unwrap_or(0),
                    usage_in_usermode: cpu.user_ns.unwrap_or(0),
                },
                system_cpu_usage: Some(system),
                online_cpus: Some(online),
                throttling_data: ThrottlingData {
                    periods: cpu.periods.unwrap_or(0),
                    throttled_periods: cpu.throttled_periods.unwrap_or(0),
                    throttled_time: cpu.throttled_ns.unwrap_or(0),
                },
            };
        } else {
            out.cpu_stats.system_cpu_usage = Some(system);
            out.cpu_stats.online_cpus = Some(online);
        }
        if let Some(mem) = sample.memory {
            let limit = match mem.limit {
                Limit::Value(v) => v,
                Limit::Max => cgroup::host_memory_bytes(proc_root).unwrap_or(0),
            };
            // an unlimited v1 cgroup reports the kernel's largest value: the host's memory
            let host = cgroup::host_memory_bytes(proc_root).unwrap_or(u64::MAX);
            out.memory_stats = MemoryStats {
                usage: Some(mem.usage_bytes),
                max_usage: mem.max_usage_bytes,
                stats: Some(mem.stat),
                limit: Some(limit.min(host)),
            };
        }
        if let Some(pids) = sample.pids {
            out.pids_stats = PidsStats {
                current: Some(pids.current),
                limit: match pids.limit {
                    Limit::Value(v) => Some(v),
                    Limit::Max => None,
                },
            };
        }
        if let Some(blkio) = sample.blkio {
            let list = |entries: Vec<cgroup::BlkioEntry>| {
                Some(
                    entries
                        .into_iter()
                        .map(|e| BlkioEntry {
                            major: e.major,
                            minor: e.minor,
                            op: e.op,
                            value: e.value,
                        })
                        .collect(),
                )
            };
            out.blkio_stats = BlkioStats {
                io_service_bytes_recursive: list(blkio.service_bytes),
                io_serviced_recursive: list(blkio.serviced),
                ..BlkioStats::default()
            };
        }
        Ok(out)
    }
}
