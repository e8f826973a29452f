//! Applies one layer tar to its own snapshot directory, in overlayfs form.
//!
//! Every entry is created relative to a directory fd whose path was resolved with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`, so nothing outside the snapshot directory is
//! ever written: `..`, absolute names, symlinked parents and hardlinks to outside are refused with
//! an error naming the entry. OCI whiteouts become overlayfs whiteouts (`.wh.NAME` → a 0:0
//! character device, `.wh..wh..opq` → `trusted.overlay.opaque=y` on the directory).

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use rustix::fs::{
    AtFlags, Dev, FileType, Mode, OFlags, ResolveFlags, Timespec, Timestamps, XattrFlags,
};
use rustix::process::{Gid, Uid};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";
const META_PREFIX: &str = ".wh..wh.";
const OVERLAY_XATTR_PREFIX: &str = "trusted.overlay.";

/// Why a layer could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// An entry would land outside the snapshot or is otherwise unsafe.
    #[error("refusing layer entry {entry:?}: {reason}")]
    Unsafe {
        /// The entry's name as in the archive.
        entry: String,
        /// Why.
        reason: &'static str,
    },
    /// The uncompressed layer exceeds the configured bound.
    #[error("layer expands beyond {limit} bytes (a decompression bomb?); raise the daemon's --max-layer-size if the image is genuine")]
    TooLarge {
        /// The bound in bytes.
        limit: u64,
    },
    /// A file-system operation failed.
    #[error("unpacking {entry:?} into {path}")]
    Io {
        /// The entry being written.
        entry: String,
        /// The snapshot directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The tar stream itself is corrupt.
    #[error("reading layer tar stream")]
    Tar(#[source] io::Error),
}

/// What applying a layer produced.
#[derive(Debug, Default, Clone, Copy)]
pub struct UnpackStats {
    /// Entries applied.
    pub entries: u64,
    /// Bytes of regular-file content written.
    pub content_bytes: u64,
}

/// A reader that fails once more than `limit` bytes went through it.
pub struct LimitedReader<R> {
    inner: R,
    read: u64,
    limit: u64,
}

impl<R> LimitedReader<R> {
    /// Wraps `inner` with a bound.
    pub fn new(inner: R, limit: u64) -> Self {
        LimitedReader {
            inner,
            read: 0,
            limit,
        }
    }
}

#[derive(Debug)]
struct LimitExceeded(u64);
impl std::fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "more than {} bytes", self.0)
    }
}
impl std::error::Error for LimitExceeded {}

impl<R: Read> Read for LimitedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.limit {
            return Err(io::Error::other(LimitExceeded(self.limit)));
        }
        Ok(n)
    }
}

fn limit_of(e: &io::Error) -> Option<u64> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = e.get_ref().map(|r| r as _);
    while let Some(err) = cur {
        if let Some(l) = err.downcast_ref::<LimitExceeded>() {
            return Some(l.0);
        }
        if let Some(io) = err.downcast_ref::<io::Error>() {
            cur = io.get_ref().map(|r| r as _);
        } else {
            cur = err.source();
        }
    }
    None
}

struct Unpacker<'a> {
    root: OwnedFd,
    dest: &'a Path,
    /// Directories whose mtime is set once all their children exist.
    dir_times: Vec<(PathBuf, u64)>,
    /// The previous entry's parent directory: layers list a directory's entries together,
    /// so most entries reuse it instead of resolving their parent again. A removal only
    /// touches a child of the current parent, but the cache is dropped on any removal all
    /// the same, so that it can never name a directory that is gone.
    parent: Option<(PathBuf, Rc<ParentDir>)>,
    /// The unpacking thread's effective ids: a new file is owned by them already.
    ids: (u64, u64),
    /// The process's umask, or 0o777 when unknown (then every file is chmod'ed).
    umask: u32,
    /// Copy buffer for file contents: large, so that big files take few writes.
    buf: Vec<u8>,
}

/// An open directory of the snapshot and the group its new entries get by default.
struct ParentDir {
    fd: OwnedFd,
    gid: u64,
}

const COPY_BUF: usize = 256 << 10;

/// The process's umask from /proc/self/status (reading it with umask(2) would race with
/// other threads creating files).
fn current_umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o777)
}

/// Reads from `r` until `buf` is full or the stream ends.
pub(crate) fn fill(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Normalizes an archive path: strips `./`, refuses `..` and absolute names.
fn clean_path(raw: &Path, entry: &str) -> Result<PathBuf, UnpackError> {
    let mut out = PathBuf::new();
    for c in raw.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(UnpackError::Unsafe {
                    entry: entry.into(),
                    reason: "path contains '..'",
                })
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(UnpackError::Unsafe {
                    entry: entry.into(),
                    reason: "absolute path",
                })
            }
        }
    }
    Ok(out)
}

fn resolve_flags() -> ResolveFlags {
    ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS
}

fn uid(raw: u64) -> Option<Uid> {
    u32::try_from(raw)
        .ok()
        .filter(|u| *u != u32::MAX)
        .map(Uid::from_raw)
}

fn gid(raw: u64) -> Option<Gid> {
    u32::try_from(raw)
        .ok()
        .filter(|g| *g != u32::MAX)
        .map(Gid::from_raw)
}

fn timestamps(mtime: u64) -> Timestamps {
    let t = Timespec {
        tv_sec: mtime as i64,
        tv_nsec: 0,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

impl Unpacker<'_> {
    fn io(&self, entry: &str) -> impl Fn(io::Error) -> UnpackError + '_ {
        let entry = entry.to_string();
        move |source| UnpackError::Io {
            entry: entry.clone(),
            path: self.dest.to_path_buf(),
            source,
        }
    }

    /// Opens (creating as needed) the directory `rel` beneath the root, never through a symlink.
    fn open_dir(&self, rel: &Path, entry: &str) -> Result<OwnedFd, UnpackError> {
        if rel.as_os_str().is_empty() {
            return rustix::fs::openat(
                &self.root,
                ".",
                OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| self.io(entry)(e.into()));
        }
        match rustix::fs::openat2(
            &self.root,
            rel,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
            resolve_flags(),
        ) {
            Ok(fd) => Ok(fd),
            Err(rustix::io::Errno::NOENT) => {
                let parent = self.open_dir(rel.parent().unwrap_or(Path::new("")), entry)?;
                let name = rel
                    .file_name()
                    .expect("a non-empty clean path has a file name");
                match rustix::fs::mkdirat(&parent, name, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                    Err(e) => return Err(self.io(entry)(e.into())),
                }
                self.open_dir(rel, entry)
            }
            Err(rustix::io::Errno::LOOP) | Err(rustix::io::Errno::XDEV) => {
                Err(UnpackError::Unsafe {
                    entry: entry.into(),
                    reason: "parent directory is a symlink",
                })
            }
            Err(rustix::io::Errno::NOTDIR) => Err(UnpackError::Unsafe {
                entry: entry.into(),
                reason: "a parent component is not a directory",
            }),
            Err(e) => Err(self.io(entry)(e.into())),
        }
    }

    /// Removes whatever sits at `name` in `parent` unless both it and the new entry are dirs.
    fn clear(
        &mut self,
        parent: &OwnedFd,
        rel: &Path,
        name: &OsStr,
        new_is_dir: bool,
        entry: &str,
    ) -> Result<bool, UnpackError> {
        match rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Err(rustix::io::Errno::NOENT) => Ok(false),
            Err(e) => Err(self.io(entry)(e.into())),
            Ok(st) => {
                let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
                if is_dir && new_is_dir {
                    return Ok(true);
                }
                self.parent = None;
                if is_dir {
                    // The parent chain was resolved without symlinks and remove_dir_all does not
                    // follow them, so this stays inside the snapshot.
                    std::fs::remove_dir_all(self.dest.join(rel)).map_err(self.io(entry))?;
                } else {
                    rustix::fs::unlinkat(parent, name, AtFlags::empty())
                        .map_err(|e| self.io(entry)(e.into()))?;
                }
                Ok(false)
            }
        }
    }

    fn apply<R: Read>(
        &mut self,
        mut e: tar::Entry<'_, R>,
        stats: &mut UnpackStats,
    ) -> Result<(), UnpackError> {
        let raw = e.path().map_err(UnpackError::Tar)?.into_owned();
        let entry = raw.display().to_string();
        let rel = clean_path(&raw, &entry)?;
        let header = e.header().clone();
        let kind = header.entry_type();
        let mut mode = header.mode().map_err(UnpackError::Tar)? & 0o7777;
        let mut owner = (
            header.uid().map_err(UnpackError::Tar)?,
            header.gid().map_err(UnpackError::Tar)?,
        );
        let mtime = header.mtime().unwrap_or(0);
        let mut xattrs: Vec<(String, Vec<u8>)> = Vec::new();
        if let Some(exts) = e.pax_extensions().map_err(UnpackError::Tar)? {
            for ext in exts {
                let ext = ext.map_err(UnpackError::Tar)?;
                let Ok(key) = ext.key() else { continue };
                if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                    if name.starts_with(OVERLAY_XATTR_PREFIX) {
                        tracing::debug!(entry, xattr = name, "dropping overlay xattr from layer");
                        continue;
                    }
                    xattrs.push((name.to_string(), ext.value_bytes().to_vec()));
                } else if key == "uid" {
                    owner.0 = ext
                        .value()
                        .ok()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(owner.0);
                } else if key == "gid" {
                    owner.1 = ext
                        .value()
                        .ok()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(owner.1);
                }
            }
        }
        stats.entries += 1;

        if rel.as_os_str().is_empty() {
            // the archive's root directory: apply its metadata to the snapshot root
            if kind.is_dir() {
                let root = self.open_dir(Path::new(""), &entry)?;
                rustix::fs::fchown(&root, uid(owner.0), gid(owner.1))
                    .map_err(|er| self.io(&entry)(er.into()))?;
                rustix::fs::fchmod(&root, Mode::from_raw_mode(mode))
                    .map_err(|er| self.io(&entry)(er.into()))?;
                self.dir_times.push((rel, mtime));
            }
            return Ok(());
        }
        let name = rel
            .file_name()
            .expect("non-empty clean path")
            .to_os_string();
        let parent_rel = rel.parent().unwrap_or(Path::new("")).to_path_buf();
        let pdir = self.parent_dir(&parent_rel, &entry)?;
        let parent = &pdir.fd;
        let name_str = name.to_string_lossy();

        if let Some(target) = name_str.strip_prefix(WHITEOUT_PREFIX) {
            if name_str == OPAQUE {
                rustix::fs::fsetxattr(parent, "trusted.overlay.opaque", b"y", XattrFlags::empty())
                    .map_err(|er| self.io(&entry)(er.into()))?;
            } else if name_str.starts_with(META_PREFIX) {
                tracing::debug!(entry, "skipping whiteout metadata entry");
            } else {
                if target.is_empty() || target == "." || target == ".." {
                    return Err(UnpackError::Unsafe {
                        entry,
                        reason: "whiteout of an invalid name",
                    });
                }
                let wrel = parent_rel.join(target);
                self.clear(parent, &wrel, OsStr::new(target), false, &entry)?;
                rustix::fs::mknodat(
                    parent,
                    target,
                    FileType::CharacterDevice,
                    Mode::empty(),
                    rustix::fs::makedev(0, 0),
                )
                .map_err(|er| self.io(&entry)(er.into()))?;
            }
            return Ok(());
        }

        let nofollow = AtFlags::SYMLINK_NOFOLLOW;
        // Entries are created first and cleared out of the way only when the name is taken
        // (a later entry replacing an earlier one, or a directory listed twice): in a fresh
        // snapshot that is rare, so the common case costs no lookup.
        match kind {
            tar::EntryType::Directory => {
                // an existing directory is kept; its metadata is updated below
                self.create(parent, &rel, &name, true, &entry, || {
                    rustix::fs::mkdirat(parent, &name, Mode::from_raw_mode(0o700))
                })?;
                self.dir_times.push((rel.clone(), mtime));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let perm = mode & 0o777;
                let fd = self
                    .create(parent, &rel, &name, false, &entry, || {
                        rustix::fs::openat(
                            parent,
                            &name,
                            OFlags::CREATE
                                | OFlags::EXCL
                                | OFlags::WRONLY
                                | OFlags::NOFOLLOW
                                | OFlags::CLOEXEC,
                            Mode::from_raw_mode(perm),
                        )
                    })?
                    .expect("a regular file is never kept");
                let mut file = File::from(fd);
                let mut n = 0u64;
                loop {
                    let k = fill(&mut e, &mut self.buf).map_err(|er| match limit_of(&er) {
                        Some(limit) => UnpackError::TooLarge { limit },
                        None => self.io(&entry)(er),
                    })?;
                    if k == 0 {
                        break;
                    }
                    file.write_all(&self.buf[..k])
                        .map_err(|er| self.io(&entry)(er))?;
                    n += k as u64;
                }
                stats.content_bytes += n;
                // A new file is owned by our ids and gets the parent's group or ours: when
                // both are already the archive's, chown (and the chmod it would force, as
                // chown clears set-id bits) is not needed.
                let chown = owner.0 != self.ids.0 || owner.1 != self.ids.1 || pdir.gid != owner.1;
                if chown {
                    rustix::fs::fchown(&file, uid(owner.0), gid(owner.1))
                        .map_err(|er| self.io(&entry)(er.into()))?;
                }
                if chown || mode & 0o7000 != 0 || perm & !self.umask != perm {
                    rustix::fs::fchmod(&file, Mode::from_raw_mode(mode))
                        .map_err(|er| self.io(&entry)(er.into()))?;
                }
                for (k, v) in &xattrs {
                    rustix::fs::fsetxattr(&file, k.as_str(), v, XattrFlags::empty())
                        .map_err(|er| self.io(&entry)(er.into()))?;
                }
                rustix::fs::futimens(&file, &timestamps(mtime))
                    .map_err(|er| self.io(&entry)(er.into()))?;
                return Ok(());
            }
            tar::EntryType::Symlink => {
                let target =
                    e.link_name()
                        .map_err(UnpackError::Tar)?
                        .ok_or(UnpackError::Unsafe {
                            entry: entry.clone(),
                            reason: "symlink without a target",
                        })?;
                self.create(parent, &rel, &name, false, &entry, || {
                    rustix::fs::symlinkat(target.as_os_str(), parent, &name)
                })?;
                mode = 0; // symlinks have no mode of their own
            }
            tar::EntryType::Link => {
                let raw_target =
                    e.link_name()
                        .map_err(UnpackError::Tar)?
                        .ok_or(UnpackError::Unsafe {
                            entry: entry.clone(),
                            reason: "hardlink without a target",
                        })?;
                let target = clean_path(&raw_target, &entry).map_err(|_| UnpackError::Unsafe {
                    entry: entry.clone(),
                    reason: "hardlink target outside the layer",
                })?;
                if target.as_os_str().is_empty() {
                    return Err(UnpackError::Unsafe {
                        entry,
                        reason: "hardlink to the layer root",
                    });
                }
                let tparent = match self.open_dir_existing(target.parent().unwrap_or(Path::new("")))
                {
                    Some(fd) => fd,
                    None => {
                        return Err(UnpackError::Unsafe {
                            entry,
                            reason: "hardlink target is not inside this layer",
                        })
                    }
                };
                let tname = target.file_name().expect("non-empty");
                let linked = self.create(parent, &rel, &name, false, &entry, || {
                    rustix::fs::linkat(&tparent, tname, parent, &name, AtFlags::empty())
                });
                match linked {
                    Ok(_) => {}
                    Err(UnpackError::Io { source, .. })
                        if source.raw_os_error()
                            == Some(rustix::io::Errno::NOENT.raw_os_error()) =>
                    {
                        return Err(UnpackError::Unsafe {
                            entry,
                            reason: "hardlink target is not inside this layer",
                        })
                    }
                    Err(er) => return Err(er),
                }
                return Ok(()); // a hardlink shares the target's metadata
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let ft = match kind {
                    tar::EntryType::Char => FileType::CharacterDevice,
                    tar::EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                let dev: Dev = rustix::fs::makedev(
                    header.device_major().ok().flatten().unwrap_or(0),
                    header.device_minor().ok().flatten().unwrap_or(0),
                );
                self.create(parent, &rel, &name, false, &entry, || {
                    rustix::fs::mknodat(parent, &name, ft, Mode::from_raw_mode(0o600), dev)
                })?;
            }
            tar::EntryType::XGlobalHeader
            | tar::EntryType::XHeader
            | tar::EntryType::GNULongName
            | tar::EntryType::GNULongLink => {
                return Ok(());
            }
            _ => {
                tracing::debug!(entry, "skipping unsupported tar entry type");
                return Ok(());
            }
        }
        rustix::fs::chownat(parent, &name, uid(owner.0), gid(owner.1), nofollow)
            .map_err(|er| self.io(&entry)(er.into()))?;
        if kind != tar::EntryType::Symlink {
            rustix::fs::chmodat(parent, &name, Mode::from_raw_mode(mode), AtFlags::empty())
                .map_err(|er| self.io(&entry)(er.into()))?;
        }
        if !xattrs.is_empty() {
            let path = format!("/proc/self/fd/{}/", std::os::fd::AsRawFd::as_raw_fd(parent));
            let mut p = PathBuf::from(path);
            p.push(&name);
            for (k, v) in &xattrs {
                rustix::fs::lsetxattr(&p, k.as_str(), v, XattrFlags::empty())
                    .map_err(|er| self.io(&entry)(er.into()))?;
            }
        }
        if kind != tar::EntryType::Directory {
            rustix::fs::utimensat(parent, &name, &timestamps(mtime), nofollow)
                .map_err(|er| self.io(&entry)(er.into()))?;
        }
        Ok(())
    }

    /// Runs `make` to create `name` in `parent`; if the name is taken, clears it (keeping an
    /// existing directory when `is_dir`) and runs `make` once more. `None`: a directory was
    /// kept.
    fn create<T>(
        &mut self,
        parent: &OwnedFd,
        rel: &Path,
        name: &OsStr,
        is_dir: bool,
        entry: &str,
        mut make: impl FnMut() -> rustix::io::Result<T>,
    ) -> Result<Option<T>, UnpackError> {
        match make() {
            Ok(v) => Ok(Some(v)),
            Err(rustix::io::Errno::EXIST) => {
                if self.clear(parent, rel, name, is_dir, entry)? {
                    return Ok(None);
                }
                make().map(Some).map_err(|e| self.io(entry)(e.into()))
            }
            Err(e) => Err(self.io(entry)(e.into())),
        }
    }

    /// The directory `rel` (created as needed), from the one-entry cache when it holds it.
    fn parent_dir(&mut self, rel: &Path, entry: &str) -> Result<Rc<ParentDir>, UnpackError> {
        if let Some((cached, dir)) = &self.parent {
            if cached == rel {
                return Ok(dir.clone());
            }
        }
        let fd = self.open_dir(rel, entry)?;
        let st = rustix::fs::fstat(&fd).map_err(|e| self.io(entry)(e.into()))?;
        let dir = Rc::new(ParentDir {
            fd,
            gid: u64::from(st.st_gid),
        });
        self.parent = Some((rel.to_path_buf(), dir.clone()));
        Ok(dir)
    }

    fn open_dir_existing(&self, rel: &Path) -> Option<OwnedFd> {
        if rel.as_os_str().is_empty() {
            return rustix::fs::openat(
                &self.root,
                ".",
                OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .ok();
        }
        rustix::fs::openat2(
            &self.root,
            rel,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
            resolve_flags(),
        )
        .ok()
    }

    fn finish(&mut self) -> Result<(), UnpackError> {
        // deepest first, so setting a child's time does not disturb its parent's
        let mut times = std::mem::take(&mut self.dir_times);
        times.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
        for (rel, mtime) in times {
            if let Some(fd) = self.open_dir_existing(&rel) {
                rustix::fs::futimens(fd.as_fd(), &timestamps(mtime))
                    .map_err(|e| self.io(&rel.display().to_string())(e.into()))?;
            }
        }
        Ok(())
    }
}

/// Applies the uncompressed tar `reader` to the directory `dest` (which must exist and be
/// empty), then reads `reader` to its end so that a hash over it covers the whole stream.
pub fn unpack_layer<R: Read>(reader: R, dest: &Path) -> Result<UnpackStats, UnpackError> {
    let root = rustix::fs::open(
        dest,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| UnpackError::Io {
        entry: String::new(),
        path: dest.to_path_buf(),
        source: e.into(),
    })?;
    let mut unpacker = Unpacker {
        root,
        dest,
        dir_times: Vec::new(),
        parent: None,
        ids: (
            u64::from(rustix::process::geteuid().as_raw()),
            u64::from(rustix::process::getegid().as_raw()),
        ),
        umask: current_umask(),
        buf: vec![0; COPY_BUF],
    };
    let mut archive = tar::Archive::new(reader);
    let mut stats = UnpackStats::default();
    let tar_err = |e: io::Error| match limit_of(&e) {
        Some(limit) => UnpackError::TooLarge { limit },
        None => UnpackError::Tar(e),
    };
    for entry in archive.entries().map_err(tar_err)? {
        let entry = entry.map_err(tar_err)?;
        unpacker.apply(entry, &mut stats)?;
    }
    unpacker.finish()?;
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(tar_err)?;
    Ok(stats)
}

/// Whether `name` is a whiteout entry in OCI form.
pub fn is_whiteout(name: &OsStr) -> bool {
    name.as_bytes().starts_with(WHITEOUT_PREFIX.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_paths() {
        assert_eq!(
            clean_path(Path::new("./a/b"), "x").expect("ok"),
            PathBuf::from("a/b")
        );
        assert_eq!(
            clean_path(Path::new("./"), "x").expect("ok"),
            PathBuf::new()
        );
        assert!(matches!(
            clean_path(Path::new("a/../../b"), "x"),
            Err(UnpackError::Unsafe { .. })
        ));
        assert!(matches!(
            clean_path(Path::new("/etc/passwd"), "x"),
            Err(UnpackError::Unsafe { .. })
        ));
    }

    #[test]
    fn limited_reader_stops() {
        let data = [0u8; 100];
        let mut r = LimitedReader::new(&data[..], 50);
        let err = io::copy(&mut r, &mut io::sink()).expect_err("over the limit");
        assert_eq!(limit_of(&err), Some(50));
    }

    #[test]
    fn whiteout_names() {
        assert!(is_whiteout(OsStr::new(".wh.foo")));
        assert!(!is_whiteout(OsStr::new("foo.wh.")));
    }
}
