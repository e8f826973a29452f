//! OCI lifecycle hooks and the container state they read on stdin: prestart, createRuntime,
//! createContainer, startContainer, poststart and poststop. Each hook runs to completion (or
//! its `timeout`) in order; the first failure stops the rest.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use oci_spec::runtime::Hook;
use serde::{Deserialize, Serialize};

/// The state of a container as the runtime spec defines it (`runc state`, hooks' stdin).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct OciState {
    /// The runtime-spec version the state follows.
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    /// The container's id.
    pub id: String,
    /// `creating`, `created`, `running`, `paused` or `stopped`.
    pub status: String,
    /// The container process in the runtime's pid namespace (0 once stopped).
    pub pid: i32,
    /// Absolute path of the bundle.
    pub bundle: PathBuf,
    /// The spec's annotations.
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
}

impl OciState {
    /// The state as JSON bytes.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("the state serializes")
    }
}

/// Why a hook failed.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// The hook could not be started.
    #[error("running {kind} hook {path}")]
    Spawn {
        /// Which hook list.
        kind: &'static str,
        /// The hook's path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The hook exited unsuccessfully.
    #[error("{kind} hook {path} failed ({status}): {stderr}")]
    Failed {
        /// Which hook list.
        kind: &'static str,
        /// The hook's path.
        path: PathBuf,
        /// How it ended.
        status: String,
        /// What it wrote on stderr.
        stderr: String,
    },
    /// The hook ran past its timeout and was killed.
    #[error("{kind} hook {path} timed out after {seconds} s")]
    Timeout {
        /// Which hook list.
        kind: &'static str,
        /// The hook's path.
        path: PathBuf,
        /// Its timeout.
        seconds: i64,
    },
}

/// Runs `hooks` (of list `kind`) in order, each with `state` on stdin.
pub fn run(kind: &'static str, hooks: &[Hook], state: &[u8]) -> Result<(), HookError> {
    for hook in hooks {
        run_one(kind, hook, state)?;
    }
    Ok(())
}

fn run_one(kind: &'static str, hook: &Hook, state: &[u8]) -> Result<(), HookError> {
    let path = hook.path().clone();
    let spawn_err = |source| HookError::Spawn {
        kind,
        path: path.clone(),
        source,
    };
    let mut cmd = Command::new(&path);
    let args = hook.args().clone().unwrap_or_default();
    if let Some((first, rest)) = args.split_first() {
        cmd.arg0(first).args(rest);
    }
    cmd.env_clear();
    for e in hook.env().clone().unwrap_or_default() {
        if let Some((k, v)) = e.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(spawn_err)?;
    if let Some(mut stdin) = child.stdin.take() {
        // a hook that does not read its stdin is fine
        let _ = stdin.write_all(state);
    }
    let status = match hook.timeout().filter(|t| *t > 0) {
        None => child.wait().map_err(spawn_err)?,
        Some(seconds) => {
            let pidfd = rustix::process::Pid::from_raw(child.id() as i32)
                .and_then(|p| {
                    rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok()
                })
                .ok_or_else(|| spawn_err(std::io::Error::other("pidfd_open failed")))?;
            let mut fds = [rustix::event::PollFd::new(
                &pidfd,
                rustix::event::PollFlags::IN,
            )];
            let limit = rustix::time::Timespec {
                tv_sec: seconds,
                tv_nsec: 0,
            };
            if rustix::event::poll(&mut fds, Some(&limit)).unwrap_or(0) == 0 {
                let _ = child.kill();
                let _ = child.wait();
                return Err(HookError::Timeout {
                    kind,
                    path,
                    seconds,
                });
            }
            child.wait().map_err(spawn_err)?
        }
    };
    if status.success() {
        return Ok(());
    }
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
    }
    Err(HookError::Failed {
        kind,
        path,
        status: status.to_string(),
        stderr: stderr.trim().to_string(),
    })
}
