//! Real registries on loopback: Debian's `docker-registry` (distribution), optionally with
//! htpasswd basic auth, and `skopeo` to push fixture layouts into them.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// A free loopback port (bound and released; a small race is acceptable in tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Waits until something accepts TCP connections on `addr`.
pub fn wait_for_port(addr: &str, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(addr).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("nothing listens on {addr} after {timeout:?}")
}

/// Debian's `docker-registry` serving a temp directory on a loopback port.
pub struct DockerRegistry {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl DockerRegistry {
    /// Starts it; with `basic_auth`, an htpasswd file (bcrypt, via `htpasswd -B`) guards it.
    pub fn start(basic_auth: Option<(&str, &str)>) -> Result<DockerRegistry> {
        let bin = ["/usr/bin/docker-registry", "/usr/local/bin/registry"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .context("docker-registry not found; install Debian's docker-registry package")?;
        let dir = tempfile::tempdir()?;
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut auth = String::new();
        if let Some((u, p)) = basic_auth {
            let out = Command::new("htpasswd")
                .args(["-Bbn", u, p])
                .output()
                .context("running htpasswd (apache2-utils)")?;
            if !out.status.success() {
                bail!("htpasswd failed: {}", String::from_utf8_lossy(&out.stderr));
            }
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, &out.stdout)?;
            auth = format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                file.display()
            );
        }
        let config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{auth}",
            dir.path().join("data").display()
        );
        let cfg = dir.path().join("config.yml");
        std::fs::write(&cfg, config)?;
        let child = Command::new(bin)
            .arg("serve")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {bin}"))?;
        let reg = DockerRegistry {
            addr: addr.clone(),
            child,
            _dir: dir,
        };
        wait_for_port(&addr, Duration::from_secs(15))?;
        Ok(reg)
    }
}

impl Drop for DockerRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Pushes `oci:LAYOUT:REF` to `docker://DEST` with skopeo (`--all` keeps every platform).
pub fn skopeo_push(
    layout: &Path,
    reference: &str,
    dest: &str,
    creds: Option<(&str, &str)>,
) -> Result<()> {
    let mut cmd = Command::new("skopeo");
    cmd.args([
        "--insecure-policy",
        "copy",
        "-q",
        "--all",
        "--dest-tls-verify=false",
        "--preserve-digests",
    ]);
    if let Some((u, p)) = creds {
        cmd.arg("--dest-creds").arg(format!("{u}:{p}"));
    }
    cmd.arg(format!("oci:{}:{reference}", layout.display()))
        .arg(format!("docker://{dest}"));
    let out = cmd
        .output()
        .context("running skopeo (install Debian's skopeo)")?;
    if !out.status.success() {
        bail!(
            "skopeo copy to {dest} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// The directory a test writes its OCI layouts into.
pub fn layout_dir(base: &Path, name: &str) -> PathBuf {
    base.join(format!("layout-{name}"))
}
