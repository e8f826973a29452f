//! Container records in SQLite (`ROOT/engine.db`, WAL).

use std::path::Path;
use std::sync::Mutex;

use berth_api::containers::CreateRequest;
use rusqlite::{params, Connection, OptionalExtension};

use crate::EngineError;

/// A container's lifecycle state, as Docker names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Created, never started (or its start failed).
    Created,
    /// Running.
    Running,
    /// Frozen.
    Paused,
    /// Waiting to be restarted by its policy.
    Restarting,
    /// Exited.
    Exited,
    /// Being removed.
    Removing,
    /// Lost (its shim vanished without an exit record).
    Dead,
}

impl State {
    /// Docker's lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Created => "created",
            State::Running => "running",
            State::Paused => "paused",
            State::Restarting => "restarting",
            State::Exited => "exited",
            State::Removing => "removing",
            State::Dead => "dead",
        }
    }

    fn parse(s: &str) -> State {
        match s {
            "running" => State::Running,
            "paused" => State::Paused,
            "restarting" => State::Restarting,
            "exited" => State::Exited,
            "removing" => State::Removing,
            "dead" => State::Dead,
            _ => State::Created,
        }
    }
}

/// One container.
#[derive(Debug, Clone)]
pub struct Container {
    /// 64 hex chars.
    pub id: String,
    /// Name without the leading slash.
    pub name: String,
    /// The image as the user named it.
    pub image: String,
    /// The image ID.
    pub image_id: String,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// The create request as given (Docker's config.v2).
    pub config: CreateRequest,
    /// State.
    pub state: State,
    /// Init pid while running.
    pub pid: i64,
    /// Shim pid while running.
    pub shim_pid: i64,
    /// Last exit code.
    pub exit_code: i64,
    /// Last start error.
    pub error: String,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339.
    pub finished_at: String,
    /// Whether the OOM killer struck at the last run.
    pub oom_killed: bool,
    /// Times the restart policy restarted it.
    pub restart_count: i64,
}

/// The container table.
pub struct ContainerStore {
    db: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS containers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    image TEXT NOT NULL,
    image_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    config TEXT NOT NULL,
    state TEXT NOT NULL,
    pid INTEGER NOT NULL DEFAULT 0,
    shim_pid INTEGER NOT NULL DEFAULT 0,
    exit_code INTEGER NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT '',
    started_at TEXT NOT NULL DEFAULT '0001-01-01T00:00:00Z',
    finished_at TEXT NOT NULL DEFAULT '0001-01-01T00:00:00Z',
    oom_killed INTEGER NOT NULL DEFAULT 0,
    restart_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS containers_image ON containers(image_id);
";

fn db_err(context: &'static str) -> impl FnOnce(rusqlite::Error) -> EngineError {
    move |e| EngineError::Internal(format!("container database: {context}: {e}"))
}

const COLUMNS: &str =
    "id, name, image, image_id, created_at, config, state, pid, shim_pid, exit_code, error, started_at, finished_at, oom_killed, restart_count";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Container> {
    let config: String = r.get(5)?;
    Ok(Container {
        id: r.get(0)?,
        name: r.get(1)?,
        image: r.get(2)?,
        image_id: r.get(3)?,
        created_at: r.get(4)?,
        config: serde_json::from_str(&config).unwrap_or_default(),
        state: State::parse(&r.get::<_, String>(6)?),
        pid: r.get(7)?,
        shim_pid: r.get(8)?,
        exit_code: r.get(9)?,
        error: r.get(10)?,
        started_at: r.get(11)?,
        finished_at: r.get(12)?,
        oom_killed: r.get(13)?,
        restart_count: r.get(14)?,
    })
}

impl ContainerStore {
    /// Opens the table.
    pub fn open(path: &Path) -> Result<ContainerStore, EngineError> {
        let conn = Connection::open(path).map_err(db_err("opening"))?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;",
        )
        .map_err(db_err("configuring"))?;
        conn.execute_batch(SCHEMA)
            .map_err(db_err("creating schema"))?;
        Ok(ContainerStore {
            db: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Inserts a new container; a taken name is a conflict naming its owner.
    pub fn insert(&self, c: &Container) -> Result<(), EngineError> {
        let conn = self.conn();
        if let Some(owner) = conn
            .prepare_cached("SELECT id FROM containers WHERE name = ?1")
            .and_then(|mut s| s.query_row([&c.name], |r| r.get::<_, String>(0)))
            .optional()
            .map_err(db_err("checking name"))?
        {
            return Err(EngineError::Conflict(format!(
                "Conflict. The container name \"/{}\" is already in use by container \"{owner}\". You have to remove (or rename) that container to be able to reuse that name.",
                c.name
            )));
        }
        conn.prepare_cached(
            &format!("INSERT INTO containers ({COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15)"),
        )
        .and_then(|mut s| s.execute(params![
                c.id,
                c.name,
                c.image,
                c.image_id,
                c.created_at,
                serde_json::to_string(&c.config).unwrap_or_default(),
                c.state.as_str(),
                c.pid,
                c.shim_pid,
                c.exit_code,
                c.error,
                c.started_at,
                c.finished_at,
                c.oom_killed,
                c.restart_count
            ]))
        .map_err(db_err("inserting"))?;
        Ok(())
    }

    /// Writes the mutable fields back.
    pub fn update(&self, c: &Container) -> Result<(), EngineError> {
        self.conn()
            .prepare_cached(
                "UPDATE containers SET name=?2, state=?3, pid=?4, shim_pid=?5, exit_code=?6, error=?7, started_at=?8, finished_at=?9, oom_killed=?10, restart_count=?11 WHERE id=?1",
            )
            .and_then(|mut s| s.execute(params![c.id, c.name, c.state.as_str(), c.pid, c.shim_pid, c.exit_code, c.error, c.started_at, c.finished_at, c.oom_killed, c.restart_count]))
            .map_err(db_err("updating"))?;
        Ok(())
    }

    /// Replaces a container's recorded config (`network connect`/`disconnect`).
    pub fn update_config(&self, id: &str, config: &CreateRequest) -> Result<(), EngineError> {
        let json =
            serde_json::to_string(config).map_err(|e| EngineError::Internal(e.to_string()))?;
        self.conn()
            .execute(
                "UPDATE containers SET config=?2 WHERE id=?1",
                params![id, json],
            )
            .map_err(db_err("updating the config"))?;
        Ok(())
    }

    /// Deletes a record.
    pub fn delete(&self, id: &str) -> Result<(), EngineError> {
        self.conn()
            .prepare_cached("DELETE FROM containers WHERE id = ?1")
            .and_then(|mut s| s.execute([id]))
            .map_err(db_err("deleting"))?;
        Ok(())
    }

    /// All containers, newest first.
    pub fn list(&self) -> Result<Vec<Container>, EngineError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM containers ORDER BY created_at DESC, rowid DESC"
            ))
            .map_err(db_err("listing"))?;
        let rows = stmt
            .query_map([], row)
            .map_err(db_err("listing"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db_err("listing"))?;
        Ok(rows)
    }

    /// Finds by full ID, name (with or without `/`), or unique ID prefix.
    pub fn find(&self, key: &str) -> Result<Container, EngineError> {
        let key = key.strip_prefix('/').unwrap_or(key);
        let not_found = || EngineError::NotFound(format!("No such container: {key}"));
        if key.is_empty() {
            return Err(not_found());
        }
        let conn = self.conn();
        let exact = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM containers WHERE id = ?1 OR name = ?1"
            ))
            .and_then(|mut s| s.query_row([key], row))
            .optional()
            .map_err(db_err("finding"))?;
        if let Some(c) = exact {
            return Ok(c);
        }
        if !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(not_found());
        }
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM containers WHERE id LIKE ?1"
            ))
            .map_err(db_err("finding"))?;
        let mut hits = stmt
            .query_map([format!("{key}%")], row)
            .map_err(db_err("finding"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db_err("finding"))?;
        match hits.len() {
            0 => Err(not_found()),
            1 => Ok(hits.remove(0)),
            _ => Err(EngineError::Invalid(format!(
                "multiple IDs found with provided prefix: {key}"
            ))),
        }
    }

    /// Whether any container uses this image.
    pub fn using_image(&self, image_id: &str) -> Result<Vec<String>, EngineError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT id FROM containers WHERE image_id = ?1")
            .map_err(db_err("checking image use"))?;
        let rows = stmt
            .query_map([image_id], |r| r.get(0))
            .map_err(db_err("checking image use"))?
            .collect::<Result<Vec<String>, _>>()
            .map_err(db_err("checking image use"))?;
        Ok(rows)
    }
}
