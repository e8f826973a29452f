//! `POST /containers/{id}/exec`, `/exec/{id}/start|resize|json`: parse, call the engine,
//! render Docker's JSON and the hijacked stream (multiplexed, or raw with a tty).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use berth_api::exec::{ExecConfig, ExecInspect, ExecStartConfig, IdResponse};
use berth_engine::{Engine, EngineError};
use bytes::Bytes;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use crate::containers::{mux, relay};
use crate::error::ApiError;

type AppState = Arc<Engine>;

/// `POST /containers/{id}/exec`
pub(crate) async fn create(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<IdResponse>), ApiError> {
    let config: ExecConfig = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid exec config JSON: {e}")))?;
    let id = engine.create_exec(&id, config)?;
    Ok((StatusCode::CREATED, Json(IdResponse { id })))
}

fn size_of(s: &Option<Vec<u32>>) -> Option<(u16, u16)> {
    let s = s.as_deref()?;
    Some((*s.first()? as u16, *s.get(1)? as u16))
}

/// `POST /exec/{id}/start`: detached, returns at once; else upgrades the connection and
/// relays the process's stdio. A process that cannot start reports its error in the stream
/// (as Docker does) and leaves its exit code on the exec for the client's inspect.
pub(crate) async fn start(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    mut req: Request,
) -> Result<Response, ApiError> {
    let upgrade = hyper::upgrade::on(&mut req);
    let body = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?;
    let start: ExecStartConfig = if body.iter().all(u8::is_ascii_whitespace) {
        ExecStartConfig::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("invalid exec start JSON: {e}")))?
    };
    let size = size_of(&start.console_size);
    if start.detach {
        engine.start_exec(&id, true, size).await?;
        return Ok(Response::builder()
            .status(StatusCode::OK)
            .body(Body::empty())
            .expect("valid response"));
    }
    let record = engine.exec_instance(&id)?;
    if record.started {
        // the same answer start_exec would give, before upgrading
        engine.start_exec(&id, false, size).await?;
    }
    let tty = record.config.tty;
    let (want_in, want_out, want_err) = (
        record.config.attach_stdin,
        record.config.attach_stdout,
        record.config.attach_stderr,
    );
    let keys = berth_api::detach_keys::parse_detach_keys(&record.config.detach_keys)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    // as for attach: the sequence is looked for in a terminal's input only
    let detach = (tty && want_in).then(|| berth_api::detach_keys::DetachMatcher::new(keys));
    tokio::spawn(async move {
        let started = engine.start_exec(&record.id, false, size).await;
        let upgraded = match upgrade.await {
            Ok(u) => TokioIo::new(u),
            Err(e) => {
                tracing::debug!(error = %e, "exec upgrade failed");
                return;
            }
        };
        match started {
            Ok(Some(shim)) => relay(upgraded, shim, want_in, want_out, want_err, tty, detach).await,
            Ok(None) => {}
            Err(e) => {
                let msg = match &e {
                    EngineError::StartFailed { message, .. } => message.clone(),
                    other => crate::error::chain(other),
                };
                tracing::debug!(exec = record.id, error = %msg, "exec failed to start");
                let mut io = upgraded;
                let _ = io
                    .write_all(&mux(1, format!("{msg}\r\n").as_bytes(), tty))
                    .await;
                let _ = io.flush().await;
                let _ = io.shutdown().await;
            }
        }
    });
    Ok(crate::containers::upgraded_stream(tty))
}

#[derive(Deserialize, Default)]
pub(crate) struct ResizeQuery {
    #[serde(default)]
    h: Option<u16>,
    #[serde(default)]
    w: Option<u16>,
}

impl ResizeQuery {
    /// (rows, cols), both required.
    pub(crate) fn size(&self) -> Result<(u16, u16), ApiError> {
        match (self.h, self.w) {
            (Some(h), Some(w)) => Ok((h, w)),
            _ => Err(ApiError::bad_request(
                "resize needs h and w: the height and width in characters",
            )),
        }
    }
}

/// `POST /exec/{id}/resize?h=&w=`
pub(crate) async fn resize(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ResizeQuery>,
) -> Result<StatusCode, ApiError> {
    let (h, w) = q.size()?;
    engine.resize_exec(&id, h, w).await?;
    Ok(StatusCode::OK)
}

/// `GET /exec/{id}/json`
pub(crate) async fn inspect(
    State(engine): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ExecInspect>, ApiError> {
    Ok(Json(engine.exec_instance(&id)?.inspect()))
}
