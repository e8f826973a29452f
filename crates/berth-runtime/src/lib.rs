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
pub use sys::idle_priority;

/// An error and its sources, joined as `a: b: c` (a source already quoted by its parent's
/// message is not repeated).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}
pub use init::ProcessIo;
