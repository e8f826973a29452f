//! berth-api: Docker Engine API wire types (serde) and the unix-socket client the CLI uses.
//! Field names follow Docker's JSON exactly; unknown fields are accepted on input.

pub mod client;
pub mod containers;
pub mod detach_keys;
pub mod events;
pub mod exec;
pub mod images;
pub mod networks;
pub mod stats;
pub mod system;

pub use client::{ApiClient, ApiClientError, Upgrade, UpgradedStream};

/// The newest API version berth speaks.
pub const API_VERSION: &str = "1.50";
/// The oldest API version berth accepts.
pub const MIN_API_VERSION: &str = "1.24";

/// Docker's error body.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ErrorResponse {
    /// The message.
    pub message: String,
}

/// One line of Docker's streaming JSON progress (`JSONMessage`).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct JsonMessage {
    /// Layer ID or tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Status text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Byte counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_detail: Option<ProgressDetail>,
    /// A rendered progress bar.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    /// Error details, on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_detail: Option<ErrorResponse>,
    /// Error message, on failure (deprecated twin of `errorDetail`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Byte counts of a progress message.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct ProgressDetail {
    /// Done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<u64>,
    /// Total.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}
