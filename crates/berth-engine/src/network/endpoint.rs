//! A container's endpoint on a network as recorded (`network.json`), and the parsing of the
//! endpoint and port settings of a create request.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use berth_api::containers::{CreateRequest, EndpointSettings, PortBinding};
use berth_net::{NetworkError, PortMapping, PortSpec, Protocol};
use berth_runtime::error_chain;
use serde::{Deserialize, Serialize};

use crate::EngineError;

/// One published port as recorded (and shown as `NetworkSettings.Ports`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PublishedPort {
    /// Host address; `None`: every address (0.0.0.0).
    pub host_ip: Option<Ipv4Addr>,
    /// Host port.
    pub host_port: u16,
    /// Container port.
    pub container_port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
}

impl From<PortMapping> for PublishedPort {
    fn from(m: PortMapping) -> Self {
        Self {
            host_ip: m.host_ip,
            host_port: m.host_port,
            container_port: m.container_port,
            protocol: m.protocol.to_string(),
        }
    }
}

/// What berth made for one container on one bridge network, kept (a list, one per network)
/// in `network.json` in the container's directory while the container runs, so that exit,
/// removal and reconcile after a crash undo exactly it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Endpoint {
    /// Record version.
    pub version: u32,
    /// The network's name (`bridge`).
    pub network: String,
    /// The network's id (empty in records of version 1: the default bridge).
    #[serde(default)]
    pub network_id: String,
    /// Its bridge.
    pub bridge: String,
    /// The host end of the veth pair.
    pub host_interface: String,
    /// The interface inside the container.
    #[serde(default = "eth0")]
    pub interface: String,
    /// The container's address.
    pub ip: Ipv4Addr,
    /// The subnet's prefix length.
    pub prefix_len: u8,
    /// The gateway.
    pub gateway: Ipv4Addr,
    /// The container interface's MAC address.
    pub mac: String,
    /// Its IPv6 address on an `--ipv6` network.
    #[serde(default)]
    pub ipv6: Option<Ipv6Addr>,
    /// The IPv6 subnet's prefix length.
    #[serde(default)]
    pub ipv6_prefix_len: u8,
    /// The IPv6 gateway.
    #[serde(default)]
    pub ipv6_gateway: Option<Ipv6Addr>,
    /// Its DNS aliases on this network (`--network-alias`).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Published ports.
    pub ports: Vec<PublishedPort>,
}

fn eth0() -> String {
    "eth0".into()
}

pub(super) const ENDPOINT_FILE: &str = "network.json";

#[derive(Deserialize)]
#[serde(untagged)]
enum EndpointFile {
    List(Vec<Endpoint>),
    One(Box<Endpoint>),
}

/// Reads a container's endpoint records (none when it has no bridge network).
pub fn read_endpoints(dir: &Path) -> Vec<Endpoint> {
    let Ok(bytes) = std::fs::read(dir.join(ENDPOINT_FILE)) else {
        return Vec::new();
    };
    match serde_json::from_slice(&bytes) {
        Ok(EndpointFile::List(l)) => l,
        Ok(EndpointFile::One(e)) => vec![*e],
        Err(_) => Vec::new(),
    }
}

/// Reads a container's first endpoint record (its `NetworkMode` network), if it has one.
pub fn read_endpoint(dir: &Path) -> Option<Endpoint> {
    read_endpoints(dir).into_iter().next()
}

pub(super) fn write_endpoints(dir: &Path, endpoints: &[Endpoint]) -> Result<(), EngineError> {
    let path = dir.join(ENDPOINT_FILE);
    let tmp = dir.join(".network.json.tmp");
    let bytes =
        serde_json::to_vec_pretty(endpoints).map_err(|e| EngineError::Internal(e.to_string()))?;
    let io = |e: std::io::Error| EngineError::Internal(format!("writing {}: {e}", path.display()));
    {
        use std::io::Write as _;
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        // no fsync: the record describes kernel state (veths, nft elements) that a machine
        // crash takes with it, and a daemon crash does not lose the page cache
        f.write_all(&bytes).map_err(io)?;
    }
    std::fs::rename(&tmp, &path).map_err(io)
}

/// Docker's MAC for an address: `02:42` and the four bytes of the address.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

pub(super) fn format_mac(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parses `--mac-address` (`aa:bb:cc:dd:ee:ff`).
pub fn parse_mac(s: &str) -> Result<[u8; 6], EngineError> {
    let bad = || {
        EngineError::Invalid(format!(
            "invalid MAC address {s:?}: expected six hex bytes, e.g. 02:42:ac:11:00:02"
        ))
    };
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut mac = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        if p.len() != 2 {
            return Err(bad());
        }
        mac[i] = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    if mac[0] & 1 == 1 {
        return Err(EngineError::Invalid(format!(
            "invalid MAC address {s:?}: a multicast address cannot name an interface"
        )));
    }
    Ok(mac)
}

fn parse_port_key(key: &str) -> Result<(String, Protocol), EngineError> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let protocol = match proto {
        "tcp" | "" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        other => {
            return Err(EngineError::Invalid(format!(
            "invalid published port {key:?}: protocol {other:?} is not supported (use tcp or udp)"
        )))
        }
    };
    Ok((port.to_string(), protocol))
}

/// The `-p`/`-P` requests of a container as `berth-net` specs: every `PortBindings` entry, and
/// with `PublishAllPorts` every exposed port (`exposed` holds the image's and the request's)
/// not bound explicitly, on a free host port.
pub fn port_specs(req: &CreateRequest, exposed: &[String]) -> Result<Vec<PortSpec>, EngineError> {
    let mut specs = Vec::new();
    let bindings: &BTreeMap<String, Vec<PortBinding>> = &req.host_config.port_bindings;
    for (key, list) in bindings {
        let (port, protocol) = parse_port_key(key)?;
        for b in list {
            let text = format!("{}:{}:{port}/{protocol}", b.host_ip, b.host_port);
            let spec: PortSpec = text.parse().map_err(|e: NetworkError| {
                EngineError::Invalid(format!("invalid published port: {}", error_chain(&e)))
            })?;
            specs.push(spec);
        }
    }
    if req.host_config.publish_all_ports {
        for key in exposed {
            if bindings.get(key).is_some_and(|l| !l.is_empty()) {
                continue;
            }
            let (port, protocol) = parse_port_key(key)?;
            let spec: PortSpec =
                format!("{port}/{protocol}")
                    .parse()
                    .map_err(|e: NetworkError| {
                        EngineError::Invalid(format!("invalid exposed port: {}", error_chain(&e)))
                    })?;
            specs.push(spec);
        }
    }
    Ok(specs)
}

/// The requested `--ip` and `--mac-address` of an endpoint; `mac_fallback` is the
/// container-wide `--mac-address` of older API versions (first network only).
pub fn endpoint_settings(
    settings: &EndpointSettings,
    mac_fallback: &str,
) -> Result<(Option<Ipv4Addr>, Option<[u8; 6]>), EngineError> {
    let ip = match settings
        .ipam_config
        .as_ref()
        .map(|c| c.ipv4_address.as_str())
        .filter(|s| !s.is_empty())
    {
        Some(text) => Some(text.parse::<Ipv4Addr>().map_err(|_| {
            EngineError::Invalid(format!("invalid IPv4 address {text:?} given with --ip"))
        })?),
        None => None,
    };
    let mac_text = Some(settings.mac_address.as_str())
        .filter(|s| !s.is_empty())
        .unwrap_or(mac_fallback);
    let mac = match mac_text {
        "" => None,
        text => Some(parse_mac(text)?),
    };
    Ok((ip, mac))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_bindings_become_specs() {
        let mut r = CreateRequest::default();
        r.host_config.port_bindings.insert(
            "80/tcp".into(),
            vec![PortBinding {
                host_ip: "127.0.0.1".into(),
                host_port: "8080".into(),
            }],
        );
        r.host_config.port_bindings.insert(
            "53/udp".into(),
            vec![PortBinding {
                host_ip: String::new(),
                host_port: String::new(),
            }],
        );
        r.host_config.publish_all_ports = true;
        let specs = port_specs(&r, &["80/tcp".into(), "443/tcp".into()]).expect("specs");
        assert_eq!(specs.len(), 3, "{specs:?}");
        assert_eq!(specs[1].host_ip, Some(Ipv4Addr::LOCALHOST));
        assert_eq!(specs[0].protocol, Protocol::Udp);
        assert_eq!(specs[2].container_ports.first, 443);
        r.host_config.port_bindings.insert(
            "81/tcp".into(),
            vec![PortBinding {
                host_ip: String::new(),
                host_port: "70000".into(),
            }],
        );
        let e = port_specs(&r, &[]).expect_err("bad port");
        assert!(e.to_string().starts_with("invalid published port"), "{e}");
    }
}
