//! `berth login` / `berth logout`, and credentials in Docker's config.json format.
//!
//! berth writes `$BERTH_CONFIG/config.json` (default `~/.berth/config.json`) and reads it first,
//! then Docker's (`$DOCKER_CONFIG/config.json`, default `~/.docker/config.json`) and its `auths`.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use berth_api::system::{AuthConfig, AuthResponse};
use berth_engine::images::normalize_server;
use hyper::Method;
use serde_json::{json, Value};

use crate::context::GlobalArgs;
use crate::{output, EnvVars};

/// Docker Hub's key in config.json.
const HUB_KEY: &str = "https://index.docker.io/v1/";

/// Log in to a registry.
#[derive(clap::Args, Debug)]
pub struct LoginArgs {
    /// Registry server (default: Docker Hub)
    server: Option<String>,
    /// Username
    #[arg(short, long)]
    username: Option<String>,
    /// Password
    #[arg(short, long)]
    password: Option<String>,
    /// Take the password from stdin
    #[arg(long)]
    password_stdin: bool,
}

/// Log out from a registry.
#[derive(clap::Args, Debug)]
pub struct LogoutArgs {
    /// Registry server (default: Docker Hub)
    server: Option<String>,
}

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"))
}

fn berth_config_path() -> PathBuf {
    std::env::var_os(EnvVars::BERTH_CONFIG)
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join(".berth"))
        .join("config.json")
}

fn docker_config_path() -> PathBuf {
    std::env::var_os(EnvVars::DOCKER_CONFIG)
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join(".docker"))
        .join("config.json")
}

fn key_for(domain: &str) -> String {
    if domain == "docker.io" {
        HUB_KEY.to_string()
    } else {
        domain.to_string()
    }
}

fn read_config(path: &PathBuf) -> Value {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| json!({}))
}

/// Finds stored credentials for a registry domain, berth's file first, then Docker's.
pub fn find_auth(domain: &str) -> Option<(String, String)> {
    let key = key_for(domain);
    for path in [berth_config_path(), docker_config_path()] {
        let cfg = read_config(&path);
        let Some(auths) = cfg.get("auths").and_then(Value::as_object) else {
            continue;
        };
        for (k, v) in auths {
            if normalize_server(k) != normalize_server(&key) {
                continue;
            }
            let Some(auth) = v.get("auth").and_then(Value::as_str) else {
                continue;
            };
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth)
                .ok()?;
            let s = String::from_utf8(decoded).ok()?;
            let (u, p) = s.split_once(':')?;
            return Some((u.to_string(), p.to_string()));
        }
    }
    None
}

/// The `X-Registry-Auth` header value for a registry, if credentials are stored.
pub fn registry_auth_header(domain: &str) -> Option<String> {
    let (username, password) = find_auth(domain)?;
    let a = AuthConfig {
        username,
        password,
        serveraddress: key_for(domain),
        ..Default::default()
    };
    Some(base64::engine::general_purpose::URL_SAFE.encode(serde_json::to_vec(&a).ok()?))
}

fn write_config(path: &PathBuf, cfg: &Value) -> Result<()> {
    let dir = path.parent().context("config path has a parent")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(cfg)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Runs `login`.
pub async fn login(args: LoginArgs, g: &GlobalArgs) -> Result<u8> {
    let domain = normalize_server(args.server.as_deref().unwrap_or(""));
    let username = match args.username {
        Some(u) => u,
        None => bail!(
            "username is required: berth login -u USER [--password-stdin] {}",
            args.server.unwrap_or_default()
        ),
    };
    let password = if args.password_stdin {
        if args.password.is_some() {
            bail!("--password and --password-stdin are mutually exclusive");
        }
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading the password from stdin")?;
        s.trim_end_matches(['\n', '\r']).to_string()
    } else {
        match args.password {
            Some(p) => {
                output::err(
                    "WARNING! Using --password via the CLI is insecure. Use --password-stdin.",
                );
                p
            }
            None => bail!("password is required: use --password-stdin"),
        }
    };
    let client = g.client().await?;
    let body = AuthConfig {
        username: username.clone(),
        password: password.clone(),
        serveraddress: key_for(&domain),
        ..Default::default()
    };
    let resp: AuthResponse = client
        .json(Method::POST, "/auth", Some(serde_json::to_vec(&body)?))
        .await?;
    let path = berth_config_path();
    let mut cfg = read_config(&path);
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    cfg["auths"][key_for(&domain)] = json!({ "auth": auth });
    write_config(&path, &cfg)?;
    output::out(&resp.status);
    Ok(0)
}

/// Runs `logout`.
pub async fn logout(args: LogoutArgs, _g: &GlobalArgs) -> Result<u8> {
    let domain = normalize_server(args.server.as_deref().unwrap_or(""));
    let path = berth_config_path();
    let mut cfg = read_config(&path);
    let key = key_for(&domain);
    let removed = cfg
        .get_mut("auths")
        .and_then(Value::as_object_mut)
        .map(|a| a.remove(&key).is_some())
        .unwrap_or(false);
    if removed {
        write_config(&path, &cfg)?;
        output::out(&format!("Removing login credentials for {key}"));
    } else {
        output::out(&format!("Not logged in to {key}"));
    }
    Ok(0)
}
