//! Image references with Docker's normalization: `busybox` is
//! `docker.io/library/busybox:latest`; `name:tag@digest`, registries with ports.

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;

/// The registry that short names resolve to.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// Where `docker.io` is actually served.
pub const DOCKER_HUB_ENDPOINT: &str = "registry-1.docker.io";
/// The tag used when a reference names none.
pub const DEFAULT_TAG: &str = "latest";
const MAX_NAME_LEN: usize = 255;

/// A normalized image reference.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// Registry host with optional port, e.g. `docker.io`, `127.0.0.1:5000`.
    pub domain: String,
    /// Repository path inside the registry, e.g. `library/busybox`.
    pub path: String,
    /// The tag; `None` only when the reference is by digest alone.
    pub tag: Option<String>,
    /// The digest, when pinned.
    pub digest: Option<Digest>,
}

/// Why a string is not a valid reference.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid reference format {input:?}: {reason}")]
pub struct ReferenceError {
    /// The rejected text.
    pub input: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Reference {
    /// `domain/path`, fully qualified, e.g. `docker.io/library/busybox`.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// Docker's short form of the repository: `busybox`, `user/app`, `127.0.0.1:5000/app`.
    pub fn familiar_repository(&self) -> String {
        familiar_name(&self.repository())
    }

    /// The canonical tagged form `domain/path:tag` (`None` when pinned by digest only).
    pub fn tagged(&self) -> Option<String> {
        self.tag
            .as_ref()
            .map(|t| format!("{}:{t}", self.repository()))
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        }
    }

    /// The registry endpoint host to talk to (`registry-1.docker.io` for Docker Hub).
    pub fn endpoint_host(&self) -> &str {
        if self.domain == DEFAULT_DOMAIN {
            DOCKER_HUB_ENDPOINT
        } else {
            &self.domain
        }
    }

    /// What to ask the registry for: the digest if pinned, else the tag.
    pub fn manifest_ref(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => DEFAULT_TAG.to_string(),
        }
    }

    /// Parses with defaults applied (tag `latest` when neither tag nor digest is given).
    pub fn parse_normalized(s: &str) -> Result<Reference, ReferenceError> {
        let mut r: Reference = s.parse()?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(DEFAULT_TAG.to_string());
        }
        Ok(r)
    }
}

/// Shortens a fully qualified repository (`docker.io/library/x`) to Docker's familiar form.
pub fn familiar_name(full: &str) -> String {
    match full.strip_prefix("docker.io/") {
        Some(rest) => rest
            .strip_prefix("library/")
            .filter(|r| !r.contains('/'))
            .unwrap_or(rest)
            .to_string(),
        None => full.to_string(),
    }
}

/// Shortens `domain/path:tag` or `domain/path@digest` to the familiar form.
pub fn familiar_string(full: &str) -> String {
    let split = full.rfind('@').or_else(|| {
        let colon = full.rfind(':')?;
        (!full[colon..].contains('/')).then_some(colon)
    });
    match split {
        Some(i) => format!("{}{}", familiar_name(&full[..i]), &full[i..]),
        None => familiar_name(full),
    }
}

fn is_alnum_lower(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// One path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum_lower(b[0]) || !is_alnum_lower(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum_lower(b[i]) {
            i += 1;
            continue;
        }
        // a separator run
        let start = i;
        while i < b.len() && !is_alnum_lower(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || d.starts_with('[') => (h, Some(p)),
        _ => (d, None),
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    if host.starts_with('[') && host.ends_with(']') {
        return host[1..host.len() - 1]
            .parse::<std::net::Ipv6Addr>()
            .is_ok();
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&x| x.is_ascii_alphanumeric() || x == b'_' || x == b'.' || x == b'-')
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| ReferenceError {
            input: s.to_string(),
            reason: reason.to_string(),
        };
        if s.is_empty() {
            return Err(err("empty reference"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (
                r,
                Some(
                    d.parse::<Digest>()
                        .map_err(|e| err(&format!("bad digest: {}", e.reason)))?,
                ),
            ),
            None => (s, None),
        };
        // a tag is after the last ':' that follows the last '/'
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(t) = tag {
            if !valid_tag(t) {
                return Err(err("tag must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"));
            }
        }
        if name.is_empty() {
            return Err(err("empty repository name"));
        }
        if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) && tag.is_none() {
            return Err(err(
                "cannot specify 64-byte hexadecimal strings as a repository name",
            ));
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.')
                    || first.contains(':')
                    || first == "localhost"
                    || first.bytes().any(|b| b.is_ascii_uppercase()) =>
            {
                (first.to_string(), rest.to_string())
            }
            _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
        };
        let domain = if domain == "index.docker.io" {
            DEFAULT_DOMAIN.to_string()
        } else {
            domain
        };
        if !valid_domain(&domain) {
            return Err(err("invalid registry host"));
        }
        if path.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(err("repository name must be lowercase"));
        }
        if !path.split('/').all(valid_component) {
            return Err(err(
                "repository path components must be lower-case letters, digits and single separators (. _ __ -)",
            ));
        }
        let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        if domain.len() + 1 + path.len() > MAX_NAME_LEN {
            return Err(err(
                "repository name must not be longer than 255 characters",
            ));
        }
        Ok(Reference {
            domain,
            path,
            tag: tag.map(str::to_string),
            digest,
        })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.repository())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        Reference::parse_normalized(s).expect(s).to_string()
    }

    #[test]
    fn normalizes_like_docker() {
        assert_eq!(norm("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(norm("user/app:1.0"), "docker.io/user/app:1.0");
        assert_eq!(
            norm("index.docker.io/library/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(norm("localhost/app"), "localhost/app:latest");
        assert_eq!(norm("localhost:5000/a/b:t"), "localhost:5000/a/b:t");
        assert_eq!(norm("127.0.0.1:5000/app"), "127.0.0.1:5000/app:latest");
        assert_eq!(
            norm("quay.io/org/x.y_z__w-v"),
            "quay.io/org/x.y_z__w-v:latest"
        );
        assert_eq!(norm("[::1]:5000/app:v1"), "[::1]:5000/app:v1");
    }

    #[test]
    fn digests_and_tags() {
        let d = Digest::of(b"x");
        let r = Reference::parse_normalized(&format!("busybox@{d}")).expect("valid");
        assert_eq!(r.tag, None);
        assert_eq!(r.digest, Some(d.clone()));
        assert_eq!(r.manifest_ref(), d.to_string());
        let r = Reference::parse_normalized(&format!("busybox:1.36@{d}")).expect("valid");
        assert_eq!(r.tag.as_deref(), Some("1.36"));
        assert_eq!(
            r.manifest_ref(),
            d.to_string(),
            "the digest wins over the tag"
        );
    }

    #[test]
    fn familiar_forms() {
        let r = Reference::parse_normalized("busybox").expect("valid");
        assert_eq!(r.familiar_repository(), "busybox");
        assert_eq!(
            familiar_string("docker.io/library/busybox:latest"),
            "busybox:latest"
        );
        assert_eq!(familiar_string("docker.io/user/app:1"), "user/app:1");
        assert_eq!(
            familiar_string("127.0.0.1:5000/app:1"),
            "127.0.0.1:5000/app:1"
        );
        assert_eq!(familiar_string("127.0.0.1:5000/app"), "127.0.0.1:5000/app");
        assert_eq!(r.endpoint_host(), "registry-1.docker.io");
    }

    #[test]
    fn rejects_invalid() {
        for bad in [
            "",
            "Busybox",
            "busybox:",
            "busybox:-tag",
            "bu//sybox",
            "busybox@sha256:123",
            "-busybox",
            "busy..box",
            "a:b:c",
            &"a".repeat(256),
            &"a".repeat(64).replace('a', "f"),
            "host:port/x",
        ] {
            assert!(
                bad.parse::<Reference>().is_err(),
                "{bad:?} should be refused"
            );
        }
    }
}
