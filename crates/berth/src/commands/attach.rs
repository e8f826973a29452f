//! `attach`, and what `run`, `start -a` and `attach` share: forwarding the terminal's input
//! while watching for the detach key sequence.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Result;
use berth_api::containers::WaitResponse;
use berth_api::detach_keys::{parse_detach_keys, DetachMatcher, Scan};
use berth_api::{ApiClient, ApiClientError};
use hyper::Method;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::context::GlobalArgs;
use crate::output;

/// Arguments of `attach`.
#[derive(clap::Args, Debug)]
pub struct AttachArgs {
    /// Do not attach STDIN
    #[arg(long = "no-stdin")]
    no_stdin: bool,
    /// Proxy all received signals to the process
    #[arg(long = "sig-proxy", default_value_t = true, action = clap::ArgAction::Set)]
    sig_proxy: bool,
    /// Override the key sequence for detaching a container (default ctrl-p,ctrl-q; a
    /// comma-separated list of single characters and ctrl-<key>: ctrl-a … ctrl-z, ctrl-@,
    /// ctrl-[, ctrl-\, ctrl-], ctrl-^, ctrl-_)
    #[arg(long = "detach-keys")]
    detach_keys: Option<String>,
    /// Container
    container: String,
}

/// Checks a `--detach-keys` value; the query parameter to pass (`&detachKeys=...`, empty for
/// the default).
pub fn detach_query(keys: Option<&str>) -> Result<String> {
    match keys {
        None => Ok(String::new()),
        Some(k) => {
            parse_detach_keys(k)?;
            Ok(format!(
                "&detachKeys={}",
                crate::commands::containers::encode(k)
            ))
        }
    }
}

/// Set once stdin is being read for an attach stream: that read cannot be cancelled, so the
/// CLI must not wait for it when it exits.
pub static STDIN_FORWARDED: AtomicBool = AtomicBool::new(false);

/// Copies our stdin to the attach stream. With a terminal (`watch_keys`) it also follows the
/// detach sequence, which the daemon acts on: the returned flag says the user typed it.
pub fn forward_stdin<W>(
    mut writer: W,
    watch_keys: Option<&str>,
) -> (tokio::task::JoinHandle<()>, Arc<AtomicBool>)
where
    W: AsyncWrite + Unpin + Send + 'static,
{
    let detached = Arc::new(AtomicBool::new(false));
    let mut matcher = watch_keys
        .map(|k| parse_detach_keys(k).unwrap_or_else(|_| vec![16, 17]))
        .map(DetachMatcher::new);
    let flag = detached.clone();
    STDIN_FORWARDED.store(true, Ordering::SeqCst);
    let task = tokio::spawn(async move {
        let mut stdin = tokio::io::stdin();
        let mut buf = vec![0u8; 4096];
        loop {
            match stdin.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    // everything goes to the daemon, which holds the sequence back itself
                    if writer.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                    if let Some(Scan::Detach(_)) = matcher.as_mut().map(|m| m.feed(&buf[..n])) {
                        flag.store(true, Ordering::SeqCst);
                        return;
                    }
                }
            }
        }
        let _ = writer.shutdown().await;
    });
    (task, detached)
}

/// Forwards SIGINT and SIGTERM received here to the container (`--sig-proxy`).
pub fn proxy_signals(client: ApiClient, id: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        loop {
            let sig = tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            };
            let _ = client
                .call(
                    Method::POST,
                    &format!("/containers/{id}/kill?signal={sig}"),
                    None,
                )
                .await;
        }
    })
}

/// Runs `attach`: the container's output here, our input there, until it exits (its exit
/// code) or the detach keys are typed (0, the container keeps running).
pub async fn run(args: AttachArgs, g: &GlobalArgs) -> Result<u8> {
    let keys = match detach_query(args.detach_keys.as_deref()) {
        Ok(k) => k,
        Err(e) => {
            output::err(&format!("berth: {e}"));
            return Ok(1);
        }
    };
    let client = g.client().await?;
    let info: serde_json::Value = match client
        .json(
            Method::GET,
            &format!(
                "/containers/{}/json",
                crate::commands::containers::encode(&args.container)
            ),
            None,
        )
        .await
    {
        Ok(v) => v,
        Err(ApiClientError::Api { message, .. }) => {
            output::err(&format!("Error response from daemon: {message}"));
            return Ok(1);
        }
        Err(e) => return Err(e.into()),
    };
    let id = info["Id"].as_str().unwrap_or_default().to_owned();
    let state = &info["State"];
    let refuse = if state["Paused"].as_bool() == Some(true) {
        Some("You cannot attach to a paused container, unpause it first")
    } else if state["Restarting"].as_bool() == Some(true) {
        Some("You cannot attach to a restarting container, wait until it is running")
    } else if state["Running"].as_bool() != Some(true) {
        Some("You cannot attach to a stopped container, start it first")
    } else {
        None
    };
    if let Some(message) = refuse {
        output::err(&format!("berth: {message}"));
        return Ok(1);
    }
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let stdin = info["Config"]["OpenStdin"].as_bool().unwrap_or(false) && !args.no_stdin;
    // the wait is in place before the stream, so an exit in between is not missed
    let wait = client
        .request(
            Method::POST,
            &format!("/containers/{id}/wait?condition=not-running"),
            None,
            &[],
        )
        .await?;
    let io = match client
        .upgrade(&format!(
            "/containers/{id}/attach?stream=1&stdout=1&stderr=1&stdin={}{keys}",
            stdin as u8
        ))
        .await
    {
        Ok(io) => io,
        Err(ApiClientError::Api { message, .. }) => {
            output::err(&format!("Error response from daemon: {message}"));
            return Ok(1);
        }
        Err(e) => return Err(e.into()),
    };
    let (reader, writer) = tokio::io::split(io);
    let terminal = crate::commands::tty::Session::enter(
        &client,
        format!("/containers/{id}/resize"),
        tty,
        stdin,
    );
    let proxy = (args.sig_proxy && !tty).then(|| proxy_signals(client.clone(), id.clone()));
    let watched = args.detach_keys.clone().unwrap_or_default();
    let input = stdin.then(|| forward_stdin(writer, (tty).then_some(watched.as_str())));
    crate::commands::containers::pump_output(reader, tty).await;
    drop(terminal);
    if let Some(p) = proxy {
        p.abort();
    }
    if let Some((task, detached)) = input {
        task.abort();
        if detached.load(Ordering::SeqCst) {
            return Ok(0);
        }
    }
    let bytes = http_body_util::BodyExt::collect(wait.into_body())
        .await?
        .to_bytes();
    let w: WaitResponse = serde_json::from_slice(&bytes).unwrap_or_default();
    Ok(w.status_code.clamp(0, 255) as u8)
}
