//! Privileged tests against the host's real cgroups (root; run with `--include-ignored`).
//! Each test works under its own parent `berth-test-<pid>-<name>`, only moves processes it
//! spawned, and removes everything it made through a drop guard, even when it fails.
//!
//! Layer 2 by STYLE.md, which puts such tests in `crates/*/tests/priv_*.rs`; they are here
//! because this module's author owns only `src/cgroup/`. They use only the public API, so
//! moving them there is a rename.

#![expect(clippy::unwrap_used, reason = "tests")]

use std::io::Write as _;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use oci_spec::runtime::{
    LinuxCpuBuilder, LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxMemoryBuilder,
    LinuxPidsBuilder, LinuxResources, LinuxResourcesBuilder,
};
use rustix::process::{Pid, Signal};

use super::*;

const MIB: i64 = 1 << 20;

/// Kills the test's children and removes the cgroup and its parent directories on drop.
struct Guard {
    manager: CgroupManager,
    cgroup: Cgroup,
    children: Vec<Child>,
}

impl Guard {
    fn new(manager: CgroupManager, id: &str) -> Guard {
        let cgroup = manager.open(id).unwrap();
        Guard {
            manager,
            cgroup,
            children: Vec::new(),
        }
    }

    /// The parent directories this test made (one per hierarchy on v1).
    fn parent_dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = match self.manager.mode() {
            CgroupMode::V1 { mounts } => mounts
                .values()
                .map(|m| m.join(self.manager.parent()))
                .collect(),
            CgroupMode::V2 => vec![self.manager.root().join(self.manager.parent())],
        };
        dirs.sort();
        dirs.dedup();
        dirs
    }

    fn spawn(&mut self, command: &mut Command) -> Pid {
        let child = command.spawn().unwrap();
        let pid = Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
        self.children.push(child);
        pid
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.cgroup.thaw();
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = self.cgroup.destroy();
        for dir in self.parent_dirs() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

fn parent_name(test: &str) -> String {
    format!("berth-test-{}-{test}", std::process::id())
}

fn host_manager(test: &str) -> CgroupManager {
    CgroupManager::detect(DEFAULT_ROOT, Path::new("/proc"))
        .unwrap()
        .with_parent(&parent_name(test))
        .unwrap()
        .with_options(CgroupOptions {
            // on v2 enable only what the tests need; they are usually enabled at the root already
            v2_controllers: Some(vec![Controller::Memory, Controller::Pids, Controller::Cpu]),
            ..CgroupOptions::default()
        })
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .trim()
        .to_owned()
}

fn cgroup_file(cgroup: &Cgroup, controller: Controller, file: &str) -> String {
    read(&cgroup.path_for(controller).unwrap().join(file))
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: Pid) -> u64 {
    let stat = read(Path::new(&format!("/proc/{}/stat", pid.as_raw_pid())));
    let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // fields after comm start at field 3 (state); utime is field 14, stime 15
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

fn limits(memory: i64, swap: Option<i64>, pids: i64, quota: Option<(i64, u64)>) -> LinuxResources {
    let mut memory_builder = LinuxMemoryBuilder::default().limit(memory);
    if let Some(swap) = swap {
        memory_builder = memory_builder.swap(swap);
    }
    let mut builder = LinuxResourcesBuilder::default()
        .memory(memory_builder.build().unwrap())
        .pids(LinuxPidsBuilder::default().limit(pids).build().unwrap());
    if let Some((quota, period)) = quota {
        builder = builder.cpu(
            LinuxCpuBuilder::default()
                .quota(quota)
                .period(period)
                .build()
                .unwrap(),
        );
    }
    builder.build().unwrap()
}

berth_testkit::priv_test! {
    /// Limits, membership, freeze/thaw, signalling and destroy on the host's cgroups (v1 or
    /// hybrid here; v2 on a pure v2 host).
    fn cgroup_priv_host_limits_freeze_kill_destroy() {
        let mut guard = Guard::new(host_manager("limits"), "c1");
        let cgroup = guard.manager.create("c1").unwrap();
        assert!(cgroup.exists());
        let v2 = cgroup.is_v2();

        cgroup.apply(&limits(64 * MIB, None, 10, Some((50_000, 100_000)))).unwrap();
        if v2 {
            assert_eq!(cgroup_file(&cgroup, Controller::Memory, "memory.max"), "67108864");
            assert_eq!(cgroup_file(&cgroup, Controller::Cpu, "cpu.max"), "50000 100000");
        } else {
            assert_eq!(cgroup_file(&cgroup, Controller::Memory, "memory.limit_in_bytes"), "67108864");
            assert_eq!(cgroup_file(&cgroup, Controller::Cpu, "cpu.cfs_quota_us"), "50000");
            assert_eq!(cgroup_file(&cgroup, Controller::Cpu, "cpu.cfs_period_us"), "100000");
            // cpuset was filled from the parent, or the child could not have joined
            assert_eq!(
                cgroup_file(&cgroup, Controller::Cpuset, "cpuset.cpus"),
                read(Path::new("/sys/fs/cgroup/cpuset/cpuset.cpus"))
            );
        }
        assert_eq!(cgroup_file(&cgroup, Controller::Pids, "pids.max"), "10");

        // a busy child, so freezing shows in its CPU time
        let pid = guard.spawn(Command::new("/bin/sh").args(["-c", "while :; do :; done"]));
        cgroup.add_pid(pid).unwrap();
        assert_eq!(cgroup.procs().unwrap(), [pid]);
        let membership = read(Path::new(&format!("/proc/{}/cgroup", pid.as_raw_pid())));
        assert!(membership.contains(&format!("{}/c1", parent_name("limits"))), "{membership}");

        cgroup.freeze().unwrap();
        assert_eq!(cgroup.freezer_state().unwrap(), FreezerState::Frozen);
        if v2 {
            assert!(cgroup_file(&cgroup, Controller::Freezer, "cgroup.events").contains("frozen 1"));
        } else {
            assert_eq!(cgroup_file(&cgroup, Controller::Freezer, "freezer.state"), "FROZEN");
        }
        let frozen_at = cpu_ticks(pid);
        thread::sleep(Duration::from_millis(300));
        assert_eq!(cpu_ticks(pid), frozen_at, "a frozen process used CPU");

        cgroup.thaw().unwrap();
        assert_eq!(cgroup.freezer_state().unwrap(), FreezerState::Thawed);
        wait_until("the thawed child to run", Duration::from_secs(10), || cpu_ticks(pid) > frozen_at);

        let stats = cgroup.stats().unwrap();
        let memory = stats.memory.unwrap();
        // charges made before the move stay with the old cgroup: usage may well be 0
        assert_eq!(memory.limit, Limit::Value(64 << 20));
        assert!(memory.usage_bytes <= 64 << 20);
        assert!(stats.cpu.unwrap().usage_ns > 0);
        assert_eq!(stats.pids.unwrap(), PidsStats { current: 1, limit: Limit::Value(10) });
        assert!(!cgroup.oom_killed().unwrap());

        if !v2 {
            // a value the kernel refuses comes back naming the file and the value
            let bad = LinuxResourcesBuilder::default()
                .cpu(LinuxCpuBuilder::default().cpus("9999").build().unwrap())
                .build()
                .unwrap();
            let err = cgroup.apply(&bad).unwrap_err();
            let CgroupError::Write { path, value, .. } = &err else { panic!("{err:?}") };
            assert!(path.ends_with("c1/cpuset.cpus"), "{err}");
            assert_eq!(value, "9999");
            assert!(err.raw_os_error().is_some(), "{err:?}");
        }

        // SIGTERM through the freeze-signal-thaw path (v1) or per process (v2: not SIGKILL)
        cgroup.kill_all(Signal::TERM).unwrap();
        let status = guard.children[0].wait().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGTERM));
        wait_until("the cgroup to empty", Duration::from_secs(5), || cgroup.procs().unwrap().is_empty());

        // destroy kills what is left: a second child
        let pid = guard.spawn(Command::new("sleep").arg("60"));
        cgroup.add_pid(pid).unwrap();
        cgroup.destroy().unwrap();
        let status = guard.children[1].wait().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        for dir in cgroup.paths() {
            assert!(!dir.exists(), "{} left behind", dir.display());
        }
        cgroup.destroy().unwrap();

        let parents = guard.parent_dirs();
        drop(guard);
        for dir in parents {
            assert!(!dir.exists(), "{} left behind", dir.display());
        }
    }
}

berth_testkit::priv_test! {
    /// A process allocating past a small memory limit is OOM-killed and the cgroup says so.
    fn cgroup_priv_host_oom_is_detected() {
        let mut guard = Guard::new(host_manager("oom"), "c1");
        let cgroup = guard.manager.create("c1").unwrap();
        // memory+swap equal to memory: no swap to escape to (on v1 only if swap is accounted)
        let has_swap_limit = cgroup
            .path_for(Controller::Memory)
            .unwrap()
            .join(if cgroup.is_v2() { "memory.swap.max" } else { "memory.memsw.limit_in_bytes" })
            .exists();
        let swap = has_swap_limit.then_some(16 * MIB);
        cgroup.apply(&limits(16 * MIB, swap, 10, None)).unwrap();
        assert_eq!(cgroup.oom_kill_count().unwrap(), 0);

        // the shell waits for a line so it joins the cgroup before dd allocates 64 MiB
        let pid = guard.spawn(
            Command::new("/bin/sh")
                .args(["-c", "read line; exec dd if=/dev/zero of=/dev/null bs=64M count=1"])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        cgroup.add_pid(pid).unwrap();
        guard.children[0].stdin.take().unwrap().write_all(b"go\n").unwrap();
        let status = guard.children[0].wait().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL), "dd was not killed: {status:?}");
        assert!(cgroup.oom_killed().unwrap());
        assert!(cgroup.oom_kill_count().unwrap() >= 1);
        assert!(cgroup.stats().unwrap().memory.unwrap().oom_kills.unwrap() >= 1);
        cgroup.destroy().unwrap();
        assert!(!cgroup.exists());
    }
}

/// The host's cgroup2 mount: the hybrid `unified` mount, or the root on a pure v2 host.
fn cgroup2_mount() -> PathBuf {
    let mountinfo = read(Path::new("/proc/self/mountinfo"));
    let unified = Path::new("/sys/fs/cgroup/unified");
    match CgroupMode::detect(unified, &mountinfo) {
        Ok(CgroupMode::V2) => unified.to_path_buf(),
        _ => {
            let root = Path::new(DEFAULT_ROOT);
            assert_eq!(
                CgroupMode::detect(root, &mountinfo).unwrap(),
                CgroupMode::V2,
                "no cgroup2 mount at {} or {}",
                unified.display(),
                root.display()
            );
            root.to_path_buf()
        }
    }
}

berth_testkit::priv_test! {
    /// The v2 core (cgroup.procs, cgroup.freeze/cgroup.events, cgroup.kill, rmdir) on a real
    /// cgroup2 mount, which a hybrid host has at `unified` with no controllers delegated.
    fn cgroup_priv_v2_core_freeze_kill_destroy() {
        let root = cgroup2_mount();
        let manager = CgroupManager::new(&root, CgroupMode::V2, Arc::new(HostCgroupFs))
            .with_parent(&parent_name("v2core"))
            .unwrap()
            .with_options(CgroupOptions {
                // enable nothing: the root's subtree_control is not ours to change
                v2_controllers: Some(Vec::new()),
                ..CgroupOptions::default()
            });
        let mut guard = Guard::new(manager, "c1");
        let cgroup = guard.manager.create("c1").unwrap();
        assert_eq!(cgroup.paths(), [root.join(parent_name("v2core")).join("c1")]);

        let pid = guard.spawn(Command::new("/bin/sh").args(["-c", "while :; do :; done"]));
        cgroup.add_pid(pid).unwrap();
        assert_eq!(cgroup.procs().unwrap(), [pid]);
        assert!(cgroup_file(&cgroup, Controller::Freezer, "cgroup.events").contains("populated 1"));

        cgroup.freeze().unwrap();
        assert_eq!(cgroup.freezer_state().unwrap(), FreezerState::Frozen);
        let frozen_at = cpu_ticks(pid);
        thread::sleep(Duration::from_millis(300));
        assert_eq!(cpu_ticks(pid), frozen_at, "a frozen process used CPU");
        cgroup.thaw().unwrap();
        assert_eq!(cgroup.freezer_state().unwrap(), FreezerState::Thawed);

        let available = cgroup_file(&cgroup, Controller::Freezer, "cgroup.controllers");
        if !available.split_whitespace().any(|c| c == "pids") {
            // a controller that is not there is named, not ignored
            let resources = LinuxResourcesBuilder::default()
                .pids(LinuxPidsBuilder::default().limit(10).build().unwrap())
                .build()
                .unwrap();
            let err = cgroup.apply(&resources).unwrap_err();
            assert!(
                matches!(err, CgroupError::ControllerUnavailable { controller: Controller::Pids, .. }),
                "{err:?}"
            );
        }

        // SIGKILL goes through cgroup.kill (Linux 5.14+), which also works while frozen
        cgroup.freeze().unwrap();
        cgroup.kill_all(Signal::KILL).unwrap();
        let status = guard.children[0].wait().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        cgroup.destroy().unwrap();
        assert!(!cgroup.exists());
    }
}

berth_testkit::priv_test! {
    /// Device rules on v2 become an eBPF program on the cgroup that the kernel enforces; an
    /// update replaces it rather than stacking a second one.
    fn cgroup_priv_v2_device_filter() {
        let root = cgroup2_mount();
        let manager = CgroupManager::new(&root, CgroupMode::V2, Arc::new(HostCgroupFs))
            .with_parent(&parent_name("devices"))
            .unwrap()
            .with_options(CgroupOptions {
                v2_controllers: Some(Vec::new()),
                ..CgroupOptions::default()
            });
        let mut guard = Guard::new(manager, "c1");
        let cgroup = guard.manager.create("c1").unwrap();
        let dir = cgroup.paths().remove(0);
        let rule = |allow: bool, kind: LinuxDeviceType, major: Option<i64>, minor: Option<i64>| {
            let mut builder = LinuxDeviceCgroupBuilder::default().allow(allow).typ(kind).access("rwm");
            if let (Some(major), Some(minor)) = (major, minor) {
                builder = builder.major(major).minor(minor);
            }
            builder.build().unwrap()
        };
        // deny everything but /dev/null
        let resources = LinuxResourcesBuilder::default()
            .devices(vec![
                rule(false, LinuxDeviceType::A, None, None),
                rule(true, LinuxDeviceType::C, Some(1), Some(3)),
            ])
            .build()
            .unwrap();
        cgroup.apply(&resources).unwrap();
        assert_eq!(super::bpf::attached_programs(&dir).unwrap().len(), 1);
        cgroup.apply(&resources).unwrap();
        assert_eq!(super::bpf::attached_programs(&dir).unwrap().len(), 1, "replaced, not stacked");

        let script = "read line; \
            if head -c1 /dev/zero >/dev/null 2>&1; then echo zero-open; else echo zero-denied; fi; \
            if echo x >/dev/null; then echo null-open; fi";
        let pid = guard.spawn(
            Command::new("/bin/sh")
                .args(["-c", script])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null()),
        );
        cgroup.add_pid(pid).unwrap();
        guard.children[0].stdin.take().unwrap().write_all(b"go\n").unwrap();
        let mut output = String::new();
        std::io::Read::read_to_string(&mut guard.children[0].stdout.take().unwrap(), &mut output).unwrap();
        assert!(guard.children[0].wait().unwrap().success());
        assert_eq!(output, "zero-denied\nnull-open\n");
        cgroup.destroy().unwrap();
        assert!(!cgroup.exists());
    }
}
