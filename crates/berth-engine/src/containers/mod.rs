//! Containers: create, start (through a per-container shim), attach, wait, stop, kill,
//! restart, remove, list, inspect, logs, and reconciling with the shims found at start-up.

mod control;
pub mod exec;
pub mod init;
pub mod networking;
mod remove;
mod run;
pub mod spec;
pub mod store;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_api::containers::CreateRequest;
use berth_runtime::shim::log::LogConfig;
use berth_runtime::shim::{self, ExitState, Hello, Ready, RunState, ShimConfig};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::sync::watch;

pub use run::ContainerWatch;
pub use store::{Container, ContainerStore, State};

use crate::network::{self, NetworkMode};
use crate::{Engine, EngineError};

/// Docker's zero time.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// The overlay option of `--rm` containers: no sync on unmount, and `fsync` inside is a
/// no-op (the runtime drops it on kernels before 5.10, which lack it).
pub const VOLATILE: &str = ",volatile";

/// A warm-up of the cgroup migration lock is under way (see
/// [`berth_runtime::cgroup::warm_migration_lock`]).
static WARMING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Starts warming the cgroup migration lock on a blocking thread, unless one is under way:
/// the shim's move of the container into its cgroup then does not wait for a grace period.
fn warm_cgroup_migration() {
    use std::sync::atomic::Ordering;
    if WARMING.swap(true, Ordering::AcqRel) {
        return;
    }
    tokio::task::spawn_blocking(|| {
        berth_runtime::cgroup::warm_migration_lock(Path::new(berth_runtime::cgroup::DEFAULT_ROOT));
        WARMING.store(false, Ordering::Release);
    });
}

/// Per-container live state shared by waiters.
#[derive(Default)]
pub struct Live {
    /// Bumped on every state change; waiters re-read the record.
    changes: Mutex<HashMap<String, watch::Sender<u64>>>,
    /// Attach requests made before the container started.
    pending: Mutex<HashMap<String, Vec<tokio::sync::oneshot::Sender<tokio::net::UnixStream>>>>,
    /// One lifecycle operation at a time per container.
    ops: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Containers stopped on purpose (restart policies do not apply).
    stopping: Mutex<std::collections::HashSet<String>>,
    /// Containers `restart` stops and starts again: `--rm` does not remove them in between,
    /// as in Docker.
    restarting: Mutex<std::collections::HashSet<String>>,
    /// Exit codes of removed containers, for `wait --condition removed` racing the removal.
    removed_exit: Mutex<HashMap<String, i64>>,
    /// Exec instances by ID (in memory, as Docker keeps them).
    execs: Mutex<HashMap<String, exec::ExecRecord>>,
}

impl Live {
    /// The attach streams waiting for `id` to start, taken out.
    fn take_pending(&self, id: &str) -> Waiting {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id)
            .unwrap_or_default()
    }

    fn sender(&self, id: &str) -> watch::Sender<u64> {
        self.changes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(id.to_string())
            .or_insert_with(|| watch::channel(0).0)
            .clone()
    }

    fn notify(&self, id: &str) {
        self.sender(id).send_modify(|v| *v += 1);
    }

    fn op_lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.ops
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(id.to_string())
            .or_default()
            .clone()
    }
}

/// Whether `id` is in one of [`Live`]'s sets.
fn listed(set: &Mutex<std::collections::HashSet<String>>, id: &str) -> bool {
    set.lock().unwrap_or_else(|p| p.into_inner()).contains(id)
}

/// What `wait` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    /// Until it is not running (returns at once if it is not).
    NotRunning,
    /// Until the next exit.
    NextExit,
    /// Until it is removed.
    Removed,
}

pub(crate) fn now() -> String {
    shim::log::timestamp_now()
}

pub(crate) fn new_id() -> String {
    let mut b = [0u8; 32];
    for chunk in b.chunks_mut(8) {
        chunk.copy_from_slice(&rand_u64().to_le_bytes());
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    h.finish()
}

const ADJECTIVES: [&str; 16] = [
    "admiring", "brave", "clever", "dazzling", "eager", "focused", "gallant", "happy", "jolly",
    "keen", "loving", "nifty", "quirky", "serene", "trusting", "vibrant",
];
const NOUNS: [&str; 16] = [
    "babbage", "curie", "darwin", "einstein", "franklin", "galileo", "hopper", "johnson",
    "lovelace", "meitner", "newton", "noether", "pasteur", "ritchie", "thompson", "turing",
];

impl Engine {
    /// Docker's kind of name, `adjective_scientist`; with a number appended when the plain
    /// names tried are taken, so a busy host never gets a conflict on a name nobody chose.
    fn generated_name(&self) -> String {
        for attempt in 0..64 {
            let r = rand_u64() as usize;
            let mut name = format!(
                "{}_{}",
                ADJECTIVES[r % ADJECTIVES.len()],
                NOUNS[(r / 64) % NOUNS.len()]
            );
            if attempt >= 8 {
                name.push_str(&((r >> 32) % 1000).to_string());
            }
            if self.containers.find(&name).is_err() {
                return name;
            }
        }
        new_id()[..12].to_string()
    }
}

fn valid_name(n: &str) -> bool {
    let b = n.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'.' || *c == b'-')
}

impl Engine {
    fn container_dir(&self, id: &str) -> PathBuf {
        self.root().join("containers").join(id)
    }

    /// All containers, newest first.
    pub fn containers(&self) -> Result<Vec<Container>, EngineError> {
        self.containers.list()
    }

    /// One container by ID, name or ID prefix.
    pub fn container(&self, key: &str) -> Result<Container, EngineError> {
        self.containers.find(key)
    }

    /// `docker create`: records the container and prepares its directory. Nothing runs yet.
    pub async fn create_container(
        &self,
        name: Option<&str>,
        mut req: CreateRequest,
    ) -> Result<(String, Vec<String>), EngineError> {
        // the defaults Docker records, so inspect shows what is in effect
        if req.host_config.log_config.kind.is_empty() {
            req.host_config.log_config.kind = "json-file".into();
        }
        if req.host_config.network_mode.is_empty() || req.host_config.network_mode == "default" {
            req.host_config.network_mode = self.networks().default_mode().into();
        }
        self.networks().normalize(&mut req)?;
        let (image, image_config) = if !req.host_config.rootfs.is_empty() {
            // --rootfs: a directory tree instead of an image; it names the container's image
            check_rootfs(&req.host_config.rootfs)?;
            req.config.image = req.host_config.rootfs.clone();
            (None, rootfs_image_config())
        } else {
            if req.config.image.is_empty() {
                return Err(EngineError::Invalid(
                    "no image specified: give an image to create the container from".into(),
                ));
            }
            let image = self.image(&req.config.image).map_err(|e| match e {
                EngineError::Image(berth_image::ImageError::NotFound { .. }) => {
                    EngineError::NotFound(format!("No such image: {}", req.config.image))
                }
                other => other,
            })?;
            let image_config = self.image_config(&image)?;
            (Some(image), image_config)
        };
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                let n = n.strip_prefix('/').unwrap_or(n);
                if !valid_name(n) {
                    return Err(EngineError::Invalid(format!(
                        "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                    )));
                }
                n.to_string()
            }
            None => self.generated_name(),
        };
        let restart = &req.host_config.restart_policy;
        match restart.name.as_str() {
            "" | "no" | "always" | "unless-stopped" | "on-failure" => {}
            other => return Err(EngineError::Invalid(format!("invalid restart policy '{other}': use no, always, on-failure[:N] or unless-stopped"))),
        }
        if req.host_config.auto_remove && !matches!(restart.name.as_str(), "" | "no") {
            return Err(EngineError::Invalid(
                "can't create 'AutoRemove' container with restart policy".into(),
            ));
        }
        let log = log_config(&req)?;
        let _ = log;
        self.networks()
            .check_request(&req, &exposed_ports(&req, &image_config))?;
        if let NetworkMode::Container(target) = NetworkMode::parse(&req.host_config.network_mode) {
            self.containers.find(&target).map_err(|_| {
                EngineError::NotFound(format!(
                    "No such container: {target} (named by --network container:{target})"
                ))
            })?;
        }
        // checked before anything is made (prepare_container resolves it again)
        resolve_runtime(&req.host_config.runtime)?;
        let id = new_id();
        let cgroup = self.prepare_cgroup(&id);
        let dir = self.container_dir(&id);
        let result = self
            .prepare_container(&id, &name, &dir, image.as_ref(), &image_config, req)
            .await;
        match result {
            Ok(warnings) => {
                // made by now (it ran alongside): a removal right after the create must find
                // it, or it would be made again behind the removal's back and left over
                if let Some(made) = cgroup {
                    let _ = made.await;
                }
                if let Ok(c) = self.containers.find(&id) {
                    self.container_event(&c, "create", &[]);
                }
                Ok((id, warnings))
            }
            Err(e) => {
                // nothing half-made: no directory, no record, no cgroup
                let _ = std::fs::remove_dir_all(&dir);
                if let Some(made) = cgroup {
                    let _ = made.await;
                }
                if let Ok(cg) = self.cgroup_of(&id) {
                    let _ = cg.destroy();
                }
                Err(e)
            }
        }
    }

    async fn prepare_container(
        &self,
        id: &str,
        name: &str,
        dir: &Path,
        image: Option<&berth_image::store::ImageRecord>,
        image_config: &berth_image::manifest::ImageConfig,
        req: CreateRequest,
    ) -> Result<Vec<String>, EngineError> {
        let runtime = resolve_runtime(&req.host_config.runtime)?;
        let io = |op: &'static str, p: &Path| {
            let p = p.to_path_buf();
            move |e: std::io::Error| EngineError::Internal(format!("{op} {}: {e}", p.display()))
        };
        let subdirs: &[&str] = match image {
            Some(_) => &["", "upper", "work", "bundle/rootfs"],
            None => &["", "bundle"],
        };
        for sub in subdirs {
            let p = dir.join(sub);
            std::fs::create_dir_all(&p).map_err(io("creating", &p))?;
        }
        let mounts = image.map(|image| self.store().mounts(image));
        let rootfs_dir =
            (!req.host_config.rootfs.is_empty()).then(|| PathBuf::from(&req.host_config.rootfs));
        let read_layer_file = |rel: &str| -> Option<String> {
            if let Some(root) = &rootfs_dir {
                // the tree is the root as it is (a symlink here would resolve on the host)
                let p = root.join(rel);
                return match std::fs::symlink_metadata(&p) {
                    Ok(m) if m.file_type().is_file() => std::fs::read_to_string(&p).ok(),
                    _ => None,
                };
            }
            let mounts = mounts.as_ref()?;
            for lower in &mounts.lowerdirs {
                let p = lower.join(rel);
                match std::fs::symlink_metadata(&p) {
                    Ok(m) if m.file_type().is_file() => return std::fs::read_to_string(&p).ok(),
                    Ok(_) => return None, // a whiteout or something else hides it
                    Err(_) => continue,
                }
            }
            None
        };
        let input = spec::SpecInput {
            request: &req,
            image: image_config,
            id,
            dir,
            passwd: read_layer_file("etc/passwd"),
            group: read_layer_file("etc/group"),
            init: match req.host_config.init {
                Some(true) => Some(init::install(self.root())?),
                _ => None,
            },
        };
        let (mut oci, warnings) = spec::build(&input).map_err(EngineError::Invalid)?;
        if let (Some(root), Some(spec_root)) = (&rootfs_dir, oci.root_mut()) {
            spec_root.set_path(root.clone());
        }
        if runtime.is_some() {
            // crun 1.8 refuses any ociVersion but 1.0.x; berth's spec needs nothing newer
            oci.set_version("1.0.2".into());
            // an external runtime makes the cgroup itself: at the path berth's cgroup code
            // reads (pause, top, OOM, stats), `/<parent>/<id>`
            if let Some(linux) = oci.linux_mut() {
                linux.set_cgroups_path(Some(PathBuf::from(format!(
                    "/{}/{id}",
                    self.config().cgroup_parent.trim_matches('/')
                ))));
            }
        }
        let hostname = oci.hostname().clone().unwrap_or_default();
        let hosts = network::hosts_file(&hostname, None, &req.host_config.extra_hosts);
        std::fs::write(dir.join("hosts"), hosts).map_err(io("writing", &dir.join("hosts")))?;
        std::fs::write(dir.join("hostname"), format!("{hostname}\n"))
            .map_err(io("writing", &dir.join("hostname")))?;
        let own_netns = NetworkMode::parse(&req.host_config.network_mode) != NetworkMode::Host;
        let resolv = network::resolv_conf(
            &std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
            &req,
            own_netns,
        );
        std::fs::write(dir.join("resolv.conf"), resolv)
            .map_err(io("writing", &dir.join("resolv.conf")))?;
        let spec_path = dir.join("bundle/config.json");
        std::fs::write(
            &spec_path,
            serde_json::to_vec(&oci).map_err(|e| EngineError::Internal(e.to_string()))?,
        )
        .map_err(io("writing", &spec_path))?;
        let overlay = mounts.as_ref().map(|m| {
            let mut data = m.overlay_options(&dir.join("upper"), &dir.join("work"));
            if req.host_config.auto_remove {
                // what an `--rm` container writes goes with it: no sync of the host's file
                // system when its root is unmounted (podman does the same)
                data.push_str(VOLATILE);
            }
            data
        });
        let shim_config = ShimConfig {
            id: id.to_string(),
            dir: dir.to_path_buf(),
            bundle: dir.join("bundle"),
            overlay,
            tty: req.config.tty,
            open_stdin: req.config.open_stdin,
            log: log_config(&req)?,
            cgroup_root: PathBuf::from("/sys/fs/cgroup"),
            cgroup_parent: self.config().cgroup_parent.clone(),
            exec: None,
            runtime_root: runtime.as_ref().map(|r| {
                let name = r.file_name().unwrap_or_default().to_string_lossy();
                self.root().join("runtimes").join(name.as_ref())
            }),
            runtime,
        };
        std::fs::write(
            dir.join("shim.json"),
            serde_json::to_vec(&shim_config).map_err(|e| EngineError::Internal(e.to_string()))?,
        )
        .map_err(io("writing", &dir.join("shim.json")))?;
        let c = Container {
            id: id.to_string(),
            name: name.to_string(),
            image: req.config.image.clone(),
            image_id: image.map(|i| i.id.to_string()).unwrap_or_default(),
            created_at: now(),
            config: req,
            state: State::Created,
            pid: 0,
            shim_pid: 0,
            exit_code: 0,
            error: String::new(),
            started_at: ZERO_TIME.into(),
            finished_at: ZERO_TIME.into(),
            oom_killed: false,
            restart_count: 0,
        };
        self.containers.insert(&c)?;
        Ok(warnings)
    }

    /// `docker start`: spawns the shim, connects early attach clients, lets the process run.
    pub async fn start_container(self: &Arc<Self>, key: &str) -> Result<bool, EngineError> {
        self.start_container_as(key, false).await
    }

    /// Starts a container; `by_policy`: the restart policy's start of a `restarting`
    /// container (it stays `restarting` until it runs, as in Docker, and is left alone if it
    /// was stopped or removed meanwhile).
    async fn start_container_as(
        self: &Arc<Self>,
        key: &str,
        by_policy: bool,
    ) -> Result<bool, EngineError> {
        let c = self.containers.find(key)?;
        if by_policy || c.state == State::Exited {
            // the last run's shim removed it
            let _ = self.prepare_cgroup(&c.id);
        } else if c.state == State::Created {
            // made at create (the shim makes it should it be gone)
            warm_cgroup_migration();
        }
        let lock = self.live.op_lock(&c.id);
        let _g = lock.lock().await;
        let mut c = self.containers.find(&c.id)?;
        match (c.state, by_policy) {
            (State::Restarting, true) => {}
            (_, true) => return Ok(false),
            (State::Running | State::Paused | State::Restarting, false) => return Ok(false),
            (State::Removing | State::Dead, false) => {
                return Err(EngineError::Conflict(format!(
                    "container {} is {}; it cannot be started",
                    c.id,
                    c.state.as_str()
                )))
            }
            (State::Created | State::Exited, false) => {}
        }
        self.live
            .stopping
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&c.id);
        let dir = self.container_dir(&c.id);
        for f in ["exit.json", "state.json"] {
            let _ = std::fs::remove_file(dir.join(f));
        }
        exec::clear_exec_dirs(&dir);
        if c.config.host_config.auto_remove {
            // the mark a volatile overlay leaves in its work directory; overlayfs refuses to
            // mount the same upper directory again while it is there (a restart)
            let _ = std::fs::remove_dir_all(dir.join("work/work/incompat"));
        }
        let mode = NetworkMode::parse(&c.config.host_config.network_mode);
        if let NetworkMode::Container(target) = &mode {
            self.join_network_of(&dir, target)?;
        }
        // with no network to join between its creation and its start, the container starts
        // the moment it is ready: the attach streams waiting for it and the start are said
        // ahead, on connections the shim gets with its fork (no round trip through here)
        let (mut ahead, mut waiting) =
            if matches!(mode, NetworkMode::Bridge | NetworkMode::Named(_)) {
                (None, Vec::new())
            } else {
                match SaidAhead::new(self.live.take_pending(&c.id)) {
                    Ok(a) => (Some(a), Vec::new()),
                    Err(waiting) => (None, waiting),
                }
            };
        let shim_ends = ahead
            .as_mut()
            .map(SaidAhead::take_shim_ends)
            .unwrap_or_default();
        let (ready, delivered) = self.spawn_shim_with(&dir, shim_ends).await;
        let ready = match ready {
            Ok(r) => r,
            Err(e) => return Err(e),
        };
        if let Some(msg) = ready.error {
            let code = ready.code.unwrap_or(125);
            c.exit_code = code as i64;
            c.error = msg.clone();
            c.finished_at = now();
            self.containers.update(&c)?;
            self.live.notify(&c.id);
            return Err(EngineError::StartFailed {
                code,
                message: format!("failed to create container process: {msg}"),
            });
        }
        let run: RunState =
            serde_json::from_slice(&std::fs::read(dir.join("state.json")).unwrap_or_default())
                .map_err(|e| EngineError::Internal(format!("shim state of {}: {e}", c.id)))?;
        if matches!(mode, NetworkMode::Bridge | NetworkMode::Named(_)) {
            // the container exists, stopped before its execve: join it to its networks now
            if let Err(e) = self.join_networks(&c, run.pid, &dir).await {
                // nothing half-made: the created process goes, and its endpoints with it
                let _ = shim::send_signal(run.pid, 9);
                wait_for_shim(run.shim_pid).await;
                self.networks().disconnect(&c.id, &dir).await;
                c.exit_code = 125;
                c.error = e.to_string();
                c.finished_at = now();
                self.containers.update(&c)?;
                self.live.notify(&c.id);
                return Err(e);
            }
        }
        // attach clients connect before the start (the stream from its first byte); with the
        // start said ahead, only those that came while the container was made are left, and
        // the start's answer waits on its own connection
        let said = match ahead {
            Some(ahead) if delivered => Some(ahead.hand_over()?),
            not_delivered => {
                waiting.extend(not_delivered.into_iter().flat_map(|a| a.waiting));
                None
            }
        };
        waiting.extend(self.live.take_pending(&c.id));
        for tx in waiting {
            if let Ok(s) = connect_attach(&dir, true).await {
                let _ = tx.send(s);
            }
        }
        let sock = match said {
            Some(sock) => sock,
            None => {
                let mut sock = tokio::net::UnixStream::connect(shim::socket_path(&dir))
                    .await
                    .map_err(|e| {
                        EngineError::Internal(format!("connecting to the shim of {}: {e}", c.id))
                    })?;
                sock.write_all(&hello_line(&Hello::Start))
                    .await
                    .map_err(|e| EngineError::Internal(format!("starting {}: {e}", c.id)))?;
                sock
            }
        };
        let mut answer = String::new();
        tokio::io::BufReader::new(sock)
            .read_line(&mut answer)
            .await
            .map_err(|e| EngineError::Internal(format!("starting {}: {e}", c.id)))?;
        let v: serde_json::Value = serde_json::from_str(&answer).unwrap_or_default();
        if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
            let code = if e.contains("executable file not found")
                || e.contains("no such file or directory")
            {
                127
            } else if e.contains("permission denied") {
                126
            } else {
                125
            };
            // the shim records the exit; make sure the record reflects the failure, and let
            // the shim finish writing into the directory before anyone may remove it
            wait_for_shim(run.shim_pid).await;
            c.exit_code = code as i64;
            c.error = e.to_string();
            self.containers.update(&c)?;
            self.live.notify(&c.id);
            return Err(EngineError::StartFailed {
                code,
                message: e.to_string(),
            });
        }
        c.state = State::Running;
        c.pid = run.pid as i64;
        c.shim_pid = run.shim_pid as i64;
        c.started_at = run.started_at;
        c.error.clear();
        c.oom_killed = false;
        self.containers.update(&c)?;
        self.container_event(&c, "start", &[]);
        self.live.notify(&c.id);
        self.watch_shim(c.id.clone(), run.shim_pid);
        Ok(true)
    }

    async fn spawn_shim(self: &Arc<Self>, dir: &Path) -> Result<Ready, EngineError> {
        self.spawn_shim_with(dir, Vec::new()).await.0
    }

    /// Starts a shim for `dir` and reads its report; `clients` go to it as connections made
    /// ahead (see `shim::run`). The flag: whether they did (a forked shim); an executed one
    /// (no zygote) never gets them.
    async fn spawn_shim_with(
        self: &Arc<Self>,
        dir: &Path,
        clients: Vec<std::os::fd::OwnedFd>,
    ) -> (Result<Ready, EngineError>, bool) {
        let Some(exe) = self.config().shim_exe.clone() else {
            return (
                Err(EngineError::Internal("no shim binary configured".into())),
                false,
            );
        };
        let log = match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("shim.log"))
        {
            Ok(log) => log,
            Err(e) => {
                return (
                    Err(EngineError::Internal(format!("opening shim log: {e}"))),
                    false,
                )
            }
        };
        if let Some(ready) = self.spawn_shim_forked(dir, &log, clients).await {
            return (ready, true);
        }
        (self.execute_shim(&exe, dir, log).await, false)
    }

    /// Starts the shim by executing it (no zygote) and reads its report.
    async fn execute_shim(
        &self,
        exe: &Path,
        dir: &Path,
        log: std::fs::File,
    ) -> Result<Ready, EngineError> {
        let mut child = tokio::process::Command::new(exe)
            .arg("shim")
            .arg(dir.join("shim.json"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(log)
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .spawn()
            .map_err(|e| EngineError::Internal(format!("starting shim {}: {e}", exe.display())))?;
        let out = child.stdout.take().expect("piped stdout");
        // one line, not EOF: the container process keeps the pipe until its execve
        let mut line = String::new();
        tokio::io::BufReader::new(out)
            .read_line(&mut line)
            .await
            .map_err(|e| EngineError::Internal(format!("reading shim report: {e}")))?;
        let buf = line.into_bytes();
        let _ = child.wait().await;
        if buf.is_empty() {
            let log = std::fs::read_to_string(dir.join("shim.log")).unwrap_or_default();
            return Err(EngineError::Internal(format!(
                "the shim exited without a report; shim.log: {}",
                log.lines().last().unwrap_or("")
            )));
        }
        serde_json::from_slice(&buf)
            .map_err(|e| EngineError::Internal(format!("malformed shim report: {e}")))
    }

    /// Starts the shim by a fork of the zygote (see `berth_runtime::shim::zygote`) and reads its
    /// report. `None` when the zygote is absent or broke (it is dropped, and started again for
    /// the next container): the caller executes the shim instead.
    async fn spawn_shim_forked(
        self: &Arc<Self>,
        dir: &Path,
        log: &std::fs::File,
        clients: Vec<std::os::fd::OwnedFd>,
    ) -> Option<Result<Ready, EngineError>> {
        let exe = self.config().shim_exe.clone()?;
        let (report_r, report_w) =
            rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).ok()?;
        let log: std::os::fd::OwnedFd = log.try_clone().ok()?.into();
        let engine = self.clone();
        let config = dir.join("shim.json");
        let dir = dir.to_path_buf();
        tokio::task::spawn_blocking(move || {
            {
                let mut z = engine.zygote.lock().unwrap_or_else(|p| p.into_inner());
                if z.is_none() {
                    *z = berth_runtime::shim::zygote::Zygote::spawn(&exe).ok();
                }
                let forked = z.as_mut()?.spawn_shim(&config, report_w, log, clients);
                if let Err(e) = forked {
                    tracing::warn!(error = %e, "the shim zygote failed; executing the shim");
                    *z = None;
                    return None;
                }
            }
            // one line, not EOF: the container process keeps the pipe until its execve
            let mut line = String::new();
            let read = std::io::BufRead::read_line(
                &mut std::io::BufReader::new(std::fs::File::from(report_r)),
                &mut line,
            );
            Some(match read {
                Err(e) => Err(EngineError::Internal(format!("reading shim report: {e}"))),
                Ok(0) => {
                    let log = std::fs::read_to_string(dir.join("shim.log")).unwrap_or_default();
                    Err(EngineError::Internal(format!(
                        "the shim exited without a report; shim.log: {}",
                        log.lines().last().unwrap_or("")
                    )))
                }
                Ok(_) => serde_json::from_str(&line)
                    .map_err(|e| EngineError::Internal(format!("malformed shim report: {e}"))),
            })
        })
        .await
        .ok()
        .flatten()
    }

    /// Watches a shim until it exits, then records the container's exit and applies
    /// `--rm` and restart policies.
    fn watch_shim(self: &Arc<Self>, id: String, shim_pid: i32) {
        let engine = self.clone();
        tokio::spawn(async move {
            #[allow(
                deprecated,
                reason = "AsyncFd owns the OwnedFd, so the fd cannot be closed while registered"
            )]
            let watched = shim::pidfd(shim_pid).and_then(tokio::io::unix::AsyncFd::new);
            match watched {
                Ok(fd) => {
                    let _ = fd.readable().await;
                }
                Err(_) => {
                    // no pidfd (gone already, or an old kernel): poll
                    while shim::alive(shim_pid) {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
            engine.on_exit(&id).await;
        });
    }

    async fn on_exit(self: &Arc<Self>, id: &str) {
        let Ok(mut c) = self.containers.find(id) else {
            return;
        };
        let dir = self.container_dir(id);
        let exit: Option<ExitState> = std::fs::read(dir.join("exit.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        match exit {
            Some(e) => {
                c.exit_code = e.exit_code as i64;
                c.oom_killed = e.oom_killed;
                c.finished_at = e.finished_at;
                if let Some(err) = e.error {
                    c.error = err;
                }
                c.state = State::Exited;
            }
            None => {
                // the shim died without recording an exit (killed): the container may still run
                if c.pid > 0 && shim::alive(c.pid as i32) {
                    tracing::warn!(
                        container = id,
                        "shim vanished while the container runs; killing it"
                    );
                    let _ = shim::send_signal(c.pid as i32, 9);
                }
                c.exit_code = 255;
                c.finished_at = now();
                c.state = State::Exited;
                c.error = "the container's shim exited unexpectedly".into();
            }
        }
        c.pid = 0;
        c.shim_pid = 0;
        self.networks().disconnect(id, &dir).await;
        let _ = self.containers.update(&c);
        if c.oom_killed {
            self.container_event(&c, "oom", &[]);
        }
        let ran_for = match (
            shim::log::parse_time(&c.started_at),
            shim::log::parse_time(&c.finished_at),
        ) {
            (Some(a), Some(b)) if b >= a => format!("{}", (b - a) as i64),
            _ => "0".to_owned(),
        };
        self.container_event(
            &c,
            "die",
            &[
                ("exitCode", c.exit_code.to_string()),
                ("execDuration", ran_for),
            ],
        );
        self.live.notify(id);
        let stopped_on_purpose = listed(&self.live.stopping, id);
        if c.config.host_config.auto_remove && !listed(&self.live.restarting, id) {
            let _ = self.remove_container(id, true).await;
            return;
        }
        let policy = &c.config.host_config.restart_policy;
        let restart = !stopped_on_purpose
            && match policy.name.as_str() {
                "always" | "unless-stopped" => true,
                "on-failure" => {
                    c.exit_code != 0
                        && (policy.maximum_retry_count == 0
                            || c.restart_count < policy.maximum_retry_count)
                }
                _ => false,
            };
        if restart {
            // Docker's backoff: 100ms doubling, capped at 1 minute
            let delay = Duration::from_millis(100u64.saturating_mul(1 << c.restart_count.min(10)))
                .min(Duration::from_secs(60));
            c.state = State::Restarting;
            c.restart_count += 1;
            let _ = self.containers.update(&c);
            self.live.notify(id);
            let engine = self.clone();
            let id = id.to_string();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                if let Err(e) = engine.start_container_as(&id, true).await {
                    tracing::warn!(container = id, error = %e, "restart failed");
                    if let Ok(mut c) = engine.containers.find(&id) {
                        if c.state == State::Restarting {
                            c.state = State::Exited;
                            let _ = engine.containers.update(&c);
                            engine.live.notify(&id);
                        }
                    }
                }
            });
        }
    }

    /// Waits for a condition; returns the exit code.
    pub async fn wait_container(
        &self,
        key: &str,
        condition: WaitCondition,
    ) -> Result<i64, EngineError> {
        let c = self.containers.find(key)?;
        let watch = self.watch_container(&c);
        self.wait_watched(watch, condition).await
    }

    /// Sends a signal to the container's init.
    pub async fn kill_container(&self, key: &str, signal: &str) -> Result<(), EngineError> {
        let c = self.containers.find(key)?;
        let sig = if signal.is_empty() {
            9
        } else {
            spec::signal_number(signal)
                .ok_or_else(|| EngineError::Invalid(format!("Invalid signal: {signal}")))?
        };
        if c.state != State::Running && c.state != State::Paused {
            return Err(EngineError::Conflict(format!(
                "Cannot kill container: {}: container {} is not running",
                key, c.id
            )));
        }
        if sig == 9 || sig == 15 {
            self.live
                .stopping
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(c.id.clone());
        }
        shim::send_signal(c.pid as i32, sig)
            .map_err(|e| EngineError::Internal(format!("signalling {}: {e}", c.id)))?;
        self.container_event(&c, "kill", &[("signal", sig.to_string())]);
        Ok(())
    }

    /// `docker stop`: the stop signal, then SIGKILL after the timeout. Returns false if it was
    /// not running.
    pub async fn stop_container(
        &self,
        key: &str,
        timeout: Option<i64>,
    ) -> Result<bool, EngineError> {
        let mut c = self.containers.find(key)?;
        if c.state == State::Paused {
            // frozen processes cannot act on signals: thaw first, as docker does
            self.unpause_container(&c.id).await?;
            c = self.containers.find(&c.id)?;
        }
        if c.state != State::Running {
            return Ok(false);
        }
        self.live
            .stopping
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(c.id.clone());
        let sig = c
            .config
            .config
            .stop_signal
            .as_deref()
            .and_then(spec::signal_number)
            .unwrap_or(15);
        let secs = timeout.or(c.config.config.stop_timeout).unwrap_or(10);
        if shim::send_signal(c.pid as i32, sig).is_ok() {
            self.container_event(&c, "kill", &[("signal", sig.to_string())]);
        }
        let waited = if secs < 0 {
            self.wait_container(&c.id, WaitCondition::NotRunning)
                .await
                .map(|_| ())
        } else {
            match tokio::time::timeout(
                Duration::from_secs(secs as u64),
                self.wait_container(&c.id, WaitCondition::NotRunning),
            )
            .await
            {
                Ok(r) => r.map(|_| ()),
                Err(_) => {
                    if shim::send_signal(c.pid as i32, 9).is_ok() {
                        self.container_event(&c, "kill", &[("signal", "9".into())]);
                    }
                    self.wait_container(&c.id, WaitCondition::NotRunning)
                        .await
                        .map(|_| ())
                }
            }
        };
        waited?;
        self.container_event(&c, "stop", &[]);
        Ok(true)
    }

    /// Connects an attach stream: at once when running, else when it starts.
    pub async fn attach_container(
        &self,
        key: &str,
        stdin: bool,
    ) -> Result<tokio::net::UnixStream, EngineError> {
        let c = self.containers.find(key)?;
        if c.state == State::Running {
            self.container_event(&c, "attach", &[]);
            return connect_attach(&self.container_dir(&c.id), stdin)
                .await
                .map_err(|e| EngineError::Internal(format!("attaching to {}: {e}", c.id)));
        }
        // not running yet: connected when it starts (the event is published there too)
        self.attach_on_start(&c)
            .await
            .map_err(|_| EngineError::Conflict(format!("container {} did not start", c.id)))
    }

    /// The json-file log path and its rotation count.
    pub fn log_files(&self, c: &Container) -> (PathBuf, u32) {
        let max = log_config(&c.config).map(|l| l.max_files).unwrap_or(3);
        (self.container_dir(&c.id).join("container-json.log"), max)
    }

    /// After a daemon restart: re-watch live shims, record exits that happened meanwhile,
    /// then drop the network state (addresses, published ports, veths) of containers that
    /// are gone.
    pub async fn reconcile(self: &Arc<Self>) {
        let Ok(list) = self.containers.list() else {
            return;
        };
        self.reconcile_containers(list).await;
        let mut live = Vec::new();
        for c in self.containers.list().unwrap_or_default() {
            if matches!(c.state, State::Running | State::Paused) {
                live.push(network::LiveEndpoints {
                    endpoints: network::read_endpoints(&self.container_dir(&c.id)),
                    dns: c.config.host_config.dns.clone(),
                    id: c.id,
                    name: c.name,
                });
            } else {
                let _ = std::fs::remove_file(self.container_dir(&c.id).join("network.json"));
            }
        }
        self.networks().reconcile(&live).await;
    }

    async fn reconcile_containers(self: &Arc<Self>, list: Vec<Container>) {
        for c in list {
            if !matches!(c.state, State::Running | State::Paused | State::Restarting) {
                continue;
            }
            if c.shim_pid > 0 && shim::alive(c.shim_pid as i32) {
                tracing::info!(container = c.id, "re-attached to running container");
                self.watch_shim(c.id.clone(), c.shim_pid as i32);
            } else {
                self.on_exit(&c.id).await;
            }
        }
    }
}

/// The exposed ports of a container: its image's and its request's (`"80/tcp"`).
fn exposed_ports(req: &CreateRequest, image: &berth_image::manifest::ImageConfig) -> Vec<String> {
    let mut ports: Vec<String> = image
        .config
        .as_ref()
        .and_then(|c| c.exposed_ports.as_ref())
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    if let Some(m) = &req.config.exposed_ports {
        ports.extend(m.keys().cloned());
    }
    ports.sort();
    ports.dedup();
    ports
}

impl Engine {
    /// The image config of a container (an empty one for `--rootfs` or a removed image).
    fn container_image_config(&self, c: &Container) -> berth_image::manifest::ImageConfig {
        if !c.config.host_config.rootfs.is_empty() {
            return rootfs_image_config();
        }
        self.image(&c.image_id)
            .ok()
            .and_then(|image| self.image_config(&image).ok())
            .unwrap_or_else(rootfs_image_config)
    }

    /// `--network container:NAME`: points the bundle's network namespace at `NAME`'s, which
    /// must be running.
    fn join_network_of(&self, dir: &Path, target: &str) -> Result<(), EngineError> {
        let other = self.containers.find(target).map_err(|_| {
            EngineError::NotFound(format!(
                "No such container: {target} (named by --network container:{target})"
            ))
        })?;
        if !matches!(other.state, State::Running | State::Paused) || other.pid <= 0 {
            return Err(EngineError::Conflict(format!(
                "cannot join the network of container {target}: it is not running; start it first"
            )));
        }
        let path = dir.join("bundle/config.json");
        let text = std::fs::read(&path)
            .map_err(|e| EngineError::Internal(format!("reading {}: {e}", path.display())))?;
        let mut spec: serde_json::Value = serde_json::from_slice(&text)
            .map_err(|e| EngineError::Internal(format!("parsing {}: {e}", path.display())))?;
        let netns = format!("/proc/{}/ns/net", other.pid);
        if let Some(list) = spec["linux"]["namespaces"].as_array_mut() {
            list.retain(|n| n["type"] != "network");
            list.push(serde_json::json!({"type": "network", "path": netns}));
        }
        let bytes = serde_json::to_vec(&spec).map_err(|e| EngineError::Internal(e.to_string()))?;
        std::fs::write(&path, bytes)
            .map_err(|e| EngineError::Internal(format!("writing {}: {e}", path.display())))
    }
}

/// A hello as the shim reads it: one line of JSON.
fn hello_line(hello: &Hello) -> Vec<u8> {
    format!("{}\n", serde_json::to_string(hello).unwrap_or_default()).into_bytes()
}

async fn connect_attach(dir: &Path, stdin: bool) -> std::io::Result<tokio::net::UnixStream> {
    let mut s = tokio::net::UnixStream::connect(shim::socket_path(dir)).await?;
    s.write_all(&hello_line(&Hello::Attach { stdin })).await?;
    Ok(s)
}

/// Attach clients waiting for a container to start.
type Waiting = Vec<tokio::sync::oneshot::Sender<tokio::net::UnixStream>>;

/// The connections a start says ahead (see `start_container_as`): one per attach client
/// waiting for the start, its hello written, then the start's own, its `start` written. The
/// shim ends go with the fork; the daemon keeps the others.
struct SaidAhead {
    waiting: Waiting,
    attach: Vec<std::os::unix::net::UnixStream>,
    start: std::os::unix::net::UnixStream,
    shim_ends: Vec<std::os::unix::net::UnixStream>,
}

impl SaidAhead {
    /// The waiting attach clients back when it cannot be done (more of them than one fork
    /// carries, no socket pairs): the start then goes the long way.
    fn new(waiting: Waiting) -> Result<SaidAhead, Waiting> {
        use std::io::Write;
        if waiting.len() >= shim::zygote::MAX_CLIENTS {
            return Err(waiting);
        }
        let pair = |hello: &Hello| -> std::io::Result<_> {
            let (mut ours, theirs) = std::os::unix::net::UnixStream::pair()?;
            ours.write_all(&hello_line(hello))?;
            Ok((ours, theirs))
        };
        let mut attach = Vec::new();
        let mut shim_ends = Vec::new();
        for _ in &waiting {
            match pair(&Hello::Attach { stdin: true }) {
                Ok((ours, theirs)) => {
                    attach.push(ours);
                    shim_ends.push(theirs);
                }
                Err(_) => return Err(waiting),
            }
        }
        let Ok((start, theirs)) = pair(&Hello::Start) else {
            return Err(waiting);
        };
        shim_ends.push(theirs);
        Ok(SaidAhead {
            waiting,
            attach,
            start,
            shim_ends,
        })
    }

    /// The shim ends, for the fork.
    fn take_shim_ends(&mut self) -> Vec<std::os::fd::OwnedFd> {
        std::mem::take(&mut self.shim_ends)
            .into_iter()
            .map(Into::into)
            .collect()
    }

    /// After the shim took them: the attach streams to their waiters; the start's connection,
    /// for its answer.
    fn hand_over(self) -> Result<tokio::net::UnixStream, EngineError> {
        let tokio_stream = |s: std::os::unix::net::UnixStream| {
            s.set_nonblocking(true)
                .and_then(|()| tokio::net::UnixStream::from_std(s))
        };
        for (tx, s) in self.waiting.into_iter().zip(self.attach) {
            if let Ok(s) = tokio_stream(s) {
                let _ = tx.send(s);
            }
        }
        tokio_stream(self.start)
            .map_err(|e| EngineError::Internal(format!("the start connection: {e}")))
    }
}

/// Sets the size of the terminal of the shim in `dir` (a container's or an exec's).
pub(super) async fn resize_terminal(dir: &Path, rows: u16, cols: u16) -> std::io::Result<()> {
    let mut s = connect_attach(dir, false).await?;
    let mut size = rows.to_be_bytes().to_vec();
    size.extend_from_slice(&cols.to_be_bytes());
    s.write_all(&shim::frame(3, &size)).await?;
    s.shutdown().await
}

/// Waits (up to 2 s, then SIGKILL) for a shim process to end.
async fn wait_for_shim(shim_pid: i32) {
    for _ in 0..200 {
        if !shim::alive(shim_pid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = shim::send_signal(shim_pid, 9);
    for _ in 0..100 {
        if !shim::alive(shim_pid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Whether an exit happened in the last two seconds. `docker run` asks for the next exit
/// concurrently with starting the container; a container that is faster than that request
/// has already exited when it arrives, and that exit is the one the client means.
fn just_exited(finished_at: &str) -> bool {
    let Some(t) = shim::log::parse_time(finished_at) else {
        return false;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    (0.0..2.0).contains(&(now - t))
}

/// `--runtime`: berth's own (`None`), or the path of an external OCI runtime: `runc`, `crun`
/// or `youki` found on PATH, or an absolute path to an executable.
pub fn resolve_runtime(name: &str) -> Result<Option<PathBuf>, EngineError> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    match name {
        "" | "berth" => Ok(None),
        "runc" | "crun" | "youki" => {
            let path = std::env::var("PATH").unwrap_or_default();
            let dirs = path
                .split(':')
                .chain(["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]);
            for d in dirs.filter(|d| !d.is_empty()) {
                let p = Path::new(d).join(name);
                if executable(&p) {
                    return Ok(Some(p));
                }
            }
            Err(EngineError::Invalid(format!(
                "runtime {name} is not installed: no executable {name} on PATH (install it, or give --runtime an absolute path)"
            )))
        }
        other if other.starts_with('/') => {
            if executable(Path::new(other)) {
                Ok(Some(PathBuf::from(other)))
            } else {
                Err(EngineError::Invalid(format!(
                    "runtime {other} is not an executable file; give the absolute path of an OCI runtime"
                )))
            }
        }
        other => Err(EngineError::Invalid(format!(
            "unknown or invalid runtime name: {other} (use berth, runc, crun, youki or an absolute path to an OCI runtime)"
        ))),
    }
}

/// `--rootfs DIR`: an absolute path to an existing directory (symlinks are followed).
fn check_rootfs(dir: &str) -> Result<(), EngineError> {
    let p = Path::new(dir);
    if !p.is_absolute() {
        return Err(EngineError::Invalid(format!(
            "--rootfs {dir}: the root file system must be an absolute path"
        )));
    }
    match std::fs::metadata(p) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(EngineError::Invalid(format!(
            "--rootfs {dir}: not a directory; give a directory tree to use as the root"
        ))),
        Err(e) => Err(EngineError::Invalid(format!(
            "--rootfs {dir}: {e}; give an existing directory tree to use as the root"
        ))),
    }
}

/// The image config of a `--rootfs` container: nothing but the platform.
fn rootfs_image_config() -> berth_image::manifest::ImageConfig {
    serde_json::from_value(serde_json::json!({
        "architecture": std::env::consts::ARCH,
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": []},
    }))
    .expect("a valid image config")
}

/// `--log-opt max-size/max-file` → rotation settings.
pub fn log_config(req: &CreateRequest) -> Result<LogConfig, EngineError> {
    let lc = &req.host_config.log_config;
    match lc.kind.as_str() {
        "" | "json-file" => {}
        other => {
            return Err(EngineError::Invalid(format!(
                "logging driver {other:?} is not supported; berth writes json-file logs"
            )))
        }
    }
    let mut out = LogConfig::default();
    for (k, v) in &lc.config {
        match k.as_str() {
            "max-size" => {
                out.max_size = if v == "-1" {
                    0
                } else {
                    parse_size(v).ok_or_else(|| {
                        EngineError::Invalid(format!("invalid max-size {v:?}: use e.g. 10m"))
                    })?
                }
            }
            "max-file" => {
                out.max_files = v.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                    EngineError::Invalid(format!("invalid max-file {v:?}: must be at least 1"))
                })?
            }
            other => {
                return Err(EngineError::Invalid(format!(
                    "unknown log opt '{other}' for json-file log driver"
                )))
            }
        }
    }
    Ok(out)
}

fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let n: f64 = s[..split].parse().ok()?;
    let mult: u64 = match s[split..].trim_end_matches('b') {
        "" => 1,
        "k" => 1024,
        "m" => 1024 * 1024,
        "g" => 1024 * 1024 * 1024,
        _ => return None,
    };
    Some((n * mult as f64) as u64)
}

impl Engine {
    /// Creates the container's cgroup ahead of its shim, then starts warming the kernel's
    /// migration lock (see [`warm_cgroup_migration`]) while the rest of create/start goes on.
    /// In this order because the warm-up holds the kernel's cgroup mutex, which a mkdir needs.
    /// Best effort: the shim creates what is missing.
    /// Makes the cgroup of `id` on a blocking thread, beside the rest of the create or start
    /// (the shim makes it too, reusing what exists, should it come first).
    fn prepare_cgroup(&self, id: &str) -> Option<tokio::task::JoinHandle<()>> {
        warm_cgroup_migration();
        let m = self.cgroup_manager()?.clone();
        let id = id.to_string();
        Some(tokio::task::spawn_blocking(move || {
            if let Err(e) = m.create(&id) {
                tracing::debug!(container = id, error = %e, "creating the cgroup ahead of the shim");
            }
        }))
    }

    /// Publishes a container event with Docker's attributes: name, image, the labels, and
    /// `extra` (exitCode, signal, ...).
    fn container_event(&self, c: &Container, action: &str, extra: &[(&str, String)]) {
        let mut attributes = c.config.config.labels.clone();
        attributes.insert("name".into(), c.name.clone());
        attributes.insert("image".into(), c.image.clone());
        for (k, v) in extra {
            attributes.insert((*k).to_owned(), v.clone());
        }
        self.events()
            .publish("container", action, &c.id, attributes);
    }

    pub(crate) fn cgroup_of(&self, id: &str) -> Result<berth_runtime::cgroup::Cgroup, EngineError> {
        let m = self.cgroup_manager().ok_or_else(|| {
            EngineError::Internal(format!("cgroup of {id}: no usable cgroup hierarchy"))
        })?;
        m.open(id)
            .map_err(|e| EngineError::Internal(format!("cgroup of {id}: {e}")))
    }

    /// The host's cgroup layout with the containers' parent, detected at first use.
    fn cgroup_manager(&self) -> Option<&berth_runtime::cgroup::CgroupManager> {
        self.cgroups
            .get_or_init(|| {
                berth_runtime::cgroup::CgroupManager::detect("/sys/fs/cgroup", Path::new("/proc"))
                    .and_then(|m| m.with_parent(&self.config().cgroup_parent))
                    .map_err(|e| tracing::warn!(error = %e, "detecting the cgroup layout"))
                    .ok()
            })
            .as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_recent_exits() {
        assert_eq!(shim::log::parse_time("1970-01-01T00:00:01.5Z"), Some(1.5));
        assert_eq!(
            shim::log::parse_time("2023-11-14T22:13:20.000000000Z"),
            Some(1_700_000_000.0)
        );
        assert!(just_exited(&now()));
        assert!(!just_exited("2023-11-14T22:13:20Z"));
        assert!(!just_exited(ZERO_TIME));
    }

    #[test]
    fn runtimes_resolve() {
        assert_eq!(resolve_runtime("").expect("default"), None);
        assert_eq!(resolve_runtime("berth").expect("own"), None);
        let e = resolve_runtime("nosuchruntime")
            .expect_err("unknown")
            .to_string();
        assert!(
            e.contains("unknown or invalid runtime name: nosuchruntime"),
            "{e}"
        );
        let plain = std::env::temp_dir().join(format!("berth-plain-{}", std::process::id()));
        std::fs::write(&plain, "x").expect("write");
        let e = resolve_runtime(&plain.to_string_lossy())
            .expect_err("not executable")
            .to_string();
        let _ = std::fs::remove_file(&plain);
        assert!(e.contains("not an executable"), "{e}");
        assert!(resolve_runtime("/nonexistent/runc").is_err());
        assert_eq!(
            resolve_runtime("/bin/sh").expect("absolute"),
            Some(PathBuf::from("/bin/sh"))
        );
    }

    #[test]
    fn rootfs_paths_are_checked() {
        let dir = std::env::temp_dir();
        assert!(check_rootfs(&dir.to_string_lossy()).is_ok());
        let e = check_rootfs("relative/tree")
            .expect_err("relative")
            .to_string();
        assert!(e.contains("absolute path"), "{e}");
        let e = check_rootfs("/nonexistent/berth-tree")
            .expect_err("missing")
            .to_string();
        assert!(
            e.contains("/nonexistent/berth-tree") && e.contains("existing directory"),
            "{e}"
        );
        let e = check_rootfs("/etc/hostname")
            .expect_err("a file")
            .to_string();
        assert!(e.contains("not a directory"), "{e}");
        assert_eq!(rootfs_image_config().os, "linux");
    }

    #[test]
    fn log_options() {
        let mut req = CreateRequest::default();
        req.host_config
            .log_config
            .config
            .insert("max-size".into(), "1k".into());
        req.host_config
            .log_config
            .config
            .insert("max-file".into(), "2".into());
        assert_eq!(
            log_config(&req).expect("valid"),
            LogConfig {
                max_size: 1024,
                max_files: 2
            }
        );
        req.host_config
            .log_config
            .config
            .insert("max-file".into(), "0".into());
        assert!(log_config(&req).is_err());
        let mut req = CreateRequest::default();
        req.host_config.log_config.kind = "syslog".into();
        assert!(log_config(&req).is_err());
    }
}
