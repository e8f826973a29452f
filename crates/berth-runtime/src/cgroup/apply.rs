//! Applying `LinuxResources` in two phases: the version-specific planners (`v1.rs`, `v2.rs`)
//! turn the spec into [`Step`]s, refusing unsupported fields before anything is written, and
//! [`execute`] performs them, including the few writes whose order depends on current values.

use std::path::PathBuf;

use oci_spec::runtime::LinuxResources;

use super::detect::Controller;
use super::devices::DeviceProgram;
use super::error::{CgroupError, WrapIo};
use super::fs::{self as cgfs, CgroupFs};

/// One change to a cgroup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Write `value` to `path`.
    Write {
        /// The control file.
        path: PathBuf,
        /// The value.
        value: String,
    },
    /// Write v1 `cpu.shares` and read it back: the kernel clamps out-of-range values silently.
    Shares {
        /// `cpu.shares`.
        path: PathBuf,
        /// The shares asked for.
        value: u64,
    },
    /// v1 `memory.limit_in_bytes` and `memory.memsw.limit_in_bytes`, ordered (as runc does) so
    /// that memsw ≥ limit holds after each write.
    MemoryV1 {
        /// The memory cgroup directory.
        dir: PathBuf,
        /// `memory.limit_in_bytes`.
        limit: Option<i64>,
        /// `memory.memsw.limit_in_bytes`.
        swap: Option<i64>,
    },
    /// v1 `cpu.cfs_period_us` then `cpu.cfs_quota_us`; a period the kernel refuses with EINVAL
    /// (old quota / new period over the parent's limit) is retried after the quota, as runc does.
    CpuBandwidthV1 {
        /// The cpu cgroup directory.
        dir: PathBuf,
        /// `cpu.cfs_quota_us` (-1 for none).
        quota: Option<i64>,
        /// `cpu.cfs_period_us`.
        period: Option<u64>,
    },
    /// v2 device rules: attach `program` to the cgroup `dir`.
    DeviceProgram {
        /// The cgroup directory.
        dir: PathBuf,
        /// The compiled rules.
        program: DeviceProgram,
    },
    /// `memory.checkBeforeUpdate`: refuse a limit below the current usage.
    CheckUsage {
        /// The usage file.
        path: PathBuf,
        /// The requested limit.
        limit: i64,
    },
}

/// Performs `steps` in order; the first failure stops and names the file and value.
pub(crate) fn execute(fs: &dyn CgroupFs, steps: &[Step]) -> Result<(), CgroupError> {
    for step in steps {
        match step {
            Step::Write { path, value } => cgfs::write(fs, path, value)?,
            Step::Shares { path, value } => {
                cgfs::write(fs, path, &value.to_string())?;
                let actual = cgfs::read_u64(fs, path)?;
                if actual != *value {
                    return Err(CgroupError::invalid(
                        "linux.resources.cpu.shares",
                        value,
                        format!("the kernel clamped it to {actual}"),
                    ));
                }
            }
            Step::MemoryV1 { dir, limit, swap } => memory_v1(fs, dir, *limit, *swap)?,
            Step::CpuBandwidthV1 { dir, quota, period } => {
                cpu_bandwidth_v1(fs, dir, *quota, *period)?
            }
            Step::DeviceProgram { dir, program } => {
                fs.set_device_program(dir, program).map_err(|source| {
                    CgroupError::DeviceProgram {
                        path: dir.clone(),
                        source,
                    }
                })?;
            }
            Step::CheckUsage { path, limit } => {
                let usage = cgfs::read_u64(fs, path)?;
                if u64::try_from(*limit).is_ok_and(|limit| limit < usage) {
                    return Err(CgroupError::LimitBelowUsage {
                        limit: *limit,
                        usage,
                        path: path.clone(),
                    });
                }
            }
        }
    }
    Ok(())
}

fn memory_v1(
    fs: &dyn CgroupFs,
    dir: &std::path::Path,
    limit: Option<i64>,
    swap: Option<i64>,
) -> Result<(), CgroupError> {
    let limit_path = dir.join("memory.limit_in_bytes");
    let swap_path = dir.join("memory.memsw.limit_in_bytes");
    let write_limit = |value: i64| cgfs::write(fs, &limit_path, &value.to_string());
    let write_swap = |value: i64| cgfs::write(fs, &swap_path, &value.to_string());
    match (limit, swap) {
        (Some(limit), Some(swap)) => {
            let current = cgfs::read_u64(fs, &limit_path)?;
            // raising: memsw first; lowering: the limit first
            if swap == -1 || u64::try_from(swap).is_ok_and(|swap| current < swap) {
                write_swap(swap)?;
                write_limit(limit)
            } else {
                write_limit(limit)?;
                write_swap(swap)
            }
        }
        (Some(limit), None) => write_limit(limit),
        (None, Some(swap)) => write_swap(swap),
        (None, None) => Ok(()),
    }
}

fn cpu_bandwidth_v1(
    fs: &dyn CgroupFs,
    dir: &std::path::Path,
    quota: Option<i64>,
    period: Option<u64>,
) -> Result<(), CgroupError> {
    let period_path = dir.join("cpu.cfs_period_us");
    let quota_path = dir.join("cpu.cfs_quota_us");
    let mut retry_period = None;
    if let Some(period) = period {
        let value = period.to_string();
        match fs.write(&period_path, &value) {
            Ok(()) => {}
            Err(err) if err.raw_os_error() == Some(libc::EINVAL) && quota.is_some() => {
                retry_period = Some(value);
            }
            Err(err) => return Err(err).wrap_write(&period_path, &value),
        }
    }
    if let Some(quota) = quota {
        cgfs::write(fs, &quota_path, &quota.to_string())?;
        if let Some(period) = retry_period {
            cgfs::write(fs, &period_path, &period)?;
        }
    }
    Ok(())
}

/// The controllers `resources` needs, each with the OCI field that needs it. `v2` selects the
/// v2 names (`io` for block I/O) and leaves out what v2 lacks (`net_cls`, `net_prio`, devices).
pub(crate) fn required_controllers(
    resources: &LinuxResources,
    v2: bool,
) -> Vec<(Controller, &'static str)> {
    let mut needed = Vec::new();
    if let Some(cpu) = resources.cpu() {
        if cpu.cpus().as_deref().is_some_and(|s| !s.is_empty())
            || cpu.mems().as_deref().is_some_and(|s| !s.is_empty())
        {
            needed.push((Controller::Cpuset, "linux.resources.cpu.cpus"));
        }
        if cpu.shares().is_some_and(|s| s != 0)
            || cpu.quota().is_some_and(|q| q != 0)
            || cpu.period().is_some_and(|p| p != 0)
            || cpu.burst().is_some()
            || cpu.idle().is_some()
            || cpu.realtime_period().is_some()
            || cpu.realtime_runtime().is_some()
        {
            needed.push((Controller::Cpu, "linux.resources.cpu"));
        }
    }
    if !v2 && resources.devices().as_ref().is_some_and(|d| !d.is_empty()) {
        needed.push((Controller::Devices, "linux.resources.devices"));
    }
    if let Some(memory) = resources.memory() {
        let v1_only = !v2
            && (memory.kernel().is_some()
                || memory.kernel_tcp().is_some()
                || memory.swappiness().is_some()
                || memory.disable_oom_killer().is_some()
                || memory.use_hierarchy().is_some());
        if memory.limit().is_some()
            || memory.reservation().is_some()
            || memory.swap().is_some()
            || v1_only
        {
            needed.push((Controller::Memory, "linux.resources.memory"));
        }
    }
    if resources.pids().is_some() {
        needed.push((Controller::Pids, "linux.resources.pids"));
    }
    if let Some(block_io) = resources.block_io() {
        let nonempty =
            |list: &Option<Vec<_>>| list.as_ref().is_some_and(|l: &Vec<_>| !l.is_empty());
        if block_io.weight().is_some_and(|w| w != 0)
            || block_io.leaf_weight().is_some()
            || block_io
                .weight_device()
                .as_ref()
                .is_some_and(|l| !l.is_empty())
            || nonempty(block_io.throttle_read_bps_device())
            || nonempty(block_io.throttle_write_bps_device())
            || nonempty(block_io.throttle_read_iops_device())
            || nonempty(block_io.throttle_write_iops_device())
        {
            let controller = if v2 {
                Controller::Io
            } else {
                Controller::Blkio
            };
            needed.push((controller, "linux.resources.blockIO"));
        }
    }
    if resources
        .hugepage_limits()
        .as_ref()
        .is_some_and(|l| !l.is_empty())
    {
        needed.push((Controller::Hugetlb, "linux.resources.hugepageLimits"));
    }
    if !v2 {
        if let Some(network) = resources.network() {
            if network.class_id().is_some() {
                needed.push((Controller::NetCls, "linux.resources.network.classID"));
            }
            if network.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
                needed.push((Controller::NetPrio, "linux.resources.network.priorities"));
            }
        }
    }
    if resources.rdma().as_ref().is_some_and(|r| !r.is_empty()) {
        needed.push((Controller::Rdma, "linux.resources.rdma"));
    }
    if v2 {
        if let Some(unified) = resources.unified() {
            for key in unified.keys() {
                let prefix = key.split('.').next().unwrap_or("");
                if let Some(controller) =
                    Controller::from_name(prefix).filter(|c| c.is_v2_controller())
                {
                    needed.push((controller, "linux.resources.unified"));
                }
            }
        }
    }
    needed.sort();
    needed.dedup_by_key(|(controller, _)| *controller);
    needed
}

/// Validates an OCI device number (a non-negative major or minor).
pub(crate) fn device_number(field: &str, value: i64) -> Result<i64, CgroupError> {
    if value < 0 {
        return Err(CgroupError::invalid(
            field,
            value,
            "device numbers are not negative",
        ));
    }
    Ok(value)
}
