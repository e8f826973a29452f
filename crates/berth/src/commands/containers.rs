//! `run`, `create`, `start`, `ps`, `logs`, `stop`, `kill`, `rm`, `wait`, `restart`, `inspect`,
//! `container …`.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::{bail, Context, Result};
use berth_api::containers::{
    ContainerSummary, CreateRequest, CreateResponse, HostConfig, LogConfig, RestartPolicy, Ulimit,
    WaitResponse,
};
use berth_api::{ApiClient, ApiClientError};
use hyper::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::context::GlobalArgs;
use crate::output;

/// Flags shared by `run` and `create`.
#[derive(clap::Args, Debug, Clone)]
pub struct CreateArgs {
    /// Assign a name to the container
    #[arg(long)]
    name: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file")]
    env_file: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir")]
    workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long)]
    user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    entrypoint: Option<String>,
    /// Container host name
    #[arg(short = 'h', long)]
    hostname: Option<String>,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    tty: bool,
    /// Run berth's init as PID 1 (at /sbin/docker-init): it forwards signals, reaps zombies
    #[arg(long)]
    init: bool,
    /// Mount the container's root filesystem as read only
    #[arg(long)]
    read_only: bool,
    /// Add Linux capabilities
    #[arg(long = "cap-add")]
    cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop")]
    cap_drop: Vec<String>,
    /// Give extended privileges to this container
    #[arg(long)]
    privileged: bool,
    /// Security options (no-new-privileges, seccomp=unconfined|PROFILE.json)
    #[arg(long = "security-opt")]
    security_opt: Vec<String>,
    /// Mount a tmpfs directory (PATH[:OPTIONS])
    #[arg(long)]
    tmpfs: Vec<String>,
    /// Memory limit
    #[arg(short = 'm', long)]
    memory: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long = "memory-swap")]
    memory_swap: Option<String>,
    /// Number of CPUs
    #[arg(long)]
    cpus: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares")]
    cpu_shares: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    cpuset_cpus: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit")]
    pids_limit: Option<i64>,
    /// Ulimit options (NAME=SOFT[:HARD])
    #[arg(long)]
    ulimit: Vec<String>,
    /// Restart policy (no, always, on-failure[:max-retries], unless-stopped)
    #[arg(long, default_value = "no")]
    restart: String,
    /// Signal to stop the container
    #[arg(long = "stop-signal")]
    stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout")]
    stop_timeout: Option<i64>,
    /// Set meta data on a container
    #[arg(short = 'l', long = "label")]
    label: Vec<String>,
    /// Log driver options (max-size, max-file)
    #[arg(long = "log-opt")]
    log_opt: Vec<String>,
    /// Runtime to use for this container: berth (default), runc, crun, youki, or an absolute
    /// path to an OCI runtime
    #[arg(long)]
    runtime: Option<String>,
    /// Run this directory tree (absolute path) as the root, in place and writable, instead of
    /// an image; the arguments are then the command: --rootfs DIR COMMAND [ARG...]
    #[arg(long, value_name = "DIR")]
    rootfs: Option<String>,
    /// Connect a container to a network: bridge (the default), none, host, a network made
    /// with `network create` (by name or id), or container:NAME (share that container's
    /// network stack)
    #[arg(long = "network", alias = "net", default_value = "default")]
    network: String,
    /// Add network-scoped aliases for the container (names other containers on a
    /// user-defined network resolve to it)
    #[arg(long = "network-alias")]
    network_alias: Vec<String>,
    /// IPv4 address on the container's network (e.g. 10.213.0.10)
    #[arg(long)]
    ip: Option<String>,
    /// Container MAC address (e.g. 02:42:0a:d5:00:0a)
    #[arg(long = "mac-address")]
    mac_address: Option<String>,
    /// Publish a container's port(s) to the host: [IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp],
    /// ports may be ranges (8000-8002:80-82); no host port picks a free one
    #[arg(short = 'p', long = "publish")]
    publish: Vec<String>,
    /// Publish all exposed ports to free host ports
    #[arg(short = 'P', long = "publish-all")]
    publish_all: bool,
    /// Expose a port or a range of ports
    #[arg(long)]
    expose: Vec<String>,
    /// Set custom DNS servers
    #[arg(long)]
    dns: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search")]
    dns_search: Vec<String>,
    /// Set DNS options
    #[arg(long = "dns-option")]
    dns_option: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host")]
    add_host: Vec<String>,
    /// Size of /dev/shm
    #[arg(long = "shm-size")]
    shm_size: Option<String>,
    /// Tune host's OOM preferences (-1000 to 1000)
    #[arg(long = "oom-score-adj")]
    oom_score_adj: Option<i64>,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    platform: Option<String>,
    /// Pull image before running ("always", "missing", "never")
    #[arg(long, default_value = "missing")]
    pull: String,
    /// Print help (-h is --hostname, as in docker)
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    /// IMAGE [COMMAND] [ARG...]
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "IMAGE [COMMAND] [ARG...]"
    )]
    rest: Vec<String>,
}

/// Flags of `run` only.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Run container in background and print container ID
    #[arg(short = 'd', long)]
    pub(crate) detach: bool,
    /// Automatically remove the container when it exits (its root file system is volatile:
    /// nothing it writes is synced to disk, and fsync inside it is a no-op)
    #[arg(long)]
    pub(crate) rm: bool,
    /// Attach to STDIN, STDOUT or STDERR
    #[arg(short = 'a', long = "attach")]
    pub(crate) attach: Vec<String>,
    /// Proxy received signals to the process
    #[arg(long = "sig-proxy", default_value_t = true, action = clap::ArgAction::Set)]
    pub(crate) sig_proxy: bool,
    /// Override the key sequence for detaching a container (default ctrl-p,ctrl-q; with -it)
    #[arg(long = "detach-keys")]
    pub(crate) detach_keys: Option<String>,
    #[command(flatten)]
    pub(crate) create: CreateArgs,
}

/// Docker's RAMInBytes: 64m, 1g, 512k, 1024 (binary units).
pub fn ram_in_bytes(s: &str) -> Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let n: f64 = t[..split]
        .parse()
        .with_context(|| format!("invalid size: '{s}'"))?;
    let mult: f64 = match t[split..].trim_end_matches('b').trim_end_matches('i') {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024.0_f64.powi(4),
        _ => bail!("invalid size: '{s}'"),
    };
    Ok((n * mult) as i64)
}

fn parse_ulimit(s: &str) -> Result<Ulimit> {
    let (name, vals) = s
        .split_once('=')
        .with_context(|| format!("invalid ulimit argument: {s} (expected NAME=SOFT[:HARD])"))?;
    let (soft, hard) = match vals.split_once(':') {
        Some((a, b)) => (a, b),
        None => (vals, vals),
    };
    let p = |v: &str| -> Result<i64> {
        if v == "unlimited" || v == "-1" {
            Ok(i64::MAX)
        } else {
            v.parse()
                .with_context(|| format!("invalid ulimit value {v:?} in {s}"))
        }
    };
    Ok(Ulimit {
        name: name.to_string(),
        soft: p(soft)?,
        hard: p(hard)?,
    })
}

pub(crate) fn read_env_file(path: &str) -> Result<Vec<String>> {
    let data = std::fs::read_to_string(path).with_context(|| format!("reading env file {path}"))?;
    Ok(data
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            if l.contains('=') {
                l.to_string()
            } else {
                std::env::var(l)
                    .map(|v| format!("{l}={v}"))
                    .unwrap_or_else(|_| l.to_string())
            }
        })
        .collect())
}

/// Builds Docker's create body from the flags.
pub fn create_request(a: &CreateArgs) -> Result<CreateRequest> {
    // with --rootfs there is no image: every argument is the command
    let (image, cmd) = match &a.rootfs {
        Some(dir) => (dir.clone(), a.rest.clone()),
        None => (
            a.rest
                .first()
                .context("\"run\" requires at least 1 argument: IMAGE")?
                .clone(),
            a.rest[1..].to_vec(),
        ),
    };
    let mut env = Vec::new();
    for f in &a.env_file {
        env.extend(read_env_file(f)?);
    }
    for e in &a.env {
        // `-e NAME` takes NAME's value from this environment, as docker does
        if e.contains('=') {
            env.push(e.clone());
        } else if let Ok(v) = std::env::var(e) {
            env.push(format!("{e}={v}"));
        }
    }
    let mut labels = BTreeMap::new();
    for l in &a.label {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        labels.insert(k.to_string(), v.to_string());
    }
    let restart = match a.restart.split_once(':') {
        Some((n, c)) => RestartPolicy {
            name: n.into(),
            maximum_retry_count: c
                .parse()
                .with_context(|| format!("invalid restart policy: {}", a.restart))?,
        },
        None => RestartPolicy {
            name: a.restart.clone(),
            maximum_retry_count: 0,
        },
    };
    if !matches!(
        restart.name.as_str(),
        "no" | "always" | "on-failure" | "unless-stopped"
    ) {
        bail!(
            "invalid restart policy format: {} (use no, always, on-failure[:N] or unless-stopped)",
            a.restart
        );
    }
    if restart.maximum_retry_count != 0 && restart.name != "on-failure" {
        bail!(
            "maximum retry count cannot be used with restart policy '{}'",
            restart.name
        );
    }
    let mut log = LogConfig {
        kind: "json-file".into(),
        config: BTreeMap::new(),
    };
    for o in &a.log_opt {
        let (k, v) = o
            .split_once('=')
            .with_context(|| format!("invalid log opt {o:?}: expected KEY=VALUE"))?;
        log.config.insert(k.to_string(), v.to_string());
    }
    let mut tmpfs = BTreeMap::new();
    for t in &a.tmpfs {
        let (p, o) = t.split_once(':').unwrap_or((t.as_str(), ""));
        tmpfs.insert(p.to_string(), o.to_string());
    }
    let nano_cpus = match &a.cpus {
        Some(c) => {
            let f: f64 = c
                .parse()
                .with_context(|| format!("invalid argument \"{c}\" for \"--cpus\" flag"))?;
            (f * 1e9) as i64
        }
        None => 0,
    };
    let memory_swap = match a.memory_swap.as_deref() {
        Some("-1") => -1,
        Some(s) => ram_in_bytes(s)?,
        None => 0,
    };
    let entrypoint = a.entrypoint.as_ref().map(|e| {
        if e.is_empty() {
            vec![]
        } else {
            vec![e.clone()]
        }
    });
    let (port_bindings, mut exposed) = publish_to_bindings(&a.publish)?;
    for e in &a.expose {
        let (ports, proto) = e.split_once('/').unwrap_or((e.as_str(), "tcp"));
        let (first, last) = ports.split_once('-').unwrap_or((ports, ports));
        let parse = |p: &str| {
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .with_context(|| format!("invalid range format for --expose: {e}"))
        };
        for p in parse(first)?..=parse(last)? {
            exposed.insert(format!("{p}/{proto}"), serde_json::json!({}));
        }
    }
    let networking_config =
        (a.ip.is_some() || a.mac_address.is_some() || !a.network_alias.is_empty()).then(|| {
            let name = match a.network.as_str() {
                "default" | "" => "bridge".to_string(),
                n => n.to_string(),
            };
            berth_api::containers::NetworkingConfig {
                endpoints_config: [(
                    name,
                    berth_api::containers::EndpointSettings {
                        ipam_config: a.ip.clone().map(|ip| {
                            berth_api::containers::EndpointIpamConfig { ipv4_address: ip }
                        }),
                        aliases: a.network_alias.clone(),
                        mac_address: a.mac_address.clone().unwrap_or_default(),
                    },
                )]
                .into(),
            }
        });
    Ok(CreateRequest {
        networking_config,
        config: berth_api::containers::ContainerConfig {
            exposed_ports: (!exposed.is_empty()).then_some(exposed),
            hostname: a.hostname.clone().unwrap_or_default(),
            user: a.user.clone().unwrap_or_default(),
            attach_stdin: a.interactive,
            attach_stdout: true,
            attach_stderr: true,
            tty: a.tty,
            open_stdin: a.interactive,
            stdin_once: a.interactive,
            env,
            cmd,
            image,
            working_dir: a.workdir.clone().unwrap_or_default(),
            entrypoint,
            labels,
            stop_signal: a.stop_signal.clone(),
            stop_timeout: a.stop_timeout,
            ..Default::default()
        },
        host_config: HostConfig {
            network_mode: a.network.clone(),
            restart_policy: restart,
            cap_add: a.cap_add.clone(),
            cap_drop: a.cap_drop.clone(),
            privileged: a.privileged,
            readonly_rootfs: a.read_only,
            security_opt: a.security_opt.clone(),
            tmpfs,
            init: a.init.then_some(true),
            runtime: a.runtime.clone().unwrap_or_default(),
            rootfs: a.rootfs.clone().unwrap_or_default(),
            memory: a
                .memory
                .as_deref()
                .map(ram_in_bytes)
                .transpose()?
                .unwrap_or(0),
            memory_swap,
            cpu_shares: a.cpu_shares.unwrap_or(0),
            nano_cpus,
            cpuset_cpus: a.cpuset_cpus.clone().unwrap_or_default(),
            pids_limit: a.pids_limit,
            ulimits: a
                .ulimit
                .iter()
                .map(|u| parse_ulimit(u))
                .collect::<Result<_>>()?,
            log_config: log,
            dns: a.dns.clone(),
            dns_search: a.dns_search.clone(),
            dns_options: a.dns_option.clone(),
            extra_hosts: a.add_host.clone(),
            port_bindings,
            publish_all_ports: a.publish_all,
            shm_size: a
                .shm_size
                .as_deref()
                .map(ram_in_bytes)
                .transpose()?
                .unwrap_or(0),
            oom_score_adj: a.oom_score_adj.unwrap_or(0),
            ..Default::default()
        },
    })
}

type PortBindings = BTreeMap<String, Vec<berth_api::containers::PortBinding>>;

/// `-p` arguments → `HostConfig.PortBindings` and the ports they expose, as the docker CLI
/// sends them: a container range is one key per port; a host range for one container port
/// stays a range for the daemon to pick from.
pub(crate) fn publish_to_bindings(
    publish: &[String],
) -> Result<(PortBindings, BTreeMap<String, serde_json::Value>)> {
    use berth_api::containers::PortBinding;
    let mut bindings: PortBindings = BTreeMap::new();
    let mut exposed = BTreeMap::new();
    for p in publish {
        let spec: berth_net::PortSpec = p
            .parse()
            .map_err(|e| anyhow::anyhow!("invalid published port: {e}"))?;
        let host_ip = spec.host_ip.map(|ip| ip.to_string()).unwrap_or_default();
        let c = spec.container_ports;
        for (i, port) in (c.first..=c.last).enumerate() {
            let host_port = match spec.host_ports {
                None => String::new(),
                Some(h) if h.len() == c.len() => (h.first + i as u16).to_string(),
                Some(h) if h.first == h.last => h.first.to_string(),
                Some(h) => format!("{}-{}", h.first, h.last),
            };
            let key = format!("{port}/{}", spec.protocol);
            exposed.insert(key.clone(), serde_json::json!({}));
            bindings.entry(key).or_default().push(PortBinding {
                host_ip: host_ip.clone(),
                host_port,
            });
        }
    }
    Ok((bindings, exposed))
}

/// `0.0.0.0:8080->80/tcp, 127.0.0.1:8081->81/tcp`, as `docker ps` shows them.
pub(crate) fn ports_column(ports: &[serde_json::Value]) -> String {
    ports
        .iter()
        .map(|p| {
            let private = p["PrivatePort"].as_u64().unwrap_or(0);
            let kind = p["Type"].as_str().unwrap_or("tcp");
            match p["PublicPort"].as_u64() {
                Some(public) => format!(
                    "{}:{public}->{private}/{kind}",
                    p["IP"].as_str().unwrap_or("0.0.0.0")
                ),
                None => format!("{private}/{kind}"),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Arguments of `port`.
#[derive(clap::Args, Debug)]
pub struct PortArgs {
    /// Container
    container: String,
    /// PRIVATE_PORT[/PROTO]: only this port's mappings
    private_port: Option<String>,
}

/// Runs `port`: the container's published ports, `80/tcp -> 0.0.0.0:8080`.
pub async fn port(args: PortArgs, g: &GlobalArgs) -> Result<u8> {
    let client = g.client().await?;
    let v: serde_json::Value = client
        .json(
            Method::GET,
            &format!("/containers/{}/json", encode(&args.container)),
            None,
        )
        .await?;
    let ports = v["NetworkSettings"]["Ports"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let wanted = args.private_port.as_deref().map(|p| {
        if p.contains('/') {
            p.to_string()
        } else {
            format!("{p}/tcp")
        }
    });
    let mut found = false;
    for (key, bindings) in &ports {
        if wanted.as_ref().is_some_and(|w| w != key) {
            continue;
        }
        for b in bindings.as_array().into_iter().flatten() {
            found = true;
            let line = format!(
                "{} -> {}:{}",
                if wanted.is_some() { "" } else { key.as_str() },
                b["HostIp"].as_str().unwrap_or(""),
                b["HostPort"].as_str().unwrap_or("")
            );
            output::out(line.trim_start_matches(" -> ").trim_start());
        }
    }
    if let (Some(w), false) = (&wanted, found) {
        anyhow::bail!(
            "Error: No public port '{w}' published for {}",
            args.container
        );
    }
    Ok(0)
}

pub(crate) fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Creates, pulling the image first when it is missing (like docker).
async fn create_container(
    client: &ApiClient,
    g: &GlobalArgs,
    a: &CreateArgs,
    mut req: CreateRequest,
    auto_remove: bool,
) -> Result<CreateResponse> {
    req.host_config.auto_remove = auto_remove;
    with_image(g, a, &req, "", |path, body| async move {
        client
            .json::<CreateResponse>(Method::POST, &path, Some(body))
            .await
    })
    .await
}

/// Sends a create request with `send(path, body)` (the path with the name and `query`, e.g.
/// `&berth-start=1`), pulling the image first when it is missing (like docker) or always
/// (`--pull always`).
pub(crate) async fn with_image<T, F, Fut>(
    g: &GlobalArgs,
    a: &CreateArgs,
    req: &CreateRequest,
    query: &str,
    send: F,
) -> Result<T>
where
    F: Fn(String, Vec<u8>) -> Fut,
    Fut: std::future::Future<Output = Result<T, ApiClientError>>,
{
    let path = match &a.name {
        Some(n) => format!("/containers/create?name={}{query}", encode(n)),
        None => format!("/containers/create?{}", query.trim_start_matches('&')),
    };
    let path = path.trim_end_matches('?').to_string();
    let body = serde_json::to_vec(req)?;
    if a.pull == "always" && a.rootfs.is_none() {
        pull_for_run(g, &req.config.image, a.platform.as_deref()).await?;
    }
    match send(path.clone(), body.clone()).await {
        Err(ApiClientError::Api {
            status: 404,
            message,
        }) if message.starts_with("No such image") && a.pull != "never" && a.rootfs.is_none() => {
            output::err(&format!(
                "Unable to find image '{}' locally",
                req.config.image
            ));
            pull_for_run(g, &req.config.image, a.platform.as_deref()).await?;
            Ok(send(path, body).await?)
        }
        other => Ok(other?),
    }
}

async fn pull_for_run(g: &GlobalArgs, image: &str, platform: Option<&str>) -> Result<()> {
    let exe = std::env::current_exe()?;
    let mut cmd = tokio::process::Command::new(exe);
    if let Some(r) = &g.root {
        cmd.arg("--root").arg(r);
    }
    if let Some(h) = &g.host {
        cmd.arg("-H").arg(h);
    }
    cmd.arg("pull");
    if let Some(p) = platform {
        cmd.arg("--platform").arg(p);
    }
    // docker prints the pull progress to stderr during run
    let out = cmd
        .arg(image)
        .stdout(std::process::Stdio::piped())
        .output()
        .await?;
    std::io::stderr().write_all(&out.stdout)?;
    if !out.status.success() {
        bail!("pulling {image} failed");
    }
    Ok(())
}

/// Demultiplexes Docker's stream (or passes a tty stream through) to our stdout/stderr.
pub(crate) async fn pump_output<R: tokio::io::AsyncRead + Unpin>(r: R, tty: bool) {
    if let Some(system) = pump_stream(r, tty).await {
        // Docker's "system error" stream: the daemon's own message
        output::err(String::from_utf8_lossy(&system).trim_end());
    }
}

/// [`pump_output`], up to a frame of the "system error" stream (type
/// [`berth_api::containers::RUN_END_STREAM`]): its payload is returned, and ends the stream.
pub(crate) async fn pump_stream<R: tokio::io::AsyncRead + Unpin>(
    mut r: R,
    tty: bool,
) -> Option<Vec<u8>> {
    let mut stdout = tokio::io::stdout();
    let mut stderr = tokio::io::stderr();
    if tty {
        let _ = tokio::io::copy(&mut r, &mut stdout).await;
        let _ = stdout.flush().await;
        return None;
    }
    let mut head = [0u8; 8];
    loop {
        if r.read_exact(&mut head).await.is_err() {
            return None;
        }
        let len = u32::from_be_bytes([head[4], head[5], head[6], head[7]]) as usize;
        let mut data = vec![0u8; len];
        if r.read_exact(&mut data).await.is_err() {
            return None;
        }
        if head[0] == berth_api::containers::RUN_END_STREAM {
            return Some(data);
        }
        let res = if head[0] == 2 {
            stderr.write_all(&data).await
        } else {
            stdout.write_all(&data).await
        };
        if res.is_err() {
            return None;
        }
        let _ = if head[0] == 2 {
            stderr.flush().await
        } else {
            stdout.flush().await
        };
    }
}

/// Runs `create`.
pub async fn create(args: CreateArgs, g: &GlobalArgs) -> Result<u8> {
    let req = match create_request(&args) {
        Ok(r) => r,
        Err(e) => {
            output::err(&format!("berth: {e:#}"));
            return Ok(125);
        }
    };
    let client = g.client().await?;
    match create_container(&client, g, &args, req, false).await {
        Ok(c) => {
            for w in &c.warnings {
                output::err(&format!("WARNING: {w}"));
            }
            output::out(&c.id);
            Ok(0)
        }
        Err(e) => {
            crate::commands::run::report_run_error(&e);
            Ok(125)
        }
    }
}

/// Arguments naming containers.
#[derive(clap::Args, Debug)]
pub struct ContainersArg {
    /// Containers
    #[arg(required = true)]
    pub(crate) containers: Vec<String>,
}

/// Arguments of `start`.
#[derive(clap::Args, Debug)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short = 'a', long)]
    attach: bool,
    /// Attach container's STDIN
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Override the key sequence for detaching a container (default ctrl-p,ctrl-q)
    #[arg(long = "detach-keys")]
    detach_keys: Option<String>,
    /// Containers
    #[arg(required = true)]
    containers: Vec<String>,
}

pub(crate) async fn each(
    g: &GlobalArgs,
    names: &[String],
    f: impl Fn(String) -> (Method, String),
) -> Result<u8> {
    let client = g.client().await?;
    let mut code = 0;
    for n in names {
        let (m, path) = f(n.clone());
        match client.call(m, &path, None).await {
            Ok(_) => output::out(n),
            Err(ApiClientError::Api { message, .. }) => {
                output::err(&format!("Error response from daemon: {message}"));
                code = 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(code)
}

/// Runs `start`.
pub async fn start(args: StartArgs, g: &GlobalArgs) -> Result<u8> {
    if !args.attach {
        return each(g, &args.containers, |c| {
            (Method::POST, format!("/containers/{}/start", encode(&c)))
        })
        .await;
    }
    let detach_query = crate::commands::attach::detach_query(args.detach_keys.as_deref())?;
    let client = g.client().await?;
    let name = &args.containers[0];
    let info: serde_json::Value = client
        .json(
            Method::GET,
            &format!("/containers/{}/json", encode(name)),
            None,
        )
        .await?;
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let stdin = args.interactive && info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    let io = client
        .upgrade(&format!(
            "/containers/{}/attach?stream=1&stdout=1&stderr=1&stdin={}{detach_query}",
            encode(name),
            stdin as u8
        ))
        .await?;
    let wait = client
        .request(
            Method::POST,
            &format!("/containers/{}/wait?condition=next-exit", encode(name)),
            None,
            &[],
        )
        .await?;
    client
        .call(
            Method::POST,
            &format!("/containers/{}/start", encode(name)),
            None,
        )
        .await?;
    let (reader, writer) = tokio::io::split(io);
    let terminal = crate::commands::tty::Session::enter(
        &client,
        format!("/containers/{}/resize", encode(name)),
        tty,
        stdin,
    );
    let watched = args.detach_keys.clone().unwrap_or_default();
    let input = stdin
        .then(|| crate::commands::attach::forward_stdin(writer, tty.then_some(watched.as_str())));
    pump_output(reader, tty).await;
    drop(terminal);
    if let Some((task, detached)) = input {
        task.abort();
        if detached.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(0);
        }
    }
    let bytes = http_body_util::BodyExt::collect(wait.into_body())
        .await?
        .to_bytes();
    let w: WaitResponse = serde_json::from_slice(&bytes).unwrap_or_default();
    Ok(w.status_code.clamp(0, 255) as u8)
}

/// Arguments of `stop`/`restart`.
#[derive(clap::Args, Debug)]
pub struct StopArgs {
    /// Seconds to wait before killing the container
    #[arg(short = 't', long = "time", alias = "timeout")]
    time: Option<i64>,
    /// Signal to send to the container
    #[arg(short = 's', long)]
    signal: Option<String>,
    /// Containers
    #[arg(required = true)]
    containers: Vec<String>,
}

/// Runs `stop`.
pub async fn stop(args: StopArgs, g: &GlobalArgs) -> Result<u8> {
    let t = args.time.map(|t| format!("?t={t}")).unwrap_or_default();
    each(g, &args.containers, |c| {
        (Method::POST, format!("/containers/{}/stop{t}", encode(&c)))
    })
    .await
}

/// Runs `restart`.
pub async fn restart(args: StopArgs, g: &GlobalArgs) -> Result<u8> {
    let t = args.time.map(|t| format!("?t={t}")).unwrap_or_default();
    each(g, &args.containers, |c| {
        (
            Method::POST,
            format!("/containers/{}/restart{t}", encode(&c)),
        )
    })
    .await
}

/// Arguments of `kill`.
#[derive(clap::Args, Debug)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short = 's', long, default_value = "KILL")]
    signal: String,
    /// Containers
    #[arg(required = true)]
    containers: Vec<String>,
}

/// Runs `kill`.
pub async fn kill(args: KillArgs, g: &GlobalArgs) -> Result<u8> {
    let sig = encode(&args.signal);
    each(g, &args.containers, |c| {
        (
            Method::POST,
            format!("/containers/{}/kill?signal={sig}", encode(&c)),
        )
    })
    .await
}

/// Arguments of `rm`.
#[derive(clap::Args, Debug)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short = 'f', long)]
    force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short = 'v', long)]
    volumes: bool,
    /// Containers
    #[arg(required = true)]
    containers: Vec<String>,
}

/// Runs `rm`.
pub async fn rm(args: RmArgs, g: &GlobalArgs) -> Result<u8> {
    let q = format!("?force={}&v={}", args.force as u8, args.volumes as u8);
    each(g, &args.containers, |c| {
        (Method::DELETE, format!("/containers/{}{q}", encode(&c)))
    })
    .await
}

/// Runs `wait`.
pub async fn wait(args: ContainersArg, g: &GlobalArgs) -> Result<u8> {
    let client = g.client().await?;
    let mut code = 0;
    for c in &args.containers {
        match client
            .json::<WaitResponse>(
                Method::POST,
                &format!("/containers/{}/wait", encode(c)),
                None,
            )
            .await
        {
            Ok(w) => output::out(&w.status_code.to_string()),
            Err(ApiClientError::Api { message, .. }) => {
                output::err(&format!("Error response from daemon: {message}"));
                code = 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(code)
}

/// Arguments of `logs`.
#[derive(clap::Args, Debug)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short = 'f', long)]
    follow: bool,
    /// Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or Unix seconds
    #[arg(long)]
    since: Option<String>,
    /// Show logs before a timestamp
    #[arg(long)]
    until: Option<String>,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, default_value = "all")]
    tail: String,
    /// Show timestamps
    #[arg(short = 't', long)]
    timestamps: bool,
    /// Container
    container: String,
}

/// Runs `logs`.
pub async fn logs(args: LogsArgs, g: &GlobalArgs) -> Result<u8> {
    let client = g.client().await?;
    let info: serde_json::Value = client
        .json(
            Method::GET,
            &format!("/containers/{}/json", encode(&args.container)),
            None,
        )
        .await?;
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let mut path = format!(
        "/containers/{}/logs?stdout=1&stderr=1&follow={}&timestamps={}&tail={}",
        encode(&args.container),
        args.follow as u8,
        args.timestamps as u8,
        encode(&args.tail)
    );
    if let Some(s) = &args.since {
        path.push_str(&format!("&since={}", encode(s)));
    }
    if let Some(u) = &args.until {
        path.push_str(&format!("&until={}", encode(u)));
    }
    let resp = client.request(Method::GET, &path, None, &[]).await?;
    let body = http_body_util::BodyStream::new(resp.into_body());
    use futures_util::TryStreamExt;
    let stream = body
        .try_filter_map(|f| async move { Ok(f.into_data().ok()) })
        .map_err(std::io::Error::other);
    let reader = tokio_util_reader(Box::pin(stream));
    pump_output(reader, tty).await;
    Ok(0)
}

fn tokio_util_reader<S>(s: S) -> impl tokio::io::AsyncRead + Unpin
where
    S: futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Unpin,
{
    StreamReader {
        inner: s,
        buf: bytes::Bytes::new(),
    }
}

/// A small stream-of-bytes to AsyncRead adapter.
struct StreamReader<S> {
    inner: S,
    buf: bytes::Bytes,
}

impl<S> tokio::io::AsyncRead for StreamReader<S>
where
    S: futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Unpin,
{
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        out: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        while self.buf.is_empty() {
            match std::pin::Pin::new(&mut self.inner).poll_next(cx) {
                Poll::Ready(Some(Ok(b))) => self.buf = b,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
        let n = out.remaining().min(self.buf.len());
        out.put_slice(&self.buf.split_to(n));
        Poll::Ready(Ok(()))
    }
}

/// Arguments of `ps`.
#[derive(clap::Args, Debug)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    all: bool,
    /// Only display container IDs
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long)]
    last: Option<i64>,
    /// Show the latest created container (includes all states)
    #[arg(short = 'l', long)]
    latest: bool,
    /// Filter output based on conditions provided (status=, name=, id=, label=, ancestor=, exited=)
    #[arg(short = 'f', long)]
    filter: Vec<String>,
    /// Format output: table, json, or a Go template
    #[arg(long)]
    format: Option<String>,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Display total file sizes (not computed yet; accepted for compatibility)
    #[arg(short = 's', long)]
    size: bool,
}

fn truncate_command(c: &str, no_trunc: bool) -> String {
    let c = if !no_trunc && c.chars().count() > 20 {
        format!("{}…", c.chars().take(19).collect::<String>())
    } else {
        c.to_string()
    };
    format!("\"{c}\"")
}

/// Runs `ps`.
pub async fn ps(args: PsArgs, g: &GlobalArgs) -> Result<u8> {
    let client = g.client().await?;
    let mut filters: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in &args.filter {
        let (k, v) = f
            .split_once('=')
            .with_context(|| format!("bad format of filter (expected name=value): {f}"))?;
        filters
            .entry(k.to_string())
            .or_default()
            .push(v.to_string());
    }
    let limit = if args.latest { Some(1) } else { args.last };
    let mut path = format!("/containers/json?all={}", args.all as u8);
    if let Some(l) = limit {
        path.push_str(&format!("&limit={l}"));
    }
    if !filters.is_empty() {
        path.push_str(&format!(
            "&filters={}",
            encode(&serde_json::to_string(&filters)?)
        ));
    }
    let list: Vec<ContainerSummary> = client.json(Method::GET, &path, None).await?;
    let id = |s: &ContainerSummary| {
        if args.no_trunc {
            s.id.clone()
        } else {
            s.id.chars().take(12).collect()
        }
    };
    if args.quiet {
        for c in &list {
            output::out(&id(c));
        }
        return Ok(0);
    }
    let row = |c: &ContainerSummary| {
        serde_json::json!({
            "ID": id(c),
            "Image": c.image,
            "Command": truncate_command(&c.command, args.no_trunc),
            "CreatedAt": c.created.to_string(),
            "RunningFor": output::human_since(c.created).trim_end_matches(" ago").to_string() + " ago",
            "Status": c.status,
            "State": c.state,
            "Ports": ports_column(&c.ports),
            "Names": c.names.iter().map(|n| n.trim_start_matches('/')).collect::<Vec<_>>().join(","),
            "Labels": c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
        })
    };
    match args.format.as_deref() {
        Some("json") => {
            for c in &list {
                output::out(&row(c).to_string());
            }
        }
        Some(tpl) if tpl != "table" => {
            let (header, tpl) = match tpl.strip_prefix("table ") {
                Some(t) => (true, t),
                None => (false, tpl),
            };
            if header {
                let names = serde_json::json!({"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "RunningFor": "CREATED",
                    "Status": "STATUS", "Ports": "PORTS", "Names": "NAMES", "State": "STATE", "Labels": "LABELS", "CreatedAt": "CREATED AT"});
                output::out(&output::render_template(tpl, &names)?);
            }
            for c in &list {
                output::out(&output::render_template(tpl, &row(c))?);
            }
        }
        _ => {
            let mut table = vec![[
                "CONTAINER ID",
                "IMAGE",
                "COMMAND",
                "CREATED",
                "STATUS",
                "PORTS",
                "NAMES",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()];
            for c in &list {
                let r = row(c);
                let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
                table.push(vec![
                    s("ID"),
                    s("Image"),
                    s("Command"),
                    s("RunningFor"),
                    s("Status"),
                    s("Ports"),
                    s("Names"),
                ]);
            }
            output::table(&table);
        }
    }
    Ok(0)
}

/// `container` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum ContainerCommand {
    /// Create and run a new container from an image
    #[command(disable_help_flag = true)]
    Run(RunArgs),
    /// Create a new container
    #[command(disable_help_flag = true)]
    Create(CreateArgs),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Remove one or more containers
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(ContainersArg),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// List containers
    #[command(alias = "list", alias = "ps")]
    Ls(PsArgs),
    /// Display detailed information on one or more containers
    Inspect(super::inspect::InspectArgs),
    /// Remove all stopped containers
    Prune(PruneArgs),
    /// Execute a command in a running container
    Exec(crate::commands::exec::ExecArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(crate::commands::attach::AttachArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(crate::commands::stats::StatsArgs),
    /// Pause all processes within one or more containers
    Pause(ContainersArg),
    /// Unpause all processes within one or more containers
    Unpause(ContainersArg),
    /// Rename a container
    Rename(crate::commands::control::RenameArgs),
    /// Display the running processes of a container
    Top(crate::commands::control::TopArgs),
    /// List port mappings or a specific mapping for the container
    Port(PortArgs),
}

/// Arguments of `container prune`.
#[derive(clap::Args, Debug)]
pub struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
}

/// Dispatches `container …`.
pub async fn dispatch(c: ContainerCommand, g: &GlobalArgs) -> Result<u8> {
    match c {
        ContainerCommand::Run(a) => crate::commands::run::run(a, g).await,
        ContainerCommand::Create(a) => create(a, g).await,
        ContainerCommand::Start(a) => start(a, g).await,
        ContainerCommand::Stop(a) => stop(a, g).await,
        ContainerCommand::Restart(a) => restart(a, g).await,
        ContainerCommand::Kill(a) => kill(a, g).await,
        ContainerCommand::Rm(a) => rm(a, g).await,
        ContainerCommand::Wait(a) => wait(a, g).await,
        ContainerCommand::Logs(a) => logs(a, g).await,
        ContainerCommand::Exec(a) => crate::commands::exec::exec(a, g).await,
        ContainerCommand::Ls(a) => ps(a, g).await,
        ContainerCommand::Attach(a) => crate::commands::attach::run(a, g).await,
        ContainerCommand::Stats(a) => crate::commands::stats::run(a, g).await,
        ContainerCommand::Pause(a) => crate::commands::control::pause(a, g).await,
        ContainerCommand::Unpause(a) => crate::commands::control::unpause(a, g).await,
        ContainerCommand::Rename(a) => crate::commands::control::rename(a, g).await,
        ContainerCommand::Top(a) => crate::commands::control::top(a, g).await,
        ContainerCommand::Port(a) => port(a, g).await,
        ContainerCommand::Inspect(mut a) => {
            a.kind = Some("container".into());
            super::inspect::inspect(a, g).await
        }
        ContainerCommand::Prune(_) => {
            let client = g.client().await?;
            let v: serde_json::Value = client.json(Method::POST, "/containers/prune", None).await?;
            output::out("Deleted Containers:");
            for id in v["ContainersDeleted"].as_array().into_iter().flatten() {
                output::out(id.as_str().unwrap_or(""));
            }
            output::out("\nTotal reclaimed space: 0B");
            Ok(0)
        }
    }
}

#[cfg(test)]
mod publish_tests {
    use super::*;

    #[test]
    fn publish_flags_become_docker_port_bindings() {
        let (b, exposed) = publish_to_bindings(&[
            "127.0.0.1:8080:80".into(),
            "8000-8001:90-91/udp".into(),
            "7000-7010:70".into(),
            "60".into(),
        ])
        .expect("valid");
        let host = |k: &str| (b[k][0].host_ip.clone(), b[k][0].host_port.clone());
        assert_eq!(host("80/tcp"), ("127.0.0.1".into(), "8080".into()));
        assert_eq!(host("91/udp"), (String::new(), "8001".into()));
        assert_eq!(host("70/tcp"), (String::new(), "7000-7010".into()));
        assert_eq!(host("60/tcp"), (String::new(), String::new()));
        assert_eq!(exposed.len(), 5);
        let e = publish_to_bindings(&["70000:80".into()]).expect_err("bad");
        assert!(e.to_string().starts_with("invalid published port"), "{e}");
        let ports = [
            serde_json::json!({"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}),
        ];
        assert_eq!(ports_column(&ports), "0.0.0.0:8080->80/tcp");
    }
}
