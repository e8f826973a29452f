//! `/version`, `/info`, `/system/df`, `/auth` wire types.

use serde::{Deserialize, Serialize};

use crate::images::ImageSummary;

/// `GET /version`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Version {
    /// Product version.
    pub version: String,
    /// Newest API version.
    pub api_version: String,
    /// Oldest API version.
    #[serde(rename = "MinAPIVersion")]
    pub min_api_version: String,
    /// Git commit.
    pub git_commit: String,
    /// Toolchain.
    pub go_version: String,
    /// `linux`.
    pub os: String,
    /// `amd64`...
    pub arch: String,
    /// Kernel release.
    pub kernel_version: String,
    /// Build time.
    pub build_time: String,
    /// Components, as Docker lists them.
    pub components: Vec<Component>,
}

/// A component of `/version`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Component {
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Free-form details (the docker CLI reads `ApiVersion`, `MinAPIVersion`, `Os`, `Arch`...).
    #[serde(default)]
    pub details: serde_json::Value,
}

/// `GET /info` (the fields berth fills; clients tolerate missing ones).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Info {
    /// Daemon ID.
    #[serde(rename = "ID")]
    pub id: String,
    /// Containers.
    pub containers: i64,
    /// Running.
    pub containers_running: i64,
    /// Paused.
    pub containers_paused: i64,
    /// Stopped.
    pub containers_stopped: i64,
    /// Images.
    pub images: i64,
    /// Storage driver.
    pub driver: String,
    /// `cgroupfs`.
    pub cgroup_driver: String,
    /// `1` or `2`.
    pub cgroup_version: String,
    /// Kernel.
    pub kernel_version: String,
    /// OS name.
    pub operating_system: String,
    /// `linux`.
    #[serde(rename = "OSType")]
    pub os_type: String,
    /// Architecture.
    pub architecture: String,
    /// CPUs.
    #[serde(rename = "NCPU")]
    pub ncpu: i64,
    /// Memory bytes.
    pub mem_total: i64,
    /// Root directory.
    pub docker_root_dir: String,
    /// Host name.
    pub name: String,
    /// Version.
    pub server_version: String,
    /// Registry settings.
    pub registry_config: RegistryConfigInfo,
    /// Swarm state (always inactive).
    pub swarm: serde_json::Value,
}

/// `RegistryConfig` of `/info`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct RegistryConfigInfo {
    /// Insecure registry CIDRs.
    #[serde(rename = "InsecureRegistryCIDRs")]
    pub insecure_registry_cidrs: Vec<String>,
    /// Mirrors (Docker lists docker.io's here).
    pub mirrors: Vec<String>,
}

/// `GET /system/df`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct DiskUsage {
    /// Bytes of all layers.
    pub layers_size: i64,
    /// Images.
    pub images: Vec<ImageSummary>,
    /// Containers (none yet).
    pub containers: Vec<serde_json::Value>,
    /// Volumes (none yet).
    pub volumes: Vec<serde_json::Value>,
    /// Build cache (none yet).
    pub build_cache: Vec<serde_json::Value>,
}

/// `POST /auth` body (Docker's `AuthConfig`), also the JSON inside `X-Registry-Auth`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct AuthConfig {
    /// User.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    /// Password.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password: String,
    /// base64 of `user:password`, as config.json stores it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub auth: String,
    /// Registry.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub serveraddress: String,
    /// OAuth identity token.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub identitytoken: String,
}

/// `POST /auth` answer.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct AuthResponse {
    /// `Login Succeeded`.
    pub status: String,
    /// Token, if any.
    #[serde(default)]
    pub identity_token: String,
}
