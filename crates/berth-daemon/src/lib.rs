//! berth-daemon: configuration, start-up, and the Docker Engine API router. Routes only parse
//! into engine calls and render results; errors become statuses in `error::status_of` alone.

mod containers;
pub mod error;
mod events;
mod exec;
mod images;
mod networks;
mod system;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{StatusCode, Uri};
use axum::routing::{get, post};
use axum::Router;
use berth_engine::{Engine, EngineConfig};

pub use error::{status_of, ApiError};

/// Errors starting or running the daemon.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The engine could not open its state.
    #[error("opening state in {root}")]
    Engine {
        /// Root.
        root: PathBuf,
        /// Cause.
        #[source]
        source: berth_engine::EngineError,
    },
    /// Another daemon holds this root.
    #[error("another berth daemon is already running for {root} (lock {lock} is held); stop it or use another --root")]
    Locked {
        /// Root.
        root: PathBuf,
        /// Lock file.
        lock: PathBuf,
    },
    /// A file operation failed.
    #[error("{op} {path}")]
    Io {
        /// What.
        op: &'static str,
        /// Where.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// Builds the API router over an engine. Versioned paths (`/v1.NN/...`) are handled by
/// [`strip_version`], applied around this router.
pub fn router(engine: Arc<Engine>) -> Router {
    Router::new()
        .route("/_ping", get(system::ping).head(system::ping))
        .route("/version", get(system::version))
        .route("/info", get(system::info))
        .route("/system/df", get(system::df))
        .route("/auth", post(system::auth))
        .route("/events", get(events::events))
        .route("/images/json", get(images::list))
        .route("/images/create", post(images::create))
        .route("/images/prune", post(images::prune))
        .route("/berth/images/tags", get(images::remote_tags))
        .route("/networks", get(networks::list))
        .route("/networks/create", post(networks::create))
        .route("/networks/prune", post(networks::prune))
        .route(
            "/networks/{id}",
            get(networks::inspect).delete(networks::remove),
        )
        .route("/networks/{id}/connect", post(networks::connect))
        .route("/networks/{id}/disconnect", post(networks::disconnect))
        .route("/containers/create", post(containers::create))
        .route("/containers/json", get(containers::list))
        .route("/containers/prune", post(containers::prune))
        .route("/containers/{id}/json", get(containers::inspect))
        .route("/containers/{id}/start", post(containers::start))
        .route("/containers/{id}/stop", post(containers::stop))
        .route("/containers/{id}/restart", post(containers::restart))
        .route("/containers/{id}/kill", post(containers::kill))
        .route("/containers/{id}/wait", post(containers::wait))
        .route("/containers/{id}/logs", get(containers::logs))
        .route("/containers/{id}/attach", post(containers::attach))
        .route("/containers/{id}/resize", post(containers::resize))
        .route("/containers/{id}/pause", post(containers::pause))
        .route("/containers/{id}/unpause", post(containers::unpause))
        .route("/containers/{id}/rename", post(containers::rename))
        .route("/containers/{id}/top", get(containers::top))
        .route("/containers/{id}/stats", get(events::stats))
        .route("/containers/{id}/exec", post(exec::create))
        .route("/exec/{id}/start", post(exec::start))
        .route("/exec/{id}/resize", post(exec::resize))
        .route("/exec/{id}/json", get(exec::inspect))
        .route(
            "/containers/{id}",
            axum::routing::delete(containers::remove),
        )
        .route(
            "/images/{*rest}",
            get(images::by_name)
                .post(images::by_name)
                .delete(images::by_name),
        )
        .fallback(|uri: Uri| async move {
            ApiError::not_found(format!("page not found: {}", uri.path()))
        })
        .with_state(engine)
}

fn parse_version(v: &str) -> Option<(u32, u32)> {
    let (a, b) = v.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Removes a `/v1.NN` prefix, refusing versions outside what berth speaks as Docker does.
pub fn strip_version(mut req: Request) -> Result<Request, ApiError> {
    let path = req.uri().path();
    if let Some(rest) = path.strip_prefix("/v") {
        let (ver, tail) = rest
            .split_once('/')
            .map(|(v, t)| (v, format!("/{t}")))
            .unwrap_or((rest, "/".to_string()));
        if let Some(v) = parse_version(ver) {
            let min = parse_version(berth_api::MIN_API_VERSION).expect("constant");
            let max = parse_version(berth_api::API_VERSION).expect("constant");
            if v < min {
                return Err(ApiError::bad_request(format!(
                    "client version {ver} is too old. Minimum supported API version is {}, please upgrade your client to a newer version",
                    berth_api::MIN_API_VERSION
                )));
            }
            if v > max {
                return Err(ApiError::bad_request(format!(
                    "client version {ver} is too new. Maximum supported API version is {}",
                    berth_api::API_VERSION
                )));
            }
            let pq = match req.uri().query() {
                Some(q) => format!("{tail}?{q}"),
                None => tail,
            };
            let mut parts = req.uri().clone().into_parts();
            parts.path_and_query = Some(
                pq.parse()
                    .map_err(|_| ApiError::bad_request("invalid request path"))?,
            );
            *req.uri_mut() = Uri::from_parts(parts)
                .map_err(|_| ApiError::bad_request("invalid request path"))?;
        }
    }
    Ok(req)
}

async fn versioned(req: Request, next: axum::middleware::Next) -> axum::response::Response {
    match strip_version(req) {
        Ok(req) => next.run(req).await,
        Err(e) => axum::response::IntoResponse::into_response(e),
    }
}

type BoxedResponse =
    std::pin::Pin<Box<dyn std::future::Future<Output = axum::response::Response> + Send>>;
type VersionedFn = fn(Request, axum::middleware::Next) -> BoxedResponse;
/// The router wrapped in the version-stripping middleware.
pub type App = axum::middleware::FromFn<VersionedFn, (), Router, (Request,)>;

/// The full service: version stripping wrapped around the router (outside it, so that the
/// rewritten path is what gets routed).
pub fn app(engine: Arc<Engine>) -> App {
    fn f(req: Request, next: axum::middleware::Next) -> BoxedResponse {
        Box::pin(versioned(req, next))
    }
    tower::Layer::layer(&axum::middleware::from_fn(f as VersionedFn), router(engine))
}

/// Daemon settings.
#[derive(Clone, Debug)]
pub struct DaemonConfig {
    /// Engine settings (root, registries, limits).
    pub engine: EngineConfig,
    /// Socket to listen on.
    pub socket: PathBuf,
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> DaemonError {
    let path = path.to_path_buf();
    move |source| DaemonError::Io { op, path, source }
}

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn serve(config: DaemonConfig) -> Result<(), DaemonError> {
    let root = config.engine.root.clone();
    std::fs::create_dir_all(&root).map_err(io_err("creating", &root))?;
    let lock_path = root.join("daemon.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io_err("opening", &lock_path))?;
    if rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
        return Err(DaemonError::Locked {
            root,
            lock: lock_path,
        });
    }
    // the pid file names this daemon for tools and tests; the lock above makes it ours
    let pid_path = root.join("daemon.pid");
    std::fs::write(&pid_path, format!("{}\n", std::process::id()))
        .map_err(io_err("writing", &pid_path))?;
    // shims run from a sealed copy of this binary (see berth_runtime::shim::sealed_self_copy)
    let mut engine_config = config.engine.clone();
    let _sealed = match berth_runtime::shim::sealed_self_copy() {
        Ok((fd, path)) => {
            engine_config.shim_exe = Some(path);
            Some(fd)
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot make a sealed copy of the berth binary; containers cannot be started");
            None
        }
    };
    let engine = Arc::new(
        Engine::open(engine_config).map_err(|source| DaemonError::Engine {
            root: root.clone(),
            source,
        })?,
    );
    engine.reconcile().await;
    let socket = &config.socket;
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
    }
    // we hold the root's lock, so a socket file left here belongs to a dead daemon
    match std::fs::remove_file(socket) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("removing stale socket", socket)(e)),
    }
    let tmp = socket.with_extension(format!("tmp{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let listener = tokio::net::UnixListener::bind(&tmp).map_err(io_err("listening on", &tmp))?;
    std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o660))
        .map_err(io_err("setting mode of", &tmp))?;
    // appear atomically: a client that sees the socket can connect to it
    std::fs::rename(&tmp, socket).map_err(io_err("publishing socket", socket))?;
    tracing::info!(socket = %socket.display(), root = %root.display(), "berth daemon listening");
    let service = app(engine);
    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("signal handler");
        tokio::select! {
            _ = term.recv() => {},
            _ = tokio::signal::ctrl_c() => {},
        }
    };
    let make = axum::ServiceExt::<Request>::into_make_service(service);
    let result = axum::serve(listener, make)
        .with_graceful_shutdown(shutdown)
        .await;
    let _ = std::fs::remove_file(socket);
    let _ = std::fs::remove_file(&pid_path);
    drop(lock);
    result.map_err(io_err("serving on", socket))
}

/// Status code helper for tests and callers.
pub fn status_for(e: &berth_engine::EngineError) -> StatusCode {
    status_of(e.kind())
}
