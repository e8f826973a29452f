//! `/images/...` wire types.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// An entry of `GET /images/json`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ImageSummary {
    /// `sha256:...`.
    pub id: String,
    /// Parent image ID (empty for pulled images).
    pub parent_id: String,
    /// `repo:tag` names.
    pub repo_tags: Vec<String>,
    /// `repo@digest` names.
    pub repo_digests: Vec<String>,
    /// Unix seconds.
    pub created: i64,
    /// Bytes.
    pub size: i64,
    /// Bytes shared with other images (-1 when not computed).
    pub shared_size: i64,
    /// Same as `Size` (deprecated field kept for old clients).
    pub virtual_size: i64,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Containers using it (-1 when not computed).
    pub containers: i64,
}

/// `GraphDriver` of an image inspect.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct GraphDriver {
    /// Always `overlay2`-compatible `overlay`.
    pub name: String,
    /// `LowerDir` etc.
    pub data: BTreeMap<String, String>,
}

/// `RootFS` of an image inspect.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct RootFs {
    /// `layers`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// Diff IDs.
    pub layers: Vec<String>,
}

/// `Metadata` of an image inspect.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ImageMetadata {
    /// RFC 3339 time of the last tag change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_tag_time: Option<String>,
}

/// `GET /images/{name}/json`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ImageInspect {
    /// `sha256:...`.
    pub id: String,
    /// Names.
    pub repo_tags: Vec<String>,
    /// Digests.
    pub repo_digests: Vec<String>,
    /// Parent ID.
    pub parent: String,
    /// Comment.
    pub comment: String,
    /// RFC 3339.
    pub created: String,
    /// Docker version that built it.
    pub docker_version: String,
    /// Author.
    pub author: String,
    /// The image's runtime config.
    pub config: serde_json::Value,
    /// Architecture.
    pub architecture: String,
    /// Variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// OS.
    pub os: String,
    /// Bytes.
    pub size: i64,
    /// Same as `Size`.
    pub virtual_size: i64,
    /// Storage details.
    pub graph_driver: GraphDriver,
    /// Layers.
    #[serde(rename = "RootFS")]
    pub root_fs: RootFs,
    /// Times.
    pub metadata: ImageMetadata,
}

/// One item of `DELETE /images/{name}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeleteItem {
    /// A name removed.
    #[serde(rename = "Untagged", default, skip_serializing_if = "Option::is_none")]
    pub untagged: Option<String>,
    /// An image removed.
    #[serde(rename = "Deleted", default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<String>,
}

/// `POST /images/prune`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct PruneReport {
    /// What went.
    pub images_deleted: Vec<DeleteItem>,
    /// Bytes freed.
    pub space_reclaimed: u64,
}
