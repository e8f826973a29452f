//! A small in-process registry for hostile and auth tests: serves manifests and blobs from
//! memory, can demand basic or bearer auth (with its own token endpoint), and can lie.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine as _;
use bytes::Bytes;

use crate::image::{Blob, FixtureImage};

/// How the registry authenticates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    /// Anonymous.
    None,
    /// HTTP basic with these credentials.
    Basic(String, String),
    /// Bearer tokens from `/token`, which itself wants these basic credentials (or none).
    Bearer(Option<(String, String)>),
}

/// A lie told about one blob or manifest (keyed by digest, or by tag for manifests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Flip a byte in the middle.
    Corrupt,
    /// Serve only the first half, with a matching Content-Length.
    Short,
    /// Append garbage beyond the declared size.
    Long,
    /// Answer 500 this many times, then serve normally.
    Fail(u32),
    /// Send this many bytes, then break the connection, this many times; honours Range.
    DropAfter(usize, u32),
    /// Wait this long between chunks.
    Slow(Duration),
    /// Serve this body instead (for manifests: bad JSON).
    Replace(Vec<u8>),
    /// Answer 404.
    Missing,
}

#[derive(Default)]
struct Inner {
    blobs: HashMap<String, Blob>,
    tags: HashMap<String, Blob>,
    faults: HashMap<String, Fault>,
    requests: Vec<String>,
}

/// The fake registry. Dropping it stops the server.
pub struct FakeRegistry {
    /// `127.0.0.1:PORT`.
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct AppState {
    inner: Arc<Mutex<Inner>>,
    auth: Auth,
    addr: SocketAddr,
}

const TOKEN: &str = "berth-test-token";

impl FakeRegistry {
    /// Starts serving on a free loopback port.
    pub async fn start(auth: Auth) -> FakeRegistry {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding loopback");
        let addr = listener.local_addr().expect("bound address");
        let inner = Arc::new(Mutex::new(Inner::default()));
        let state = AppState {
            inner: inner.clone(),
            auth,
            addr,
        };
        let app = Router::new()
            .route("/v2/", get(ping))
            .route("/token", get(token))
            .route("/v2/{*rest}", get(serve))
            .with_state(state);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeRegistry { addr, inner, task }
    }

    /// `127.0.0.1:PORT`, as a registry domain.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Serves an image under `repo:tag` (the repo part is not checked).
    pub fn add_image(&self, tag: &str, img: &FixtureImage) {
        let mut g = self.inner.lock().expect("lock");
        for b in img.blobs() {
            g.blobs.insert(b.digest.clone(), b);
        }
        g.tags.insert(tag.to_string(), img.manifest.clone());
    }

    /// Serves an index under `tag` (its platform images must be added too).
    pub fn add_index(&self, tag: &str, index: &Blob) {
        let mut g = self.inner.lock().expect("lock");
        g.blobs.insert(index.digest.clone(), index.clone());
        g.tags.insert(tag.to_string(), index.clone());
    }

    /// Makes the registry lie about `key` (a digest, or a tag for manifests).
    pub fn fault(&self, key: &str, fault: Fault) {
        self.inner
            .lock()
            .expect("lock")
            .faults
            .insert(key.to_string(), fault);
    }

    /// Every request seen, as `METHOD PATH [range]`.
    pub fn requests(&self) -> Vec<String> {
        self.inner.lock().expect("lock").requests.clone()
    }
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn basic_ok(headers: &HeaderMap, user: &str, pass: &str) -> bool {
    let want = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    );
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(want.as_str())
}

fn challenge(state: &AppState) -> Option<Response> {
    let value = match &state.auth {
        Auth::None => return None,
        Auth::Basic(..) => "Basic realm=\"berth-test\"".to_string(),
        Auth::Bearer(_) => format!(
            "Bearer realm=\"http://{}/token\",service=\"berth-test\"",
            state.addr
        ),
    };
    Some(
        (
            StatusCode::UNAUTHORIZED,
            [("www-authenticate", value)],
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
        )
            .into_response(),
    )
}

fn authorized(state: &AppState, headers: &HeaderMap) -> bool {
    match &state.auth {
        Auth::None => true,
        Auth::Basic(u, p) => basic_ok(headers, u, p),
        Auth::Bearer(_) => {
            headers.get("authorization").and_then(|v| v.to_str().ok())
                == Some(&format!("Bearer {TOKEN}"))
        }
    }
}

async fn ping(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !authorized(&state, &headers) {
        return challenge(&state).expect("unauthorized implies auth configured");
    }
    (StatusCode::OK, "{}").into_response()
}

async fn token(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match &state.auth {
        Auth::Bearer(Some((u, p))) if !basic_ok(&headers, u, p) => {
            (StatusCode::UNAUTHORIZED, "bad credentials").into_response()
        }
        Auth::Bearer(_) => (
            StatusCode::OK,
            format!(r#"{{"token":"{TOKEN}","expires_in":300}}"#),
        )
            .into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn serve(
    State(state): State<AppState>,
    Path(rest): Path<String>,
    headers: HeaderMap,
) -> Response {
    let range = headers
        .get("range")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    state.inner.lock().expect("lock").requests.push(format!(
        "GET /v2/{rest} {}",
        range.clone().unwrap_or_default()
    ));
    if !authorized(&state, &headers) {
        return challenge(&state).expect("unauthorized implies auth configured");
    }
    let (kind, key) = match (rest.rsplit_once("/manifests/"), rest.rsplit_once("/blobs/")) {
        (Some((_, k)), _) => ("manifest", k.to_string()),
        (_, Some((_, k))) => ("blob", k.to_string()),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let (blob, fault) = {
        let mut g = state.inner.lock().expect("lock");
        let blob = if kind == "manifest" {
            g.tags.get(&key).or_else(|| g.blobs.get(&key)).cloned()
        } else {
            g.blobs.get(&key).cloned()
        };
        let fault = blob.as_ref().and_then(|b| {
            g.faults
                .get(&key)
                .or_else(|| g.faults.get(&b.digest))
                .cloned()
        });
        // count down the transient faults
        if let Some(b) = &blob {
            for k in [key.clone(), b.digest.clone()] {
                match g.faults.get_mut(&k) {
                    Some(Fault::Fail(n)) | Some(Fault::DropAfter(_, n)) if *n > 0 => *n -= 1,
                    _ => {}
                }
            }
        }
        (blob, fault)
    };
    let Some(blob) = blob else {
        return (
            StatusCode::NOT_FOUND,
            r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}"#,
        )
            .into_response();
    };
    let mut data = blob.data.clone();
    let mut drop_after = None;
    let mut slow = None;
    match fault {
        Some(Fault::Corrupt) => {
            let mid = data.len() / 2;
            data[mid] ^= 0xff;
        }
        Some(Fault::Short) => data.truncate(data.len() / 2),
        Some(Fault::Long) => data.extend_from_slice(&[0u8; 4096]),
        Some(Fault::Fail(n)) if n > 0 => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Some(Fault::DropAfter(bytes, n)) if n > 0 => drop_after = Some(bytes),
        Some(Fault::Slow(d)) => slow = Some(d),
        Some(Fault::Replace(body)) => data = body,
        Some(Fault::Missing) => return StatusCode::NOT_FOUND.into_response(),
        _ => {}
    }
    let mut status = StatusCode::OK;
    let mut start = 0;
    if let Some(r) = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
    {
        if let Ok(s) = r.parse::<usize>() {
            if s < data.len() {
                start = s;
                status = StatusCode::PARTIAL_CONTENT;
            }
        }
    }
    let full_len = data.len() - start;
    let body = data[start..].to_vec();
    let stream = async_stream(body, drop_after, slow);
    Response::builder()
        .status(status)
        .header("content-type", blob.media_type.clone())
        .header("docker-content-digest", blob.digest.clone())
        .header("content-length", full_len.to_string())
        .body(Body::from_stream(stream))
        .expect("valid response")
}

fn async_stream(body: Vec<u8>, drop_after: Option<usize>, slow: Option<Duration>) -> ChunkStream {
    ChunkStream {
        body: Bytes::from(body),
        pos: 0,
        drop_after,
        slow,
        sleep: slow.map(|d| Box::pin(tokio::time::sleep(d))),
    }
}

/// The body in 16 KiB chunks, optionally slow, optionally breaking after some bytes.
struct ChunkStream {
    body: Bytes,
    pos: usize,
    drop_after: Option<usize>,
    slow: Option<Duration>,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl futures_util::Stream for ChunkStream {
    type Item = Result<Bytes, std::io::Error>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(s) = self.sleep.as_mut() {
            if s.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.sleep = None;
        }
        if self.pos >= self.body.len() {
            return Poll::Ready(None);
        }
        if let Some(limit) = self.drop_after {
            if self.pos >= limit {
                return Poll::Ready(Some(Err(std::io::Error::other(
                    "fault: connection dropped",
                ))));
            }
        }
        let mut end = (self.pos + 16 * 1024).min(self.body.len());
        if let Some(limit) = self.drop_after {
            end = end.min(limit.max(self.pos + 1));
        }
        let chunk = self.body.slice(self.pos..end);
        self.pos = end;
        if let Some(d) = self.slow {
            self.sleep = Some(Box::pin(tokio::time::sleep(d)));
        }
        Poll::Ready(Some(Ok(chunk)))
    }
}
