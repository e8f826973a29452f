//! Unit tests (no root) of the v1 code against the fake hybrid cgroupfs.

#![expect(clippy::unwrap_used, reason = "tests")]

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use oci_spec::runtime::{
    LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxDeviceCgroupBuilder, LinuxDeviceType,
    LinuxHugepageLimitBuilder, LinuxMemoryBuilder, LinuxNetworkBuilder, LinuxPidsBuilder,
    LinuxRdma, LinuxResources, LinuxResourcesBuilder, LinuxThrottleDeviceBuilder,
};
use rustix::process::{Pid, Signal};
use tempfile::TempDir;

use super::fake::{FakeCgroupFs, V1_HIERARCHIES, V1_UNLIMITED};
use super::*;

const MIB: i64 = 1 << 20;

struct Fixture {
    dir: TempDir,
    fake: Arc<FakeCgroupFs>,
    manager: CgroupManager,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let fake = Arc::new(FakeCgroupFs::v1_hybrid(dir.path()).unwrap());
        let mode = CgroupMode::detect(dir.path(), &fake.mountinfo()).unwrap();
        let manager =
            CgroupManager::new(dir.path(), mode, fake.clone()).with_options(CgroupOptions {
                freeze_timeout: Duration::from_millis(200),
                destroy_timeout: Duration::from_millis(500),
                v2_controllers: None,
            });
        Fixture { dir, fake, manager }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    /// A created cgroup `c1` with the setup writes forgotten.
    fn cgroup(&self) -> Cgroup {
        let cgroup = self.manager.create("c1").unwrap();
        self.fake.clear_writes();
        cgroup
    }
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

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn cgroup_v1_detect_fake_hybrid_ignores_unified() {
    let f = Fixture::new();
    let CgroupMode::V1 { mounts } = f.manager.mode() else {
        panic!("expected v1")
    };
    assert_eq!(mounts[&Controller::Cpu], f.root().join("cpu,cpuacct"));
    assert_eq!(mounts[&Controller::Cpuacct], f.root().join("cpu,cpuacct"));
    assert_eq!(mounts[&Controller::Freezer], f.root().join("freezer"));
    assert!(!mounts
        .values()
        .any(|m| m.ends_with("unified") || m.ends_with("systemd")));
}

#[test]
fn cgroup_v1_create_makes_every_hierarchy_and_copies_cpuset() {
    let f = Fixture::new();
    let cgroup = f.manager.create("c1").unwrap();
    assert_eq!(cgroup.paths().len(), V1_HIERARCHIES.len());
    for (dir, _) in V1_HIERARCHIES {
        assert!(f.root().join(dir).join("berth/c1").is_dir(), "{dir}");
    }
    assert_eq!(
        cgroup.path_for(Controller::Memory).unwrap(),
        f.root().join("memory/berth/c1")
    );
    assert_eq!(
        cgroup.path_for(Controller::Cpu),
        cgroup.path_for(Controller::Cpuacct)
    );
    assert_eq!(cgroup.path_for(Controller::Rdma), None);
    // the kernel leaves a new cpuset empty; each level gets its parent's values
    let copied = pairs(&[("cpuset.cpus", "0-3"), ("cpuset.mems", "0")]);
    assert_eq!(f.fake.writes_in("cpuset/berth"), copied);
    assert_eq!(f.fake.writes_in("cpuset/berth/c1"), copied);
    assert_eq!(f.fake.get("cpuset/berth/c1/cpuset.cpus").unwrap(), "0-3");
    // nothing else is written on create
    assert_eq!(f.fake.writes().len(), 4, "{:?}", f.fake.writes());

    // again: reuses the directories, copies nothing
    f.fake.clear_writes();
    f.manager.create("c1").unwrap();
    assert!(f.fake.writes().is_empty());
}

#[test]
fn cgroup_v1_nested_parent_and_name_validation() {
    let f = Fixture::new();
    let manager = f.manager.clone().with_parent("/berth/nested/").unwrap();
    assert_eq!(manager.parent(), Path::new("berth/nested"));
    let cgroup = manager.create("c2").unwrap();
    assert_eq!(
        cgroup.path_for(Controller::Pids).unwrap(),
        f.root().join("pids/berth/nested/c2")
    );
    assert_eq!(
        f.fake.get("cpuset/berth/nested/c2/cpuset.mems").unwrap(),
        "0"
    );
    for bad in ["", ".", "..", "a/b", "a\nb"] {
        let err = f.manager.create(bad).unwrap_err();
        assert!(
            matches!(err, CgroupError::InvalidName { .. }),
            "{bad:?}: {err:?}"
        );
    }
    assert!(f.manager.clone().with_parent("a/../b").is_err());
    assert!(f.manager.clone().with_parent("a//b").is_err());
}

#[test]
fn cgroup_v1_memory_and_swap_are_ordered_for_the_kernel() {
    let f = Fixture::new();
    let cgroup = f.cgroup();
    let dir = "memory/berth/c1";

    // from unlimited: the limit first, then memsw
    cgroup
        .apply(&memory(Some(64 * MIB), Some(128 * MIB)))
        .unwrap();
    assert_eq!(
        f.fake.writes_in(dir),
        pairs(&[
            ("memory.limit_in_bytes", "67108864"),
            ("memory.memsw.limit_in_bytes", "134217728")
        ])
    );

    // raising past the current memsw: memsw first (the fake refuses memsw < limit with EINVAL)
    f.fake.clear_writes();
    cgroup
        .apply(&memory(Some(256 * MIB), Some(512 * MIB)))
        .unwrap();
    assert_eq!(
        f.fake.writes_in(dir),
        pairs(&[
            ("memory.memsw.limit_in_bytes", "536870912"),
            ("memory.limit_in_bytes", "268435456")
        ])
    );

    // lowering: the limit first
    f.fake.clear_writes();
    cgroup
        .apply(&memory(Some(32 * MIB), Some(32 * MIB)))
        .unwrap();
    assert_eq!(
        f.fake.writes_in(dir),
        pairs(&[
            ("memory.limit_in_bytes", "33554432"),
            ("memory.memsw.limit_in_bytes", "33554432")
        ])
    );

    // unlimited memory without a swap setting: both unlimited, memsw first
    f.fake.clear_writes();
    cgroup.apply(&memory(Some(-1), None)).unwrap();
    assert_eq!(
        f.fake.writes_in(dir),
        pairs(&[
            ("memory.memsw.limit_in_bytes", "-1"),
            ("memory.limit_in_bytes", "-1")
        ])
    );
    assert_eq!(
        f.fake.get(&format!("{dir}/memory.limit_in_bytes")).unwrap(),
        V1_UNLIMITED
    );

    // swap below the limit is refused before writing
    f.fake.clear_writes();
    let err = cgroup
        .apply(&memory(Some(64 * MIB), Some(32 * MIB)))
        .unwrap_err();
    assert!(
        err.to_string().contains("linux.resources.memory.swap"),
        "{err}"
    );
    assert!(f.fake.writes().is_empty());
}

#[test]
fn cgroup_v1_swap_without_swap_accounting_is_refused() {
    let f = Fixture::new();
    let cgroup = f.cgroup();
    f.fake
        .remove("memory/berth/c1/memory.memsw.limit_in_bytes")
        .unwrap();
    let err = cgroup
        .apply(&memory(Some(64 * MIB), Some(128 * MIB)))
        .unwrap_err();
    assert!(
        matches!(&err, CgroupError::Unsupported { field, .. } if field == "linux.resources.memory.swap")
    );
    assert!(err.to_string().contains("swap accounting"), "{err}");
    assert!(f.fake.writes().is_empty(), "refused before writing");
    // the limit alone, and an unlimited swap, are fine
    cgroup.apply(&memory(Some(64 * MIB), Some(-1))).unwrap();
    assert_eq!(
        f.fake.writes_in("memory/berth/c1"),
        pairs(&[("memory.limit_in_bytes", "67108864")])
    );
}

#[test]
fn cgroup_v1_memory_extras() {
    let f = Fixture::new();
    let cgroup = f.cgroup();
    let resources = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .reservation(32 * MIB)
                .kernel_tcp(16 * MIB)
                .swappiness(10u64)
                .disable_oom_killer(true)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    cgroup.apply(&resources).unwrap();
    assert_eq!(
        f.fake.writes_in("memory/berth/c1"),
        pairs(&[
            ("memory.soft_limit_in_bytes", "33554432"),
            ("memory.kmem.tcp.limit_in_bytes", "16777216"),
            ("memory.swappiness", "10"),
            ("memory.oom_control", "1"),
        ])
    );
    let bad = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .swappiness(101u64)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    assert!(cgroup.apply(&bad).is_err());
}

#[test]
fn cgroup_v1_check_before_update_refuses_limit_below_usage() {
    let f = Fixture::new();
    let cgroup = f.cgroup();
    f.fake
        .set("memory/berth/c1/memory.usage_in_bytes", "104857600")
        .unwrap();
    let resources = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(64 * MIB)
                .check_before_update(true)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let err = cgroup.apply(&resources).unwrap_err();
    assert!(
        matches!(
            err,
            CgroupError::LimitBelowUsage {
                usage: 104_857_600,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(f.fake.writes().is_empty());
}

#[test]
fn cgroup_v1_cpu_and_cpuset() {
    let f = Fixture::new();
    let cgroup = f.cgroup();
    let resources = LinuxResourcesBuilder::default()
        .cpu(
            LinuxCpuBuilder::default()
                .shares(512u64)
                .quota(50_000i64)
                .period(100_000u64)
                .burst(1000u64)
                .cpus("0-1")
                .mems("0")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    cgroup.apply(&resources).unwrap();
    assert_eq!(
        f.fake.writes_in("cpu,cpuacct/berth/c1"),
        pairs(&[
            ("cpu.shares", "512"),
            ("cpu.cfs_period_us", "100000"),
            ("cpu.cfs_quota_us", "50000"),
            ("cpu.cfs_burst_us", "1000"),
        ])
    );
    assert_eq!(
        f.fake.writes_in("cpuset/berth/c1"),
        pairs(&[("cpuset.cpus", "0-1"), ("cpuset.mems", "0")])
    );
    // cpuset goes first, as runc orders v1 subsystems
    assert_eq!(
        f.fake.writes()[0].path,
        Path::new("cpuset/berth/c1/cpuset.cpus")
    );

    // unlimited quota
    f.fake.clear_writes();
    let unlimited = LinuxResourcesBuilder::default()
        .cpu(LinuxCpuBuilder::default().quota(-1i64).build().unwrap())
        .build()
        .unwrap();
    cgroup.apply(&unlimited).unwrap();
    assert_eq!(
        f.fake.writes_in("cpu,cpuacct/berth/c1"),
        pairs(&[("cpu.cfs_quota_us", "-1")])
    );
}

#[test]
fn cgroup_v1_clamped_shares_are_an_error() {
    let f = Fixture::new();
    let cgroup = f.cgroup();
    let resources = LinuxResourcesBuilder::default()
        .cpu(LinuxCpuBuilder::default().shares(1u64).build().unwrap())
        .build()
        .unwrap();
    let err = cgroup.apply(&resources).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid linux.resources.cpu.shares \"1\": the kernel clamped it to 2"
    );
}

#[test]
fn cgroup_v1_period_refused_is_retried_after_quota() {
    let f = Fixture::new();
    let cgroup = f.cgroup();
    f.fake.fail_writes("cpu.cfs_period_us", libc::EINVAL);
    let resources = LinuxResourcesBuilder::default()
        .cpu(
            LinuxCpuBuilder::default()
                .quota(20_000i64)
                .period(50_000u64)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let err = cgroup.apply(&resources).unwrap_err();
    // the quota went in between the two attempts; the second refusal is reported
    assert_eq!(
        f.fake.writes_in("cpu,cpuacct/berth/c1"),
        pairs(&[("cpu.cfs_quota_us", "20000")])
    );
    let CgroupError::Write { path, value, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(path.ends_with("cpu,cpuacct/berth/c1/cpu.cfs_period_us"));
    assert_eq!(value, "50000");
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
}

#[test]
fn cgroup_v1_kernel_refusal_names_file_and_value() {
    let f = Fixture::new();
    let cgroup = f.cgroup();
    f.fake.fail_writes("memory.limit_in_bytes", libc::EBUSY);
    let err = cgroup.apply(&memory(Some(64 * MIB), None)).unwrap_err();
    let file = f.root().join("memory/berth/c1/memory.limit_in_bytes");
    assert_eq!(
        err.to_string(),
        format!("writing \"67108864\" to {}", file.display())
    );
    assert_eq!(err.raw_os_error(), Some(libc::EBUSY));
}

#[test]
fn cgroup_v1_pids() {
    let f = Fixture::new();
    let cgroup = f.cgroup();
    for (limit, expected) in [(10, "10"), (0, "max"), (-1, "max")] {
        f.fake.clear_writes();
        let resources = LinuxResourcesBuilder::default()
            .pids(LinuxPidsBuilder::default().limit(limit).build().unwrap())
            .build()
            .unwrap();
        cgroup.apply(&resources).unwrap();
        assert_eq!(
            f.fake.writes_in("pids/berth/c1"),
            pairs(&[("pids.max", expected)])
        );
    }
}

#[test]
fn cgroup_v1_devices() {
    let f = Fixture::new();
    let cgroup = f.cgroup();
    let deny_all = LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .access("rwm")
        .build()
        .unwrap();
    let null = LinuxDeviceCgroupBuilder::default()
        .allow(true)
        .typ(LinuxDeviceType::C)
        .major(1i64)
        .minor(3i64)
        .access("rwm")
        .build()
        .unwrap();
    let pts = LinuxDeviceCgroupBuilder::default()
        .allow(true)
        .typ(LinuxDeviceType::C)
        .major(136i64)
        .build()
        .unwrap();
    let resources = LinuxResourcesBuilder::default()
        .devices(vec![deny_all, null, pts])
        .build()
        .unwrap();
    cgroup.apply(&resources).unwrap();
    assert_eq!(
        f.fake.writes_in("devices/berth/c1"),
        pairs(&[
            ("devices.deny", "a *:* rwm"),
            ("devices.allow", "c 1:3 rwm"),
            ("devices.allow", "c 136:* rwm"),
        ])
    );
    let fifo = LinuxDeviceCgroupBuilder::default()
        .allow(true)
        .typ(LinuxDeviceType::P)
        .build()
        .unwrap();
    let err = cgroup
        .apply(
            &LinuxResourcesBuilder::default()
                .devices(vec![fifo])
                .build()
                .unwrap(),
        )
        .unwrap_err();
    assert!(err.to_string().contains("linux.resources.devices"), "{err}");
}

#[test]
fn cgroup_v1_block_io_hugetlb_network() {
    let f = Fixture::new();
    let cgroup = f.cgroup();
    let throttle = LinuxThrottleDeviceBuilder::default()
        .major(8i64)
        .minor(0i64)
        .rate(1_048_576u64)
        .build()
        .unwrap();
    let resources = LinuxResourcesBuilder::default()
        .block_io(
            LinuxBlockIoBuilder::default()
                .weight(300u16)
                .throttle_read_bps_device(vec![throttle])
                .build()
                .unwrap(),
        )
        .hugepage_limits(vec![LinuxHugepageLimitBuilder::default()
            .page_size("2MB")
            .limit(4 * MIB)
            .build()
            .unwrap()])
        .network(
            LinuxNetworkBuilder::default()
                .class_id(0x0010_0001u32)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    cgroup.apply(&resources).unwrap();
    // no CFQ on this fake kernel: BFQ's weight file takes the weight
    assert_eq!(
        f.fake.writes_in("blkio/berth/c1"),
        pairs(&[
            ("blkio.bfq.weight", "300"),
            ("blkio.throttle.read_bps_device", "8:0 1048576")
        ])
    );
    assert_eq!(
        f.fake.writes_in("hugetlb/berth/c1"),
        pairs(&[("hugetlb.2MB.limit_in_bytes", "4194304")])
    );
    assert_eq!(
        f.fake.writes_in("net_cls,net_prio/berth/c1"),
        pairs(&[("net_cls.classid", "1048577")])
    );
}

#[test]
fn cgroup_v1_unsupported_fields_are_refused_before_writing() {
    let f = Fixture::new();
    let cgroup = f.cgroup();
    let with_memory = |builder: LinuxResourcesBuilder| {
        builder
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(64 * MIB)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap()
    };
    let cases: Vec<(LinuxResources, &str)> = vec![
        (
            with_memory(
                LinuxResourcesBuilder::default()
                    .unified(HashMap::from([("memory.high".to_owned(), "1G".to_owned())])),
            ),
            "linux.resources.unified",
        ),
        (
            with_memory(
                LinuxResourcesBuilder::default().block_io(
                    LinuxBlockIoBuilder::default()
                        .leaf_weight(100u16)
                        .build()
                        .unwrap(),
                ),
            ),
            "linux.resources.blockIO.leafWeight",
        ),
        (
            with_memory(LinuxResourcesBuilder::default().hugepage_limits(vec![
                LinuxHugepageLimitBuilder::default().page_size("16GB").limit(0i64).build().unwrap(),
            ])),
            "linux.resources.hugepageLimits",
        ),
        (
            with_memory(
                LinuxResourcesBuilder::default()
                    .rdma(HashMap::from([("mlx5_0".to_owned(), LinuxRdma::default())])),
            ),
            "linux.resources.rdma",
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
    let err = cgroup
        .apply(&with_memory(LinuxResourcesBuilder::default().rdma(
            HashMap::from([("mlx5_0".to_owned(), LinuxRdma::default())]),
        )))
        .unwrap_err();
    assert!(
        matches!(
            err,
            CgroupError::ControllerUnavailable {
                controller: Controller::Rdma,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn cgroup_v1_add_pid_and_procs_cover_every_hierarchy() {
    let f = Fixture::new();
    let cgroup = f.cgroup();
    cgroup.add_pid(Pid::from_raw(4242).unwrap()).unwrap();
    let writes = f.fake.writes();
    assert_eq!(writes.len(), V1_HIERARCHIES.len());
    assert!(writes
        .iter()
        .all(|w| w.path.ends_with("berth/c1/cgroup.procs") && w.value == "4242"));
    f.fake
        .set("pids/berth/c1/cgroup.procs", "4242\n4243\n")
        .unwrap();
    let procs: Vec<i32> = cgroup
        .procs()
        .unwrap()
        .into_iter()
        .map(Pid::as_raw_pid)
        .collect();
    assert_eq!(procs, [4242, 4243]);
}

#[test]
fn cgroup_v1_freeze_waits_for_freezing_to_settle() {
    let f = Fixture::new();
    let cgroup = f.cgroup();
    f.fake.set_freezing_reads(3);
    cgroup.freeze().unwrap();
    assert_eq!(
        f.fake.get("freezer/berth/c1/freezer.state").unwrap(),
        "FROZEN"
    );
    assert_eq!(cgroup.freezer_state().unwrap(), FreezerState::Frozen);
    assert!(f
        .fake
        .writes_in("freezer/berth/c1")
        .iter()
        .all(|(_, v)| v == "FROZEN"));
    cgroup.thaw().unwrap();
    assert_eq!(cgroup.freezer_state().unwrap(), FreezerState::Thawed);
}

#[test]
fn cgroup_v1_freeze_that_never_settles_is_undone() {
    let f = Fixture::new();
    let cgroup = f.cgroup();
    f.fake.set_freezing_reads(usize::MAX);
    let err = cgroup.freeze().unwrap_err();
    assert!(
        matches!(&err, CgroupError::Timeout { expected, last, .. } if expected == "FROZEN" && last == "Freezing"),
        "{err:?}"
    );
    assert_eq!(cgroup.freezer_state().unwrap(), FreezerState::Thawed);
    let last = f.fake.writes().pop().unwrap();
    assert_eq!(last.value, "THAWED");
}

#[test]
fn cgroup_v1_oom_detection() {
    let f = Fixture::new();
    let cgroup = f.cgroup();
    let control = "memory/berth/c1/memory.oom_control";
    assert_eq!(cgroup.oom_kill_count().unwrap(), 0);
    assert!(!cgroup.oom_killed().unwrap());
    f.fake
        .set(control, "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
        .unwrap();
    assert_eq!(cgroup.oom_kill_count().unwrap(), 2);
    assert!(cgroup.oom_killed().unwrap());
    // kernels before 4.13: no oom_kill line
    f.fake
        .set(control, "oom_kill_disable 1\nunder_oom 1\n")
        .unwrap();
    f.fake.set("memory/berth/c1/memory.failcnt", "7").unwrap();
    assert_eq!(cgroup.oom_kill_count().unwrap(), 1);
    f.fake
        .set(control, "oom_kill_disable 0\nunder_oom 0\n")
        .unwrap();
    assert_eq!(cgroup.oom_kill_count().unwrap(), 0);
    f.fake.set(control, "oom_kill lots\n").unwrap();
    assert!(matches!(
        cgroup.oom_kill_count().unwrap_err(),
        CgroupError::Parse { .. }
    ));
}

#[test]
fn cgroup_v1_stats() {
    let f = Fixture::new();
    let cgroup = f.cgroup();
    cgroup.apply(&memory(Some(64 * MIB), None)).unwrap();
    f.fake
        .set("memory/berth/c1/memory.usage_in_bytes", "1048576")
        .unwrap();
    f.fake
        .set("memory/berth/c1/memory.memsw.usage_in_bytes", "1572864")
        .unwrap();
    f.fake
        .set("memory/berth/c1/memory.stat", "cache 4096\nrss 8192\n")
        .unwrap();
    f.fake
        .set("cpu,cpuacct/berth/c1/cpuacct.usage", "123456789")
        .unwrap();
    f.fake
        .set("cpu,cpuacct/berth/c1/cpuacct.usage_user", "100000000")
        .unwrap();
    f.fake
        .set(
            "cpu,cpuacct/berth/c1/cpu.stat",
            "nr_periods 10\nnr_throttled 4\nthrottled_time 5000\n",
        )
        .unwrap();
    f.fake.set("pids/berth/c1/pids.current", "3").unwrap();
    f.fake
        .set(
            "cpu,cpuacct/berth/c1/cpuacct.usage_percpu",
            "100000000 23456789 \n",
        )
        .unwrap();
    f.fake
        .set(
            "blkio/berth/c1/blkio.throttle.io_service_bytes_recursive",
            "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Async 12288\n8:0 Total 12288\nTotal 12288\n",
        )
        .unwrap();
    f.fake
        .set(
            "blkio/berth/c1/blkio.throttle.io_serviced_recursive",
            "8:0 Read 1\n8:0 Write 2\nTotal 3\n",
        )
        .unwrap();
    let stats = cgroup.stats().unwrap();
    let blkio = stats.blkio.clone().unwrap();
    assert_eq!(
        blkio.service_bytes.len(),
        5,
        "Total without a device is dropped"
    );
    assert_eq!(
        blkio.service_bytes[1],
        BlkioEntry {
            major: 8,
            minor: 0,
            op: "Write".into(),
            value: 8192
        }
    );
    assert_eq!(blkio.serviced[0].value, 1);
    assert_eq!(
        stats.cpu.as_ref().unwrap().percpu_ns,
        vec![100_000_000, 23_456_789]
    );
    let memory = stats.memory.unwrap();
    assert_eq!(memory.usage_bytes, 1_048_576);
    assert_eq!(memory.limit, Limit::Value(67_108_864));
    assert_eq!(memory.swap_usage_bytes, Some(524_288));
    assert_eq!(memory.oom_kills, Some(0));
    assert_eq!(memory.stat["rss"], 8192);
    let cpu = stats.cpu.unwrap();
    assert_eq!(cpu.usage_ns, 123_456_789);
    assert_eq!(cpu.user_ns, Some(100_000_000));
    assert_eq!(cpu.throttled_periods, Some(4));
    assert_eq!(cpu.throttled_ns, Some(5000));
    let pids = stats.pids.unwrap();
    assert_eq!((pids.current, pids.limit), (3, Limit::Max));

    // without cpuacct.usage_user: cpuacct.stat ticks of 10 ms
    f.fake
        .remove("cpu,cpuacct/berth/c1/cpuacct.usage_user")
        .unwrap();
    f.fake
        .set("cpu,cpuacct/berth/c1/cpuacct.stat", "user 5\nsystem 2\n")
        .unwrap();
    let cpu = cgroup.stats().unwrap().cpu.unwrap();
    assert_eq!(
        (cpu.user_ns, cpu.system_ns),
        (Some(50_000_000), Some(20_000_000))
    );

    // an unparsable per-CPU figure names its file
    f.fake
        .set("cpu,cpuacct/berth/c1/cpuacct.usage_percpu", "12 x\n")
        .unwrap();
    assert!(matches!(
        cgroup.stats().unwrap_err(),
        CgroupError::Parse { .. }
    ));
}

#[test]
fn cgroup_v1_destroy_is_idempotent_and_removes_children() {
    let f = Fixture::new();
    let cgroup = f.cgroup();
    // a nested cgroup made inside the container
    f.fake
        .create_dir(&f.root().join("memory/berth/c1/inner"))
        .unwrap();
    cgroup.destroy().unwrap();
    for dir in cgroup.paths() {
        assert!(!dir.exists(), "{}", dir.display());
    }
    assert!(
        f.root().join("memory/berth").is_dir(),
        "the shared parent stays"
    );
    cgroup.destroy().unwrap();
    // never created at all
    f.manager.open("ghost").unwrap().destroy().unwrap();
}

#[test]
fn cgroup_v1_kill_all_signals_listed_processes() {
    let f = Fixture::new();
    let cgroup = f.cgroup();
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
    cgroup.add_pid(pid).unwrap();
    f.fake.clear_writes();
    cgroup.kill_all(Signal::TERM).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGTERM)
    );
    // frozen while signalling, thawed after
    let freezer: Vec<String> = f
        .fake
        .writes_in("freezer/berth/c1")
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(freezer.first().map(String::as_str), Some("FROZEN"));
    assert_eq!(freezer.last().map(String::as_str), Some("THAWED"));
}

#[test]
fn cgroup_v1_failed_create_removes_only_what_it_made() {
    let f = Fixture::new();
    // an existing cgroup of someone else's in one hierarchy, and a failure in cpuset
    f.fake.create_dir(&f.root().join("memory/berth")).unwrap();
    f.fake
        .create_dir(&f.root().join("memory/berth/c1"))
        .unwrap();
    f.fake.fail_writes("cpuset.cpus", libc::ENOSPC);
    let err = f.manager.create("c1").unwrap_err();
    assert!(err.to_string().contains("cpuset.cpus"), "{err}");
    assert!(
        f.root().join("memory/berth/c1").is_dir(),
        "not ours to remove"
    );
    // made before the failure (hierarchies go in name order: blkio, cpu,cpuacct, cpuset...)
    assert!(!f.root().join("blkio/berth/c1").exists(), "ours: removed");
    assert!(
        !f.root().join("cpu,cpuacct/berth/c1").exists(),
        "ours: removed"
    );
}
