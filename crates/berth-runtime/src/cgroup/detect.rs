//! Which cgroup layout a host has: v1 hierarchies (including systemd's "hybrid" layout, whose
//! `unified` cgroup2 mount is ignored for resource control) or a pure v2 mount at the root.
//! Detection reads mountinfo text handed in by the caller, so tests pass a fake one.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use super::error::{CgroupError, WrapIo};

/// A cgroup controller (v1 subsystem or v2 controller).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Controller {
    /// CPU bandwidth and weight (`cpu`).
    Cpu,
    /// CPU accounting (v1 `cpuacct`; part of the core on v2).
    Cpuacct,
    /// CPU and memory-node placement (`cpuset`).
    Cpuset,
    /// Memory limits and accounting (`memory`).
    Memory,
    /// Task-count limits (`pids`).
    Pids,
    /// Freezing (v1 `freezer`; `cgroup.freeze` on v2).
    Freezer,
    /// Device access (v1 `devices`; an eBPF program on v2).
    Devices,
    /// Block I/O (v1 `blkio`).
    Blkio,
    /// Block I/O (v2 `io`).
    Io,
    /// Huge-page limits (`hugetlb`).
    Hugetlb,
    /// Network class id (v1 `net_cls`).
    NetCls,
    /// Network priorities (v1 `net_prio`).
    NetPrio,
    /// perf events (v1 `perf_event`).
    PerfEvent,
    /// RDMA resources (`rdma`).
    Rdma,
    /// Miscellaneous scalar resources (`misc`).
    Misc,
}

impl Controller {
    /// Every controller this module knows, in the order runc applies v1 subsystems.
    pub const ALL: [Controller; 15] = [
        Controller::Cpuset,
        Controller::Devices,
        Controller::Memory,
        Controller::Cpu,
        Controller::Cpuacct,
        Controller::Pids,
        Controller::Blkio,
        Controller::Io,
        Controller::Hugetlb,
        Controller::NetCls,
        Controller::NetPrio,
        Controller::PerfEvent,
        Controller::Freezer,
        Controller::Rdma,
        Controller::Misc,
    ];

    /// The kernel's name for it (`cgroup.controllers` on v2, the mount option on v1).
    pub fn name(self) -> &'static str {
        match self {
            Controller::Cpu => "cpu",
            Controller::Cpuacct => "cpuacct",
            Controller::Cpuset => "cpuset",
            Controller::Memory => "memory",
            Controller::Pids => "pids",
            Controller::Freezer => "freezer",
            Controller::Devices => "devices",
            Controller::Blkio => "blkio",
            Controller::Io => "io",
            Controller::Hugetlb => "hugetlb",
            Controller::NetCls => "net_cls",
            Controller::NetPrio => "net_prio",
            Controller::PerfEvent => "perf_event",
            Controller::Rdma => "rdma",
            Controller::Misc => "misc",
        }
    }

    /// The controller the kernel calls `name`, if this module knows it.
    pub fn from_name(name: &str) -> Option<Controller> {
        Controller::ALL.into_iter().find(|c| c.name() == name)
    }

    /// Whether v2 enables it through `cgroup.subtree_control` (freezer, devices and cpuacct
    /// are part of the v2 core or of eBPF, and v1-only controllers do not exist there).
    pub fn is_v2_controller(self) -> bool {
        matches!(
            self,
            Controller::Cpu
                | Controller::Cpuset
                | Controller::Memory
                | Controller::Pids
                | Controller::Io
                | Controller::Hugetlb
                | Controller::Rdma
                | Controller::Misc
                | Controller::PerfEvent
        )
    }
}

impl fmt::Display for Controller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The cgroup layout under a root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CgroupMode {
    /// cgroup v1 (also systemd's hybrid layout): each controller has its own hierarchy.
    V1 {
        /// Where each controller's hierarchy is mounted; co-mounted controllers (`cpu,cpuacct`)
        /// share one directory.
        mounts: BTreeMap<Controller, PathBuf>,
    },
    /// cgroup v2: the root is a cgroup2 mount holding every controller.
    V2,
}

impl CgroupMode {
    /// Detects the layout under `root` from the text of a mountinfo file
    /// (`/proc/self/mountinfo` on a host): a cgroup2 mount at `root` is v2; otherwise the
    /// cgroup v1 mounts below `root` form the v1 layout, and a cgroup2 mount below the root
    /// (hybrid `unified`) is ignored.
    pub fn detect(root: &Path, mountinfo: &str) -> Result<CgroupMode, CgroupError> {
        let entries: Vec<MountEntry> = mountinfo.lines().filter_map(MountEntry::parse).collect();
        if entries
            .iter()
            .any(|entry| entry.fs_type == "cgroup2" && entry.mount_point == root)
        {
            return Ok(CgroupMode::V2);
        }
        let mut mounts = BTreeMap::new();
        for entry in entries
            .iter()
            .filter(|entry| entry.fs_type == "cgroup" && entry.mount_point.starts_with(root))
        {
            for option in entry.super_options.split(',') {
                if let Some(controller) = Controller::from_name(option) {
                    mounts
                        .entry(controller)
                        .or_insert_with(|| entry.mount_point.clone());
                }
            }
        }
        if mounts.is_empty() {
            return Err(CgroupError::NotMounted {
                root: root.to_path_buf(),
            });
        }
        Ok(CgroupMode::V1 { mounts })
    }

    /// Detects the layout under `root` from `<proc_root>/self/mountinfo`.
    pub fn detect_from_proc(root: &Path, proc_root: &Path) -> Result<CgroupMode, CgroupError> {
        let path = proc_root.join("self/mountinfo");
        let text = std::fs::read_to_string(&path).wrap_read(&path)?;
        CgroupMode::detect(root, &text)
    }

    /// Whether this is cgroup v2.
    pub fn is_v2(&self) -> bool {
        matches!(self, CgroupMode::V2)
    }
}

/// The fields of one mountinfo line this module needs.
#[derive(Debug, PartialEq, Eq)]
struct MountEntry {
    mount_point: PathBuf,
    fs_type: String,
    super_options: String,
}

impl MountEntry {
    /// Parses `ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER`.
    fn parse(line: &str) -> Option<MountEntry> {
        let (before, after) = line.split_once(" - ")?;
        let mount_point = before.split(' ').nth(4)?;
        let mut after = after.split(' ');
        let fs_type = after.next()?;
        let _source = after.next()?;
        let super_options = after.next().unwrap_or("");
        Some(MountEntry {
            mount_point: unescape_octal(mount_point),
            fs_type: fs_type.to_owned(),
            super_options: super_options.to_owned(),
        })
    }
}

/// Undoes the kernel's `\ooo` escaping of spaces, tabs, newlines and backslashes in mountinfo.
fn unescape_octal(field: &str) -> PathBuf {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'\\' {
            if let Some(digits) = bytes.get(index + 1..index + 4) {
                if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                    let value = digits
                        .iter()
                        .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                    if let Ok(byte) = u8::try_from(value) {
                        out.push(byte);
                        index += 4;
                        continue;
                    }
                }
            }
        }
        out.push(bytes[index]);
        index += 1;
    }
    PathBuf::from(OsString::from_vec(out))
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests")]

    use super::*;

    const HYBRID: &str = "\
24 1 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 24 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/net_cls,net_prio rw,relatime shared:9 - cgroup cgroup rw,net_cls,net_prio
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn cgroup_detect_hybrid_is_v1_and_ignores_unified() {
        let mode = CgroupMode::detect(Path::new("/sys/fs/cgroup"), HYBRID).unwrap();
        let CgroupMode::V1 { mounts } = mode else {
            panic!("expected v1, got {mode:?}")
        };
        assert_eq!(mounts[&Controller::Cpu], Path::new("/sys/fs/cgroup/cpu"));
        assert_eq!(
            mounts[&Controller::Cpuacct],
            Path::new("/sys/fs/cgroup/cpuacct")
        );
        assert_eq!(
            mounts[&Controller::NetPrio],
            Path::new("/sys/fs/cgroup/net_cls,net_prio")
        );
        assert_eq!(
            mounts[&Controller::NetCls],
            Path::new("/sys/fs/cgroup/net_cls,net_prio")
        );
        assert_eq!(mounts.len(), 6, "{mounts:?}");
    }

    #[test]
    fn cgroup_detect_pure_v2() {
        let text = "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n";
        assert_eq!(
            CgroupMode::detect(Path::new("/sys/fs/cgroup/"), text).unwrap(),
            CgroupMode::V2
        );
    }

    #[test]
    fn cgroup_detect_nothing_mounted() {
        let text = "24 1 0:22 / /sys rw - sysfs sysfs rw\n";
        let err = CgroupMode::detect(Path::new("/sys/fs/cgroup"), text).unwrap_err();
        assert!(matches!(err, CgroupError::NotMounted { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "no cgroup v1 controllers and no cgroup2 mount found at /sys/fs/cgroup"
        );
    }

    #[test]
    fn cgroup_detect_only_mounts_under_root() {
        let text = "35 31 0:32 / /elsewhere/memory rw - cgroup cgroup rw,memory\n\
                    36 31 0:33 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n";
        let mode = CgroupMode::detect(Path::new("/sys/fs/cgroup"), text).unwrap();
        let CgroupMode::V1 { mounts } = mode else {
            panic!("expected v1")
        };
        assert_eq!(
            mounts.keys().copied().collect::<Vec<_>>(),
            [Controller::Pids]
        );
    }

    #[test]
    fn cgroup_detect_unescapes_mount_points() {
        let text = "30 23 0:26 / /tmp/with\\040space rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            CgroupMode::detect(Path::new("/tmp/with space"), text).unwrap(),
            CgroupMode::V2
        );
        assert_eq!(unescape_octal("a\\134b\\"), Path::new("a\\b\\"));
        assert_eq!(unescape_octal("x\\01"), Path::new("x\\01"));
    }

    #[test]
    fn cgroup_controller_names_round_trip() {
        for controller in Controller::ALL {
            assert_eq!(Controller::from_name(controller.name()), Some(controller));
        }
        assert_eq!(Controller::from_name("name=systemd"), None);
    }
}
