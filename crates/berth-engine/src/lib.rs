//! berth-engine: the domain model and its operations. Today: images (pull, list, inspect, tag,
//! remove, prune, disk usage). Containers, volumes and networks join here as they arrive.

pub mod containers;
pub mod events;
pub mod images;
pub mod network;
pub mod stats;

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
    /// The named thing does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with current state.
    #[error("{0}")]
    Conflict(String),
    /// The operation is never allowed on this object (a pre-defined network; a network with
    /// active endpoints): Docker's 403.
    #[error("{0}")]
    Forbidden(String),
    /// The container process could not be started; `code` is Docker's exit code for it.
    #[error("{message}")]
    StartFailed {
        /// 125, 126 or 127.
        code: u8,
        /// What failed.
        message: String,
    },
    /// Something broke inside berth.
    #[error("{0}")]
    Internal(String),
}

impl EngineError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            EngineError::Image(e) => e.kind(),
            EngineError::Invalid(_) => ErrorKind::Invalid,
            EngineError::NotFound(_) => ErrorKind::NotFound,
            EngineError::Conflict(_) | EngineError::Forbidden(_) => ErrorKind::Conflict,
            EngineError::StartFailed { code, .. } => {
                if *code == 125 {
                    ErrorKind::Internal
                } else {
                    ErrorKind::Invalid
                }
            }
            EngineError::Internal(_) => ErrorKind::Internal,
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
    /// The binary run as `shim` for each container (a sealed copy of berth; `None` disables
    /// starting containers).
    pub shim_exe: Option<PathBuf>,
    /// Parent cgroup of containers (`berth`).
    pub cgroup_parent: String,
    /// Turn on the kernel's `favordynmods` cgroup option at start (host-wide; see
    /// [`berth_runtime::cgroup::favor_dynamic_modifications`]).
    pub cgroup_favordynmods: bool,
    /// The default bridge network.
    pub network: network::NetworkConfig,
}

/// The engine: owns the store and the puller.
pub struct Engine {
    config: EngineConfig,
    store: Arc<Store>,
    puller: Puller,
    containers: containers::ContainerStore,
    live: containers::Live,
    /// The shim fork server (started from `shim_exe`; `None` until started or after it broke).
    zygote: std::sync::Mutex<Option<berth_runtime::shim::zygote::Zygote>>,
    events: events::EventBus,
    networks: network::Networks,
    /// The host's cgroup layout under the containers' parent, detected once (reading
    /// mountinfo on every create, start and removal cost more than the rest of the cgroup
    /// work); `None` until first used.
    cgroups: std::sync::OnceLock<Option<berth_runtime::cgroup::CgroupManager>>,
}

impl Engine {
    /// Opens the engine over its root, repairing partial state.
    pub fn open(config: EngineConfig) -> Result<Engine, EngineError> {
        let store = Arc::new(Store::open(&config.root.join("image"))?);
        let client = Arc::new(RegistryClient::new(config.registry.clone())?);
        let puller = Puller::new(store.clone(), client, config.pull.clone());
        let containers_dir = config.root.join("containers");
        std::fs::create_dir_all(&containers_dir).map_err(|e| {
            EngineError::Internal(format!("creating {}: {e}", containers_dir.display()))
        })?;
        // each container's directory in a block group of its own (see spread_subdirectories)
        berth_image::store::spread_subdirectories(&containers_dir);
        if config.cgroup_favordynmods {
            match berth_runtime::cgroup::favor_dynamic_modifications() {
                Ok(Some(mount)) => {
                    tracing::info!(mount = %mount.display(), "cgroup option favordynmods turned on (host-wide)")
                }
                Ok(None) => tracing::info!("cgroup option favordynmods already on"),
                Err(e) => {
                    return Err(EngineError::Internal(format!(
                        "--cgroup-favordynmods: {}; start the daemon without it",
                        berth_runtime::error_chain(&e)
                    )))
                }
            }
        }
        let containers = containers::ContainerStore::open(&config.root.join("engine.db"))?;
        let networks =
            network::Networks::open(config.network.clone(), &config.root.join("engine.db"))?;
        // directories of removed containers that a crash left half-deleted
        let _ = std::fs::remove_dir_all(config.root.join("trash"));
        let zygote = config.shim_exe.as_deref().and_then(|exe| {
            berth_runtime::shim::zygote::Zygote::spawn(exe)
                .map_err(|e| tracing::warn!(error = %e, "cannot start the shim zygote; shims will be executed"))
                .ok()
        });
        Ok(Engine {
            zygote: std::sync::Mutex::new(zygote),
            config,
            store,
            puller,
            containers,
            live: Default::default(),
            events: Default::default(),
            networks,
            cgroups: std::sync::OnceLock::new(),
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

    /// The event bus (`GET /events`).
    pub fn events(&self) -> &events::EventBus {
        &self.events
    }

    /// Container networking.
    pub fn networks(&self) -> &network::Networks {
        &self.networks
    }

    /// The content store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }
}
