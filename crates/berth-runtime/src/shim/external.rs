//! `--runtime runc|crun|PATH`: the shim drives an external OCI runtime on the same bundle
//! instead of berth's own, and stays the supervisor (stdio, logs, attach, exit record).
//!
//! The shim first moves into a mount namespace of its own and mounts the container's overlay
//! root at `BUNDLE/rootfs` there: the runtime (started by the shim) sees it, the host never
//! does, and it vanishes with the shim. Then `RUNTIME --root R create --bundle B --pid-file F
//! ID` with the shim's stdio pipes (or `--console-socket` for `-t`: the runtime sends the pty
//! master back over SCM_RIGHTS), `RUNTIME start ID` on the daemon's start, and `RUNTIME delete
//! --force ID` once the container exited. On a hybrid cgroup host the `unified` cgroup2
//! mount is unmounted in that namespace: berth's cgroups are the v1 ones, and crun refuses
//! hybrid hosts otherwise. The container's init is re-parented to the shim
//! (its subreaper) when `create` returns, so the shim reaps it and records its status.

use std::io::{self, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::container::RuntimeError;
use crate::init::ProcessIo;
use crate::sys;

/// A container created by an external runtime.
pub struct External {
    runtime: PathBuf,
    root: PathBuf,
    id: String,
    log: PathBuf,
    rootfs: Option<PathBuf>,
    /// The container's init (host pid namespace).
    pub pid: i32,
}

const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where the runtime sends the pty master for `-t` (next to the shim's socket).
pub fn console_socket_path(dir: &Path) -> PathBuf {
    let shim = super::socket_path(dir);
    let stem = shim
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    shim.with_file_name(format!("{stem}-console.sock"))
}

/// Docker's exit code for a runtime's error message.
pub fn failure_code(message: &str) -> u8 {
    let m = message.to_ascii_lowercase();
    if m.contains("executable file not found") || m.contains("no such file or directory") {
        127
    } else if m.contains("permission denied") {
        126
    } else {
        125
    }
}

/// The last error the runtime logged (`--log-format json`), else its stderr.
pub fn last_error(log: &str, stderr: &str) -> String {
    let from_log = log
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| matches!(v["level"].as_str(), Some("error") | Some("fatal")))
        .find_map(|v| v["msg"].as_str().map(str::to_string));
    from_log
        .or_else(|| {
            let s = stderr.trim();
            (!s.is_empty()).then(|| s.to_string())
        })
        .unwrap_or_else(|| "the runtime failed without a message".into())
}

fn io_err(op: impl Into<String>) -> impl FnOnce(io::Error) -> RuntimeError {
    let op = op.into();
    move |source| RuntimeError::Io { op, source }
}

impl External {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.runtime);
        c.arg("--root")
            .arg(&self.root)
            .arg("--log")
            .arg(&self.log)
            .arg("--log-format")
            .arg("json")
            .args(args)
            .env_clear()
            .env("PATH", PATH);
        c
    }

    fn run(&self, args: &[&str]) -> Result<(), RuntimeError> {
        let out = self
            .command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(io_err(format!("running {}", self.runtime.display())))?;
        if out.status.success() {
            return Ok(());
        }
        let message = last_error(
            &std::fs::read_to_string(&self.log).unwrap_or_default(),
            &String::from_utf8_lossy(&out.stderr),
        );
        Err(RuntimeError::Init {
            code: failure_code(&message),
            message: format!("{} {}: {message}", self.runtime.display(), args[0]),
        })
    }

    /// Creates the container (stopped before its process runs). Returns it and, for a
    /// terminal, the pty master the runtime handed over.
    pub fn create(
        config: &super::ShimConfig,
        runtime: &Path,
        io: ProcessIo,
    ) -> Result<(External, Option<OwnedFd>), RuntimeError> {
        let root = config
            .runtime_root
            .clone()
            .unwrap_or_else(|| config.dir.join("runtime"));
        std::fs::create_dir_all(&root)
            .map_err(io_err(format!("creating runtime root {}", root.display())))?;
        // a mount namespace of the shim's own: the root is mounted for the runtime only
        sys::unshare(libc::CLONE_NEWNS).map_err(io_err("unsharing the shim's mount namespace"))?;
        sys::mount(None, c"/", None, libc::MS_SLAVE | libc::MS_REC, None)
            .map_err(io_err("making the shim's mounts slaves"))?;
        // systemd's hybrid layout: berth's cgroups are the v1 hierarchies, and crun refuses
        // to run at all while a cgroup2 `unified` mount is there; hide it from the runtime
        let unified = Path::new("/sys/fs/cgroup/unified");
        if unified.join("cgroup.controllers").exists()
            && Path::new("/sys/fs/cgroup/memory").is_dir()
        {
            sys::umount2(c"/sys/fs/cgroup/unified", libc::MNT_DETACH)
                .map_err(io_err("hiding the hybrid cgroup2 mount from the runtime"))?;
        }
        let mut ext = External {
            runtime: runtime.to_path_buf(),
            root,
            id: config.id.clone(),
            log: config.dir.join("runtime.log"),
            rootfs: None,
            pid: 0,
        };
        let _ = std::fs::remove_file(&ext.log);
        if let Some(data) = &config.overlay {
            let target = config.bundle.join("rootfs");
            std::fs::create_dir_all(&target)
                .map_err(io_err(format!("creating {}", target.display())))?;
            let t = std::ffi::CString::new(target.as_os_str().as_encoded_bytes())
                .map_err(|e| io_err("rootfs path")(io::Error::other(e)))?;
            let d = std::ffi::CString::new(data.as_str())
                .map_err(|e| io_err("overlay options")(io::Error::other(e)))?;
            sys::mount(Some(c"overlay"), &t, Some(c"overlay"), 0, Some(&d)).map_err(io_err(
                format!("mounting overlay root at {}", target.display()),
            ))?;
            ext.rootfs = Some(target);
        }
        // state a killed shim left behind would make `create` fail with "already exists"
        let _ = ext.run(&["delete", "--force", &config.id]);
        let _ = std::fs::remove_file(&ext.log);
        let pid_file = config.dir.join("runtime.pid");
        let _ = std::fs::remove_file(&pid_file);
        let bundle = config.bundle.to_string_lossy().into_owned();
        let pid_arg = pid_file.to_string_lossy().into_owned();
        let console_path = console_socket_path(&config.dir);
        let console_arg = console_path.to_string_lossy().into_owned();
        let mut args = vec!["create", "--bundle", &bundle, "--pid-file", &pid_arg];
        let mut console = None;
        if config.tty {
            let _ = std::fs::remove_file(&console_path);
            let l = UnixListener::bind(&console_path).map_err(io_err(format!(
                "binding console socket {}",
                console_path.display()
            )))?;
            console = Some(l);
            args.extend(["--console-socket", &console_arg]);
        }
        args.push(&config.id);
        let mut cmd = ext.command(&args);
        let (stdin, stdout, stderr): (Stdio, Stdio, Stdio) = match io {
            ProcessIo::Fds {
                stdin,
                stdout,
                stderr,
            } => (
                stdin.map(Stdio::from).unwrap_or_else(Stdio::null),
                Stdio::from(stdout),
                Stdio::from(stderr),
            ),
            ProcessIo::Terminal { .. } | ProcessIo::ConsoleSocket { .. } | ProcessIo::Inherit => {
                (Stdio::null(), Stdio::null(), Stdio::null())
            }
        };
        let status = cmd.stdin(stdin).stdout(stdout).stderr(stderr).status();
        // drop our copies of the container's stdio: the pipes close when the container's do
        drop(cmd);
        let failed = match status {
            Ok(s) if s.success() => None,
            Ok(_) => Some(last_error(
                &std::fs::read_to_string(&ext.log).unwrap_or_default(),
                "",
            )),
            Err(e) => Some(format!("running {}: {e}", runtime.display())),
        };
        if let Some(message) = failed {
            ext.cleanup();
            let _ = std::fs::remove_file(&console_path);
            return Err(RuntimeError::Init {
                code: failure_code(&message),
                message,
            });
        }
        let pid = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok());
        let Some(pid) = pid.filter(|p| *p > 0) else {
            ext.cleanup();
            return Err(RuntimeError::Init {
                code: 125,
                message: format!("{} wrote no pid to {}", runtime.display(), pid_arg),
            });
        };
        ext.pid = pid;
        let master = match console {
            Some(l) => {
                let got = receive_fd(&l);
                let _ = std::fs::remove_file(&console_path);
                match got {
                    Ok(fd) => Some(fd),
                    Err(e) => {
                        ext.cleanup();
                        return Err(io_err("receiving the pty master from the runtime")(e));
                    }
                }
            }
            None => None,
        };
        Ok((ext, master))
    }

    /// Lets the created container run.
    pub fn start(&mut self) -> Result<(), RuntimeError> {
        let id = self.id.clone();
        self.run(&["start", &id])
    }

    /// Removes the runtime's state (and with it its cgroup) and unmounts the root.
    pub fn cleanup(&mut self) {
        let id = self.id.clone();
        let _ = self.run(&["delete", "--force", &id]);
        if let Some(rootfs) = self.rootfs.take() {
            if let Ok(c) = std::ffi::CString::new(rootfs.as_os_str().as_encoded_bytes()) {
                let _ = sys::umount2(&c, libc::MNT_DETACH);
            }
        }
    }
}

/// Accepts the runtime's connection (already queued: it connected and sent while `create`
/// ran) and takes the fd it passed.
fn receive_fd(listener: &UnixListener) -> io::Result<OwnedFd> {
    listener.set_nonblocking(true)?;
    let (stream, _) = listener.accept()?;
    stream.set_nonblocking(false)?;
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut cmsg = rustix::net::RecvAncillaryBuffer::new(&mut space);
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    rustix::net::recvmsg(
        &stream,
        &mut iov,
        &mut cmsg,
        rustix::net::RecvFlags::CMSG_CLOEXEC,
    )?;
    for m in cmsg.drain() {
        if let rustix::net::RecvAncillaryMessage::ScmRights(mut fds) = m {
            if let Some(fd) = fds.next() {
                return Ok(fd);
            }
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "the runtime sent no file descriptor",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_from_runtime_logs() {
        let log = concat!(
            "{\"level\":\"warning\",\"msg\":\"something\",\"time\":\"t\"}\n",
            "{\"level\":\"error\",\"msg\":\"runc create failed: unable to start container process: exec: \\\"nosuch\\\": executable file not found in $PATH\",\"time\":\"t\"}\n"
        );
        let m = last_error(log, "ignored");
        assert!(m.starts_with("runc create failed"), "{m}");
        assert_eq!(failure_code(&m), 127);
        assert_eq!(last_error("", " boom \n"), "boom");
        assert_eq!(failure_code("exec /etc/passwd: permission denied"), 126);
        assert_eq!(failure_code("cgroup: bad"), 125);
        let p = console_socket_path(Path::new("/var/lib/berth/containers/x"));
        assert_eq!(
            p,
            Path::new("/var/lib/berth/containers/x/shim-console.sock")
        );
    }
}
