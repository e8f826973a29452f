//! Container networking as the engine sees it: network modes, the default bridge (its veth,
//! its address from IPAM in engine.db, its published ports in berth's nftables table), the
//! per-container record `network.json`, and cleanup after exit, removal or a daemon crash.
//!
//! The kernel work is `berth-net`'s; this module decides what to ask of it and undoes it.
//! A container's endpoint is made between the shim's `Ready{pid}` (container created, stopped
//! before execve) and `Hello::Start`, in `/proc/PID/ns/net`.
//!
//! User-defined networks (`network create`, [`user`]) are bridges of their own, each with its
//! IPAM network in engine.db and its embedded DNS server (`berth_net::dns`) on its gateway
//! address; berth's nft table keeps networks from reaching each other and `--internal` ones
//! from reaching anything. A container may be on several networks: its first (`NetworkMode`)
//! is `eth0` with the default route and the published ports, the others `eth1`, `eth2`, ...

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use berth_api::containers::{CreateRequest, EndpointSettings};
use berth_api::networks::NetworkCreateRequest;
use berth_net::dns::{
    ContainerResolvConf, DnsContainer, DnsRecords, ResolvConf, Resolver, ResolverConfig,
};
use berth_net::link::host_interface_name;
use berth_net::localports::{watch_addresses, LocalPorts};
use berth_net::ports::SocketPortChecker;
use berth_net::{
    ContainerAttachment, Ipam, IpamStore, Ipv4Subnet, Netlink, NetworkError, Nft, NftNetwork,
    PortMapping, PortSpec, Protocol, SqliteIpamStore,
};

use crate::EngineError;

mod endpoint;
mod etc;
pub mod user;
pub use endpoint::{
    endpoint_settings, mac_for, parse_mac, port_specs, read_endpoint, read_endpoints, Endpoint,
    PublishedPort,
};
use endpoint::{format_mac, write_endpoints, ENDPOINT_FILE};
pub use etc::{hosts_file, resolv_conf};
pub use user::NetworkRecord;

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
    /// Translate host-made connections to published TCP ports at `connect()` (cgroup BPF,
    /// [`berth_net::localports`]) instead of DNATing each of their packets; off by default
    /// here, on by default in `berth daemon` (`--local-ports bpf`).
    pub local_ports: bool,
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
            local_ports: false,
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
    /// A user-defined network, by name (or id).
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

use berth_runtime::error_chain;

/// A bridge network berth runs: the default `bridge` or a user-defined one.
pub struct Net {
    /// Its record (the default bridge's is made from the daemon's settings).
    pub record: NetworkRecord,
    ipam: Ipam,
    /// The embedded DNS server's records: user-defined networks only, as in Docker.
    dns: Option<Arc<DnsRecords>>,
    /// Whether the bridge, its sysctls and its nft rules are set up by this daemon.
    up: AtomicBool,
    bringing_up: tokio::sync::Mutex<()>,
    resolver: tokio::sync::Mutex<Option<Resolver>>,
}

impl Net {
    fn new(record: NetworkRecord, store: Arc<dyn IpamStore>) -> Result<Net, EngineError> {
        let default = record.name == DEFAULT_NETWORK;
        let key = if default {
            DEFAULT_NETWORK.to_string()
        } else {
            record.id.clone()
        };
        let ipam = Ipam::new(store, key, record.subnet, record.gateway).map_err(net_error)?;
        Ok(Net {
            dns: (!default).then(|| Arc::new(DnsRecords::new(record.name.clone()))),
            record,
            ipam,
            up: AtomicBool::new(false),
            bringing_up: tokio::sync::Mutex::new(()),
            resolver: tokio::sync::Mutex::new(None),
        })
    }

    /// Whether this is the default bridge.
    pub fn is_default(&self) -> bool {
        self.dns.is_none()
    }

    /// Ids of the containers that hold an address on this network (running ones).
    pub fn members(&self) -> Vec<String> {
        self.ipam
            .allocations()
            .map(|a| a.into_iter().map(|a| a.owner).collect())
            .unwrap_or_default()
    }

    fn nft(&self) -> NftNetwork {
        NftNetwork {
            bridge: self.record.bridge.clone(),
            subnet: self.record.subnet,
            masquerade: !self.record.internal,
            internal: self.record.internal,
            subnet6: self.record.ipv6.map(|c| c.subnet_text()),
        }
    }
}

/// The stable id of a pre-defined network (`bridge`, `host`, `none`).
pub fn predefined_id(name: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(format!(
        "berth pre-defined network {name}"
    )))
}

fn default_record(config: &NetworkConfig, bridge: &str) -> NetworkRecord {
    NetworkRecord {
        id: predefined_id(DEFAULT_NETWORK),
        name: DEFAULT_NETWORK.into(),
        driver: "bridge".into(),
        bridge: bridge.into(),
        subnet: config.subnet,
        gateway: config.gateway,
        internal: false,
        ipv6: None,
        attachable: false,
        labels: BTreeMap::new(),
        options: [
            ("com.docker.network.bridge.default_bridge", "true"),
            ("com.docker.network.bridge.enable_icc", "true"),
            ("com.docker.network.bridge.enable_ip_masquerade", "true"),
            ("com.docker.network.bridge.host_binding_ipv4", "0.0.0.0"),
            (user::BRIDGE_NAME_OPTION, bridge),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        created: String::new(),
    }
}

/// The name of the host end of a container's `n`th endpoint: `vb` and 12 characters of its id
/// for the first, `vn`, 11 characters and the index for further ones (15 bytes at most).
pub fn host_interface_for(id: &str, n: usize) -> String {
    if n == 0 {
        return host_interface_name(id);
    }
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let short: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(11)
        .collect();
    format!("vn{short}{}", DIGITS[n % DIGITS.len()] as char)
}

/// A running container and its endpoints, for [`Networks::reconcile`].
pub struct LiveEndpoints {
    /// Container id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its endpoints as recorded.
    pub endpoints: Vec<Endpoint>,
    /// Its `--dns` servers.
    pub dns: Vec<String>,
}

/// The engine's networking state.
pub struct Networks {
    config: NetworkConfig,
    ipam_store: Arc<dyn IpamStore>,
    store: Option<user::NetworkStore>,
    default: Option<Arc<Net>>,
    user: std::sync::RwLock<BTreeMap<String, Arc<Net>>>,
    nft: Nft,
    /// Held shared while a container joins a network, exclusively while networks are made
    /// or removed.
    changes: tokio::sync::RwLock<()>,
    /// Serialises rewrites of the nft table's rules.
    nft_rules: tokio::sync::Mutex<()>,
    /// Serialises host-port choice and publishing.
    publishing: tokio::sync::Mutex<()>,
    /// Host veths of exited containers being deleted in the background (interface name →
    /// task), awaited by a new endpoint of the same name.
    deleting: std::sync::Mutex<HashMap<String, tokio::task::JoinHandle<()>>>,
    /// The connect-time translation of published ports, attached when the first port is
    /// published (`None` inside: turned off, or the kernel refused it).
    local_ports: tokio::sync::OnceCell<Option<Arc<LocalPorts>>>,
}

/// The TCP ones of an endpoint's recorded ports, as [`LocalPorts`] takes them.
fn tcp_mappings(ports: &[PublishedPort]) -> Vec<PortMapping> {
    ports
        .iter()
        .filter(|p| p.protocol == Protocol::Tcp.as_str())
        .map(|p| PortMapping {
            host_ip: p.host_ip,
            host_port: p.host_port,
            container_port: p.container_port,
            protocol: Protocol::Tcp,
        })
        .collect()
}

/// `--dns` servers as the embedded DNS server forwards to them.
fn dns_servers_of(dns: &[String]) -> Vec<SocketAddr> {
    dns.iter()
        .filter_map(|d| d.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

fn dns_servers(req: &CreateRequest) -> Vec<SocketAddr> {
    dns_servers_of(&req.host_config.dns)
}

/// A container's records on one network: its name, aliases and short id → its address.
fn dns_entry(
    id: &str,
    name: &str,
    aliases: &[String],
    (ip, ip6): (Ipv4Addr, Option<Ipv6Addr>),
    dns_servers: Vec<SocketAddr>,
) -> DnsContainer {
    DnsContainer {
        id: id.to_string(),
        name: name.to_string(),
        aliases: aliases.to_vec(),
        ipv4: vec![ip],
        ipv6: ip6.into_iter().collect(),
        dns_servers,
    }
}

impl Networks {
    /// Opens the IPAM store and the user-defined networks in `db` (the engine's database).
    pub fn open(config: NetworkConfig, db: &Path) -> Result<Networks, EngineError> {
        let ipam_store: Arc<dyn IpamStore> =
            Arc::new(SqliteIpamStore::open(db).map_err(net_error)?);
        let store = user::NetworkStore::open(db)?;
        let mut user = BTreeMap::new();
        for record in store.list()? {
            let id = record.id.clone();
            user.insert(id, Arc::new(Net::new(record, ipam_store.clone())?));
        }
        let mut networks = Networks::with_store(config, ipam_store)?;
        networks.store = Some(store);
        networks.user = std::sync::RwLock::new(user);
        Ok(networks)
    }

    fn with_store(
        config: NetworkConfig,
        ipam_store: Arc<dyn IpamStore>,
    ) -> Result<Networks, EngineError> {
        let default = match &config.bridge {
            Some(bridge) => Some(Arc::new(Net::new(
                default_record(&config, bridge),
                ipam_store.clone(),
            )?)),
            None => None,
        };
        Ok(Networks {
            nft: Nft {
                table: config.nft_table.clone(),
                ..Nft::default()
            },
            config,
            ipam_store,
            store: None,
            default,
            user: Default::default(),
            changes: Default::default(),
            nft_rules: Default::default(),
            publishing: Default::default(),
            deleting: Default::default(),
            local_ports: Default::default(),
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

    /// The default bridge (when enabled) and every user-defined network.
    pub fn all(&self) -> Vec<Arc<Net>> {
        let user = self.user.read().unwrap_or_else(|p| p.into_inner());
        self.default
            .iter()
            .cloned()
            .chain(user.values().cloned())
            .collect()
    }

    /// A bridge network by name, id or unique id prefix (`bridge` is the default one).
    pub fn find(&self, key: &str) -> Result<Arc<Net>, EngineError> {
        if key == DEFAULT_NETWORK || key == predefined_id(DEFAULT_NETWORK) {
            return self.default.clone().ok_or_else(|| {
                EngineError::NotFound(
                    "network bridge not found: the default bridge network is disabled (daemon started with --bridge none); create a network with `network create` or use --network none or host".into(),
                )
            });
        }
        let user = self.user.read().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = user.get(key) {
            return Ok(n.clone());
        }
        if let Some(n) = user.values().find(|n| n.record.name == key) {
            return Ok(n.clone());
        }
        let by_prefix: Vec<_> = user
            .values()
            .filter(|n| !key.is_empty() && n.record.id.starts_with(key))
            .collect();
        match by_prefix.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(EngineError::NotFound(format!("network {key} not found"))),
            _ => Err(EngineError::NotFound(format!(
                "network {key} is ambiguous ({} networks have ids starting with it); give more of the id or the name",
                by_prefix.len()
            ))),
        }
    }

    /// Rewrites a create request's network names to the networks' own names (an id or id
    /// prefix may name them, and `default` the default mode, already resolved in
    /// `NetworkMode`), so that the record keeps working when names are looked up.
    pub fn normalize(&self, req: &mut CreateRequest) -> Result<(), EngineError> {
        // the docker CLI keys its endpoint settings by the mode it sent (`default`)
        let mode = req.host_config.network_mode.clone();
        if let Some(nc) = req.networking_config.as_mut() {
            if let Some(settings) = nc.endpoints_config.remove("default") {
                nc.endpoints_config.entry(mode).or_insert(settings);
            }
        }
        let primary = match NetworkMode::parse(&req.host_config.network_mode) {
            NetworkMode::Bridge => Some(DEFAULT_NETWORK.to_string()),
            NetworkMode::Named(key) => Some(self.find(&key)?.record.name.clone()),
            _ => None,
        };
        if let NetworkMode::Named(key) = NetworkMode::parse(&req.host_config.network_mode) {
            let net = self.find(&key)?;
            let name = net.record.name.clone();
            if name != key {
                if let Some(nc) = req.networking_config.as_mut() {
                    if let Some(settings) = nc.endpoints_config.remove(&key) {
                        nc.endpoints_config.insert(name.clone(), settings);
                    }
                }
                req.host_config.network_mode = name;
            }
        }
        if let Some(primary) = primary {
            // the record lists every network of the container, its mode's first
            req.networking_config
                .get_or_insert_with(Default::default)
                .endpoints_config
                .entry(primary)
                .or_default();
        }
        Ok(())
    }

    /// The networks a container joins at start, its primary network (`NetworkMode`) first,
    /// with the endpoint settings asked for each.
    pub fn plan(
        &self,
        req: &CreateRequest,
    ) -> Result<Vec<(Arc<Net>, EndpointSettings)>, EngineError> {
        let mode = NetworkMode::parse(&req.host_config.network_mode);
        let primary_key = match &mode {
            NetworkMode::Bridge => DEFAULT_NETWORK.to_string(),
            NetworkMode::Named(name) => name.clone(),
            _ => return Ok(Vec::new()),
        };
        let mut out: Vec<(Arc<Net>, EndpointSettings)> = Vec::new();
        let Some(nc) = &req.networking_config else {
            // a record of an older berth: its network mode only
            out.push((self.find(&primary_key)?, EndpointSettings::default()));
            return Ok(out);
        };
        // the endpoints are the container's networks (Docker's NetworkSettings.Networks): its
        // mode's network unless it was disconnected from it, and those it was connected to
        let endpoints = nc.endpoints_config.clone();
        if let Some(settings) = endpoints.get(&primary_key) {
            out.push((self.find(&primary_key)?, settings.clone()));
        }
        for (key, settings) in endpoints {
            if key == primary_key || matches!(key.as_str(), "host" | "none") {
                continue;
            }
            let net = self.find(&key)?;
            if out.iter().any(|(n, _)| n.record.id == net.record.id) {
                continue;
            }
            out.push((net, settings));
        }
        Ok(out)
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
            NetworkMode::Bridge | NetworkMode::Named(_) => {
                for (i, (net, settings)) in self.plan(req)?.into_iter().enumerate() {
                    check_endpoint(&net, &settings)?;
                    if i == 0 {
                        // the container-wide --mac-address of older API versions
                        endpoint_settings(&settings, &req.config.mac_address)?;
                    }
                }
            }
            NetworkMode::None | NetworkMode::Host | NetworkMode::Container(_) => {
                if !specs.is_empty() {
                    return Err(EngineError::Invalid(format!(
                        "conflicting options: port publishing and the network mode {:?}",
                        req.host_config.network_mode
                    )));
                }
                let mode_name = req.host_config.network_mode.as_str();
                let others: Vec<&String> = req
                    .networking_config
                    .iter()
                    .flat_map(|n| n.endpoints_config.keys())
                    .filter(|k| k.as_str() != mode_name)
                    .collect();
                if let Some(other) = others.first() {
                    return Err(EngineError::Invalid(format!(
                        "conflicting options: the network mode {mode_name:?} and the network {other}: a container in that mode cannot join other networks"
                    )));
                }
                let settings = req
                    .networking_config
                    .as_ref()
                    .and_then(|n| n.endpoints_config.get(mode_name))
                    .cloned()
                    .unwrap_or_default();
                let (ip, mac) = endpoint_settings(&settings, "")?;
                if ip.is_some() || mac.is_some() || !req.config.mac_address.is_empty() {
                    return Err(EngineError::Invalid(format!(
                        "conflicting options: --ip/--mac-address and the network mode {mode_name:?}"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Brings a network up once per daemon: its bridge and address, forwarding and
    /// `route_localnet`, its rules in berth's nft table, and its DNS server.
    async fn ensure_up(&self, net: &Net) -> Result<(), EngineError> {
        if net.up.load(Ordering::Acquire) {
            return Ok(());
        }
        let _g = net.bringing_up.lock().await;
        if net.up.load(Ordering::Acquire) {
            return Ok(());
        }
        let r = &net.record;
        let nl = Netlink::connect().map_err(net_error)?;
        nl.ensure_bridge(&r.bridge, r.gateway, r.subnet.prefix_len())
            .await
            .map_err(net_error)?;
        let proc_sys = Path::new("/proc/sys");
        if !r.internal {
            berth_net::sysctl::enable_ip_forward(proc_sys).map_err(net_error)?;
        }
        berth_net::sysctl::enable_route_localnet(proc_sys, &r.bridge).map_err(net_error)?;
        if let Some(c) = r.ipv6 {
            nl.ensure_address6(&r.bridge, c.gateway, c.prefix_len)
                .await
                .map_err(net_error)?;
            if !r.internal {
                berth_net::sysctl::enable_ipv6_forward(proc_sys).map_err(net_error)?;
            }
        }
        net.up.store(true, Ordering::Release);
        if let Err(e) = self.apply_rules().await {
            net.up.store(false, Ordering::Release);
            return Err(e);
        }
        if let Some(records) = &net.dns {
            let upstreams = ResolvConf::read(Path::new("/etc/resolv.conf"))
                .map(|c| c.upstreams())
                .unwrap_or_default();
            let config = ResolverConfig {
                upstreams,
                internal: r.internal,
                clients: Some(r.subnet),
                ..ResolverConfig::default()
            };
            let bind = SocketAddr::new(IpAddr::V4(r.gateway), 53);
            match Resolver::start(bind, records.clone(), config).await {
                Ok(resolver) => *net.resolver.lock().await = Some(resolver),
                Err(e) => {
                    net.up.store(false, Ordering::Release);
                    let _ = self.apply_rules().await;
                    return Err(EngineError::Internal(format!(
                        "starting the DNS server of network {}: {}",
                        r.name,
                        error_chain(&e)
                    )));
                }
            }
        }
        Ok(())
    }

    /// Rewrites the rules of berth's nft table for the networks that are up (the published
    /// ports in its maps stay); deletes the table when none is.
    async fn apply_rules(&self) -> Result<(), EngineError> {
        let _g = self.nft_rules.lock().await;
        let up: Vec<NftNetwork> = self
            .all()
            .iter()
            .filter(|n| n.up.load(Ordering::Acquire))
            .map(|n| n.nft())
            .collect();
        if up.is_empty() {
            self.nft.delete_table().map_err(net_error)
        } else {
            self.nft.setup(&up).map_err(net_error)
        }
    }

    /// Takes a network down: its DNS server, its bridge, its nft rules.
    async fn tear_down(&self, net: &Net) {
        if let Some(resolver) = net.resolver.lock().await.take() {
            resolver.stop().await;
        }
        net.up.store(false, Ordering::Release);
        if let Err(e) = self.apply_rules().await {
            tracing::warn!(network = net.record.name, error = %e, "cannot update the nft table");
        }
        match Netlink::connect() {
            Ok(nl) => {
                if let Err(e) = nl.delete(&net.record.bridge).await {
                    tracing::warn!(bridge = net.record.bridge, error = %e, "cannot delete bridge");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot open netlink"),
        }
    }

    /// `network create`: records the network and brings it up (bridge, nft rules, DNS).
    pub async fn create(&self, req: &NetworkCreateRequest) -> Result<NetworkRecord, EngineError> {
        let plan = user::plan(req)?;
        let store = self
            .store
            .as_ref()
            .ok_or_else(|| EngineError::Internal("no network database".into()))?;
        let _g = self.changes.write().await;
        let existing = self.all();
        if let Some(n) = existing.iter().find(|n| n.record.name == plan.name) {
            return Err(EngineError::Conflict(format!(
                "network with name {} already exists (id {}); choose another name or remove it first",
                plan.name,
                &n.record.id[..12]
            )));
        }
        let mut taken: Vec<(Ipv4Subnet, String)> = existing
            .iter()
            .map(|n| (n.record.subnet, n.record.name.clone()))
            .collect();
        if self.default.is_none() {
            taken.push((self.config.subnet, DEFAULT_NETWORK.into()));
        }
        let subnet = match plan.subnet {
            Some(s) => {
                if let Some((other, name)) = taken.iter().find(|(t, _)| user::overlaps(*t, s)) {
                    return Err(EngineError::Forbidden(format!(
                        "invalid pool request: the subnet {s} overlaps {other} of network {name}; choose another --subnet"
                    )));
                }
                s
            }
            None => {
                let mut avoid: Vec<Ipv4Subnet> = taken.iter().map(|(s, _)| *s).collect();
                avoid.extend(user::host_routes());
                user::free_subnet(&avoid)?
            }
        };
        let id = crate::containers::new_id();
        let bridge = plan
            .bridge
            .clone()
            .unwrap_or_else(|| format!("bn-{}", &id[..12]));
        if let Some(n) = existing.iter().find(|n| n.record.bridge == bridge) {
            return Err(EngineError::Conflict(format!(
                "the bridge {bridge} is already used by network {}",
                n.record.name
            )));
        }
        let gateway = plan.gateway.unwrap_or_else(|| subnet.first_host());
        let ipv6 = match (plan.ipv6, plan.subnet6) {
            (false, _) => None,
            (true, given) => {
                let (subnet6, prefix_len) = given.unwrap_or_else(|| user::ula_subnet(&id));
                if let Some(other) = existing.iter().find(|n| {
                    n.record.ipv6.is_some_and(|c| {
                        user::overlaps6((c.subnet, c.prefix_len), (subnet6, prefix_len))
                    })
                }) {
                    return Err(EngineError::Forbidden(format!(
                        "invalid pool request: the subnet {subnet6}/{prefix_len} overlaps the IPv6 subnet of network {}; choose another --subnet",
                        other.record.name
                    )));
                }
                let mut c = user::Ipv6Config {
                    subnet: subnet6,
                    prefix_len,
                    gateway: subnet6,
                };
                c.gateway = c.mirror(subnet, gateway);
                Some(c)
            }
        };
        let record = NetworkRecord {
            id: id.clone(),
            name: plan.name,
            driver: "bridge".into(),
            bridge,
            subnet,
            gateway,
            internal: plan.internal,
            ipv6,
            attachable: plan.attachable,
            labels: plan.labels,
            options: plan.options,
            created: crate::containers::now(),
        };
        store.insert(&record)?;
        let net = Arc::new(Net::new(record.clone(), self.ipam_store.clone())?);
        self.user
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), net.clone());
        if let Err(e) = self.ensure_up(&net).await {
            // nothing half-made: no record, no bridge, no rules
            self.user
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
            self.tear_down(&net).await;
            let _ = store.delete(&id);
            return Err(e);
        }
        Ok(record)
    }

    /// `network rm`: refused for pre-defined networks and networks with running containers.
    pub async fn remove(&self, key: &str) -> Result<NetworkRecord, EngineError> {
        if user::PREDEFINED.contains(&key) {
            return Err(EngineError::Forbidden(format!(
                "{key} is a pre-defined network and cannot be removed"
            )));
        }
        let net = self.find(key)?;
        if net.is_default() {
            return Err(EngineError::Forbidden(
                "bridge is a pre-defined network and cannot be removed".into(),
            ));
        }
        let _g = self.changes.write().await;
        let members = net.members();
        if !members.is_empty() {
            return Err(EngineError::Forbidden(format!(
                "error while removing network: network {} id {} has active endpoints ({} running container{}); stop them or disconnect them first (network disconnect)",
                net.record.name,
                net.record.id,
                members.len(),
                if members.len() == 1 { "" } else { "s" }
            )));
        }
        let id = net.record.id.clone();
        self.user
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        self.tear_down(&net).await;
        let _ = net.ipam.reconcile(&HashSet::new());
        if let Some(store) = &self.store {
            store.delete(&id)?;
        }
        Ok(net.record.clone())
    }

    /// Joins container `id` (its init is `pid`, created but not yet running) to every network
    /// of its plan: addresses, veths, published ports (on the first network), DNS names;
    /// records them in `dir/network.json`. On failure nothing is left.
    pub async fn connect(
        &self,
        id: &str,
        name: &str,
        pid: i32,
        dir: &Path,
        req: &CreateRequest,
        exposed: &[String],
    ) -> Result<Vec<Endpoint>, EngineError> {
        let _g = self.changes.read().await;
        let plan = self.plan(req)?;
        let specs = port_specs(req, exposed)?;
        let dns = dns_servers(req);
        let mut made: Vec<Endpoint> = Vec::new();
        for (n, (net, settings)) in plan.iter().enumerate() {
            let join = Join {
                id,
                name,
                pid,
                index: n,
                interface: format!("eth{n}"),
                default_route: n == 0,
                specs: if n == 0 { &specs[..] } else { &[] },
                mac_fallback: if n == 0 { &req.config.mac_address } else { "" },
                dns: dns.clone(),
            };
            match self.join(net, settings, &join).await {
                Ok(e) => made.push(e),
                Err(e) => {
                    for m in &made {
                        self.undo(id, m, false).await;
                    }
                    return Err(e);
                }
            }
        }
        if let Err(e) = write_endpoints(dir, &made) {
            for m in &made {
                self.undo(id, m, false).await;
            }
            return Err(e);
        }
        Ok(made)
    }

    /// `network connect` of a running container: one more endpoint (`ethN`), recorded.
    pub async fn connect_running(
        &self,
        c: &Running<'_>,
        net: &Arc<Net>,
        settings: &EndpointSettings,
        req: &CreateRequest,
    ) -> Result<Endpoint, EngineError> {
        let Running { id, name, pid, dir } = *c;
        let _g = self.changes.read().await;
        let mut endpoints = read_endpoints(dir);
        let n = (0..)
            .find(|n| {
                let host = host_interface_for(id, *n);
                let inside = format!("eth{n}");
                !endpoints
                    .iter()
                    .any(|e| e.host_interface == host || e.interface == inside)
            })
            .unwrap_or(0);
        let join = Join {
            id,
            name,
            pid,
            index: n,
            interface: format!("eth{n}"),
            default_route: endpoints.is_empty(),
            specs: &[],
            mac_fallback: "",
            dns: dns_servers(req),
        };
        let endpoint = self.join(net, settings, &join).await?;
        endpoints.push(endpoint.clone());
        if let Err(e) = write_endpoints(dir, &endpoints) {
            self.undo(id, &endpoint, false).await;
            return Err(e);
        }
        Ok(endpoint)
    }

    /// `network disconnect` of a running container: its endpoint on `net` goes.
    pub async fn disconnect_running(&self, id: &str, dir: &Path, net: &Net) -> bool {
        let mut endpoints = read_endpoints(dir);
        let Some(pos) = endpoints.iter().position(|e| {
            e.network_id == net.record.id || (net.is_default() && e.network == DEFAULT_NETWORK)
        }) else {
            return false;
        };
        let endpoint = endpoints.remove(pos);
        self.undo(id, &endpoint, false).await;
        if let Err(e) = write_endpoints(dir, &endpoints) {
            tracing::warn!(container = id, error = %e, "cannot rewrite the endpoint record");
        }
        true
    }

    async fn join(
        &self,
        net: &Arc<Net>,
        settings: &EndpointSettings,
        j: &Join<'_>,
    ) -> Result<Endpoint, EngineError> {
        check_endpoint(net, settings)?;
        self.ensure_up(net).await?;
        let r = &net.record;
        let (requested_ip, requested_mac) = endpoint_settings(settings, j.mac_fallback)?;
        let ip = net.ipam.allocate(j.id, requested_ip).map_err(net_error)?;
        let mac = requested_mac.unwrap_or_else(|| mac_for(ip));
        let ipv6 = r
            .ipv6
            .map(|c| (c.mirror(r.subnet, ip), c.prefix_len, c.gateway));
        let mut endpoint = Endpoint {
            ipv6: ipv6.map(|v| v.0),
            ipv6_prefix_len: ipv6.map(|v| v.1).unwrap_or(0),
            ipv6_gateway: ipv6.map(|v| v.2),
            version: 2,
            network: r.name.clone(),
            network_id: r.id.clone(),
            bridge: r.bridge.clone(),
            host_interface: host_interface_for(j.id, j.index),
            interface: j.interface.clone(),
            ip,
            prefix_len: r.subnet.prefix_len(),
            gateway: r.gateway,
            mac: format_mac(mac),
            aliases: settings.aliases.clone(),
            ports: vec![],
        };
        // a restart right after an exit: the old veth (same name) must be gone first
        let deleting = self
            .deleting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&endpoint.host_interface);
        if let Some(task) = deleting {
            let _ = task.await;
        }
        let made = async {
            let nl = Netlink::connect().map_err(net_error)?;
            nl.attach(&ContainerAttachment {
                bridge: r.bridge.clone(),
                host_interface: endpoint.host_interface.clone(),
                netns: PathBuf::from(format!("/proc/{}/ns/net", j.pid)),
                interface: endpoint.interface.clone(),
                address: ip,
                prefix_len: endpoint.prefix_len,
                gateway: endpoint.gateway,
                default_route: j.default_route && !r.internal,
                ipv6,
                mac: Some(mac),
                mtu: None,
            })
            .await
            .map_err(net_error)?;
            if !j.specs.is_empty() && !r.internal {
                endpoint.ports = self.publish(ip, j.specs).await?;
            }
            if let Some(records) = &net.dns {
                records
                    .add(dns_entry(
                        j.id,
                        j.name,
                        &settings.aliases,
                        (ip, ipv6.map(|v| v.0)),
                        j.dns.clone(),
                    ))
                    .map_err(|e| EngineError::Invalid(error_chain(&e)))?;
            }
            Ok(())
        }
        .await;
        if let Err(e) = made {
            self.undo(j.id, &endpoint, false).await;
            return Err(e);
        }
        Ok(endpoint)
    }

    async fn publish(
        &self,
        ip: Ipv4Addr,
        specs: &[PortSpec],
    ) -> Result<Vec<PublishedPort>, EngineError> {
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
        for spec in specs {
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
        if let Some(local) = self.local_ports().await {
            // nft alone still publishes them (each packet DNATed)
            if let Err(e) = local.add(ip, &mappings) {
                tracing::warn!(error = %error_chain(&e), "published ports go through nft only");
            }
        }
        Ok(mappings.into_iter().map(PublishedPort::from).collect())
    }

    /// The connect-time translation, attached on first use in the daemon's network namespace
    /// with a task that keeps its set of local addresses current; `None` when turned off or
    /// refused (said once in the log: nft then carries host-made connections too).
    async fn local_ports(&self) -> Option<Arc<LocalPorts>> {
        if !self.config.local_ports {
            return None;
        }
        self.local_ports
            .get_or_init(|| async {
                match LocalPorts::attach() {
                    Ok(local) => {
                        let local = Arc::new(local);
                        tracing::info!(cgroup = %local.cgroup().display(), "published ports: connections made on this host are translated at connect()");
                        let watched = local.clone();
                        tokio::spawn(async move {
                            if let Err(e) = watch_addresses(watched).await {
                                tracing::warn!(error = %error_chain(&e), "cannot follow the host's addresses: ports published on every address are translated for 127.0.0.0/8 only");
                            }
                        });
                        Some(local)
                    }
                    Err(e) => {
                        tracing::info!(error = %error_chain(&e), "published ports: connections made on this host go through nft (no connect-time translation)");
                        None
                    }
                }
            })
            .await
            .clone()
    }

    fn net_of(&self, endpoint: &Endpoint) -> Option<Arc<Net>> {
        if endpoint.network == DEFAULT_NETWORK && endpoint.network_id.is_empty() {
            return self.default.clone();
        }
        self.all()
            .into_iter()
            .find(|n| n.record.id == endpoint.network_id)
    }

    /// Undoes an endpoint. `in_background`: the container has exited, so the kernel removes
    /// the veth with its network namespace anyway; deleting it takes the kernel 10-20 ms
    /// (the unregister waits for RCU grace periods under the rtnl lock, or for the namespace
    /// cleanup that holds it), which `run --rm` would wait for: the delete then runs as a
    /// task (so a veth whose namespace is shared, `--network container:`, still goes), and
    /// a later endpoint of the same name awaits it; reconcile sweeps one a crash left.
    async fn undo(&self, id: &str, endpoint: &Endpoint, in_background: bool) {
        // publishing is one nft transaction: an endpoint without recorded ports has none in
        // the table, and reconcile sweeps any a crash left (so `run --rm` pays no `nft` run)
        if !endpoint.ports.is_empty() {
            if let Some(local) = self.local_ports.get().cloned().flatten() {
                if let Err(e) = local.remove(&tcp_mappings(&endpoint.ports)) {
                    tracing::warn!(container = id, error = %error_chain(&e), "cannot stop translating published ports");
                }
            }
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
                    deleting.insert(endpoint.host_interface.clone(), tokio::spawn(delete));
                } else {
                    delete.await;
                }
            }
            Err(e) => tracing::warn!(container = id, error = %e, "cannot open netlink"),
        }
        if let Some(net) = self.net_of(endpoint) {
            if let Some(records) = &net.dns {
                records.remove(id);
            }
            if let Err(e) = net.ipam.release(id) {
                tracing::warn!(container = id, error = %e, "cannot release address");
            }
        }
    }

    /// Undoes what [`Networks::connect`] made for container `id`, which is no longer running
    /// (idempotent): its published ports, its addresses, its DNS names, its record, and (in
    /// the background, see `undo`) its veths.
    pub async fn disconnect(&self, id: &str, dir: &Path) {
        let endpoints = read_endpoints(dir);
        for endpoint in &endpoints {
            self.undo(id, endpoint, true).await;
        }
        if endpoints.is_empty() {
            if let Some(net) = &self.default {
                let _ = net.ipam.release(id);
            }
        }
        let _ = std::fs::remove_file(dir.join(ENDPOINT_FILE));
    }

    /// A running container was renamed: its DNS records answer the new name.
    pub fn rename(&self, id: &str, name: &str, dir: &Path, req: &CreateRequest) {
        for e in read_endpoints(dir) {
            let Some(net) = self.net_of(&e) else { continue };
            if let Some(records) = &net.dns {
                let _ = records.add(dns_entry(
                    id,
                    name,
                    &e.aliases,
                    (e.ip, e.ipv6),
                    dns_servers(req),
                ));
            }
        }
    }

    /// The `/etc/resolv.conf` of a container whose first network is `primary`: on a
    /// user-defined network, the network's DNS server (on its gateway) answers; `None`
    /// keeps the file written at create.
    pub fn resolv_conf_for(&self, req: &CreateRequest, primary: &Endpoint) -> Option<String> {
        let net = self.net_of(primary)?;
        net.dns.as_ref()?;
        let host = ResolvConf::read(Path::new("/etc/resolv.conf")).unwrap_or_default();
        Some(
            ContainerResolvConf::for_container(
                IpAddr::V4(primary.gateway),
                &host,
                &req.host_config.dns_search,
                &req.host_config.dns_options,
            )
            .render(),
        )
    }

    /// After a daemon start: brings the networks up again (bridges, rules, DNS servers with
    /// the names of the running containers), then removes addresses, published ports, veths
    /// and bridges that belong to nothing running or recorded.
    pub async fn reconcile(&self, live: &[LiveEndpoints]) {
        let all = self.all();
        for net in &all {
            let used = live.iter().any(|c| {
                c.endpoints
                    .iter()
                    .any(|e| self.net_of(e).is_some_and(|n| Arc::ptr_eq(&n, net)))
            });
            if net.is_default() && !used {
                continue;
            }
            if let Err(e) = self.ensure_up(net).await {
                tracing::warn!(network = net.record.name, error = %e, "cannot bring the network up");
            }
        }
        for net in &all {
            let on_it: HashSet<String> = live
                .iter()
                .filter(|c| {
                    c.endpoints
                        .iter()
                        .any(|e| self.net_of(e).is_some_and(|n| Arc::ptr_eq(&n, net)))
                })
                .map(|c| c.id.clone())
                .collect();
            match net.ipam.reconcile(&on_it) {
                Ok(freed) if !freed.is_empty() => {
                    tracing::info!(
                        network = net.record.name,
                        count = freed.len(),
                        "freed addresses of gone containers"
                    )
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "ipam reconcile failed"),
            }
        }
        for c in live {
            for e in &c.endpoints {
                let Some(net) = self.net_of(e) else { continue };
                if let Some(records) = &net.dns {
                    let dns = dns_servers_of(&c.dns);
                    let _ = records.add(dns_entry(&c.id, &c.name, &e.aliases, (e.ip, e.ipv6), dns));
                }
            }
        }
        let live_ips: HashSet<Ipv4Addr> = live
            .iter()
            .flat_map(|c| c.endpoints.iter().map(|e| e.ip))
            .collect();
        match self.nft.table_exists() {
            Ok(true) => match self.nft.reconcile(&live_ips) {
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
        // a new daemon starts with empty maps: the running containers' ports fill them
        if live
            .iter()
            .any(|c| c.endpoints.iter().any(|e| !e.ports.is_empty()))
        {
            if let Some(local) = self.local_ports().await {
                for e in live.iter().flat_map(|c| c.endpoints.iter()) {
                    if let Err(err) = local.add(e.ip, &tcp_mappings(&e.ports)) {
                        tracing::warn!(error = %error_chain(&err), "published ports go through nft only");
                    }
                }
            }
        }
        let keep: HashSet<String> = live
            .iter()
            .flat_map(|c| c.endpoints.iter().map(|e| e.host_interface.clone()))
            .chain(all.iter().map(|n| n.record.bridge.clone()))
            .collect();
        if let Ok(nl) = Netlink::connect() {
            for prefix in ["vb", "vn", "bn-"] {
                match nl.names_with_prefix(prefix).await {
                    Ok(names) => {
                        for name in names.into_iter().filter(|n| !keep.contains(n)) {
                            tracing::info!(
                                interface = name,
                                "deleting an interface of a gone container or network"
                            );
                            let _ = nl.delete(&name).await;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot list interfaces"),
                }
            }
        }
    }

    /// Stops the DNS servers (daemon shutdown); bridges and rules stay for running containers.
    pub async fn shutdown(&self) {
        for net in self.all() {
            if let Some(resolver) = net.resolver.lock().await.take() {
                resolver.stop().await;
            }
        }
    }
}

/// A running container, as [`Networks::connect_running`] needs it.
#[derive(Clone, Copy)]
pub struct Running<'a> {
    /// Its id.
    pub id: &'a str,
    /// Its name (its DNS name).
    pub name: &'a str,
    /// Its init's pid (whose network namespace gets the interface).
    pub pid: i32,
    /// Its directory (with the endpoint record).
    pub dir: &'a Path,
}

/// One endpoint being made.
struct Join<'a> {
    id: &'a str,
    name: &'a str,
    pid: i32,
    index: usize,
    interface: String,
    default_route: bool,
    specs: &'a [PortSpec],
    mac_fallback: &'a str,
    dns: Vec<SocketAddr>,
}

/// Checks `--ip` against a network.
fn check_endpoint(net: &Net, settings: &EndpointSettings) -> Result<(), EngineError> {
    let (ip, _) = endpoint_settings(settings, "")?;
    if let Some(ip) = ip {
        let r = &net.record;
        if !r.subnet.contains(ip) {
            return Err(EngineError::Invalid(format!(
                "invalid --ip {ip}: it is not in the {} network's subnet {}",
                r.name, r.subnet
            )));
        }
        if !r.subnet.is_host(ip) || ip == r.gateway {
            return Err(EngineError::Invalid(format!(
                "invalid --ip {ip}: it is the network, broadcast or gateway address of {}",
                r.subnet
            )));
        }
    }
    for alias in &settings.aliases {
        berth_net::dns::check_dns_name(alias).map_err(|e| {
            EngineError::Invalid(format!("invalid --network-alias: {}", error_chain(&e)))
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::containers::{
        EndpointIpamConfig, EndpointSettings, NetworkingConfig, PortBinding,
    };

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
    fn ip_and_mac_are_checked() {
        let networks = Networks::with_store(
            NetworkConfig::default(),
            Arc::new(berth_net::MemoryIpamStore::default()),
        )
        .expect("networks");
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
            endpoint_settings(&EndpointSettings::default(), &r.config.mac_address)
                .expect("mac")
                .1,
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
}
