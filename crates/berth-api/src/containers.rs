//! `/containers/...` wire types (Docker's `Config`, `HostConfig`, inspect and list shapes).
//! The engine persists `ContainerConfig` + `HostConfig` as Docker does (config.v2.json).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Docker's container `Config`.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    /// Hostname.
    #[serde(default)]
    pub hostname: String,
    /// Domain name.
    #[serde(default)]
    pub domainname: String,
    /// `user[:group]`.
    #[serde(default)]
    pub user: String,
    /// Attach stdin.
    #[serde(default)]
    pub attach_stdin: bool,
    /// Attach stdout.
    #[serde(default)]
    pub attach_stdout: bool,
    /// Attach stderr.
    #[serde(default)]
    pub attach_stderr: bool,
    /// Exposed ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    /// Allocate a tty.
    #[serde(default)]
    pub tty: bool,
    /// Keep stdin open.
    #[serde(default)]
    pub open_stdin: bool,
    /// Close stdin after the first attach ends.
    #[serde(default)]
    pub stdin_once: bool,
    /// `KEY=VALUE`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub env: Vec<String>,
    /// Command.
    #[serde(default, deserialize_with = "string_or_vec")]
    pub cmd: Vec<String>,
    /// Image reference as given.
    #[serde(default)]
    pub image: String,
    /// Volumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    /// Working directory.
    #[serde(default)]
    pub working_dir: String,
    /// Entrypoint (`[""]` or `[]` clears the image's).
    #[serde(default, deserialize_with = "string_or_vec_opt")]
    pub entrypoint: Option<Vec<String>>,
    /// Disable networking.
    #[serde(default)]
    pub network_disabled: bool,
    /// Labels.
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
    /// Stop signal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// Stop timeout, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    /// `--mac-address` (API < 1.44 puts it here; newer clients in `NetworkingConfig`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac_address: String,
}

pub(crate) fn null_as_default<'de, D: serde::Deserializer<'de>, T: Default + Deserialize<'de>>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StrOrVec {
    S(String),
    V(Vec<String>),
}

pub(crate) fn string_or_vec<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<String>, D::Error> {
    Ok(match Option::<StrOrVec>::deserialize(d)? {
        None => Vec::new(),
        Some(StrOrVec::S(s)) => vec![s],
        Some(StrOrVec::V(v)) => v,
    })
}

fn string_or_vec_opt<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<String>>, D::Error> {
    Ok(match Option::<StrOrVec>::deserialize(d)? {
        None => None,
        Some(StrOrVec::S(s)) => Some(vec![s]),
        Some(StrOrVec::V(v)) => Some(v),
    })
}

/// `RestartPolicy`.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct RestartPolicy {
    /// `""`, `no`, `always`, `on-failure`, `unless-stopped`.
    #[serde(default)]
    pub name: String,
    /// For on-failure.
    #[serde(default)]
    pub maximum_retry_count: i64,
}

/// `LogConfig`.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct LogConfig {
    /// `json-file` (berth's only driver).
    #[serde(default, rename = "Type")]
    pub kind: String,
    /// `max-size`, `max-file`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub config: BTreeMap<String, String>,
}

/// An `--ulimit`.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Ulimit {
    /// `nofile`, `nproc`...
    pub name: String,
    /// Soft.
    pub soft: i64,
    /// Hard.
    pub hard: i64,
}

/// Docker's `HostConfig` (the fields berth honours; others are accepted and refused by value).
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct HostConfig {
    /// `-v` binds.
    #[serde(default, deserialize_with = "null_as_default")]
    pub binds: Vec<String>,
    /// `bridge`, `none`, `host`, `container:NAME`.
    #[serde(default)]
    pub network_mode: String,
    /// Restart policy.
    #[serde(default)]
    pub restart_policy: RestartPolicy,
    /// `--rm`.
    #[serde(default)]
    pub auto_remove: bool,
    /// `--cap-add`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub cap_add: Vec<String>,
    /// `--cap-drop`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub cap_drop: Vec<String>,
    /// `--privileged`.
    #[serde(default)]
    pub privileged: bool,
    /// `--read-only`.
    #[serde(default)]
    pub readonly_rootfs: bool,
    /// `--security-opt`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub security_opt: Vec<String>,
    /// `--tmpfs PATH:OPTS`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub tmpfs: BTreeMap<String, String>,
    /// `--init`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    /// `--runtime`.
    #[serde(default)]
    pub runtime: String,
    /// `--rootfs DIR`, a berth extension (Docker has no such field): run this host directory
    /// tree, in place and writable, as the root instead of an image. Absolute path.
    #[serde(
        default,
        rename = "BerthRootfs",
        skip_serializing_if = "String::is_empty"
    )]
    pub rootfs: String,
    /// Memory limit, bytes.
    #[serde(default)]
    pub memory: i64,
    /// Memory + swap, bytes (-1 unlimited).
    #[serde(default)]
    pub memory_swap: i64,
    /// CPU shares.
    #[serde(default)]
    pub cpu_shares: i64,
    /// `--cpus` × 1e9.
    #[serde(default)]
    pub nano_cpus: i64,
    /// CFS period.
    #[serde(default)]
    pub cpu_period: i64,
    /// CFS quota.
    #[serde(default)]
    pub cpu_quota: i64,
    /// `--cpuset-cpus`.
    #[serde(default)]
    pub cpuset_cpus: String,
    /// `--pids-limit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_limit: Option<i64>,
    /// `--ulimit`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub ulimits: Vec<Ulimit>,
    /// `--log-opt`.
    #[serde(default)]
    pub log_config: LogConfig,
    /// `--dns`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub dns: Vec<String>,
    /// `--add-host`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub extra_hosts: Vec<String>,
    /// `--dns-search`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub dns_search: Vec<String>,
    /// `--dns-option`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub dns_options: Vec<String>,
    /// `-p`: `"80/tcp"` → host bindings.
    #[serde(default, deserialize_with = "null_as_default")]
    pub port_bindings: BTreeMap<String, Vec<PortBinding>>,
    /// `-P`: publish every exposed port on a free host port.
    #[serde(default)]
    pub publish_all_ports: bool,
    /// `--shm-size`.
    #[serde(default)]
    pub shm_size: i64,
    /// `--oom-score-adj`.
    #[serde(default)]
    pub oom_score_adj: i64,
}

/// One host binding of a container port (`HostConfig.PortBindings`, `NetworkSettings.Ports`).
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct PortBinding {
    /// Host address (`""` or `0.0.0.0`: every address).
    #[serde(default, deserialize_with = "null_as_default")]
    pub host_ip: String,
    /// Host port, a range `8000-8010`, or `""` for a free one.
    #[serde(default, deserialize_with = "null_as_default")]
    pub host_port: String,
}

/// `IPAMConfig` of an endpoint (`--ip`).
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct EndpointIpamConfig {
    /// The requested IPv4 address.
    #[serde(
        rename = "IPv4Address",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub ipv4_address: String,
}

/// One entry of `NetworkingConfig.EndpointsConfig`.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointSettings {
    /// `--ip`.
    #[serde(
        rename = "IPAMConfig",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ipam_config: Option<EndpointIpamConfig>,
    /// `--network-alias`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub aliases: Vec<String>,
    /// `--mac-address` (API ≥ 1.44).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac_address: String,
}

/// `NetworkingConfig` of a create request.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkingConfig {
    /// Network name → endpoint settings.
    #[serde(default, deserialize_with = "null_as_default")]
    pub endpoints_config: BTreeMap<String, EndpointSettings>,
}

/// `POST /containers/create` body.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct CreateRequest {
    /// The container config.
    #[serde(flatten)]
    pub config: ContainerConfig,
    /// Host config.
    #[serde(default)]
    pub host_config: HostConfig,
    /// Per-network endpoint settings (`--ip`, `--network-alias`, `--mac-address`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networking_config: Option<NetworkingConfig>,
}

/// `POST /containers/create` answer.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct CreateResponse {
    /// Full ID.
    pub id: String,
    /// Warnings.
    pub warnings: Vec<String>,
}

/// `POST /containers/{id}/wait` answer.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct WaitResponse {
    /// Exit code.
    pub status_code: i64,
    /// Error, if the wait failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<WaitError>,
}

/// Error of a wait.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct WaitError {
    /// Message.
    pub message: String,
}

/// berth's `run` in one request (`POST /containers/create?berth-attach=1`, a berth
/// extension): the last frame of the multiplexed stream, stream type [`RUN_END_STREAM`], says
/// how the run ended.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct RunEnd {
    /// The exit code (`-1` when the wait failed or the start did).
    pub status_code: i64,
    /// Error, if the wait failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<WaitError>,
    /// The daemon's message when the container could not be started (nothing ran).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_error: Option<String>,
}

/// The stream type of [`RunEnd`]'s frame (Docker's "system error" stream, which the daemon
/// never sends otherwise).
pub const RUN_END_STREAM: u8 = 3;

/// The header of a `berth-attach`/`berth-start` create answer: the [`CreateResponse`] as JSON
/// (a 101 answer has no body).
pub const RUN_HEADER: &str = "x-berth-container";

/// An entry of `GET /containers/json`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerSummary {
    /// Full ID.
    pub id: String,
    /// `/name`.
    pub names: Vec<String>,
    /// Image as given.
    pub image: String,
    /// Image ID.
    #[serde(rename = "ImageID")]
    pub image_id: String,
    /// Command line.
    pub command: String,
    /// Unix seconds.
    pub created: i64,
    /// `created`, `running`, `exited`...
    pub state: String,
    /// `Up 2 minutes`, `Exited (0) 3 seconds ago`.
    pub status: String,
    /// Ports (none without the network issue).
    pub ports: Vec<serde_json::Value>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Size of the writable layer (when asked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_rw: Option<i64>,
    /// Host config subset.
    pub host_config: serde_json::Value,
    /// Networks.
    pub network_settings: serde_json::Value,
    /// Mounts.
    pub mounts: Vec<serde_json::Value>,
}
