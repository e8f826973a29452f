//! The crate's error type and the kinds the daemon maps to HTTP statuses.

use std::io;
use std::path::PathBuf;

use crate::digest::{Digest, DigestError};
use crate::manifest::ManifestError;
use crate::platform::PlatformError;
use crate::reference::ReferenceError;
use crate::unpack::UnpackError;

/// What sort of failure an error is; the daemon turns this (and nothing else) into a status.
/// It lives here, the lowest crate that fails, and `berth-engine` re-exports it as its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The named thing does not exist (404).
    NotFound,
    /// The request conflicts with current state (409).
    Conflict,
    /// The request is malformed (400).
    Invalid,
    /// Credentials were missing or refused (401).
    Unauthorized,
    /// A dependency (registry, disk) failed; trying again may help (500).
    Unavailable,
    /// A bug or corrupt state (500).
    Internal,
}

/// Errors of `berth-image`.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// A reference did not parse.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// A platform did not parse.
    #[error(transparent)]
    Platform(#[from] PlatformError),
    /// A digest did not parse.
    #[error(transparent)]
    Digest(#[from] DigestError),
    /// No local image matches.
    // Docker's exact text: clients (docker-py's ImageNotFound) match on it
    #[error("No such image: {name}")]
    NotFound {
        /// What was asked for.
        name: String,
    },
    /// A name matches several images (an ambiguous ID prefix).
    #[error("image reference {name:?} is ambiguous: {count} images match; give more of the ID")]
    Ambiguous {
        /// What was asked for.
        name: String,
        /// How many matched.
        count: usize,
    },
    /// An operation conflicts with the images' current state.
    #[error("conflict: {message}")]
    Conflict {
        /// Docker-style explanation.
        message: String,
    },
    /// Invalid request value.
    #[error("{message}")]
    Invalid {
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A local file operation failed.
    #[error("{op} {path}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The metadata database failed.
    #[error("image database: {context}")]
    Database {
        /// What was being done.
        context: &'static str,
        /// The cause.
        #[source]
        source: rusqlite::Error,
    },
    /// The registry refused credentials or demanded them.
    #[error("pull access denied for {repository}: {detail}; run 'berth login {registry}' if the repository is private")]
    Unauthorized {
        /// Registry host.
        registry: String,
        /// Repository path.
        repository: String,
        /// What the registry said.
        detail: String,
    },
    /// The registry has no such manifest or blob.
    #[error("{what} not found in registry {registry}")]
    RemoteNotFound {
        /// Registry host.
        registry: String,
        /// Manifest or blob description.
        what: String,
    },
    /// The registry could not be reached or answered an error.
    #[error("registry {registry}: {message}")]
    Registry {
        /// Registry host.
        registry: String,
        /// What happened.
        message: String,
        /// The transport cause, if any.
        #[source]
        source: Option<reqwest::Error>,
    },
    /// Content did not match its digest.
    #[error("{what} {expected} failed verification: content hashes to {actual} ({size} bytes); the registry served corrupt data")]
    DigestMismatch {
        /// Manifest, config, layer...
        what: &'static str,
        /// The digest it should have.
        expected: Digest,
        /// The digest it has.
        actual: Digest,
        /// Bytes received.
        size: u64,
    },
    /// Content did not match its declared size.
    #[error("{what} {digest}: expected {expected} bytes, registry sent {actual}")]
    SizeMismatch {
        /// Manifest, config, layer...
        what: &'static str,
        /// Its digest.
        digest: Digest,
        /// Declared size.
        expected: u64,
        /// Received size (at least).
        actual: u64,
    },
    /// A manifest was malformed or unsupported.
    #[error("manifest {reference}")]
    Manifest {
        /// Which manifest.
        reference: String,
        /// The cause.
        #[source]
        source: ManifestError,
    },
    /// An image config was malformed.
    #[error("image config {digest} is malformed")]
    Config {
        /// The config's digest.
        digest: Digest,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// No manifest of an index matches the wanted platform.
    #[error("no matching manifest for {platform} in the manifest list of {reference} (available: {available})")]
    NoMatchingPlatform {
        /// The image.
        reference: String,
        /// The wanted platform.
        platform: String,
        /// What the index offers.
        available: String,
    },
    /// Applying a layer failed.
    #[error("layer {digest}")]
    Unpack {
        /// The layer blob.
        digest: Digest,
        /// The cause.
        #[source]
        source: UnpackError,
    },
}

impl ImageError {
    /// The kind of failure, for status mapping.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ImageError::Reference(_)
            | ImageError::Platform(_)
            | ImageError::Digest(_)
            | ImageError::Invalid { .. } => ErrorKind::Invalid,
            ImageError::NotFound { .. }
            | ImageError::RemoteNotFound { .. }
            | ImageError::NoMatchingPlatform { .. } => ErrorKind::NotFound,
            ImageError::Ambiguous { .. } | ImageError::Conflict { .. } => ErrorKind::Conflict,
            ImageError::Unauthorized { .. } => ErrorKind::Unauthorized,
            ImageError::Registry { .. }
            | ImageError::DigestMismatch { .. }
            | ImageError::SizeMismatch { .. }
            | ImageError::Manifest { .. }
            | ImageError::Config { .. }
            | ImageError::Io { .. } => ErrorKind::Unavailable,
            ImageError::Unpack { source, .. } => match source {
                UnpackError::Unsafe { .. } | UnpackError::TooLarge { .. } | UnpackError::Tar(_) => {
                    ErrorKind::Unavailable
                }
                UnpackError::Io { .. } => ErrorKind::Internal,
            },
            ImageError::Database { .. } => ErrorKind::Internal,
        }
    }

    /// Shorthand for an I/O error naming its path.
    pub fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> ImageError {
        let path = path.into();
        move |source| ImageError::Io { op, path, source }
    }

    /// Shorthand for a database error with context.
    pub fn db(context: &'static str) -> impl FnOnce(rusqlite::Error) -> ImageError {
        move |source| ImageError::Database { context, source }
    }
}
