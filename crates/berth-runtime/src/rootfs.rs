//! The container's file system, built inside its new mount namespace: overlay (or bind) root,
//! the spec's mounts with every target resolved inside the root, devices, pivot_root, masked
//! and read-only paths.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount, Spec};
use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};

use crate::sys;

/// Why building the root failed; the stage names what was being done.
#[derive(Debug, thiserror::Error)]
#[error("{stage} {path}")]
pub struct RootfsError {
    /// What was being done.
    pub stage: &'static str,
    /// The path involved.
    pub path: String,
    /// The cause.
    #[source]
    pub source: io::Error,
}

fn err(stage: &'static str, path: impl AsRef<Path>) -> impl FnOnce(io::Error) -> RootfsError {
    let path = path.as_ref().display().to_string();
    move |source| RootfsError {
        stage,
        path,
        source,
    }
}

fn cstr(s: &str) -> CString {
    CString::new(s).unwrap_or_else(|_| CString::new(s.replace('\0', "")).expect("NULs removed"))
}

fn cpath(p: &Path) -> CString {
    cstr(&p.to_string_lossy())
}

// MS_* bits (stable kernel ABI)
const MS_RDONLY: u64 = 1;
const MS_NOSUID: u64 = 2;
const MS_NODEV: u64 = 4;
const MS_NOEXEC: u64 = 8;
const MS_SYNCHRONOUS: u64 = 16;
const MS_REMOUNT: u64 = 32;
const MS_MANDLOCK: u64 = 64;
const MS_DIRSYNC: u64 = 128;
const MS_NOATIME: u64 = 1024;
const MS_NODIRATIME: u64 = 2048;
const MS_BIND: u64 = 4096;
const MS_REC: u64 = 16384;
const MS_UNBINDABLE: u64 = 1 << 17;
const MS_PRIVATE: u64 = 1 << 18;
const MS_SLAVE: u64 = 1 << 19;
const MS_SHARED: u64 = 1 << 20;
const MS_RELATIME: u64 = 1 << 21;
const MS_STRICTATIME: u64 = 1 << 24;
const MNT_DETACH: i32 = 2;

/// OCI mount options parsed into flags, propagation and file-system data.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MountOptions {
    /// `MS_*` flags to set.
    pub flags: u64,
    /// Flags an option explicitly cleared (`rw`, `suid`, `dev`, `exec`...).
    pub cleared: u64,
    /// Propagation changes, applied after the mount.
    pub propagation: Vec<u64>,
    /// What goes to the file system as data (`mode=755,size=65536k`).
    pub data: String,
}

/// Parses OCI mount options.
pub fn parse_options(options: &[String]) -> MountOptions {
    let mut o = MountOptions::default();
    let mut data = Vec::new();
    for opt in options {
        let (set, clear) = match opt.as_str() {
            "ro" => (MS_RDONLY, 0),
            "rw" => (0, MS_RDONLY),
            "nosuid" => (MS_NOSUID, 0),
            "suid" => (0, MS_NOSUID),
            "nodev" => (MS_NODEV, 0),
            "dev" => (0, MS_NODEV),
            "noexec" => (MS_NOEXEC, 0),
            "exec" => (0, MS_NOEXEC),
            "sync" => (MS_SYNCHRONOUS, 0),
            "async" => (0, MS_SYNCHRONOUS),
            "dirsync" => (MS_DIRSYNC, 0),
            "remount" => (MS_REMOUNT, 0),
            "mand" => (MS_MANDLOCK, 0),
            "nomand" => (0, MS_MANDLOCK),
            "atime" => (0, MS_NOATIME),
            "noatime" => (MS_NOATIME, 0),
            "diratime" => (0, MS_NODIRATIME),
            "nodiratime" => (MS_NODIRATIME, 0),
            "bind" => (MS_BIND, 0),
            "rbind" => (MS_BIND | MS_REC, 0),
            "relatime" => (MS_RELATIME, 0),
            "norelatime" => (0, MS_RELATIME),
            "strictatime" => (MS_STRICTATIME, 0),
            "nostrictatime" => (0, MS_STRICTATIME),
            "private" => {
                o.propagation.push(MS_PRIVATE);
                continue;
            }
            "rprivate" => {
                o.propagation.push(MS_PRIVATE | MS_REC);
                continue;
            }
            "shared" => {
                o.propagation.push(MS_SHARED);
                continue;
            }
            "rshared" => {
                o.propagation.push(MS_SHARED | MS_REC);
                continue;
            }
            "slave" => {
                o.propagation.push(MS_SLAVE);
                continue;
            }
            "rslave" => {
                o.propagation.push(MS_SLAVE | MS_REC);
                continue;
            }
            "unbindable" => {
                o.propagation.push(MS_UNBINDABLE);
                continue;
            }
            "runbindable" => {
                o.propagation.push(MS_UNBINDABLE | MS_REC);
                continue;
            }
            other => {
                data.push(other.to_string());
                continue;
            }
        };
        o.flags = (o.flags | set) & !clear;
        o.cleared |= clear;
    }
    o.data = data.join(",");
    o
}

/// Propagation flags of `rootfsPropagation`.
pub fn propagation_of(name: &str) -> Option<u64> {
    Some(match name {
        "private" => MS_PRIVATE,
        "rprivate" => MS_PRIVATE | MS_REC,
        "shared" => MS_SHARED,
        "rshared" => MS_SHARED | MS_REC,
        "slave" => MS_SLAVE,
        "rslave" => MS_SLAVE | MS_REC,
        "unbindable" => MS_UNBINDABLE,
        "runbindable" => MS_UNBINDABLE | MS_REC,
        _ => return None,
    })
}

/// Opens `dest` (absolute, as seen in the container) beneath `root` with symlinks resolved
/// inside the root, creating missing directories (and the final file when `file` is set).
/// Returns an `O_PATH` fd to mount onto through `/proc/self/fd/N`.
pub fn open_in_root(root: &OwnedFd, dest: &Path, file: bool) -> io::Result<OwnedFd> {
    open_in_root_at_depth(root, dest, file, 0)
}

/// How many dangling symlinks [`open_in_root`] follows to make their targets (the kernel's
/// own limit for one lookup).
const MAX_SYMLINKS: usize = 40;

fn open_in_root_at_depth(
    root: &OwnedFd,
    dest: &Path,
    file: bool,
    depth: usize,
) -> io::Result<OwnedFd> {
    let flags = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
    // lexically, as the kernel resolves inside the root: ".." of the root is the root
    let mut rel = PathBuf::new();
    for c in dest.components() {
        match c {
            Component::Normal(n) => rel.push(n),
            Component::ParentDir => {
                rel.pop();
            }
            _ => {}
        }
    }
    if rel.as_os_str().is_empty() {
        return Ok(rustix::fs::openat2(
            root,
            ".",
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            flags,
        )?);
    }
    match rustix::fs::openat2(
        root,
        &rel,
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        flags,
    ) {
        Ok(fd) => return Ok(fd),
        Err(rustix::io::Errno::NOENT) => {}
        Err(e) => return Err(e.into()),
    }
    // the parent (made first, the same way, when it is missing too), then the last component
    // in it; each lookup resolved inside the root. Most mount points lack only their last
    // component (`/sys/fs/cgroup/cpu` on a fresh tmpfs), which this finds in one lookup.
    let parent = match rel.parent().filter(|p| !p.as_os_str().is_empty()) {
        None => rustix::fs::openat2(
            root,
            ".",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            flags,
        )?,
        Some(p) => match rustix::fs::openat2(
            root,
            p,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            flags,
        ) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => open_in_root_at_depth(root, p, false, depth)?,
            Err(e) => return Err(e.into()),
        },
    };
    let name = rel.file_name().unwrap_or_default();
    // the parent was opened O_PATH; mkdirat/openat accept it as a directory fd. Neither
    // follows a symlink in the last component, which would resolve on the host.
    let made = if file {
        rustix::fs::openat(
            &parent,
            name,
            OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
        .map(drop)
    } else {
        rustix::fs::mkdirat(&parent, name, Mode::from_raw_mode(0o755))
    };
    match made {
        Ok(()) => {}
        Err(rustix::io::Errno::EXIST) => {
            // a dangling symlink (`/etc/resolv.conf -> ../run/...` in many images): make
            // its target, inside the root; anything else was made meanwhile
            if let Ok(target) = rustix::fs::readlinkat(&parent, name, Vec::new()) {
                if depth >= MAX_SYMLINKS {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                let target = Path::new(std::ffi::OsStr::from_bytes(target.as_bytes()));
                let resolved = Path::new("/")
                    .join(rel.parent().unwrap_or(Path::new("")))
                    .join(target);
                open_in_root_at_depth(root, &resolved, file, depth + 1)?;
            }
        }
        Err(e) => return Err(e.into()),
    }
    Ok(rustix::fs::openat2(
        root,
        &rel,
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        flags,
    )?)
}

fn fd_path(fd: &OwnedFd) -> CString {
    cstr(&format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Mounts one spec mount beneath `root_path` (whose fd is `root`).
fn mount_one(root: &OwnedFd, m: &Mount) -> Result<(), RootfsError> {
    let dest = m.destination();
    let typ = m.typ().clone().unwrap_or_default();
    let opts = parse_options(m.options().as_deref().unwrap_or(&[]));
    let source = m.source().clone().unwrap_or_default();
    let is_bind = opts.flags & MS_BIND != 0 || typ == "bind";
    if typ == "cgroup" {
        return mount_cgroups(root, dest, &opts);
    }
    let file_target = is_bind
        && std::fs::metadata(&source)
            .map(|md| !md.is_dir())
            .unwrap_or(false);
    let target =
        open_in_root(root, dest, file_target).map_err(err("creating mount point", dest))?;
    let tpath = fd_path(&target);
    if is_bind {
        let src = cpath(&source);
        sys::mount(
            Some(&src),
            &tpath,
            None,
            MS_BIND | (opts.flags & MS_REC),
            None,
        )
        .map_err(err("bind-mounting", &source))?;
        // reopen: the mount point fd still refers to the covered directory
        let target =
            open_in_root(root, dest, file_target).map_err(err("reopening mount point", dest))?;
        let tpath = fd_path(&target);
        let extra = opts.flags & !(MS_BIND | MS_REC | MS_REMOUNT);
        if extra != 0 {
            sys::mount(None, &tpath, None, MS_BIND | MS_REMOUNT | extra, None)
                .map_err(err("remounting bind mount", dest))?;
        }
        for p in &opts.propagation {
            sys::mount(None, &tpath, None, *p, None)
                .map_err(err("setting propagation of", dest))?;
        }
        return Ok(());
    }
    let data = (!opts.data.is_empty()).then(|| cstr(&opts.data));
    let src = cpath(&source);
    let fstype = cstr(&typ);
    let result = sys::mount(
        Some(&src),
        &tpath,
        Some(&fstype),
        opts.flags,
        data.as_deref(),
    );
    match result {
        Ok(()) => {}
        // sysfs cannot be mounted in a network namespace we do not own (--network host):
        // bind the host's /sys instead, read-only, as runc does
        Err(e) if typ == "sysfs" && e.raw_os_error() == Some(libc::EPERM) => {
            sys::mount(Some(c"/sys"), &tpath, None, MS_BIND | MS_REC, None)
                .map_err(err("binding /sys at", dest))?;
            let target =
                open_in_root(root, dest, false).map_err(err("reopening mount point", dest))?;
            sys::mount(
                None,
                &fd_path(&target),
                None,
                MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                None,
            )
            .map_err(err("remounting /sys read-only at", dest))?;
        }
        Err(e) => return Err(err("mounting", format!("{} ({typ})", dest.display()))(e)),
    }
    for p in &opts.propagation {
        let target = open_in_root(root, dest, false).map_err(err("reopening mount point", dest))?;
        sys::mount(None, &fd_path(&target), None, *p, None)
            .map_err(err("setting propagation of", dest))?;
    }
    Ok(())
}

/// `/sys/fs/cgroup` in a private cgroup namespace: `cgroup2` on a v2 host; on a v1 (or hybrid)
/// host a tmpfs with each host hierarchy mounted again beneath it (the namespace makes the
/// container's own cgroup its root).
fn mount_cgroups(root: &OwnedFd, dest: &Path, opts: &MountOptions) -> Result<(), RootfsError> {
    let ro = opts.flags & MS_RDONLY;
    let base = MS_NOSUID | MS_NODEV | MS_NOEXEC;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(err("reading", "/proc/self/mountinfo"))?;
    let mut v1: Vec<(String, String)> = Vec::new(); // (relative dir under /sys/fs/cgroup, super options)
    let mut v2_at: Option<String> = None;
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let mountpoint = pre.split(' ').nth(4).unwrap_or("");
        let mut post = post.split(' ');
        let fstype = post.next().unwrap_or("");
        let _src = post.next();
        let superopts = post.next().unwrap_or("");
        let Some(rel) = mountpoint.strip_prefix("/sys/fs/cgroup") else {
            continue;
        };
        let rel = rel.trim_start_matches('/').to_string();
        match fstype {
            "cgroup2" => v2_at = Some(rel),
            "cgroup" => {
                let controllers: Vec<&str> = superopts
                    .split(',')
                    .filter(|o| !matches!(*o, "rw" | "ro") && !o.starts_with("relatime"))
                    .collect();
                v1.push((rel, controllers.join(",")));
            }
            _ => {}
        }
    }
    let target = open_in_root(root, dest, false).map_err(err("creating mount point", dest))?;
    if v1.is_empty() {
        // pure v2
        sys::mount(
            Some(c"cgroup"),
            &fd_path(&target),
            Some(c"cgroup2"),
            base | ro,
            None,
        )
        .map_err(err("mounting cgroup2 at", dest))?;
        return Ok(());
    }
    sys::mount(
        Some(c"tmpfs"),
        &fd_path(&target),
        Some(c"tmpfs"),
        base,
        Some(c"mode=755"),
    )
    .map_err(err("mounting tmpfs at", dest))?;
    // the tmpfs just mounted (the fd above is the directory it covers): the hierarchies'
    // mount points are made in it directly, nothing in it can be a symlink yet
    let tmpfs = open_in_root(root, dest, false).map_err(err("opening", dest))?;
    let mount_point = |rel: &str| -> Result<OwnedFd, RootfsError> {
        let sub = dest.join(rel);
        if rel.contains('/') {
            return open_in_root(root, &sub, false).map_err(err("creating mount point", &sub));
        }
        match rustix::fs::mkdirat(&tmpfs, rel, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(err("creating mount point", &sub)(e.into())),
        }
        rustix::fs::openat(
            &tmpfs,
            rel,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| err("opening mount point", &sub)(e.into()))
    };
    for (rel, controllers) in &v1 {
        let sub = dest.join(rel);
        let t = mount_point(rel)?;
        let data = cstr(controllers);
        sys::mount(
            Some(c"cgroup"),
            &fd_path(&t),
            Some(c"cgroup"),
            base | ro,
            Some(&data),
        )
        .map_err(err("mounting cgroup hierarchy at", &sub))?;
    }
    if let Some(rel) = v2_at.filter(|r| !r.is_empty()) {
        let sub = dest.join(&rel);
        let t = mount_point(&rel)?;
        sys::mount(
            Some(c"cgroup"),
            &fd_path(&t),
            Some(c"cgroup2"),
            base | ro,
            None,
        )
        .map_err(err("mounting cgroup2 at", &sub))?;
    }
    // the host's convenience links (cpu -> cpu,cpuacct)
    if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
        for e in entries.flatten() {
            if let Ok(target_link) = std::fs::read_link(e.path()) {
                let name = e.file_name();
                let _ = rustix::fs::symlinkat(target_link.as_os_str(), &tmpfs, name.as_os_str());
            }
        }
    }
    if ro != 0 {
        sys::mount(
            None,
            &fd_path(&tmpfs),
            None,
            MS_BIND | MS_REMOUNT | MS_RDONLY | base,
            None,
        )
        .map_err(err("remounting read-only", dest))?;
    }
    Ok(())
}

/// What making device nodes one after the other shares: the directory the last one went in
/// (most go in `/dev`), opened once, and who makes them.
struct DeviceMaker {
    last_dir: Option<(PathBuf, OwnedFd)>,
    euid: u32,
    egid: u32,
}

fn create_device(
    root: &OwnedFd,
    d: &LinuxDevice,
    maker: &mut DeviceMaker,
) -> Result<(), RootfsError> {
    let path = d.path();
    let parent_path = path.parent().unwrap_or(Path::new("/"));
    let name = path.file_name().ok_or_else(|| {
        err("creating device", path)(io::Error::from(io::ErrorKind::InvalidInput))
    })?;
    if maker
        .last_dir
        .as_ref()
        .is_none_or(|(p, _)| p != parent_path)
    {
        let parent = open_in_root(root, parent_path, false)
            .map_err(err("creating device directory", parent_path))?;
        // the parent fd is O_PATH; mknodat needs a real directory fd
        let fd = rustix::fs::openat(
            &parent,
            ".",
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| err("opening device directory", parent_path)(e.into()))?;
        maker.last_dir = Some((parent_path.to_path_buf(), fd));
    }
    let pdir = &maker.last_dir.as_ref().expect("opened above").1;
    let ft = match d.typ() {
        LinuxDeviceType::B => FileType::BlockDevice,
        LinuxDeviceType::P => FileType::Fifo,
        _ => FileType::CharacterDevice,
    };
    let dev = rustix::fs::makedev(d.major() as u32, d.minor() as u32);
    // the caller cleared the umask: the node gets its mode exactly
    let mode = Mode::from_raw_mode(d.file_mode().unwrap_or(0o666));
    let made = match rustix::fs::mknodat(pdir, name, ft, mode, dev) {
        // the image's own node (or anything else) gives way
        Err(rustix::io::Errno::EXIST) => {
            let _ = rustix::fs::unlinkat(pdir, name, rustix::fs::AtFlags::empty());
            rustix::fs::mknodat(pdir, name, ft, mode, dev)
        }
        other => other,
    };
    match made {
        Ok(()) => {}
        // in a user namespace nodes cannot be made: bind the host's node instead, as runc does
        Err(rustix::io::Errno::PERM) if in_user_namespace() => {
            let target = open_in_root(root, path, true).map_err(err("creating device", path))?;
            sys::mount(Some(&cpath(path)), &fd_path(&target), None, MS_BIND, None)
                .map_err(err("binding host device", path))?;
            return Ok(());
        }
        Err(e) => return Err(err("creating device", path)(e.into())),
    }
    let (uid, gid) = (d.uid().unwrap_or(0), d.gid().unwrap_or(0));
    if (uid, gid) != (maker.euid, maker.egid) {
        rustix::fs::chownat(
            pdir,
            name,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| err("chowning device", path)(e.into()))?;
    }
    Ok(())
}

/// Whether this process is in a user namespace other than the initial one.
fn in_user_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map")
        .map(|m| m.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"])
        .unwrap_or(false)
}

/// What the child needs to build its root.
pub struct RootfsPlan<'a> {
    /// The spec.
    pub spec: &'a Spec,
    /// Absolute path of the root directory (bundle-relative already resolved).
    pub rootfs: PathBuf,
    /// Overlay mount data to mount at `rootfs` first (berth's own images), if any.
    pub overlay: Option<String>,
    /// The console pty slave path, bind-mounted at /dev/console when a terminal is used.
    pub console: Option<PathBuf>,
    /// Runs after every mount and device, just before pivot_root (createContainer hooks);
    /// its error stops the setup.
    pub before_pivot: Option<&'a dyn Fn() -> Result<(), io::Error>>,
}

/// Builds the root inside the (new) mount namespace and pivots into it.
///
/// `before_cgroup` runs before the first cgroup mount and before the root is pivoted (so at
/// least once); it returns false to stop the setup (the caller has the reason).
pub fn setup(
    plan: &RootfsPlan<'_>,
    before_cgroup: &mut dyn FnMut() -> bool,
) -> Result<(), RootfsError> {
    let linux = plan.spec.linux().clone().unwrap_or_default();
    // keep host mounts from propagating in and ours from propagating out
    let prop = linux
        .rootfs_propagation()
        .as_deref()
        .and_then(propagation_of)
        .unwrap_or(MS_SLAVE | MS_REC);
    sys::mount(None, c"/", None, prop, None).map_err(err("setting root propagation", "/"))?;
    let rootfs = cpath(&plan.rootfs);
    if prop & MS_SHARED != 0 {
        // pivot_root refuses a new root that is shared or whose parent mount is: make the
        // mount holding the root private before the root is bound from it, as runc does
        // (the first ancestor that is a mount point); "/" is made shared after the pivot
        let mut dir = plan.rootfs.parent();
        while let Some(d) = dir {
            match sys::mount(None, &cpath(d), None, MS_PRIVATE, None) {
                Ok(()) => break,
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => dir = d.parent(),
                Err(e) => return Err(err("making the root's parent mount private", d)(e)),
            }
        }
    }
    match &plan.overlay {
        Some(data) => {
            let mounted = sys::mount(
                Some(c"overlay"),
                &rootfs,
                Some(c"overlay"),
                0,
                Some(&cstr(data)),
            );
            match (mounted, data.strip_suffix(",volatile")) {
                // a kernel before 5.10 has no volatile overlays: a synced one does the same
                (Err(e), Some(synced)) if e.raw_os_error() == Some(libc::EINVAL) => sys::mount(
                    Some(c"overlay"),
                    &rootfs,
                    Some(c"overlay"),
                    0,
                    Some(&cstr(synced)),
                ),
                (r, _) => r,
            }
            .map_err(err("mounting overlay root at", &plan.rootfs))?
        }
        // pivot_root needs the new root to be a mount point
        None => sys::mount(Some(&rootfs), &rootfs, None, MS_BIND | MS_REC, None)
            .map_err(err("bind-mounting root", &plan.rootfs))?,
    }
    let root = rustix::fs::open(
        &plan.rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| err("opening root", &plan.rootfs)(e.into()))?;
    let mounts = plan.spec.mounts().clone().unwrap_or_default();
    for m in &mounts {
        if matches!(m.typ().as_deref(), Some("cgroup" | "cgroup2")) && !before_cgroup() {
            return Err(RootfsError {
                stage: "waiting for the runtime parent before mounting",
                path: m.destination().display().to_string(),
                source: io::Error::other("the runtime parent failed"),
            });
        }
        mount_one(&root, m)?;
    }
    if !before_cgroup() {
        return Err(RootfsError {
            stage: "waiting for the runtime parent before entering",
            path: plan.rootfs.display().to_string(),
            source: io::Error::other("the runtime parent failed"),
        });
    }
    let dev_is_tmpfs = mounts.iter().any(|m| m.destination() == Path::new("/dev"));
    if dev_is_tmpfs {
        let mut devices = crate::defaults::default_devices();
        for d in linux.devices().clone().unwrap_or_default() {
            devices.retain(|x| x.path() != d.path());
            devices.push(d);
        }
        // mknod applies the umask: cleared while the nodes are made, so each gets its mode
        let umask = rustix::process::umask(Mode::empty());
        let mut maker = DeviceMaker {
            last_dir: None,
            euid: rustix::process::geteuid().as_raw(),
            egid: rustix::process::getegid().as_raw(),
        };
        let made = devices
            .iter()
            .try_for_each(|d| create_device(&root, d, &mut maker));
        rustix::process::umask(umask);
        made?;
        let dev = open_in_root(&root, Path::new("/dev"), false).map_err(err("opening", "/dev"))?;
        for (link, target) in [
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
            ("core", "/proc/kcore"),
            ("ptmx", "pts/ptmx"),
        ] {
            let _ = rustix::fs::symlinkat(target, &dev, link);
        }
        if let Some(console) = &plan.console {
            let t = open_in_root(&root, Path::new("/dev/console"), true)
                .map_err(err("creating", "/dev/console"))?;
            sys::mount(Some(&cpath(console)), &fd_path(&t), None, MS_BIND, None)
                .map_err(err("binding console", console))?;
        }
    }
    drop(root);
    if let Some(hook) = plan.before_pivot {
        hook().map_err(err("running createContainer hooks in", &plan.rootfs))?;
    }
    // pivot_root(".", ".") then detach the old root, as runc does: no temporary directory needed
    std::env::set_current_dir(&plan.rootfs).map_err(err("entering root", &plan.rootfs))?;
    rustix::process::pivot_root(".", ".")
        .map_err(|e| err("pivot_root into", &plan.rootfs)(e.into()))?;
    // the old root is stacked on top of "."; make it private so the detach does not propagate
    sys::mount(None, c".", None, MS_SLAVE | MS_REC, None)
        .map_err(err("making old root a slave", "/"))?;
    sys::umount2(c".", MNT_DETACH).map_err(err("detaching old root", "/"))?;
    std::env::set_current_dir("/").map_err(err("entering new root", "/"))?;
    if prop & MS_SHARED != 0 {
        sys::mount(None, c"/", None, prop, None).map_err(err("setting root propagation", "/"))?;
    }
    Ok(())
}

/// After pivot_root: sysctls, read-only paths, masked paths, read-only root.
pub fn finish(spec: &Spec) -> Result<(), RootfsError> {
    let linux = spec.linux().clone().unwrap_or_default();
    // the old root's detachment made every mount a slave (or private): a mount that asked for
    // a propagation gets it again
    for m in spec.mounts().iter().flatten() {
        let opts = parse_options(m.options().as_deref().unwrap_or(&[]));
        if opts.propagation.is_empty() || m.typ().as_deref() == Some("cgroup") {
            continue;
        }
        let dest = cpath(m.destination());
        for p in &opts.propagation {
            sys::mount(None, &dest, None, *p, None)
                .map_err(err("setting propagation of", m.destination()))?;
        }
    }
    if let Some(sysctls) = linux.sysctl() {
        for (k, v) in sysctls {
            let path = format!("/proc/sys/{}", k.replace('.', "/"));
            std::fs::write(&path, v).map_err(err("writing sysctl", &path))?;
        }
    }
    for p in linux.readonly_paths().clone().unwrap_or_default() {
        let c = cstr(&p);
        match sys::mount(Some(&c), &c, None, MS_BIND | MS_REC, None) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(err("binding read-only path", &p)(e)),
        }
        sys::mount(
            None,
            &c,
            None,
            MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC | MS_NOSUID | MS_NODEV | MS_NOEXEC,
            None,
        )
        .or_else(|_| {
            sys::mount(
                None,
                &c,
                None,
                MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC,
                None,
            )
        })
        .map_err(err("remounting read-only", &p))?;
    }
    for p in linux.masked_paths().clone().unwrap_or_default() {
        let c = cstr(&p);
        let md = match std::fs::metadata(&p) {
            Ok(md) => md,
            Err(_) => continue,
        };
        let r = if md.is_dir() {
            sys::mount(Some(c"tmpfs"), &c, Some(c"tmpfs"), MS_RDONLY, None)
        } else {
            sys::mount(Some(c"/dev/null"), &c, None, MS_BIND, None)
        };
        r.map_err(err("masking", &p))?;
    }
    if spec
        .root()
        .as_ref()
        .is_some_and(|r| r.readonly() == Some(true))
    {
        sys::mount(None, c"/", None, MS_BIND | MS_REMOUNT | MS_RDONLY, None)
            .map_err(err("remounting root read-only", "/"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_into_flags_and_data() {
        let o = parse_options(&[
            "nosuid".into(),
            "strictatime".into(),
            "mode=755".into(),
            "size=65536k".into(),
        ]);
        assert_eq!(o.flags, MS_NOSUID | MS_STRICTATIME);
        assert_eq!(o.data, "mode=755,size=65536k");
        let o = parse_options(&["rbind".into(), "ro".into(), "rprivate".into()]);
        assert_eq!(o.flags, MS_BIND | MS_REC | MS_RDONLY);
        assert_eq!(o.propagation, vec![MS_PRIVATE | MS_REC]);
        let o = parse_options(&["ro".into(), "rw".into()]);
        assert_eq!(o.flags, 0, "a later rw clears an earlier ro");
        assert_eq!(propagation_of("rslave"), Some(MS_SLAVE | MS_REC));
        assert_eq!(propagation_of("bogus"), None);
    }

    fn root_fd(dir: &Path) -> OwnedFd {
        rustix::fs::open(dir, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).expect("ok")
    }

    #[test]
    fn mount_points_are_made_inside_the_root() {
        let tmp = tempfile::tempdir().expect("ok");
        let root = tmp.path().join("root");
        std::fs::create_dir(&root).expect("ok");
        let fd = root_fd(&root);
        // missing parents are made too
        open_in_root(&fd, Path::new("/sys/fs/cgroup/cpu"), false).expect("ok");
        assert!(root.join("sys/fs/cgroup/cpu").is_dir());
        open_in_root(&fd, Path::new("/etc/deep/hosts"), true).expect("ok");
        assert!(root.join("etc/deep/hosts").is_file());
        // an existing path is opened as it is, a file stays a file
        open_in_root(&fd, Path::new("/etc/deep/hosts"), true).expect("ok");
        open_in_root(&fd, Path::new("/"), false).expect("ok");
        // ".." cannot leave the root
        open_in_root(&fd, Path::new("/../../up"), false).expect("ok");
        assert!(root.join("up").is_dir());
    }

    #[test]
    fn dangling_symlinks_get_their_targets_made_inside_the_root() {
        let tmp = tempfile::tempdir().expect("ok");
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("etc")).expect("ok");
        // as in images whose resolv.conf points at a resolver's runtime directory
        std::os::unix::fs::symlink("../run/resolve/stub.conf", root.join("etc/resolv.conf"))
            .expect("ok");
        // an absolute target names a path in the root, never the host's
        let host_target = tmp.path().join("host-side");
        std::os::unix::fs::symlink(&host_target, root.join("etc/hostname")).expect("ok");
        std::os::unix::fs::symlink(&host_target, root.join("dir-link")).expect("ok");
        let fd = root_fd(&root);
        open_in_root(&fd, Path::new("/etc/resolv.conf"), true).expect("ok");
        assert!(root.join("run/resolve/stub.conf").is_file());
        open_in_root(&fd, Path::new("/etc/hostname"), true).expect("ok");
        let inside = root.join(host_target.strip_prefix("/").expect("ok"));
        assert!(inside.is_file(), "{} made", inside.display());
        std::fs::remove_file(&inside).expect("ok");
        open_in_root(&fd, Path::new("/dir-link"), false).expect("ok");
        assert!(inside.is_dir());
        assert!(!host_target.exists(), "nothing made outside the root");
        // a loop is an error, not a hang
        std::os::unix::fs::symlink("b", root.join("a")).expect("ok");
        std::os::unix::fs::symlink("a", root.join("b")).expect("ok");
        let e = open_in_root(&fd, Path::new("/a"), true).expect_err("fails");
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
    }
}
