//! A fake cgroup file system on a tempdir, shaped like a v1 hybrid host or a pure v2 host, that
//! models the kernel rules the cgroup code depends on and records every write as a
//! [`FakeWrite`] for assertions:
//!
//! - `mkdir` creates the control files of the hierarchy (v1) or of the controllers the
//!   parent's `cgroup.subtree_control` enables (v2); a new v1 cpuset starts empty;
//! - control files can only be written, never created; `rmdir` fails with `EBUSY` while the
//!   cgroup has processes or children and removes its control files otherwise;
//! - `cgroup.subtree_control` accepts `+name` only for controllers in `cgroup.controllers`;
//! - v1 `memory.limit_in_bytes`/`memory.memsw.limit_in_bytes` keep memsw ≥ limit (`EINVAL`
//!   otherwise) and store -1 as the kernel's "unlimited" number; `cpu.shares` is clamped;
//! - v2 device programs are recorded, not run (the devices module tests run them);
//! - v1 `freezer.state` passes through `FREEZING` for a configurable number of reads;
//!   v2 `cgroup.freeze` updates `cgroup.events`; `cgroup.kill` empties `cgroup.procs`.
//!
//! Test-only (`cfg(test)`): making it available to other crates needs a `testing` feature.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use super::detect::Controller;
use super::devices::DeviceProgram;
use super::fs::CgroupFs;

/// The kernel's v1 "unlimited" for 4 KiB pages.
pub const V1_UNLIMITED: &str = "9223372036854771712";

/// The shape of the fake tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FakeLayout {
    /// A tmpfs root with one directory per v1 hierarchy plus an `unified` cgroup2 mount.
    V1Hybrid,
    /// A cgroup2 root.
    V2,
}

/// One write the code under test made, with the path relative to the fake root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeWrite {
    /// The file, relative to the root (`memory/berth/c1/memory.limit_in_bytes`).
    pub path: PathBuf,
    /// The value written.
    pub value: String,
}

/// The v1 hierarchies of the fake hybrid host: directory name and its controllers.
pub const V1_HIERARCHIES: &[(&str, &[Controller])] = &[
    ("cpu,cpuacct", &[Controller::Cpu, Controller::Cpuacct]),
    ("cpuset", &[Controller::Cpuset]),
    ("memory", &[Controller::Memory]),
    ("pids", &[Controller::Pids]),
    ("freezer", &[Controller::Freezer]),
    ("devices", &[Controller::Devices]),
    ("blkio", &[Controller::Blkio]),
    ("hugetlb", &[Controller::Hugetlb]),
    (
        "net_cls,net_prio",
        &[Controller::NetCls, Controller::NetPrio],
    ),
];

/// Controllers the fake v2 root offers.
pub const V2_CONTROLLERS: &str = "cpuset cpu io memory hugetlb pids rdma misc";

#[derive(Debug, Default)]
struct FakeState {
    writes: Vec<FakeWrite>,
    /// Device programs attached, with the cgroup directory relative to the root.
    device_programs: Vec<(PathBuf, DeviceProgram)>,
    /// file name → errno for writes to refuse.
    failures: HashMap<String, i32>,
    /// Reads of `freezer.state` that still show FREEZING, per file.
    freezing: HashMap<PathBuf, usize>,
}

/// The fake cgroup file system.
#[derive(Debug)]
pub struct FakeCgroupFs {
    root: PathBuf,
    layout: FakeLayout,
    /// Reads of `freezer.state` that show FREEZING after FROZEN is written
    /// (`usize::MAX`: it never settles).
    freezing_reads: Mutex<usize>,
    state: Mutex<FakeState>,
}

impl FakeCgroupFs {
    /// Builds a v1 hybrid tree in `root` (an empty tempdir).
    pub fn v1_hybrid(root: &Path) -> io::Result<FakeCgroupFs> {
        let fake = FakeCgroupFs::empty(root, FakeLayout::V1Hybrid);
        for (dir, controllers) in V1_HIERARCHIES {
            let path = root.join(dir);
            std::fs::create_dir(&path)?;
            fake.create_control_files(&path, controllers, true)?;
        }
        for dir in ["systemd", "unified"] {
            std::fs::create_dir(root.join(dir))?;
            std::fs::write(root.join(dir).join("cgroup.procs"), "1\n")?;
        }
        Ok(fake)
    }

    /// Builds a v2 tree in `root` (an empty tempdir) offering [`V2_CONTROLLERS`], none yet
    /// enabled for children.
    pub fn v2(root: &Path) -> io::Result<FakeCgroupFs> {
        let fake = FakeCgroupFs::empty(root, FakeLayout::V2);
        for (file, content) in [
            ("cgroup.controllers", V2_CONTROLLERS),
            ("cgroup.subtree_control", ""),
            ("cgroup.procs", "1\n"),
            ("cgroup.threads", "1\n"),
            ("cgroup.max.depth", "max"),
            ("cpu.stat", "usage_usec 0\nuser_usec 0\nsystem_usec 0\n"),
            ("memory.stat", "anon 0\nfile 0\n"),
            ("cpuset.cpus.effective", "0-3"),
            ("cpuset.mems.effective", "0"),
        ] {
            std::fs::write(root.join(file), content)?;
        }
        Ok(fake)
    }

    fn empty(root: &Path, layout: FakeLayout) -> FakeCgroupFs {
        FakeCgroupFs {
            root: root.to_path_buf(),
            layout,
            freezing_reads: Mutex::new(1),
            state: Mutex::new(FakeState::default()),
        }
    }

    /// The mountinfo text a host with this layout would show.
    pub fn mountinfo(&self) -> String {
        let root = self.root.display();
        match self.layout {
            FakeLayout::V2 => format!(
                "24 1 0:22 / /sys rw,nosuid - sysfs sysfs rw\n\
                 30 24 0:26 / {root} rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"
            ),
            FakeLayout::V1Hybrid => {
                let mut text = format!("31 24 0:28 / {root} rw,relatime - tmpfs tmpfs rw,mode=755\n");
                for (index, (dir, controllers)) in V1_HIERARCHIES.iter().enumerate() {
                    let names: Vec<&str> = controllers.iter().map(|c| c.name()).collect();
                    text.push_str(&format!(
                        "{} 31 0:{} / {root}/{dir} rw,nosuid,nodev,noexec,relatime shared:{} - cgroup cgroup rw,{}\n",
                        40 + index,
                        40 + index,
                        10 + index,
                        names.join(",")
                    ));
                }
                text.push_str(&format!(
                    "60 31 0:60 / {root}/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n\
                     61 31 0:61 / {root}/unified rw,relatime - cgroup2 cgroup2 rw\n"
                ));
                text
            }
        }
    }

    /// The root of the fake tree.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Every write so far, in order.
    pub fn writes(&self) -> Vec<FakeWrite> {
        self.lock().writes.clone()
    }

    /// The writes to files directly in `dir` (relative to the root), as `(file name, value)`.
    pub fn writes_in(&self, dir: &str) -> Vec<(String, String)> {
        self.writes()
            .into_iter()
            .filter(|w| w.path.parent() == Some(Path::new(dir)))
            .map(|w| {
                let name = w
                    .path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                (name, w.value)
            })
            .collect()
    }

    /// The device programs attached so far (v2), with the cgroup relative to the root.
    pub fn device_programs(&self) -> Vec<(PathBuf, DeviceProgram)> {
        self.lock().device_programs.clone()
    }

    /// Forgets the writes recorded so far.
    pub fn clear_writes(&self) {
        self.lock().writes.clear();
    }

    /// Makes every later write to a file named `file_name` fail with `errno`.
    pub fn fail_writes(&self, file_name: &str, errno: i32) {
        self.lock().failures.insert(file_name.to_owned(), errno);
    }

    /// How many reads of `freezer.state` show FREEZING after FROZEN is written
    /// (`usize::MAX`: the cgroup never finishes freezing, on v1 or v2).
    pub fn set_freezing_reads(&self, reads: usize) {
        *self
            .freezing_reads
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = reads;
    }

    /// Sets a file's content as the kernel would (usage counters, events), creating it.
    pub fn set(&self, relative: &str, content: &str) -> io::Result<()> {
        std::fs::write(self.root.join(relative), content)
    }

    /// A file's content.
    pub fn get(&self, relative: &str) -> io::Result<String> {
        std::fs::read_to_string(self.root.join(relative))
    }

    /// Removes a file, as on a kernel that lacks it (`memory.memsw.*` without swap accounting).
    pub fn remove(&self, relative: &str) -> io::Result<()> {
        std::fs::remove_file(self.root.join(relative))
    }

    fn lock(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn relative<'a>(&self, path: &'a Path) -> io::Result<&'a Path> {
        path.strip_prefix(&self.root).map_err(|_| {
            io::Error::new(
                io::ErrorKind::PermissionDenied,
                "outside the fake cgroup root",
            )
        })
    }

    /// The v1 hierarchy a path is in, with its controllers.
    fn hierarchy(&self, path: &Path) -> io::Result<&'static [Controller]> {
        let relative = self.relative(path)?;
        let first = relative
            .components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(V1_HIERARCHIES
            .iter()
            .find(|(dir, _)| *dir == first)
            .map(|(_, controllers)| *controllers)
            .unwrap_or(&[]))
    }

    fn create_control_files(
        &self,
        dir: &Path,
        controllers: &[Controller],
        is_root: bool,
    ) -> io::Result<()> {
        let mut files: Vec<(&str, String)> = Vec::new();
        match self.layout {
            FakeLayout::V1Hybrid => {
                files.extend([
                    ("cgroup.procs", String::new()),
                    ("tasks", String::new()),
                    ("notify_on_release", "0".to_owned()),
                    ("cgroup.clone_children", "0".to_owned()),
                ]);
                for controller in controllers {
                    files.extend(v1_files(*controller, is_root));
                }
            }
            FakeLayout::V2 => {
                files.extend([
                    ("cgroup.procs", String::new()),
                    ("cgroup.threads", String::new()),
                    ("cgroup.subtree_control", String::new()),
                    ("cgroup.events", "populated 0\nfrozen 0\n".to_owned()),
                    ("cgroup.freeze", "0".to_owned()),
                    ("cgroup.kill", String::new()),
                    ("cgroup.type", "domain".to_owned()),
                    (
                        "cpu.stat",
                        "usage_usec 0\nuser_usec 0\nsystem_usec 0\n".to_owned(),
                    ),
                ]);
                let names: Vec<&str> = controllers.iter().map(|c| c.name()).collect();
                files.push(("cgroup.controllers", names.join(" ")));
                for controller in controllers {
                    files.extend(v2_files(*controller));
                }
            }
        }
        for (name, content) in files {
            let path = dir.join(name);
            if name == "cpu.stat" && path.exists() {
                // cpu.stat exists without the controller; enabling it adds lines
                let mut text = std::fs::read_to_string(&path)?;
                if !text.contains(&content) {
                    text.push_str(&content);
                    std::fs::write(&path, text)?;
                }
            } else if !path.exists() || name == "cgroup.controllers" {
                std::fs::write(&path, content)?;
            }
        }
        Ok(())
    }

    /// Controllers a new v2 cgroup under `parent` gets: the parent's `subtree_control`.
    fn v2_inherited(parent: &Path) -> io::Result<Vec<Controller>> {
        let enabled = std::fs::read_to_string(parent.join("cgroup.subtree_control"))?;
        Ok(enabled
            .split_whitespace()
            .filter_map(Controller::from_name)
            .collect())
    }

    fn write_subtree_control(&self, path: &Path, value: &str) -> io::Result<String> {
        let dir = path.parent().unwrap_or(&self.root);
        let available = std::fs::read_to_string(dir.join("cgroup.controllers"))?;
        let mut enabled: Vec<String> = std::fs::read_to_string(path)?
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        for token in value.split_whitespace() {
            let (enable, name) = match token.split_at(1) {
                ("+", name) => (true, name),
                ("-", name) => (false, name),
                _ => return Err(io::Error::from_raw_os_error(libc::EINVAL)),
            };
            if !available.split_whitespace().any(|a| a == name) {
                return Err(io::Error::from_raw_os_error(libc::ENOENT));
            }
            enabled.retain(|e| e != name);
            if enable {
                enabled.push(name.to_owned());
            }
        }
        // children gain the controller's files, as the kernel shows them
        let controllers: Vec<Controller> = enabled
            .iter()
            .filter_map(|n| Controller::from_name(n))
            .collect();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                self.create_control_files(&entry.path(), &controllers, false)?;
            }
        }
        Ok(enabled.join(" "))
    }

    /// What the kernel stores for a write, or its refusal.
    fn stored_value(&self, path: &Path, name: &str, value: &str) -> io::Result<String> {
        let einval = || io::Error::from_raw_os_error(libc::EINVAL);
        let dir = path.parent().unwrap_or(&self.root);
        let parse_limit = |text: &str| -> io::Result<i128> {
            // -1 and the kernel's own "unlimited" number are the same limit
            match text.trim() {
                "-1" => Ok(i128::from(i64::MAX)),
                other => {
                    let value = other.parse::<i128>().map_err(|_| einval())?;
                    Ok(if value >= 9_223_372_036_854_771_712 {
                        i128::from(i64::MAX)
                    } else {
                        value
                    })
                }
            }
        };
        let render_limit = |limit: i128| {
            if limit >= i128::from(i64::MAX) {
                V1_UNLIMITED.to_owned()
            } else {
                limit.to_string()
            }
        };
        match name {
            "cgroup.subtree_control" => self.write_subtree_control(path, value),
            "memory.limit_in_bytes" | "memory.memsw.limit_in_bytes"
                if self.layout == FakeLayout::V1Hybrid =>
            {
                let new = parse_limit(value)?;
                let memsw_path = dir.join("memory.memsw.limit_in_bytes");
                if name == "memory.limit_in_bytes" {
                    if memsw_path.exists()
                        && new > parse_limit(&std::fs::read_to_string(&memsw_path)?)?
                    {
                        return Err(einval());
                    }
                } else if new
                    < parse_limit(&std::fs::read_to_string(dir.join("memory.limit_in_bytes"))?)?
                {
                    return Err(einval());
                }
                Ok(render_limit(new))
            }
            "memory.soft_limit_in_bytes"
            | "memory.kmem.limit_in_bytes"
            | "memory.kmem.tcp.limit_in_bytes" => Ok(render_limit(parse_limit(value)?)),
            "cpu.shares" => {
                let shares: u64 = value.trim().parse().map_err(|_| einval())?;
                Ok(shares.clamp(2, 262_144).to_string())
            }
            "freezer.state" => match value.trim() {
                "FROZEN" => {
                    let current = std::fs::read_to_string(path)?;
                    if current.trim() == "THAWED" {
                        let reads = *self
                            .freezing_reads
                            .lock()
                            .unwrap_or_else(|e| e.into_inner());
                        self.lock().freezing.insert(path.to_path_buf(), reads);
                        Ok(if reads == 0 { "FROZEN" } else { "FREEZING" }.to_owned())
                    } else {
                        Ok(current.trim().to_owned())
                    }
                }
                "THAWED" => {
                    self.lock().freezing.remove(path);
                    Ok("THAWED".to_owned())
                }
                _ => Err(einval()),
            },
            "cgroup.freeze" => {
                let frozen = match value.trim() {
                    "0" => "0",
                    "1" => "1",
                    _ => return Err(einval()),
                };
                let stuck = *self
                    .freezing_reads
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    == usize::MAX;
                if !stuck {
                    self.update_events(dir, "frozen", frozen)?;
                }
                Ok(frozen.to_owned())
            }
            "cgroup.kill" => {
                if value.trim() != "1" {
                    return Err(einval());
                }
                std::fs::write(dir.join("cgroup.procs"), "")?;
                self.update_events(dir, "populated", "0")?;
                Ok(String::new())
            }
            "cgroup.procs" => {
                let pid: u32 = value.trim().parse().map_err(|_| einval())?;
                let mut procs = std::fs::read_to_string(path)?;
                procs.push_str(&format!("{pid}\n"));
                if self.layout == FakeLayout::V2 {
                    self.update_events(dir, "populated", "1")?;
                }
                Ok(procs)
            }
            _ => Ok(value.to_owned()),
        }
    }

    fn update_events(&self, dir: &Path, key: &str, value: &str) -> io::Result<()> {
        let path = dir.join("cgroup.events");
        let text = std::fs::read_to_string(&path)?;
        let updated: Vec<String> = text
            .lines()
            .map(|line| {
                if line.split_whitespace().next() == Some(key) {
                    format!("{key} {value}")
                } else {
                    line.to_owned()
                }
            })
            .collect();
        std::fs::write(&path, updated.join("\n") + "\n")
    }
}

impl CgroupFs for FakeCgroupFs {
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        self.relative(path)?;
        std::fs::create_dir(path)?;
        let result = match self.layout {
            FakeLayout::V1Hybrid => {
                let controllers = self.hierarchy(path)?;
                self.create_control_files(path, controllers, false)
            }
            FakeLayout::V2 => {
                let parent = path.parent().unwrap_or(&self.root);
                let controllers = FakeCgroupFs::v2_inherited(parent)?;
                self.create_control_files(path, &controllers, false)
            }
        };
        result.inspect_err(|_| {
            let _ = std::fs::remove_dir_all(path);
        })
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        let relative = self.relative(path)?;
        if relative.as_os_str().is_empty()
            || (relative.components().count() < 2 && self.layout == FakeLayout::V1Hybrid)
        {
            // hierarchy roots are mount points
            return Err(io::Error::from_raw_os_error(libc::EBUSY));
        }
        if !path.is_dir() {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        }
        for entry in std::fs::read_dir(path)? {
            if entry?.file_type()?.is_dir() {
                return Err(io::Error::from_raw_os_error(libc::EBUSY));
            }
        }
        let procs = std::fs::read_to_string(path.join("cgroup.procs")).unwrap_or_default();
        if !procs.trim().is_empty() {
            return Err(io::Error::from_raw_os_error(libc::EBUSY));
        }
        self.lock().freezing.retain(|p, _| !p.starts_with(path));
        std::fs::remove_dir_all(path)
    }

    fn read(&self, path: &Path) -> io::Result<String> {
        self.relative(path)?;
        let text = std::fs::read_to_string(path)?;
        if path.file_name().is_some_and(|n| n == "freezer.state") && text.trim() == "FREEZING" {
            let mut state = self.lock();
            if let Some(left) = state.freezing.get_mut(path) {
                if *left == usize::MAX {
                    return Ok(text);
                }
                *left = left.saturating_sub(1);
                if *left == 0 {
                    state.freezing.remove(path);
                    drop(state);
                    std::fs::write(path, "FROZEN")?;
                }
            }
        }
        Ok(text)
    }

    fn write(&self, path: &Path, value: &str) -> io::Result<()> {
        let relative = self.relative(path)?.to_path_buf();
        if !path.is_file() {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some(errno) = self.lock().failures.get(&name).copied() {
            return Err(io::Error::from_raw_os_error(errno));
        }
        let stored = self.stored_value(path, &name, value)?;
        std::fs::write(path, stored)?;
        self.lock().writes.push(FakeWrite {
            path: relative,
            value: value.to_owned(),
        });
        Ok(())
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn set_device_program(&self, dir: &Path, program: &DeviceProgram) -> io::Result<()> {
        let relative = self.relative(dir)?.to_path_buf();
        if self.layout != FakeLayout::V2 || !dir.is_dir() {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        }
        self.lock()
            .device_programs
            .push((relative, program.clone()));
        Ok(())
    }

    fn sub_dirs(&self, path: &Path) -> io::Result<Vec<PathBuf>> {
        let mut dirs = Vec::new();
        for entry in std::fs::read_dir(path)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                dirs.push(entry.path());
            }
        }
        dirs.sort();
        Ok(dirs)
    }
}

fn v1_files(controller: Controller, is_root: bool) -> Vec<(&'static str, String)> {
    let s = |text: &str| text.to_owned();
    match controller {
        Controller::Cpu => vec![
            ("cpu.shares", s("1024")),
            ("cpu.cfs_quota_us", s("-1")),
            ("cpu.cfs_period_us", s("100000")),
            ("cpu.cfs_burst_us", s("0")),
            ("cpu.rt_period_us", s("1000000")),
            ("cpu.rt_runtime_us", s("0")),
            ("cpu.idle", s("0")),
            (
                "cpu.stat",
                s("nr_periods 0\nnr_throttled 0\nthrottled_time 0\n"),
            ),
        ],
        Controller::Cpuacct => vec![
            ("cpuacct.usage", s("0")),
            ("cpuacct.usage_user", s("0")),
            ("cpuacct.usage_sys", s("0")),
            ("cpuacct.stat", s("user 0\nsystem 0\n")),
        ],
        Controller::Cpuset => vec![
            (
                "cpuset.cpus",
                if is_root { s("0-3") } else { String::new() },
            ),
            ("cpuset.mems", if is_root { s("0") } else { String::new() }),
            ("cpuset.effective_cpus", s("0-3")),
            ("cpuset.effective_mems", s("0")),
        ],
        Controller::Memory => vec![
            ("memory.limit_in_bytes", s(V1_UNLIMITED)),
            ("memory.memsw.limit_in_bytes", s(V1_UNLIMITED)),
            ("memory.soft_limit_in_bytes", s(V1_UNLIMITED)),
            ("memory.kmem.limit_in_bytes", s(V1_UNLIMITED)),
            ("memory.kmem.tcp.limit_in_bytes", s(V1_UNLIMITED)),
            ("memory.usage_in_bytes", s("0")),
            ("memory.max_usage_in_bytes", s("0")),
            ("memory.memsw.usage_in_bytes", s("0")),
            ("memory.failcnt", s("0")),
            (
                "memory.oom_control",
                s("oom_kill_disable 0\nunder_oom 0\noom_kill 0\n"),
            ),
            ("memory.stat", s("cache 0\nrss 0\ntotal_inactive_file 0\n")),
            ("memory.swappiness", s("60")),
            ("memory.use_hierarchy", s("1")),
        ],
        Controller::Pids if !is_root => vec![("pids.max", s("max")), ("pids.current", s("0"))],
        Controller::Freezer if !is_root => vec![("freezer.state", s("THAWED"))],
        Controller::Devices => vec![
            ("devices.allow", String::new()),
            ("devices.deny", String::new()),
            ("devices.list", s("a *:* rwm")),
        ],
        Controller::Blkio => vec![
            ("blkio.bfq.weight", s("100")),
            ("blkio.bfq.weight_device", String::new()),
            ("blkio.throttle.read_bps_device", String::new()),
            ("blkio.throttle.write_bps_device", String::new()),
            ("blkio.throttle.read_iops_device", String::new()),
            ("blkio.throttle.write_iops_device", String::new()),
        ],
        Controller::Hugetlb => vec![
            ("hugetlb.2MB.limit_in_bytes", s(V1_UNLIMITED)),
            ("hugetlb.1GB.limit_in_bytes", s(V1_UNLIMITED)),
            ("hugetlb.2MB.usage_in_bytes", s("0")),
        ],
        Controller::NetCls => vec![("net_cls.classid", s("0"))],
        Controller::NetPrio => vec![
            ("net_prio.ifpriomap", s("lo 0")),
            ("net_prio.prioidx", s("1")),
        ],
        _ => Vec::new(),
    }
}

fn v2_files(controller: Controller) -> Vec<(&'static str, String)> {
    let s = |text: &str| text.to_owned();
    match controller {
        Controller::Cpu => vec![
            ("cpu.weight", s("100")),
            ("cpu.max", s("max 100000")),
            ("cpu.max.burst", s("0")),
            ("cpu.idle", s("0")),
            (
                "cpu.stat",
                s("nr_periods 0\nnr_throttled 0\nthrottled_usec 0\n"),
            ),
        ],
        Controller::Cpuset => vec![
            ("cpuset.cpus", String::new()),
            ("cpuset.mems", String::new()),
            ("cpuset.cpus.effective", s("0-3")),
            ("cpuset.mems.effective", s("0")),
        ],
        Controller::Memory => vec![
            ("memory.max", s("max")),
            ("memory.high", s("max")),
            ("memory.low", s("0")),
            ("memory.min", s("0")),
            ("memory.swap.max", s("max")),
            ("memory.current", s("0")),
            ("memory.peak", s("0")),
            ("memory.swap.current", s("0")),
            (
                "memory.events",
                s("low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n"),
            ),
            ("memory.stat", s("anon 0\nfile 0\ninactive_file 0\n")),
        ],
        Controller::Pids => vec![("pids.max", s("max")), ("pids.current", s("0"))],
        Controller::Io => vec![
            ("io.max", String::new()),
            ("io.weight", s("default 100")),
            ("io.stat", String::new()),
        ],
        Controller::Hugetlb => vec![
            ("hugetlb.2MB.max", s("max")),
            ("hugetlb.1GB.max", s("max")),
            ("hugetlb.2MB.current", s("0")),
        ],
        Controller::Rdma => vec![("rdma.max", String::new()), ("rdma.current", String::new())],
        Controller::Misc => vec![("misc.max", String::new()), ("misc.current", String::new())],
        _ => Vec::new(),
    }
}
