//! cgroup v1 (and systemd's hybrid layout): one directory per hierarchy, `<mount>/<parent>/<id>`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};

use super::apply::{device_number, required_controllers, Step};
use super::convert::{check_page_size, limit_v1, parse_limit, pids_max};
use super::detect::Controller;
use super::devices;
use super::error::CgroupError;
use super::fs::{self as cgfs, CgroupFs};
use super::stats::{BlkioEntry, BlkioStats, CpuStats, FreezerState, MemoryStats, PidsStats};

/// Nanoseconds per `USER_HZ` tick (100 Hz on every Linux architecture's user ABI), for
/// `cpuacct.stat` on kernels without `cpuacct.usage_user`.
pub(crate) const NANOS_PER_USER_TICK: u64 = 10_000_000;

/// A container's cgroup on v1: its directory in every mounted hierarchy.
#[derive(Clone, Debug)]
pub(crate) struct V1Cgroup {
    /// The cgroup root (`/sys/fs/cgroup`), for error messages.
    root: PathBuf,
    /// Each controller's hierarchy mount point.
    mounts: BTreeMap<Controller, PathBuf>,
    /// `<parent>/<id>`, relative to each mount point.
    relative: PathBuf,
}

impl V1Cgroup {
    pub(crate) fn new(
        root: &Path,
        mounts: &BTreeMap<Controller, PathBuf>,
        relative: &Path,
    ) -> V1Cgroup {
        V1Cgroup {
            root: root.to_path_buf(),
            mounts: mounts.clone(),
            relative: relative.to_path_buf(),
        }
    }

    /// The directory for `controller`, when its hierarchy is mounted.
    pub(crate) fn path_for(&self, controller: Controller) -> Option<PathBuf> {
        self.mounts
            .get(&controller)
            .map(|mount| mount.join(&self.relative))
    }

    /// Every hierarchy's directory once (co-mounted controllers share one).
    pub(crate) fn paths(&self) -> Vec<PathBuf> {
        let unique: BTreeSet<PathBuf> = self
            .mounts
            .values()
            .map(|mount| mount.join(&self.relative))
            .collect();
        unique.into_iter().collect()
    }

    /// The directory for `controller`, or an error naming `field` that needs it.
    fn dir(&self, controller: Controller, field: &str) -> Result<PathBuf, CgroupError> {
        self.path_for(controller)
            .ok_or_else(|| CgroupError::ControllerUnavailable {
                field: field.to_owned(),
                controller,
                path: self.root.clone(),
            })
    }

    /// Hierarchies (mount point → controllers on it).
    fn hierarchies(&self) -> BTreeMap<&Path, Vec<Controller>> {
        let mut hierarchies: BTreeMap<&Path, Vec<Controller>> = BTreeMap::new();
        for (controller, mount) in &self.mounts {
            hierarchies.entry(mount).or_default().push(*controller);
        }
        hierarchies
    }

    /// Makes the directory in every hierarchy, parents included. A new cpuset directory starts
    /// with empty `cpuset.cpus`/`cpuset.mems` and cannot take tasks until they are filled, so
    /// each level is given its parent's values. Records in `created` the leaf directories this
    /// call made, also when it fails part-way, so the caller can remove exactly those.
    pub(crate) fn create(
        &self,
        fs: &dyn CgroupFs,
        created: &mut Vec<PathBuf>,
    ) -> Result<(), CgroupError> {
        for (mount, controllers) in self.hierarchies() {
            let mut dir = mount.to_path_buf();
            let components: Vec<_> = self.relative.components().collect();
            for (index, component) in components.iter().enumerate() {
                let parent = dir.clone();
                dir.push(component);
                let made = cgfs::ensure_dir(fs, &dir)?;
                if made && index + 1 == components.len() {
                    created.push(dir.clone());
                }
                if controllers.contains(&Controller::Cpuset) {
                    copy_cpuset_from_parent(fs, &parent, &dir)?;
                }
            }
        }
        Ok(())
    }

    /// Turns `resources` into writes, refusing what v1 or this host cannot enforce.
    pub(crate) fn plan(
        &self,
        fs: &dyn CgroupFs,
        resources: &LinuxResources,
    ) -> Result<Vec<Step>, CgroupError> {
        if resources.unified().as_ref().is_some_and(|u| !u.is_empty()) {
            return Err(CgroupError::unsupported(
                "linux.resources.unified",
                "on cgroup v1",
            ));
        }
        for (controller, field) in required_controllers(resources, false) {
            self.dir(controller, field)?;
        }
        let mut steps = Vec::new();
        if let Some(cpu) = resources.cpu() {
            self.plan_cpuset(cpu, &mut steps)?;
        }
        self.plan_devices(resources, &mut steps)?;
        if let Some(memory) = resources.memory() {
            self.plan_memory(fs, memory, &mut steps)?;
        }
        if let Some(cpu) = resources.cpu() {
            self.plan_cpu(fs, cpu, &mut steps)?;
        }
        if let Some(pids) = resources.pids() {
            let dir = self.dir(Controller::Pids, "linux.resources.pids")?;
            steps.push(write(dir.join("pids.max"), pids_max(pids.limit())));
        }
        if let Some(block_io) = resources.block_io() {
            self.plan_block_io(fs, block_io, &mut steps)?;
        }
        self.plan_hugetlb(fs, resources, &mut steps)?;
        self.plan_network(resources, &mut steps)?;
        self.plan_rdma(resources, &mut steps)?;
        Ok(steps)
    }

    fn plan_cpuset(&self, cpu: &LinuxCpu, steps: &mut Vec<Step>) -> Result<(), CgroupError> {
        for (value, file) in [(cpu.cpus(), "cpuset.cpus"), (cpu.mems(), "cpuset.mems")] {
            if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
                let dir = self.dir(Controller::Cpuset, "linux.resources.cpu.cpus")?;
                steps.push(write(dir.join(file), value));
            }
        }
        Ok(())
    }

    fn plan_devices(
        &self,
        resources: &LinuxResources,
        steps: &mut Vec<Step>,
    ) -> Result<(), CgroupError> {
        let Some(rules) = resources.devices().as_ref().filter(|r| !r.is_empty()) else {
            return Ok(());
        };
        let dir = self.dir(Controller::Devices, "linux.resources.devices")?;
        for rule in devices::parse_rules(rules)? {
            let file = if rule.allow {
                "devices.allow"
            } else {
                "devices.deny"
            };
            steps.push(write(dir.join(file), rule.v1_line()));
        }
        Ok(())
    }

    fn plan_memory(
        &self,
        fs: &dyn CgroupFs,
        memory: &LinuxMemory,
        steps: &mut Vec<Step>,
    ) -> Result<(), CgroupError> {
        const LIMIT: &str = "linux.resources.memory.limit";
        const SWAP: &str = "linux.resources.memory.swap";
        let dir = self.dir(Controller::Memory, "linux.resources.memory")?;
        let has_memsw = fs.exists(&dir.join("memory.memsw.limit_in_bytes"));
        if let Some(limit) = memory.limit() {
            limit_v1(LIMIT, limit)?;
        }
        let mut swap = memory.swap();
        if let Some(value) = swap {
            limit_v1(SWAP, value)?;
        }
        if let (Some(limit), Some(value)) = (memory.limit(), swap) {
            if limit != -1 && value != -1 && value < limit {
                return Err(CgroupError::invalid(
                    SWAP,
                    value,
                    format!("memory+swap must be at least the memory limit {limit}"),
                ));
            }
        }
        // an unlimited memory limit with no swap setting means both unlimited (runc)
        if memory.limit() == Some(-1) && swap.is_none() && has_memsw {
            swap = Some(-1);
        }
        if let Some(value) = swap {
            if !has_memsw {
                if value != -1 {
                    return Err(CgroupError::unsupported(
                        SWAP,
                        "without swap accounting (no memory.memsw.limit_in_bytes; boot with swapaccount=1)",
                    ));
                }
                swap = None;
            }
        }
        if memory.check_before_update() == Some(true) {
            if let Some(limit) = memory.limit().filter(|l| *l > 0) {
                steps.push(Step::CheckUsage {
                    path: dir.join("memory.usage_in_bytes"),
                    limit,
                });
            }
        }
        if memory.limit().is_some() || swap.is_some() {
            steps.push(Step::MemoryV1 {
                dir: dir.clone(),
                limit: memory.limit(),
                swap,
            });
        }
        if let Some(reservation) = memory.reservation() {
            let value = limit_v1("linux.resources.memory.reservation", reservation)?;
            steps.push(write(dir.join("memory.soft_limit_in_bytes"), value));
        }
        for (value, field, file) in [
            (
                memory.kernel(),
                "linux.resources.memory.kernel",
                "memory.kmem.limit_in_bytes",
            ),
            (
                memory.kernel_tcp(),
                "linux.resources.memory.kernelTCP",
                "memory.kmem.tcp.limit_in_bytes",
            ),
        ] {
            if let Some(value) = value {
                let path = existing(fs, &dir, file, field)?;
                steps.push(write(path, limit_v1(field, value)?));
            }
        }
        if let Some(swappiness) = memory.swappiness() {
            const FIELD: &str = "linux.resources.memory.swappiness";
            if swappiness > 100 {
                return Err(CgroupError::invalid(FIELD, swappiness, "must be 0 to 100"));
            }
            let path = existing(fs, &dir, "memory.swappiness", FIELD)?;
            steps.push(write(path, swappiness.to_string()));
        }
        if let Some(disable) = memory.disable_oom_killer() {
            steps.push(write(
                dir.join("memory.oom_control"),
                if disable { "1" } else { "0" },
            ));
        }
        if let Some(hierarchy) = memory.use_hierarchy() {
            steps.push(write(
                dir.join("memory.use_hierarchy"),
                if hierarchy { "1" } else { "0" },
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
        let Some(dir) = self.path_for(Controller::Cpu) else {
            // nothing of the cpu controller was asked for (checked by required_controllers)
            return Ok(());
        };
        if let Some(shares) = cpu.shares().filter(|s| *s != 0) {
            steps.push(Step::Shares {
                path: dir.join("cpu.shares"),
                value: shares,
            });
        }
        let quota = cpu.quota().filter(|q| *q != 0);
        let period = cpu.period().filter(|p| *p != 0);
        if let Some(quota) = quota {
            if quota < -1 {
                return Err(CgroupError::invalid(
                    "linux.resources.cpu.quota",
                    quota,
                    "must be -1 (unlimited) or positive microseconds",
                ));
            }
        }
        if quota.is_some() || period.is_some() {
            steps.push(Step::CpuBandwidthV1 {
                dir: dir.clone(),
                quota,
                period,
            });
        }
        if let Some(burst) = cpu.burst() {
            let path = existing(fs, &dir, "cpu.cfs_burst_us", "linux.resources.cpu.burst")?;
            steps.push(write(path, burst.to_string()));
        }
        if let Some(period) = cpu.realtime_period() {
            let path = existing(
                fs,
                &dir,
                "cpu.rt_period_us",
                "linux.resources.cpu.realtimePeriod",
            )?;
            steps.push(write(path, period.to_string()));
        }
        if let Some(runtime) = cpu.realtime_runtime() {
            let path = existing(
                fs,
                &dir,
                "cpu.rt_runtime_us",
                "linux.resources.cpu.realtimeRuntime",
            )?;
            steps.push(write(path, runtime.to_string()));
        }
        if let Some(idle) = cpu.idle() {
            let path = existing(fs, &dir, "cpu.idle", "linux.resources.cpu.idle")?;
            steps.push(write(path, idle.to_string()));
        }
        Ok(())
    }

    fn plan_block_io(
        &self,
        fs: &dyn CgroupFs,
        block_io: &LinuxBlockIo,
        steps: &mut Vec<Step>,
    ) -> Result<(), CgroupError> {
        const WEIGHT: &str = "linux.resources.blockIO.weight";
        const LEAF: &str = "linux.resources.blockIO.leafWeight";
        const DEVICE: &str = "linux.resources.blockIO.weightDevice";
        let Some(dir) = self.path_for(Controller::Blkio) else {
            return Ok(());
        };
        // CFQ's files, else BFQ's (CFQ is gone since Linux 5.0)
        let weight_file = ["blkio.weight", "blkio.bfq.weight"]
            .into_iter()
            .find(|file| fs.exists(&dir.join(file)));
        let weight_device_file = ["blkio.weight_device", "blkio.bfq.weight_device"]
            .into_iter()
            .find(|file| fs.exists(&dir.join(file)));
        if let Some(weight) = block_io.weight().filter(|w| *w != 0) {
            let file = weight_file.ok_or_else(|| {
                CgroupError::unsupported(
                    WEIGHT,
                    "by this kernel (no blkio.weight or blkio.bfq.weight: CFQ or BFQ is needed)",
                )
            })?;
            steps.push(write(dir.join(file), weight.to_string()));
        }
        if let Some(leaf) = block_io.leaf_weight() {
            let path = existing(fs, &dir, "blkio.leaf_weight", LEAF)?;
            steps.push(write(path, leaf.to_string()));
        }
        for device in block_io.weight_device().iter().flatten() {
            let numbers = format!(
                "{}:{}",
                device_number(DEVICE, device.major())?,
                device_number(DEVICE, device.minor())?
            );
            if let Some(weight) = device.weight() {
                let file = weight_device_file.ok_or_else(|| {
                    CgroupError::unsupported(
                        DEVICE,
                        "by this kernel (no blkio.weight_device or blkio.bfq.weight_device)",
                    )
                })?;
                steps.push(write(dir.join(file), format!("{numbers} {weight}")));
            }
            if let Some(leaf) = device.leaf_weight() {
                let path = existing(
                    fs,
                    &dir,
                    "blkio.leaf_weight_device",
                    "linux.resources.blockIO.weightDevice.leafWeight",
                )?;
                steps.push(write(path, format!("{numbers} {leaf}")));
            }
        }
        for (list, field, file) in [
            (
                block_io.throttle_read_bps_device(),
                "linux.resources.blockIO.throttleReadBpsDevice",
                "blkio.throttle.read_bps_device",
            ),
            (
                block_io.throttle_write_bps_device(),
                "linux.resources.blockIO.throttleWriteBpsDevice",
                "blkio.throttle.write_bps_device",
            ),
            (
                block_io.throttle_read_iops_device(),
                "linux.resources.blockIO.throttleReadIOPSDevice",
                "blkio.throttle.read_iops_device",
            ),
            (
                block_io.throttle_write_iops_device(),
                "linux.resources.blockIO.throttleWriteIOPSDevice",
                "blkio.throttle.write_iops_device",
            ),
        ] {
            for device in list.iter().flatten() {
                let path = existing(fs, &dir, file, field)?;
                let value = format!(
                    "{}:{} {}",
                    device_number(field, device.major())?,
                    device_number(field, device.minor())?,
                    device.rate()
                );
                steps.push(write(path, value));
            }
        }
        Ok(())
    }

    fn plan_hugetlb(
        &self,
        fs: &dyn CgroupFs,
        resources: &LinuxResources,
        steps: &mut Vec<Step>,
    ) -> Result<(), CgroupError> {
        const FIELD: &str = "linux.resources.hugepageLimits";
        for limit in resources.hugepage_limits().iter().flatten() {
            let dir = self.dir(Controller::Hugetlb, FIELD)?;
            check_page_size(limit.page_size())?;
            let file = format!("hugetlb.{}.limit_in_bytes", limit.page_size());
            let path = existing(fs, &dir, &file, FIELD)?;
            steps.push(write(path, limit_v1(FIELD, limit.limit())?));
        }
        Ok(())
    }

    fn plan_network(
        &self,
        resources: &LinuxResources,
        steps: &mut Vec<Step>,
    ) -> Result<(), CgroupError> {
        let Some(network) = resources.network() else {
            return Ok(());
        };
        if let Some(class_id) = network.class_id() {
            let dir = self.dir(Controller::NetCls, "linux.resources.network.classID")?;
            steps.push(write(dir.join("net_cls.classid"), class_id.to_string()));
        }
        for priority in network.priorities().iter().flatten() {
            let dir = self.dir(Controller::NetPrio, "linux.resources.network.priorities")?;
            if priority.name().is_empty() || priority.name().contains(char::is_whitespace) {
                return Err(CgroupError::invalid(
                    "linux.resources.network.priorities.name",
                    priority.name(),
                    "not an interface name",
                ));
            }
            steps.push(write(
                dir.join("net_prio.ifpriomap"),
                format!("{} {}", priority.name(), priority.priority()),
            ));
        }
        Ok(())
    }

    fn plan_rdma(
        &self,
        resources: &LinuxResources,
        steps: &mut Vec<Step>,
    ) -> Result<(), CgroupError> {
        if let Some(rdma) = resources.rdma().as_ref().filter(|r| !r.is_empty()) {
            let dir = self.dir(Controller::Rdma, "linux.resources.rdma")?;
            steps.extend(rdma_steps(&dir, rdma)?);
        }
        Ok(())
    }

    /// Writes `pid` to `cgroup.procs` of every hierarchy.
    pub(crate) fn add_pid(&self, fs: &dyn CgroupFs, pid: i32) -> Result<(), CgroupError> {
        for dir in self.paths() {
            cgfs::write(fs, &dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// The union of every hierarchy's `cgroup.procs`.
    pub(crate) fn procs(&self, fs: &dyn CgroupFs) -> Result<Vec<i32>, CgroupError> {
        let mut pids = BTreeSet::new();
        for dir in self.paths() {
            pids.extend(cgfs::read_procs(fs, &dir.join("cgroup.procs"))?);
        }
        Ok(pids.into_iter().collect())
    }

    /// `freezer.state`, when the freezer hierarchy is mounted.
    pub(crate) fn freezer_file(&self) -> Result<PathBuf, CgroupError> {
        Ok(self
            .dir(Controller::Freezer, "freeze")?
            .join("freezer.state"))
    }

    /// Parses `freezer.state`.
    pub(crate) fn freezer_state(
        fs: &dyn CgroupFs,
        path: &Path,
    ) -> Result<FreezerState, CgroupError> {
        let text = cgfs::read_trimmed(fs, path)?;
        parse_freezer_state(path, &text)
    }

    /// OOM kills: `oom_kill` of `memory.oom_control` (Linux 4.13+); before that, 1 when the
    /// cgroup is under OOM and has hit its limit (`under_oom` and `memory.failcnt`).
    pub(crate) fn oom_kill_count(&self, fs: &dyn CgroupFs) -> Result<u64, CgroupError> {
        let dir = self.dir(Controller::Memory, "oom detection")?;
        let path = dir.join("memory.oom_control");
        let text = fs.read(&path).map_err(|source| CgroupError::Read {
            path: path.clone(),
            source,
        })?;
        if let Some(kills) = cgfs::keyed_value(&path, &text, "oom_kill")? {
            return Ok(kills);
        }
        let under_oom = cgfs::keyed_value(&path, &text, "under_oom")?.unwrap_or(0);
        let failcnt = cgfs::read_u64(fs, &dir.join("memory.failcnt"))?;
        Ok(u64::from(under_oom > 0 && failcnt > 0))
    }

    pub(crate) fn memory_stats(
        &self,
        fs: &dyn CgroupFs,
    ) -> Result<Option<MemoryStats>, CgroupError> {
        let Some(dir) = self.path_for(Controller::Memory) else {
            return Ok(None);
        };
        let usage = cgfs::read_u64(fs, &dir.join("memory.usage_in_bytes"))?;
        let limit_path = dir.join("memory.limit_in_bytes");
        let limit = parse_limit(&limit_path, &cgfs::read_trimmed(fs, &limit_path)?)?;
        let memsw_usage = cgfs::read_u64_optional(fs, &dir.join("memory.memsw.usage_in_bytes"))?;
        let stat_path = dir.join("memory.stat");
        let stat = match cgfs::read_optional(fs, &stat_path)? {
            Some(text) => super::stats::parse_flat_keyed(&stat_path, &text)?,
            None => BTreeMap::new(),
        };
        Ok(Some(MemoryStats {
            usage_bytes: usage,
            max_usage_bytes: cgfs::read_u64_optional(fs, &dir.join("memory.max_usage_in_bytes"))?,
            limit,
            swap_usage_bytes: memsw_usage.map(|total| total.saturating_sub(usage)),
            oom_kills: Some(self.oom_kill_count(fs)?),
            stat,
        }))
    }

    pub(crate) fn cpu_stats(&self, fs: &dyn CgroupFs) -> Result<Option<CpuStats>, CgroupError> {
        let Some(dir) = self.path_for(Controller::Cpuacct) else {
            return Ok(None);
        };
        let mut stats = CpuStats {
            usage_ns: cgfs::read_u64(fs, &dir.join("cpuacct.usage"))?,
            user_ns: cgfs::read_u64_optional(fs, &dir.join("cpuacct.usage_user"))?,
            system_ns: cgfs::read_u64_optional(fs, &dir.join("cpuacct.usage_sys"))?,
            ..CpuStats::default()
        };
        let percpu_path = dir.join("cpuacct.usage_percpu");
        if let Some(text) = cgfs::read_optional(fs, &percpu_path)? {
            for value in text.split_whitespace() {
                stats.percpu_ns.push(cgfs::parse_u64(&percpu_path, value)?);
            }
        }
        if stats.user_ns.is_none() {
            let path = dir.join("cpuacct.stat");
            if let Some(text) = cgfs::read_optional(fs, &path)? {
                stats.user_ns =
                    cgfs::keyed_value(&path, &text, "user")?.map(|t| t * NANOS_PER_USER_TICK);
                stats.system_ns =
                    cgfs::keyed_value(&path, &text, "system")?.map(|t| t * NANOS_PER_USER_TICK);
            }
        }
        if let Some(cpu_dir) = self.path_for(Controller::Cpu) {
            let path = cpu_dir.join("cpu.stat");
            if let Some(text) = cgfs::read_optional(fs, &path)? {
                stats.periods = cgfs::keyed_value(&path, &text, "nr_periods")?;
                stats.throttled_periods = cgfs::keyed_value(&path, &text, "nr_throttled")?;
                stats.throttled_ns = cgfs::keyed_value(&path, &text, "throttled_time")?;
            }
        }
        Ok(Some(stats))
    }

    pub(crate) fn blkio_stats(&self, fs: &dyn CgroupFs) -> Result<Option<BlkioStats>, CgroupError> {
        let Some(dir) = self.path_for(Controller::Blkio) else {
            return Ok(None);
        };
        // the throttle files count every I/O; the CFQ/BFQ ones only where that scheduler runs
        let read = |name: &str| -> Result<Vec<BlkioEntry>, CgroupError> {
            for prefix in ["blkio.throttle.", "blkio."] {
                let path = dir.join(format!("{prefix}{name}"));
                if let Some(text) = cgfs::read_optional(fs, &path)? {
                    let entries = super::stats::parse_blkio_v1(&path, &text)?;
                    if !entries.is_empty() || prefix == "blkio." {
                        return Ok(entries);
                    }
                }
            }
            Ok(Vec::new())
        };
        Ok(Some(BlkioStats {
            service_bytes: read("io_service_bytes_recursive")?,
            serviced: read("io_serviced_recursive")?,
        }))
    }

    pub(crate) fn pids_stats(&self, fs: &dyn CgroupFs) -> Result<Option<PidsStats>, CgroupError> {
        let Some(dir) = self.path_for(Controller::Pids) else {
            return Ok(None);
        };
        let max_path = dir.join("pids.max");
        Ok(Some(PidsStats {
            current: cgfs::read_u64(fs, &dir.join("pids.current"))?,
            limit: parse_limit(&max_path, &cgfs::read_trimmed(fs, &max_path)?)?,
        }))
    }
}

/// Fills empty `cpuset.cpus`/`cpuset.mems` of `dir` from `parent`.
fn copy_cpuset_from_parent(
    fs: &dyn CgroupFs,
    parent: &Path,
    dir: &Path,
) -> Result<(), CgroupError> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let path = dir.join(file);
        if cgfs::read_trimmed(fs, &path)?.is_empty() {
            let value = cgfs::read_trimmed(fs, &parent.join(file))?;
            cgfs::write(fs, &path, &value)?;
        }
    }
    Ok(())
}

/// Parses a `freezer.state` value.
pub(crate) fn parse_freezer_state(path: &Path, text: &str) -> Result<FreezerState, CgroupError> {
    match text.trim() {
        "THAWED" => Ok(FreezerState::Thawed),
        "FREEZING" => Ok(FreezerState::Freezing),
        "FROZEN" => Ok(FreezerState::Frozen),
        other => Err(CgroupError::Parse {
            path: path.to_path_buf(),
            content: other.to_owned(),
        }),
    }
}

/// `rdma.max` lines, one per device (the same format on v1 and v2).
pub(crate) fn rdma_steps(
    dir: &Path,
    rdma: &std::collections::HashMap<String, oci_spec::runtime::LinuxRdma>,
) -> Result<Vec<Step>, CgroupError> {
    let mut devices: Vec<_> = rdma.iter().collect();
    devices.sort_by(|a, b| a.0.cmp(b.0));
    let mut steps = Vec::new();
    for (device, limits) in devices {
        if device.is_empty() || device.contains(char::is_whitespace) {
            return Err(CgroupError::invalid(
                "linux.resources.rdma",
                device,
                "not an RDMA device name",
            ));
        }
        let render = |n: Option<u32>| n.map_or_else(|| "max".to_owned(), |n| n.to_string());
        steps.push(write(
            dir.join("rdma.max"),
            format!(
                "{device} hca_handle={} hca_object={}",
                render(limits.hca_handles()),
                render(limits.hca_objects())
            ),
        ));
    }
    Ok(steps)
}

/// A plain write step.
pub(crate) fn write(path: PathBuf, value: impl Into<String>) -> Step {
    Step::Write {
        path,
        value: value.into(),
    }
}

/// `dir/file` if the kernel offers it, else an error naming `field`.
pub(crate) fn existing(
    fs: &dyn CgroupFs,
    dir: &Path,
    file: &str,
    field: &str,
) -> Result<PathBuf, CgroupError> {
    let path = dir.join(file);
    if fs.exists(&path) {
        Ok(path)
    } else {
        Err(CgroupError::unsupported(
            field,
            format!("by this kernel (no {file} in {})", dir.display()),
        ))
    }
}
