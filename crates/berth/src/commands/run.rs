//! `run`: create, attach, start and wait. To a berth daemon this is one request (its
//! `berth-attach` and `berth-start` extensions of `POST /containers/create`); with a terminal,
//! or to a daemon that does not know them, Docker's requests one after the other.

use anyhow::Result;
use berth_api::containers::{CreateResponse, RunEnd, WaitResponse, RUN_HEADER};
use berth_api::{ApiClient, ApiClientError, Upgrade, UpgradedStream};
use hyper::Method;

use crate::commands::containers::{create_request, pump_output, pump_stream, with_image, RunArgs};
use crate::context::GlobalArgs;
use crate::output;

/// The exit code docker gives a failed start, from the daemon's message.
fn start_failure_code(message: &str) -> u8 {
    // runtimes differ in case: runc says "no such file or directory", crun "No such file..."
    let message = message.to_ascii_lowercase();
    if message.contains("executable file not found")
        || message.contains("no such file or directory")
    {
        127
    } else if message.contains("permission denied") || message.contains("cannot execute") {
        126
    } else {
        125
    }
}

/// Prints a failed create or start as docker does.
pub(crate) fn report_run_error(e: &anyhow::Error) {
    if let Some(ApiClientError::Api { message, .. }) = e.downcast_ref::<ApiClientError>() {
        output::err(&format!("berth: Error response from daemon: {message}"));
        output::err("See 'berth run --help'.");
    } else {
        output::err(&format!("berth: {e:#}"));
    }
}

fn print_warnings(created: &CreateResponse) {
    for w in &created.warnings {
        output::err(&format!("WARNING: {w}"));
    }
}

/// The [`CreateResponse`] a berth daemon puts in the header of a one-request run.
fn created_from(headers: &hyper::HeaderMap) -> Option<CreateResponse> {
    serde_json::from_slice(headers.get(RUN_HEADER)?.as_bytes()).ok()
}

/// Runs `run`.
pub async fn run(args: RunArgs, g: &GlobalArgs) -> Result<u8> {
    let mut req = match create_request(&args.create) {
        Ok(r) => r,
        Err(e) => {
            output::err(&format!("berth: {e:#}"));
            output::err("See 'berth run --help'.");
            return Ok(125);
        }
    };
    let detach_query = match crate::commands::attach::detach_query(args.detach_keys.as_deref()) {
        Ok(q) => q,
        Err(e) => {
            output::err(&format!("berth: {e}"));
            output::err("See 'berth run --help'.");
            return Ok(125);
        }
    };
    let client = match g.client().await {
        Ok(c) => c,
        Err(e) => {
            output::err(&format!("berth: {e:#}"));
            return Ok(125);
        }
    };
    req.host_config.auto_remove = args.rm;
    let tty = req.config.tty;
    let interactive = req.config.open_stdin;
    let want =
        |s: &str| args.attach.is_empty() || args.attach.iter().any(|a| a.eq_ignore_ascii_case(s));
    let (want_out, want_err, want_in) =
        (want("stdout"), want("stderr"), interactive && want("stdin"));
    let condition = if args.rm { "removed" } else { "next-exit" };
    // one request: create and start (-d), or create, attach, start and wait (no terminal: the
    // end of the run comes as a frame of the multiplexed stream)
    let query = if args.detach {
        "&berth-start=1".to_string()
    } else if !tty {
        format!(
            "&berth-attach=1&stdout={}&stderr={}&stdin={}&condition={condition}",
            want_out as u8, want_err as u8, want_in as u8
        )
    } else {
        String::new()
    };
    let sent = if args.detach {
        with_image(g, &args.create, &req, &query, |path, body| {
            let client = &client;
            async move {
                let resp = client.request(Method::POST, &path, Some(body), &[]).await?;
                let started = resp.headers().contains_key(RUN_HEADER);
                let bytes = http_body_util::BodyExt::collect(resp.into_body())
                    .await
                    .map_err(ApiClientError::Http)?
                    .to_bytes();
                let created: CreateResponse =
                    serde_json::from_slice(&bytes).map_err(ApiClientError::Decode)?;
                Ok(Sent::Created { created, started })
            }
        })
        .await
    } else if !tty {
        with_image(g, &args.create, &req, &query, |path, body| {
            let client = &client;
            async move {
                Ok(match client.upgrade_or_answer(&path, Some(body)).await? {
                    Upgrade::Upgraded(headers, io) => Sent::Running {
                        created: created_from(&headers).unwrap_or_default(),
                        io,
                    },
                    // a daemon without the extension: created, not started
                    Upgrade::Answer(_, _, bytes) => Sent::Created {
                        created: serde_json::from_slice(&bytes).map_err(ApiClientError::Decode)?,
                        started: false,
                    },
                })
            }
        })
        .await
    } else {
        with_image(g, &args.create, &req, "", |path, body| {
            let client = &client;
            async move {
                let created = client
                    .json::<CreateResponse>(Method::POST, &path, Some(body))
                    .await?;
                Ok(Sent::Created {
                    created,
                    started: false,
                })
            }
        })
        .await
    };
    let created = match sent {
        Err(e) => {
            report_run_error(&e);
            return Ok(125);
        }
        Ok(Sent::Running { created, io }) => {
            print_warnings(&created);
            return attached_run(&client, &args, created.id, io, interactive).await;
        }
        Ok(Sent::Created { created, started }) => {
            print_warnings(&created);
            if args.detach {
                if !started {
                    if let Err(e) = client
                        .call(
                            Method::POST,
                            &format!("/containers/{}/start", created.id),
                            None,
                        )
                        .await
                    {
                        report_run_error(&e.into());
                        return Ok(125);
                    }
                }
                output::out(&created.id);
                return Ok(0);
            }
            created
        }
    };
    // Docker's way: attach and wait side by side (as the docker CLI does), both in place
    // (headers received) before the container starts
    let id = created.id;
    let attach_path = format!(
        "/containers/{id}/attach?stream=1&stdout={}&stderr={}&stdin={}{detach_query}",
        want_out as u8, want_err as u8, want_in as u8
    );
    let wait_path = format!("/containers/{id}/wait?condition={condition}");
    let (io, wait_resp) = tokio::join!(
        client.upgrade(&attach_path),
        client.request(Method::POST, &wait_path, None, &[])
    );
    let io = match io {
        Ok(io) => io,
        Err(e) => {
            report_run_error(&e.into());
            return Ok(125);
        }
    };
    let wait_resp = wait_resp?;
    if let Err(e) = client
        .call(Method::POST, &format!("/containers/{id}/start"), None)
        .await
    {
        let code = match &e {
            ApiClientError::Api { message, .. } => start_failure_code(message),
            _ => 125,
        };
        report_run_error(&e.into());
        if args.rm {
            let _ = client
                .call(Method::DELETE, &format!("/containers/{id}?force=1"), None)
                .await;
        }
        return Ok(code);
    }
    // --sig-proxy: SIGINT and SIGTERM received here go to the container (not with a tty:
    // there the terminal delivers ^C itself)
    let proxy = if args.sig_proxy && !tty {
        let client = client.clone();
        let id = id.clone();
        Some(crate::commands::attach::proxy_signals(client, id))
    } else {
        None
    };
    let (reader, writer) = tokio::io::split(io);
    let terminal = crate::commands::tty::Session::enter(
        &client,
        format!("/containers/{id}/resize"),
        tty,
        interactive,
    );
    let watched = args.detach_keys.clone().unwrap_or_default();
    let stdin_task = interactive
        .then(|| crate::commands::attach::forward_stdin(writer, tty.then_some(watched.as_str())));
    pump_output(reader, tty).await;
    drop(terminal);
    if let Some(p) = proxy {
        p.abort();
    }
    if let Some((task, detached)) = stdin_task {
        task.abort();
        if detached.load(std::sync::atomic::Ordering::SeqCst) {
            // detached: the container runs on
            return Ok(0);
        }
    }
    let bytes = http_body_util::BodyExt::collect(wait_resp.into_body())
        .await?
        .to_bytes();
    let w: WaitResponse = serde_json::from_slice(&bytes).unwrap_or_default();
    if let Some(e) = w.error {
        output::err(&format!("berth: {}", e.message));
        return Ok(125);
    }
    Ok(w.status_code.clamp(0, 255) as u8)
}

/// What the create request of `run` got.
enum Sent {
    /// Created; `started` by the daemon (`berth-start`) or not yet.
    Created {
        created: CreateResponse,
        started: bool,
    },
    /// Created, attached and starting (`berth-attach`): the multiplexed stream.
    Running {
        created: CreateResponse,
        io: UpgradedStream,
    },
}

/// The rest of a one-request run (no terminal): stdin, signals, output, then the exit code
/// from the stream's last frame.
async fn attached_run(
    client: &ApiClient,
    args: &RunArgs,
    id: String,
    io: UpgradedStream,
    interactive: bool,
) -> Result<u8> {
    let proxy = args
        .sig_proxy
        .then(|| crate::commands::attach::proxy_signals(client.clone(), id.clone()));
    let (reader, writer) = tokio::io::split(io);
    let stdin_task = interactive.then(|| crate::commands::attach::forward_stdin(writer, None));
    let end = pump_stream(reader, false).await;
    if let Some(p) = proxy {
        p.abort();
    }
    if let Some((task, _)) = stdin_task {
        task.abort();
    }
    let Some(end) = end.and_then(|b| serde_json::from_slice::<RunEnd>(&b).ok()) else {
        output::err(&format!(
            "berth: the daemon ended the stream of container {id} without its exit status"
        ));
        return Ok(125);
    };
    if let Some(message) = end.start_error {
        output::err(&format!("berth: Error response from daemon: {message}"));
        output::err("See 'berth run --help'.");
        return Ok(start_failure_code(&message));
    }
    if let Some(e) = end.error {
        output::err(&format!("berth: {}", e.message));
        return Ok(125);
    }
    Ok(end.status_code.clamp(0, 255) as u8)
}
