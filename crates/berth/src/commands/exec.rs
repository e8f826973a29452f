//! `exec` (and `container exec`): run a command in a running container, as `docker exec`.

use anyhow::Result;
use berth_api::exec::{ExecConfig, ExecInspect, ExecStartConfig, IdResponse};
use berth_api::ApiClientError;
use hyper::Method;

use crate::commands::containers::{encode, pump_output, read_env_file};
use crate::context::GlobalArgs;
use crate::output;

/// Arguments of `exec`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "The exit code is the command's; 126 when it cannot be invoked, 127 when it is not found, 1 when the container is not running or unknown, 125 for bad flags."
)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short = 'd', long)]
    detach: bool,
    /// Override the key sequence for detaching (default ctrl-p,ctrl-q; with -it)
    #[arg(long = "detach-keys")]
    detach_keys: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file")]
    env_file: Vec<String>,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Give extended privileges to the command (every capability)
    #[arg(long)]
    privileged: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    tty: bool,
    /// Username or UID (format: "<name|uid>[:<group|gid>]"), resolved inside the container
    #[arg(short = 'u', long)]
    user: Option<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir")]
    workdir: Option<String>,
    /// The container
    container: String,
    /// The command and its arguments
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

fn environment(args: &ExecArgs) -> Result<Vec<String>> {
    let mut env = Vec::new();
    for f in &args.env_file {
        env.extend(read_env_file(f)?);
    }
    for e in &args.env {
        // `-e NAME` takes NAME's value from here, as docker does (dropped when unset)
        if e.contains('=') {
            env.push(e.clone());
        } else if let Ok(v) = std::env::var(e) {
            env.push(format!("{e}={v}"));
        } else {
            env.push(e.clone());
        }
    }
    Ok(env)
}

fn daemon_error(e: ApiClientError) -> Result<u8> {
    match e {
        ApiClientError::Api { message, .. } => {
            output::err(&format!("Error response from daemon: {message}"));
            Ok(1)
        }
        other => Err(other.into()),
    }
}

/// Runs `exec`.
pub async fn exec(args: ExecArgs, g: &GlobalArgs) -> Result<u8> {
    let env = match environment(&args) {
        Ok(e) => e,
        Err(e) => {
            output::err(&format!("berth: {e:#}"));
            output::err("See 'berth exec --help'.");
            return Ok(125);
        }
    };
    if let Some(keys) = &args.detach_keys {
        if let Err(e) = berth_api::detach_keys::parse_detach_keys(keys) {
            output::err(&format!("berth: {e}"));
            output::err("See 'berth exec --help'.");
            return Ok(125);
        }
    }
    let stdin_is_tty = rustix::termios::isatty(rustix::stdio::stdin());
    if args.tty && args.interactive && !stdin_is_tty {
        output::err("the input device is not a TTY");
        return Ok(1);
    }
    let client = g.client().await?;
    let size = if args.tty {
        crate::commands::tty::size()
    } else {
        None
    };
    let attach = !args.detach;
    let config = ExecConfig {
        attach_stdin: attach && args.interactive,
        attach_stdout: attach,
        attach_stderr: attach,
        console_size: size.map(|(r, c)| vec![r as u32, c as u32]),
        detach_keys: args.detach_keys.clone().unwrap_or_default(),
        tty: args.tty,
        env,
        cmd: args.command.clone(),
        privileged: args.privileged,
        user: args.user.clone().unwrap_or_default(),
        working_dir: args.workdir.clone().unwrap_or_default(),
    };
    let created: IdResponse = match client
        .json(
            Method::POST,
            &format!("/containers/{}/exec", encode(&args.container)),
            Some(serde_json::to_vec(&config)?),
        )
        .await
    {
        Ok(r) => r,
        Err(e) => return daemon_error(e),
    };
    let id = created.id;
    let start = ExecStartConfig {
        detach: args.detach,
        tty: args.tty,
        console_size: config.console_size.clone(),
    };
    if args.detach {
        return match client
            .call(
                Method::POST,
                &format!("/exec/{id}/start"),
                Some(serde_json::to_vec(&start)?),
            )
            .await
        {
            Ok(_) => Ok(0),
            Err(e) => daemon_error(e),
        };
    }
    let io = match client
        .upgrade_with_body(
            &format!("/exec/{id}/start"),
            Some(serde_json::to_vec(&start)?),
        )
        .await
    {
        Ok(io) => io,
        Err(e) => return daemon_error(e),
    };
    let terminal = crate::commands::tty::Session::enter(
        &client,
        format!("/exec/{id}/resize"),
        args.tty,
        args.interactive,
    );
    let (reader, writer) = tokio::io::split(io);
    let watched = args.detach_keys.clone().unwrap_or_default();
    let input = args.interactive.then(|| {
        crate::commands::attach::forward_stdin(writer, args.tty.then_some(watched.as_str()))
    });
    pump_output(reader, args.tty).await;
    drop(terminal);
    if let Some((task, detached)) = input {
        task.abort();
        if detached.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(0);
        }
    }
    // the exit code, as the docker CLI learns it: inspect the exec once the stream ended
    for _ in 0..50 {
        let info: ExecInspect = match client
            .json(Method::GET, &format!("/exec/{id}/json"), None)
            .await
        {
            Ok(i) => i,
            Err(e) => return daemon_error(e),
        };
        if !info.running {
            return Ok(info.exit_code.unwrap_or(0).clamp(0, 255) as u8);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // still running: detached with the key sequence, or it closed its output; like docker, 0
    Ok(0)
}
