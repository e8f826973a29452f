//! Global flags, where the daemon is, and starting it when it is not running.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use berth_api::ApiClient;

use crate::EnvVars;

/// Flags every command takes.
#[derive(clap::Args, Clone, Debug)]
pub struct GlobalArgs {
    /// State directory
    #[arg(long, env = EnvVars::BERTH_ROOT, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Daemon socket to connect to (default unix:///run/berth/berth.sock, or DIR/berth.sock with --root)
    #[arg(short = 'H', long, env = EnvVars::BERTH_HOST, value_name = "unix://PATH")]
    pub host: Option<String>,
    /// Do not start the daemon when it is not running
    #[arg(long)]
    pub no_autostart: bool,
    /// Log level (error, warn, info, debug, trace)
    #[arg(short = 'l', long, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Enable debug output
    #[arg(short = 'D', long)]
    pub debug: bool,
}

/// `berth daemon`'s exit code when another daemon holds the root's lock.
pub const LOCKED_EXIT: i32 = 3;

/// Default state directory.
pub const DEFAULT_ROOT: &str = "/var/lib/berth";
/// Default socket.
pub const DEFAULT_SOCKET: &str = "/run/berth/berth.sock";

impl GlobalArgs {
    /// The state directory in effect.
    pub fn root(&self) -> PathBuf {
        self.root
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT))
    }

    /// The socket in effect: `-H`, else `ROOT/berth.sock` with `--root`, else the default.
    pub fn socket(&self) -> Result<PathBuf> {
        match &self.host {
            Some(h) => match h.strip_prefix("unix://") {
                Some(p) if !p.is_empty() => Ok(PathBuf::from(p)),
                _ if h.starts_with('/') => Ok(PathBuf::from(h)),
                _ => bail!("unsupported host {h:?}: berth speaks to its daemon over unix://PATH"),
            },
            None => Ok(match &self.root {
                Some(r) => r.join("berth.sock"),
                None => PathBuf::from(DEFAULT_SOCKET),
            }),
        }
    }

    /// An API client for a running daemon, starting one for this root if none answers.
    pub async fn client(&self) -> Result<ApiClient> {
        let socket = self.socket()?;
        // a listening socket is enough (no _ping round trip on every command); a daemon that
        // accepts but does not answer shows up as an error of the request itself. The
        // connection serves the first request.
        if let Ok(stream) = std::os::unix::net::UnixStream::connect(&socket) {
            return Ok(ApiClient::with_connection(&socket, stream));
        }
        let client = ApiClient::new(&socket);
        if self.no_autostart {
            bail!(
                "Cannot connect to the berth daemon at unix://{}. Is the daemon running? (start it with 'berth daemon', or drop --no-autostart)",
                socket.display()
            );
        }
        if self.host.is_some() && self.root.is_none() && socket != Path::new(DEFAULT_SOCKET) {
            // a custom socket with the default root would start a second daemon on that root
            tracing::debug!("starting a daemon for a custom socket with the default root");
        }
        self.start_daemon(&socket).await?;
        Ok(client)
    }

    async fn start_daemon(&self, socket: &Path) -> Result<()> {
        let root = self.root();
        std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
        let log_path = root.join("daemon.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let exe = std::env::current_exe().context("finding the berth binary")?;
        let mut cmd = std::process::Command::new(exe);
        cmd.arg("--root")
            .arg(&root)
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .arg("daemon");
        if let Some(l) = &self.log_level {
            cmd.arg("--log-level").arg(l);
        }
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd.spawn().context("starting the berth daemon")?;
        let client = ApiClient::new(socket);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if client.ping().await {
                return Ok(());
            }
            if let Some(status) = child.try_wait()? {
                // Another daemon holds the root: one that is starting (another client won the
                // race) or one that is dying (killed, its lock not yet released). Wait a
                // moment and try again; whichever it is, a daemon answers soon.
                if status.code() == Some(LOCKED_EXIT) {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    if client.ping().await {
                        return Ok(());
                    }
                    child = cmd.spawn().context("starting the berth daemon")?;
                    continue;
                }
                let tail = std::fs::read_to_string(&log_path).unwrap_or_default();
                let tail: Vec<&str> = tail.lines().rev().take(5).collect();
                bail!(
                    "the berth daemon exited at start-up ({status}); its log {} ends with:\n{}",
                    log_path.display(),
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        bail!(
            "the berth daemon did not answer on unix://{} within 20s; see {}",
            socket.display(),
            log_path.display()
        )
    }
}
