//! The seam between the cgroup logic and the kernel's cgroup file systems: a small trait with
//! the handful of file operations cgroupfs supports, the real implementation, and helpers that
//! turn its io errors into [`CgroupError`]s naming the file (and value).

use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use super::devices::DeviceProgram;
use super::error::{CgroupError, WrapIo};

/// File operations on a cgroup file system. cgroupfs differs from a plain directory tree:
/// `mkdir` makes the kernel create control files, control files can be neither created nor
/// unlinked, and `rmdir` removes a cgroup that still holds control files. [`HostCgroupFs`] is
/// the kernel; the test fake models those rules on a tempdir.
pub trait CgroupFs: fmt::Debug + Send + Sync {
    /// Creates one directory (not its parents); `AlreadyExists` when it is there.
    fn create_dir(&self, path: &Path) -> io::Result<()>;
    /// Removes one cgroup directory; `NotFound` when it is gone, `EBUSY` while it has
    /// processes or child cgroups.
    fn remove_dir(&self, path: &Path) -> io::Result<()>;
    /// Reads a whole control file.
    fn read(&self, path: &Path) -> io::Result<String>;
    /// Writes `value` to an existing control file in one `write(2)`; never creates files.
    fn write(&self, path: &Path, value: &str) -> io::Result<()>;
    /// Whether `path` exists.
    fn exists(&self, path: &Path) -> bool;
    /// The child directories (child cgroups) of `path`.
    fn sub_dirs(&self, path: &Path) -> io::Result<Vec<PathBuf>>;
    /// Makes `program` the v2 device filter of the cgroup `dir` (an eBPF program attached to
    /// the directory), replacing any attached before.
    fn set_device_program(&self, dir: &Path, program: &DeviceProgram) -> io::Result<()>;
}

/// The kernel's cgroup file systems, reached through ordinary file calls.
#[derive(Debug, Default, Clone, Copy)]
pub struct HostCgroupFs;

impl CgroupFs for HostCgroupFs {
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir(path)
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir(path)
    }

    fn read(&self, path: &Path) -> io::Result<String> {
        std::fs::read_to_string(path)
    }

    fn write(&self, path: &Path, value: &str) -> io::Result<()> {
        // O_TRUNC without O_CREAT, as runc opens control files
        let mut file = OpenOptions::new().write(true).truncate(true).open(path)?;
        file.write_all(value.as_bytes())
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn sub_dirs(&self, path: &Path) -> io::Result<Vec<PathBuf>> {
        let mut dirs = Vec::new();
        for entry in std::fs::read_dir(path)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                dirs.push(entry.path());
            }
        }
        dirs.sort();
        Ok(dirs)
    }

    fn set_device_program(&self, dir: &Path, program: &DeviceProgram) -> io::Result<()> {
        super::bpf::replace_device_program(dir, program)
    }
}

/// Reads a control file, trimmed.
pub(crate) fn read_trimmed(fs: &dyn CgroupFs, path: &Path) -> Result<String, CgroupError> {
    Ok(fs.read(path).wrap_read(path)?.trim().to_owned())
}

/// Reads a control file, trimmed; `None` when it does not exist (controller absent).
pub(crate) fn read_optional(fs: &dyn CgroupFs, path: &Path) -> Result<Option<String>, CgroupError> {
    match fs.read(path) {
        Ok(text) => Ok(Some(text.trim().to_owned())),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).wrap_read(path),
    }
}

/// Reads a control file holding one unsigned number.
pub(crate) fn read_u64(fs: &dyn CgroupFs, path: &Path) -> Result<u64, CgroupError> {
    let text = read_trimmed(fs, path)?;
    parse_u64(path, &text)
}

/// Reads a control file holding one number; `None` when the file does not exist.
pub(crate) fn read_u64_optional(
    fs: &dyn CgroupFs,
    path: &Path,
) -> Result<Option<u64>, CgroupError> {
    read_optional(fs, path)?
        .map(|text| parse_u64(path, &text))
        .transpose()
}

/// Parses one unsigned number read from `path`.
pub(crate) fn parse_u64(path: &Path, text: &str) -> Result<u64, CgroupError> {
    text.trim().parse().map_err(|_| CgroupError::Parse {
        path: path.to_path_buf(),
        content: text.trim().to_owned(),
    })
}

/// Looks up `key` in a flat-keyed file (`key value` per line: `memory.stat`, `cpu.stat`,
/// `memory.events`, `memory.oom_control`, `cgroup.events`).
pub(crate) fn keyed_value(path: &Path, text: &str, key: &str) -> Result<Option<u64>, CgroupError> {
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        if fields.next() == Some(key) {
            let value = fields.next().unwrap_or("");
            return parse_u64(path, value).map(Some);
        }
    }
    Ok(None)
}

/// Writes a control file; a refusal names the file and the value.
pub(crate) fn write(fs: &dyn CgroupFs, path: &Path, value: &str) -> Result<(), CgroupError> {
    tracing::trace!(path = %path.display(), value, "cgroup write");
    fs.write(path, value).wrap_write(path, value)
}

/// Reads the pids listed in a `cgroup.procs` file; an absent file (cgroup gone) lists none.
pub(crate) fn read_procs(fs: &dyn CgroupFs, path: &Path) -> Result<Vec<i32>, CgroupError> {
    let Some(text) = read_optional(fs, path)? else {
        return Ok(Vec::new());
    };
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            line.trim().parse::<i32>().map_err(|_| CgroupError::Parse {
                path: path.to_path_buf(),
                content: line.trim().to_owned(),
            })
        })
        .collect()
}

/// Creates `dir` if needed; `Ok(true)` when this call created it.
pub(crate) fn ensure_dir(fs: &dyn CgroupFs, dir: &Path) -> Result<bool, CgroupError> {
    match fs.create_dir(dir) {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(err) => Err(err).wrap_create_dir(dir),
    }
}

/// Removes `dir` and every child cgroup below it, deepest first. A missing directory is fine;
/// `EBUSY` (processes still exiting) is retried until `timeout`.
pub(crate) fn remove_tree(
    fs: &dyn CgroupFs,
    dir: &Path,
    timeout: Duration,
) -> Result<(), CgroupError> {
    // the common case, a leaf: one rmdir, no listing
    match fs.remove_dir(dir) {
        Ok(()) => return Ok(()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(_) => {}
    }
    let children = match fs.sub_dirs(dir) {
        Ok(children) => children,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err).wrap_list_dir(dir),
    };
    for child in children {
        remove_tree(fs, &child, timeout)?;
    }
    let started = Instant::now();
    let mut delay = Duration::from_millis(1);
    loop {
        match fs.remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(err) if err.raw_os_error() == Some(libc::EBUSY) && started.elapsed() < timeout => {
                thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(20));
            }
            Err(err) => return Err(err).wrap_remove_dir(dir),
        }
    }
}

/// Polls `probe` until it yields a value or `timeout` passes; on timeout, returns the last
/// content the probe reported so the error can show it.
pub(crate) fn poll<T>(
    timeout: Duration,
    mut probe: impl FnMut() -> Result<Result<T, String>, CgroupError>,
) -> Result<Result<T, (String, Duration)>, CgroupError> {
    let started = Instant::now();
    let mut delay = Duration::from_micros(500);
    loop {
        match probe()? {
            Ok(value) => return Ok(Ok(value)),
            Err(last) => {
                let waited = started.elapsed();
                if waited >= timeout {
                    return Ok(Err((last, waited)));
                }
                thread::sleep(delay.min(timeout.saturating_sub(waited)));
                delay = (delay * 2).min(Duration::from_millis(10));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn cgroup_host_fs_never_creates_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("memory.max");
        let err = write(&HostCgroupFs, &path, "max").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
        assert_eq!(
            err.to_string(),
            format!("writing \"max\" to {}", path.display())
        );
        std::fs::write(&path, "123456\n").unwrap();
        write(&HostCgroupFs, &path, "42").unwrap();
        assert_eq!(read_u64(&HostCgroupFs, &path).unwrap(), 42);
    }

    #[test]
    fn cgroup_keyed_values_parse() {
        let path = Path::new("memory.events");
        let text = "low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\noom_group_kill 0\n";
        assert_eq!(keyed_value(path, text, "oom_kill").unwrap(), Some(2));
        assert_eq!(keyed_value(path, text, "oom").unwrap(), Some(1));
        assert_eq!(keyed_value(path, text, "absent").unwrap(), None);
        assert!(keyed_value(path, "oom_kill x\n", "oom_kill").is_err());
    }

    #[test]
    fn cgroup_poll_times_out_with_last_value() {
        let result: Result<(), (String, Duration)> =
            poll(Duration::from_millis(5), || Ok(Err("FREEZING".to_owned()))).unwrap();
        let (last, waited) = result.unwrap_err();
        assert_eq!(last, "FREEZING");
        assert!(waited >= Duration::from_millis(5));
    }
}
