//! What the privileged tests share: network namespaces held by `unshare -n` children (loopback
//! up), and a thread that enters one to play the host.

#![allow(dead_code)] // each test binary uses its own part

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// A network namespace kept alive by a sleeping child.
pub struct Netns {
    child: Child,
}

impl Netns {
    pub fn new() -> Self {
        let mut child = Command::new("unshare")
            .args([
                "-n",
                "sh",
                "-c",
                "/bin/busybox ip link set lo up && echo ready; exec sleep 600",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn unshare -n");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read");
        assert_eq!(line.trim(), "ready", "unshare -n failed");
        Self { child }
    }

    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/net", self.child.id()))
    }

    /// Runs busybox `args` inside this namespace.
    pub fn busybox(&self, args: &[&str]) -> std::process::Output {
        Command::new("nsenter")
            .arg(format!("--net={}", self.path().display()))
            .arg("/bin/busybox")
            .args(args)
            .output()
            .expect("nsenter")
    }

    /// Starts busybox `args` inside this namespace.
    pub fn spawn_busybox(&self, args: &[&str]) -> Child {
        Command::new("nsenter")
            .arg(format!("--net={}", self.path().display()))
            .arg("/bin/busybox")
            .args(args)
            .spawn()
            .expect("nsenter")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `body` on a thread moved into a fresh namespace that stands for the host.
pub fn as_host<F, Fut>(body: F)
where
    F: FnOnce(Netns) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let host = Netns::new();
    std::thread::spawn(move || {
        let file = File::open(host.path()).expect("open host netns");
        rustix::thread::move_into_link_name_space(
            file.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .expect("setns");
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(body(host));
    })
    .join()
    .expect("test thread");
}
