//! `/_ping`, `/version`, `/info`, `/system/df`, `/auth`.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_api::system::{
    AuthConfig, AuthResponse, Component, DiskUsage, Info, RegistryConfigInfo, Version,
};
use berth_api::{API_VERSION, MIN_API_VERSION};

use crate::error::ApiError;
use crate::images::{auth_to_credentials, summary, AppState};

fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn arch() -> String {
    berth_image::Platform::host().architecture
}

/// `GET|HEAD /_ping`
pub(crate) async fn ping() -> Response {
    let mut h = HeaderMap::new();
    h.insert("api-version", HeaderValue::from_static(API_VERSION));
    h.insert("docker-experimental", HeaderValue::from_static("false"));
    h.insert("ostype", HeaderValue::from_static("linux"));
    h.insert(
        "cache-control",
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    (h, "OK").into_response()
}

/// `GET /version`
pub(crate) async fn version() -> Json<Version> {
    let v = env!("CARGO_PKG_VERSION").to_string();
    Json(Version {
        version: v.clone(),
        api_version: API_VERSION.into(),
        min_api_version: MIN_API_VERSION.into(),
        git_commit: option_env!("BERTH_GIT_COMMIT").unwrap_or("unknown").into(),
        go_version: "rust".into(),
        os: "linux".into(),
        arch: arch(),
        kernel_version: kernel(),
        build_time: String::new(),
        components: vec![Component {
            name: "Engine".into(),
            version: v,
            details: serde_json::json!({
                "ApiVersion": API_VERSION,
                "MinAPIVersion": MIN_API_VERSION,
                "GitCommit": option_env!("BERTH_GIT_COMMIT").unwrap_or("unknown"),
                "GoVersion": "rust",
                "Os": "linux",
                "Arch": arch(),
                "KernelVersion": kernel(),
                "Experimental": "false",
            }),
        }],
    })
}

fn os_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
        })
        .unwrap_or_else(|| "Linux".into())
}

fn mem_total() -> i64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("MemTotal:")
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
            })
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn cgroup_version() -> &'static str {
    match rustix::fs::statfs("/sys/fs/cgroup") {
        Ok(s) if s.f_type == 0x6367_7270 => "2",
        _ => "1",
    }
}

/// `GET /info`
pub(crate) async fn info(State(engine): State<AppState>) -> Result<Json<Info>, ApiError> {
    let images = engine.images()?.len() as i64;
    let cfg = engine.config();
    let mut insecure = vec!["127.0.0.0/8".to_string()];
    insecure.extend(cfg.registry.insecure.iter().cloned());
    Ok(Json(Info {
        id: engine.root().display().to_string(),
        images,
        driver: "overlay2".into(),
        cgroup_driver: "cgroupfs".into(),
        cgroup_version: cgroup_version().into(),
        kernel_version: kernel(),
        operating_system: os_name(),
        os_type: "linux".into(),
        architecture: std::env::consts::ARCH.into(),
        ncpu: std::thread::available_parallelism()
            .map(|n| n.get() as i64)
            .unwrap_or(1),
        mem_total: mem_total(),
        docker_root_dir: engine.root().display().to_string(),
        name: rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned(),
        server_version: env!("CARGO_PKG_VERSION").into(),
        registry_config: RegistryConfigInfo {
            insecure_registry_cidrs: insecure,
            mirrors: cfg
                .registry
                .mirrors
                .get("docker.io")
                .cloned()
                .unwrap_or_default(),
        },
        swarm: serde_json::json!({"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": false, "Error": "", "RemoteManagers": null}),
        ..Default::default()
    }))
}

/// `GET /system/df`
pub(crate) async fn df(State(engine): State<AppState>) -> Result<Json<DiskUsage>, ApiError> {
    let (usage, total) = engine.disk_usage()?;
    Ok(Json(DiskUsage {
        layers_size: total as i64,
        images: usage
            .iter()
            .map(|u| summary(&engine, &u.image, u.shared_size as i64))
            .collect(),
        ..Default::default()
    }))
}

/// `POST /auth`
pub(crate) async fn auth(
    State(engine): State<AppState>,
    Json(a): Json<AuthConfig>,
) -> Result<Json<AuthResponse>, ApiError> {
    let creds = auth_to_credentials(&a)
        .ok_or_else(|| ApiError::bad_request("username and password are required"))?;
    engine.login(&a.serveraddress, creds).await?;
    Ok(Json(AuthResponse {
        status: "Login Succeeded".into(),
        identity_token: String::new(),
    }))
}
