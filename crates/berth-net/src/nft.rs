//! berth's own nftables table, driven through `nft -f -` (Debian's `nftables` package).
//!
//! ```text
//! table ip berth
//!   map pub-tcp       port          → container address . port   (published on every address)
//!   map pub-tcp-addr  address . port → container address . port  (published on one address)
//!   map pub-udp, pub-udp-addr      the same for UDP
//!   chain prerouting  (nat, dstnat)  fib daddr type local jump published
//!   chain output      (nat, -100)    fib daddr type local jump published  (127.0.0.1 and own addresses)
//!   chain published   dnat through the address maps first, then the port maps
//!   chain postrouting (nat, srcnat)  per network: masquerade 127.0.0.0/8 into the bridge
//!                                    (route_localnet), hairpin (DNATed traffic from the subnet
//!                                    back into the bridge), and outbound traffic of the subnet
//!   chain forward     (filter)       isolation: nothing is forwarded from one berth network's
//!                                    bridge to another's, and nothing into or out of an
//!                                    `--internal` network's bridge
//! ```
//! A container's published ports are map elements whose value is its address, so adding or
//! removing them touches nothing else, and reconcile can find every stale one.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::ports::{PortMapping, Protocol};
use crate::{Ipv4Subnet, NetworkError, Result};

/// A bridge network NAT is set up for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NftNetwork {
    /// The bridge's name.
    pub bridge: String,
    /// Its subnet.
    pub subnet: Ipv4Subnet,
    /// Whether outbound traffic is masqueraded (false for `--internal` networks).
    pub masquerade: bool,
    /// `--internal`: no traffic is forwarded into or out of the bridge (its containers reach
    /// each other and the gateway address only).
    pub internal: bool,
    /// The IPv6 subnet of an `--ipv6` network (`fd00:1::/64`): the same isolation in the
    /// `ip6` table of the same name, and masquerading of its outbound traffic.
    pub subnet6: Option<String>,
}

/// One published port found in the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedPort {
    /// The mapping.
    pub mapping: PortMapping,
    /// The container address it leads to.
    pub container_ip: Ipv4Addr,
}

/// The `nft` driver for one table of family `ip`.
#[derive(Debug, Clone)]
pub struct Nft {
    /// The binary (default `nft` on PATH).
    pub binary: PathBuf,
    /// The table's name (default [`crate::DEFAULT_NFT_TABLE`]).
    pub table: String,
}

impl Default for Nft {
    fn default() -> Self {
        Self {
            binary: PathBuf::from("nft"),
            table: crate::DEFAULT_NFT_TABLE.to_string(),
        }
    }
}

fn map_name(protocol: Protocol, with_address: bool) -> String {
    format!(
        "pub-{}{}",
        protocol,
        if with_address { "-addr" } else { "" }
    )
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace(['"', '\\'], ""))
}

impl Nft {
    /// The script that creates the table (or brings an existing one up to date) for
    /// `networks`, keeping the published ports already in its maps.
    pub fn setup_script(&self, networks: &[NftNetwork]) -> String {
        let t = &self.table;
        let mut s = format!("add table ip {t}\n");
        for protocol in [Protocol::Tcp, Protocol::Udp] {
            let _ = writeln!(
                s,
                "add map ip {t} {} {{ type inet_service : ipv4_addr . inet_service; }}",
                map_name(protocol, false)
            );
            let _ = writeln!(
                s,
                "add map ip {t} {} {{ type ipv4_addr . inet_service : ipv4_addr . inet_service; }}",
                map_name(protocol, true)
            );
        }
        let _ = writeln!(s, "add chain ip {t} prerouting {{ type nat hook prerouting priority dstnat; policy accept; }}");
        let _ = writeln!(
            s,
            "add chain ip {t} output {{ type nat hook output priority -100; policy accept; }}"
        );
        let _ = writeln!(s, "add chain ip {t} postrouting {{ type nat hook postrouting priority srcnat; policy accept; }}");
        let _ = writeln!(s, "add chain ip {t} published");
        let _ = writeln!(
            s,
            "add chain ip {t} forward {{ type filter hook forward priority filter; policy accept; }}"
        );
        for chain in [
            "prerouting",
            "output",
            "postrouting",
            "published",
            "forward",
        ] {
            let _ = writeln!(s, "flush chain ip {t} {chain}");
        }
        let _ = writeln!(
            s,
            "add rule ip {t} prerouting fib daddr type local jump published"
        );
        let _ = writeln!(
            s,
            "add rule ip {t} output fib daddr type local jump published"
        );
        for protocol in [Protocol::Tcp, Protocol::Udp] {
            let _ = writeln!(
                s,
                "add rule ip {t} published dnat ip to ip daddr . {protocol} dport map @{}",
                map_name(protocol, true)
            );
            let _ = writeln!(
                s,
                "add rule ip {t} published dnat ip to {protocol} dport map @{}",
                map_name(protocol, false)
            );
        }
        for n in networks {
            let (bridge, subnet) = (quote(&n.bridge), n.subnet);
            let _ = writeln!(
                s,
                "add rule ip {t} postrouting ip saddr 127.0.0.0/8 oifname {bridge} masquerade"
            );
            let _ = writeln!(s, "add rule ip {t} postrouting ip saddr {subnet} oifname {bridge} ct status dnat masquerade");
            if n.masquerade {
                let _ = writeln!(
                    s,
                    "add rule ip {t} postrouting ip saddr {subnet} oifname != {bridge} masquerade"
                );
            }
            if n.internal {
                let _ = writeln!(
                    s,
                    "add rule ip {t} forward iifname {bridge} oifname != {bridge} drop"
                );
                let _ = writeln!(
                    s,
                    "add rule ip {t} forward oifname {bridge} iifname != {bridge} drop"
                );
            }
            for other in networks.iter().filter(|o| o.bridge != n.bridge) {
                let _ = writeln!(
                    s,
                    "add rule ip {t} forward iifname {bridge} oifname {} drop",
                    quote(&other.bridge)
                );
            }
        }
        s
    }

    /// The part of the setup script for IPv6 (table `ip6 <name>`): isolation as in the `ip`
    /// table and masquerading of the IPv6 subnets; the table goes when no network has one.
    pub fn setup6_script(&self, networks: &[NftNetwork]) -> String {
        let t = &self.table;
        if networks.iter().all(|n| n.subnet6.is_none()) {
            // add first: deleting an absent table fails the whole transaction
            return format!("add table ip6 {t}\ndelete table ip6 {t}\n");
        }
        let mut s = format!("add table ip6 {t}\n");
        let _ = writeln!(s, "add chain ip6 {t} forward {{ type filter hook forward priority filter; policy accept; }}");
        let _ = writeln!(s, "add chain ip6 {t} postrouting {{ type nat hook postrouting priority srcnat; policy accept; }}");
        for chain in ["forward", "postrouting"] {
            let _ = writeln!(s, "flush chain ip6 {t} {chain}");
        }
        for n in networks {
            let bridge = quote(&n.bridge);
            if let (Some(subnet6), true) = (&n.subnet6, n.masquerade) {
                let _ = writeln!(
                    s,
                    "add rule ip6 {t} postrouting ip6 saddr {subnet6} oifname != {bridge} masquerade"
                );
            }
            if n.internal {
                let _ = writeln!(
                    s,
                    "add rule ip6 {t} forward iifname {bridge} oifname != {bridge} drop"
                );
                let _ = writeln!(
                    s,
                    "add rule ip6 {t} forward oifname {bridge} iifname != {bridge} drop"
                );
            }
            for other in networks.iter().filter(|o| o.bridge != n.bridge) {
                let _ = writeln!(
                    s,
                    "add rule ip6 {t} forward iifname {bridge} oifname {} drop",
                    quote(&other.bridge)
                );
            }
        }
        s
    }

    /// The script that publishes `mappings` to `container_ip`. `create` fails the whole
    /// script when a host port is already published, so nothing is half-added.
    pub fn publish_script(&self, container_ip: Ipv4Addr, mappings: &[PortMapping]) -> String {
        let mut s = String::new();
        for m in mappings {
            let value = format!("{container_ip} . {}", m.container_port);
            match m.host_ip {
                Some(ip) => {
                    let _ = writeln!(
                        s,
                        "create element ip {} {} {{ {ip} . {} : {value} }}",
                        self.table,
                        map_name(m.protocol, true),
                        m.host_port
                    );
                }
                None => {
                    let _ = writeln!(
                        s,
                        "create element ip {} {} {{ {} : {value} }}",
                        self.table,
                        map_name(m.protocol, false),
                        m.host_port
                    );
                }
            }
        }
        s
    }

    fn unpublish_script(&self, ports: &[PublishedPort]) -> String {
        let mut s = String::new();
        for p in ports {
            let m = p.mapping;
            let key = match m.host_ip {
                Some(ip) => format!("{ip} . {}", m.host_port),
                None => m.host_port.to_string(),
            };
            let _ = writeln!(
                s,
                "delete element ip {} {} {{ {key} }}",
                self.table,
                map_name(m.protocol, m.host_ip.is_some())
            );
        }
        s
    }

    /// Runs `script` through `nft -f -` as one transaction.
    pub fn apply(&self, action: &str, script: &str) -> Result<()> {
        if script.is_empty() {
            return Ok(());
        }
        let mut child = Command::new(&self.binary)
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| NetworkError::NftSpawn {
                binary: self.binary.clone(),
                source,
            })?;
        let written = child
            .stdin
            .take()
            .map(|mut stdin| stdin.write_all(script.as_bytes()));
        let output = child
            .wait_with_output()
            .map_err(|source| NetworkError::NftSpawn {
                binary: self.binary.clone(),
                source,
            })?;
        if !output.status.success() {
            return Err(NetworkError::Nft {
                action: action.to_string(),
                status: output.status,
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
        if let Some(Err(source)) = written {
            return Err(NetworkError::NftSpawn {
                binary: self.binary.clone(),
                source,
            });
        }
        Ok(())
    }

    fn json(&self, action: &str, args: &[&str]) -> Result<Option<serde_json::Value>> {
        let output = Command::new(&self.binary)
            .arg("-j")
            .args(args)
            .output()
            .map_err(|source| NetworkError::NftSpawn {
                binary: self.binary.clone(),
                source,
            })?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
            if stderr.contains("No such file or directory") {
                return Ok(None);
            }
            return Err(NetworkError::Nft {
                action: action.to_string(),
                status: output.status,
                stderr,
            });
        }
        serde_json::from_slice(&output.stdout)
            .map(Some)
            .map_err(|source| NetworkError::NftOutput {
                action: action.to_string(),
                source,
            })
    }

    /// Creates or updates the table for `networks` (idempotent; published ports stay).
    pub fn setup(&self, networks: &[NftNetwork]) -> Result<()> {
        let script = self.setup_script(networks) + &self.setup6_script(networks);
        self.apply("set up table", &script)
    }

    /// Publishes `mappings` to `container_ip`, all or nothing.
    pub fn publish(&self, container_ip: Ipv4Addr, mappings: &[PortMapping]) -> Result<()> {
        self.apply(
            &format!("publish ports of {container_ip}"),
            &self.publish_script(container_ip, mappings),
        )
    }

    /// Every published port in the table (empty when the table does not exist): one `nft`
    /// run lists the whole table, its four maps included.
    pub fn published(&self) -> Result<Vec<PublishedPort>> {
        let Some(json) = self.json("list table", &["list", "table", "ip", &self.table])? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for protocol in [Protocol::Tcp, Protocol::Udp] {
            for with_address in [false, true] {
                out.extend(parse_map_elements(&json, protocol, with_address));
            }
        }
        Ok(out)
    }

    /// Removes every port published to `container_ip` (exactly those; idempotent).
    pub fn unpublish(&self, container_ip: Ipv4Addr) -> Result<Vec<PublishedPort>> {
        let ports: Vec<_> = self
            .published()?
            .into_iter()
            .filter(|p| p.container_ip == container_ip)
            .collect();
        self.apply(
            &format!("unpublish ports of {container_ip}"),
            &self.unpublish_script(&ports),
        )?;
        Ok(ports)
    }

    /// Removes published ports whose container address is not in `live` (containers gone
    /// while the daemon was down).
    pub fn reconcile(&self, live: &HashSet<Ipv4Addr>) -> Result<Vec<PublishedPort>> {
        let stale: Vec<_> = self
            .published()?
            .into_iter()
            .filter(|p| !live.contains(&p.container_ip))
            .collect();
        self.apply(
            "remove stale published ports",
            &self.unpublish_script(&stale),
        )?;
        Ok(stale)
    }

    /// Whether the table exists.
    pub fn table_exists(&self) -> Result<bool> {
        Ok(self
            .json("list table", &["list", "table", "ip", &self.table])?
            .is_some())
    }

    /// Deletes the whole table (no-op when absent).
    pub fn delete_table(&self) -> Result<()> {
        if !self.table_exists()? {
            return Ok(());
        }
        let t = &self.table;
        self.apply(
            "delete table",
            &format!("delete table ip {t}\nadd table ip6 {t}\ndelete table ip6 {t}\n"),
        )
    }
}

/// Reads the elements of map `pub-PROTOCOL[-addr]` in an `nft -j list` answer (of the map or
/// of the whole table).
fn parse_map_elements(
    json: &serde_json::Value,
    protocol: Protocol,
    with_address: bool,
) -> Vec<PublishedPort> {
    let ip = |v: &serde_json::Value| v.as_str().and_then(|s| s.parse::<Ipv4Addr>().ok());
    let port = |v: &serde_json::Value| v.as_u64().and_then(|p| u16::try_from(p).ok());
    let concat = |v: &serde_json::Value| -> Option<(Ipv4Addr, u16)> {
        let parts = v.get("concat")?.as_array()?;
        Some((ip(parts.first()?)?, port(parts.get(1)?)?))
    };
    let mut out = Vec::new();
    let name = map_name(protocol, with_address);
    let items = json.get("nftables").and_then(|v| v.as_array());
    for item in items.into_iter().flatten() {
        let elements = item
            .get("map")
            .filter(|m| m.get("name").and_then(|n| n.as_str()) == Some(name.as_str()))
            .and_then(|m| m.get("elem"))
            .and_then(|e| e.as_array());
        for element in elements.into_iter().flatten() {
            let Some(pair) = element.as_array() else {
                continue;
            };
            let (Some(key), Some(value)) = (pair.first(), pair.get(1)) else {
                continue;
            };
            let Some((container_ip, container_port)) = concat(value) else {
                continue;
            };
            let (host_ip, host_port) = if with_address {
                match concat(key) {
                    Some((a, p)) => (Some(a), p),
                    None => continue,
                }
            } else {
                match port(key) {
                    Some(p) => (None, p),
                    None => continue,
                }
            };
            out.push(PublishedPort {
                mapping: PortMapping {
                    host_ip,
                    host_port,
                    container_port,
                    protocol,
                },
                container_ip,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn network() -> NftNetwork {
        NftNetwork {
            bridge: "berth0".into(),
            subnet: "10.213.0.0/16".parse().expect("subnet"),
            masquerade: true,
            internal: false,
            subnet6: None,
        }
    }

    #[test]
    fn setup_script_is_idempotent_and_keeps_maps() {
        let script = Nft::default().setup_script(&[network()]);
        // maps are only added (kept when present); rule chains are flushed then refilled
        assert!(!script.contains("flush table"));
        assert!(!script.contains("flush map"));
        for line in [
            "add table ip berth",
            "add map ip berth pub-tcp { type inet_service : ipv4_addr . inet_service; }",
            "add map ip berth pub-udp-addr { type ipv4_addr . inet_service : ipv4_addr . inet_service; }",
            "add chain ip berth output { type nat hook output priority -100; policy accept; }",
            "flush chain ip berth published",
            "add rule ip berth prerouting fib daddr type local jump published",
            "add rule ip berth output fib daddr type local jump published",
            "add rule ip berth published dnat ip to ip daddr . tcp dport map @pub-tcp-addr",
            "add rule ip berth published dnat ip to udp dport map @pub-udp",
            "add rule ip berth postrouting ip saddr 127.0.0.0/8 oifname \"berth0\" masquerade",
            "add rule ip berth postrouting ip saddr 10.213.0.0/16 oifname \"berth0\" ct status dnat masquerade",
            "add rule ip berth postrouting ip saddr 10.213.0.0/16 oifname != \"berth0\" masquerade",
        ] {
            assert!(script.lines().any(|l| l == line), "missing {line:?} in\n{script}");
        }
        // address-specific maps are consulted before the any-address ones
        let specific = script.find("map @pub-tcp-addr").expect("addr rule");
        let any = script.find("map @pub-tcp\n").expect("any rule");
        assert!(specific < any);
        let internal = NftNetwork {
            masquerade: false,
            ..network()
        };
        assert!(!Nft::default()
            .setup_script(&[internal])
            .contains("oifname != "));
    }

    #[test]
    fn networks_are_isolated_from_each_other_and_internal_ones_from_everything() {
        let other = NftNetwork {
            bridge: "bn-1".into(),
            subnet: "10.214.0.0/24".parse().expect("subnet"),
            masquerade: false,
            internal: true,
            subnet6: Some("fd00:1::/64".into()),
        };
        let script = Nft::default().setup_script(&[network(), other.clone()]);
        let v6 = Nft::default().setup6_script(&[network(), other.clone()]);
        for line in [
            "add rule ip6 berth forward iifname \"bn-1\" oifname != \"bn-1\" drop",
            "add rule ip6 berth forward iifname \"berth0\" oifname \"bn-1\" drop",
        ] {
            assert!(v6.lines().any(|l| l == line), "missing {line:?} in\n{v6}");
        }
        // internal: not masqueraded
        assert!(!v6.contains("masquerade"), "{v6}");
        let outward = NftNetwork {
            masquerade: true,
            internal: false,
            ..other
        };
        assert!(Nft::default()
            .setup6_script(&[outward])
            .contains("ip6 saddr fd00:1::/64 oifname != \"bn-1\" masquerade"));
        assert_eq!(
            Nft::default().setup6_script(&[network()]),
            "add table ip6 berth\ndelete table ip6 berth\n"
        );
        for line in [
            "add chain ip berth forward { type filter hook forward priority filter; policy accept; }",
            "flush chain ip berth forward",
            "add rule ip berth forward iifname \"berth0\" oifname \"bn-1\" drop",
            "add rule ip berth forward iifname \"bn-1\" oifname \"berth0\" drop",
            "add rule ip berth forward iifname \"bn-1\" oifname != \"bn-1\" drop",
            "add rule ip berth forward oifname \"bn-1\" iifname != \"bn-1\" drop",
        ] {
            assert!(script.lines().any(|l| l == line), "missing {line:?} in\n{script}");
        }
        // the internal network is not masqueraded; the other still is
        assert!(!script.contains("ip saddr 10.214.0.0/24 oifname != "));
        assert!(script.contains("ip saddr 10.213.0.0/16 oifname != \"berth0\" masquerade"));
        // one network alone: nothing to isolate
        assert!(!Nft::default()
            .setup_script(&[network()])
            .contains("add rule ip berth forward"));
    }

    #[test]
    fn publish_script_names_each_port() {
        let nft = Nft {
            table: "t".into(),
            ..Nft::default()
        };
        let script = nft.publish_script(
            "10.213.0.2".parse().expect("ip"),
            &[
                PortMapping {
                    host_ip: None,
                    host_port: 8080,
                    container_port: 80,
                    protocol: Protocol::Tcp,
                },
                PortMapping {
                    host_ip: Some(Ipv4Addr::LOCALHOST),
                    host_port: 5353,
                    container_port: 53,
                    protocol: Protocol::Udp,
                },
            ],
        );
        assert_eq!(
            script,
            "create element ip t pub-tcp { 8080 : 10.213.0.2 . 80 }\n\
             create element ip t pub-udp-addr { 127.0.0.1 . 5353 : 10.213.0.2 . 53 }\n"
        );
    }

    #[test]
    fn parses_listed_elements() {
        let any: serde_json::Value = serde_json::from_str(
            r#"{"nftables": [{"metainfo": {"version": "1.0.6"}}, {"map": {"family": "ip", "name": "pub-tcp", "table": "berth", "type": "inet_service", "handle": 4, "map": "ipv4_addr . inet_service", "elem": [[8080, {"concat": ["10.213.0.2", 80]}]]}}]}"#,
        )
        .expect("json");
        let got = parse_map_elements(&any, Protocol::Tcp, false);
        assert_eq!(
            got,
            [PublishedPort {
                mapping: PortMapping {
                    host_ip: None,
                    host_port: 8080,
                    container_port: 80,
                    protocol: Protocol::Tcp
                },
                container_ip: "10.213.0.2".parse().expect("ip"),
            }]
        );
        // a whole table's listing holds every map: each is read under its own name only
        assert!(parse_map_elements(&any, Protocol::Udp, false).is_empty());
        assert!(parse_map_elements(&any, Protocol::Tcp, true).is_empty());
        let addr: serde_json::Value = serde_json::from_str(
            r#"{"nftables": [{"map": {"name": "pub-udp-addr", "elem": [[{"concat": ["127.0.0.1", 5353]}, {"concat": ["10.213.0.3", 53]}]]}}]}"#,
        )
        .expect("json");
        let got = parse_map_elements(&addr, Protocol::Udp, true);
        assert_eq!(got[0].mapping.host_ip, Some(Ipv4Addr::LOCALHOST));
        assert_eq!(
            got[0].container_ip,
            "10.213.0.3".parse::<Ipv4Addr>().expect("ip")
        );
        let nft = Nft::default();
        assert_eq!(
            nft.unpublish_script(&got),
            "delete element ip berth pub-udp-addr { 127.0.0.1 . 5353 }\n"
        );
    }
}
