//! Garbage collection: remove exactly the blobs and snapshots nothing references.

use std::collections::HashSet;
use std::fs;

use super::{db, Store};
use crate::error::ImageError;

/// What a GC pass removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcReport {
    /// Blobs removed (digest strings).
    pub blobs: Vec<String>,
    /// Snapshots removed (chain IDs).
    pub snapshots: Vec<String>,
    /// Bytes freed on disk (blob sizes plus snapshot content).
    pub bytes: u64,
}

impl Store {
    /// Removes snapshots no image uses and blobs no image reaches (manifests, indexes, configs,
    /// layers), plus stale partial downloads. Waits for running pulls to finish adding content.
    pub async fn gc(&self) -> Result<GcReport, ImageError> {
        let _exclusive = self.gc_lock.write().await;
        let mut report = GcReport::default();
        let images = self.list_images()?;
        let mut live: HashSet<String> = HashSet::new();
        for img in &images {
            live.insert(img.id.hex().to_string());
            live.insert(img.manifest_digest.hex().to_string());
            if let Some(i) = &img.index_digest {
                live.insert(i.hex().to_string());
            }
            for l in &img.layers {
                live.insert(l.blob.hex().to_string());
            }
        }
        let unref = db::unreferenced_snapshots(&self.conn())?;
        for (chain, size) in unref {
            let hex = chain.trim_start_matches("sha256:").to_string();
            let dir = self.root.join("snapshots").join(&hex);
            // the row goes first: a crash between leaves a dir without a row, which repair removes
            db::delete_snapshot_row(&self.conn(), &chain)?;
            if dir.exists() {
                fs::remove_dir_all(&dir).map_err(ImageError::io("removing snapshot", &dir))?;
            }
            report.bytes += size;
            report.snapshots.push(chain);
        }
        for sub in ["blobs/sha256", "ingest"] {
            let dir = self.root.join(sub);
            for entry in fs::read_dir(&dir).map_err(ImageError::io("listing", &dir))? {
                let entry = entry.map_err(ImageError::io("listing", &dir))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if sub == "ingest" || !live.contains(&name) {
                    let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                    fs::remove_file(entry.path())
                        .map_err(ImageError::io("removing blob", entry.path()))?;
                    if sub != "ingest" {
                        report.bytes += size;
                        report.blobs.push(format!("sha256:{name}"));
                    }
                }
            }
        }
        Ok(report)
    }
}
