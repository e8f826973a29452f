//! Content digests (`sha256:<64 hex>`), parsed once at the edge.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

/// A content digest. Only `sha256` is produced; `sha512` is parsed so that a reference carrying
/// one gets a precise "unsupported" error later instead of a parse error.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

/// The hash algorithm of a [`Digest`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// SHA-256, the only algorithm berth writes.
    Sha256,
    /// SHA-512, accepted by the OCI spec; berth refuses to fetch by it.
    Sha512,
}

/// Why a string is not a digest.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid digest {input:?}: {reason}")]
pub struct DigestError {
    /// The rejected text.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl Digest {
    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Digest {
        Digest::from_sha256(Sha256::digest(data).into())
    }

    /// A sha256 digest from raw hash bytes.
    pub fn from_sha256(bytes: [u8; 32]) -> Digest {
        Digest {
            algorithm: Algorithm::Sha256,
            hex: hex::encode(bytes),
        }
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The lower-case hex part.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The first 12 hex characters, as Docker shows IDs.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| DigestError {
            input: s.to_string(),
            reason,
        };
        let (algo, hex) = s
            .split_once(':')
            .ok_or_else(|| err("expected ALGORITHM:HEX"))?;
        let (algorithm, len) = match algo {
            "sha256" => (Algorithm::Sha256, 64),
            "sha512" => (Algorithm::Sha512, 128),
            _ => return Err(err("unsupported algorithm (expected sha256)")),
        };
        if hex.len() != len {
            return Err(err("wrong length for its algorithm"));
        }
        if !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(err("hex part must be lower-case hexadecimal"));
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_string(),
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let algo = match self.algorithm {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        };
        write!(f, "{algo}:{}", self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An incremental sha256 hasher that also counts bytes.
#[derive(Default, Clone)]
pub struct DigestHasher {
    inner: Sha256,
    len: u64,
}

impl DigestHasher {
    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.inner.update(data);
        self.len += data.len() as u64;
    }

    /// Bytes fed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was fed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The digest of everything fed.
    pub fn finish(self) -> Digest {
        Digest::from_sha256(self.inner.finalize().into())
    }
}

/// The chain ID of a layer stack, as the OCI image spec defines it:
/// `chain(L0) = diff(L0)`, `chain(Ln) = sha256(chain(Ln-1) + " " + diff(Ln))`.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for diff in diff_ids {
        let next = match out.last() {
            None => diff.clone(),
            Some(prev) => Digest::of(format!("{prev} {diff}").as_bytes()),
        };
        out.push(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let d = Digest::of(b"hello");
        let s = d.to_string();
        assert_eq!(
            s,
            "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(s.parse::<Digest>().expect("valid"), d);
        assert_eq!(d.short(), "2cf24dba5fb0");
    }

    #[test]
    fn rejects_bad_digests() {
        for bad in [
            "sha256",
            "md5:abcd",
            "sha256:ABCDEF",
            "sha256:12",
            &format!("sha256:{}", "g".repeat(64)),
        ] {
            assert!(bad.parse::<Digest>().is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn chain_ids_follow_the_spec() {
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        let chain = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(chain[0], a);
        assert_eq!(chain[1], Digest::of(format!("{a} {b}").as_bytes()));
    }

    #[test]
    fn hasher_matches_one_shot() {
        let mut h = DigestHasher::default();
        h.update(b"hel");
        h.update(b"lo");
        assert_eq!(h.len(), 5);
        assert_eq!(h.finish(), Digest::of(b"hello"));
    }
}
