//! The cgroup module's error type and the `WrapIo` helper that names the path of every io error.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::detect::Controller;

/// Why a cgroup operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// A cgroup file (or the mount table) could not be read.
    #[error("reading {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The kernel refused a value written to a control file (`EINVAL`, `EBUSY`, `ENOENT`, ...).
    #[error("writing {value:?} to {path}")]
    Write {
        /// The control file.
        path: PathBuf,
        /// What was written.
        value: String,
        /// The kernel's answer.
        #[source]
        source: io::Error,
    },
    /// A cgroup hierarchy could not be remounted with a new option.
    #[error("remounting {path} with {options:?} (favordynmods needs Linux 6.0 or later)")]
    Remount {
        /// The cgroup mount.
        path: PathBuf,
        /// The options asked for.
        options: String,
        /// The kernel's answer.
        #[source]
        source: io::Error,
    },
    /// A cgroup directory could not be created.
    #[error("creating cgroup directory {path}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A cgroup directory could not be removed.
    #[error("removing cgroup directory {path}")]
    RemoveDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A cgroup directory could not be listed.
    #[error("listing cgroup directory {path}")]
    ListDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A kernel file held something this module does not understand.
    #[error("unexpected content in {path}: {content:?}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What it held (trimmed).
        content: String,
    },
    /// No cgroup file system (v1 controllers or a cgroup2 mount) was found under the root.
    #[error("no cgroup v1 controllers and no cgroup2 mount found at {root}")]
    NotMounted {
        /// The cgroup root that was searched.
        root: PathBuf,
    },
    /// A cgroup name or parent path is unusable as a directory name.
    #[error("invalid cgroup name {name:?}: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A resource field is set that this host (or this cgroup version) cannot enforce.
    #[error("{field} is not supported {reason}")]
    Unsupported {
        /// The OCI field, e.g. `linux.resources.memory.swappiness`.
        field: String,
        /// Why, e.g. "on cgroup v2".
        reason: String,
    },
    /// A resource field holds a value that cannot be written.
    #[error("invalid {field} {value:?}: {reason}")]
    InvalidValue {
        /// The OCI field.
        field: String,
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A resource field needs a controller that is not mounted (v1) or not enabled (v2).
    #[error("{field} needs the {controller} cgroup controller, which is not available for {path}")]
    ControllerUnavailable {
        /// The OCI field.
        field: String,
        /// The controller it needs.
        controller: Controller,
        /// The cgroup (v2) or the cgroup root (v1).
        path: PathBuf,
    },
    /// `check_before_update` found the new memory limit below what the cgroup already uses.
    #[error("memory limit {limit} is below the current usage {usage} of {path}")]
    LimitBelowUsage {
        /// The requested limit in bytes.
        limit: i64,
        /// The current usage in bytes.
        usage: u64,
        /// The usage file read.
        path: PathBuf,
    },
    /// A state change (freeze, thaw, process exit) did not settle in time.
    #[error("{path} did not reach {expected:?} within {waited:?} (last seen {last:?})")]
    Timeout {
        /// The file polled.
        path: PathBuf,
        /// The state waited for.
        expected: String,
        /// The last content read.
        last: String,
        /// How long it waited.
        waited: Duration,
    },
    /// The v2 device filter (an eBPF program) could not be loaded or attached.
    #[error("attaching the device filter for linux.resources.devices to {path}")]
    DeviceProgram {
        /// The cgroup directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A process of the cgroup could not be signalled.
    #[error("sending signal {signal} to process {pid} of {path}")]
    Signal {
        /// The process.
        pid: i32,
        /// The signal number.
        signal: i32,
        /// The cgroup the process was listed in.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// Attaches the path (and value) to an `io::Result`, the way youki's `WrapIoResult` does.
pub(crate) trait WrapIo<T> {
    /// The error of reading `path`.
    fn wrap_read(self, path: &Path) -> Result<T, CgroupError>;
    /// The error of writing `value` to `path`.
    fn wrap_write(self, path: &Path, value: &str) -> Result<T, CgroupError>;
    /// The error of creating the directory `path`.
    fn wrap_create_dir(self, path: &Path) -> Result<T, CgroupError>;
    /// The error of removing the directory `path`.
    fn wrap_remove_dir(self, path: &Path) -> Result<T, CgroupError>;
    /// The error of listing the directory `path`.
    fn wrap_list_dir(self, path: &Path) -> Result<T, CgroupError>;
}

impl<T> WrapIo<T> for io::Result<T> {
    fn wrap_read(self, path: &Path) -> Result<T, CgroupError> {
        self.map_err(|source| CgroupError::Read {
            path: path.to_path_buf(),
            source,
        })
    }

    fn wrap_write(self, path: &Path, value: &str) -> Result<T, CgroupError> {
        self.map_err(|source| CgroupError::Write {
            path: path.to_path_buf(),
            value: value.to_owned(),
            source,
        })
    }

    fn wrap_create_dir(self, path: &Path) -> Result<T, CgroupError> {
        self.map_err(|source| CgroupError::CreateDir {
            path: path.to_path_buf(),
            source,
        })
    }

    fn wrap_remove_dir(self, path: &Path) -> Result<T, CgroupError> {
        self.map_err(|source| CgroupError::RemoveDir {
            path: path.to_path_buf(),
            source,
        })
    }

    fn wrap_list_dir(self, path: &Path) -> Result<T, CgroupError> {
        self.map_err(|source| CgroupError::ListDir {
            path: path.to_path_buf(),
            source,
        })
    }
}

impl CgroupError {
    /// The kernel's errno behind this error, if it came from a system call.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            CgroupError::Read { source, .. }
            | CgroupError::Write { source, .. }
            | CgroupError::CreateDir { source, .. }
            | CgroupError::RemoveDir { source, .. }
            | CgroupError::ListDir { source, .. }
            | CgroupError::DeviceProgram { source, .. }
            | CgroupError::Signal { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    pub(crate) fn unsupported(field: &str, reason: impl Into<String>) -> Self {
        CgroupError::Unsupported {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid(field: &str, value: impl ToString, reason: impl Into<String>) -> Self {
        CgroupError::InvalidValue {
            field: field.to_owned(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}
