//! API layer, in process: the router over an engine on a temp root, driven with `oneshot`.
//! No root, no network: routing, version prefixes, error shapes and empty-store answers.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use berth_engine::{Engine, EngineConfig};
use http_body_util::BodyExt;
use tower::ServiceExt;

fn engine() -> (tempfile::TempDir, Arc<Engine>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::open(EngineConfig {
        root: dir.path().to_path_buf(),
        registry: Default::default(),
        pull: Default::default(),
        shim_exe: None,
        cgroup_parent: "berth-test".into(),
        cgroup_favordynmods: false,
        network: berth_engine::network::NetworkConfig {
            bridge: None,
            ..Default::default()
        },
    })
    .expect("engine");
    (dir, Arc::new(engine))
}

async fn call(engine: &Arc<Engine>, method: Method, uri: &str) -> (StatusCode, serde_json::Value) {
    let app = berth_daemon::app(engine.clone());
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .expect("request");
    let resp = app.oneshot(req).await.expect("infallible");
    let status = resp.status();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, v)
}

#[tokio::test]
async fn versioned_and_unversioned_paths_route_the_same() {
    let (_d, e) = engine();
    for uri in [
        "/version",
        "/v1.24/version",
        "/v1.41/version",
        "/v1.50/version",
    ] {
        let (s, v) = call(&e, Method::GET, uri).await;
        assert_eq!(s, StatusCode::OK, "{uri}");
        assert_eq!(v["ApiVersion"], berth_api::API_VERSION, "{uri}");
    }
    let (s, v) = call(&e, Method::GET, "/v1.51/version").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["message"].as_str().expect("message").contains("too new"));
    let (s, v) = call(&e, Method::GET, "/v1.23/version").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["message"].as_str().expect("message").contains("too old"));
}

#[tokio::test]
async fn errors_are_docker_shaped_with_the_right_status() {
    let (_d, e) = engine();
    let (s, v) = call(&e, Method::GET, "/v1.50/images/busybox/json").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["message"], "No such image: busybox");
    let (s, v) = call(&e, Method::DELETE, "/images/127.0.0.1:5000/a/b:c").await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "names with slashes and ports route: {v}"
    );
    let (s, _) = call(&e, Method::POST, "/images/busybox/tag").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "repo is required");
    let (s, v) = call(&e, Method::POST, "/images/create?fromImage=Bad%20Name").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["message"]
        .as_str()
        .expect("message")
        .contains("invalid reference format"));
    let (s, _) = call(&e, Method::POST, "/images/create").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "fromImage is required");
    let (s, _) = call(
        &e,
        Method::GET,
        "/images/json?filters=%7B%22nope%22%3A%5B%22x%22%5D%7D",
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "unknown filters are refused");
    let (s, _) = call(
        &e,
        Method::POST,
        "/images/prune?filters=%7B%22until%22%3A%5B%221h%22%5D%7D",
    )
    .await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "unsupported prune filters are refused, not ignored"
    );
    let (s, v) = call(&e, Method::GET, "/volumes").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(v["message"].is_string());
    // the pre-defined networks are listed; removing one is Docker's 403
    let (s, v) = call(&e, Method::GET, "/networks").await;
    assert_eq!(s, StatusCode::OK);
    let names: Vec<&str> = v
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|n| n["Name"].as_str())
        .collect();
    assert!(names.contains(&"host") && names.contains(&"none"), "{v}");
    let (s, v) = call(&e, Method::DELETE, "/networks/host").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert!(
        v["message"]
            .as_str()
            .is_some_and(|m| m.contains("pre-defined")),
        "{v}"
    );
    let (s, _) = call(&e, Method::GET, "/networks/nosuch").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = call(&e, Method::POST, "/networks/create").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
}

#[tokio::test]
async fn empty_store_answers() {
    let (_d, e) = engine();
    let (s, v) = call(&e, Method::GET, "/images/json").await;
    assert_eq!((s, v), (StatusCode::OK, serde_json::json!([])));
    let (s, v) = call(&e, Method::GET, "/system/df").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["LayersSize"], 0);
    let (s, v) = call(&e, Method::POST, "/images/prune").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["SpaceReclaimed"], 0);
    let (s, v) = call(&e, Method::GET, "/info").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["Images"], 0);
    let (s, body) = call(&e, Method::GET, "/_ping").await;
    assert_eq!(
        (s, body),
        (StatusCode::OK, serde_json::Value::String("OK".into()))
    );
}

#[tokio::test]
async fn events_replay_filter_and_end_at_until() {
    let (_d, e) = engine();
    e.events().publish(
        "image",
        "tag",
        "sha256:abc",
        [("name".to_string(), "bb:v1".to_string())].into(),
    );
    e.events()
        .publish("container", "create", "c0ffee", Default::default());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    let until = format!("{:.9}", now + 0.001);
    // since 0 replays both; until in the past ends the stream at once
    let (s, v) = call(
        &e,
        Method::GET,
        &format!("/v1.41/events?since=0&until={until}"),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let text = v.as_str().expect("a stream of JSON lines").to_owned();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON event"))
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[0]["Type"], "image");
    assert_eq!(lines[0]["Actor"]["Attributes"]["name"], "bb:v1");
    assert_eq!(lines[1]["status"], "create");
    // filters as docker sends them
    let filters = "%7B%22type%22%3A%5B%22container%22%5D%7D"; // {"type":["container"]}
    let (_, v) = call(
        &e,
        Method::GET,
        &format!("/events?since=0&until={until}&filters={filters}"),
    )
    .await;
    let text = v
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| v.to_string());
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("c0ffee"));
    // without since: nothing from before
    let (_, v) = call(&e, Method::GET, &format!("/events?until={until}")).await;
    assert_eq!(v.as_str(), Some(""));
    // bad input
    let (s, v) = call(&e, Method::GET, "/events?since=yesterday").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["message"].as_str().expect("message").contains("since"));
    let (s, _) = call(
        &e,
        Method::GET,
        "/events?until=1&filters=%7B%22colour%22%3A%5B%22x%22%5D%7D",
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = call(&e, Method::GET, "/containers/nosuch/stats?stream=false").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = call(
        &e,
        Method::GET,
        "/containers/nosuch/stats?stream=true&one-shot=true",
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}
