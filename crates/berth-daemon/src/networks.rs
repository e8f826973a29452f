//! `/networks/...`: list, inspect, create, remove, connect, disconnect, prune.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use berth_api::networks::{
    NetworkConnectRequest, NetworkCreateRequest, NetworkCreateResponse, NetworkDisconnectRequest,
    NetworkPruneResponse,
};
use berth_engine::containers::networking::NetworkView;
use berth_engine::network::NetworkRecord;
use berth_engine::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::events::{labels_match, parse_filters};
use crate::ApiError;

type AppState = Arc<Engine>;

/// Docker's zero time, the `Created` of `host` and `none`.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// A network in Docker's shape; `Containers` only when `with_containers` (inspect).
fn render(v: &NetworkView, with_containers: bool) -> Value {
    let (ipam_config, internal, attachable, labels, options, created) = match &v.record {
        Some(r) => {
            let mut config =
                vec![json!({"Subnet": r.subnet.to_string(), "Gateway": r.gateway.to_string()})];
            if let Some(v6) = r.ipv6 {
                config.push(json!({"Subnet": v6.subnet_text(), "Gateway": v6.gateway.to_string()}));
            }
            (
                json!(config),
                r.internal,
                r.attachable,
                json!(r.labels),
                json!(r.options),
                if r.created.is_empty() {
                    ZERO_TIME.to_string()
                } else {
                    r.created.clone()
                },
            )
        }
        None => (
            json!([]),
            false,
            false,
            json!({}),
            json!({}),
            ZERO_TIME.to_string(),
        ),
    };
    let mut out = json!({
        "Name": v.name,
        "Id": v.id,
        "Created": created,
        "Scope": "local",
        "Driver": v.driver,
        "EnableIPv4": v.record.is_some(),
        "EnableIPv6": v.record.as_ref().is_some_and(|r| r.ipv6.is_some()),
        "IPAM": {"Driver": "default", "Options": null, "Config": ipam_config},
        "Internal": internal,
        "Attachable": attachable,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Options": options,
        "Labels": labels,
    });
    if with_containers {
        let containers: serde_json::Map<String, Value> = v
            .containers
            .iter()
            .map(|c| {
                let e = c.endpoint.as_ref();
                (
                    c.id.clone(),
                    json!({
                        "Name": c.name,
                        "EndpointID": e.map(|_| c.id.clone()).unwrap_or_default(),
                        "MacAddress": e.map(|e| e.mac.clone()).unwrap_or_default(),
                        "IPv4Address": e.map(|e| format!("{}/{}", e.ip, e.prefix_len)).unwrap_or_default(),
                        "IPv6Address": e.and_then(|e| e.ipv6.map(|a| format!("{a}/{}", e.ipv6_prefix_len))).unwrap_or_default(),
                    }),
                )
            })
            .collect();
        out["Containers"] = Value::Object(containers);
    }
    out
}

fn truthy(v: &str) -> Result<bool, ApiError> {
    match v {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(ApiError::bad_request(format!(
            "invalid filter 'dangling={other}': use true or false"
        ))),
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct ListQuery {
    filters: Option<String>,
}

/// `GET /networks?filters=`
pub(crate) async fn list(
    State(engine): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<Value>>, ApiError> {
    let filters = parse_filters(q.filters.as_deref())?;
    for k in filters.keys() {
        if !matches!(
            k.as_str(),
            "name" | "id" | "driver" | "label" | "type" | "scope" | "dangling"
        ) {
            return Err(ApiError::bad_request(format!("invalid filter '{k}'")));
        }
    }
    let get = |k: &str| filters.get(k).cloned().unwrap_or_default();
    let dangling = match get("dangling").first() {
        Some(v) => Some(truthy(v)?),
        None => None,
    };
    for t in get("type") {
        if t != "custom" && t != "builtin" {
            return Err(ApiError::bad_request(format!(
                "invalid filter: 'type'='{t}': use custom or builtin"
            )));
        }
    }
    let views = engine.network_views()?;
    let out = views
        .iter()
        .filter(|v| {
            let any = |key: &str, test: &dyn Fn(&str) -> bool| {
                let values = get(key);
                values.is_empty() || values.iter().any(|x| test(x))
            };
            any("name", &|n| v.name.contains(n))
                && any("id", &|i| v.id.starts_with(i))
                && any("driver", &|d| v.driver == d)
                && any("scope", &|s| s == "local")
                && any("type", &|t| (t == "builtin") == v.builtin)
                && labels_match(
                    &v.record
                        .as_ref()
                        .map(|r| r.labels.clone())
                        .unwrap_or_default(),
                    &get("label"),
                )
                && dangling.is_none_or(|d| d == (v.containers.is_empty() && !v.builtin))
        })
        .map(|v| render(v, false))
        .collect();
    Ok(Json(out))
}

/// `GET /networks/{id}`
pub(crate) async fn inspect(
    State(engine): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(render(&engine.network_view(&id)?, true)))
}

/// `POST /networks/create`
pub(crate) async fn create(
    State(engine): State<AppState>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<NetworkCreateResponse>), ApiError> {
    let req: NetworkCreateRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid network create request: {e}")))?;
    let record = engine.create_network(&req).await?;
    Ok((
        StatusCode::CREATED,
        Json(NetworkCreateResponse {
            id: record.id,
            warning: String::new(),
        }),
    ))
}

/// `DELETE /networks/{id}`
pub(crate) async fn remove(
    State(engine): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    engine.remove_network(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /networks/{id}/connect`
pub(crate) async fn connect(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<StatusCode, ApiError> {
    let req: NetworkConnectRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid network connect request: {e}")))?;
    engine
        .network_connect(&id, &req.container, req.endpoint_config)
        .await?;
    Ok(StatusCode::OK)
}

/// `POST /networks/{id}/disconnect`
pub(crate) async fn disconnect(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<StatusCode, ApiError> {
    let req: NetworkDisconnectRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid network disconnect request: {e}")))?;
    engine.network_disconnect(&id, &req.container).await?;
    Ok(StatusCode::OK)
}

/// A Go duration (`90s`, `10m`, `1h30m`) in seconds.
fn go_duration(s: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut number = String::new();
    let mut any = false;
    for ch in s.chars() {
        if ch.is_ascii_digit() || ch == '.' {
            number.push(ch);
            continue;
        }
        let n: f64 = number.parse().ok()?;
        number.clear();
        total += n * match ch {
            'h' => 3600.0,
            'm' => 60.0,
            's' => 1.0,
            _ => return None,
        };
        any = true;
    }
    (any && number.is_empty()).then_some(total)
}

fn created_before(r: &NetworkRecord, until: f64) -> bool {
    berth_runtime::shim::log::parse_time(&r.created).is_some_and(|t| t < until)
}

/// `POST /networks/prune?filters=`
pub(crate) async fn prune(
    State(engine): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<NetworkPruneResponse>, ApiError> {
    let filters = parse_filters(q.filters.as_deref())?;
    let mut until = None;
    for (k, values) in &filters {
        match k.as_str() {
            "label" | "label!" => {}
            "until" => {
                let v = values.first().cloned().unwrap_or_default();
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs_f64())
                    .unwrap_or_default();
                until = Some(
                    go_duration(&v)
                        .map(|d| now - d)
                        .or_else(|| crate::containers::parse_time_arg(&v))
                        .ok_or_else(|| {
                            ApiError::bad_request(format!(
                                "invalid filter 'until={v}': give a timestamp or a duration such as 10m"
                            ))
                        })?,
                );
            }
            other => return Err(ApiError::bad_request(format!("invalid filter '{other}'"))),
        }
    }
    let with = filters.get("label").cloned().unwrap_or_default();
    let without = filters.get("label!").cloned().unwrap_or_default();
    let deleted = engine
        .prune_networks(|r| {
            let keep_by_label = !labels_match(&r.labels, &with)
                || (!without.is_empty()
                    && without
                        .iter()
                        .any(|w| labels_match(&r.labels, std::slice::from_ref(w))));
            let keep_by_time = until.is_some_and(|u| !created_before(r, u));
            keep_by_label || keep_by_time
        })
        .await?;
    Ok(Json(NetworkPruneResponse {
        networks_deleted: deleted,
    }))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn durations_and_labels() {
        assert_eq!(go_duration("10m"), Some(600.0));
        assert_eq!(go_duration("1h30m"), Some(5400.0));
        assert_eq!(go_duration("1.5s"), Some(1.5));
        assert_eq!(go_duration("10"), None);
        assert_eq!(go_duration("5x"), None);
        let labels: BTreeMap<String, String> = [("a".to_string(), "1".to_string())].into();
        assert!(labels_match(&labels, &["a".into()]));
        assert!(labels_match(&labels, &["a=1".into()]));
        assert!(!labels_match(&labels, &["a=2".into()]));
        assert!(!labels_match(&labels, &["b".into()]));
        assert!(labels_match(&labels, &[]));
    }
}
