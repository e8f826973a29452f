//! berth-engine: the domain model and its operations. Today: images (pull, list, inspect, tag,
//! remove, prune, disk usage). Containers, volumes and networks join here as they arrive.

pub mod images;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_image::pull::{PullOptions, Puller};
use berth_image::registry::{RegistryClient, RegistryConfig};
pub use berth_image::ErrorKind;
use berth_image::{ImageError, Store};

/// Errors of engine operations.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// An image operation failed.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// A request value is invalid.
    #[error("{0}")]
    Invalid(String),
}

impl EngineError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            EngineError::Image(e) => e.kind(),
            EngineError::Invalid(_) => ErrorKind::Invalid,
        }
    }
}

/// Engine settings.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// State directory.
    pub root: PathBuf,
    /// Registry access.
    pub registry: RegistryConfig,
    /// Pull limits.
    pub pull: PullOptions,
}

/// The engine: owns the store and the puller.
pub struct Engine {
    config: EngineConfig,
    store: Arc<Store>,
    puller: Puller,
}

impl Engine {
    /// Opens the engine over its root, repairing partial state.
    pub fn open(config: EngineConfig) -> Result<Engine, EngineError> {
        let store = Arc::new(Store::open(&config.root.join("image"))?);
        let client = Arc::new(RegistryClient::new(config.registry.clone())?);
        let puller = Puller::new(store.clone(), client, config.pull.clone());
        Ok(Engine {
            config,
            store,
            puller,
        })
    }

    /// The state directory.
    pub fn root(&self) -> &Path {
        &self.config.root
    }

    /// The settings.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The content store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }
}
