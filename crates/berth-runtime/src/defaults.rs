//! Docker's container defaults as OCI spec pieces: mounts, masked and read-only paths, the
//! devices every container gets, and the namespaces. The engine starts from [`base_spec`] and
//! applies the user's flags.

use std::path::PathBuf;

use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxDevice, LinuxDeviceBuilder,
    LinuxDeviceCgroup, LinuxDeviceType, LinuxNamespace, LinuxNamespaceBuilder, LinuxNamespaceType,
    Mount, MountBuilder, ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};

/// Paths Docker hides from containers (a bind of /dev/null on files, a read-only tmpfs on dirs).
pub const MASKED_PATHS: [&str; 12] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths Docker makes read-only.
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The PATH Docker gives a container whose image sets none.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    MountBuilder::default()
        .destination(PathBuf::from(dest))
        .typ(typ)
        .source(PathBuf::from(source))
        .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()
        .expect("all mount fields set")
}

/// Docker's default mounts: /proc, /dev, /dev/pts, /sys, /sys/fs/cgroup, /dev/mqueue, /dev/shm.
pub fn default_mounts() -> Vec<Mount> {
    vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["ro", "nosuid", "noexec", "nodev"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"],
        ),
    ]
}

fn device(path: &str, major: i64, minor: i64) -> LinuxDevice {
    LinuxDeviceBuilder::default()
        .path(PathBuf::from(path))
        .typ(LinuxDeviceType::C)
        .major(major)
        .minor(minor)
        .file_mode(0o666u32)
        .uid(0u32)
        .gid(0u32)
        .build()
        .expect("all device fields set")
}

/// The devices every container gets, whatever its spec lists (as runc does).
pub fn default_devices() -> Vec<LinuxDevice> {
    vec![
        device("/dev/null", 1, 3),
        device("/dev/zero", 1, 5),
        device("/dev/full", 1, 7),
        device("/dev/random", 1, 8),
        device("/dev/urandom", 1, 9),
        device("/dev/tty", 5, 0),
    ]
}

/// The namespaces of a default container (a private network namespace: `--network none`).
pub fn default_namespaces() -> Vec<LinuxNamespace> {
    [
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Cgroup,
    ]
    .into_iter()
    .map(|t| {
        LinuxNamespaceBuilder::default()
            .typ(t)
            .build()
            .expect("namespace type set")
    })
    .collect()
}

/// Capability names as the spec type.
pub fn capability_set(names: &[String]) -> std::collections::HashSet<Capability> {
    names
        .iter()
        .filter_map(|n| n.trim_start_matches("CAP_").parse::<Capability>().ok())
        .collect()
}

/// A spec with Docker's defaults: root `rootfs`, Docker's capabilities, mounts, masked and
/// read-only paths, namespaces, no-new-privileges off (as Docker), `sh` as the process.
pub fn base_spec() -> Spec {
    let caps: Vec<String> = crate::caps::DOCKER_DEFAULT
        .iter()
        .map(|s| s.to_string())
        .collect();
    let set = capability_set(&caps);
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(set.clone())
        .effective(set.clone())
        .permitted(set)
        .build()
        .expect("capability sets");
    let process = ProcessBuilder::default()
        .terminal(false)
        .user(
            UserBuilder::default()
                .uid(0u32)
                .gid(0u32)
                .build()
                .expect("user"),
        )
        .args(vec!["sh".to_string()])
        .env(vec![DEFAULT_PATH.to_string()])
        .cwd(PathBuf::from("/"))
        .capabilities(capabilities)
        .no_new_privileges(false)
        .build()
        .expect("process fields set");
    let linux = LinuxBuilder::default()
        .namespaces(default_namespaces())
        .masked_paths(
            MASKED_PATHS
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
        )
        .readonly_paths(
            READONLY_PATHS
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
        )
        .build()
        .expect("linux fields set");
    SpecBuilder::default()
        .version("1.2.0")
        .root(
            RootBuilder::default()
                .path(PathBuf::from("rootfs"))
                .readonly(false)
                .build()
                .expect("root"),
        )
        .hostname("berth")
        .mounts(default_mounts())
        .process(process)
        .linux(linux)
        .build()
        .expect("spec fields set")
}

fn device_rule(
    allow: bool,
    typ: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(allow);
    r.set_typ(Some(typ));
    r.set_major(major);
    r.set_minor(minor);
    r.set_access(Some(access.to_string()));
    r
}

/// Docker's default device cgroup: nothing but the default devices, pseudo-terminals and
/// /dev/net/tun may be read or written; any node may be created (mknod) but not opened.
pub fn docker_device_rules() -> Vec<LinuxDeviceCgroup> {
    use LinuxDeviceType::{A, B, C};
    vec![
        device_rule(false, A, None, None, "rwm"),
        device_rule(true, C, None, None, "m"),
        device_rule(true, B, None, None, "m"),
        device_rule(true, C, Some(1), Some(3), "rwm"),
        device_rule(true, C, Some(1), Some(5), "rwm"),
        device_rule(true, C, Some(1), Some(7), "rwm"),
        device_rule(true, C, Some(1), Some(8), "rwm"),
        device_rule(true, C, Some(1), Some(9), "rwm"),
        device_rule(true, C, Some(5), Some(0), "rwm"),
        device_rule(true, C, Some(5), Some(1), "rwm"),
        device_rule(true, C, Some(5), Some(2), "rwm"),
        device_rule(true, C, Some(136), None, "rwm"),
        device_rule(true, C, Some(10), Some(200), "rwm"),
    ]
}

/// A privileged container's device cgroup: everything.
pub fn privileged_device_rules() -> Vec<LinuxDeviceCgroup> {
    vec![device_rule(true, LinuxDeviceType::A, None, None, "rwm")]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_spec_has_docker_defaults() {
        let s = base_spec();
        let caps = s
            .process()
            .as_ref()
            .and_then(|p| p.capabilities().clone())
            .expect("caps");
        assert_eq!(caps.bounding().as_ref().map(|b| b.len()), Some(14));
        assert!(caps
            .bounding()
            .as_ref()
            .is_some_and(|b| !b.contains(&Capability::SysAdmin)));
        let linux = s.linux().as_ref().expect("linux");
        assert!(linux
            .masked_paths()
            .as_ref()
            .is_some_and(|m| m.contains(&"/proc/kcore".to_string())));
        assert_eq!(linux.namespaces().as_ref().map(Vec::len), Some(6));
        let json = serde_json::to_string(&s).expect("serializes");
        let back: Spec = serde_json::from_str(&json).expect("round trips");
        assert_eq!(back.hostname().as_deref(), Some("berth"));
    }
}
