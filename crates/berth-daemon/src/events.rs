//! `GET /events` and `GET /containers/{id}/stats`: the two long-lived JSON streams.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use berth_engine::events::EventFilter;
use berth_engine::Engine;
use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use crate::error::ApiError;

type AppState = Arc<Engine>;

#[derive(Deserialize, Default)]
pub(crate) struct EventsQuery {
    #[serde(default)]
    since: Option<String>,
    #[serde(default)]
    until: Option<String>,
    #[serde(default)]
    filters: Option<String>,
}

/// Docker's timestamps: `SECONDS[.NANOS]` (what the docker CLI sends) or RFC 3339; in
/// Unix nanoseconds.
fn parse_timestamp(name: &str, v: &str) -> Result<i64, ApiError> {
    let bad = || {
        ApiError::bad_request(format!(
            "invalid {name} timestamp {v:?}: use Unix seconds (1700000000 or 1700000000.123456789) or RFC 3339"
        ))
    };
    if v.contains('-') && v.contains('T') {
        return berth_runtime::shim::log::parse_time(v)
            .map(|t| (t * 1e9) as i64)
            .ok_or_else(bad);
    }
    let (secs, frac) = v.split_once('.').unwrap_or((v, ""));
    let secs: i64 = secs.parse().map_err(|_| bad())?;
    let nanos: i64 = if frac.is_empty() {
        0
    } else {
        if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        format!("{frac:0<9}").parse().map_err(|_| bad())?
    };
    Ok(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
}

/// Docker's `label` filters: every `KEY` present and every `KEY=VALUE` equal.
pub(crate) fn labels_match(labels: &BTreeMap<String, String>, wanted: &[String]) -> bool {
    wanted.iter().all(|w| match w.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(w.as_str()),
    })
}

/// Docker's `filters` JSON: `{"key":["v",...]}` or the older `{"key":{"v":true}}`.
pub(crate) fn parse_filters(raw: Option<&str>) -> Result<BTreeMap<String, Vec<String>>, ApiError> {
    let Some(raw) = raw.filter(|f| !f.is_empty()) else {
        return Ok(BTreeMap::new());
    };
    let v: BTreeMap<String, serde_json::Value> = serde_json::from_str(raw)
        .map_err(|e| ApiError::bad_request(format!("invalid filters JSON: {e}")))?;
    let mut out = BTreeMap::new();
    for (k, v) in v {
        let values: Vec<String> = match v {
            serde_json::Value::Array(a) => a
                .into_iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect(),
            serde_json::Value::Object(o) => o
                .into_iter()
                .filter(|(_, on)| on.as_bool().unwrap_or(false))
                .map(|(k, _)| k)
                .collect(),
            serde_json::Value::String(s) => vec![s],
            _ => {
                return Err(ApiError::bad_request(format!(
                    "invalid filter value for {k}"
                )))
            }
        };
        out.insert(k, values);
    }
    Ok(out)
}

fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

fn json_line<T: serde::Serialize>(v: &T) -> Bytes {
    let mut line = serde_json::to_vec(v).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

fn json_stream(rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>) -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        ))
        .expect("valid response")
}

/// `GET /events?since=&until=&filters=`: replays recent events from `since`, then streams new
/// ones until `until` (or the client goes).
pub(crate) async fn events(
    State(engine): State<AppState>,
    Query(q): Query<EventsQuery>,
) -> Result<Response, ApiError> {
    let since = q
        .since
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| parse_timestamp("since", s))
        .transpose()?;
    let until = q
        .until
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| parse_timestamp("until", s))
        .transpose()?;
    let filter = EventFilter::from_map(&parse_filters(q.filters.as_deref())?)?;
    let (past, mut live) = engine.events().subscribe();
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        let within = |t: i64| until.is_none_or(|u| t <= u);
        let mut last = 0;
        if let Some(since) = since {
            for e in past.iter().filter(|e| e.time_nano >= since) {
                if !within(e.time_nano) {
                    return;
                }
                if filter.matches(e) && tx.send(Ok(json_line(e))).await.is_err() {
                    return;
                }
            }
        }
        if let Some(e) = past.last() {
            last = e.time_nano;
        }
        let deadline = until.map(|u| {
            let wait = (u - now_nanos()).max(0) as u64;
            tokio::time::Instant::now() + Duration::from_nanos(wait)
        });
        loop {
            let next = async {
                match deadline {
                    Some(d) => tokio::time::timeout_at(d, live.recv()).await.ok(),
                    None => Some(live.recv().await),
                }
            };
            let e = tokio::select! {
                e = next => e,
                _ = tx.closed() => return,
            };
            match e {
                None => return,
                Some(Ok(e)) => {
                    if e.time_nano <= last {
                        continue;
                    }
                    last = e.time_nano;
                    if !within(e.time_nano) {
                        return;
                    }
                    if filter.matches(&e) && tx.send(Ok(json_line(&e))).await.is_err() {
                        return;
                    }
                }
                Some(Err(RecvError::Lagged(n))) => {
                    tracing::warn!(missed = n, "an events subscriber fell behind");
                }
                Some(Err(RecvError::Closed)) => return,
            }
        }
    });
    Ok(json_stream(rx))
}

#[derive(Deserialize, Default)]
pub(crate) struct StatsQuery {
    #[serde(default)]
    stream: Option<String>,
    #[serde(default, rename = "one-shot")]
    one_shot: Option<String>,
}

fn flag(v: &Option<String>, default: bool) -> Result<bool, ApiError> {
    match v.as_deref() {
        None | Some("") => Ok(default),
        Some("1" | "true" | "True" | "yes") => Ok(true),
        Some("0" | "false" | "False" | "no") => Ok(false),
        Some(other) => Err(ApiError::bad_request(format!(
            "invalid boolean value {other:?}: use true or false"
        ))),
    }
}

/// `GET /containers/{id}/stats?stream=&one-shot=`: one sample a second; with `stream=false`
/// one sample whose `precpu_stats` is a second older (none with `one-shot=true`).
pub(crate) async fn stats(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<StatsQuery>,
) -> Result<Response, ApiError> {
    let stream = flag(&q.stream, true)?;
    let one_shot = flag(&q.one_shot, false)?;
    if one_shot && stream {
        return Err(ApiError::bad_request(
            "cannot have stream=true and one-shot=true: use stream=false with one-shot",
        ));
    }
    let cid = engine.container(&id)?.id;
    let sample = move |prev: Option<berth_api::stats::StatsResponse>| {
        let engine = engine.clone();
        let id = cid.clone();
        async move {
            tokio::task::spawn_blocking(move || engine.container_stats(&id, prev.as_ref()))
                .await
                .map_err(|e| berth_engine::EngineError::Internal(e.to_string()))?
        }
    };
    let first = sample(None).await?;
    if !stream {
        let running = first.read != berth_engine::containers::ZERO_TIME;
        let out = if one_shot || !running {
            first
        } else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            sample(Some(first)).await?
        };
        return Ok(Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(json_line(&out)))
            .expect("valid response"));
    }
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        let mut prev = first;
        loop {
            if tx.send(Ok(json_line(&prev))).await.is_err() {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {},
                _ = tx.closed() => return,
            }
            let keep = (prev.read != berth_engine::containers::ZERO_TIME).then_some(prev);
            match sample(keep).await {
                Ok(s) => prev = s,
                // removed: the stream ends
                Err(_) => return,
            }
        }
    });
    Ok(json_stream(rx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_and_filters() {
        assert_eq!(parse_timestamp("since", "12").ok(), Some(12_000_000_000));
        assert_eq!(parse_timestamp("since", "12.5").ok(), Some(12_500_000_000));
        assert_eq!(
            parse_timestamp("since", "12.000000001").ok(),
            Some(12_000_000_001)
        );
        assert_eq!(
            parse_timestamp("until", "1970-01-01T00:00:12Z").ok(),
            Some(12_000_000_000)
        );
        assert!(parse_timestamp("since", "yesterday").is_err());
        assert_eq!(
            parse_timestamp("since", "1795428000.123456789").ok(),
            Some(1_795_428_000_123_456_789)
        );
        let f = parse_filters(Some(
            r#"{"type":["container"],"event":{"die":true,"x":false}}"#,
        ))
        .ok()
        .unwrap_or_default();
        assert_eq!(f["type"], vec!["container"]);
        assert_eq!(f["event"], vec!["die"]);
        assert!(parse_filters(Some("{")).is_err());
    }
}
