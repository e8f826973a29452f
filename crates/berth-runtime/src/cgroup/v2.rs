//! cgroup v2: one directory `<root>/<parent>/<id>`; controllers are enabled for it through
//! `cgroup.subtree_control` of every ancestor.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};

use super::apply::{device_number, required_controllers, Step};
use super::convert::{
    blkio_weight_to_io_weight, check_page_size, cpu_shares_to_weight, limit_v2, parse_limit,
    pids_max, swap_v2_value,
};
use super::detect::Controller;
use super::devices;
use super::error::CgroupError;
use super::fs::{self as cgfs, CgroupFs};
use super::stats::{parse_flat_keyed, BlkioStats, CpuStats, FreezerState, MemoryStats, PidsStats};
use super::v1::{existing, rdma_steps, write};

/// A container's cgroup on v2.
#[derive(Clone, Debug)]
pub(crate) struct V2Cgroup {
    /// The cgroup2 mount.
    root: PathBuf,
    /// `<parent>/<id>` below the root.
    relative: PathBuf,
    /// `root/relative`.
    dir: PathBuf,
}

impl V2Cgroup {
    pub(crate) fn new(root: &Path, relative: &Path) -> V2Cgroup {
        V2Cgroup {
            root: root.to_path_buf(),
            relative: relative.to_path_buf(),
            dir: root.join(relative),
        }
    }

    /// The cgroup's directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The root and every directory between it and the leaf (the leaf excluded).
    fn ancestors(&self) -> Vec<PathBuf> {
        let mut dirs = vec![self.root.clone()];
        let mut dir = self.root.clone();
        let components: Vec<_> = self.relative.components().collect();
        for component in components.iter().take(components.len().saturating_sub(1)) {
            dir.push(component);
            dirs.push(dir.clone());
        }
        dirs
    }

    /// Makes the directory and its parents, enabling `wanted` controllers (all the root offers
    /// when `None`) in the subtree of every ancestor; a controller the kernel will not enable
    /// is logged and left for `apply` to report if a resource needs it. Returns whether this
    /// call made the leaf.
    pub(crate) fn create(
        &self,
        fs: &dyn CgroupFs,
        wanted: Option<&[Controller]>,
    ) -> Result<bool, CgroupError> {
        let wanted: Vec<Controller> = match wanted {
            Some(list) => list
                .iter()
                .copied()
                .filter(|c| c.is_v2_controller())
                .collect(),
            // in the kernel's order, as the root lists them
            None => cgfs::read_trimmed(fs, &self.root.join("cgroup.controllers"))?
                .split_whitespace()
                .filter_map(Controller::from_name)
                .filter(|c| c.is_v2_controller())
                .collect(),
        };
        let mut dir = self.root.clone();
        let mut made = false;
        for component in self.relative.components() {
            let available = controllers_of(fs, &dir)?;
            for controller in wanted.iter().filter(|c| available.contains(c.name())) {
                if let Err(err) = enable(fs, &dir, *controller, "linux.resources") {
                    tracing::warn!(
                        path = %dir.display(),
                        controller = controller.name(),
                        error = &err as &dyn std::error::Error,
                        "cgroup controller not enabled"
                    );
                }
            }
            dir.push(component);
            made = cgfs::ensure_dir(fs, &dir)?;
        }
        Ok(made)
    }

    /// Enables, along the ancestors, every controller `resources` needs that the leaf lacks.
    pub(crate) fn ensure_controllers(
        &self,
        fs: &dyn CgroupFs,
        resources: &LinuxResources,
    ) -> Result<(), CgroupError> {
        let needed = required_controllers(resources, true);
        if needed.is_empty() {
            return Ok(());
        }
        let mut have = controllers_of(fs, &self.dir)?;
        for (controller, field) in needed {
            if have.contains(controller.name()) {
                continue;
            }
            for ancestor in self.ancestors() {
                enable(fs, &ancestor, controller, field)?;
            }
            have = controllers_of(fs, &self.dir)?;
            if !have.contains(controller.name()) {
                return Err(CgroupError::ControllerUnavailable {
                    field: field.to_owned(),
                    controller,
                    path: self.dir.clone(),
                });
            }
        }
        Ok(())
    }

    /// Refuses the fields v2 has no file for, before anything is written.
    pub(crate) fn check_supported(resources: &LinuxResources) -> Result<(), CgroupError> {
        const ON_V2: &str = "on cgroup v2";
        if let Some(memory) = resources.memory() {
            if memory.kernel().is_some() {
                return Err(CgroupError::unsupported(
                    "linux.resources.memory.kernel",
                    ON_V2,
                ));
            }
            if memory.kernel_tcp().is_some() {
                return Err(CgroupError::unsupported(
                    "linux.resources.memory.kernelTCP",
                    ON_V2,
                ));
            }
            if memory.swappiness().is_some() {
                return Err(CgroupError::unsupported(
                    "linux.resources.memory.swappiness",
                    ON_V2,
                ));
            }
            if memory.disable_oom_killer() == Some(true) {
                return Err(CgroupError::unsupported(
                    "linux.resources.memory.disableOOMKiller",
                    ON_V2,
                ));
            }
            if memory.use_hierarchy() == Some(false) {
                return Err(CgroupError::unsupported(
                    "linux.resources.memory.useHierarchy=false",
                    "on cgroup v2 (always hierarchical)",
                ));
            }
        }
        if let Some(cpu) = resources.cpu() {
            if cpu.realtime_period().is_some_and(|p| p != 0) {
                return Err(CgroupError::unsupported(
                    "linux.resources.cpu.realtimePeriod",
                    ON_V2,
                ));
            }
            if cpu.realtime_runtime().is_some_and(|r| r != 0) {
                return Err(CgroupError::unsupported(
                    "linux.resources.cpu.realtimeRuntime",
                    ON_V2,
                ));
            }
        }
        if let Some(network) = resources.network() {
            if network.class_id().is_some() {
                return Err(CgroupError::unsupported(
                    "linux.resources.network.classID",
                    ON_V2,
                ));
            }
            if network.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
                return Err(CgroupError::unsupported(
                    "linux.resources.network.priorities",
                    ON_V2,
                ));
            }
        }
        if let Some(block_io) = resources.block_io() {
            if block_io.leaf_weight().is_some()
                || block_io
                    .weight_device()
                    .iter()
                    .flatten()
                    .any(|device| device.leaf_weight().is_some())
            {
                return Err(CgroupError::unsupported(
                    "linux.resources.blockIO.leafWeight",
                    ON_V2,
                ));
            }
        }
        if let Some(rules) = resources.devices() {
            devices::parse_rules(rules)?;
        }
        for key in resources.unified().iter().flat_map(|u| u.keys()) {
            check_unified_key(key)?;
        }
        Ok(())
    }

    /// Turns `resources` into writes (after `check_supported` and `ensure_controllers`).
    pub(crate) fn plan(
        &self,
        fs: &dyn CgroupFs,
        resources: &LinuxResources,
    ) -> Result<Vec<Step>, CgroupError> {
        let mut steps = Vec::new();
        if let Some(rules) = resources.devices().as_ref().filter(|r| !r.is_empty()) {
            steps.push(Step::DeviceProgram {
                dir: self.dir.clone(),
                program: devices::compile(&devices::parse_rules(rules)?),
            });
        }
        if let Some(cpu) = resources.cpu() {
            for (value, file) in [(cpu.cpus(), "cpuset.cpus"), (cpu.mems(), "cpuset.mems")] {
                if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
                    steps.push(write(self.dir.join(file), value));
                }
            }
        }
        if let Some(memory) = resources.memory() {
            self.plan_memory(fs, memory, &mut steps)?;
        }
        if let Some(cpu) = resources.cpu() {
            self.plan_cpu(fs, cpu, &mut steps)?;
        }
        if let Some(pids) = resources.pids() {
            steps.push(write(self.dir.join("pids.max"), pids_max(pids.limit())));
        }
        if let Some(block_io) = resources.block_io() {
            self.plan_io(fs, block_io, &mut steps)?;
        }
        for limit in resources.hugepage_limits().iter().flatten() {
            const FIELD: &str = "linux.resources.hugepageLimits";
            check_page_size(limit.page_size())?;
            let path = existing(
                fs,
                &self.dir,
                &format!("hugetlb.{}.max", limit.page_size()),
                FIELD,
            )?;
            steps.push(write(path, limit_v2(FIELD, limit.limit())?));
        }
        if let Some(rdma) = resources.rdma().as_ref().filter(|r| !r.is_empty()) {
            steps.extend(rdma_steps(&self.dir, rdma)?);
        }
        if let Some(unified) = resources.unified() {
            let sorted: BTreeMap<&String, &String> = unified.iter().collect();
            for (key, value) in sorted {
                check_unified_key(key)?;
                let path = existing(
                    fs,
                    &self.dir,
                    key,
                    &format!("linux.resources.unified.{key}"),
                )?;
                steps.push(write(path, value.as_str()));
            }
        }
        Ok(steps)
    }

    fn plan_memory(
        &self,
        fs: &dyn CgroupFs,
        memory: &LinuxMemory,
        steps: &mut Vec<Step>,
    ) -> Result<(), CgroupError> {
        if let Some(swap) = swap_v2_value(memory.swap(), memory.limit())? {
            let path = self.dir.join("memory.swap.max");
            if fs.exists(&path) {
                steps.push(write(path, swap));
            } else if swap != "max" && swap != "0" {
                return Err(CgroupError::unsupported(
                    "linux.resources.memory.swap",
                    "without swap accounting (no memory.swap.max)",
                ));
            }
            // without swap accounting "max" and "0" already hold: nothing to write (runc)
        }
        if memory.check_before_update() == Some(true) {
            if let Some(limit) = memory.limit().filter(|l| *l > 0) {
                steps.push(Step::CheckUsage {
                    path: self.dir.join("memory.current"),
                    limit,
                });
            }
        }
        if let Some(limit) = memory.limit() {
            steps.push(write(
                self.dir.join("memory.max"),
                limit_v2("linux.resources.memory.limit", limit)?,
            ));
        }
        if let Some(reservation) = memory.reservation() {
            steps.push(write(
                self.dir.join("memory.low"),
                limit_v2("linux.resources.memory.reservation", reservation)?,
            ));
        }
        Ok(())
    }

    fn plan_cpu(
        &self,
        fs: &dyn CgroupFs,
        cpu: &LinuxCpu,
        steps: &mut Vec<Step>,
    ) -> Result<(), CgroupError> {
        if let Some(shares) = cpu.shares().filter(|s| *s != 0) {
            steps.push(write(
                self.dir.join("cpu.weight"),
                cpu_shares_to_weight(shares).to_string(),
            ));
        }
        let quota = cpu.quota().filter(|q| *q != 0);
        let period = cpu.period().filter(|p| *p != 0);
        if let Some(quota) = quota.filter(|q| *q < -1) {
            return Err(CgroupError::invalid(
                "linux.resources.cpu.quota",
                quota,
                "must be -1 (unlimited) or positive microseconds",
            ));
        }
        if quota.is_some() || period.is_some() {
            let mut value = match quota {
                Some(quota) if quota > 0 => quota.to_string(),
                _ => "max".to_owned(),
            };
            if let Some(period) = period {
                value = format!("{value} {period}");
            }
            steps.push(write(self.dir.join("cpu.max"), value));
        }
        if let Some(burst) = cpu.burst() {
            let path = existing(fs, &self.dir, "cpu.max.burst", "linux.resources.cpu.burst")?;
            steps.push(write(path, burst.to_string()));
        }
        if let Some(idle) = cpu.idle() {
            let path = existing(fs, &self.dir, "cpu.idle", "linux.resources.cpu.idle")?;
            steps.push(write(path, idle.to_string()));
        }
        Ok(())
    }

    fn plan_io(
        &self,
        fs: &dyn CgroupFs,
        block_io: &LinuxBlockIo,
        steps: &mut Vec<Step>,
    ) -> Result<(), CgroupError> {
        const WEIGHT: &str = "linux.resources.blockIO.weight";
        const DEVICE: &str = "linux.resources.blockIO.weightDevice";
        // BFQ takes blkio's 1..1000 weights as they are; io.weight needs them converted
        let bfq = self.dir.join("io.bfq.weight");
        let has_bfq = fs.exists(&bfq);
        if let Some(weight) = block_io.weight().filter(|w| *w != 0) {
            if has_bfq {
                steps.push(write(bfq.clone(), weight.to_string()));
            } else {
                let path = existing(fs, &self.dir, "io.weight", WEIGHT)?;
                steps.push(write(path, blkio_weight_to_io_weight(weight).to_string()));
            }
        }
        for device in block_io.weight_device().iter().flatten() {
            let Some(weight) = device.weight() else {
                continue;
            };
            let numbers = format!(
                "{}:{}",
                device_number(DEVICE, device.major())?,
                device_number(DEVICE, device.minor())?
            );
            if has_bfq {
                steps.push(write(bfq.clone(), format!("{numbers} {weight}")));
            } else {
                let path = existing(fs, &self.dir, "io.weight", DEVICE)?;
                steps.push(write(
                    path,
                    format!("{numbers} {}", blkio_weight_to_io_weight(weight)),
                ));
            }
        }
        for (list, field, key) in [
            (
                block_io.throttle_read_bps_device(),
                "linux.resources.blockIO.throttleReadBpsDevice",
                "rbps",
            ),
            (
                block_io.throttle_write_bps_device(),
                "linux.resources.blockIO.throttleWriteBpsDevice",
                "wbps",
            ),
            (
                block_io.throttle_read_iops_device(),
                "linux.resources.blockIO.throttleReadIOPSDevice",
                "riops",
            ),
            (
                block_io.throttle_write_iops_device(),
                "linux.resources.blockIO.throttleWriteIOPSDevice",
                "wiops",
            ),
        ] {
            for device in list.iter().flatten() {
                let path = existing(fs, &self.dir, "io.max", field)?;
                let value = format!(
                    "{}:{} {key}={}",
                    device_number(field, device.major())?,
                    device_number(field, device.minor())?,
                    device.rate()
                );
                steps.push(write(path, value));
            }
        }
        Ok(())
    }

    /// `cgroup.freeze`, or an error on kernels before 5.2.
    pub(crate) fn freeze_file(&self, fs: &dyn CgroupFs) -> Result<PathBuf, CgroupError> {
        let path = self.dir.join("cgroup.freeze");
        if fs.exists(&path) {
            Ok(path)
        } else {
            Err(CgroupError::unsupported(
                "freezing",
                format!("by this kernel (no {}; Linux 5.2+)", path.display()),
            ))
        }
    }

    /// The freezer state from `cgroup.freeze` (asked) and `cgroup.events` `frozen` (reached).
    pub(crate) fn freezer_state(&self, fs: &dyn CgroupFs) -> Result<FreezerState, CgroupError> {
        let freeze_path = self.freeze_file(fs)?;
        let asked = cgfs::read_trimmed(fs, &freeze_path)?;
        let frozen = self.events_frozen(fs)?;
        match (asked.as_str(), frozen) {
            ("0", _) => Ok(FreezerState::Thawed),
            ("1", true) => Ok(FreezerState::Frozen),
            ("1", false) => Ok(FreezerState::Freezing),
            _ => Err(CgroupError::Parse {
                path: freeze_path,
                content: asked,
            }),
        }
    }

    /// `frozen` of `cgroup.events`.
    pub(crate) fn events_frozen(&self, fs: &dyn CgroupFs) -> Result<bool, CgroupError> {
        let path = self.dir.join("cgroup.events");
        let text = cgfs::read_trimmed(fs, &path)?;
        Ok(cgfs::keyed_value(&path, &text, "frozen")? == Some(1))
    }

    /// `oom_kill` of `memory.events` (hierarchical: kills in child cgroups count too).
    pub(crate) fn oom_kill_count(&self, fs: &dyn CgroupFs) -> Result<u64, CgroupError> {
        let path = self.dir.join("memory.events");
        let Some(text) = cgfs::read_optional(fs, &path)? else {
            return Err(CgroupError::ControllerUnavailable {
                field: "oom detection".to_owned(),
                controller: Controller::Memory,
                path: self.dir.clone(),
            });
        };
        Ok(cgfs::keyed_value(&path, &text, "oom_kill")?.unwrap_or(0))
    }

    pub(crate) fn memory_stats(
        &self,
        fs: &dyn CgroupFs,
    ) -> Result<Option<MemoryStats>, CgroupError> {
        let Some(usage) = cgfs::read_u64_optional(fs, &self.dir.join("memory.current"))? else {
            return Ok(None);
        };
        let max_path = self.dir.join("memory.max");
        let stat_path = self.dir.join("memory.stat");
        let stat = match cgfs::read_optional(fs, &stat_path)? {
            Some(text) => parse_flat_keyed(&stat_path, &text)?,
            None => BTreeMap::new(),
        };
        Ok(Some(MemoryStats {
            usage_bytes: usage,
            max_usage_bytes: cgfs::read_u64_optional(fs, &self.dir.join("memory.peak"))?,
            limit: parse_limit(&max_path, &cgfs::read_trimmed(fs, &max_path)?)?,
            swap_usage_bytes: cgfs::read_u64_optional(fs, &self.dir.join("memory.swap.current"))?,
            oom_kills: Some(self.oom_kill_count(fs)?),
            stat,
        }))
    }

    pub(crate) fn cpu_stats(&self, fs: &dyn CgroupFs) -> Result<Option<CpuStats>, CgroupError> {
        let path = self.dir.join("cpu.stat");
        let Some(text) = cgfs::read_optional(fs, &path)? else {
            return Ok(None);
        };
        let micros = |key: &str| -> Result<Option<u64>, CgroupError> {
            Ok(cgfs::keyed_value(&path, &text, key)?.map(|us| us.saturating_mul(1000)))
        };
        Ok(Some(CpuStats {
            usage_ns: micros("usage_usec")?.unwrap_or(0),
            user_ns: micros("user_usec")?,
            system_ns: micros("system_usec")?,
            periods: cgfs::keyed_value(&path, &text, "nr_periods")?,
            throttled_periods: cgfs::keyed_value(&path, &text, "nr_throttled")?,
            throttled_ns: micros("throttled_usec")?,
            percpu_ns: Vec::new(),
        }))
    }

    pub(crate) fn blkio_stats(&self, fs: &dyn CgroupFs) -> Result<Option<BlkioStats>, CgroupError> {
        let path = self.dir.join("io.stat");
        match cgfs::read_optional(fs, &path)? {
            Some(text) => Ok(Some(super::stats::parse_io_stat_v2(&path, &text)?)),
            None => Ok(None),
        }
    }

    pub(crate) fn pids_stats(&self, fs: &dyn CgroupFs) -> Result<Option<PidsStats>, CgroupError> {
        let Some(current) = cgfs::read_u64_optional(fs, &self.dir.join("pids.current"))? else {
            return Ok(None);
        };
        let max_path = self.dir.join("pids.max");
        Ok(Some(PidsStats {
            current,
            limit: parse_limit(&max_path, &cgfs::read_trimmed(fs, &max_path)?)?,
        }))
    }
}

/// The controllers listed in `dir/cgroup.controllers`.
fn controllers_of(fs: &dyn CgroupFs, dir: &Path) -> Result<BTreeSet<String>, CgroupError> {
    let text = cgfs::read_trimmed(fs, &dir.join("cgroup.controllers"))?;
    Ok(text.split_whitespace().map(str::to_owned).collect())
}

/// Enables `controller` for the children of `dir` unless it already is.
fn enable(
    fs: &dyn CgroupFs,
    dir: &Path,
    controller: Controller,
    field: &str,
) -> Result<(), CgroupError> {
    let subtree = dir.join("cgroup.subtree_control");
    let enabled = cgfs::read_trimmed(fs, &subtree)?;
    if enabled
        .split_whitespace()
        .any(|name| name == controller.name())
    {
        return Ok(());
    }
    if !controllers_of(fs, dir)?.contains(controller.name()) {
        return Err(CgroupError::ControllerUnavailable {
            field: field.to_owned(),
            controller,
            path: dir.to_path_buf(),
        });
    }
    cgfs::write(fs, &subtree, &format!("+{}", controller.name()))
}

/// A `unified` key must name a file of the cgroup itself: `<controller>.<name>`, no path.
fn check_unified_key(key: &str) -> Result<(), CgroupError> {
    let valid = !key.is_empty()
        && !key.contains('/')
        && !key.starts_with('.')
        && key.contains('.')
        && !key.contains(char::is_whitespace)
        && !key.contains('\0');
    if valid {
        Ok(())
    } else {
        Err(CgroupError::invalid(
            "linux.resources.unified",
            key,
            "keys are control file names like memory.high",
        ))
    }
}
