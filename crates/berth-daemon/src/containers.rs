//! `/containers/...` routes: parse, call the engine, render Docker's JSON and streams.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::Json;
use berth_api::containers::{ContainerSummary, CreateRequest, CreateResponse, WaitResponse};
use berth_engine::containers::{Container, State as CState, WaitCondition, ZERO_TIME};
use berth_engine::Engine;
use bytes::Bytes;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::ApiError;
use crate::images::parse_rfc3339;

type AppState = Arc<Engine>;

fn truthy(v: &Option<String>) -> bool {
    matches!(v.as_deref(), Some("1" | "true" | "True" | "yes"))
}

#[derive(Deserialize, Default)]
pub(crate) struct CreateQuery {
    #[serde(default)]
    name: Option<String>,
    /// berth extension: start it too, in this request (`berth run -d`); the answer then
    /// carries the [`berth_api::containers::RUN_HEADER`] header
    #[serde(default, rename = "berth-start")]
    berth_start: Option<String>,
    /// berth extension: attach, start and wait in this request, upgraded to the attach stream
    /// (`berth run`); see [`run_attached`]
    #[serde(default, rename = "berth-attach")]
    berth_attach: Option<String>,
    #[serde(default)]
    stdin: Option<String>,
    #[serde(default)]
    stdout: Option<String>,
    #[serde(default)]
    stderr: Option<String>,
    #[serde(default)]
    condition: Option<String>,
}

/// `POST /containers/create`, with berth's optional one-request `run` (`berth-start`,
/// `berth-attach`); clients that do not ask for it get Docker's answer.
pub(crate) async fn create(
    State(engine): State<AppState>,
    Query(q): Query<CreateQuery>,
    mut req: Request,
) -> Result<Response, ApiError> {
    let attach = truthy(&q.berth_attach);
    let upgrade = attach.then(|| hyper::upgrade::on(&mut req));
    let body = axum::body::to_bytes(req.into_body(), 2 << 20)
        .await
        .map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?;
    let req: CreateRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid container config JSON: {e}")))?;
    // checked before anything is made
    let condition = parse_condition(q.condition.as_deref().unwrap_or("not-running"))?;
    if attach && req.config.tty {
        return Err(ApiError::bad_request(
            "berth-attach takes no tty (its stream is multiplexed): attach with /containers/{id}/attach instead",
        ));
    }
    let auto_remove = req.host_config.auto_remove;
    let (id, warnings) = engine.create_container(q.name.as_deref(), req).await?;
    let created = CreateResponse { id, warnings };
    if let Some(upgrade) = upgrade {
        let want = (truthy(&q.stdin), truthy(&q.stdout), truthy(&q.stderr));
        return Ok(run_attached(engine, created, upgrade, want, condition));
    }
    let mut answer = Response::builder()
        .status(StatusCode::CREATED)
        .header(header::CONTENT_TYPE, "application/json");
    if truthy(&q.berth_start) {
        if let Err(e) = engine.start_container(&created.id).await {
            if auto_remove {
                let _ = engine.remove_container(&created.id, true).await;
            }
            return Err(e.into());
        }
        answer = answer.header(
            berth_api::containers::RUN_HEADER,
            serde_json::to_string(&created).unwrap_or_default(),
        );
    }
    Ok(answer
        .body(Body::from(serde_json::to_vec(&created).unwrap_or_default()))
        .expect("valid response"))
}

/// berth's one-request `run`: the container (just created) gets an attach stream and a wait
/// in place, then starts; the answer is a 101 with the [`CreateResponse`] in a header, and the
/// stream ends with a [`berth_api::containers::RunEnd`] frame (the exit code, or why it did
/// not start; an `AutoRemove` container that did not start is removed).
fn run_attached(
    engine: AppState,
    created: CreateResponse,
    upgrade: hyper::upgrade::OnUpgrade,
    (want_in, want_out, want_err): (bool, bool, bool),
    condition: WaitCondition,
) -> Response {
    use berth_api::containers::{RunEnd, RUN_END_STREAM};
    let id = created.id.clone();
    let header_value = serde_json::to_string(&created).unwrap_or_default();
    tokio::spawn(async move {
        let end = |e: RunEnd| {
            mux(
                RUN_END_STREAM,
                &serde_json::to_vec(&e).unwrap_or_default(),
                false,
            )
        };
        let (watch, attached) = match engine.container(&id) {
            Ok(c) => (
                Ok(engine.watch_container(&c)),
                Some(engine.attach_on_start(&c)),
            ),
            Err(e) => (Err(e), None),
        };
        let started = match watch {
            Ok(w) => engine.start_container(&id).await.map(|_| w),
            Err(e) => Err(e),
        };
        let client = match upgrade.await {
            Ok(u) => TokioIo::new(u),
            Err(e) => {
                tracing::debug!(error = %e, "run upgrade failed");
                return;
            }
        };
        let watch = match started {
            Ok(w) => w,
            Err(e) => {
                engine.forget_attach(&id);
                let c = engine.container(&id).ok();
                if c.is_some_and(|c| c.config.host_config.auto_remove) {
                    let _ = engine.remove_container(&id, true).await;
                }
                let mut client = client;
                let _ = client
                    .write_all(&end(RunEnd {
                        status_code: -1,
                        error: None,
                        start_error: Some(crate::error::chain(&e)),
                    }))
                    .await;
                let _ = client.shutdown().await;
                return;
            }
        };
        let shim = match attached {
            Some(rx) => rx.await.ok(),
            None => None,
        };
        let Some(shim) = shim else {
            tracing::warn!(container = id, "run: no attach stream after the start");
            return;
        };
        let engine2 = engine.clone();
        let finish = Box::pin(async move {
            let res = engine2.wait_watched(watch, condition).await;
            end(match res {
                Ok(code) => RunEnd {
                    status_code: code,
                    ..Default::default()
                },
                Err(e) => RunEnd {
                    status_code: -1,
                    error: Some(berth_api::containers::WaitError {
                        message: e.to_string(),
                    }),
                    start_error: None,
                },
            })
        });
        relay_then(
            client,
            shim,
            want_in,
            want_out,
            want_err,
            false,
            None,
            Some(finish),
        )
        .await;
    });
    let mut resp = upgraded_stream(false);
    if let Ok(v) = header::HeaderValue::from_bytes(header_value.as_bytes()) {
        resp.headers_mut()
            .insert(berth_api::containers::RUN_HEADER, v);
    }
    resp
}

/// `POST /containers/{id}/start`
pub(crate) async fn start(
    State(engine): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    match engine.start_container(&id).await? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Ok(StatusCode::NOT_MODIFIED),
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct StopQuery {
    #[serde(default)]
    t: Option<i64>,
    #[serde(default)]
    timeout: Option<i64>,
    #[serde(default)]
    signal: Option<String>,
}

/// `POST /containers/{id}/stop`
pub(crate) async fn stop(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<StopQuery>,
) -> Result<StatusCode, ApiError> {
    match engine.stop_container(&id, q.t.or(q.timeout)).await? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Ok(StatusCode::NOT_MODIFIED),
    }
}

/// `POST /containers/{id}/restart`
pub(crate) async fn restart(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<StopQuery>,
) -> Result<StatusCode, ApiError> {
    engine.restart_container(&id, q.t.or(q.timeout)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /containers/{id}/kill`
pub(crate) async fn kill(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<StopQuery>,
) -> Result<StatusCode, ApiError> {
    engine
        .kill_container(&id, q.signal.as_deref().unwrap_or(""))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default)]
pub(crate) struct RemoveQuery {
    #[serde(default)]
    force: Option<String>,
    #[serde(default)]
    v: Option<String>,
}

/// `DELETE /containers/{id}`
pub(crate) async fn remove(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<RemoveQuery>,
) -> Result<StatusCode, ApiError> {
    let _ = truthy(&q.v); // no volumes yet: nothing extra to remove
    engine.remove_container(&id, truthy(&q.force)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default)]
pub(crate) struct WaitQuery {
    #[serde(default)]
    condition: Option<String>,
}

/// `POST /containers/{id}/wait`: the headers go out at once (so a client knows the wait is in
/// place before it starts the container); the body when the condition is met.
pub(crate) async fn wait(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<WaitQuery>,
) -> Result<Response, ApiError> {
    let condition = parse_condition(q.condition.as_deref().unwrap_or("not-running"))?;
    let c = engine.container(&id)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    let id = c.id.clone();
    tokio::spawn(async move {
        let res = engine.wait_container(&id, condition).await;
        let body = match res {
            Ok(code) => WaitResponse {
                status_code: code,
                error: None,
            },
            Err(e) => WaitResponse {
                status_code: -1,
                error: Some(berth_api::containers::WaitError {
                    message: e.to_string(),
                }),
            },
        };
        let _ = tx
            .send(Ok(Bytes::from(
                serde_json::to_vec(&body).unwrap_or_default(),
            )))
            .await;
    });
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        ))
        .expect("valid response"))
}

fn parse_condition(c: &str) -> Result<WaitCondition, ApiError> {
    match c {
        "" | "not-running" => Ok(WaitCondition::NotRunning),
        "next-exit" => Ok(WaitCondition::NextExit),
        "removed" => Ok(WaitCondition::Removed),
        other => Err(ApiError::bad_request(format!(
            "invalid condition: {other:?}: use not-running, next-exit or removed"
        ))),
    }
}

/// The container's command line, from its OCI spec.
fn spec_args(engine: &Engine, c: &Container) -> Vec<String> {
    let path = engine
        .root()
        .join("containers")
        .join(&c.id)
        .join("bundle/config.json");
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| {
            v["process"]["args"].as_array().map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
        })
        .unwrap_or_default()
}

fn status_text(c: &Container) -> String {
    let since = |t: &str| {
        let secs = parse_rfc3339(t).map(|s| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            (now - s).max(0)
        });
        human_duration(secs.unwrap_or(0))
    };
    match c.state {
        CState::Running => format!("Up {}", since(&c.started_at)),
        CState::Paused => format!("Up {} (Paused)", since(&c.started_at)),
        CState::Restarting => format!("Restarting ({}) {} ago", c.exit_code, since(&c.finished_at)),
        CState::Exited if c.finished_at != ZERO_TIME => {
            format!("Exited ({}) {} ago", c.exit_code, since(&c.finished_at))
        }
        CState::Exited => format!("Exited ({})", c.exit_code),
        CState::Created => "Created".into(),
        CState::Removing => "Removal In Progress".into(),
        CState::Dead => "Dead".into(),
    }
}

/// go-units' HumanDuration.
pub(crate) fn human_duration(secs: i64) -> String {
    let s = secs as f64;
    if secs < 1 {
        "Less than a second".into()
    } else if secs == 1 {
        "1 second".into()
    } else if secs < 60 {
        format!("{secs} seconds")
    } else if secs / 60 == 1 {
        "About a minute".into()
    } else if secs < 3600 {
        format!("{} minutes", secs / 60)
    } else if (s / 3600.0).round() == 1.0 {
        "About an hour".into()
    } else if secs < 48 * 3600 {
        format!("{} hours", (s / 3600.0).round() as i64)
    } else if secs < 7 * 24 * 3600 * 2 {
        format!("{} days", secs / 86_400)
    } else {
        format!("{} weeks", secs / (7 * 86_400))
    }
}

/// The endpoint of a running container on its first network, if it has one.
fn endpoint(engine: &Engine, c: &Container) -> Option<berth_engine::network::Endpoint> {
    endpoints(engine, c).into_iter().next()
}

/// The endpoints of a running container, its first network first.
fn endpoints(engine: &Engine, c: &Container) -> Vec<berth_engine::network::Endpoint> {
    if !matches!(c.state, CState::Running | CState::Paused) {
        return Vec::new();
    }
    berth_engine::network::read_endpoints(&engine.root().join("containers").join(&c.id))
}

/// Docker's `NetworkSettings` of a container: one entry in `Networks` per network (its
/// `NetworkMode` and those it was connected to), addressed while it runs.
fn network_settings(engine: &Engine, c: &Container) -> serde_json::Value {
    let endpoints = endpoints(engine, c);
    let primary = endpoints.first();
    let mode = c.config.host_config.network_mode.as_str();
    let mut ports = serde_json::Map::new();
    if !matches!(mode, "host" | "none") && !mode.starts_with("container:") {
        // exposed but unpublished ports show as null, as in Docker
        let exposed = c.config.config.exposed_ports.iter().flat_map(|m| m.keys());
        for key in exposed.chain(c.config.host_config.port_bindings.keys()) {
            ports.insert(key.clone(), serde_json::Value::Null);
        }
    }
    if let Some(e) = primary {
        for p in &e.ports {
            let key = format!("{}/{}", p.container_port, p.protocol);
            let entry = ports.entry(key).or_insert(serde_json::Value::Null);
            if entry.is_null() {
                *entry = serde_json::json!([]);
            }
            if let Some(list) = entry.as_array_mut() {
                list.push(serde_json::json!({
                    "HostIp": p.host_ip.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED).to_string(),
                    "HostPort": p.host_port.to_string(),
                }));
            }
        }
    }
    let configured = c
        .config
        .networking_config
        .as_ref()
        .map(|n| n.endpoints_config.clone())
        .unwrap_or_default();
    // host and none: that network only; bridge and user-defined modes: the networks the
    // record lists (the mode's first unless it was disconnected), or the mode for records of
    // an older berth
    let mut names: Vec<String> = Vec::new();
    let listed = c.config.networking_config.is_some();
    let own_only = matches!(mode, "host" | "none");
    let legacy = !listed && !mode.is_empty() && !mode.starts_with("container:");
    if own_only || legacy || configured.contains_key(mode) {
        names.push(mode.to_string());
    }
    if !own_only {
        for k in configured
            .keys()
            .chain(endpoints.iter().map(|e| &e.network))
        {
            if !names.contains(k) && !matches!(k.as_str(), "host" | "none") {
                names.push(k.clone());
            }
        }
    }
    let short_id: String = c.id.chars().take(12).collect();
    let mut networks = serde_json::Map::new();
    for name in &names {
        let settings = configured.get(name);
        let e = endpoints.iter().find(|e| &e.network == name);
        let network_id = e
            .map(|e| e.network_id.clone())
            .filter(|id| !id.is_empty())
            .or_else(|| match name.as_str() {
                "host" | "none" => Some(berth_engine::network::predefined_id(name)),
                _ => engine
                    .networks()
                    .find(name)
                    .ok()
                    .map(|n| n.record.id.clone()),
            })
            .unwrap_or_default();
        let aliases = settings
            .map(|s| s.aliases.clone())
            .filter(|a| !a.is_empty());
        let user_defined = !matches!(name.as_str(), "bridge" | "host" | "none");
        let dns_names = (user_defined && e.is_some()).then(|| {
            let mut n = vec![c.name.clone()];
            n.extend(aliases.clone().unwrap_or_default());
            n.push(short_id.clone());
            n
        });
        networks.insert(
            name.clone(),
            serde_json::json!({
                "IPAMConfig": settings.and_then(|s| s.ipam_config.clone()),
                "Links": null,
                "Aliases": aliases,
                "MacAddress": e.map(|e| e.mac.clone()).unwrap_or_default(),
                "NetworkID": network_id,
                "EndpointID": if e.is_some() { c.id.clone() } else { String::new() },
                "Gateway": e.map(|e| e.gateway.to_string()).unwrap_or_default(),
                "IPAddress": e.map(|e| e.ip.to_string()).unwrap_or_default(),
                "IPPrefixLen": e.map(|e| e.prefix_len).unwrap_or(0),
                "IPv6Gateway": e.and_then(|e| e.ipv6_gateway).map(|a| a.to_string()).unwrap_or_default(),
                "GlobalIPv6Address": e.and_then(|e| e.ipv6).map(|a| a.to_string()).unwrap_or_default(),
                "GlobalIPv6PrefixLen": e.map(|e| e.ipv6_prefix_len).unwrap_or(0),
                "DriverOpts": null,
                "DNSNames": dns_names,
            }),
        );
    }
    let running = matches!(c.state, CState::Running | CState::Paused) && c.pid > 0;
    serde_json::json!({
        "Bridge": "",
        "SandboxID": "",
        "SandboxKey": if running { format!("/proc/{}/ns/net", c.pid) } else { String::new() },
        "HairpinMode": false,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "Ports": ports,
        "SecondaryIPAddresses": null,
        "SecondaryIPv6Addresses": null,
        "EndpointID": if primary.is_some() { c.id.clone() } else { String::new() },
        "Gateway": primary.map(|e| e.gateway.to_string()).unwrap_or_default(),
        "GlobalIPv6Address": primary.and_then(|e| e.ipv6).map(|a| a.to_string()).unwrap_or_default(),
        "GlobalIPv6PrefixLen": primary.map(|e| e.ipv6_prefix_len).unwrap_or(0),
        "IPAddress": primary.map(|e| e.ip.to_string()).unwrap_or_default(),
        "IPPrefixLen": primary.map(|e| e.prefix_len).unwrap_or(0),
        "IPv6Gateway": primary.and_then(|e| e.ipv6_gateway).map(|a| a.to_string()).unwrap_or_default(),
        "MacAddress": primary.map(|e| e.mac.clone()).unwrap_or_default(),
        "Networks": networks,
    })
}

/// `Ports` of a `GET /containers/json` entry.
fn summary_ports(engine: &Engine, c: &Container) -> Vec<serde_json::Value> {
    let mut out: Vec<serde_json::Value> = endpoint(engine, c)
        .map(|e| {
            e.ports
                .iter()
                .map(|p| {
                    serde_json::json!({
                        "IP": p.host_ip.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED).to_string(),
                        "PrivatePort": p.container_port,
                        "PublicPort": p.host_port,
                        "Type": p.protocol,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort_by_key(|p| (p["PrivatePort"].as_u64(), p["PublicPort"].as_u64()));
    out
}

fn summary(engine: &Engine, c: &Container) -> ContainerSummary {
    ContainerSummary {
        id: c.id.clone(),
        names: vec![format!("/{}", c.name)],
        image: c.image.clone(),
        image_id: c.image_id.clone(),
        command: spec_args(engine, c).join(" "),
        created: parse_rfc3339(&c.created_at).unwrap_or(0),
        state: c.state.as_str().into(),
        status: status_text(c),
        ports: summary_ports(engine, c),
        labels: c.config.config.labels.clone(),
        size_rw: None,
        host_config: serde_json::json!({"NetworkMode": if c.config.host_config.network_mode.is_empty() { "none" } else { c.config.host_config.network_mode.as_str() }}),
        network_settings: serde_json::json!({"Networks": network_settings(engine, c)["Networks"]}),
        mounts: vec![],
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct ListQuery {
    #[serde(default)]
    all: Option<String>,
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    filters: Option<String>,
}

fn filter_values(f: &serde_json::Value) -> Vec<String> {
    match f {
        serde_json::Value::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        serde_json::Value::Object(o) => o.keys().cloned().collect(),
        _ => vec![],
    }
}

/// `GET /containers/json`
pub(crate) async fn list(
    State(engine): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<ContainerSummary>>, ApiError> {
    let filters: BTreeMap<String, serde_json::Value> =
        match q.filters.as_deref().filter(|f| !f.is_empty()) {
            Some(f) => serde_json::from_str(f)
                .map_err(|e| ApiError::bad_request(format!("invalid filters JSON: {e}")))?,
            None => BTreeMap::new(),
        };
    for k in filters.keys() {
        if ![
            "status", "name", "id", "label", "ancestor", "exited", "network",
        ]
        .contains(&k.as_str())
        {
            return Err(ApiError::bad_request(format!("invalid filter '{k}'")));
        }
    }
    let get = |k: &str| filters.get(k).map(filter_values).unwrap_or_default();
    let all = truthy(&q.all)
        || q.limit.is_some_and(|l| l > 0)
        || filters.contains_key("status")
        || filters.contains_key("exited");
    let mut out = Vec::new();
    for c in engine.containers()? {
        if !all
            && c.state != CState::Running
            && c.state != CState::Paused
            && c.state != CState::Restarting
        {
            continue;
        }
        let status = get("status");
        if !status.is_empty() && !status.iter().any(|s| s == c.state.as_str()) {
            continue;
        }
        let names = get("name");
        if !names.is_empty()
            && !names
                .iter()
                .any(|n| c.name.contains(n.trim_start_matches('/')))
        {
            continue;
        }
        let ids = get("id");
        if !ids.is_empty() && !ids.iter().any(|i| c.id.starts_with(i)) {
            continue;
        }
        let networks = get("network");
        if !networks.is_empty() {
            // by name or id, as Docker matches it: the networks the container is on
            let on: Vec<String> = network_settings(&engine, &c)["Networks"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .flat_map(|(name, v)| {
                            [
                                name.clone(),
                                v["NetworkID"].as_str().unwrap_or_default().to_string(),
                            ]
                        })
                        .collect()
                })
                .unwrap_or_default();
            if !networks.iter().any(|n| {
                on.iter()
                    .any(|o| o == n || (n.len() >= 12 && o.starts_with(n.as_str())))
            }) {
                continue;
            }
        }
        let exited = get("exited");
        let exit_matches = c.state == CState::Exited
            && exited
                .iter()
                .any(|e| e.parse::<i64>().ok() == Some(c.exit_code));
        if !exited.is_empty() && !exit_matches {
            continue;
        }
        let labels = get("label");
        if !crate::events::labels_match(&c.config.config.labels, &labels) {
            continue;
        }
        let ancestors = get("ancestor");
        if !ancestors.is_empty()
            && !ancestors
                .iter()
                .any(|a| *a == c.image || c.image_id.contains(a.trim_start_matches("sha256:")))
        {
            continue;
        }
        out.push(summary(&engine, &c));
    }
    if let Some(limit) = q.limit.filter(|l| *l > 0) {
        out.truncate(limit as usize);
    }
    Ok(Json(out))
}

/// `GET /containers/{id}/json`: Docker's inspect shape.
pub(crate) async fn inspect(
    State(engine): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let c = engine.container(&id)?;
    let dir = engine.root().join("containers").join(&c.id);
    let spec: serde_json::Value = std::fs::read(dir.join("bundle/config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let process = &spec["process"];
    let mut args: Vec<String> = process["args"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    // `--init` runs the command under berth-init; Path and Args name the command, as in Docker
    if c.config.host_config.init == Some(true)
        && args.first().map(String::as_str) == Some(berth_engine::containers::init::CONTAINER_PATH)
    {
        args.drain(..2.min(args.len()));
    }
    let mut config = serde_json::to_value(&c.config.config).unwrap_or_default();
    config["Env"] = process["env"].clone();
    config["Hostname"] = spec["hostname"].clone();
    if config["WorkingDir"].as_str().unwrap_or("").is_empty() {
        config["WorkingDir"] = process["cwd"].clone();
    }
    let (log_path, _) = engine.log_files(&c);
    let running = c.state == CState::Running || c.state == CState::Paused;
    // `--rootfs DIR` runs the directory in place: no overlay, nothing of the image store
    let rootfs = &c.config.host_config.rootfs;
    let (driver, graph) = if rootfs.is_empty() {
        (
            "overlay2",
            serde_json::json!({"Name": "overlay2", "Data": {"UpperDir": dir.join("upper"), "WorkDir": dir.join("work")}}),
        )
    } else {
        (
            "rootfs",
            serde_json::json!({"Name": "rootfs", "Data": {"RootDir": rootfs}}),
        )
    };
    let mut out = serde_json::json!({
        "Id": c.id,
        "Created": c.created_at,
        "Path": args.first().cloned().unwrap_or_default(),
        "Args": args.iter().skip(1).collect::<Vec<_>>(),
        "State": {
            "Status": c.state.as_str(),
            "Running": running,
            "Paused": c.state == CState::Paused,
            "Restarting": c.state == CState::Restarting,
            "OOMKilled": c.oom_killed,
            "Dead": c.state == CState::Dead,
            "Pid": if running { c.pid } else { 0 },
            "ExitCode": c.exit_code,
            "Error": c.error,
            "StartedAt": c.started_at,
            "FinishedAt": c.finished_at,
        },
        "Image": c.image_id,
        "ResolvConfPath": dir.join("resolv.conf"),
        "HostnamePath": dir.join("hostname"),
        "HostsPath": dir.join("hosts"),
        "LogPath": log_path,
        "Name": format!("/{}", c.name),
        "RestartCount": c.restart_count,
        "Driver": driver,
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": Some(engine.exec_ids(&c.id)).filter(|ids| !ids.is_empty()),
        "HostConfig": c.config.host_config,
        "GraphDriver": graph,
        "Mounts": [],
        "Config": config,
        "NetworkSettings": network_settings(&engine, &c),
    });
    if !rootfs.is_empty() {
        // podman's field for the same option
        out["Rootfs"] = serde_json::json!(rootfs);
    }
    Ok(Json(out))
}

#[derive(Deserialize, Default)]
pub(crate) struct LogsQuery {
    #[serde(default)]
    stdout: Option<String>,
    #[serde(default)]
    stderr: Option<String>,
    #[serde(default)]
    follow: Option<String>,
    #[serde(default)]
    timestamps: Option<String>,
    #[serde(default)]
    tail: Option<String>,
    #[serde(default)]
    since: Option<String>,
    #[serde(default)]
    until: Option<String>,
}

pub(crate) fn parse_time_arg(s: &str) -> Option<f64> {
    if s.is_empty() {
        return None;
    }
    if let Ok(f) = s.parse::<f64>() {
        return Some(f);
    }
    parse_rfc3339(s).map(|v| v as f64)
}

pub(crate) fn mux(stream: u8, data: &[u8], tty: bool) -> Bytes {
    if tty {
        return Bytes::copy_from_slice(data);
    }
    let mut v = Vec::with_capacity(8 + data.len());
    v.extend_from_slice(&[stream, 0, 0, 0]);
    v.extend_from_slice(&(data.len() as u32).to_be_bytes());
    v.extend_from_slice(data);
    Bytes::from(v)
}

/// `GET /containers/{id}/logs`
pub(crate) async fn logs(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<LogsQuery>,
) -> Result<Response, ApiError> {
    let c = engine.container(&id)?;
    let want_out = truthy(&q.stdout);
    let want_err = truthy(&q.stderr);
    if !want_out && !want_err {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let tty = c.config.config.tty;
    let (path, max_files) = engine.log_files(&c);
    let follow = truthy(&q.follow);
    let timestamps = truthy(&q.timestamps);
    let since = q.since.as_deref().and_then(parse_time_arg);
    let until = q.until.as_deref().and_then(parse_time_arg);
    let tail: Option<usize> = q
        .tail
        .as_deref()
        .filter(|t| *t != "all" && !t.is_empty())
        .and_then(|t| t.parse().ok());
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    let cid = c.id.clone();
    tokio::spawn(async move {
        let render = |e: &berth_runtime::shim::log::LogEntry| -> Option<Bytes> {
            let stream = if e.stream == "stderr" { 2 } else { 1 };
            if (stream == 1 && !want_out) || (stream == 2 && !want_err) {
                return None;
            }
            let t = parse_rfc3339(&e.time).map(|s| s as f64 + frac(&e.time));
            if let (Some(s), Some(t)) = (since, t) {
                if t < s {
                    return None;
                }
            }
            if let (Some(u), Some(t)) = (until, t) {
                if t > u {
                    return None;
                }
            }
            let line = if timestamps {
                format!("{} {}", e.time, e.log)
            } else {
                e.log.clone()
            };
            Some(mux(stream, line.as_bytes(), tty))
        };
        // through open descriptors: a `run --rm` client may read the stream after the removal
        let (mut follower, entries) =
            match berth_runtime::shim::log::LogFollower::open(&path, max_files) {
                Ok(v) => v,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
        let start = tail.map(|t| entries.len().saturating_sub(t)).unwrap_or(0);
        for e in &entries[start..] {
            if let Some(b) = render(e) {
                if tx.send(Ok(b)).await.is_err() {
                    return;
                }
            }
        }
        if !follow {
            return;
        }
        // follow: poll for new lines until the container stops running
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            for e in &follower.read_new().unwrap_or_default() {
                if let Some(b) = render(e) {
                    if tx.send(Ok(b)).await.is_err() {
                        return;
                    }
                }
            }
            let running = engine
                .container(&cid)
                .map(|c| {
                    matches!(
                        c.state,
                        CState::Running | CState::Paused | CState::Restarting
                    )
                })
                .unwrap_or(false);
            if !running {
                // one last read after the exit was recorded
                for e in &follower.read_new().unwrap_or_default() {
                    if let Some(b) = render(e) {
                        let _ = tx.send(Ok(b)).await;
                    }
                }
                return;
            }
        }
    });
    let ct = if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, ct)
        .body(Body::from_stream(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        ))
        .expect("valid response"))
}

fn frac(t: &str) -> f64 {
    t.split_once('.')
        .map(|(_, f)| f.trim_end_matches('Z'))
        .and_then(|f| format!("0.{f}").parse().ok())
        .unwrap_or(0.0)
}

#[derive(Deserialize, Default)]
pub(crate) struct AttachQuery {
    #[serde(default)]
    stdin: Option<String>,
    #[serde(default)]
    stdout: Option<String>,
    #[serde(default)]
    stderr: Option<String>,
    #[serde(default)]
    stream: Option<String>,
    #[serde(default, rename = "detachKeys")]
    detach_keys: Option<String>,
}

/// `POST /containers/{id}/attach`: upgrades the connection and relays stdio through the shim.
pub(crate) async fn attach(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<AttachQuery>,
    mut req: Request,
) -> Result<Response, ApiError> {
    let c = engine.container(&id)?;
    if !truthy(&q.stream) {
        return Err(ApiError::bad_request(
            "attach without stream=1 is not supported; use the logs endpoint for past output",
        ));
    }
    let want_in = truthy(&q.stdin);
    let want_out = truthy(&q.stdout);
    let want_err = truthy(&q.stderr);
    let tty = c.config.config.tty;
    let keys = berth_api::detach_keys::parse_detach_keys(q.detach_keys.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    // as in Docker, the sequence is looked for in a terminal's input only
    let detach = (tty && want_in).then(|| berth_api::detach_keys::DetachMatcher::new(keys));
    let upgrade = hyper::upgrade::on(&mut req);
    let cid = c.id.clone();
    tokio::spawn(async move {
        let shim = match engine.attach_container(&cid, want_in).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(container = cid, error = %e, "attach failed");
                return;
            }
        };
        let upgraded = match upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(error = %e, "attach upgrade failed");
                return;
            }
        };
        relay(
            TokioIo::new(upgraded),
            shim,
            want_in,
            want_out,
            want_err,
            tty,
            detach,
        )
        .await;
    });
    Ok(upgraded_stream(tty))
}

/// The 101 answer of a hijacked attach or exec stream: raw with a tty, else multiplexed.
pub(crate) fn upgraded_stream(tty: bool) -> Response {
    let ct = if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "tcp")
        .header(header::CONTENT_TYPE, ct)
        .body(Body::empty())
        .expect("valid response")
}

/// Client ⇄ shim: stdin as shim frames one way, shim frames as Docker's stream the other.
pub(crate) async fn relay<C>(
    client: C,
    shim: tokio::net::UnixStream,
    want_in: bool,
    want_out: bool,
    want_err: bool,
    tty: bool,
    detach: Option<berth_api::detach_keys::DetachMatcher>,
) where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    relay_then(client, shim, want_in, want_out, want_err, tty, detach, None).await
}

/// Bytes written to the client after the output ended, before the stream is closed.
type Epilogue = std::pin::Pin<Box<dyn std::future::Future<Output = Bytes> + Send>>;

/// [`relay`], then `then`'s bytes once the output ended.
#[allow(
    clippy::too_many_arguments,
    reason = "relay's arguments and the epilogue"
)]
async fn relay_then<C>(
    client: C,
    shim: tokio::net::UnixStream,
    want_in: bool,
    want_out: bool,
    want_err: bool,
    tty: bool,
    mut detach: Option<berth_api::detach_keys::DetachMatcher>,
    then: Option<Epilogue>,
) where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut cr, mut cw) = tokio::io::split(client);
    let (mut sr, mut sw) = shim.into_split();
    let input = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match cr.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    if want_in {
                        let _ = sw.write_all(&berth_runtime::shim::frame(4, &[])).await;
                    }
                    // keep the shim side open: output may still come
                    std::future::pending::<()>().await;
                }
                Ok(n) => {
                    use berth_api::detach_keys::Scan;
                    let (data, detached) = match detach.as_mut().map(|m| m.feed(&buf[..n])) {
                        None => (buf[..n].to_vec(), false),
                        Some(Scan::Pass(d)) => (d, false),
                        Some(Scan::Detach(d)) => (d, true),
                    };
                    if want_in
                        && !data.is_empty()
                        && sw
                            .write_all(&berth_runtime::shim::frame(0, &data))
                            .await
                            .is_err()
                    {
                        // the shim went: the output side sees it end (and writes the epilogue)
                        std::future::pending::<()>().await;
                    }
                    if detached {
                        // the session ends; the container and its stdin stay as they are
                        tracing::debug!("attach client detached with its key sequence");
                        return;
                    }
                }
            }
        }
    };
    let output = async move {
        let mut head = [0u8; 5];
        let mut client_gone = false;
        loop {
            if sr.read_exact(&mut head).await.is_err() {
                break;
            }
            let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
            let mut data = vec![0u8; len];
            if sr.read_exact(&mut data).await.is_err() {
                break;
            }
            let stream = head[0];
            if (stream == 1 && !want_out) || (stream == 2 && !want_err) {
                continue;
            }
            if cw.write_all(&mux(stream, &data, tty)).await.is_err() {
                client_gone = true;
                break;
            }
        }
        if let Some(then) = then.filter(|_| !client_gone) {
            let bytes = then.await;
            let _ = cw.write_all(&bytes).await;
        }
        let _ = cw.flush().await;
        let _ = cw.shutdown().await;
    };
    tokio::select! {
        _ = input => {},
        _ = output => {},
    }
}

/// `POST /containers/{id}/resize?h=&w=`: the container's terminal size.
pub(crate) async fn resize(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<crate::exec::ResizeQuery>,
) -> Result<StatusCode, ApiError> {
    let (h, w) = q.size()?;
    engine.resize_container(&id, h, w).await?;
    Ok(StatusCode::OK)
}

/// `POST /containers/prune`
pub(crate) async fn prune(
    State(engine): State<AppState>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mut deleted = Vec::new();
    for c in engine.containers()? {
        if c.state == CState::Exited || c.state == CState::Created || c.state == CState::Dead {
            engine.remove_container(&c.id, false).await?;
            deleted.push(c.id);
        }
    }
    Ok(Json(
        serde_json::json!({"ContainersDeleted": deleted, "SpaceReclaimed": 0}),
    ))
}

/// `POST /containers/{id}/pause`
pub(crate) async fn pause(
    State(engine): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    engine.pause_container(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /containers/{id}/unpause`
pub(crate) async fn unpause(
    State(engine): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    engine.unpause_container(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default)]
pub(crate) struct RenameQuery {
    #[serde(default)]
    name: String,
}

/// `POST /containers/{id}/rename?name=`
pub(crate) async fn rename(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<RenameQuery>,
) -> Result<StatusCode, ApiError> {
    engine.rename_container(&id, &q.name)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /containers/{id}/top`: the host's `ps -ef` rows of the container's processes.
pub(crate) async fn top(
    State(engine): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let pids = engine.container_pids(&id)?;
    let out = tokio::process::Command::new("ps")
        .arg("-ef")
        .output()
        .await
        .map_err(|e| ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: format!("running ps: {e}"),
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let titles: Vec<String> = header.split_whitespace().map(str::to_string).collect();
    let pid_col = titles.iter().position(|t| t == "PID").unwrap_or(1);
    let mut processes = Vec::new();
    for l in lines {
        let fields: Vec<&str> = l.split_whitespace().collect();
        if fields.len() < titles.len() {
            continue;
        }
        if fields
            .get(pid_col)
            .and_then(|p| p.parse::<i32>().ok())
            .is_some_and(|p| pids.contains(&p))
        {
            let mut row: Vec<String> = fields[..titles.len() - 1]
                .iter()
                .map(|s| s.to_string())
                .collect();
            row.push(fields[titles.len() - 1..].join(" "));
            processes.push(row);
        }
    }
    Ok(Json(
        serde_json::json!({"Titles": titles, "Processes": processes}),
    ))
}
