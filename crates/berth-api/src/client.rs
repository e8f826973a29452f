//! A minimal Docker Engine API client over a unix socket (one connection per request).

use std::path::{Path, PathBuf};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;

use crate::{ErrorResponse, API_VERSION};

/// Why an API call failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiClientError {
    /// The socket could not be reached.
    #[error("cannot connect to the berth daemon at unix://{path}")]
    Connect {
        /// Socket path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// HTTP framing failed.
    #[error("talking to the berth daemon")]
    Http(#[source] hyper::Error),
    /// The daemon answered an error.
    #[error("{message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Docker's `message`.
        message: String,
    },
    /// The answer did not parse.
    #[error("malformed answer from the berth daemon")]
    Decode(#[source] serde_json::Error),
}

/// Turns an error response into [`ApiClientError::Api`] with Docker's `message`.
async fn api_error(resp: Response<Incoming>) -> ApiClientError {
    let status = resp.status();
    let bytes = match resp.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return ApiClientError::Http(e),
    };
    let message = serde_json::from_slice::<ErrorResponse>(&bytes)
        .map(|e| e.message)
        .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).trim().to_string());
    ApiClientError::Api {
        status: status.as_u16(),
        message,
    }
}

/// An upgraded connection (attach, exec, berth's one-request run).
pub type UpgradedStream = TokioIo<hyper::upgrade::Upgraded>;

/// What [`ApiClient::upgrade_or_answer`] got.
pub enum Upgrade {
    /// The connection was upgraded: the answer's headers and the raw stream.
    Upgraded(hyper::HeaderMap, UpgradedStream),
    /// A successful answer without an upgrade: status, headers, body.
    Answer(StatusCode, hyper::HeaderMap, Bytes),
}

/// The client.
#[derive(Clone, Debug)]
pub struct ApiClient {
    socket: PathBuf,
    /// A connection made already (the CLI's check that the daemon listens), taken by the
    /// first request instead of connecting again.
    ready: std::sync::Arc<
        std::sync::Mutex<Option<(std::os::unix::net::UnixStream, std::time::Instant)>>,
    >,
}

/// How long a connection made ahead waits for its request: a server may close a connection
/// that stays silent (hyper's header timeout), so an older one is not used.
const READY_FOR: std::time::Duration = std::time::Duration::from_secs(1);

impl ApiClient {
    /// A client for the daemon at `socket`.
    pub fn new(socket: impl Into<PathBuf>) -> ApiClient {
        ApiClient {
            socket: socket.into(),
            ready: Default::default(),
        }
    }

    /// A client whose first request goes over `stream`, a connection to `socket` made already.
    pub fn with_connection(
        socket: impl Into<PathBuf>,
        stream: std::os::unix::net::UnixStream,
    ) -> ApiClient {
        let client = ApiClient::new(socket);
        *client.ready.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((stream, std::time::Instant::now()));
        client
    }

    /// The connection made already, or a new one.
    async fn connect(&self) -> Result<tokio::net::UnixStream, ApiClientError> {
        let ready = self
            .ready
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .filter(|(_, at)| at.elapsed() < READY_FOR)
            .map(|(s, _)| s);
        let connected = match ready {
            Some(s) => s
                .set_nonblocking(true)
                .and_then(|()| tokio::net::UnixStream::from_std(s)),
            None => tokio::net::UnixStream::connect(&self.socket).await,
        };
        connected.map_err(|source| ApiClientError::Connect {
            path: self.socket.clone(),
            source,
        })
    }

    /// The socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Sends a request; `path` is unversioned (`/images/json`) and gets `/v{API_VERSION}`.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, String)],
    ) -> Result<Response<Incoming>, ApiClientError> {
        let stream = self.connect().await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(ApiClientError::Http)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let uri = if path.starts_with("/_ping") {
            path.to_string()
        } else {
            format!("/v{API_VERSION}{path}")
        };
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("host", "berth");
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .expect("valid request parts");
        let resp = sender
            .send_request(req)
            .await
            .map_err(ApiClientError::Http)?;
        if resp.status().is_client_error() || resp.status().is_server_error() {
            return Err(api_error(resp).await);
        }
        Ok(resp)
    }

    /// Sends and decodes a JSON answer.
    pub async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T, ApiClientError> {
        let resp = self.request(method, path, body, &[]).await?;
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(ApiClientError::Http)?
            .to_bytes();
        serde_json::from_slice(&bytes).map_err(ApiClientError::Decode)
    }

    /// Sends and ignores the body of a successful answer; returns the status.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<StatusCode, ApiClientError> {
        let resp = self.request(method, path, body, &[]).await?;
        let status = resp.status();
        resp.into_body()
            .collect()
            .await
            .map_err(ApiClientError::Http)?;
        Ok(status)
    }

    /// Calls a streaming endpoint and hands each JSON line to `on_line`.
    pub async fn stream_lines<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        mut on_line: impl FnMut(T),
    ) -> Result<(), ApiClientError> {
        let resp = self.request(method, path, None, headers).await?;
        let mut body = resp.into_body();
        let mut buf: Vec<u8> = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(ApiClientError::Http)?;
            if let Some(data) = frame.data_ref() {
                buf.extend_from_slice(data);
                while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    on_line(serde_json::from_slice(&line).map_err(ApiClientError::Decode)?);
                }
            }
        }
        if !buf.iter().all(u8::is_ascii_whitespace) {
            on_line(serde_json::from_slice(&buf).map_err(ApiClientError::Decode)?);
        }
        Ok(())
    }

    /// Sends a request that upgrades the connection (attach); returns the raw stream.
    pub async fn upgrade(
        &self,
        path: &str,
    ) -> Result<TokioIo<hyper::upgrade::Upgraded>, ApiClientError> {
        self.upgrade_with_body(path, None).await
    }

    /// Like [`ApiClient::upgrade`], with a JSON body (`/exec/{id}/start`).
    pub async fn upgrade_with_body(
        &self,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<TokioIo<hyper::upgrade::Upgraded>, ApiClientError> {
        match self.upgrade_or_answer(path, body).await? {
            Upgrade::Upgraded(_, io) => Ok(io),
            Upgrade::Answer(status, _, bytes) => Err(ApiClientError::Api {
                status: status.as_u16(),
                message: format!(
                    "the daemon did not upgrade the connection: {}",
                    String::from_utf8_lossy(&bytes).trim()
                ),
            }),
        }
    }

    /// Sends a request that may upgrade the connection: the upgraded stream with the answer's
    /// headers, or a successful answer that did not upgrade (a daemon that ignores what asked
    /// for the upgrade) with its body. Error answers are errors.
    pub async fn upgrade_or_answer(
        &self,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Upgrade, ApiClientError> {
        let stream = self.connect().await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(ApiClientError::Http)?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        let req = Request::builder()
            .method(Method::POST)
            .uri(format!("/v{API_VERSION}{path}"))
            .header("host", "berth")
            .header("connection", "Upgrade")
            .header("upgrade", "tcp");
        let req = match body {
            Some(_) => req.header("content-type", "application/json"),
            None => req,
        };
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .expect("valid request parts");
        let resp = sender
            .send_request(req)
            .await
            .map_err(ApiClientError::Http)?;
        if resp.status().is_client_error() || resp.status().is_server_error() {
            return Err(api_error(resp).await);
        }
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            let (parts, body) = resp.into_parts();
            let bytes = body
                .collect()
                .await
                .map_err(ApiClientError::Http)?
                .to_bytes();
            return Ok(Upgrade::Answer(parts.status, parts.headers, bytes));
        }
        let headers = resp.headers().clone();
        let upgraded = hyper::upgrade::on(resp)
            .await
            .map_err(ApiClientError::Http)?;
        Ok(Upgrade::Upgraded(headers, TokioIo::new(upgraded)))
    }

    /// `GET /_ping`: whether a daemon answers.
    pub async fn ping(&self) -> bool {
        matches!(self.call(Method::GET, "/_ping", None).await, Ok(s) if s.is_success())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers `n` connections with an empty 200, one request each; returns how many
    /// connections it accepted before the listener was found idle.
    fn serve(
        listener: std::os::unix::net::UnixListener,
        n: usize,
    ) -> std::thread::JoinHandle<usize> {
        std::thread::spawn(move || {
            use std::io::{BufRead, Write};
            for _ in 0..n {
                let (conn, _) = listener.accept().expect("accept");
                let mut r = std::io::BufReader::new(conn.try_clone().expect("clone"));
                let mut line = String::new();
                while r.read_line(&mut line).expect("read") > 2 {
                    line.clear();
                }
                (&conn)
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nOK")
                    .expect("write");
            }
            listener.set_nonblocking(true).expect("nonblocking");
            n + usize::from(listener.accept().is_ok())
        })
    }

    #[tokio::test]
    async fn the_connection_made_ahead_serves_the_first_request() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = dir.path().join("s.sock");
        let listener = std::os::unix::net::UnixListener::bind(&sock).expect("bind");
        let server = serve(listener, 2);
        let ahead = std::os::unix::net::UnixStream::connect(&sock).expect("connect");
        let client = ApiClient::with_connection(&sock, ahead);
        assert!(
            client.ping().await,
            "first request over the connection made ahead"
        );
        assert!(client.ping().await, "the next one connects anew");
        assert_eq!(
            server.join().expect("server"),
            2,
            "no connection besides those two"
        );
    }
}
