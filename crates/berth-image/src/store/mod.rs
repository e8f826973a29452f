//! The content store: verified blobs as files, snapshots as directories keyed by chain ID, and
//! the metadata (images, tags, digests, snapshot rows) in SQLite.
//!
//! Layout under the root:
//! ```text
//! blobs/sha256/<hex>          verified content, written temp + fsync + rename
//! ingest/<hex>                partial downloads, resumed with Range requests
//! snapshots/<chain-hex>/      one unpacked layer each (overlayfs lowerdir form)
//! snapshots/.tmp-*            layers being unpacked; removed at start-up
//! images.db                   SQLite, WAL mode
//! ```
//!
//! Durability: blobs are fsync'ed before they are renamed into place. A snapshot's files are
//! not: a pull records its snapshots and its image as soon as the layers are unpacked, with
//! each snapshot marked unsynced (with the kernel's boot ID), and a background thread then
//! flushes the file system once (`syncfs`) and clears the marks. Waiting for that flush was a
//! fifth of a cold pull, and a daemon `kill -9` cannot lose page-cache data. What a power loss
//! can lose is caught at the next start: marks from another boot mean the data may never have
//! reached the disk, so those snapshots and the images that use them are dropped (their layer
//! blobs are durable: pulling again unpacks them without downloading); marks from this boot
//! are flushed then.

mod db;
mod gc;

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub use db::{ImageRecord, LayerRecord, NewImage};
pub use gc::GcReport;

use crate::digest::{Digest, DigestHasher};
use crate::error::ImageError;

/// The content store. Cheap to share behind an `Arc`.
pub struct Store {
    root: PathBuf,
    /// The one connection to `images.db`, shared with the flush thread: a second connection
    /// writing beside it made the store's deferred transactions fail with SQLITE_BUSY.
    db: std::sync::Arc<Mutex<rusqlite::Connection>>,
    /// Held shared by pulls while they add content, exclusively by GC.
    gc_lock: tokio::sync::RwLock<()>,
    /// Flushes committed snapshots to the disk in the background.
    syncer: Syncer,
}

/// The kernel's boot ID, read once; `None` where it cannot be read, and then every pull
/// flushes its snapshots before it records its image, as there would be no telling after a
/// restart whether the machine went down in between.
fn boot_id() -> Option<&'static str> {
    static BOOT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    BOOT.get_or_init(|| {
        fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    })
    .as_deref()
}

#[derive(Default)]
struct SyncState {
    /// Flushes asked for, and finished (each covers every mark made before it started).
    requested: u64,
    done: u64,
    /// Whether the thread runs.
    started: bool,
    /// The store is gone: the thread ends once nothing is asked of it.
    stop: bool,
}

/// One thread that, when asked, flushes the store's file system and clears the unsynced marks
/// that were there before the flush began. Requests made while a flush runs share the next one.
struct Syncer {
    root: PathBuf,
    db: std::sync::Arc<Mutex<rusqlite::Connection>>,
    state: std::sync::Arc<(Mutex<SyncState>, std::sync::Condvar)>,
}

impl Syncer {
    fn new(root: &Path, db: std::sync::Arc<Mutex<rusqlite::Connection>>) -> Syncer {
        Syncer {
            root: root.to_path_buf(),
            db,
            state: Default::default(),
        }
    }

    fn request(&self) {
        let (lock, cvar) = &*self.state;
        let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
        st.requested += 1;
        if !st.started {
            let root = self.root.clone();
            let db = self.db.clone();
            let state = self.state.clone();
            let spawned = std::thread::Builder::new()
                .name("berth-sync".into())
                .spawn(move || sync_thread(&root, &db, &state));
            match spawned {
                Ok(_) => st.started = true,
                Err(e) => {
                    // the marks stay; the next start flushes them (same boot) or drops them
                    tracing::warn!(error = %e, "cannot start the snapshot flush thread");
                    st.done = st.requested;
                }
            }
        }
        cvar.notify_all();
    }

    fn wait(&self) {
        let (lock, cvar) = &*self.state;
        let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
        let target = st.requested;
        while st.done < target {
            st = cvar.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        let (lock, cvar) = &*self.state;
        lock.lock().unwrap_or_else(|e| e.into_inner()).stop = true;
        cvar.notify_all();
    }
}

fn sync_thread(
    root: &Path,
    db: &Mutex<rusqlite::Connection>,
    state: &(Mutex<SyncState>, std::sync::Condvar),
) {
    let (lock, cvar) = state;
    loop {
        let target = {
            let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
            while st.done == st.requested && !st.stop {
                st = cvar.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            if st.done == st.requested {
                return;
            }
            st.requested
        };
        if let Err(e) = sync_marked(root, db) {
            // the marks stay: the next flush, or the next start, tries again
            tracing::warn!(error = %e, "flushing pulled snapshots to the disk");
        }
        let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
        st.done = target;
        cvar.notify_all();
    }
}

/// Flushes the file system and clears the marks of this boot that existed before the flush.
/// The connection is held only to read and to clear the marks, not across the flush.
fn sync_marked(root: &Path, conn: &Mutex<rusqlite::Connection>) -> Result<(), ImageError> {
    let lock = || conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let boot = boot_id();
    let marked: Vec<String> = db::unsynced(&lock())?
        .into_iter()
        .filter(|(_, b)| Some(b.as_str()) == boot)
        .map(|(chain, _)| chain)
        .collect();
    if marked.is_empty() {
        return Ok(());
    }
    let f = File::open(root).map_err(ImageError::io("opening", root))?;
    rustix::fs::syncfs(&f).map_err(|e| ImageError::io("syncing", root)(e.into()))?;
    db::mark_synced(&mut lock(), &marked)
}

/// How to mount an image's layers, without mounting anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotMounts {
    /// Layer directories, topmost first, as overlayfs `lowerdir=` wants them.
    pub lowerdirs: Vec<PathBuf>,
}

impl SnapshotMounts {
    /// The overlayfs option string for these lowers plus an upper and work dir.
    pub fn overlay_options(&self, upper: &Path, work: &Path) -> String {
        let lowers: Vec<String> = self
            .lowerdirs
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        format!(
            "lowerdir={},upperdir={},workdir={}",
            lowers.join(":"),
            upper.display(),
            work.display()
        )
    }
}

fn fsync_dir(dir: &Path) -> Result<(), ImageError> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(ImageError::io("syncing directory", dir))
}

/// Marks `dir` as the top of unrelated directory trees (ext4's `chattr +T`), so the file
/// system places each new subdirectory in a block group of its own choosing instead of its
/// parent's, and the files made in that subdirectory follow it. On ext4 without a journal this
/// matters a lot: it will not reuse an inode freed in the last minute (six while the inode
/// table block is dirty) and walks past every such inode of the group for each inode it
/// allocates. For `snapshots/`: a layer unpacked right after an image was removed spent most
/// of its time there (10-12 s instead of 2.4 s for a 250 MB image). For the engine's
/// `containers/`: each `run --rm` makes and removes about 30 inodes, and with all containers
/// in one group a busy host reached 15 ms per `run --rm` instead of 9.3 (measured side by side,
/// 150 runs each); spread, the group search adds nothing measurable (9.7 against 9.9 ms where
/// the gathered group was still clean). Best effort: file systems without the flag keep their
/// own placement.
pub fn spread_subdirectories(dir: &Path) {
    set_top_directory(dir, true);
}

fn set_top_directory(dir: &Path, top: bool) {
    use rustix::fs::IFlags;
    let Ok(fd) = rustix::fs::open(
        dir,
        rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    ) else {
        return;
    };
    match rustix::fs::ioctl_getflags(&fd) {
        Ok(flags) if flags.contains(IFlags::TOPDIR) != top => {
            let flags = if top {
                flags | IFlags::TOPDIR
            } else {
                flags - IFlags::TOPDIR
            };
            if let Err(e) = rustix::fs::ioctl_setflags(&fd, flags) {
                tracing::debug!(dir = %dir.display(), error = %e, top, "cannot change the directory's +T");
            }
        }
        Ok(_) => {}
        Err(e) => {
            tracing::debug!(dir = %dir.display(), error = %e, "no inode flags on this file system")
        }
    }
}

impl Store {
    /// Opens (creating if needed) the store at `root` and repairs what a crash left behind.
    pub fn open(root: &Path) -> Result<Store, ImageError> {
        for sub in ["blobs/sha256", "ingest", "snapshots"] {
            let p = root.join(sub);
            fs::create_dir_all(&p).map_err(ImageError::io("creating", &p))?;
        }
        spread_subdirectories(&root.join("snapshots"));
        let db = std::sync::Arc::new(Mutex::new(db::open(&root.join("images.db"))?));
        let store = Store {
            root: root.to_path_buf(),
            db: db.clone(),
            gc_lock: tokio::sync::RwLock::new(()),
            syncer: Syncer::new(root, db),
        };
        store.repair()?;
        Ok(store)
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn conn(&self) -> std::sync::MutexGuard<'_, rusqlite::Connection> {
        // a panic while holding the lock leaves the connection usable; SQLite rolls back
        self.db
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Shared guard held while content is added, so GC never removes it half-referenced.
    pub async fn adding(&self) -> tokio::sync::RwLockReadGuard<'_, ()> {
        self.gc_lock.read().await
    }

    /// Where a verified blob lives.
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    /// Where a partial download of a blob lives.
    pub fn ingest_path(&self, d: &Digest) -> PathBuf {
        self.root.join("ingest").join(d.hex())
    }

    /// Whether a verified blob is present.
    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// Reads a whole blob.
    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>, ImageError> {
        let p = self.blob_path(d);
        fs::read(&p).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                ImageError::NotFound {
                    name: format!("blob {d}"),
                }
            } else {
                ImageError::io("reading blob", p)(e)
            }
        })
    }

    /// Verifies `data` against `digest` and stores it atomically.
    pub fn write_blob(
        &self,
        what: &'static str,
        digest: &Digest,
        data: &[u8],
    ) -> Result<(), ImageError> {
        let mut h = DigestHasher::default();
        h.update(data);
        let actual = h.finish();
        if &actual != digest {
            return Err(ImageError::DigestMismatch {
                what,
                expected: digest.clone(),
                actual,
                size: data.len() as u64,
            });
        }
        if self.has_blob(digest) {
            return Ok(());
        }
        let dir = self.root.join("blobs/sha256");
        let tmp = dir.join(format!(".tmp-{}-{}", digest.hex(), rand::random::<u32>()));
        let mut f = File::create(&tmp).map_err(ImageError::io("creating", &tmp))?;
        f.write_all(data)
            .and_then(|_| f.sync_all())
            .map_err(ImageError::io("writing", &tmp))?;
        drop(f);
        self.commit_file(&tmp, digest)
    }

    /// Moves a fully written and verified temp file into place as the blob `digest`.
    pub fn commit_file(&self, tmp: &Path, digest: &Digest) -> Result<(), ImageError> {
        let dst = self.blob_path(digest);
        fs::rename(tmp, &dst).map_err(ImageError::io("renaming into the blob store", &dst))?;
        fsync_dir(&self.root.join("blobs/sha256"))
    }

    /// The directory of a committed snapshot.
    pub fn snapshot_dir(&self, chain_id: &Digest) -> PathBuf {
        self.root.join("snapshots").join(chain_id.hex())
    }

    /// A fresh private directory to unpack a layer into before [`Store::commit_snapshot`].
    pub fn snapshot_tmp(&self, chain_id: &Digest) -> Result<PathBuf, ImageError> {
        let p = self.root.join("snapshots").join(format!(
            ".tmp-{}-{}",
            chain_id.short(),
            rand::random::<u32>()
        ));
        fs::create_dir(&p).map_err(ImageError::io("creating snapshot", &p))?;
        Ok(p)
    }

    /// Removes an unfinished snapshot directory.
    pub fn discard_tmp(&self, tmp: &Path) {
        if let Err(e) = fs::remove_dir_all(tmp) {
            tracing::warn!(path = %tmp.display(), error = %e, "could not remove unfinished snapshot");
        }
    }

    /// Whether the snapshot for `chain_id` is complete and recorded.
    pub fn has_snapshot(&self, chain_id: &Digest) -> Result<bool, ImageError> {
        db::has_snapshot(&self.conn(), chain_id)
    }

    /// Makes an unpacked layer a snapshot: renames it into place and records it, marked
    /// unsynced (see the module documentation) until [`Store::sync_in_background`] has
    /// flushed it. Where the boot ID is unknown nothing is marked, and the puller calls
    /// [`Store::sync`] before it records the image.
    pub fn commit_snapshot(
        &self,
        tmp: &Path,
        chain_id: &Digest,
        diff_id: &Digest,
        size: u64,
    ) -> Result<(), ImageError> {
        let dst = self.snapshot_dir(chain_id);
        if dst.exists() {
            // committed meanwhile by another pull, or left over without a row: keep one copy
            self.discard_tmp(tmp);
        } else {
            fs::rename(tmp, &dst).map_err(ImageError::io("renaming snapshot into place", &dst))?;
            if boot_id().is_none() {
                fsync_dir(&self.root.join("snapshots"))?;
            }
        }
        db::insert_snapshot(&mut self.conn(), chain_id, diff_id, size, boot_id())
    }

    /// Flushes the store's file system once, so a power loss does not leave a recorded image
    /// whose layers never reached the disk. Blocks; for where no boot ID can be read.
    pub fn sync(&self) -> Result<(), ImageError> {
        let f = File::open(&self.root).map_err(ImageError::io("opening", &self.root))?;
        rustix::fs::syncfs(&f).map_err(|e| ImageError::io("syncing", &self.root)(e.into()))
    }

    /// Asks the background thread to flush the snapshots committed so far; false (nothing
    /// asked) where the boot ID is unknown and the caller must [`Store::sync`] itself.
    pub fn sync_in_background(&self) -> bool {
        if boot_id().is_none() {
            return false;
        }
        self.syncer.request();
        true
    }

    /// Waits until every flush asked for so far has finished.
    pub fn wait_synced(&self) {
        self.syncer.wait();
    }

    /// Mount description for an image's layer chain (no mounting happens here).
    pub fn mounts(&self, image: &ImageRecord) -> SnapshotMounts {
        SnapshotMounts {
            lowerdirs: image
                .layers
                .iter()
                .rev()
                .map(|l| self.snapshot_dir(&l.chain_id))
                .collect(),
        }
    }

    /// Records a pulled image and points its tag and digest names at it, in one transaction.
    pub fn put_image(&self, img: &NewImage) -> Result<(), ImageError> {
        db::put_image(&mut self.conn(), img)
    }

    /// All images.
    pub fn list_images(&self) -> Result<Vec<ImageRecord>, ImageError> {
        db::list_images(&self.conn())
    }

    /// Finds an image by tag, `name@digest`, full ID, or unique ID prefix.
    pub fn resolve(&self, name: &str) -> Result<ImageRecord, ImageError> {
        db::resolve(&self.conn(), name)
    }

    /// Points the canonical tag `tagged` (`domain/path:tag`) at `image_id`.
    pub fn set_tag(&self, tagged: &str, image_id: &Digest) -> Result<(), ImageError> {
        db::set_tag(&self.conn(), tagged, image_id)
    }

    /// Removes a tag or digest name; returns whether it existed.
    pub fn remove_name(&self, name: &str) -> Result<bool, ImageError> {
        db::remove_name(&self.conn(), name)
    }

    /// Deletes an image row (its names must already be gone or are dropped with it).
    pub fn delete_image(&self, id: &Digest) -> Result<(), ImageError> {
        db::delete_image(&mut self.conn(), id)
    }

    /// Removes the partial state a crash may have left: unfinished snapshot dirs, temp blobs,
    /// snapshot dirs without rows, rows without dirs (and images that relied on them).
    fn repair(&self) -> Result<(), ImageError> {
        // snapshots marked unsynced in another boot may have lost data in a power loss
        let boot = boot_id();
        let (here, lost): (Vec<_>, Vec<_>) = db::unsynced(&self.conn())?
            .into_iter()
            .partition(|(_, b)| Some(b.as_str()) == boot);
        if !lost.is_empty() {
            let lost: Vec<String> = lost.into_iter().map(|(chain, _)| chain).collect();
            tracing::warn!(
                snapshots = ?lost,
                "layers unpacked just before the machine went down may not have reached the disk; \
                 dropping them and the images that use them (pull those images again: their \
                 layers are stored and are not downloaded again)"
            );
            db::drop_snapshots(&mut self.conn(), &lost)?;
        }
        if !here.is_empty() {
            self.syncer.request();
        }
        let snaps = self.root.join("snapshots");
        let recorded = db::snapshot_ids(&self.conn())?;
        let mut on_disk = std::collections::HashSet::new();
        for entry in fs::read_dir(&snaps).map_err(ImageError::io("listing", &snaps))? {
            let entry = entry.map_err(ImageError::io("listing", &snaps))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(".tmp-") || !recorded.contains(&name) {
                tracing::info!(snapshot = name, "removing unfinished snapshot");
                self.discard_tmp(&entry.path());
            } else {
                on_disk.insert(name);
            }
        }
        let missing: Vec<String> = recorded.difference(&on_disk).cloned().collect();
        if !missing.is_empty() {
            tracing::warn!(
                count = missing.len(),
                "snapshots recorded but missing on disk; dropping them and their images"
            );
            db::drop_snapshots(&mut self.conn(), &missing)?;
        }
        let blobs = self.root.join("blobs/sha256");
        for entry in fs::read_dir(&blobs).map_err(ImageError::io("listing", &blobs))? {
            let entry = entry.map_err(ImageError::io("listing", &blobs))?;
            if entry.file_name().to_string_lossy().starts_with(".tmp-") {
                let _ = fs::remove_file(entry.path());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Commits a one-file snapshot for `name` and returns its chain ID.
    fn snapshot(store: &Store, name: &str) -> Digest {
        let chain = Digest::of(name.as_bytes());
        let tmp = store.snapshot_tmp(&chain).expect("tmp");
        fs::write(tmp.join("file"), name).expect("write");
        store
            .commit_snapshot(&tmp, &chain, &Digest::of(b"diff"), 4)
            .expect("commit");
        chain
    }

    fn image(store: &Store, name: &str, chain: &Digest) {
        let layer = LayerRecord {
            chain_id: chain.clone(),
            diff_id: Digest::of(b"diff"),
            blob: Digest::of(b"blob"),
            blob_size: 4,
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            size: 4,
        };
        store
            .put_image(&NewImage {
                id: Digest::of(name.as_bytes()),
                manifest_digest: Digest::of(b"manifest"),
                manifest_media_type: crate::manifest::OCI_MANIFEST.into(),
                index_digest: None,
                created: None,
                os: "linux".into(),
                architecture: "amd64".into(),
                variant: None,
                layers: vec![layer],
                tag: Some(format!("example.com/{name}:latest")),
                repo_digest: None,
            })
            .expect("image");
    }

    fn unsynced(store: &Store) -> Vec<(String, String)> {
        db::unsynced(&store.conn()).expect("unsynced")
    }

    #[test]
    fn snapshots_stay_marked_until_the_background_flush() {
        let Some(boot) = boot_id() else { return };
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let chain = snapshot(&store, "a");
        assert_eq!(
            unsynced(&store),
            vec![(chain.hex().to_string(), boot.to_string())]
        );
        assert!(store.sync_in_background());
        store.wait_synced();
        assert!(
            unsynced(&store).is_empty(),
            "flushed: {:?}",
            unsynced(&store)
        );
        assert!(store.has_snapshot(&chain).expect("has"));
        assert!(store.snapshot_dir(&chain).join("file").is_file());
    }

    #[test]
    fn a_start_in_another_boot_drops_unsynced_snapshots_and_their_images() {
        if boot_id().is_none() {
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let (kept, lost) = {
            let store = Store::open(dir.path()).expect("store");
            let kept = snapshot(&store, "kept");
            let lost = snapshot(&store, "lost");
            image(&store, "keeper", &kept);
            image(&store, "loser", &lost);
            store.sync_in_background();
            store.wait_synced();
            // as if `lost` were committed in a boot that ended before its flush
            store
                .conn()
                .execute(
                    "INSERT INTO unsynced (chain_id, boot_id) VALUES (?1, 'an-earlier-boot')",
                    [lost.to_string()],
                )
                .expect("mark");
            (kept, lost)
        };
        let store = Store::open(dir.path()).expect("reopen");
        assert!(!store.has_snapshot(&lost).expect("has"));
        assert!(
            !store.snapshot_dir(&lost).exists(),
            "its directory is removed too"
        );
        assert!(store.resolve("example.com/loser:latest").is_err());
        assert!(store.has_snapshot(&kept).expect("has"));
        assert!(store.resolve("example.com/keeper:latest").is_ok());
        assert!(unsynced(&store).is_empty());
    }

    #[test]
    fn a_start_in_the_same_boot_flushes_what_was_left_marked() {
        if boot_id().is_none() {
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let chain = {
            let store = Store::open(dir.path()).expect("store");
            let chain = snapshot(&store, "a");
            image(&store, "img", &chain);
            // the daemon died before it asked for the flush
            assert_eq!(unsynced(&store).len(), 1);
            chain
        };
        let store = Store::open(dir.path()).expect("reopen");
        store.wait_synced();
        assert!(unsynced(&store).is_empty());
        assert!(store.has_snapshot(&chain).expect("has"));
        assert!(store.resolve("example.com/img:latest").is_ok());
    }

    #[test]
    fn snapshot_directory_spreads_its_subdirectories() {
        let dir = tempfile::tempdir().expect("tempdir");
        let flags_of = |p: &Path| {
            let fd = rustix::fs::open(
                p,
                rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::RDONLY,
                rustix::fs::Mode::empty(),
            )
            .expect("open");
            rustix::fs::ioctl_getflags(&fd)
        };
        if flags_of(dir.path()).is_err() {
            // a file system without inode flags (tmpfs): nothing to check
            return;
        }
        let _store = Store::open(dir.path()).expect("store");
        let flags = flags_of(&dir.path().join("snapshots")).expect("flags");
        assert!(
            flags.contains(rustix::fs::IFlags::TOPDIR),
            "snapshots/ is +T: {flags:?}"
        );
        // and on a directory that had the flag cleared (as an older engine did on containers/)
        let other = dir.path().join("containers");
        std::fs::create_dir(&other).expect("mkdir");
        set_top_directory(&other, false);
        assert!(!flags_of(&other)
            .expect("flags")
            .contains(rustix::fs::IFlags::TOPDIR));
        spread_subdirectories(&other);
        assert!(flags_of(&other)
            .expect("flags")
            .contains(rustix::fs::IFlags::TOPDIR));
    }
}
