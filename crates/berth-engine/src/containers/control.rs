//! Operations on a running container that are neither its start nor its end: terminal size,
//! pause and unpause, rename, restart, and its process list for `top`.

use std::sync::Arc;

use super::{resize_terminal, valid_name, State};
use crate::{Engine, EngineError};

impl Engine {
    /// `POST /containers/{id}/resize`: the size of the container's terminal. A container
    /// without a terminal has nothing to resize (accepted, as Docker does).
    pub async fn resize_container(
        &self,
        key: &str,
        rows: u16,
        cols: u16,
    ) -> Result<(), EngineError> {
        let c = self.containers.find(key)?;
        if !matches!(c.state, State::Running | State::Paused) {
            return Err(EngineError::Conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        if !c.config.config.tty {
            return Ok(());
        }
        resize_terminal(&self.container_dir(&c.id), rows, cols)
            .await
            .map_err(|e| EngineError::Internal(format!("resizing {}: {e}", c.id)))
    }

    /// `docker pause`: freezes every process of the container.
    pub async fn pause_container(&self, key: &str) -> Result<(), EngineError> {
        let mut c = self.containers.find(key)?;
        match c.state {
            State::Running => {}
            State::Paused => {
                return Err(EngineError::Conflict(format!(
                    "Container {} is already paused",
                    c.id
                )))
            }
            _ => {
                return Err(EngineError::Conflict(format!(
                    "Container {} is not running",
                    c.id
                )))
            }
        }
        let cg = self.cgroup_of(&c.id)?;
        tokio::task::spawn_blocking(move || cg.freeze())
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))?
            .map_err(|e| EngineError::Internal(format!("freezing {}: {e}", c.id)))?;
        c.state = State::Paused;
        self.containers.update(&c)?;
        self.container_event(&c, "pause", &[]);
        self.live.notify(&c.id);
        Ok(())
    }

    /// `docker unpause`.
    pub async fn unpause_container(&self, key: &str) -> Result<(), EngineError> {
        let mut c = self.containers.find(key)?;
        if c.state != State::Paused {
            return Err(EngineError::Conflict(format!(
                "Container {} is not paused",
                c.id
            )));
        }
        let cg = self.cgroup_of(&c.id)?;
        tokio::task::spawn_blocking(move || cg.thaw())
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))?
            .map_err(|e| EngineError::Internal(format!("thawing {}: {e}", c.id)))?;
        c.state = State::Running;
        self.containers.update(&c)?;
        self.container_event(&c, "unpause", &[]);
        self.live.notify(&c.id);
        Ok(())
    }

    /// `docker rename`.
    pub fn rename_container(&self, key: &str, new_name: &str) -> Result<(), EngineError> {
        let mut c = self.containers.find(key)?;
        let n = new_name.strip_prefix('/').unwrap_or(new_name);
        if !valid_name(n) {
            return Err(EngineError::Invalid(format!(
                "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        if let Ok(other) = self.containers.find(n) {
            if other.name == n {
                return Err(EngineError::Conflict(format!(
                    "Conflict. The container name \"/{n}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                    other.id
                )));
            }
        }
        let old = std::mem::replace(&mut c.name, n.to_string());
        self.containers.update(&c)?;
        // the embedded DNS servers answer the new name from now on, not the old one
        self.networks()
            .rename(&c.id, &c.name, &self.container_dir(&c.id), &c.config);
        self.container_event(&c, "rename", &[("oldName", format!("/{old}"))]);
        Ok(())
    }

    /// `docker restart`: stop (if running), start, and Docker's `restart` event.
    pub async fn restart_container(
        self: &Arc<Self>,
        key: &str,
        timeout: Option<i64>,
    ) -> Result<(), EngineError> {
        let id = self.containers.find(key)?.id;
        let restarting = || {
            self.live
                .restarting
                .lock()
                .unwrap_or_else(|p| p.into_inner())
        };
        restarting().insert(id.clone());
        let stopped = self.stop_container(&id, timeout).await;
        let started = match stopped {
            Ok(_) => self.start_container(&id).await.map(|_| ()),
            Err(e) => Err(e),
        };
        restarting().remove(&id);
        started?;
        let c = self.containers.find(&id)?;
        self.container_event(&c, "restart", &[]);
        Ok(())
    }

    /// The container's processes (host pids), for `top`.
    pub fn container_pids(&self, key: &str) -> Result<Vec<i32>, EngineError> {
        let c = self.containers.find(key)?;
        if !matches!(c.state, State::Running | State::Paused) {
            return Err(EngineError::Conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        let cg = self.cgroup_of(&c.id)?;
        let pids = cg
            .procs()
            .map_err(|e| EngineError::Internal(format!("listing processes of {}: {e}", c.id)))?;
        Ok(pids.into_iter().map(|p| p.as_raw_nonzero().get()).collect())
    }
}
