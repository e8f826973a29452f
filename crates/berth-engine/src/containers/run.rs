//! Waiting without missing a change, and what berth's one-request `run` needs on top of
//! create and start: an attach stream and a wait that are in place before the container
//! starts.

use tokio::sync::{oneshot, watch};

use super::{just_exited, Container, State, WaitCondition};
use crate::{Engine, EngineError};

/// A subscription to a container's state changes, taken before what is waited for can
/// happen (see [`Engine::watch_container`]).
pub struct ContainerWatch {
    id: String,
    rx: watch::Receiver<u64>,
    start_gen: u64,
    last_exit: i64,
}

impl Engine {
    /// Subscribes to the state changes of `c`: a later [`Engine::wait_watched`] sees every
    /// change from now on.
    pub fn watch_container(&self, c: &Container) -> ContainerWatch {
        let rx = self.live.sender(&c.id).subscribe();
        let start_gen = *rx.borrow();
        ContainerWatch {
            id: c.id.clone(),
            rx,
            start_gen,
            last_exit: c.exit_code,
        }
    }

    /// Waits for a condition from the moment of the watch; returns the exit code.
    pub async fn wait_watched(
        &self,
        mut w: ContainerWatch,
        condition: WaitCondition,
    ) -> Result<i64, EngineError> {
        loop {
            let current = match self.containers.find(&w.id) {
                Ok(c) => c,
                // removed: the exit code it had when it went
                Err(_) => {
                    let code = self
                        .live
                        .removed_exit
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get(&w.id)
                        .copied();
                    return Ok(code.unwrap_or(w.last_exit));
                }
            };
            w.last_exit = current.exit_code;
            let done = match condition {
                WaitCondition::NotRunning => !matches!(
                    current.state,
                    State::Running | State::Paused | State::Restarting
                ),
                WaitCondition::NextExit => {
                    current.state == State::Exited
                        && (*w.rx.borrow() != w.start_gen || just_exited(&current.finished_at))
                }
                WaitCondition::Removed => false,
            };
            if done {
                return Ok(current.exit_code);
            }
            if w.rx.changed().await.is_err() {
                return Ok(current.exit_code);
            }
        }
    }

    /// An attach stream (stdin included) to the container `c`, connected when it starts,
    /// before its first output. Dropped unconnected if the start fails (see
    /// [`Engine::forget_attach`]).
    pub fn attach_on_start(&self, c: &Container) -> oneshot::Receiver<tokio::net::UnixStream> {
        self.container_event(c, "attach", &[]);
        let (tx, rx) = oneshot::channel();
        self.live
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(c.id.clone())
            .or_default()
            .push(tx);
        rx
    }

    /// Drops the attach streams still waiting for `id` to start (its start failed).
    pub fn forget_attach(&self, id: &str) {
        self.live
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
}
