//! Cgroups v1 and v2 behind one interface.
//!
//! A [`CgroupManager`] knows the cgroup root (`/sys/fs/cgroup` on a host, a tempdir in tests),
//! its [`CgroupMode`] and the parent under which containers live (`berth`); it creates or opens
//! a container's [`Cgroup`] at `<parent>/<id>`:
//!
//! - v1 (also systemd's hybrid layout, whose `unified` cgroup2 mount is ignored for resource
//!   control): one directory per hierarchy, `<root>/memory/berth/<id>`, `<root>/pids/berth/<id>`…;
//! - v2: one directory `<root>/berth/<id>`; creating it enables controllers in the
//!   `cgroup.subtree_control` of every ancestor.
//!
//! Every kernel file access goes through a [`CgroupFs`] ([`HostCgroupFs`] for the kernel) and
//! every path is built from the root given to the manager, so tests point both at a tempdir
//! (see the `fake` module's `FakeCgroupFs`).
//!
//! Resources come as OCI [`LinuxResources`] and are applied as runc applies them (the same
//! shares→weight and memory+swap→swap conversions on v2). A field this host or cgroup version
//! cannot enforce is refused with an error naming it, before anything is written; a value the
//! kernel refuses is reported with the file and the value. Device rules become
//! `devices.allow`/`devices.deny` lines on v1 and an eBPF program attached to the cgroup on v2
//! (the module's only `unsafe`, in `bpf.rs`).

mod apply;
mod bpf;
pub mod convert;
mod detect;
mod devices;
mod error;
mod fs;
mod stats;
mod v1;
mod v2;

#[cfg(test)]
pub mod fake;
#[cfg(test)]
mod priv_tests;
#[cfg(test)]
mod tests_v1;
#[cfg(test)]
mod tests_v2;

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use oci_spec::runtime::LinuxResources;
use rustix::io::Errno;
use rustix::process::{Pid, Signal};

pub use detect::{CgroupMode, Controller};
pub use devices::{BpfInsn, DeviceProgram};
pub use error::CgroupError;
pub use fs::{CgroupFs, HostCgroupFs};
pub use stats::{
    host_memory_bytes, system_cpu_usage, BlkioEntry, BlkioStats, CgroupStats, CpuStats,
    FreezerState, Limit, MemoryStats, PidsStats,
};

use fs as cgfs;
use v1::V1Cgroup;
use v2::V2Cgroup;

/// Where the kernel's cgroup file systems are mounted on a host.
pub const DEFAULT_ROOT: &str = "/sys/fs/cgroup";
/// The parent cgroup of every container, below the root (or below each v1 hierarchy).
pub const DEFAULT_PARENT: &str = "berth";

/// Tunables of a [`CgroupManager`] and the cgroups it hands out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupOptions {
    /// How long [`Cgroup::freeze`] and [`Cgroup::thaw`] wait for the state to settle.
    pub freeze_timeout: Duration,
    /// How long [`Cgroup::destroy`] waits for killed processes to leave and for `rmdir`.
    pub destroy_timeout: Duration,
    /// v2 only: controllers to enable for containers when creating them; `None` enables every
    /// controller the root offers (as runc does). Controllers a resource needs later are
    /// enabled by [`Cgroup::apply`] in any case.
    pub v2_controllers: Option<Vec<Controller>>,
}

impl Default for CgroupOptions {
    fn default() -> Self {
        CgroupOptions {
            freeze_timeout: Duration::from_secs(10),
            destroy_timeout: Duration::from_secs(5),
            v2_controllers: None,
        }
    }
}

/// Creates and opens containers' cgroups under one root and parent.
#[derive(Clone, Debug)]
pub struct CgroupManager {
    root: PathBuf,
    mode: CgroupMode,
    parent: PathBuf,
    fs: Arc<dyn CgroupFs>,
    options: CgroupOptions,
}

/// The layout [`CgroupManager::remember_layout`] found: root, proc root, mode.
static REMEMBERED: std::sync::OnceLock<(PathBuf, PathBuf, CgroupMode)> = std::sync::OnceLock::new();

impl CgroupManager {
    /// A manager for `root` laid out as `mode`, reaching the files through `fs`; containers go
    /// under [`DEFAULT_PARENT`].
    pub fn new(root: impl Into<PathBuf>, mode: CgroupMode, fs: Arc<dyn CgroupFs>) -> CgroupManager {
        CgroupManager {
            root: root.into(),
            mode,
            parent: PathBuf::from(DEFAULT_PARENT),
            fs,
            options: CgroupOptions::default(),
        }
    }

    /// A manager for the kernel's cgroups at `root`, its layout detected from
    /// `<proc_root>/self/mountinfo` (`/sys/fs/cgroup` and `/proc` on a host).
    pub fn detect(
        root: impl Into<PathBuf>,
        proc_root: &Path,
    ) -> Result<CgroupManager, CgroupError> {
        let root = root.into();
        let mode = match REMEMBERED.get() {
            Some((r, p, mode)) if *r == root && p == proc_root => mode.clone(),
            _ => CgroupMode::detect_from_proc(&root, proc_root)?,
        };
        Ok(CgroupManager::new(root, mode, Arc::new(HostCgroupFs)))
    }

    /// Detects the layout of `root` now and keeps it for every later [`CgroupManager::detect`]
    /// of the same root in this process and the processes it forks. The shim zygote does this
    /// once at its start, so a shim does not read and parse `/proc/self/mountinfo` for each
    /// container (0.3 ms here). Cgroup hierarchies are mounted at boot and stay; a host that
    /// remounts them restarts the daemon (and with it the zygote).
    pub fn remember_layout(root: impl Into<PathBuf>, proc_root: &Path) {
        let root = root.into();
        if let Ok(mode) = CgroupMode::detect_from_proc(&root, proc_root) {
            let _ = REMEMBERED.set((root, proc_root.to_path_buf(), mode));
        }
    }

    /// Puts containers under `parent` (one or more `/`-separated names; empty for the root).
    pub fn with_parent(mut self, parent: &str) -> Result<CgroupManager, CgroupError> {
        let mut path = PathBuf::new();
        let trimmed = parent.trim_matches('/');
        if !trimmed.is_empty() {
            for name in trimmed.split('/') {
                validate_name(name)?;
                path.push(name);
            }
        }
        self.parent = path;
        Ok(self)
    }

    /// Replaces the tunables.
    pub fn with_options(mut self, options: CgroupOptions) -> CgroupManager {
        self.options = options;
        self
    }

    /// The cgroup root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The detected or given layout.
    pub fn mode(&self) -> &CgroupMode {
        &self.mode
    }

    /// The parent of containers' cgroups, relative to the root (or each v1 hierarchy).
    pub fn parent(&self) -> &Path {
        &self.parent
    }

    /// Creates the cgroup of container `id` (and the parent, enabling controllers on v2).
    /// An existing directory is reused, so a retry after a crash succeeds.
    pub fn create(&self, id: &str) -> Result<Cgroup, CgroupError> {
        let cgroup = self.open(id)?;
        match &cgroup.layout {
            Layout::V1(v1) => {
                let mut created = Vec::new();
                if let Err(err) = v1.create(self.fs.as_ref(), &mut created) {
                    // best effort: leave no half-made cgroup behind the error being returned
                    for dir in created.iter().rev() {
                        let _ = self.fs.remove_dir(dir);
                    }
                    return Err(err);
                }
                tracing::debug!(id, dirs = created.len(), "cgroup v1 created");
            }
            Layout::V2(v2) => {
                let created =
                    v2.create(self.fs.as_ref(), self.options.v2_controllers.as_deref())?;
                tracing::debug!(id, path = %v2.dir().display(), created, "cgroup v2 created");
            }
        }
        Ok(cgroup)
    }

    /// The cgroup of container `id`, without touching the file system (it may not exist).
    pub fn open(&self, id: &str) -> Result<Cgroup, CgroupError> {
        validate_name(id)?;
        let relative = self.parent.join(id);
        let layout = match &self.mode {
            CgroupMode::V1 { mounts } => Layout::V1(V1Cgroup::new(&self.root, mounts, &relative)),
            CgroupMode::V2 => Layout::V2(V2Cgroup::new(&self.root, &relative)),
        };
        Ok(Cgroup {
            id: id.to_owned(),
            fs: Arc::clone(&self.fs),
            options: self.options.clone(),
            layout,
        })
    }
}

/// One container's cgroup (its directory in every v1 hierarchy, or its v2 directory).
#[derive(Clone, Debug)]
pub struct Cgroup {
    id: String,
    fs: Arc<dyn CgroupFs>,
    options: CgroupOptions,
    layout: Layout,
}

#[derive(Clone, Debug)]
enum Layout {
    V1(V1Cgroup),
    V2(V2Cgroup),
}

impl Cgroup {
    /// The container id (the last path component).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether this is a v2 cgroup.
    pub fn is_v2(&self) -> bool {
        matches!(self.layout, Layout::V2(_))
    }

    /// The directory holding `controller`'s files: on v1 the container's directory in that
    /// controller's hierarchy (`None` when it is not mounted); on v2 the one directory.
    pub fn path_for(&self, controller: Controller) -> Option<PathBuf> {
        match &self.layout {
            Layout::V1(v1) => v1.path_for(controller),
            Layout::V2(v2) => Some(v2.dir().to_path_buf()),
        }
    }

    /// Every directory of this cgroup (one per v1 hierarchy, or the v2 directory).
    pub fn paths(&self) -> Vec<PathBuf> {
        match &self.layout {
            Layout::V1(v1) => v1.paths(),
            Layout::V2(v2) => vec![v2.dir().to_path_buf()],
        }
    }

    /// Whether any of its directories exists.
    pub fn exists(&self) -> bool {
        self.paths().iter().any(|dir| self.fs.exists(dir))
    }

    /// Applies resource limits. Fields this host or cgroup version cannot enforce are refused
    /// (an error naming the field) before any limit is written (on v2, controllers the
    /// resources need may have been enabled in the ancestors by then); a value the kernel
    /// refuses is reported with its file and value, and the writes before it stay applied.
    pub fn apply(&self, resources: &LinuxResources) -> Result<(), CgroupError> {
        let fs = self.fs.as_ref();
        let steps = match &self.layout {
            Layout::V1(v1) => v1.plan(fs, resources)?,
            Layout::V2(v2) => {
                V2Cgroup::check_supported(resources)?;
                v2.ensure_controllers(fs, resources)?;
                v2.plan(fs, resources)?
            }
        };
        tracing::debug!(id = %self.id, writes = steps.len(), "applying cgroup resources");
        apply::execute(fs, &steps)
    }

    /// Moves process `pid` into this cgroup (`cgroup.procs` of every v1 hierarchy).
    pub fn add_pid(&self, pid: Pid) -> Result<(), CgroupError> {
        let raw = pid.as_raw_pid();
        match &self.layout {
            Layout::V1(v1) => v1.add_pid(self.fs.as_ref(), raw),
            Layout::V2(v2) => cgfs::write(
                self.fs.as_ref(),
                &v2.dir().join("cgroup.procs"),
                &raw.to_string(),
            ),
        }
    }

    /// The processes in this cgroup (every v1 hierarchy's, merged); none when it is gone.
    /// Processes outside the caller's pid namespace (listed as 0 by the kernel) are left out.
    pub fn procs(&self) -> Result<Vec<Pid>, CgroupError> {
        let raw = match &self.layout {
            Layout::V1(v1) => v1.procs(self.fs.as_ref())?,
            Layout::V2(v2) => cgfs::read_procs(self.fs.as_ref(), &v2.dir().join("cgroup.procs"))?,
        };
        Ok(raw.into_iter().filter_map(Pid::from_raw).collect())
    }

    /// Freezes every process and waits until the kernel reports the cgroup frozen (v1
    /// `freezer.state` `FROZEN`, v2 `cgroup.events` `frozen 1`). On timeout it thaws the
    /// cgroup again and fails.
    pub fn freeze(&self) -> Result<(), CgroupError> {
        let fs = self.fs.as_ref();
        let timeout = self.options.freeze_timeout;
        match &self.layout {
            Layout::V1(v1) => {
                let path = v1.freezer_file()?;
                // re-writing FROZEN while FREEZING makes the kernel retry tasks that forked
                let outcome = cgfs::poll(timeout, || {
                    cgfs::write(fs, &path, "FROZEN")?;
                    match V1Cgroup::freezer_state(fs, &path)? {
                        FreezerState::Frozen => Ok(Ok(())),
                        state => Ok(Err(format!("{state:?}"))),
                    }
                })?;
                outcome.map_err(|(last, waited)| {
                    self.undo_freeze(&path, "THAWED");
                    timeout_error(&path, "FROZEN", last, waited)
                })
            }
            Layout::V2(v2) => {
                let path = v2.freeze_file(fs)?;
                cgfs::write(fs, &path, "1")?;
                let events = v2.dir().join("cgroup.events");
                let outcome = cgfs::poll(timeout, || {
                    Ok(if v2.events_frozen(fs)? {
                        Ok(())
                    } else {
                        Err("frozen 0".to_owned())
                    })
                })?;
                outcome.map_err(|(last, waited)| {
                    self.undo_freeze(&path, "0");
                    timeout_error(&events, "frozen 1", last, waited)
                })
            }
        }
    }

    /// Thaws every process and waits until the kernel reports the cgroup thawed.
    pub fn thaw(&self) -> Result<(), CgroupError> {
        let fs = self.fs.as_ref();
        let timeout = self.options.freeze_timeout;
        match &self.layout {
            Layout::V1(v1) => {
                let path = v1.freezer_file()?;
                cgfs::write(fs, &path, "THAWED")?;
                let outcome = cgfs::poll(timeout, || {
                    Ok(match V1Cgroup::freezer_state(fs, &path)? {
                        FreezerState::Thawed => Ok(()),
                        state => Err(format!("{state:?}")),
                    })
                })?;
                outcome.map_err(|(last, waited)| timeout_error(&path, "THAWED", last, waited))
            }
            Layout::V2(v2) => {
                let path = v2.freeze_file(fs)?;
                cgfs::write(fs, &path, "0")?;
                let events = v2.dir().join("cgroup.events");
                let outcome = cgfs::poll(timeout, || {
                    Ok(if v2.events_frozen(fs)? {
                        Err("frozen 1".to_owned())
                    } else {
                        Ok(())
                    })
                })?;
                outcome.map_err(|(last, waited)| timeout_error(&events, "frozen 0", last, waited))
            }
        }
    }

    /// The freezer's current state.
    pub fn freezer_state(&self) -> Result<FreezerState, CgroupError> {
        match &self.layout {
            Layout::V1(v1) => V1Cgroup::freezer_state(self.fs.as_ref(), &v1.freezer_file()?),
            Layout::V2(v2) => v2.freezer_state(self.fs.as_ref()),
        }
    }

    /// Usage and limits; parts whose controller is absent are `None`.
    pub fn stats(&self) -> Result<CgroupStats, CgroupError> {
        let fs = self.fs.as_ref();
        match &self.layout {
            Layout::V1(v1) => Ok(CgroupStats {
                memory: v1.memory_stats(fs)?,
                cpu: v1.cpu_stats(fs)?,
                pids: v1.pids_stats(fs)?,
                blkio: v1.blkio_stats(fs)?,
            }),
            Layout::V2(v2) => Ok(CgroupStats {
                memory: v2.memory_stats(fs)?,
                cpu: v2.cpu_stats(fs)?,
                pids: v2.pids_stats(fs)?,
                blkio: v2.blkio_stats(fs)?,
            }),
        }
    }

    /// How many processes the OOM killer killed in this cgroup: v2 `memory.events` `oom_kill`;
    /// v1 `memory.oom_control` `oom_kill` (Linux 4.13+), else 1 while `under_oom` is set and
    /// `memory.failcnt` is non-zero (older kernels record no kill count). Read it before
    /// [`Cgroup::destroy`].
    pub fn oom_kill_count(&self) -> Result<u64, CgroupError> {
        match &self.layout {
            Layout::V1(v1) => v1.oom_kill_count(self.fs.as_ref()),
            Layout::V2(v2) => v2.oom_kill_count(self.fs.as_ref()),
        }
    }

    /// Whether the OOM killer killed a process of this cgroup.
    pub fn oom_killed(&self) -> Result<bool, CgroupError> {
        Ok(self.oom_kill_count()? > 0)
    }

    /// Sends `signal` to every process. SIGKILL on v2 uses `cgroup.kill` (Linux 5.14+), which
    /// also catches processes forked meanwhile; otherwise the cgroup is frozen (when it can
    /// be) while each listed process is signalled, so none escapes by forking, then thawed
    /// (left frozen if it was frozen before, unless the signal is SIGKILL, which a frozen
    /// process only acts on once thawed).
    pub fn kill_all(&self, signal: Signal) -> Result<(), CgroupError> {
        let fs = self.fs.as_ref();
        if let (Layout::V2(v2), true) = (&self.layout, signal == Signal::KILL) {
            let kill = v2.dir().join("cgroup.kill");
            if fs.exists(&kill) {
                return cgfs::write(fs, &kill, "1");
            }
        }
        if self.procs()?.is_empty() {
            return Ok(());
        }
        let before = self.freezer_state().ok();
        let froze = before.is_some()
            && self
                .freeze()
                .inspect_err(|err| {
                    tracing::warn!(
                        id = %self.id,
                        error = err as &dyn std::error::Error,
                        "signalling the cgroup's processes without freezing it"
                    );
                })
                .is_ok();
        let signalled = self.signal_each(signal);
        if froze && (signal == Signal::KILL || before != Some(FreezerState::Frozen)) {
            let thawed = self.thaw();
            signalled.and(thawed)
        } else {
            signalled
        }
    }

    fn signal_each(&self, signal: Signal) -> Result<(), CgroupError> {
        for pid in self.procs()? {
            match rustix::process::kill_process(pid, signal) {
                Ok(()) | Err(Errno::SRCH) => {}
                Err(errno) => {
                    return Err(CgroupError::Signal {
                        pid: pid.as_raw_pid(),
                        signal: signal.as_raw(),
                        path: self.paths().into_iter().next().unwrap_or_default(),
                        source: errno.into(),
                    })
                }
            }
        }
        Ok(())
    }

    /// Kills what is left in the cgroup, waits for it to empty, and removes its directory in
    /// every hierarchy (child cgroups first). Idempotent: missing directories are fine.
    pub fn destroy(&self) -> Result<(), CgroupError> {
        let fs = self.fs.as_ref();
        // the common case, the processes gone (a container that exited): one rmdir per
        // hierarchy, no cgroup.procs read first. A directory still busy (processes, child
        // cgroups) takes the way below: a process sits in its cgroup in every hierarchy, so
        // the ones removed here held none.
        let mut busy = false;
        for dir in self.paths() {
            match fs.remove_dir(&dir) {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(_) => busy = true,
            }
        }
        if !busy {
            tracing::debug!(id = %self.id, "cgroup destroyed");
            return Ok(());
        }
        if !self.exists() {
            return Ok(());
        }
        let timeout = self.options.destroy_timeout;
        if !self.procs()?.is_empty() {
            self.kill_all(Signal::KILL)?;
            let outcome = cgfs::poll(timeout, || {
                let left = self.procs()?;
                Ok(if left.is_empty() {
                    Ok(())
                } else {
                    Err(format!("{left:?}"))
                })
            })?;
            if let Err((last, waited)) = outcome {
                let path = self
                    .paths()
                    .into_iter()
                    .next()
                    .unwrap_or_default()
                    .join("cgroup.procs");
                return Err(timeout_error(&path, "no processes", last, waited));
            }
        }
        for dir in self.paths() {
            cgfs::remove_tree(fs, &dir, timeout)?;
        }
        tracing::debug!(id = %self.id, "cgroup destroyed");
        Ok(())
    }

    /// Best effort after a failed freeze: the error being returned matters more than this one.
    fn undo_freeze(&self, path: &Path, value: &str) {
        if let Err(err) = cgfs::write(self.fs.as_ref(), path, value) {
            tracing::warn!(
                id = %self.id,
                error = &err as &dyn std::error::Error,
                "could not thaw a cgroup that failed to freeze"
            );
        }
    }
}

fn timeout_error(path: &Path, expected: &str, last: String, waited: Duration) -> CgroupError {
    CgroupError::Timeout {
        path: path.to_path_buf(),
        expected: expected.to_owned(),
        last,
        waited,
    }
}

/// A cgroup directory name: one non-empty path component without NUL or newline.
fn validate_name(name: &str) -> Result<(), CgroupError> {
    let reason = if name.is_empty() {
        Some("empty")
    } else if name.len() > 255 {
        Some("longer than 255 bytes")
    } else if name.contains(['/', '\0', '\n']) {
        Some("contains '/', NUL or a newline")
    } else if Path::new(name)
        .components()
        .ne([Component::Normal(name.as_ref())])
    {
        Some("not a plain directory name")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(CgroupError::InvalidName {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// The `cgroup.procs` file of the cgroup this process is in, from `/proc/self/cgroup`'s text:
/// the `pids` (else `memory`) v1 hierarchy, or the v2 cgroup on a pure v2 host.
pub fn own_procs_file(root: &Path, proc_self_cgroup: &str) -> Option<PathBuf> {
    let mut v2 = None;
    let mut v1 = None;
    for line in proc_self_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let rel = path.trim_start_matches('/');
        match controllers {
            "" => v2 = Some(root.join(rel).join("cgroup.procs")),
            "pids" => v1 = Some(root.join("pids").join(rel).join("cgroup.procs")),
            "memory" if v1.is_none() => {
                v1 = Some(root.join("memory").join(rel).join("cgroup.procs"))
            }
            _ => {}
        }
    }
    // on a hybrid host the v2 line names the `unified` mount, not `root`: use v1 there
    v1.or(if proc_self_cgroup.lines().count() == 1 {
        v2
    } else {
        None
    })
}

/// Warms the kernel's cgroup migration lock without moving anything, by writing this process's
/// own pid into the cgroup it is already in.
///
/// Moving a process into a cgroup takes a global lock whose first writer waits for a whole RCU
/// grace period (5–15 ms on this kind of VM); a writer that comes while that period is running,
/// or within one period after the last writer, does not wait again. The daemon calls this
/// (on a blocking thread) as soon as a container is created or started, so the wait overlaps
/// with the rest of the start instead of sitting on its critical path in the shim. Best effort:
/// any error is ignored.
pub fn warm_migration_lock(root: &Path) {
    let Ok(text) = std::fs::read_to_string("/proc/self/cgroup") else {
        return;
    };
    if let Some(file) = own_procs_file(root, &text) {
        let _ = std::fs::write(file, std::process::id().to_string());
    }
}

/// The remount that turns on the kernel's `favordynmods` cgroup option: see
/// [`favor_dynamic_modifications`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynmodsRemount {
    /// The cgroup mount to remount.
    pub target: PathBuf,
    /// Its per-mount flags, kept as they are.
    pub flags: rustix::mount::MountFlags,
    /// Its file-system options with `favordynmods` added.
    pub data: String,
}

/// Plans the remount for [`favor_dynamic_modifications`] from `/proc/self/mountinfo`'s text:
/// `None` when a cgroup hierarchy already has the option (it is global) or there is no cgroup
/// mount. The cgroup2 mount is preferred (the option exists there since Linux 6.0), else the
/// first v1 hierarchy; its mount flags and options are kept, so the remount changes nothing
/// else.
pub fn favordynmods_plan(mountinfo: &str) -> Option<DynmodsRemount> {
    use rustix::mount::MountFlags;
    let mut v2 = None;
    let mut v1 = None;
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let l: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        if l.len() < 6 || r.len() < 3 {
            continue;
        }
        let (fstype, super_opts) = (r[0], r[2]);
        if fstype != "cgroup" && fstype != "cgroup2" {
            continue;
        }
        if super_opts.split(',').any(|o| o == "favordynmods") {
            return None;
        }
        // mountinfo escapes spaces and the like as octal: cgroup mount points have none
        let target = PathBuf::from(l[4]);
        let mut flags = MountFlags::empty();
        for o in l[5].split(',') {
            flags |= match o {
                "ro" => MountFlags::RDONLY,
                "nosuid" => MountFlags::NOSUID,
                "nodev" => MountFlags::NODEV,
                "noexec" => MountFlags::NOEXEC,
                "noatime" => MountFlags::NOATIME,
                "nodiratime" => MountFlags::NODIRATIME,
                "relatime" => MountFlags::RELATIME,
                "strictatime" => MountFlags::STRICTATIME,
                _ => MountFlags::empty(),
            };
        }
        let mut data: Vec<&str> = super_opts
            .split(',')
            .filter(|o| *o != "rw" && *o != "ro" && !o.is_empty())
            .collect();
        data.push("favordynmods");
        let plan = DynmodsRemount {
            target,
            flags,
            data: data.join(","),
        };
        if fstype == "cgroup2" {
            v2.get_or_insert(plan);
        } else {
            v1.get_or_insert(plan);
        }
    }
    v2.or(v1)
}

/// Turns on the kernel's `favordynmods` cgroup option (host-wide, until the next boot or
/// remount), if no hierarchy has it yet. Returns the mount it changed.
///
/// Moving a process into a cgroup takes `cgroup_threadgroup_rwsem` for writing; without this
/// option every writer that comes after a quiet spell waits for an RCU grace period (5–15 ms on
/// this kind of VM, more under load), which is most of a container start on cgroup v1. With it
/// the lock stays in its slow-reader mode: migrations are immediate, while fork and exit pay a
/// little more everywhere on the host. systemd turns it on for cgroup2 on recent versions;
/// berth only does when the daemon is started with `--cgroup-favordynmods`.
pub fn favor_dynamic_modifications() -> Result<Option<PathBuf>, CgroupError> {
    let path = Path::new("/proc/self/mountinfo");
    let text = std::fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let Some(plan) = favordynmods_plan(&text) else {
        return Ok(None);
    };
    rustix::mount::mount_remount(&plan.target, plan.flags, plan.data.as_str()).map_err(|e| {
        CgroupError::Remount {
            path: plan.target.clone(),
            options: plan.data.clone(),
            source: e.into(),
        }
    })?;
    Ok(Some(plan.target))
}

#[cfg(test)]
mod warm_tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,nosuid,relatime shared:9 - cgroup cgroup rw,cpu
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate
";

    #[test]
    fn a_remembered_layout_is_used_for_its_root_only() {
        let proc_root = tempfile::tempdir().expect("test setup");
        std::fs::create_dir(proc_root.path().join("self")).expect("test setup");
        let mountinfo = proc_root.path().join("self/mountinfo");
        std::fs::write(&mountinfo, HYBRID).expect("test setup");
        CgroupManager::remember_layout("/sys/fs/cgroup", proc_root.path());
        // the file is not read again: the layout stays what it was
        std::fs::write(&mountinfo, "").expect("test setup");
        let m = CgroupManager::detect("/sys/fs/cgroup", proc_root.path()).expect("test setup");
        assert!(matches!(m.mode, CgroupMode::V1 { .. }), "{:?}", m.mode);
        // another root (or proc root) is detected as ever
        assert!(CgroupManager::detect("/other/cgroup", proc_root.path()).is_err());
    }

    #[test]
    fn favordynmods_remounts_the_cgroup2_mount_keeping_its_options() {
        use rustix::mount::MountFlags;
        let plan = favordynmods_plan(HYBRID).expect("a plan");
        assert_eq!(plan.target, PathBuf::from("/sys/fs/cgroup/unified"));
        assert_eq!(
            plan.flags,
            MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC | MountFlags::RELATIME
        );
        assert_eq!(plan.data, "nsdelegate,favordynmods");
        // pure v1: the first hierarchy, its controllers kept
        let v1: String = HYBRID
            .lines()
            .filter(|l| !l.contains("cgroup2"))
            .map(|l| format!("{l}\n"))
            .collect();
        let plan = favordynmods_plan(&v1).expect("a plan");
        assert_eq!(plan.target, PathBuf::from("/sys/fs/cgroup/cpu"));
        assert_eq!(plan.flags, MountFlags::NOSUID | MountFlags::RELATIME);
        assert_eq!(plan.data, "cpu,favordynmods");
        // already on anywhere (the lock is global): nothing to do; no cgroup mount: nothing
        let on = HYBRID.replace("rw,name=systemd", "rw,favordynmods,name=systemd");
        assert_eq!(favordynmods_plan(&on), None);
        assert_eq!(
            favordynmods_plan("31 23 0:28 / /tmp rw - tmpfs tmpfs rw\n"),
            None
        );
    }

    #[test]
    fn own_procs_file_picks_pids_on_v1_and_the_cgroup_on_v2() {
        let root = Path::new("/sys/fs/cgroup");
        let hybrid = "12:pids:/user.slice\n11:memory:/user.slice/x\n0::/user.slice/y\n";
        assert_eq!(
            own_procs_file(root, hybrid),
            Some(PathBuf::from("/sys/fs/cgroup/pids/user.slice/cgroup.procs"))
        );
        let mem_only = "3:memory:/a\n0::/b\n";
        assert_eq!(
            own_procs_file(root, mem_only),
            Some(PathBuf::from("/sys/fs/cgroup/memory/a/cgroup.procs"))
        );
        assert_eq!(
            own_procs_file(root, "0::/system.slice/berth.service\n"),
            Some(PathBuf::from(
                "/sys/fs/cgroup/system.slice/berth.service/cgroup.procs"
            ))
        );
        assert_eq!(
            own_procs_file(root, "0::/\n"),
            Some(PathBuf::from("/sys/fs/cgroup/cgroup.procs"))
        );
        assert_eq!(own_procs_file(root, "5:cpu,cpuacct:/\n0::/\n"), None);
    }
}
