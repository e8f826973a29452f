//! berth-runtime: executes an OCI runtime spec on a prepared root: namespaces, mounts,
//! pivot_root, cgroups v1 and v2, capabilities, seccomp, and the per-container shim.
//! `unsafe` lives only in the small syscall wrappers that need it, each with a SAFETY note.

pub mod cgroup;
pub mod seccomp;
