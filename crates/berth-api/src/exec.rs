//! `/containers/{id}/exec` and `/exec/...` wire types (Docker's `ExecConfig`,
//! `ExecStartConfig` and the exec inspect answer).

use serde::{Deserialize, Serialize};

use crate::containers::{null_as_default, string_or_vec};

/// `POST /containers/{id}/exec` body.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ExecConfig {
    /// Attach stdin.
    #[serde(default)]
    pub attach_stdin: bool,
    /// Attach stdout.
    #[serde(default)]
    pub attach_stdout: bool,
    /// Attach stderr.
    #[serde(default)]
    pub attach_stderr: bool,
    /// Initial console size, `[height, width]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_size: Option<Vec<u32>>,
    /// Detach key sequence.
    #[serde(default)]
    pub detach_keys: String,
    /// Allocate a tty.
    #[serde(default)]
    pub tty: bool,
    /// Extra `KEY=VALUE` environment.
    #[serde(default, deserialize_with = "null_as_default")]
    pub env: Vec<String>,
    /// The command.
    #[serde(default, deserialize_with = "string_or_vec")]
    pub cmd: Vec<String>,
    /// Run with every capability.
    #[serde(default)]
    pub privileged: bool,
    /// `user[:group]`.
    #[serde(default)]
    pub user: String,
    /// Working directory.
    #[serde(default)]
    pub working_dir: String,
}

/// `POST /exec/{id}/start` body.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ExecStartConfig {
    /// Return at once; no stream.
    #[serde(default)]
    pub detach: bool,
    /// Whether the stream is a tty (raw) stream.
    #[serde(default)]
    pub tty: bool,
    /// Initial console size, `[height, width]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_size: Option<Vec<u32>>,
}

/// The `ProcessConfig` of an exec inspect.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct ExecProcessConfig {
    /// `Cmd[1..]`.
    pub arguments: Vec<String>,
    /// `Cmd[0]`.
    pub entrypoint: String,
    /// Privileged.
    pub privileged: bool,
    /// Tty.
    pub tty: bool,
    /// User as given.
    #[serde(default)]
    pub user: String,
}

/// `GET /exec/{id}/json` answer.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ExecInspect {
    /// Always false here (Docker's, for execs of a stopped container).
    pub can_remove: bool,
    /// Detach keys.
    pub detach_keys: String,
    /// The exec ID.
    #[serde(rename = "ID")]
    pub id: String,
    /// Whether the process runs.
    pub running: bool,
    /// The exit code once it ended (`null` before).
    pub exit_code: Option<i64>,
    /// The command.
    pub process_config: ExecProcessConfig,
    /// stdin attached.
    pub open_stdin: bool,
    /// stderr attached.
    pub open_stderr: bool,
    /// stdout attached.
    pub open_stdout: bool,
    /// The container.
    #[serde(rename = "ContainerID")]
    pub container_id: String,
    /// The process's pid on the host (0 before it started).
    pub pid: i64,
}

/// `{"Id": ...}`.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct IdResponse {
    /// The ID.
    pub id: String,
}
