//! Registry client: Docker Registry HTTP API v2 / OCI distribution, with anonymous, basic and
//! bearer-token auth, mirrors, plain HTTP for loopback and insecure registries, and retries.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, RANGE, WWW_AUTHENTICATE};
use reqwest::{Method, Response, StatusCode};
use serde::Deserialize;

use crate::digest::Digest;
use crate::error::ImageError;
use crate::manifest::ACCEPTED_MANIFESTS;
use crate::reference::Reference;

/// Largest manifest berth reads (containerd uses the same bound).
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;
const ATTEMPTS: u32 = 4;

/// Registry credentials, as the client sends them in `X-Registry-Auth`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password or access token.
    pub password: String,
}

/// Registry access settings, from the daemon's configuration.
#[derive(Clone, Debug)]
pub struct RegistryConfig {
    /// Hosts (`host[:port]`) or CIDR ranges that may be spoken to over plain HTTP.
    pub insecure: Vec<String>,
    /// Mirrors per registry domain (`docker.io` → `["https://mirror.example"]`), tried in order
    /// before the registry itself.
    pub mirrors: HashMap<String, Vec<String>>,
    /// Longest wait for any single read from a registry.
    pub read_timeout: Duration,
    /// First delay between retries; doubles each time.
    pub retry_backoff: Duration,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            insecure: Vec::new(),
            mirrors: HashMap::new(),
            read_timeout: Duration::from_secs(60),
            retry_backoff: Duration::from_millis(200),
        }
    }
}

/// One base URL to talk to for a repository: a mirror or the registry itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// `https://host[:port]` or `http://host[:port]`.
    pub base: String,
    /// Whether https failed over to http is allowed for this endpoint.
    pub allow_http: bool,
    /// Whether this is a mirror (mirror failures fall through to the next endpoint).
    pub mirror: bool,
}

/// The registry client. One per daemon; it caches tokens and the scheme each host speaks.
pub struct RegistryClient {
    http: reqwest::Client,
    config: RegistryConfig,
    /// Authorization headers by (host, scope, who): never shared between different credentials,
    /// so one client's login never lets another client in.
    tokens: Mutex<HashMap<(String, String, String), String>>,
    /// Hosts found to speak plain HTTP.
    plain: Mutex<HashMap<String, bool>>,
}

fn is_loopback_host(host: &str) -> bool {
    let h = host
        .rsplit_once(':')
        .filter(|(h, p)| !h.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(h, _)| h);
    let h = h.trim_start_matches('[').trim_end_matches(']');
    h == "localhost"
        || h.parse::<IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

fn cidr_contains(cidr: &str, host: &str) -> bool {
    let Some((net, bits)) = cidr.split_once('/') else {
        return false;
    };
    let h = host.rsplit_once(':').map_or(host, |(h, _)| h);
    let (Ok(net), Ok(bits), Ok(ip)) = (
        net.parse::<IpAddr>(),
        bits.parse::<u32>(),
        h.parse::<IpAddr>(),
    ) else {
        return false;
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

/// Parses a `WWW-Authenticate` challenge into its scheme and parameters.
pub fn parse_challenge(header: &str) -> (String, HashMap<String, String>) {
    let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    let mut params = HashMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars
            .by_ref()
            .take_while(|c| *c != '=')
            .collect::<String>()
            .trim()
            .to_ascii_lowercase();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = chars
                .by_ref()
                .take_while(|c| *c != ',')
                .collect::<String>()
                .trim()
                .to_string();
        }
        params.insert(key, value);
    }
    (scheme.to_ascii_lowercase(), params)
}

#[derive(Deserialize)]
struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
}

fn transient(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
}

impl RegistryClient {
    /// A client with these settings.
    pub fn new(config: RegistryConfig) -> Result<RegistryClient, ImageError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(15))
            .read_timeout(config.read_timeout)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| ImageError::Registry {
                registry: String::new(),
                message: "building HTTP client".into(),
                source: Some(e),
            })?;
        Ok(RegistryClient {
            http,
            config,
            tokens: Mutex::new(HashMap::new()),
            plain: Mutex::new(HashMap::new()),
        })
    }

    /// The settings.
    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    fn insecure_allowed(&self, host: &str) -> bool {
        is_loopback_host(host)
            || self
                .config
                .insecure
                .iter()
                .any(|i| i == host || cidr_contains(i, host))
    }

    /// The endpoints to try for a registry domain: its mirrors, then itself.
    pub fn endpoints(&self, reference: &Reference) -> Vec<Endpoint> {
        let mut out: Vec<Endpoint> = self
            .config
            .mirrors
            .get(&reference.domain)
            .into_iter()
            .flatten()
            .map(|m| {
                let base = m.trim_end_matches('/').to_string();
                let base = if base.contains("://") {
                    base
                } else {
                    format!("https://{base}")
                };
                let host = base.split("://").nth(1).unwrap_or_default().to_string();
                Endpoint {
                    allow_http: self.insecure_allowed(&host),
                    base,
                    mirror: true,
                }
            })
            .collect();
        let host = reference.endpoint_host();
        out.push(Endpoint {
            base: format!("https://{host}"),
            allow_http: self.insecure_allowed(host),
            mirror: false,
        });
        out
    }

    fn base_for(&self, ep: &Endpoint) -> String {
        if ep.allow_http && ep.base.starts_with("https://") {
            let host = &ep.base["https://".len()..];
            if self
                .plain
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(host)
                .copied()
                .unwrap_or(false)
            {
                return format!("http://{host}");
            }
        }
        ep.base.clone()
    }

    fn registry_error(
        host: &str,
        message: impl Into<String>,
        source: Option<reqwest::Error>,
    ) -> ImageError {
        ImageError::Registry {
            registry: host.to_string(),
            message: message.into(),
            source,
        }
    }

    /// Sends one request, handling the scheme fallback, auth challenges and transient retries.
    async fn send(
        &self,
        ep: &Endpoint,
        method: Method,
        path: &str,
        headers: HeaderMap,
        repository: &str,
        creds: Option<&Credentials>,
    ) -> Result<Response, ImageError> {
        let host = ep.base.split("://").nth(1).unwrap_or(&ep.base).to_string();
        let scope = format!("repository:{repository}:pull");
        let who = creds
            .map(|c| {
                format!(
                    "{}:{}",
                    c.username,
                    crate::digest::Digest::of(c.password.as_bytes())
                )
            })
            .unwrap_or_default();
        let key = (host.clone(), scope.clone(), who);
        let mut attempt = 0;
        let mut challenged = false;
        loop {
            attempt += 1;
            let base = self.base_for(ep);
            let url = format!("{base}{path}");
            let mut req = self
                .http
                .request(method.clone(), &url)
                .headers(headers.clone());
            let cached = self
                .tokens
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&key)
                .cloned();
            if let Some(auth) = cached {
                req = req.header(AUTHORIZATION, auth);
            }
            let result = req.send().await;
            let resp = match result {
                Ok(r) => r,
                Err(e) => {
                    let tls_or_connect = e.is_connect() || e.is_request();
                    if base.starts_with("https://") && ep.allow_http && tls_or_connect {
                        tracing::debug!(
                            host,
                            "https failed; trying plain http for an insecure registry"
                        );
                        self.plain
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(host.clone(), true);
                        continue;
                    }
                    if attempt < ATTEMPTS && (e.is_connect() || e.is_timeout() || e.is_request()) {
                        self.backoff(attempt).await;
                        continue;
                    }
                    return Err(Self::registry_error(
                        &host,
                        format!("{method} {url} failed"),
                        Some(e),
                    ));
                }
            };
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED && !challenged {
                challenged = true;
                let challenge = resp
                    .headers()
                    .get(WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let auth = self
                    .answer_challenge(&host, &challenge, &scope, creds)
                    .await?;
                self.tokens
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key.clone(), auth);
                continue;
            }
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                let detail = error_detail(resp).await;
                return Err(ImageError::Unauthorized {
                    registry: host,
                    repository: repository.to_string(),
                    detail,
                });
            }
            if transient(status) && attempt < ATTEMPTS {
                tracing::debug!(host, %status, attempt, "transient registry error; retrying");
                self.backoff(attempt).await;
                continue;
            }
            return Ok(resp);
        }
    }

    async fn backoff(&self, attempt: u32) {
        let d = self.config.retry_backoff * 2u32.saturating_pow(attempt.saturating_sub(1));
        tokio::time::sleep(d.min(Duration::from_secs(5))).await;
    }

    async fn answer_challenge(
        &self,
        host: &str,
        challenge: &str,
        scope: &str,
        creds: Option<&Credentials>,
    ) -> Result<String, ImageError> {
        let (scheme, params) = parse_challenge(challenge);
        let unauthorized = |detail: &str| ImageError::Unauthorized {
            registry: host.to_string(),
            repository: scope
                .trim_start_matches("repository:")
                .trim_end_matches(":pull")
                .to_string(),
            detail: detail.to_string(),
        };
        match scheme.as_str() {
            "basic" => {
                let c = creds.ok_or_else(|| unauthorized("authentication required"))?;
                Ok(basic_header(c))
            }
            "bearer" => {
                let realm = params
                    .get("realm")
                    .ok_or_else(|| unauthorized("bearer challenge without a realm"))?;
                let mut url = reqwest::Url::parse(realm).map_err(|_| {
                    Self::registry_error(host, format!("invalid token realm {realm:?}"), None)
                })?;
                {
                    let mut q = url.query_pairs_mut();
                    if let Some(s) = params.get("service") {
                        q.append_pair("service", s);
                    }
                    q.append_pair(
                        "scope",
                        params.get("scope").map(String::as_str).unwrap_or(scope),
                    );
                }
                let mut req = self.http.get(url.clone());
                if let Some(c) = creds {
                    req = req.basic_auth(&c.username, Some(&c.password));
                }
                let resp = req.send().await.map_err(|e| {
                    Self::registry_error(host, format!("fetching token from {realm}"), Some(e))
                })?;
                if resp.status() == StatusCode::UNAUTHORIZED
                    || resp.status() == StatusCode::FORBIDDEN
                {
                    return Err(unauthorized("the token server refused the credentials"));
                }
                if !resp.status().is_success() {
                    return Err(Self::registry_error(
                        host,
                        format!("token server {realm} answered {}", resp.status()),
                        None,
                    ));
                }
                let body: TokenResponse = resp.json().await.map_err(|e| {
                    Self::registry_error(
                        host,
                        format!("token server {realm} sent malformed JSON"),
                        Some(e),
                    )
                })?;
                let token = body.token.or(body.access_token).filter(|t| !t.is_empty());
                let token = token.ok_or_else(|| {
                    Self::registry_error(host, format!("token server {realm} sent no token"), None)
                })?;
                Ok(format!("Bearer {token}"))
            }
            _ => Err(unauthorized(
                "the registry asked for an unsupported authentication scheme",
            )),
        }
    }

    /// Fetches a manifest by tag or digest. Returns the body, its content type and its digest
    /// (verified against the requested digest when pinned).
    pub async fn get_manifest(
        &self,
        reference: &Reference,
        manifest_ref: &str,
        creds: Option<&Credentials>,
    ) -> Result<(Vec<u8>, Option<String>, Digest), ImageError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            ACCEPT,
            HeaderValue::from_str(&ACCEPTED_MANIFESTS.join(", ")).expect("static header value"),
        );
        let path = format!("/v2/{}/manifests/{manifest_ref}", reference.path);
        let resp = self
            .first_ok(reference, Method::GET, &path, headers, creds, "manifest")
            .await?;
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let header_digest = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let host = reference.endpoint_host().to_string();
        if resp
            .content_length()
            .is_some_and(|l| l > MAX_MANIFEST_BYTES as u64)
        {
            return Err(Self::registry_error(
                &host,
                format!("manifest {manifest_ref} is larger than {MAX_MANIFEST_BYTES} bytes"),
                None,
            ));
        }
        let mut body = Vec::new();
        let mut resp = resp;
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| Self::registry_error(&host, "reading manifest", Some(e)))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_MANIFEST_BYTES {
                return Err(Self::registry_error(
                    &host,
                    format!("manifest {manifest_ref} is larger than {MAX_MANIFEST_BYTES} bytes"),
                    None,
                ));
            }
        }
        let actual = Digest::of(&body);
        if let Ok(wanted) = manifest_ref.parse::<Digest>() {
            if wanted != actual {
                return Err(ImageError::DigestMismatch {
                    what: "manifest",
                    expected: wanted,
                    actual,
                    size: body.len() as u64,
                });
            }
        } else if let Some(h) = header_digest.and_then(|h| h.parse::<Digest>().ok()) {
            if h != actual {
                return Err(ImageError::DigestMismatch {
                    what: "manifest",
                    expected: h,
                    actual,
                    size: body.len() as u64,
                });
            }
        }
        Ok((body, content_type, actual))
    }

    /// Starts fetching a blob from byte `offset`. Returns the response and the offset it
    /// actually starts at (0 when the registry ignored the range).
    pub async fn get_blob(
        &self,
        reference: &Reference,
        digest: &Digest,
        offset: u64,
        creds: Option<&Credentials>,
    ) -> Result<(Response, u64), ImageError> {
        let mut headers = HeaderMap::new();
        if offset > 0 {
            headers.insert(
                RANGE,
                HeaderValue::from_str(&format!("bytes={offset}-")).expect("numeric header value"),
            );
        }
        let path = format!("/v2/{}/blobs/{digest}", reference.path);
        let resp = self
            .first_ok(reference, Method::GET, &path, headers, creds, "blob")
            .await?;
        let start = if resp.status() == StatusCode::PARTIAL_CONTENT {
            offset
        } else {
            0
        };
        Ok((resp, start))
    }

    /// Lists a repository's tags.
    pub async fn list_tags(
        &self,
        reference: &Reference,
        creds: Option<&Credentials>,
    ) -> Result<Vec<String>, ImageError> {
        #[derive(Deserialize)]
        struct Tags {
            tags: Option<Vec<String>>,
        }
        let path = format!("/v2/{}/tags/list", reference.path);
        let resp = self
            .first_ok(
                reference,
                Method::GET,
                &path,
                HeaderMap::new(),
                creds,
                "tag list",
            )
            .await?;
        let host = reference.endpoint_host().to_string();
        let t: Tags = resp
            .json()
            .await
            .map_err(|e| Self::registry_error(&host, "malformed tag list", Some(e)))?;
        Ok(t.tags.unwrap_or_default())
    }

    /// Checks credentials against a registry's `/v2/` endpoint (for `login`).
    pub async fn check_login(&self, domain: &str, creds: &Credentials) -> Result<(), ImageError> {
        let reference = Reference {
            domain: domain.to_string(),
            path: "library/x".into(),
            tag: None,
            digest: None,
        };
        let host = reference.endpoint_host().to_string();
        let ep = Endpoint {
            base: format!("https://{host}"),
            allow_http: self.insecure_allowed(&host),
            mirror: false,
        };
        // /v2/ challenges with the registry's scheme; answer it with the credentials
        let resp = self
            .send(&ep, Method::GET, "/v2/", HeaderMap::new(), "", Some(creds))
            .await?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(ImageError::Unauthorized {
                registry: host,
                repository: String::new(),
                detail: format!("login answered {}", resp.status()),
            })
        }
    }

    /// Tries each endpoint (mirrors first) and returns the first successful response.
    async fn first_ok(
        &self,
        reference: &Reference,
        method: Method,
        path: &str,
        headers: HeaderMap,
        creds: Option<&Credentials>,
        what: &str,
    ) -> Result<Response, ImageError> {
        let endpoints = self.endpoints(reference);
        let mut last_err = None;
        for ep in &endpoints {
            let host = ep.base.split("://").nth(1).unwrap_or(&ep.base).to_string();
            let result = self
                .send(
                    ep,
                    method.clone(),
                    path,
                    headers.clone(),
                    &reference.path,
                    creds,
                )
                .await;
            let err = match result {
                Ok(resp) if resp.status().is_success() => return Ok(resp),
                Ok(resp) if resp.status() == StatusCode::NOT_FOUND => ImageError::RemoteNotFound {
                    registry: host,
                    what: format!(
                        "{what} {}{}",
                        reference.repository(),
                        path.rsplit_once('/')
                            .map(|(_, r)| format!(" ({r})"))
                            .unwrap_or_default()
                    ),
                },
                Ok(resp) => {
                    let status = resp.status();
                    let detail = error_detail(resp).await;
                    Self::registry_error(
                        &host,
                        format!("{method} {path} answered {status}: {detail}"),
                        None,
                    )
                }
                Err(e) => e,
            };
            if ep.mirror {
                tracing::warn!(mirror = ep.base, error = %err, "mirror failed; trying the next endpoint");
            }
            last_err = Some(err);
        }
        Err(last_err.expect("the registry itself is always an endpoint"))
    }
}

fn basic_header(c: &Credentials) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.username, c.password))
    )
}

/// The message of a registry error body (`{"errors":[{"code","message"}]}`), or its status.
async fn error_detail(resp: Response) -> String {
    #[derive(Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(Deserialize)]
    struct ErrorEntry {
        code: Option<String>,
        message: Option<String>,
    }
    let status = resp.status();
    let body = resp.bytes().await.unwrap_or_default();
    match serde_json::from_slice::<Errors>(&body) {
        Ok(e) if !e.errors.is_empty() => e
            .errors
            .iter()
            .map(|x| {
                format!(
                    "{}: {}",
                    x.code.as_deref().unwrap_or("ERROR"),
                    x.message.as_deref().unwrap_or("")
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_parsing() {
        let (s, p) = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(s, "bearer");
        assert_eq!(p["realm"], "https://auth.example/token");
        assert_eq!(p["service"], "registry.example");
        assert_eq!(p["scope"], "repository:a/b:pull,push");
        let (s, p) = parse_challenge(r#"Basic realm="Registry Realm""#);
        assert_eq!(s, "basic");
        assert_eq!(p["realm"], "Registry Realm");
    }

    #[test]
    fn insecure_hosts() {
        let c = RegistryClient::new(RegistryConfig {
            insecure: vec!["myreg:5000".into(), "10.0.0.0/8".into()],
            ..Default::default()
        })
        .expect("client");
        assert!(c.insecure_allowed("127.0.0.1:5000"));
        assert!(c.insecure_allowed("127.8.9.1"));
        assert!(c.insecure_allowed("localhost:1234"));
        assert!(c.insecure_allowed("[::1]:5000"));
        assert!(c.insecure_allowed("myreg:5000"));
        assert!(c.insecure_allowed("10.1.2.3:5000"));
        assert!(!c.insecure_allowed("myreg"));
        assert!(!c.insecure_allowed("docker.io"));
        assert!(!c.insecure_allowed("11.0.0.1"));
    }

    #[test]
    fn mirrors_come_first() {
        let mut mirrors = HashMap::new();
        mirrors.insert("docker.io".to_string(), vec!["127.0.0.1:5001".to_string()]);
        let c = RegistryClient::new(RegistryConfig {
            mirrors,
            ..Default::default()
        })
        .expect("client");
        let r = Reference::parse_normalized("busybox").expect("valid");
        let eps = c.endpoints(&r);
        assert_eq!(eps.len(), 2);
        assert_eq!(eps[0].base, "https://127.0.0.1:5001");
        assert!(eps[0].mirror && eps[0].allow_http);
        assert_eq!(eps[1].base, "https://registry-1.docker.io");
        assert!(!eps[1].allow_http);
    }
}
