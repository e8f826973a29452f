//! Container networking as the engine sees it: network modes, the default bridge (its veth,
//! its address from IPAM in engine.db, its published ports in berth's nftables table), the
//! per-container record `network.json`, and cleanup after exit, removal or a daemon crash.
//!
//! The kernel work is `berth-net`'s; this module decides what to ask of it and undoes it.
//! A container's endpoint is made between the shim's `Ready{pid}` (container created, stopped
//! before execve) and `Hello::Start`, in `/proc/PID/ns/net`.
//!
//! TODO(user networks): `NetworkMode::Named` is refused for now; user-defined networks
//! (`network create`) add a table of networks, one bridge + IPAM network name per network,
//! and the embedded DNS resolver of `berth_net::dns` started per network (wire it where
//! [`Networks::ensure_bridge`] brings a bridge up, and register names/aliases in
//! [`Networks::connect`], unregister in [`Networks::disconnect`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_api::containers::{CreateRequest, PortBinding};
use berth_net::link::host_interface_name;
use berth_net::ports::SocketPortChecker;
use berth_net::{
    ContainerAttachment, Ipam, Ipv4Subnet, Netlink, NetworkError, Nft, NftNetwork, PortMapping,
    PortSpec, Protocol, SqliteIpamStore,
};
use serde::{Deserialize, Serialize};

use crate::EngineError;

/// The name of the default network (as in Docker).
pub const DEFAULT_NETWORK: &str = "bridge";

/// Settings of the default bridge network.
#[derive(Clone, Debug)]
pub struct NetworkConfig {
    /// The bridge's name (`berth0`); `None` disables the default bridge (`--bridge none`):
    /// containers then default to `--network none`.
    pub bridge: Option<String>,
    /// The bridge's address, which is the containers' gateway.
    pub gateway: Ipv4Addr,
    /// The subnet containers get addresses from.
    pub subnet: Ipv4Subnet,
    /// berth's nftables table.
    pub nft_table: String,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        let subnet: Ipv4Subnet = berth_net::DEFAULT_SUBNET
            .parse()
            .expect("the default subnet parses");
        Self {
            bridge: Some(berth_net::DEFAULT_BRIDGE.to_string()),
            gateway: subnet.first_host(),
            subnet,
            nft_table: berth_net::DEFAULT_NFT_TABLE.to_string(),
        }
    }
}

impl NetworkConfig {
    /// Parses `--bip` (`10.213.0.1/16`: the bridge's address and the subnet's size).
    pub fn with_bip(mut self, bip: &str) -> Result<Self, EngineError> {
        let bad = |why: &str| {
            EngineError::Invalid(format!(
                "invalid --bip {bip:?}: {why} (expected ADDRESS/PREFIX, e.g. 10.213.0.1/16)"
            ))
        };
        let (address, prefix) = bip.split_once('/').ok_or_else(|| bad("no prefix length"))?;
        let gateway: Ipv4Addr = address.parse().map_err(|_| bad("not an IPv4 address"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| (1..=30).contains(p))
            .ok_or_else(|| bad("the prefix length must be 1 to 30"))?;
        let network = u32::from(gateway) & (u32::MAX << (32 - u32::from(prefix)));
        let subnet: Ipv4Subnet = format!("{}/{prefix}", Ipv4Addr::from(network))
            .parse()
            .map_err(|e: NetworkError| bad(&e.to_string()))?;
        if !subnet.is_host(gateway) {
            return Err(bad("the address is the network or broadcast address"));
        }
        self.gateway = gateway;
        self.subnet = subnet;
        Ok(self)
    }
}

/// A container's network mode (`HostConfig.NetworkMode`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkMode {
    /// Loopback only.
    None,
    /// The host's network namespace.
    Host,
    /// The default bridge.
    Bridge,
    /// Another container's network namespace.
    Container(String),
    /// A user-defined network (not yet supported).
    Named(String),
}

impl NetworkMode {
    /// Parses Docker's mode string (`""`/`default` must be resolved before).
    pub fn parse(mode: &str) -> NetworkMode {
        match mode {
            "none" => NetworkMode::None,
            "host" => NetworkMode::Host,
            "bridge" | "default" | "" => NetworkMode::Bridge,
            other => match other.strip_prefix("container:") {
                Some(target) => NetworkMode::Container(target.to_string()),
                None => NetworkMode::Named(other.to_string()),
            },
        }
    }
}

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

/// What berth made for one container on a bridge network, kept in `network.json` in the
/// container's directory while the container runs, so that exit, removal and reconcile after
/// a crash undo exactly it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Endpoint {
    /// Record version.
    pub version: u32,
    /// The network's name (`bridge`).
    pub network: String,
    /// Its bridge.
    pub bridge: String,
    /// The host end of the veth pair.
    pub host_interface: String,
    /// The container's address.
    pub ip: Ipv4Addr,
    /// The subnet's prefix length.
    pub prefix_len: u8,
    /// The gateway.
    pub gateway: Ipv4Addr,
    /// The container interface's MAC address.
    pub mac: String,
    /// Published ports.
    pub ports: Vec<PublishedPort>,
}

const ENDPOINT_FILE: &str = "network.json";

/// Reads a container's endpoint record, if it has one.
pub fn read_endpoint(dir: &Path) -> Option<Endpoint> {
    let bytes = std::fs::read(dir.join(ENDPOINT_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn write_endpoint(dir: &Path, endpoint: &Endpoint) -> Result<(), EngineError> {
    let path = dir.join(ENDPOINT_FILE);
    let tmp = dir.join(".network.json.tmp");
    let bytes =
        serde_json::to_vec_pretty(endpoint).map_err(|e| EngineError::Internal(e.to_string()))?;
    let io = |e: std::io::Error| EngineError::Internal(format!("writing {}: {e}", path.display()));
    {
        use std::io::Write as _;
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        // no fsync: the record describes kernel state (veth, nft elements) that a machine
        // crash takes with it, and a daemon crash does not lose the page cache
        f.write_all(&bytes).map_err(io)?;
    }
    std::fs::rename(&tmp, &path).map_err(io)
}

fn net_error(e: NetworkError) -> EngineError {
    use berth_net::ErrorKind as K;
    let message = error_chain(&e);
    match e.kind() {
        K::Invalid => EngineError::Invalid(message),
        K::NotFound => EngineError::NotFound(message),
        K::Conflict => EngineError::Conflict(message),
        K::Unavailable | K::Internal => EngineError::Internal(message),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

/// Docker's MAC for an address: `02:42` and the four bytes of the address.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

fn format_mac(mac: [u8; 6]) -> String {
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

/// The requested `--ip` and `--mac-address` of a container on network `name`.
pub fn endpoint_request(
    req: &CreateRequest,
    name: &str,
) -> Result<(Option<Ipv4Addr>, Option<[u8; 6]>), EngineError> {
    let settings = req
        .networking_config
        .as_ref()
        .and_then(|n| n.endpoints_config.get(name));
    let ip = match settings
        .and_then(|s| s.ipam_config.as_ref())
        .map(|c| c.ipv4_address.as_str())
        .filter(|s| !s.is_empty())
    {
        Some(text) => Some(text.parse::<Ipv4Addr>().map_err(|_| {
            EngineError::Invalid(format!("invalid IPv4 address {text:?} given with --ip"))
        })?),
        None => None,
    };
    let mac_text = settings
        .map(|s| s.mac_address.as_str())
        .filter(|s| !s.is_empty())
        .unwrap_or(req.config.mac_address.as_str());
    let mac = match mac_text {
        "" => None,
        text => Some(parse_mac(text)?),
    };
    Ok((ip, mac))
}

/// The engine's networking state.
pub struct Networks {
    config: NetworkConfig,
    ipam: Option<Ipam>,
    nft: Nft,
    /// Whether the bridge, sysctls and nft table were set up by this daemon.
    ready: tokio::sync::Mutex<bool>,
    /// Serialises host-port choice and publishing.
    publishing: tokio::sync::Mutex<()>,
    /// Host veths of exited containers being deleted in the background (container id →
    /// task), awaited by a new [`Networks::connect`] of the same container.
    deleting: std::sync::Mutex<HashMap<String, tokio::task::JoinHandle<()>>>,
}

impl Networks {
    /// Opens the IPAM store in `db` (the engine's database).
    pub fn open(config: NetworkConfig, db: &Path) -> Result<Networks, EngineError> {
        let ipam = match &config.bridge {
            Some(_) => {
                let store = SqliteIpamStore::open(db).map_err(net_error)?;
                Some(
                    Ipam::new(
                        Arc::new(store),
                        DEFAULT_NETWORK,
                        config.subnet,
                        config.gateway,
                    )
                    .map_err(net_error)?,
                )
            }
            None => None,
        };
        Ok(Networks {
            nft: Nft {
                table: config.nft_table.clone(),
                ..Nft::default()
            },
            config,
            ipam,
            ready: tokio::sync::Mutex::new(false),
            publishing: tokio::sync::Mutex::new(()),
            deleting: std::sync::Mutex::new(HashMap::new()),
        })
    }

    /// The settings.
    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }

    /// The default network mode: `bridge`, or `none` when the bridge is disabled.
    pub fn default_mode(&self) -> &'static str {
        if self.config.bridge.is_some() {
            "bridge"
        } else {
            "none"
        }
    }

    /// Checks a create request's network settings before anything is made.
    pub fn check_request(
        &self,
        req: &CreateRequest,
        exposed: &[String],
    ) -> Result<(), EngineError> {
        let mode = NetworkMode::parse(&req.host_config.network_mode);
        let specs = port_specs(req, exposed)?;
        match &mode {
            NetworkMode::Bridge => {
                if self.config.bridge.is_none() {
                    return Err(EngineError::Invalid(
                        "the default bridge network is disabled (daemon started with --bridge none); use --network none or host".into(),
                    ));
                }
                let (ip, _) = endpoint_request(req, DEFAULT_NETWORK)?;
                if let Some(ip) = ip {
                    let subnet = self.config.subnet;
                    if !subnet.contains(ip) {
                        return Err(EngineError::Invalid(format!(
                            "invalid --ip {ip}: it is not in the bridge network's subnet {subnet}"
                        )));
                    }
                    if !subnet.is_host(ip) || ip == self.config.gateway {
                        return Err(EngineError::Invalid(format!(
                            "invalid --ip {ip}: it is the network, broadcast or gateway address of {subnet}"
                        )));
                    }
                }
            }
            NetworkMode::Named(name) => {
                return Err(EngineError::NotFound(format!(
                    "network {name} not found (user-defined networks are not supported yet; use bridge, none, host or container:NAME)"
                )))
            }
            NetworkMode::None | NetworkMode::Host | NetworkMode::Container(_) => {
                if !specs.is_empty() {
                    return Err(EngineError::Invalid(format!(
                        "conflicting options: port publishing and the network mode {:?}",
                        req.host_config.network_mode
                    )));
                }
            }
        }
        if !matches!(mode, NetworkMode::Bridge) {
            let (ip, mac) = endpoint_request(req, DEFAULT_NETWORK)?;
            if ip.is_some() || mac.is_some() {
                return Err(EngineError::Invalid(format!(
                    "conflicting options: --ip/--mac-address and the network mode {:?}",
                    req.host_config.network_mode
                )));
            }
        }
        Ok(())
    }

    /// Brings the default bridge up once per daemon: the bridge and its address, forwarding
    /// and `route_localnet`, berth's nft table.
    async fn ensure_bridge(&self) -> Result<&str, EngineError> {
        let bridge =
            self.config.bridge.as_deref().ok_or_else(|| {
                EngineError::Invalid("the default bridge network is disabled".into())
            })?;
        let mut ready = self.ready.lock().await;
        if !*ready {
            let nl = Netlink::connect().map_err(net_error)?;
            nl.ensure_bridge(bridge, self.config.gateway, self.config.subnet.prefix_len())
                .await
                .map_err(net_error)?;
            let proc_sys = Path::new("/proc/sys");
            berth_net::sysctl::enable_ip_forward(proc_sys).map_err(net_error)?;
            berth_net::sysctl::enable_route_localnet(proc_sys, bridge).map_err(net_error)?;
            self.nft
                .setup(&[NftNetwork {
                    bridge: bridge.to_string(),
                    subnet: self.config.subnet,
                    masquerade: true,
                }])
                .map_err(net_error)?;
            *ready = true;
        }
        Ok(bridge)
    }

    /// Joins container `id` (its init is `pid`, created but not yet running) to the default
    /// bridge: address, veth, published ports; records them in `dir/network.json`. On failure
    /// nothing is left.
    pub async fn connect(
        &self,
        id: &str,
        pid: i32,
        dir: &Path,
        req: &CreateRequest,
        exposed: &[String],
    ) -> Result<Endpoint, EngineError> {
        let bridge = self.ensure_bridge().await?.to_string();
        // a restart right after an exit: the old veth (same name) must be gone first
        let deleting = self
            .deleting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        if let Some(task) = deleting {
            let _ = task.await;
        }
        let ipam = self.ipam.as_ref().expect("a bridge has an ipam");
        let (requested_ip, requested_mac) = endpoint_request(req, DEFAULT_NETWORK)?;
        let specs = port_specs(req, exposed)?;
        let ip = ipam.allocate(id, requested_ip).map_err(net_error)?;
        let mac = requested_mac.unwrap_or_else(|| mac_for(ip));
        let mut endpoint = Endpoint {
            version: 1,
            network: DEFAULT_NETWORK.into(),
            bridge: bridge.clone(),
            host_interface: host_interface_name(id),
            ip,
            prefix_len: self.config.subnet.prefix_len(),
            gateway: self.config.gateway,
            mac: format_mac(mac),
            ports: vec![],
        };
        let made = async {
            let nl = Netlink::connect().map_err(net_error)?;
            nl.attach(&ContainerAttachment {
                bridge,
                host_interface: endpoint.host_interface.clone(),
                netns: PathBuf::from(format!("/proc/{pid}/ns/net")),
                interface: "eth0".into(),
                address: ip,
                prefix_len: endpoint.prefix_len,
                gateway: endpoint.gateway,
                mac: Some(mac),
                mtu: None,
            })
            .await
            .map_err(net_error)?;
            if !specs.is_empty() {
                let _g = self.publishing.lock().await;
                let taken: HashSet<(Protocol, u16)> = self
                    .nft
                    .published()
                    .map_err(net_error)?
                    .into_iter()
                    .map(|p| (p.mapping.protocol, p.mapping.host_port))
                    .collect();
                let checker = SocketPortChecker {
                    published: |protocol, port| taken.contains(&(protocol, port)),
                };
                let mut mappings: Vec<PortMapping> = Vec::new();
                for spec in &specs {
                    for m in spec.resolve(&checker).map_err(net_error)? {
                        if mappings
                            .iter()
                            .any(|o| o.protocol == m.protocol && o.host_port == m.host_port)
                        {
                            return Err(net_error(NetworkError::PortInUse {
                                host_ip: m.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
                                port: m.host_port,
                                protocol: m.protocol,
                            }));
                        }
                        mappings.push(m);
                    }
                }
                self.nft.publish(ip, &mappings).map_err(net_error)?;
                endpoint.ports = mappings.into_iter().map(PublishedPort::from).collect();
            }
            write_endpoint(dir, &endpoint)
        }
        .await;
        if let Err(e) = made {
            self.undo(id, &endpoint, false).await;
            return Err(e);
        }
        Ok(endpoint)
    }

    /// Undoes an endpoint. `in_background`: the container has exited, so the kernel removes
    /// the veth with its network namespace anyway; deleting it takes the kernel 10-20 ms
    /// (the unregister waits for RCU grace periods under the rtnl lock, or for the namespace
    /// cleanup that holds it), which `run --rm` would wait for: the delete then runs as a
    /// task (so a veth whose namespace is shared, `--network container:`, still goes), and
    /// a later connect of the same container awaits it; reconcile sweeps one a crash left.
    async fn undo(&self, id: &str, endpoint: &Endpoint, in_background: bool) {
        // publishing is one nft transaction: an endpoint without recorded ports has none in
        // the table, and reconcile sweeps any a crash left (so `run --rm` pays no `nft` run)
        if !endpoint.ports.is_empty() {
            if let Err(e) = self.nft.unpublish(endpoint.ip) {
                tracing::warn!(container = id, error = %e, "cannot remove published ports");
            }
        }
        match Netlink::connect() {
            Ok(nl) => {
                let (container, veth) = (id.to_string(), endpoint.host_interface.clone());
                let delete = async move {
                    if let Err(e) = nl.delete(&veth).await {
                        tracing::warn!(container, error = %e, "cannot delete veth");
                    }
                };
                if in_background {
                    let mut deleting = self.deleting.lock().unwrap_or_else(|p| p.into_inner());
                    deleting.retain(|_, task| !task.is_finished());
                    deleting.insert(id.to_string(), tokio::spawn(delete));
                } else {
                    delete.await;
                }
            }
            Err(e) => tracing::warn!(container = id, error = %e, "cannot open netlink"),
        }
        if let Some(ipam) = &self.ipam {
            if let Err(e) = ipam.release(id) {
                tracing::warn!(container = id, error = %e, "cannot release address");
            }
        }
    }

    /// Undoes what [`Networks::connect`] made for container `id` (idempotent): its published
    /// ports, its address, its record, and (in the background, see `undo`) its veth.
    pub async fn disconnect(&self, id: &str, dir: &Path) {
        if let Some(endpoint) = read_endpoint(dir) {
            self.undo(id, &endpoint, true).await;
        } else if let Some(ipam) = &self.ipam {
            let _ = ipam.release(id);
        }
        let _ = std::fs::remove_file(dir.join(ENDPOINT_FILE));
    }

    /// After a daemon start: removes addresses, published ports and veths of containers that
    /// are not in `live` (ids of running containers).
    pub async fn reconcile(&self, live: &HashSet<String>, live_ips: &HashSet<Ipv4Addr>) {
        let Some(ipam) = &self.ipam else {
            return;
        };
        match ipam.reconcile(live) {
            Ok(freed) if !freed.is_empty() => {
                tracing::info!(count = freed.len(), "freed addresses of gone containers")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "ipam reconcile failed"),
        }
        match self.nft.table_exists() {
            Ok(true) => match self.nft.reconcile(live_ips) {
                Ok(stale) if !stale.is_empty() => {
                    tracing::info!(
                        count = stale.len(),
                        "removed published ports of gone containers"
                    )
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "nft reconcile failed"),
            },
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "nft reconcile failed"),
        }
        let keep: HashSet<String> = live.iter().map(|id| host_interface_name(id)).collect();
        if let Ok(nl) = Netlink::connect() {
            match nl.names_with_prefix("vb").await {
                Ok(names) => {
                    for name in names.into_iter().filter(|n| !keep.contains(n)) {
                        tracing::info!(interface = name, "deleting the veth of a gone container");
                        let _ = nl.delete(&name).await;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot list veths"),
            }
        }
    }
}

/// The `/etc/hosts` of a container: localhost lines, its own address and name (bridge) or
/// 127.0.1.1 (other modes), then `--add-host` entries.
pub fn hosts_file(hostname: &str, ip: Option<Ipv4Addr>, extra_hosts: &[String]) -> String {
    let own = match ip {
        Some(ip) => format!("{ip}\t{hostname}\n"),
        None => format!("127.0.1.1\t{hostname}\n"),
    };
    let extra: String = extra_hosts
        .iter()
        .filter_map(|h| {
            h.split_once(['=', ':'])
                .map(|(name, ip)| format!("{ip}\t{name}\n"))
        })
        .collect();
    format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n{own}{extra}"
    )
}

/// The `/etc/resolv.conf` of a container: `--dns`, `--dns-search`, `--dns-option` when given,
/// else the host's; loopback nameservers of the host are unreachable from a private network
/// namespace, so (as Docker does) they are dropped there and Google's resolvers stand in
/// when none is left.
pub fn resolv_conf(host: &str, req: &CreateRequest, own_netns: bool) -> String {
    let hc = &req.host_config;
    let mut nameservers: Vec<String> = hc.dns.clone();
    let mut search: Vec<String> = hc.dns_search.clone();
    let mut options: Vec<String> = hc.dns_options.clone();
    let mut other = String::new();
    for line in host.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") if hc.dns.is_empty() => {
                if let Some(ns) = words.next() {
                    let loopback = ns
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|a| a.is_loopback());
                    if !(own_netns && loopback) {
                        nameservers.push(ns.to_string());
                    }
                }
            }
            Some("search" | "domain") if hc.dns_search.is_empty() => {
                search.extend(words.map(str::to_string))
            }
            Some("options") if hc.dns_options.is_empty() => {
                options.extend(words.map(str::to_string))
            }
            Some(w) if w.starts_with('#') || w.starts_with(';') => {}
            Some("nameserver" | "search" | "domain" | "options") | None => {}
            Some(_) => {
                other.push_str(line);
                other.push('\n');
            }
        }
    }
    if nameservers.is_empty() && own_netns {
        nameservers = vec!["8.8.8.8".into(), "8.8.4.4".into()];
    }
    let mut out = String::new();
    if !search.is_empty() && search != ["."] {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    for ns in nameservers {
        out.push_str(&format!("nameserver {ns}\n"));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out.push_str(&other);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::containers::{EndpointIpamConfig, EndpointSettings, NetworkingConfig};

    fn request() -> CreateRequest {
        let mut r = CreateRequest::default();
        r.host_config.network_mode = "bridge".into();
        r
    }

    #[test]
    fn modes_parse() {
        assert_eq!(NetworkMode::parse("bridge"), NetworkMode::Bridge);
        assert_eq!(NetworkMode::parse("none"), NetworkMode::None);
        assert_eq!(NetworkMode::parse("host"), NetworkMode::Host);
        assert_eq!(
            NetworkMode::parse("container:web"),
            NetworkMode::Container("web".into())
        );
        assert_eq!(
            NetworkMode::parse("mynet"),
            NetworkMode::Named("mynet".into())
        );
    }

    #[test]
    fn bip_sets_gateway_and_subnet() {
        let c = NetworkConfig::default()
            .with_bip("10.99.3.1/24")
            .expect("bip");
        assert_eq!(c.gateway, Ipv4Addr::new(10, 99, 3, 1));
        assert_eq!(c.subnet.to_string(), "10.99.3.0/24");
        for bad in ["10.99.3.1", "10.99.3.0/24", "x/24", "10.0.0.1/40"] {
            assert!(NetworkConfig::default().with_bip(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn port_bindings_become_specs() {
        let mut r = request();
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

    #[test]
    fn ip_and_mac_are_checked() {
        let networks = Networks {
            config: NetworkConfig::default(),
            ipam: None,
            nft: Nft::default(),
            ready: tokio::sync::Mutex::new(false),
            publishing: tokio::sync::Mutex::new(()),
            deleting: std::sync::Mutex::new(HashMap::new()),
        };
        let mut r = request();
        let with_ip = |ip: &str| NetworkingConfig {
            endpoints_config: [(
                "bridge".to_string(),
                EndpointSettings {
                    ipam_config: Some(EndpointIpamConfig {
                        ipv4_address: ip.into(),
                    }),
                    ..Default::default()
                },
            )]
            .into(),
        };
        r.networking_config = Some(with_ip("10.213.5.5"));
        networks.check_request(&r, &[]).expect("inside");
        r.networking_config = Some(with_ip("192.168.1.5"));
        let e = networks.check_request(&r, &[]).expect_err("outside");
        assert!(
            e.to_string()
                .contains("not in the bridge network's subnet 10.213.0.0/16"),
            "{e}"
        );
        r.networking_config = Some(with_ip("10.213.0.1"));
        assert!(networks.check_request(&r, &[]).is_err());
        r.networking_config = None;
        r.config.mac_address = "02:42:0a:d5:00:09".into();
        assert_eq!(
            endpoint_request(&r, "bridge").expect("mac").1,
            Some([2, 0x42, 10, 0xd5, 0, 9])
        );
        r.config.mac_address = "01:00:00:00:00:01".into();
        assert!(networks.check_request(&r, &[]).is_err());
        r.config.mac_address.clear();
        r.host_config.network_mode = "none".into();
        r.host_config
            .port_bindings
            .insert("80/tcp".into(), vec![PortBinding::default()]);
        assert!(networks.check_request(&r, &[]).is_err());
    }

    #[test]
    fn etc_files() {
        let hosts = hosts_file(
            "web",
            Some(Ipv4Addr::new(10, 213, 0, 2)),
            &["db:10.0.0.9".into()],
        );
        assert!(hosts.contains("10.213.0.2\tweb\n"), "{hosts}");
        assert!(hosts.ends_with("10.0.0.9\tdb\n"), "{hosts}");
        assert!(hosts_file("x", None, &[]).contains("127.0.1.1\tx\n"));
        let mut r = request();
        let host =
            "# generated\nnameserver 127.0.0.53\nnameserver 10.1.1.1\nsearch corp\noptions edns0\n";
        assert_eq!(
            resolv_conf(host, &r, true),
            "search corp\nnameserver 10.1.1.1\noptions edns0\n"
        );
        assert!(resolv_conf(host, &r, false).contains("nameserver 127.0.0.53"));
        assert!(resolv_conf("nameserver 127.0.0.1\n", &r, true).contains("nameserver 8.8.8.8"));
        r.host_config.dns = vec!["1.1.1.1".into()];
        r.host_config.dns_search = vec!["a.example".into(), "b.example".into()];
        r.host_config.dns_options = vec!["ndots:2".into()];
        assert_eq!(
            resolv_conf(host, &r, true),
            "search a.example b.example\nnameserver 1.1.1.1\noptions ndots:2\n"
        );
    }
}
