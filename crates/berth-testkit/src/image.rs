//! Fixture images built from Debian's static busybox: real layers with whiteouts, opaque
//! directories, hardlinks, symlinks, a FIFO, xattrs, a setuid file and a long name; written as
//! an OCI image layout that `skopeo` can push, or served by the fake registry directly.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde_json::json;
use sha2::{Digest as _, Sha256};

/// How layer blobs are compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Plain tar.
    None,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
}

impl Compression {
    fn media_type(self) -> &'static str {
        match self {
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }

    fn compress(self, data: &[u8]) -> Vec<u8> {
        match self {
            Compression::None => data.to_vec(),
            Compression::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(data).expect("writing to memory");
                e.finish().expect("writing to memory")
            }
            Compression::Zstd => zstd::encode_all(data, 3).expect("writing to memory"),
        }
    }
}

/// `sha256:<hex>` of some bytes.
pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// One blob of an image.
#[derive(Clone, Debug)]
pub struct Blob {
    /// Media type.
    pub media_type: String,
    /// `sha256:...`.
    pub digest: String,
    /// The bytes.
    pub data: Vec<u8>,
}

impl Blob {
    fn new(media_type: &str, data: Vec<u8>) -> Blob {
        Blob {
            media_type: media_type.to_string(),
            digest: sha256(&data),
            data,
        }
    }

    /// The OCI descriptor JSON.
    pub fn descriptor(&self) -> serde_json::Value {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.data.len()})
    }
}

/// A single-platform image: manifest, config and layers.
#[derive(Clone, Debug)]
pub struct FixtureImage {
    /// The manifest.
    pub manifest: Blob,
    /// The config.
    pub config: Blob,
    /// The layers (compressed as chosen), base first.
    pub layers: Vec<Blob>,
    /// Uncompressed digests.
    pub diff_ids: Vec<String>,
}

impl FixtureImage {
    /// Builds an image from uncompressed layer tars.
    pub fn from_tars(
        tars: &[Vec<u8>],
        compression: Compression,
        arch: &str,
        cmd: &[&str],
    ) -> FixtureImage {
        let diff_ids: Vec<String> = tars.iter().map(|t| sha256(t)).collect();
        let layers: Vec<Blob> = tars
            .iter()
            .map(|t| Blob::new(compression.media_type(), compression.compress(t)))
            .collect();
        let config = json!({
            "created": "2026-11-01T00:00:00Z",
            "architecture": arch,
            "os": "linux",
            "config": {
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "Cmd": cmd,
                "WorkingDir": "/",
                "Labels": {"org.berth.fixture": "busybox"}
            },
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": tars.iter().map(|_| json!({"created": "2026-11-01T00:00:00Z", "created_by": "berth-testkit"})).collect::<Vec<_>>()
        });
        let config = Blob::new(
            "application/vnd.oci.image.config.v1+json",
            serde_json::to_vec(&config).expect("json"),
        );
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config.descriptor(),
            "layers": layers.iter().map(Blob::descriptor).collect::<Vec<_>>()
        });
        let manifest = Blob::new(
            "application/vnd.oci.image.manifest.v1+json",
            serde_json::to_vec(&manifest).expect("json"),
        );
        FixtureImage {
            manifest,
            config,
            layers,
            diff_ids,
        }
    }

    /// Every blob: layers, config, manifest.
    pub fn blobs(&self) -> Vec<Blob> {
        let mut v = self.layers.clone();
        v.push(self.config.clone());
        v.push(self.manifest.clone());
        v
    }
}

/// An index over several platform images.
pub fn index(images: &[(&str, &FixtureImage)]) -> Blob {
    let idx = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": images.iter().map(|(arch, img)| {
            let mut d = img.manifest.descriptor();
            d["platform"] = json!({"os": "linux", "architecture": arch});
            d
        }).collect::<Vec<_>>()
    });
    Blob::new(
        "application/vnd.oci.image.index.v1+json",
        serde_json::to_vec(&idx).expect("json"),
    )
}

/// Tar builder with the header fields tests care about.
pub struct TarBuilder {
    b: tar::Builder<Vec<u8>>,
}

impl Default for TarBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl TarBuilder {
    /// An empty archive.
    pub fn new() -> TarBuilder {
        let mut b = tar::Builder::new(Vec::new());
        b.mode(tar::HeaderMode::Complete);
        TarBuilder { b }
    }

    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h
    }

    /// A directory.
    pub fn dir(self, path: &str, mode: u32) -> Self {
        self.dir_owned(path, mode, 0, 0)
    }

    /// A directory with an owner.
    pub fn dir_owned(mut self, path: &str, mode: u32, uid: u64, gid: u64) -> Self {
        let mut h = Self::header(tar::EntryType::Directory, mode, 0);
        h.set_uid(uid);
        h.set_gid(gid);
        self.b
            .append_data(&mut h, path, std::io::empty())
            .expect("tar in memory");
        self
    }

    /// A regular file.
    pub fn file(self, path: &str, mode: u32, data: &[u8]) -> Self {
        self.file_owned(path, mode, data, 0, 0)
    }

    /// A regular file with an owner.
    pub fn file_owned(mut self, path: &str, mode: u32, data: &[u8], uid: u64, gid: u64) -> Self {
        let mut h = Self::header(tar::EntryType::Regular, mode, data.len() as u64);
        h.set_uid(uid);
        h.set_gid(gid);
        self.b
            .append_data(&mut h, path, data)
            .expect("tar in memory");
        self
    }

    /// A regular file with extended attributes (PAX `SCHILY.xattr.*`).
    pub fn file_xattr(mut self, path: &str, data: &[u8], xattrs: &[(&str, &[u8])]) -> Self {
        let keys: Vec<(String, &[u8])> = xattrs
            .iter()
            .map(|(k, v)| (format!("SCHILY.xattr.{k}"), *v))
            .collect();
        self.b
            .append_pax_extensions(keys.iter().map(|(k, v)| (k.as_str(), *v)))
            .expect("tar in memory");
        self.file(path, 0o644, data)
    }

    /// A symlink.
    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        let mut h = Self::header(tar::EntryType::Symlink, 0o777, 0);
        self.b
            .append_link(&mut h, path, target)
            .expect("tar in memory");
        self
    }

    /// A hardlink to an earlier entry.
    pub fn hardlink(mut self, path: &str, target: &str) -> Self {
        let mut h = Self::header(tar::EntryType::Link, 0o644, 0);
        self.b
            .append_link(&mut h, path, target)
            .expect("tar in memory");
        self
    }

    /// A FIFO.
    pub fn fifo(mut self, path: &str) -> Self {
        let mut h = Self::header(tar::EntryType::Fifo, 0o644, 0);
        self.b
            .append_data(&mut h, path, std::io::empty())
            .expect("tar in memory");
        self
    }

    /// A character device.
    pub fn chardev(mut self, path: &str, major: u32, minor: u32) -> Self {
        let mut h = Self::header(tar::EntryType::Char, 0o666, 0);
        h.set_device_major(major).expect("gnu header");
        h.set_device_minor(minor).expect("gnu header");
        self.b
            .append_data(&mut h, path, std::io::empty())
            .expect("tar in memory");
        self
    }

    /// An entry with a raw (unchecked) name, for hostile archives.
    pub fn raw(
        mut self,
        kind: tar::EntryType,
        name: &[u8],
        link: Option<&[u8]>,
        data: &[u8],
    ) -> Self {
        let mut h = Self::header(kind, 0o644, data.len() as u64);
        {
            let gnu = h.as_gnu_mut().expect("gnu header");
            gnu.name = [0; 100];
            gnu.name[..name.len()].copy_from_slice(name);
            if let Some(l) = link {
                gnu.linkname = [0; 100];
                gnu.linkname[..l.len()].copy_from_slice(l);
            }
        }
        h.set_cksum();
        self.b.append(&h, data).expect("tar in memory");
        self
    }

    /// The finished archive.
    pub fn finish(self) -> Vec<u8> {
        self.b.into_inner().expect("tar in memory")
    }
}

/// Where Debian's static busybox lives; fails clearly when it is missing or dynamic.
pub fn busybox_path() -> Result<PathBuf> {
    for p in ["/bin/busybox", "/usr/bin/busybox"] {
        let path = Path::new(p);
        if path.exists() {
            let out = Command::new("file").arg("-L").arg(path).output();
            if let Ok(o) = out {
                if String::from_utf8_lossy(&o.stdout).contains("dynamically linked") {
                    bail!("{p} is dynamically linked; install Debian's busybox-static");
                }
            }
            return Ok(path.to_path_buf());
        }
    }
    bail!("busybox not found; install Debian's busybox-static (apt-get install busybox-static)")
}

/// The base layer: busybox, its applet links, /etc/passwd and /etc/group, things later layers
/// remove or hide.
pub fn busybox_base_layer() -> Result<Vec<u8>> {
    let bb_path = busybox_path()?;
    let bb = std::fs::read(&bb_path).with_context(|| format!("reading {}", bb_path.display()))?;
    let list = Command::new(&bb_path)
        .arg("--list")
        .output()
        .context("running busybox --list")?;
    let applets: Vec<String> = String::from_utf8_lossy(&list.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    let mut t = TarBuilder::new()
        .dir("bin", 0o755)
        .file("bin/busybox", 0o755, &bb)
        .dir("etc", 0o755)
        .file("etc/passwd", 0o644, b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\nuser:x:1000:1000::/home/user:/bin/sh\n")
        .file("etc/group", 0o644, b"root:x:0:\nnobody:x:65534:\nuser:x:1000:\n")
        .file("etc/removeme", 0o644, b"deleted by a whiteout in layer 2\n")
        .dir("opq", 0o755)
        .file("opq/a", 0o644, b"hidden by an opaque dir\n")
        .dir("opq/sub", 0o755)
        .dir("tmp", 0o1777)
        .dir("root", 0o700)
        .dir("proc", 0o755)
        .dir("sys", 0o755)
        .dir("dev", 0o755);
    for a in applets.iter().filter(|a| a.as_str() != "busybox") {
        t = t.symlink(&format!("bin/{a}"), "busybox");
    }
    Ok(t.finish())
}

/// The second layer: whiteout, opaque dir, hardlink, symlink, FIFO, xattr, setuid, long name,
/// ownership.
pub fn feature_layer() -> Vec<u8> {
    let long = format!("data/{}/{}", "d".repeat(80), "f".repeat(120));
    TarBuilder::new()
        .dir("etc", 0o755)
        .file("etc/.wh.removeme", 0o644, b"")
        .dir("opq", 0o755)
        .file("opq/.wh..wh..opq", 0o644, b"")
        .file("opq/b", 0o644, b"visible in the opaque dir\n")
        .dir("data", 0o755)
        .file_xattr(
            "data/file",
            b"hello from layer 2\n",
            &[("user.berth", b"yes")],
        )
        .hardlink("data/link", "data/file")
        .symlink("data/sym", "file")
        .fifo("data/fifo")
        .file("data/suid", 0o4755, b"#!/bin/sh\n")
        .file_owned("data/owned", 0o640, b"uid 1000\n", 1000, 1000)
        .dir(&format!("data/{}", "d".repeat(80)), 0o755)
        .file(&long, 0o644, b"long name\n")
        .finish()
}

/// A small top layer naming the platform it was built for.
pub fn platform_layer(arch: &str) -> Vec<u8> {
    TarBuilder::new()
        .dir("etc", 0o755)
        .file("etc/platform", 0o644, format!("{arch}\n").as_bytes())
        .finish()
}

/// The standard 3-layer busybox fixture for `arch`.
pub fn busybox_image(compression: Compression, arch: &str) -> Result<FixtureImage> {
    Ok(FixtureImage::from_tars(
        &[busybox_base_layer()?, feature_layer(), platform_layer(arch)],
        compression,
        arch,
        &["sh"],
    ))
}

/// Writes images as an OCI image layout; `refs` maps a `org.opencontainers.image.ref.name` to
/// the manifest or index blob it names.
pub fn write_oci_layout(dir: &Path, blobs: &[Blob], refs: &BTreeMap<String, Blob>) -> Result<()> {
    let blob_dir = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blob_dir)?;
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    for b in blobs.iter().chain(refs.values()) {
        let hex = b.digest.trim_start_matches("sha256:");
        std::fs::write(blob_dir.join(hex), &b.data)?;
    }
    let manifests: Vec<serde_json::Value> = refs
        .iter()
        .map(|(name, b)| {
            let mut d = b.descriptor();
            d["annotations"] = json!({"org.opencontainers.image.ref.name": name});
            d
        })
        .collect();
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests});
    std::fs::write(dir.join("index.json"), serde_json::to_vec_pretty(&index)?)?;
    Ok(())
}
