//! Platforms (`os/arch[/variant]`) and the host's default.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A target platform as the OCI image index describes one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Platform {
    /// Operating system, e.g. `linux`.
    pub os: String,
    /// Architecture in Go's spelling, e.g. `amd64`, `arm64`.
    pub architecture: String,
    /// CPU variant, e.g. `v8` for arm64, `v7` for arm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// Why a string is not a platform.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid platform {0:?}: expected OS/ARCH[/VARIANT], e.g. linux/arm64")]
pub struct PlatformError(pub String);

impl Platform {
    /// The platform of the running host.
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "arm" => "arm",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            other => other,
        };
        Platform {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: None,
        }
        .normalized()
    }

    /// Fills in the default variant as containerd does (`arm64` → `v8`, `arm` → `v7`).
    pub fn normalized(mut self) -> Platform {
        self.os = self.os.to_ascii_lowercase();
        self.architecture = match self.architecture.to_ascii_lowercase().as_str() {
            "x86_64" | "x86-64" => "amd64".into(),
            "aarch64" => "arm64".into(),
            "i386" => "386".into(),
            other => other.to_string(),
        };
        if self.architecture == "arm64" && self.variant.as_deref() == Some("v8") {
            self.variant = None;
        }
        self
    }

    /// Whether a manifest's platform satisfies this wanted one. An unspecified wanted variant
    /// accepts any variant.
    pub fn matches(&self, candidate: &Platform) -> bool {
        let c = candidate.clone().normalized();
        let w = self.clone().normalized();
        c.os == w.os
            && c.architecture == w.architecture
            && (w.variant.is_none() || w.variant == c.variant)
    }
}

impl FromStr for Platform {
    type Err = PlatformError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('/').collect();
        let bad = || PlatformError(s.to_string());
        let ok = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        let p = match parts.as_slice() {
            [os, arch] if ok(os) && ok(arch) => Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: None,
            },
            [os, arch, v] if ok(os) && ok(arch) && ok(v) => Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: Some(v.to_string()),
            },
            _ => return Err(bad()),
        };
        Ok(p.normalized())
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_match() {
        let p: Platform = "linux/arm64".parse().expect("valid");
        assert!(p.matches(&Platform {
            os: "linux".into(),
            architecture: "arm64".into(),
            variant: Some("v8".into())
        }));
        assert!(!p.matches(&Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None
        }));
        let v7: Platform = "linux/arm/v7".parse().expect("valid");
        assert!(!v7.matches(&Platform {
            os: "linux".into(),
            architecture: "arm".into(),
            variant: Some("v6".into())
        }));
        assert!("linux".parse::<Platform>().is_err());
        assert!("linux//x".parse::<Platform>().is_err());
        assert_eq!(
            "LINUX/x86_64"
                .parse::<Platform>()
                .expect("valid")
                .to_string(),
            "linux/amd64"
        );
    }
}
