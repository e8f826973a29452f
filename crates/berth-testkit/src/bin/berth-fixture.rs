//! `berth-fixture oci-layout DIR [--compression gzip|zstd|none]`: writes the busybox fixture
//! image as an OCI layout (ref `latest`, plus `multi`, an amd64+arm64 index) for skopeo to push.
//! Used by the README demo and the benchmarks.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Result};
use berth_testkit::image::{busybox_image, index, write_oci_layout, Compression};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(cmd), Some(dir)) = (args.first(), args.get(1)) else {
        bail!("usage: berth-fixture oci-layout DIR [--compression gzip|zstd|none]");
    };
    if cmd != "oci-layout" {
        bail!("unknown command {cmd:?}; usage: berth-fixture oci-layout DIR [--compression gzip|zstd|none]");
    }
    let compression = match args
        .iter()
        .position(|a| a == "--compression")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
    {
        None | Some("gzip") => Compression::Gzip,
        Some("zstd") => Compression::Zstd,
        Some("none") => Compression::None,
        Some(other) => bail!("unknown compression {other:?}: use gzip, zstd or none"),
    };
    let amd = busybox_image(compression, "amd64")?;
    let arm = busybox_image(compression, "arm64")?;
    let idx = index(&[("amd64", &amd), ("arm64", &arm)]);
    let mut refs = BTreeMap::new();
    refs.insert("latest".to_string(), amd.manifest.clone());
    refs.insert("multi".to_string(), idx);
    let mut blobs = amd.blobs();
    blobs.extend(arm.blobs());
    write_oci_layout(&PathBuf::from(dir), &blobs, &refs)?;
    Ok(())
}
