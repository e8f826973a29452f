//! Layer unpacking against the real file system: overlay whiteouts, special files, metadata,
//! and hostile archives that must be refused without writing outside the snapshot.
//! Privileged: creates device nodes, sets trusted.* xattrs and ownership.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use berth_image::unpack::{unpack_layer, LimitedReader, UnpackError};
use berth_testkit::image::{feature_layer, TarBuilder};
use berth_testkit::priv_test;

fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    let n = rustix::fs::lgetxattr(path, name, &mut buf).ok()?;
    buf.truncate(n);
    Some(buf)
}

/// Every file under `dir`, for "nothing was written here" checks.
fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("readable") {
            let e = e.expect("entry");
            out.push(
                e.path()
                    .strip_prefix(dir)
                    .expect("under dir")
                    .display()
                    .to_string(),
            );
            if e.file_type().expect("type").is_dir() {
                stack.push(e.path());
            }
        }
    }
    out.sort();
    out
}

priv_test! {
    fn feature_layer_becomes_overlay_form() {
        let dir = tempfile::tempdir().expect("tempdir");
        let stats = unpack_layer(&feature_layer()[..], dir.path()).expect("unpacks");
        assert!(stats.entries >= 12, "{stats:?}");
        let p = dir.path();
        // whiteout: a 0:0 character device with the hidden name
        let wh = std::fs::symlink_metadata(p.join("etc/removeme")).expect("whiteout exists");
        assert!(wh.file_type().is_char_device());
        assert_eq!(wh.rdev(), 0);
        assert!(!p.join("etc/.wh.removeme").exists());
        // opaque dir
        assert_eq!(xattr(&p.join("opq"), "trusted.overlay.opaque").as_deref(), Some(&b"y"[..]));
        assert!(!p.join("opq/.wh..wh..opq").exists());
        assert_eq!(std::fs::read(p.join("opq/b")).expect("b"), b"visible in the opaque dir\n");
        // hardlink shares the inode
        let f = std::fs::metadata(p.join("data/file")).expect("file");
        let l = std::fs::metadata(p.join("data/link")).expect("link");
        assert_eq!(f.ino(), l.ino());
        assert_eq!(f.nlink(), 2);
        // symlink, fifo
        assert_eq!(std::fs::read_link(p.join("data/sym")).expect("symlink"), Path::new("file"));
        assert!(std::fs::symlink_metadata(p.join("data/fifo")).expect("fifo").file_type().is_fifo());
        // xattr, setuid, ownership, mtime
        assert_eq!(xattr(&p.join("data/file"), "user.berth").as_deref(), Some(&b"yes"[..]));
        assert_eq!(std::fs::metadata(p.join("data/suid")).expect("suid").permissions().mode() & 0o7777, 0o4755);
        let owned = std::fs::metadata(p.join("data/owned")).expect("owned");
        assert_eq!((owned.uid(), owned.gid(), owned.mode() & 0o777), (1000, 1000, 0o640));
        assert_eq!(f.mtime(), 1_700_000_000);
        assert_eq!(std::fs::metadata(p.join("data")).expect("dir").mtime(), 1_700_000_000, "dir mtimes are set last");
        // a name longer than 100 bytes (GNU long name)
        let long = p.join("data").join("d".repeat(80)).join("f".repeat(120));
        assert_eq!(std::fs::read(long).expect("long name"), b"long name\n");
    }
}

priv_test! {
    fn devices_and_replacements() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tar = TarBuilder::new()
            .chardev("null", 1, 3)
            .file("x", 0o644, b"first")
            .file("x", 0o600, b"second wins")
            .dir("d", 0o755)
            .file("d/inner", 0o644, b"gone")
            .file("d", 0o644, b"a file replaces the dir")
            .finish();
        unpack_layer(&tar[..], dir.path()).expect("unpacks");
        let m = std::fs::symlink_metadata(dir.path().join("null")).expect("dev");
        assert!(m.file_type().is_char_device());
        assert_eq!(m.rdev(), rustix::fs::makedev(1, 3));
        assert_eq!(std::fs::read(dir.path().join("x")).expect("x"), b"second wins");
        assert_eq!(std::fs::read(dir.path().join("d")).expect("d"), b"a file replaces the dir");
    }
}

priv_test! {
    fn shortcuts_keep_owners_modes_and_replacements_exact() {
        // the unpacker skips chown/chmod when creation already gives the archive's values and
        // reuses the previous entry's parent directory: check both against the cases where
        // they must not apply
        let dir = tempfile::tempdir().expect("tempdir");
        let tar = TarBuilder::new()
            .dir("sg", 0o2775)
            .file("ro", 0o444, b"read-only")
            .file("open", 0o777, b"wider than the umask")
            .file("sticky", 0o1755, b"sticky")
            .dir("p", 0o755)
            .file("p/a", 0o644, b"in the first p")
            .file("p", 0o644, b"a file replaces the dir")
            .dir("p", 0o750)
            .file("p/c", 0o644, b"in the second p")
            .symlink("s", "ro")
            .file("s", 0o600, b"a file replaces the symlink")
            .finish();
        unpack_layer(&tar[..], dir.path()).expect("unpacks");
        let p = dir.path();
        let mode = |n: &str| std::fs::symlink_metadata(p.join(n)).expect(n).mode() & 0o7777;
        assert_eq!(mode("ro"), 0o444);
        assert_eq!(mode("open"), 0o777);
        assert_eq!(mode("sticky"), 0o1755);
        assert_eq!(mode("sg"), 0o2775);
        assert_eq!(mode("p"), 0o750);
        assert_eq!(std::fs::read(p.join("p/c")).expect("p/c"), b"in the second p");
        assert!(!p.join("p/a").exists(), "the first p went with its contents");
        assert!(std::fs::symlink_metadata(p.join("s")).expect("s").is_file());
        assert_eq!(std::fs::read(p.join("s")).expect("s"), b"a file replaces the symlink");
    }
}

priv_test! {
    fn files_in_a_setgid_directory_get_the_archives_group() {
        // a layer whose directory is setgid to group 50: a root:root file in it must still end
        // up root:root, not inherit group 50
        let dir = tempfile::tempdir().expect("tempdir");
        let tar = TarBuilder::new()
            .dir_owned("staff", 0o2775, 0, 50)
            .file_owned("staff/mine", 0o644, b"root's", 0, 0)
            .file_owned("staff/theirs", 0o644, b"staff's", 0, 50)
            .finish();
        unpack_layer(&tar[..], dir.path()).expect("unpacks");
        let p = dir.path();
        let staff = std::fs::metadata(p.join("staff")).expect("staff");
        assert_eq!((staff.gid(), staff.mode() & 0o7777), (50, 0o2775));
        let mine = std::fs::metadata(p.join("staff/mine")).expect("mine");
        assert_eq!((mine.uid(), mine.gid(), mine.mode() & 0o7777), (0, 0, 0o644));
        let theirs = std::fs::metadata(p.join("staff/theirs")).expect("theirs");
        assert_eq!((theirs.uid(), theirs.gid()), (0, 50));
    }
}

fn assert_refused(tar: Vec<u8>, what: &str) {
    let base = tempfile::tempdir().expect("tempdir");
    let snap = base.path().join("snap");
    let outside = base.path().join("outside");
    std::fs::create_dir(&snap).expect("mkdir");
    std::fs::create_dir(&outside).expect("mkdir");
    std::fs::write(outside.join("victim"), b"untouched").expect("write");
    let before = listing(base.path());
    let err = unpack_layer(&tar[..], &snap).expect_err(what);
    assert!(matches!(err, UnpackError::Unsafe { .. }), "{what}: {err}");
    let msg = err.to_string();
    assert!(msg.contains("refusing layer entry"), "{what}: {msg}");
    assert_eq!(
        std::fs::read(outside.join("victim")).expect("victim"),
        b"untouched",
        "{what}"
    );
    let after: Vec<String> = listing(base.path())
        .into_iter()
        .filter(|p| !p.starts_with("snap/"))
        .collect();
    let before: Vec<String> = before
        .into_iter()
        .filter(|p| !p.starts_with("snap/"))
        .collect();
    assert_eq!(
        before, after,
        "{what}: nothing outside the snapshot may change"
    );
}

priv_test! {
    fn hostile_archives_are_refused() {
        assert_refused(TarBuilder::new().raw(tar::EntryType::Regular, b"../outside/victim", None, b"pwned").finish(), "dot-dot");
        assert_refused(TarBuilder::new().raw(tar::EntryType::Regular, b"a/../../outside/x", None, b"pwned").finish(), "nested dot-dot");
        assert_refused(TarBuilder::new().raw(tar::EntryType::Regular, b"/tmp/berth-abs-escape", None, b"pwned").finish(), "absolute");
        // write through a symlink that points outside
        let through = TarBuilder::new().symlink("evil", "../outside").file("evil/victim", 0o644, b"pwned").finish();
        assert_refused(through, "through symlink");
        // symlink to an absolute directory, then a file beneath it
        let abs_link = TarBuilder::new().symlink("etc", "/etc").file("etc/berth-escape", 0o644, b"pwned").finish();
        assert_refused(abs_link, "through absolute symlink");
        // hardlinks to outside
        let hl = TarBuilder::new().raw(tar::EntryType::Link, b"h", Some(b"../outside/victim"), b"").finish();
        assert_refused(hl, "hardlink to outside");
        let hl_abs = TarBuilder::new().raw(tar::EntryType::Link, b"h", Some(b"/etc/passwd"), b"").finish();
        assert_refused(hl_abs, "hardlink to absolute path");
        // hardlink through a symlinked directory
        let hl_sym = TarBuilder::new().symlink("s", "../outside").raw(tar::EntryType::Link, b"h", Some(b"s/victim"), b"").finish();
        assert_refused(hl_sym, "hardlink through symlink");
        assert!(!Path::new("/tmp/berth-abs-escape").exists() && !Path::new("/etc/berth-escape").exists());
    }
}

priv_test! {
    fn decompression_bound_stops_the_unpack() {
        let dir = tempfile::tempdir().expect("tempdir");
        let big = vec![0u8; 4 << 20];
        let tar = TarBuilder::new().file("zeros", 0o644, &big).finish();
        let err = unpack_layer(LimitedReader::new(&tar[..], 1 << 20), dir.path()).expect_err("over the bound");
        assert!(matches!(err, UnpackError::TooLarge { limit } if limit == 1 << 20), "{err}");
        assert!(err.to_string().contains("--max-layer-size"), "the error names the fix: {err}");
    }
}
