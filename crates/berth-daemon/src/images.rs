//! `/images/...` routes: parse, call the engine, render.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use berth_api::images::{
    DeleteItem, GraphDriver, ImageInspect, ImageMetadata, ImageSummary, PruneReport, RootFs,
};
use berth_api::system::AuthConfig;
use berth_api::{JsonMessage, ProgressDetail};
use berth_engine::images::Removed;
use berth_engine::Engine;
use berth_image::pull::Progress;
use berth_image::reference::familiar_string;
use berth_image::registry::Credentials;
use berth_image::store::ImageRecord;
use bytes::Bytes;
use serde::Deserialize;

use crate::error::{chain, ApiError};

pub(crate) type AppState = Arc<Engine>;

fn rfc3339(unix: i64) -> String {
    // the shim's log timestamps and inspect times share one formatter
    let full = berth_runtime::shim::log::format_time(unix, 0);
    format!("{}Z", &full[..19])
}

/// Parses the leading `YYYY-MM-DDTHH:MM:SS` of an RFC 3339 time into Unix seconds.
pub(crate) fn parse_rfc3339(s: &str) -> Option<i64> {
    berth_runtime::shim::log::parse_time(s).map(|t| t.floor() as i64)
}

fn labels(engine: &Engine, img: &ImageRecord) -> BTreeMap<String, String> {
    engine
        .image_config(img)
        .ok()
        .and_then(|c| c.config)
        .and_then(|c| c.labels)
        .unwrap_or_default()
}

pub(crate) fn summary(engine: &Engine, img: &ImageRecord, shared: i64) -> ImageSummary {
    let size = img.size() as i64;
    ImageSummary {
        id: img.id.to_string(),
        parent_id: String::new(),
        repo_tags: img.tags.iter().map(|t| familiar_string(t)).collect(),
        repo_digests: img.digests.iter().map(|t| familiar_string(t)).collect(),
        created: img.created.as_deref().and_then(parse_rfc3339).unwrap_or(0),
        size,
        shared_size: shared,
        virtual_size: size,
        labels: labels(engine, img),
        containers: -1,
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct ListQuery {
    #[serde(default)]
    filters: Option<String>,
}

/// `GET /images/json`
pub(crate) async fn list(
    State(engine): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<ImageSummary>>, ApiError> {
    let filters: HashMap<String, serde_json::Value> =
        match q.filters.as_deref().filter(|f| !f.is_empty()) {
            Some(f) => serde_json::from_str(f)
                .map_err(|e| ApiError::bad_request(format!("invalid filters JSON: {e}")))?,
            None => HashMap::new(),
        };
    let values = |k: &str| -> Vec<String> {
        match filters.get(k) {
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            Some(serde_json::Value::Object(o)) => o.keys().cloned().collect(),
            _ => Vec::new(),
        }
    };
    for k in filters.keys() {
        if !["dangling", "reference", "label"].contains(&k.as_str()) {
            return Err(ApiError::bad_request(format!("invalid filter '{k}'")));
        }
    }
    let dangling = values("dangling");
    let references = values("reference");
    let label_filters = values("label");
    let images = engine.images()?;
    let out = images
        .iter()
        .filter(|img| match dangling.first().map(String::as_str) {
            Some("true" | "1") => img.tags.is_empty(),
            Some("false" | "0") => !img.tags.is_empty(),
            _ => true,
        })
        .filter(|img| {
            references.is_empty()
                || references.iter().any(|pat| {
                    img.tags
                        .iter()
                        .any(|t| glob_match(pat, &familiar_string(t)) || glob_match(pat, t))
                })
        })
        .filter(|img| {
            label_filters.is_empty()
                || crate::events::labels_match(&labels(&engine, img), &label_filters)
        })
        .map(|img| summary(&engine, img, -1))
        .collect();
    Ok(Json(out))
}

/// `*` and `?` glob over a reference (`busybox*`, `*:latest`); a pattern without a tag matches any tag.
fn glob_match(pat: &str, s: &str) -> bool {
    fn m(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => m(&p[1..], s) || (!s.is_empty() && s[0] != b'/' && m(p, &s[1..])),
            (Some(b'?'), Some(_)) => m(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => m(&p[1..], &s[1..]),
            _ => false,
        }
    }
    m(pat.as_bytes(), s.as_bytes())
        || (!pat.contains(':')
            && s.rsplit_once(':')
                .is_some_and(|(repo, _)| m(pat.as_bytes(), repo.as_bytes())))
}

fn inspect(engine: &Engine, img: &ImageRecord) -> Result<ImageInspect, ApiError> {
    let config = engine.image_config(img)?;
    let mounts = engine.store().mounts(img);
    let mut data = BTreeMap::new();
    data.insert(
        "LowerDir".to_string(),
        mounts
            .lowerdirs
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(":"),
    );
    let other = |k: &str| {
        config
            .other
            .get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    let size = img.size() as i64;
    Ok(ImageInspect {
        id: img.id.to_string(),
        repo_tags: img.tags.iter().map(|t| familiar_string(t)).collect(),
        repo_digests: img.digests.iter().map(|t| familiar_string(t)).collect(),
        parent: String::new(),
        comment: other("comment"),
        created: config.created.clone().unwrap_or_default(),
        docker_version: other("docker_version"),
        author: config.author.clone().unwrap_or_default(),
        config: serde_json::to_value(config.config.clone().unwrap_or_default()).unwrap_or_default(),
        architecture: config.architecture.clone(),
        variant: config.variant.clone(),
        os: config.os.clone(),
        size,
        virtual_size: size,
        graph_driver: GraphDriver {
            name: "overlay2".into(),
            data,
        },
        root_fs: RootFs {
            kind: "layers".into(),
            layers: config
                .rootfs
                .diff_ids
                .iter()
                .map(|d| d.to_string())
                .collect(),
        },
        metadata: ImageMetadata {
            last_tag_time: img.last_tagged_at.map(rfc3339),
        },
    })
}

#[derive(Deserialize, Default)]
pub(crate) struct NameQuery {
    #[serde(default)]
    repo: Option<String>,
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    force: Option<String>,
}

fn truthy(v: Option<&str>) -> bool {
    matches!(v, Some("1" | "true" | "True" | "yes"))
}

/// `GET|POST|DELETE /images/{name...}` — names contain slashes, so the suffix picks the action.
pub(crate) async fn by_name(
    State(engine): State<AppState>,
    method: Method,
    Path(rest): Path<String>,
    Query(q): Query<NameQuery>,
) -> Result<Response, ApiError> {
    if method == Method::GET {
        let name = rest
            .strip_suffix("/json")
            .ok_or_else(|| ApiError::not_found(format!("page not found: /images/{rest}")))?;
        let img = engine.image(name)?;
        return Ok(Json(inspect(&engine, &img)?).into_response());
    }
    if method == Method::POST {
        let name = rest
            .strip_suffix("/tag")
            .ok_or_else(|| ApiError::not_found(format!("page not found: /images/{rest}")))?;
        let repo = q
            .repo
            .filter(|r| !r.is_empty())
            .ok_or_else(|| ApiError::bad_request("repo parameter is required"))?;
        let target = match q.tag.filter(|t| !t.is_empty()) {
            Some(t) => format!("{repo}:{t}"),
            None => repo,
        };
        engine.tag(name, &target)?;
        return Ok(StatusCode::CREATED.into_response());
    }
    if method == Method::DELETE {
        let removed = engine
            .remove_image(&rest, truthy(q.force.as_deref()))
            .await?;
        return Ok(Json(removed.into_iter().map(delete_item).collect::<Vec<_>>()).into_response());
    }
    Err(ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        message: format!("{method} not allowed on /images/{rest}"),
    })
}

fn delete_item(r: Removed) -> DeleteItem {
    match r {
        Removed::Untagged(n) => DeleteItem {
            untagged: Some(n),
            deleted: None,
        },
        Removed::Deleted(d) => DeleteItem {
            untagged: None,
            deleted: Some(d),
        },
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct PruneQuery {
    #[serde(default)]
    filters: Option<String>,
}

/// `POST /images/prune` — `filters={"dangling":["false"]}` prunes all unused images.
pub(crate) async fn prune(
    State(engine): State<AppState>,
    Query(q): Query<PruneQuery>,
) -> Result<Json<PruneReport>, ApiError> {
    let mut all = false;
    if let Some(f) = q.filters.as_deref().filter(|f| !f.is_empty()) {
        let v: HashMap<String, serde_json::Value> = serde_json::from_str(f)
            .map_err(|e| ApiError::bad_request(format!("invalid filters JSON: {e}")))?;
        for (k, val) in &v {
            if k != "dangling" {
                return Err(ApiError::bad_request(format!(
                    "invalid filter '{k}' (berth prunes by 'dangling' only)"
                )));
            }
            let s = val.to_string();
            all = s.contains("false") || s.contains("\"0\"");
        }
    }
    let outcome = engine.prune_images(all).await?;
    Ok(Json(PruneReport {
        images_deleted: outcome.removed.into_iter().map(delete_item).collect(),
        space_reclaimed: outcome.space_reclaimed,
    }))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreateQuery {
    #[serde(default)]
    from_image: Option<String>,
    #[serde(default)]
    from_src: Option<String>,
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    platform: Option<String>,
}

/// Decodes `X-Registry-Auth` (base64url JSON `AuthConfig`).
pub(crate) fn credentials(headers: &HeaderMap) -> Option<Credentials> {
    let raw = headers.get("x-registry-auth")?.to_str().ok()?.trim();
    if raw.is_empty() {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE
        .decode(raw)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw))
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(raw))
        .ok()?;
    let a: AuthConfig = serde_json::from_slice(&bytes).ok()?;
    auth_to_credentials(&a)
}

pub(crate) fn auth_to_credentials(a: &AuthConfig) -> Option<Credentials> {
    if !a.username.is_empty() {
        return Some(Credentials {
            username: a.username.clone(),
            password: a.password.clone(),
        });
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(&a.auth)
        .ok()?;
    let s = String::from_utf8(decoded).ok()?;
    let (u, p) = s.split_once(':')?;
    Some(Credentials {
        username: u.to_string(),
        password: p.to_string(),
    })
}

fn human(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{n}B")
    } else {
        format!("{v:.1}{}", units[i])
    }
}

fn progress_message(p: Progress) -> JsonMessage {
    let bar = match (p.current, p.total) {
        (Some(c), Some(t)) if t > 0 => {
            let width = 50;
            let filled = ((c as f64 / t as f64) * width as f64) as usize;
            let filled = filled.min(width);
            let arrow = if filled < width { ">" } else { "" };
            Some(format!(
                "[{}{}{}] {}/{}",
                "=".repeat(filled.saturating_sub(arrow.len())),
                arrow,
                " ".repeat(width - filled),
                human(c),
                human(t)
            ))
        }
        _ => None,
    };
    let detail = if p.current.is_some() || p.id.is_some() {
        Some(ProgressDetail {
            current: p.current,
            total: p.total,
        })
    } else {
        None
    };
    JsonMessage {
        id: p.id,
        status: Some(p.status),
        progress_detail: detail,
        progress: bar,
        ..Default::default()
    }
}

fn line(m: &JsonMessage) -> Bytes {
    let mut v = serde_json::to_vec(m).expect("serializable");
    v.extend_from_slice(b"\r\n");
    Bytes::from(v)
}

/// `POST /images/create?fromImage=&tag=&platform=` — streams Docker's JSON progress.
pub(crate) async fn create(
    State(engine): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<CreateQuery>,
) -> Result<Response, ApiError> {
    if q.from_src.is_some() {
        return Err(ApiError::bad_request(
            "importing with fromSrc is not supported yet; pull with fromImage",
        ));
    }
    let image = q
        .from_image
        .filter(|f| !f.is_empty())
        .ok_or_else(|| ApiError::bad_request("fromImage parameter is required"))?;
    let reference = match q.tag.as_deref().filter(|t| !t.is_empty()) {
        Some(t) if t.starts_with("sha256:") => format!("{image}@{t}"),
        Some(t) => format!("{image}:{t}"),
        None => image,
    };
    // reject bad references before the 200 goes out, as Docker does
    berth_image::Reference::parse_normalized(&reference)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let creds = credentials(&headers);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Progress>();
    let (body_tx, body_rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    let platform = q.platform.clone();
    tokio::spawn(async move {
        let pull = {
            let engine = engine.clone();
            let reference = reference.clone();
            tokio::spawn(async move {
                engine
                    .pull(&reference, platform.as_deref(), creds, &tx)
                    .await
            })
        };
        while let Some(p) = rx.recv().await {
            let _ = body_tx.send(Ok(line(&progress_message(p)))).await;
        }
        let msg = match pull.await {
            Ok(Ok(outcome)) => {
                let name = familiar_string(
                    &berth_image::Reference::parse_normalized(&reference)
                        .map(|r| r.to_string())
                        .unwrap_or(reference),
                );
                let status = if outcome.downloaded {
                    format!("Status: Downloaded newer image for {name}")
                } else {
                    format!("Status: Image is up to date for {name}")
                };
                JsonMessage {
                    status: Some(status),
                    ..Default::default()
                }
            }
            Ok(Err(e)) => {
                let message = chain(&e);
                tracing::warn!(error = message, "pull failed");
                JsonMessage {
                    error_detail: Some(berth_api::ErrorResponse {
                        message: message.clone(),
                    }),
                    error: Some(message),
                    ..Default::default()
                }
            }
            Err(e) => JsonMessage {
                error: Some(format!("pull task failed: {e}")),
                ..Default::default()
            },
        };
        let _ = body_tx.send(Ok(line(&msg))).await;
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(body_rx);
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .expect("valid response"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(
            parse_rfc3339("2023-11-14T22:13:20.123Z"),
            Some(1_700_000_000)
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T00:00:00Z")
                .map(rfc3339)
                .as_deref(),
            Some("2024-02-29T00:00:00Z")
        );
        assert_eq!(parse_rfc3339("garbage"), None);
    }

    #[test]
    fn globs() {
        assert!(glob_match("busybox", "busybox:latest"));
        assert!(glob_match("busy*", "busybox:latest"));
        assert!(glob_match("*:latest", "busybox:latest"));
        assert!(!glob_match("busybox:1", "busybox:latest"));
        assert!(!glob_match("*", "a/b:latest"));
    }

    #[test]
    fn progress_bar() {
        let m = progress_message(Progress {
            id: Some("abc".into()),
            status: "Downloading".into(),
            current: Some(50),
            total: Some(100),
        });
        let bar = m.progress.expect("a bar");
        assert!(bar.starts_with("[="), "{bar}");
        assert!(bar.ends_with("50B/100B"), "{bar}");
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct TagsQuery {
    #[serde(default)]
    repository: String,
}

/// `GET /berth/images/tags?repository=` — a registry repository's tags (for `pull --all-tags`).
pub(crate) async fn remote_tags(
    State(engine): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<TagsQuery>,
) -> Result<Json<Vec<String>>, ApiError> {
    Ok(Json(
        engine
            .remote_tags(&q.repository, credentials(&headers))
            .await?,
    ))
}
