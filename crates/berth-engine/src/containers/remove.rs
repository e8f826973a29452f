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
                Ok(()) => {
                    tokio::task::spawn_blocking(move || {
                        if let Err(e) = std::fs::remove_dir_all(&trash) {
                            tracing::warn!(path = %trash.display(), error = %e, "removing a container's directory");
                        }
                    });
                }
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
