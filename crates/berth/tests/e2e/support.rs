//! The e2e harness: a berth CLI on a private root (its daemon autostarted), registries on
//! loopback, fixture layouts.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A berth instance on its own root and socket.
pub struct Berth {
    pub root: tempfile::TempDir,
    pub config_dir: tempfile::TempDir,
    /// A daemon started by `start_daemon` (reaped in `Drop`).
    daemon: std::sync::Mutex<Option<std::process::Child>>,
    /// Whether its daemon may make the default bridge: only inside a network namespace the
    /// test made (see `in_fresh_netns`); elsewhere it runs with `--bridge none`.
    bridge: bool,
}

impl Berth {
    pub fn new() -> Berth {
        Berth {
            root: tempfile::tempdir().expect("tempdir"),
            config_dir: tempfile::tempdir().expect("tempdir"),
            daemon: std::sync::Mutex::new(None),
            bridge: false,
        }
    }

    /// A berth whose daemon makes the default bridge; call it only on a thread inside a
    /// network namespace of the test's own (`in_fresh_netns`).
    pub fn with_bridge() -> Berth {
        let mut b = Berth::new();
        b.bridge = true;
        b
    }

    pub fn bin() -> PathBuf {
        PathBuf::from(env!("CARGO_BIN_EXE_berth"))
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(Self::bin());
        c.arg("--root").arg(self.root.path()).args(args);
        c.env("BERTH_CONFIG", self.config_dir.path());
        c.env("DOCKER_CONFIG", self.config_dir.path().join("docker"));
        c.env_remove("BERTH_HOST").env_remove("BERTH_ROOT");
        if self.bridge {
            c.env_remove("BERTH_BRIDGE");
        } else {
            // the host's network is not the tests' to change: no bridge outside a test netns
            c.env("BERTH_BRIDGE", "none");
        }
        c.stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("berth runs")
    }

    /// Runs and expects success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        if !out.status.success() {
            let log =
                std::fs::read_to_string(self.root.path().join("daemon.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            panic!(
                "berth {args:?} failed ({}):\nstdout: {}\nstderr: {}\ndaemon.log tail:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs and expects failure; returns (exit code, stderr).
    pub fn fails(&self, args: &[&str]) -> (i32, String) {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "berth {args:?} should fail:\nstdout: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub fn socket(&self) -> PathBuf {
        self.root.path().join("berth.sock")
    }

    pub fn image_root(&self) -> PathBuf {
        self.root.path().join("image")
    }

    /// Starts this root's daemon with extra daemon flags (instead of the autostarted one) and
    /// waits until it answers. It is stopped with the others in `Drop` (by its pid file).
    pub fn start_daemon(&self, args: &[&str]) {
        let log = std::fs::File::create(self.root.path().join("daemon.log")).expect("daemon log");
        let mut c = self.command(&["daemon"]);
        c.args(args)
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        let child = c.spawn().expect("daemon starts");
        *self.daemon.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
        for _ in 0..500 {
            if std::os::unix::net::UnixStream::connect(self.socket()).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!(
            "the daemon did not start: {}",
            std::fs::read_to_string(self.root.path().join("daemon.log")).unwrap_or_default()
        );
    }

    /// The running daemon's pid, from its pid file.
    pub fn daemon_pid(&self) -> Option<i32> {
        let s = std::fs::read_to_string(self.root.path().join("daemon.pid")).ok()?;
        let pid: i32 = s.trim().parse().ok()?;
        Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
    }

    pub fn kill_daemon(&self, signal: i32) {
        if let Some(pid) = self.daemon_pid() {
            // only the daemon this test started, by its recorded pid
            let _ = Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(pid.to_string())
                .status();
            for _ in 0..200 {
                if !Path::new(&format!("/proc/{pid}")).exists() || is_zombie(pid) {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            // a zombie leader's other threads may still hold the listening socket: wait until
            // it refuses connections, or the next command talks to a dying daemon
            if signal == 9 {
                for _ in 0..200 {
                    if std::os::unix::net::UnixStream::connect(self.socket()).is_err() {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
            }
        }
    }
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.contains(") Z "))
        .unwrap_or(true)
}

impl Drop for Berth {
    fn drop(&mut self) {
        // containers a test left behind go first: with the daemon gone and the root deleted,
        // a running one would keep its shim and cgroup until it ended on its own
        if self.daemon_pid().is_some() {
            let ids = self.run(&["--no-autostart", "ps", "-aq"]);
            let ids = String::from_utf8_lossy(&ids.stdout).into_owned();
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let mut args = vec!["--no-autostart", "rm", "-f"];
                args.extend(ids);
                let _ = self.run(&args);
            }
        }
        self.kill_daemon(15);
        if let Some(mut child) = self.daemon.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = child.wait();
        }
    }
}

/// Writes the busybox fixture layout: ref `latest` (amd64) and `multi` (amd64 + arm64 index).
/// Runs `berth ARGS`: (exit code, stdout, stderr).
pub fn code(b: &Berth, args: &[&str]) -> (i32, String, String) {
    let out = b.run(args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn fixture_layout(dir: &Path) -> PathBuf {
    use berth_testkit::image::{busybox_image, index, write_oci_layout, Compression};
    let layout = dir.join("layout");
    let amd = busybox_image(Compression::Gzip, "amd64").expect("fixture");
    let arm = busybox_image(Compression::Zstd, "arm64").expect("fixture");
    let idx = index(&[("amd64", &amd), ("arm64", &arm)]);
    let mut refs = std::collections::BTreeMap::new();
    refs.insert("latest".to_string(), amd.manifest.clone());
    refs.insert("multi".to_string(), idx);
    let mut blobs = amd.blobs();
    blobs.extend(arm.blobs());
    write_oci_layout(&layout, &blobs, &refs).expect("layout written");
    layout
}

/// Checks that every blob hashes to its name and no partial snapshot is visible; returns counts.
pub fn verify_store(image_root: &Path) -> (usize, usize) {
    use sha2::Digest as _;
    let mut blobs = 0;
    for e in std::fs::read_dir(image_root.join("blobs/sha256")).expect("blobs dir") {
        let e = e.expect("entry");
        let name = e.file_name().to_string_lossy().into_owned();
        assert!(
            !name.starts_with(".tmp-"),
            "no temp blob after repair: {name}"
        );
        let data = std::fs::read(e.path()).expect("blob");
        assert_eq!(
            hex::encode(sha2::Sha256::digest(&data)),
            name,
            "blob {name} is intact"
        );
        blobs += 1;
    }
    let mut snaps = 0;
    for e in std::fs::read_dir(image_root.join("snapshots")).expect("snapshots dir") {
        let name = e.expect("entry").file_name().to_string_lossy().into_owned();
        assert!(
            !name.starts_with(".tmp-"),
            "no unfinished snapshot after repair: {name}"
        );
        snaps += 1;
    }
    (blobs, snaps)
}

/// The pids of the shims of containers under `root` (named `berth-shim`, working directory in
/// the root's state), whether executed or forked by the daemon's zygote.
pub fn shims_of(root: &Path) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .expect("proc")
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .parse::<u32>()
                .ok()
                .map(|pid| (pid, e.path()))
        })
        .filter(|(_, p)| {
            std::fs::read_to_string(p.join("comm")).is_ok_and(|c| c.trim() == "berth-shim")
                && std::fs::read_link(p.join("cwd")).is_ok_and(|cwd| cwd.starts_with(root))
        })
        .map(|(pid, _)| pid)
        .collect()
}

/// Runs `body` on a thread that has its own fresh network namespace (loopback up), so the
/// processes it starts (daemon, CLI, registries on loopback) and the bridge, veths and nft
/// rules berth makes there never touch the host's network. Threads and children started from
/// the body inherit the namespace.
pub fn in_fresh_netns<T: Send + 'static>(body: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        #[expect(
            deprecated,
            reason = "unsharing only the network namespace of this thread is sound; the unsafe twin guards other flags"
        )]
        rustix::thread::unshare(rustix::thread::UnshareFlags::NEWNET).expect("unshare -n");
        let up = Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status()
            .expect("ip");
        assert!(up.success(), "ip link set lo up");
        body()
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Retries `check` for up to 10 s; panics with `what` and the last error.
pub fn eventually(what: &str, mut check: impl FnMut() -> Result<(), String>) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match check() {
            Ok(()) => return,
            Err(e) if std::time::Instant::now() > deadline => panic!("{what}: {e}"),
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(100)),
        }
    }
}

/// Interfaces of the calling thread's network namespace whose names start with `prefix`.
pub fn links(prefix: &str) -> Vec<String> {
    let out = Command::new("ip")
        .args(["-br", "link"])
        .output()
        .expect("ip");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

/// Waits until no interface named `prefix…` is left (berth deletes the veths of exited
/// containers in the background; the kernel removes them with the namespace anyway).
pub fn no_links_left(prefix: &str) {
    eventually(&format!("no {prefix}… interface left"), || {
        match links(prefix) {
            left if left.is_empty() => Ok(()),
            left => Err(format!("{left:?}")),
        }
    });
}
