//! `docker exec`: extra processes in a running container, each run by its own exec shim
//! (`berth shim` with [`ShimConfig::exec`]) in `containers/<id>/exec/<exec id>/`. The records
//! live in memory as Docker's do; the shim's `exit.json` on disk is what gives the exit code,
//! and the exec's `shim.json` lets a restarted daemon find an exec it did not create.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_api::exec::{ExecConfig, ExecInspect, ExecProcessConfig};
use berth_runtime::exec::ExecProcess;
use berth_runtime::shim::{self, ExitState, Hello, RunState, ShimConfig, ShimExec};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use super::{connect_attach, new_id, Container, State};
use crate::{Engine, EngineError};

/// An exec instance.
#[derive(Clone, Debug)]
pub struct ExecRecord {
    /// Its ID.
    pub id: String,
    /// The container's full ID.
    pub container_id: String,
    /// As created.
    pub config: ExecConfig,
    /// `start` was called.
    pub started: bool,
    /// Whether the process runs.
    pub running: bool,
    /// The exit code once it ended.
    pub exit_code: Option<i64>,
    /// Host pid of the process (0 before start).
    pub pid: i64,
}

impl ExecRecord {
    /// Docker's inspect shape.
    pub fn inspect(&self) -> ExecInspect {
        ExecInspect {
            can_remove: false,
            detach_keys: self.config.detach_keys.clone(),
            id: self.id.clone(),
            running: self.running,
            exit_code: self.exit_code,
            process_config: ExecProcessConfig {
                arguments: self.config.cmd.iter().skip(1).cloned().collect(),
                entrypoint: self.config.cmd.first().cloned().unwrap_or_default(),
                privileged: self.config.privileged,
                tty: self.config.tty,
                user: self.config.user.clone(),
            },
            open_stdin: self.config.attach_stdin,
            open_stderr: self.config.attach_stderr,
            open_stdout: self.config.attach_stdout,
            container_id: self.container_id.clone(),
            pid: self.pid,
        }
    }
}

/// What the daemon keeps on disk next to the exec shim's files.
#[derive(serde::Serialize, serde::Deserialize)]
struct ExecFile {
    container_id: String,
    config: ExecConfig,
}

/// The exec's environment: the container's process env (without the HOME berth derived from
/// the container's user, unless the image or `-e` set it) overridden by the exec's `-e`
/// entries; entries without `=` are dropped, as Docker does.
pub fn exec_env(container_env: &[String], explicit_home: bool, extra: &[String]) -> Vec<String> {
    let mut env: Vec<String> = container_env
        .iter()
        .filter(|e| explicit_home || !e.starts_with("HOME="))
        .cloned()
        .collect();
    for kv in extra {
        let Some((k, _)) = kv.split_once('=') else {
            continue;
        };
        let prefix = format!("{k}=");
        match env.iter_mut().find(|e| e.starts_with(&prefix)) {
            Some(e) => *e = kv.clone(),
            None => env.push(kv.clone()),
        }
    }
    env
}

/// Docker's exit code for a process that could not be started, from the runtime's message.
fn failure_code(message: &str) -> u8 {
    if message.contains("executable file not found")
        || message.contains("no such file or directory")
    {
        127
    } else if message.contains("permission denied") {
        126
    } else {
        125
    }
}

/// Docker's refusals of an exec into a container that is not running.
fn ready_for_exec(c: &Container) -> Result<(), EngineError> {
    let why = match c.state {
        State::Running => return Ok(()),
        State::Paused => "is paused, unpause the container before exec",
        State::Restarting => "is restarting, wait until the container is running",
        _ => "is not running",
    };
    Err(EngineError::Conflict(format!("container {} {why}", c.id)))
}

impl Engine {
    fn exec_dir(&self, container_id: &str, exec_id: &str) -> PathBuf {
        self.container_dir(container_id).join("exec").join(exec_id)
    }

    /// `POST /containers/{id}/exec`: records an exec instance of a running container.
    pub fn create_exec(&self, key: &str, config: ExecConfig) -> Result<String, EngineError> {
        let c = self.containers.find(key)?;
        ready_for_exec(&c)?;
        if config.cmd.is_empty() || config.cmd[0].is_empty() {
            return Err(EngineError::Invalid("No exec command specified".into()));
        }
        if !config.working_dir.is_empty() && !config.working_dir.starts_with('/') {
            return Err(EngineError::Invalid(format!(
                "the working directory '{}' is invalid, it needs to be an absolute path",
                config.working_dir
            )));
        }
        let id = new_id();
        let record = ExecRecord {
            id: id.clone(),
            container_id: c.id.clone(),
            config,
            started: false,
            running: false,
            exit_code: None,
            pid: 0,
        };
        self.live
            .execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), record);
        Ok(id)
    }

    /// An exec instance, brought up to date with its shim's records.
    pub fn exec_instance(&self, id: &str) -> Result<ExecRecord, EngineError> {
        let known = self
            .live
            .execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned();
        let mut r = match known {
            Some(r) => r,
            None => self.exec_from_disk(id)?,
        };
        if r.started && r.exit_code.is_none() {
            let dir = self.exec_dir(&r.container_id, &r.id);
            let exit: Option<ExitState> = std::fs::read(dir.join("exit.json"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            let run: Option<RunState> = std::fs::read(dir.join("state.json"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            if let Some(run) = &run {
                r.pid = run.pid as i64;
            }
            match (exit, run) {
                (Some(e), _) => {
                    r.running = false;
                    r.exit_code = Some(e.exit_code as i64);
                }
                (None, Some(run)) if shim::alive(run.shim_pid) => r.running = true,
                // the shim is gone without a record (killed, or the directory went with a
                // restart of the container)
                (None, _) if !r.running => {}
                (None, _) => {
                    r.running = false;
                    r.exit_code = Some(255);
                }
            }
            self.live
                .execs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(r.id.clone(), r.clone());
        }
        Ok(r)
    }

    /// After a daemon restart: an exec started by the previous daemon, found by its directory.
    fn exec_from_disk(&self, id: &str) -> Result<ExecRecord, EngineError> {
        let not_found = || EngineError::NotFound(format!("No such exec instance: {id}"));
        let valid = id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit());
        if !valid {
            return Err(not_found());
        }
        for c in self.containers.list()? {
            let file = self.exec_dir(&c.id, id).join("exec.json");
            if let Ok(bytes) = std::fs::read(&file) {
                let f: ExecFile = serde_json::from_slice(&bytes)
                    .map_err(|e| EngineError::Internal(format!("{}: {e}", file.display())))?;
                return Ok(ExecRecord {
                    id: id.to_string(),
                    container_id: f.container_id,
                    config: f.config,
                    started: true,
                    running: true,
                    exit_code: None,
                    pid: 0,
                });
            }
        }
        Err(not_found())
    }

    fn update_exec(&self, r: &ExecRecord) {
        self.live
            .execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(r.id.clone(), r.clone());
    }

    /// The exec instances of a container that have not ended (Docker's `ExecIDs`).
    pub fn exec_ids(&self, container_id: &str) -> Vec<String> {
        let ids: Vec<String> = self
            .live
            .execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|r| r.container_id == container_id && r.exit_code.is_none())
            .map(|r| r.id.clone())
            .collect();
        let mut ids: Vec<String> = ids
            .into_iter()
            .filter(|id| self.exec_instance(id).is_ok_and(|r| r.exit_code.is_none()))
            .collect();
        ids.sort();
        ids
    }

    /// Forgets the exec instances of a removed container.
    pub(super) fn forget_execs(&self, container_id: &str) {
        self.live
            .execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, r| r.container_id != container_id);
    }

    /// `POST /exec/{id}/start`: spawns the exec shim and lets the process run; unless
    /// detached, returns the shim's attach stream, connected before the process started.
    /// A process that could not be started leaves its exit code (126, 127) on the record.
    pub async fn start_exec(
        self: &Arc<Self>,
        id: &str,
        detach: bool,
        console_size: Option<(u16, u16)>,
    ) -> Result<Option<tokio::net::UnixStream>, EngineError> {
        let mut r = self.exec_instance(id)?;
        if r.started {
            return Err(EngineError::Conflict(match r.running {
                true => format!("Error: Exec command {} is already running", r.id),
                false => format!("Error: Exec command {} has already run", r.id),
            }));
        }
        let c = self.containers.find(&r.container_id)?;
        ready_for_exec(&c)?;
        r.started = true;
        self.update_exec(&r);
        let result = self.run_exec(&mut r, &c, detach, console_size).await;
        if let Err(e) = &result {
            r.running = false;
            if r.exit_code.is_none() {
                r.exit_code = Some(match e {
                    EngineError::StartFailed { code, .. } => *code as i64,
                    _ => 126,
                });
            }
        }
        self.update_exec(&r);
        result
    }

    async fn run_exec(
        self: &Arc<Self>,
        r: &mut ExecRecord,
        c: &super::Container,
        detach: bool,
        console_size: Option<(u16, u16)>,
    ) -> Result<Option<tokio::net::UnixStream>, EngineError> {
        let internal = |what: &str, e: &dyn std::fmt::Display| {
            EngineError::Internal(format!("{what} for exec {}: {e}", r.id))
        };
        let cdir = self.container_dir(&c.id);
        let spec_path = cdir.join("bundle/config.json");
        let spec: oci_spec::runtime::Spec = std::fs::read(&spec_path)
            .map_err(|e| internal("reading the container's config.json", &e))
            .and_then(|b| {
                serde_json::from_slice(&b)
                    .map_err(|e| internal("parsing the container's config.json", &e))
            })?;
        let container_env = spec
            .process()
            .as_ref()
            .and_then(|p| p.env().clone())
            .unwrap_or_default();
        let image_home = self
            .image(&c.image_id)
            .and_then(|i| self.image_config(&i))
            .ok()
            .and_then(|ic| ic.config)
            .and_then(|cc| cc.env)
            .unwrap_or_default()
            .iter()
            .any(|e| e.starts_with("HOME="));
        let explicit_home =
            image_home || c.config.config.env.iter().any(|e| e.starts_with("HOME="));
        let process = ExecProcess {
            args: r.config.cmd.clone(),
            env: exec_env(&container_env, explicit_home, &r.config.env),
            cwd: Some(r.config.working_dir.clone()).filter(|w| !w.is_empty()),
            user: Some(r.config.user.clone()).filter(|u| !u.is_empty()),
            privileged: r.config.privileged,
            tty: r.config.tty,
        };
        let dir = self.exec_dir(&c.id, &r.id);
        std::fs::create_dir_all(&dir).map_err(|e| internal("creating the exec directory", &e))?;
        let size = console_size.or_else(|| {
            r.config
                .console_size
                .as_deref()
                .and_then(|s| Some((*s.first()? as u16, *s.get(1)? as u16)))
        });
        let shim_config = ShimConfig {
            id: c.id.clone(),
            dir: dir.clone(),
            bundle: cdir.join("bundle"),
            overlay: None,
            tty: r.config.tty,
            open_stdin: r.config.attach_stdin,
            log: Default::default(),
            cgroup_root: PathBuf::from("/sys/fs/cgroup"),
            cgroup_parent: self.config().cgroup_parent.clone(),
            // berth's own exec joins the container's namespaces, whichever runtime made them
            runtime: None,
            runtime_root: None,
            exec: Some(ShimExec {
                container_pid: c.pid as i32,
                process,
                console_size: size,
            }),
        };
        let write = |name: &str, data: Vec<u8>| {
            berth_runtime::shim::write_atomic(&dir.join(name), &data)
                .map_err(|e| internal(&format!("writing {name}"), &e))
        };
        write(
            "shim.json",
            serde_json::to_vec(&shim_config).map_err(|e| internal("encoding", &e))?,
        )?;
        write(
            "exec.json",
            serde_json::to_vec(&ExecFile {
                container_id: c.id.clone(),
                config: r.config.clone(),
            })
            .map_err(|e| internal("encoding", &e))?,
        )?;
        let ready = self.spawn_shim(&dir).await?;
        if let Some(msg) = ready.error {
            let code = ready.code.unwrap_or_else(|| failure_code(&msg));
            r.exit_code = Some(code as i64);
            return Err(EngineError::StartFailed {
                code,
                message: format!("OCI runtime exec failed: exec failed: {msg}"),
            });
        }
        let run: RunState =
            serde_json::from_slice(&std::fs::read(dir.join("state.json")).unwrap_or_default())
                .map_err(|e| internal("reading the shim state", &e))?;
        r.pid = run.pid as i64;
        let attach = if detach {
            None
        } else {
            Some(
                connect_attach(&dir, r.config.attach_stdin)
                    .await
                    .map_err(|e| internal("attaching", &e))?,
            )
        };
        let mut sock = tokio::net::UnixStream::connect(shim::socket_path(&dir))
            .await
            .map_err(|e| internal("connecting to the exec shim", &e))?;
        sock.write_all(
            format!(
                "{}\n",
                serde_json::to_string(&Hello::Start).unwrap_or_default()
            )
            .as_bytes(),
        )
        .await
        .map_err(|e| internal("starting", &e))?;
        let mut answer = String::new();
        tokio::io::BufReader::new(sock)
            .read_line(&mut answer)
            .await
            .map_err(|e| internal("starting", &e))?;
        let v: serde_json::Value = serde_json::from_str(&answer).unwrap_or_default();
        if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
            let code = failure_code(e);
            r.exit_code = Some(code as i64);
            return Err(EngineError::StartFailed {
                code,
                message: format!("OCI runtime exec failed: exec failed: {e}"),
            });
        }
        r.running = true;
        Ok(attach)
    }

    /// `POST /exec/{id}/resize`: the exec's terminal size.
    pub async fn resize_exec(&self, id: &str, rows: u16, cols: u16) -> Result<(), EngineError> {
        let r = self.exec_instance(id)?;
        if !r.config.tty {
            return Err(EngineError::Invalid(format!(
                "exec {} has no tty; only exec instances started with a tty can be resized",
                r.id
            )));
        }
        if !r.running {
            return Err(EngineError::Conflict(format!(
                "exec {} is not running",
                r.id
            )));
        }
        let dir = self.exec_dir(&r.container_id, &r.id);
        super::resize_terminal(&dir, rows, cols)
            .await
            .map_err(|e| EngineError::Internal(format!("resizing exec {}: {e}", r.id)))
    }
}

/// Removes what the execs of a container's previous run left (their shims ended with it).
pub(super) fn clear_exec_dirs(container_dir: &Path) {
    let _ = std::fs::remove_dir_all(container_dir.join("exec"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_environment_like_docker() {
        let base = vec![
            "PATH=/bin".to_string(),
            "HOSTNAME=abc".to_string(),
            "HOME=/root".to_string(),
            "A=1".to_string(),
        ];
        let env = exec_env(&base, false, &["A=2".into(), "B=3".into(), "C".into()]);
        assert_eq!(env, vec!["PATH=/bin", "HOSTNAME=abc", "A=2", "B=3"]);
        let env = exec_env(&base, true, &[]);
        assert!(env.contains(&"HOME=/root".to_string()));
        let env = exec_env(&base, false, &["HOME=/x".into()]);
        assert!(env.contains(&"HOME=/x".to_string()));
        assert_eq!(
            failure_code("exec: \"x\": executable file not found in $PATH"),
            127
        );
        assert_eq!(failure_code("exec: \"/etc\": permission denied"), 126);
        assert_eq!(failure_code("chdir failed: not a directory"), 125);
    }
}
