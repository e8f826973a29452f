//! Fuzz target bodies: what berth-image does with bytes a registry or an archive controls.
//!
//! Shared by the `cargo fuzz` targets in `fuzz/` (coverage-guided, nightly) and by the
//! deterministic mutation test `tests/fuzz_mutations.rs`, which runs in every CI run on stable.
//! Each body must never panic, whatever the input; the unpack body also checks that nothing is
//! written outside the snapshot directory.

use std::path::{Path, PathBuf};

use crate::manifest::{self, ImageConfig, ManifestKind};
use crate::{Platform, Reference};

/// Manifest, index and config JSON, under every media type berth accepts.
pub fn manifest(data: &[u8]) {
    for ct in [
        None,
        Some(manifest::OCI_MANIFEST),
        Some(manifest::OCI_INDEX),
        Some(manifest::DOCKER_MANIFEST),
        Some(manifest::DOCKER_MANIFEST_LIST),
        Some("application/json"),
    ] {
        let _ = ManifestKind::parse(ct, data);
    }
    if let Ok(config) = serde_json::from_slice::<ImageConfig>(data) {
        let _ = config.platform();
    }
}

/// Image references and platform strings; a reference that parses prints as one that parses
/// to the same value.
pub fn reference(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(r) = Reference::parse_normalized(s) {
        let again = Reference::parse_normalized(&r.to_string())
            .unwrap_or_else(|e| panic!("{s:?} parsed, but its printed form {r} does not: {e}"));
        assert!(again == r, "{s:?} does not round-trip through {r}");
    }
    let _ = s.parse::<Platform>();
}

/// A layer tar applied to an empty snapshot directory: errors are fine, panics and writes
/// outside the directory are not.
pub fn unpack(data: &[u8]) {
    let base = scratch_dir();
    let dest = base.join("snapshot");
    std::fs::create_dir_all(&dest).expect("scratch directory");
    let _ = crate::unpack::unpack_layer(data, &dest);
    let outside: Vec<PathBuf> = std::fs::read_dir(&base)
        .expect("scratch directory")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p != &dest)
        .collect();
    let _ = remove_all(&base);
    assert!(
        outside.is_empty(),
        "unpacking wrote outside the snapshot: {outside:?}"
    );
}

fn scratch_dir() -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    std::env::temp_dir().join(format!(
        "berth-fuzz-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Removes a tree that a hostile layer made (directories without write or search permission
/// included).
fn remove_all(p: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(md) = std::fs::symlink_metadata(p) {
        if md.is_dir() {
            let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700));
        }
    }
    std::fs::remove_dir_all(p)
}
