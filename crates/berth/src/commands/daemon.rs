//! `berth daemon`: serve the Docker Engine API on the socket.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{bail, Result};
use berth_daemon::DaemonConfig;
use berth_engine::network::NetworkConfig;
use berth_engine::EngineConfig;
use berth_image::pull::PullOptions;
use berth_image::registry::RegistryConfig;

use crate::context::GlobalArgs;

/// Run the daemon in the foreground.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Registry (host[:port] or CIDR) that may be used over plain HTTP; 127.0.0.0/8 always may
    #[arg(long = "insecure-registry", value_name = "REGISTRY")]
    insecure_registry: Vec<String>,
    /// Mirror to try first: URL (for docker.io) or REGISTRY=URL
    #[arg(long = "registry-mirror", value_name = "[REGISTRY=]URL")]
    registry_mirror: Vec<String>,
    /// Largest uncompressed size of one layer (decompression-bomb bound), e.g. 64GB
    #[arg(long, value_name = "SIZE", default_value = "64GB")]
    max_layer_size: String,
    /// How many layers of one pull download at once
    #[arg(long, default_value_t = 6)]
    max_concurrent_downloads: usize,
    /// Longest silence from a registry before a read fails, in seconds
    #[arg(long, default_value_t = 60)]
    registry_timeout: u64,
    /// Parent cgroup of every container
    #[arg(long, default_value = "berth")]
    cgroup_parent: String,
    /// Turn on the kernel's favordynmods cgroup option (host-wide, until reboot): moving a
    /// process into a cgroup then no longer waits for an RCU grace period (5-30 ms on cgroup
    /// v1; berth already hides most of it at start), at a small cost to fork and exit
    /// everywhere on the host
    #[arg(long)]
    cgroup_favordynmods: bool,
    /// The default bridge's name; `none` disables it (containers then default to
    /// --network none)
    #[arg(short = 'b', long, env = "BERTH_BRIDGE", default_value = berth_net::DEFAULT_BRIDGE)]
    bridge: String,
    /// The default bridge's address and subnet size (ADDRESS/PREFIX); containers get
    /// addresses from that subnet
    #[arg(long, env = "BERTH_BIP", default_value = "10.213.0.1/16")]
    bip: String,
    /// How connections made on this host reach published TCP ports: `bpf` sends them
    /// straight to the container, translated at connect() by a cgroup BPF program (no NAT
    /// per packet; falls back to `nat` where the kernel refuses it); `nat` DNATs each of
    /// their packets in nftables, like connections from other machines
    #[arg(long, env = "BERTH_LOCAL_PORTS", value_name = "bpf|nat", default_value = "bpf",
          value_parser = clap::builder::PossibleValuesParser::new(["bpf", "nat"]))]
    local_ports: String,
}

/// Parses `10MB`, `1.5GiB`, `123` into bytes.
pub fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| {
        anyhow::anyhow!("invalid size {s:?}: expected a number with an optional unit, e.g. 512MB")
    })?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        "t" | "tb" => 1_000_000_000_000,
        "tib" => 1 << 40,
        other => bail!("invalid size {s:?}: unknown unit {other:?} (use B, kB, MB, GB, TB or KiB, MiB, GiB, TiB)"),
    };
    Ok((n * mult as f64) as u64)
}

/// Runs the daemon.
pub async fn run(args: Args, g: &GlobalArgs) -> Result<u8> {
    let mut mirrors: HashMap<String, Vec<String>> = HashMap::new();
    for m in &args.registry_mirror {
        let (reg, url) = match m.split_once('=') {
            Some((r, u)) => (r.to_string(), u.to_string()),
            None => ("docker.io".to_string(), m.clone()),
        };
        mirrors.entry(reg).or_default().push(url);
    }
    let config = DaemonConfig {
        engine: EngineConfig {
            root: g.root(),
            registry: RegistryConfig {
                insecure: args.insecure_registry.clone(),
                mirrors,
                read_timeout: Duration::from_secs(args.registry_timeout.max(1)),
                ..Default::default()
            },
            pull: PullOptions {
                max_layer_size: parse_size(&args.max_layer_size)?,
                max_concurrent_downloads: args.max_concurrent_downloads.max(1),
                ..Default::default()
            },
            shim_exe: None,
            cgroup_parent: args.cgroup_parent.clone(),
            cgroup_favordynmods: args.cgroup_favordynmods,
            network: NetworkConfig {
                bridge: (args.bridge != "none").then(|| args.bridge.clone()),
                local_ports: args.local_ports == "bpf",
                ..Default::default()
            }
            .with_bip(&args.bip)?,
        },
        socket: g.socket()?,
    };
    match berth_daemon::serve(config).await {
        Ok(()) => Ok(0),
        Err(e @ berth_daemon::DaemonError::Locked { .. }) => {
            crate::output::error(&e.to_string());
            Ok(crate::context::LOCKED_EXIT as u8)
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10MB").expect("ok"), 10_000_000);
        assert_eq!(parse_size("1GiB").expect("ok"), 1 << 30);
        assert_eq!(parse_size("123").expect("ok"), 123);
        assert!(parse_size("ten").is_err());
        assert!(parse_size("1XB").is_err());
    }
}
