//! The per-container state directory of `berth runtime`: `<root>/<id>/state.json` (written
//! atomically) and `<root>/<id>/exec.fifo` (present between create and start). A container's
//! status is derived, never stored: its pid alive with the recorded start time (so a reused
//! pid is not mistaken for it), the fifo still there (created), its cgroup frozen (paused).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

/// The version of `state.json`'s layout.
pub const STATE_VERSION: u32 = 1;

/// What `state.json` holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct State {
    /// Layout version.
    pub version: u32,
    /// Container id.
    pub id: String,
    /// The container process (runtime's pid namespace).
    pub pid: i32,
    /// Its start time in clock ticks since boot (`/proc/PID/stat` field 22).
    pub start_time: u64,
    /// The bundle (absolute).
    pub bundle: PathBuf,
    /// The root file system (absolute).
    pub rootfs: PathBuf,
    /// Creation time, RFC 3339.
    pub created: String,
    /// The spec's ociVersion.
    pub oci_version: String,
    /// The spec's annotations.
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// The cgroup: parent path and name under the cgroup root.
    pub cgroup_parent: String,
    /// The cgroup's own name.
    pub cgroup_name: String,
    /// poststart hooks (run by `start`).
    #[serde(default)]
    pub poststart: Vec<oci_spec::runtime::Hook>,
    /// poststop hooks (run by `delete`).
    #[serde(default)]
    pub poststop: Vec<oci_spec::runtime::Hook>,
}

/// Checks a container id as runc does.
pub fn validate_id(id: &str) -> anyhow::Result<()> {
    if id.is_empty()
        || id == "."
        || id == ".."
        || id.len() > 1024
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.'))
    {
        bail!("invalid container id format: {id}");
    }
    Ok(())
}

/// `<root>/<id>`.
pub fn dir(root: &Path, id: &str) -> PathBuf {
    root.join(id)
}

impl State {
    /// Loads the state of `id`; "container does not exist" when it has none.
    pub fn load(root: &Path, id: &str) -> anyhow::Result<State> {
        validate_id(id)?;
        let path = dir(root, id).join("state.json");
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!("container does not exist")
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
    }

    /// Writes `state.json` atomically (temp file, fsync, rename).
    pub fn save(&self, root: &Path) -> anyhow::Result<()> {
        let d = dir(root, &self.id);
        let tmp = d.join(".state.json.tmp");
        let path = d.join("state.json");
        let mut f =
            std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(&serde_json::to_vec(self).expect("state serializes"))
            .and_then(|()| f.sync_all())
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("renaming to {}", path.display()))
    }

    /// The exec fifo path.
    pub fn fifo(&self, root: &Path) -> PathBuf {
        dir(root, &self.id).join("exec.fifo")
    }

    /// Whether the container process still lives (same pid, same start time, not a zombie).
    pub fn alive(&self) -> bool {
        self.pid > 0
            && proc_start_time(self.pid).is_some_and(|(t, zombie)| t == self.start_time && !zombie)
    }

    /// `creating`... `stopped`, derived from the process, the fifo and the freezer.
    pub fn status(&self, root: &Path) -> &'static str {
        if !self.alive() {
            return "stopped";
        }
        if self.fifo(root).exists() {
            return "created";
        }
        if self.frozen() {
            return "paused";
        }
        "running"
    }

    fn frozen(&self) -> bool {
        self.cgroup()
            .ok()
            .and_then(|c| c.freezer_state().ok())
            .is_some_and(|s| s != berth_runtime::cgroup::FreezerState::Thawed)
    }

    /// The container's cgroup.
    pub fn cgroup(&self) -> anyhow::Result<berth_runtime::cgroup::Cgroup> {
        cgroup_of(&self.cgroup_parent, &self.cgroup_name)
    }

    /// The OCI state JSON (`runc state`).
    pub fn oci(&self, root: &Path) -> serde_json::Value {
        let status = self.status(root);
        let mut v = serde_json::json!({
            "ociVersion": self.oci_version,
            "id": self.id,
            "pid": if status == "stopped" { 0 } else { self.pid },
            "status": status,
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": "",
        });
        if !self.annotations.is_empty() {
            v["annotations"] = serde_json::json!(self.annotations);
        }
        v
    }

    /// The state hooks read on stdin.
    pub fn hook_state(&self, status: &str) -> berth_runtime::hooks::OciState {
        berth_runtime::hooks::OciState {
            oci_version: self.oci_version.clone(),
            id: self.id.clone(),
            status: status.into(),
            pid: if status == "stopped" { 0 } else { self.pid },
            bundle: self.bundle.clone(),
            annotations: self.annotations.clone(),
        }
    }
}

/// The cgroup at `<parent>/<name>` below the host's cgroup root.
pub fn cgroup_of(parent: &str, name: &str) -> anyhow::Result<berth_runtime::cgroup::Cgroup> {
    let m = berth_runtime::cgroup::CgroupManager::detect(
        berth_runtime::cgroup::DEFAULT_ROOT,
        Path::new("/proc"),
    )
    .context("detecting the host's cgroups")?
    .with_parent(parent)
    .with_context(|| format!("cgroup parent {parent}"))?;
    m.open(name).with_context(|| format!("cgroup {name}"))
}

/// Splits `linux.cgroupsPath` into parent and name; `<id>` under the root when absent. With
/// `systemd` (`--systemd-cgroup`) the path is systemd's `slice:prefix:name`.
pub fn split_cgroups_path(
    path: Option<&Path>,
    id: &str,
    systemd: bool,
) -> anyhow::Result<(String, String)> {
    let Some(p) = path.and_then(|p| p.to_str()).filter(|p| !p.is_empty()) else {
        return Ok((String::new(), id.to_string()));
    };
    if p.contains(':') && !systemd {
        bail!("linux.cgroupsPath {p:?} looks like systemd's slice:prefix:name; pass --systemd-cgroup or give a path such as /machine/{id}");
    }
    if let Some((slice, rest)) = p.split_once(':') {
        // systemd's slice:prefix:name, laid out as systemd would (without asking systemd,
        // which berth runtime does not talk to): <slice path>/<prefix>-<name>.scope
        let (prefix, name) = rest.split_once(':').ok_or_else(|| {
            anyhow::anyhow!("linux.cgroupsPath {p:?}: expected slice:prefix:name")
        })?;
        let slice = if slice.is_empty() {
            "system.slice"
        } else {
            slice
        };
        let stem = slice.strip_suffix(".slice").ok_or_else(|| {
            anyhow::anyhow!("linux.cgroupsPath {p:?}: {slice:?} is not a systemd slice")
        })?;
        // a-b.slice lives in a.slice/a-b.slice
        let mut parent = Vec::new();
        let parts: Vec<&str> = stem.split('-').collect();
        for i in 1..=parts.len() {
            parent.push(format!("{}.slice", parts[..i].join("-")));
        }
        let name = if prefix.is_empty() {
            format!("{name}.scope")
        } else {
            format!("{prefix}-{name}.scope")
        };
        return Ok((parent.join("/"), name));
    }
    let trimmed = p.trim_matches('/');
    match trimmed.rsplit_once('/') {
        Some((parent, name)) => Ok((parent.to_string(), name.to_string())),
        None => Ok((String::new(), trimmed.to_string())),
    }
}

/// `/proc/PID/stat`: (start time, is zombie).
pub fn proc_start_time(pid: i32) -> Option<(u64, bool)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // the command is in parentheses and may hold spaces: fields start after the last ')'
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // rest[0] is field 3 (state); field 22 is rest[19]
    let zombie = matches!(fields.first(), Some(&"Z") | Some(&"X"));
    Some((fields.get(19)?.parse().ok()?, zombie))
}

/// Every container's state under `root`, sorted by id.
pub fn list(root: &Path) -> anyhow::Result<Vec<State>> {
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", root.display())),
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(id) = name.to_str() else { continue };
        if let Ok(s) = State::load(root, id) {
            out.push(s);
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroups_path_splits_into_parent_and_name() {
        assert_eq!(
            split_cgroups_path(Some(Path::new("/libpod_parent/libpod-abc")), "x", false)
                .expect("ok"),
            ("libpod_parent".into(), "libpod-abc".into())
        );
        assert_eq!(
            split_cgroups_path(None, "c1", false).expect("ok"),
            ("".into(), "c1".into())
        );
        assert_eq!(
            split_cgroups_path(Some(Path::new("machine-x.slice:libpod:abc")), "x", true)
                .expect("ok"),
            (
                "machine.slice/machine-x.slice".into(),
                "libpod-abc.scope".into()
            )
        );
        assert!(split_cgroups_path(Some(Path::new("bad:libpod")), "x", true).is_err());
        assert!(
            split_cgroups_path(Some(Path::new("machine.slice:libpod:abc")), "x", false).is_err()
        );
    }

    #[test]
    fn ids_are_checked() {
        validate_id("abc-1.2_x").expect("valid");
        assert!(validate_id("../x").is_err());
        assert!(validate_id("").is_err());
    }

    #[test]
    fn own_start_time_is_read() {
        let (t, zombie) = proc_start_time(std::process::id() as i32).expect("stat");
        assert!(t > 0 && !zombie);
    }
}
