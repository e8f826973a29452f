//! Unit tests (no root) of the v2 code against the fake cgroup2 tree.

#![expect(clippy::unwrap_used, reason = "tests")]

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use oci_spec::runtime::{
    LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxDeviceCgroupBuilder, LinuxDeviceType,
    LinuxHugepageLimitBuilder, LinuxMemoryBuilder, LinuxNetworkBuilder, LinuxPidsBuilder,
    LinuxResources, LinuxResourcesBuilder, LinuxThrottleDeviceBuilder,
};
use rustix::process::{Pid, Signal};
use tempfile::TempDir;

use super::fake::FakeCgroupFs;
use super::*;

const MIB: i64 = 1 << 20;
const LEAF: &str = "berth/c1";

struct Fixture {
    dir: TempDir,
    fake: Arc<FakeCgroupFs>,
    manager: CgroupManager,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture::with_controllers(None)
    }

    fn with_controllers(controllers: Option<Vec<Controller>>) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let fake = Arc::new(FakeCgroupFs::v2(dir.path()).unwrap());
        let mode = CgroupMode::detect(dir.path(), &fake.mountinfo()).unwrap();
        assert_eq!(mode, CgroupMode::V2);
        let manager =
            CgroupManager::new(dir.path(), mode, fake.clone()).with_options(CgroupOptions {
                freeze_timeout: Duration::from_millis(200),
                destroy_timeout: Duration::from_millis(500),
                v2_controllers: controllers,
            });
        Fixture { dir, fake, manager }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn cgroup(&self) -> Cgroup {
        let cgroup = self.manager.create("c1").unwrap();
        self.fake.clear_writes();
        cgroup
    }

    fn leaf_writes(&self) -> Vec<(String, String)> {
        self.fake.writes_in(LEAF)
    }
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn memory(limit: Option<i64>, swap: Option<i64>) -> LinuxResources {
    let mut builder = LinuxMemoryBuilder::default();
    if let Some(limit) = limit {
        builder = builder.limit(limit);
    }
    if let Some(swap) = swap {
        builder = builder.swap(swap);
    }
    LinuxResourcesBuilder::default()
        .memory(builder.build().unwrap())
        .build()
        .unwrap()
}

fn cpu(builder: LinuxCpuBuilder) -> LinuxResources {
    LinuxResourcesBuilder::default()
        .cpu(builder.build().unwrap())
        .build()
        .unwrap()
}

#[test]
fn cgroup_v2_create_enables_controllers_down_the_tree() {
    let f = Fixture::new();
    let cgroup = f.manager.create("c1").unwrap();
    assert_eq!(cgroup.paths(), [f.root().join(LEAF)]);
    assert_eq!(
        cgroup.path_for(Controller::Memory).unwrap(),
        f.root().join(LEAF)
    );
    let enable: Vec<(String, String)> = [
        "cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc",
    ]
    .iter()
    .map(|c| ("cgroup.subtree_control".to_owned(), format!("+{c}")))
    .collect();
    // the root and the parent, not the leaf (it holds processes)
    assert_eq!(f.fake.writes_in(""), enable);
    assert_eq!(f.fake.writes_in("berth"), enable);
    assert!(f.leaf_writes().is_empty());
    let leaf_controllers = f.fake.get("berth/c1/cgroup.controllers").unwrap();
    assert_eq!(
        leaf_controllers,
        "cpuset cpu io memory hugetlb pids rdma misc"
    );

    // a second container finds them enabled and writes nothing above it
    f.fake.clear_writes();
    f.manager.create("c2").unwrap();
    assert!(f.fake.writes().is_empty(), "{:?}", f.fake.writes());
}

#[test]
fn cgroup_v2_controllers_a_resource_needs_are_enabled_on_apply() {
    let f = Fixture::with_controllers(Some(vec![Controller::Memory]));
    let cgroup = f.manager.create("c1").unwrap();
    assert_eq!(f.fake.get("berth/c1/cgroup.controllers").unwrap(), "memory");
    f.fake.clear_writes();
    cgroup
        .apply(&cpu(LinuxCpuBuilder::default().shares(1024u64)))
        .unwrap();
    let writes: Vec<(String, String)> = f
        .fake
        .writes()
        .into_iter()
        .map(|w| (w.path.display().to_string(), w.value))
        .collect();
    assert_eq!(
        writes,
        pairs(&[
            ("cgroup.subtree_control", "+cpu"),
            ("berth/cgroup.subtree_control", "+cpu"),
            ("berth/c1/cpu.weight", "39"),
        ])
    );
}

#[test]
fn cgroup_v2_missing_controller_is_a_clear_error() {
    let f = Fixture::new();
    f.fake.set("cgroup.controllers", "cpu memory").unwrap();
    let cgroup = f.cgroup();
    let resources = LinuxResourcesBuilder::default()
        .pids(LinuxPidsBuilder::default().limit(10).build().unwrap())
        .build()
        .unwrap();
    let err = cgroup.apply(&resources).unwrap_err();
    assert!(
        matches!(&err, CgroupError::ControllerUnavailable { controller: Controller::Pids, path, .. } if path == f.root()),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "linux.resources.pids needs the pids cgroup controller, which is not available for {}",
            f.root().display()
        )
    );
}

#[test]
fn cgroup_v2_enable_refused_by_kernel_surfaces_on_apply() {
    let f = Fixture::new();
    f.fake.fail_writes("cgroup.subtree_control", libc::EBUSY);
    // create still succeeds (warned), so containers without limits run
    let cgroup = f.manager.create("c1").unwrap();
    let err = cgroup.apply(&memory(Some(64 * MIB), None)).unwrap_err();
    let CgroupError::Write { path, value, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(path, &f.root().join("cgroup.subtree_control"));
    assert_eq!(value, "+memory");
    assert_eq!(err.raw_os_error(), Some(libc::EBUSY));
}

#[test]
fn cgroup_v2_memory_and_swap_conversion() {
    let f = Fixture::new();
    let cgroup = f.cgroup();
    cgroup
        .apply(&memory(Some(64 * MIB), Some(128 * MIB)))
        .unwrap();
    assert_eq!(
        f.leaf_writes(),
        pairs(&[("memory.swap.max", "67108864"), ("memory.max", "67108864")])
    );
    f.fake.clear_writes();
    cgroup
        .apply(&memory(Some(64 * MIB), Some(64 * MIB)))
        .unwrap();
    assert_eq!(
        f.leaf_writes(),
        pairs(&[("memory.swap.max", "0"), ("memory.max", "67108864")])
    );
    f.fake.clear_writes();
    cgroup.apply(&memory(Some(-1), None)).unwrap();
    assert_eq!(
        f.leaf_writes(),
        pairs(&[("memory.swap.max", "max"), ("memory.max", "max")])
    );
    f.fake.clear_writes();
    cgroup.apply(&memory(Some(64 * MIB), None)).unwrap();
    assert_eq!(f.leaf_writes(), pairs(&[("memory.max", "67108864")]));

    f.fake.clear_writes();
    let reservation = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .reservation(32 * MIB)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    cgroup.apply(&reservation).unwrap();
    assert_eq!(f.leaf_writes(), pairs(&[("memory.low", "33554432")]));

    let err = cgroup.apply(&memory(None, Some(64 * MIB))).unwrap_err();
    assert!(err.to_string().contains("needs a memory limit"), "{err}");
}

#[test]
fn cgroup_v2_swap_without_swap_accounting() {
    let f = Fixture::new();
    let cgroup = f.cgroup();
    f.fake.remove("berth/c1/memory.swap.max").unwrap();
    let err = cgroup
        .apply(&memory(Some(64 * MIB), Some(128 * MIB)))
        .unwrap_err();
    assert!(
        matches!(&err, CgroupError::Unsupported { field, .. } if field == "linux.resources.memory.swap")
    );
    assert!(f.fake.writes().is_empty());
    // "max" and "0" hold anyway without swap: only memory.max is written
    cgroup
        .apply(&memory(Some(64 * MIB), Some(64 * MIB)))
        .unwrap();
    assert_eq!(f.leaf_writes(), pairs(&[("memory.max", "67108864")]));
}

#[test]
fn cgroup_v2_cpu_weight_max_and_cpuset() {
    let f = Fixture::new();
    let cgroup = f.cgroup();
    cgroup
        .apply(&cpu(LinuxCpuBuilder::default()
            .shares(512u64)
            .quota(50_000i64)
            .period(100_000u64)
            .burst(1000u64)
            .cpus("0-1")
            .mems("0")))
        .unwrap();
    assert_eq!(
        f.leaf_writes(),
        pairs(&[
            ("cpuset.cpus", "0-1"),
            ("cpuset.mems", "0"),
            ("cpu.weight", "20"),
            ("cpu.max", "50000 100000"),
            ("cpu.max.burst", "1000"),
        ])
    );
    for (builder, expected) in [
        (LinuxCpuBuilder::default().quota(-1i64), "max"),
        (LinuxCpuBuilder::default().period(200_000u64), "max 200000"),
        (LinuxCpuBuilder::default().quota(25_000i64), "25000"),
    ] {
        f.fake.clear_writes();
        cgroup.apply(&cpu(builder)).unwrap();
        assert_eq!(f.leaf_writes(), pairs(&[("cpu.max", expected)]));
    }
    for (shares, weight) in [(2u64, "1"), (1024, "39"), (262_144, "10000")] {
        f.fake.clear_writes();
        cgroup
            .apply(&cpu(LinuxCpuBuilder::default().shares(shares)))
            .unwrap();
        assert_eq!(f.leaf_writes(), pairs(&[("cpu.weight", weight)]));
    }
}

#[test]
fn cgroup_v2_pids_io_hugetlb_unified() {
    let f = Fixture::new();
    let cgroup = f.cgroup();
    let read = LinuxThrottleDeviceBuilder::default()
        .major(8i64)
        .minor(0i64)
        .rate(1_048_576u64)
        .build()
        .unwrap();
    let write = LinuxThrottleDeviceBuilder::default()
        .major(8i64)
        .minor(16i64)
        .rate(100u64)
        .build()
        .unwrap();
    let resources = LinuxResourcesBuilder::default()
        .pids(LinuxPidsBuilder::default().limit(10).build().unwrap())
        .block_io(
            LinuxBlockIoBuilder::default()
                .weight(500u16)
                .throttle_read_bps_device(vec![read])
                .throttle_write_iops_device(vec![write])
                .build()
                .unwrap(),
        )
        .hugepage_limits(vec![
            LinuxHugepageLimitBuilder::default()
                .page_size("2MB")
                .limit(4 * MIB)
                .build()
                .unwrap(),
            LinuxHugepageLimitBuilder::default()
                .page_size("1GB")
                .limit(-1i64)
                .build()
                .unwrap(),
        ])
        .unified(HashMap::from([
            ("memory.high".to_owned(), "1073741824".to_owned()),
            ("pids.max".to_owned(), "20".to_owned()),
        ]))
        .build()
        .unwrap();
    cgroup.apply(&resources).unwrap();
    assert_eq!(
        f.leaf_writes(),
        pairs(&[
            ("pids.max", "10"),
            ("io.weight", "4950"),
            ("io.max", "8:0 rbps=1048576"),
            ("io.max", "8:16 wiops=100"),
            ("hugetlb.2MB.max", "4194304"),
            ("hugetlb.1GB.max", "max"),
            // unified last, sorted: it overrides the fields above
            ("memory.high", "1073741824"),
            ("pids.max", "20"),
        ])
    );
}

#[test]
fn cgroup_v2_unsupported_fields_are_refused_before_writing() {
    let f = Fixture::new();
    let cgroup = f.cgroup();
    let base = || {
        LinuxResourcesBuilder::default()
            .pids(LinuxPidsBuilder::default().limit(10).build().unwrap())
    };
    let cases: Vec<(LinuxResources, &str)> = vec![
        (
            base()
                .memory(LinuxMemoryBuilder::default().kernel(MIB).build().unwrap())
                .build()
                .unwrap(),
            "linux.resources.memory.kernel",
        ),
        (
            base()
                .memory(
                    LinuxMemoryBuilder::default()
                        .swappiness(10u64)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
            "linux.resources.memory.swappiness",
        ),
        (
            base()
                .memory(
                    LinuxMemoryBuilder::default()
                        .disable_oom_killer(true)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
            "linux.resources.memory.disableOOMKiller",
        ),
        (
            base()
                .cpu(
                    LinuxCpuBuilder::default()
                        .realtime_runtime(1000i64)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
            "linux.resources.cpu.realtimeRuntime",
        ),
        (
            base()
                .network(
                    LinuxNetworkBuilder::default()
                        .class_id(1u32)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
            "linux.resources.network.classID",
        ),
        (
            base()
                .block_io(
                    LinuxBlockIoBuilder::default()
                        .leaf_weight(10u16)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
            "linux.resources.blockIO.leafWeight",
        ),
        (
            base()
                .devices(vec![LinuxDeviceCgroupBuilder::default()
                    .allow(true)
                    .typ(LinuxDeviceType::P)
                    .build()
                    .unwrap()])
                .build()
                .unwrap(),
            "linux.resources.devices",
        ),
        (
            base()
                .unified(HashMap::from([("../escape".to_owned(), "1".to_owned())]))
                .build()
                .unwrap(),
            "linux.resources.unified",
        ),
        (
            base()
                .unified(HashMap::from([(
                    "memory.nonexistent".to_owned(),
                    "1".to_owned(),
                )]))
                .build()
                .unwrap(),
            "linux.resources.unified.memory.nonexistent",
        ),
        (
            base()
                .hugepage_limits(vec![LinuxHugepageLimitBuilder::default()
                    .page_size("64KB")
                    .limit(0i64)
                    .build()
                    .unwrap()])
                .build()
                .unwrap(),
            "linux.resources.hugepageLimits",
        ),
    ];
    for (resources, field) in cases {
        let err = cgroup.apply(&resources).unwrap_err();
        assert!(err.to_string().contains(field), "{field}: {err}");
        assert!(
            f.fake.writes().is_empty(),
            "{field}: wrote {:?}",
            f.fake.writes()
        );
    }
    // disableOOMKiller=false is what v2 does anyway (Docker always sends it)
    let fine = base()
        .memory(
            LinuxMemoryBuilder::default()
                .disable_oom_killer(false)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    cgroup.apply(&fine).unwrap();
}

#[test]
fn cgroup_v2_freeze_and_thaw_follow_cgroup_events() {
    let f = Fixture::new();
    let cgroup = f.cgroup();
    assert_eq!(cgroup.freezer_state().unwrap(), FreezerState::Thawed);
    cgroup.freeze().unwrap();
    assert_eq!(f.leaf_writes(), pairs(&[("cgroup.freeze", "1")]));
    assert!(f
        .fake
        .get("berth/c1/cgroup.events")
        .unwrap()
        .contains("frozen 1"));
    assert_eq!(cgroup.freezer_state().unwrap(), FreezerState::Frozen);
    cgroup.thaw().unwrap();
    assert_eq!(cgroup.freezer_state().unwrap(), FreezerState::Thawed);

    // asked but not reached: Freezing; a freeze that never settles is undone
    f.fake.set("berth/c1/cgroup.freeze", "1").unwrap();
    assert_eq!(cgroup.freezer_state().unwrap(), FreezerState::Freezing);
}

#[test]
fn cgroup_v2_freeze_timeout_and_old_kernels() {
    let f = Fixture::new();
    let cgroup = f.cgroup();
    // a kernel that never reports frozen
    f.fake.set_freezing_reads(usize::MAX);
    let err = cgroup.freeze().unwrap_err();
    assert!(
        matches!(&err, CgroupError::Timeout { expected, .. } if expected == "frozen 1"),
        "{err:?}"
    );
    assert_eq!(f.fake.get("berth/c1/cgroup.freeze").unwrap(), "0", "undone");

    f.fake.remove("berth/c1/cgroup.freeze").unwrap();
    let err = cgroup.freeze().unwrap_err();
    assert!(matches!(err, CgroupError::Unsupported { .. }), "{err:?}");
}

#[test]
fn cgroup_v2_oom_detection_and_stats() {
    let f = Fixture::new();
    let cgroup = f.cgroup();
    assert!(!cgroup.oom_killed().unwrap());
    f.fake
        .set(
            "berth/c1/memory.events",
            "low 0\nhigh 0\nmax 12\noom 3\noom_kill 3\noom_group_kill 0\n",
        )
        .unwrap();
    assert_eq!(cgroup.oom_kill_count().unwrap(), 3);
    assert!(cgroup.oom_killed().unwrap());

    cgroup.apply(&memory(Some(64 * MIB), None)).unwrap();
    f.fake.set("berth/c1/memory.current", "2097152").unwrap();
    f.fake.set("berth/c1/memory.peak", "4194304").unwrap();
    f.fake.set("berth/c1/cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 7\nnr_throttled 2\nthrottled_usec 30\n").unwrap();
    f.fake.set("berth/c1/pids.current", "2").unwrap();
    f.fake
        .set(
            "berth/c1/io.stat",
            "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n253:1 rbytes=10 wbytes=0 rios=3 wios=0\n",
        )
        .unwrap();
    let stats = cgroup.stats().unwrap();
    let blkio = stats.blkio.clone().unwrap();
    let bytes: Vec<(u64, u64, &str, u64)> = blkio
        .service_bytes
        .iter()
        .map(|e| (e.major, e.minor, e.op.as_str(), e.value))
        .collect();
    assert_eq!(
        bytes,
        vec![
            (8, 0, "read", 4096),
            (8, 0, "write", 8192),
            (253, 1, "read", 10),
            (253, 1, "write", 0)
        ]
    );
    assert_eq!(blkio.serviced.len(), 4);
    assert_eq!(blkio.serviced[2].value, 3);
    assert!(
        stats.cpu.as_ref().unwrap().percpu_ns.is_empty(),
        "v2 has no per-CPU figures"
    );
    let memory = stats.memory.unwrap();
    assert_eq!(memory.usage_bytes, 2_097_152);
    assert_eq!(memory.max_usage_bytes, Some(4_194_304));
    assert_eq!(memory.limit, Limit::Value(67_108_864));
    assert_eq!(memory.oom_kills, Some(3));
    let cpu = stats.cpu.unwrap();
    assert_eq!(cpu.usage_ns, 1_500_000);
    assert_eq!(cpu.system_ns, Some(500_000));
    assert_eq!(cpu.throttled_ns, Some(30_000));
    assert_eq!(
        stats.pids.unwrap(),
        PidsStats {
            current: 2,
            limit: Limit::Max
        }
    );
}

#[test]
fn cgroup_v2_without_memory_controller() {
    let f = Fixture::with_controllers(Some(vec![Controller::Pids]));
    let cgroup = f.cgroup();
    let err = cgroup.oom_kill_count().unwrap_err();
    assert!(
        matches!(
            err,
            CgroupError::ControllerUnavailable {
                controller: Controller::Memory,
                ..
            }
        ),
        "{err:?}"
    );
    let stats = cgroup.stats().unwrap();
    assert_eq!(stats.memory, None);
    assert!(stats.cpu.is_some(), "cpu.stat is in the v2 core");
}

#[test]
fn cgroup_v2_kill_all_uses_cgroup_kill_and_destroy() {
    let f = Fixture::new();
    let cgroup = f.cgroup();
    cgroup.add_pid(Pid::from_raw(4242).unwrap()).unwrap();
    assert_eq!(cgroup.procs().unwrap(), [Pid::from_raw(4242).unwrap()]);
    assert!(f
        .fake
        .get("berth/c1/cgroup.events")
        .unwrap()
        .contains("populated 1"));
    f.fake.clear_writes();
    cgroup.destroy().unwrap();
    assert_eq!(f.leaf_writes(), pairs(&[("cgroup.kill", "1")]));
    assert!(!f.root().join(LEAF).exists());
    assert!(f.root().join("berth").is_dir());
    cgroup.destroy().unwrap();
    f.manager.open("never").unwrap().destroy().unwrap();
}

#[test]
fn cgroup_v2_destroy_removes_child_cgroups_and_reports_busy() {
    let f = Fixture::new();
    let cgroup = f.cgroup();
    f.fake.create_dir(&f.root().join("berth/c1/inner")).unwrap();
    f.fake
        .create_dir(&f.root().join("berth/c1/inner/deeper"))
        .unwrap();
    cgroup.destroy().unwrap();
    assert!(!cgroup.exists());

    // a process the kill does not remove (another pid namespace shows as 0) keeps it busy
    let cgroup = f.cgroup();
    f.fake.set("berth/c1/cgroup.procs", "0\n").unwrap();
    let err = cgroup.destroy().unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EBUSY), "{err:?}");
    assert!(matches!(err, CgroupError::RemoveDir { .. }));
}

#[test]
fn cgroup_v2_kill_all_without_cgroup_kill_signals_each() {
    let f = Fixture::new();
    let cgroup = f.cgroup();
    f.fake.remove("berth/c1/cgroup.kill").unwrap();
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    cgroup
        .add_pid(Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap())
        .unwrap();
    f.fake.clear_writes();
    cgroup.kill_all(Signal::KILL).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL)
    );
    assert_eq!(
        f.leaf_writes(),
        pairs(&[("cgroup.freeze", "1"), ("cgroup.freeze", "0")])
    );
}

#[test]
fn cgroup_v2_device_rules_become_an_attached_program() {
    let f = Fixture::new();
    let cgroup = f.cgroup();
    let resources = LinuxResourcesBuilder::default()
        .devices(super::devices::tests::docker_rules())
        .build()
        .unwrap();
    cgroup.apply(&resources).unwrap();
    assert!(f.fake.writes().is_empty(), "no device files on v2");
    let programs = f.fake.device_programs();
    assert_eq!(programs.len(), 1);
    let (dir, program) = &programs[0];
    assert_eq!(dir, Path::new(LEAF));
    let run = super::devices::tests::run;
    assert!(run(program, 'c', 1, 3, "rw"), "/dev/null allowed");
    assert!(!run(program, 'b', 8, 0, "r"), "/dev/sda denied");

    // no rules: the filter is left as it is
    let none = LinuxResourcesBuilder::default()
        .devices(Vec::new())
        .build()
        .unwrap();
    cgroup.apply(&none).unwrap();
    assert_eq!(f.fake.device_programs().len(), 1);
}
