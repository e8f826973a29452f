//! berth-runtime: executes an OCI runtime spec on a prepared root: namespaces, mounts,
//! pivot_root, cgroups v1 and v2, capabilities, seccomp, and the per-container shim.
//! `unsafe` lives only in `sys` and the seccomp loader, each block with a SAFETY note.

pub mod caps;
pub mod cgroup;
pub mod container;
pub mod defaults;
pub mod exec;
pub mod hooks;
mod init;
pub mod rootfs;
pub mod seccomp;
pub mod shim;
mod sys;
pub mod user;

pub use container::{
    create, create_oci, read_signal, signalfd, ChildHooks, CreateOptions, Created, RuntimeError,
};
pub use init::ProcessIo;
