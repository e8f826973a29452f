//! Removing a container: its process (when forced), cgroup, network state, directory and
//! record.

use std::time::Duration;

use berth_runtime::shim::{self, RunState, ShimConfig};

use super::{wait_for_shim, State, WaitCondition};
use crate::{Engine, EngineError};

impl Engine {
    /// `docker rm`: refuses a running container unless forced.
    pub async fn remove_container(&self, key: &str, force: bool) -> Result<(), EngineError> {
        let c = self.containers.find(key)?;
        if matches!(c.state, State::Running | State::Paused | State::Restarting) {
            if !force {
                return Err(EngineError::Conflict(format!(
                    "You cannot remove a running container {}. Stop the container before attempting removal or force remove",
                    c.id
                )));
            }
            self.live
                .stopping
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(c.id.clone());
            if c.state == State::Paused {
                let _ = self.unpause_container(&c.id).await;
            }
            if c.state == State::Restarting {
                let mut c2 = c.clone();
                c2.state = State::Exited;
                self.containers.update(&c2)?;
            } else {
                if shim::send_signal(c.pid as i32, 9).is_ok() {
                    self.container_event(&c, "kill", &[("signal", "9".into())]);
                }
                let _ = tokio::time::timeout(
                    Duration::from_secs(10),
                    self.wait_container(&c.id, WaitCondition::NotRunning),
                )
                .await;
            }
        }
        // the shim removes the cgroup; if it died, do it here so nothing is left
        if let Some(m) = self.cgroup_manager() {
            if let Ok(cg) = m.open(&c.id) {
                if cg.exists() {
                    let _ = cg.destroy();
                }
            }
        }
        let dir = self.container_dir(&c.id);
        // an external runtime's state, should its shim have died before deleting it
        if let Some(runtime_root) = (!matches!(c.config.host_config.runtime.as_str(), "" | "berth"))
            .then(|| std::fs::read(dir.join("shim.json")).ok())
            .flatten()
            .and_then(|b| serde_json::from_slice::<ShimConfig>(&b).ok())
            .and_then(|s| s.runtime_root)
        {
            let _ = std::fs::remove_dir_all(runtime_root.join(&c.id));
        }
        // a shim still finishing (a failed start) writes into the directory: let it end first
        if let Some(run) = std::fs::read(dir.join("state.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<RunState>(&b).ok())
        {
            wait_for_shim(run.shim_pid).await;
        }
        // its address, veth and published ports, should exit handling not have run
        self.networks().disconnect(&c.id, &dir).await;
        if dir.exists() {
            // out of sight at once (one rename), deleted in the background; what a crash leaves
            // in trash/ is deleted at the next start
            let trash = self.root().join("trash").join(&c.id);
            let moved = std::fs::create_dir_all(self.root().join("trash"))
                .and_then(|()| std::fs::rename(&dir, &trash));
            match moved {
                Ok(()) => delete_in_background(trash),
                Err(_) => std::fs::remove_dir_all(&dir).map_err(|e| {
                    EngineError::Internal(format!("removing {}: {e}", dir.display()))
                })?,
            }
        }
        let final_exit = self
            .containers
            .find(&c.id)
            .map(|c| c.exit_code)
            .unwrap_or(c.exit_code);
        {
            let mut removed = self
                .live
                .removed_exit
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if removed.len() > 1024 {
                removed.clear();
            }
            removed.insert(c.id.clone(), final_exit);
        }
        self.containers.delete(&c.id)?;
        self.container_event(&c, "destroy", &[]);
        self.forget_execs(&c.id);
        self.live.notify(&c.id);
        self.live
            .stopping
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&c.id);
        Ok(())
    }
}

/// Deletes `path` (a directory tree moved into `trash/`) on a thread of its own that runs at
/// the kernel's idle priority (`SCHED_IDLE`): the deletion takes only CPU time nothing else
/// wants, instead of competing with the next container's start on a small machine (it was a
/// fifth of the daemon's CPU time in back-to-back `run --rm`). Deletions queue up there in
/// order; what is left at a crash goes at the next start with the rest of `trash/`.
fn delete_in_background(path: std::path::PathBuf) {
    use std::sync::mpsc::{channel, Sender};
    static QUEUE: std::sync::OnceLock<Option<Sender<std::path::PathBuf>>> =
        std::sync::OnceLock::new();
    let queue = QUEUE.get_or_init(|| {
        let (tx, rx) = channel::<std::path::PathBuf>();
        std::thread::Builder::new()
            .name("berth-trash".into())
            .spawn(move || {
                berth_runtime::idle_priority();
                for path in rx {
                    delete_tree(&path);
                }
            })
            .ok()
            .map(|_| tx)
    });
    let unsent = match queue {
        Some(tx) => tx.send(path).err().map(|e| e.0),
        None => Some(path),
    };
    if let Some(path) = unsent {
        // no deleting thread
        tokio::task::spawn_blocking(move || delete_tree(&path));
    }
}

fn delete_tree(path: &std::path::Path) {
    if let Err(e) = std::fs::remove_dir_all(path) {
        tracing::warn!(path = %path.display(), error = %e, "removing a container's directory");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trash_is_deleted_by_an_idle_priority_thread() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let tree = tmp.path().join("trash/abc");
        std::fs::create_dir_all(tree.join("upper/etc")).expect("mkdir");
        std::fs::write(tree.join("upper/etc/file"), "x").expect("write");
        delete_in_background(tree.clone());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while tree.exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(!tree.exists(), "deleted");
        // the deleting thread runs at SCHED_IDLE (5): field 41 of its stat
        let mut policy = None;
        for t in std::fs::read_dir("/proc/self/task")
            .expect("tasks")
            .flatten()
        {
            let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            if comm.trim() == "berth-trash" {
                let stat = std::fs::read_to_string(t.path().join("stat")).expect("stat");
                let after_comm = stat.rsplit_once(") ").expect("stat format").1;
                // fields from the 3rd on: state is field 3, so policy (41) is index 38
                policy = after_comm.split(' ').nth(38).map(str::to_owned);
            }
        }
        assert_eq!(policy.as_deref(), Some("5"), "SCHED_IDLE");
    }
}
