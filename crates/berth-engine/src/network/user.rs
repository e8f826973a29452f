//! User-defined networks (`network create`): their records in the `networks` table of
//! engine.db, the checks of a create request, and the choice of a free subnet.
//!
//! A network is a bridge of its own (`bn-` and 12 characters of its id, or the name given with
//! `-o com.docker.network.bridge.name=NAME`), a subnet with IPAM, and (unlike the default
//! bridge, as in Docker) an embedded DNS server. The kernel state is brought up in
//! [`super::Networks`].

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::Mutex;

use berth_api::networks::NetworkCreateRequest;
use berth_net::Ipv4Subnet;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::EngineError;

/// The networks every daemon has and no one can remove (Docker's predefined networks).
pub const PREDEFINED: [&str; 3] = ["bridge", "host", "none"];

/// Docker's option that names a network's bridge.
pub const BRIDGE_NAME_OPTION: &str = "com.docker.network.bridge.name";

/// Where subnets of networks created without `--subnet` come from: /20s (4,094 addresses
/// each) of 10.214.0.0–10.221.255.255, clear of berth's default bridge (10.213.0.0/16),
/// Docker's (172.17.0.0/16 and up, 192.168.0.0/16) and Podman's (10.88.0.0/16, 10.89.0.0/16).
const POOL_FIRST: Ipv4Addr = Ipv4Addr::new(10, 214, 0, 0);
const POOL_PREFIX: u8 = 20;
const POOL_SIZE: u32 = 128;

/// One user-defined network as recorded.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NetworkRecord {
    /// 64 hex characters.
    pub id: String,
    /// Its unique name.
    pub name: String,
    /// `bridge` (the only driver).
    pub driver: String,
    /// The Linux bridge.
    pub bridge: String,
    /// Its subnet.
    #[serde(with = "subnet_text")]
    pub subnet: Ipv4Subnet,
    /// The gateway: the bridge's address, the containers' default route and DNS server.
    pub gateway: Ipv4Addr,
    /// `--internal`: no traffic in or out of the network, no default route.
    pub internal: bool,
    /// `--ipv6`: its IPv6 subnet and gateway.
    #[serde(default)]
    pub ipv6: Option<Ipv6Config>,
    /// `--attachable` (recorded; every local network is attachable).
    #[serde(default)]
    pub attachable: bool,
    /// `--label`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `-o/--opt` driver options.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// RFC 3339 creation time.
    pub created: String,
}

/// `Ipv4Subnet` as its text (`10.214.0.0/20`) in records.
mod subnet_text {
    use berth_net::Ipv4Subnet;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(s: &Ipv4Subnet, ser: S) -> Result<S::Ok, S::Error> {
        ser.collect_str(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<Ipv4Subnet, D::Error> {
        let text = String::deserialize(de)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Checks a network name the way Docker does.
pub fn check_name(name: &str) -> Result<(), EngineError> {
    if name.is_empty() {
        return Err(EngineError::Invalid(
            "a network needs a name: network create NAME".into(),
        ));
    }
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    if !first_ok
        || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        || name.len() > 128
    {
        return Err(EngineError::Invalid(format!(
            "invalid network name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )));
    }
    Ok(())
}

/// What a create request asks for, checked: everything but the subnet choice (which needs
/// the other networks) and the id.
#[derive(Debug, Clone)]
pub struct CreatePlan {
    /// The name.
    pub name: String,
    /// `--subnet`.
    pub subnet: Option<Ipv4Subnet>,
    /// `--gateway`.
    pub gateway: Option<Ipv4Addr>,
    /// `--ipv6`.
    pub ipv6: bool,
    /// An IPv6 `--subnet` (network address and prefix length).
    pub subnet6: Option<(Ipv6Addr, u8)>,
    /// `--internal`.
    pub internal: bool,
    /// `--attachable`.
    pub attachable: bool,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Options.
    pub options: BTreeMap<String, String>,
    /// The bridge's name when given with `-o com.docker.network.bridge.name`.
    pub bridge: Option<String>,
}

/// Checks a `POST /networks/create` body.
pub fn plan(req: &NetworkCreateRequest) -> Result<CreatePlan, EngineError> {
    check_name(&req.name)?;
    if PREDEFINED.contains(&req.name.as_str()) {
        return Err(EngineError::Forbidden(format!(
            "{} is a pre-defined network and cannot be created",
            req.name
        )));
    }
    match req.driver.as_str() {
        "" | "bridge" => {}
        other => {
            return Err(EngineError::NotFound(format!(
                "plugin {other:?} not found: berth's networks use the bridge driver (leave out --driver or use --driver bridge)"
            )))
        }
    }
    if req.enable_ipv4 == Some(false) {
        return Err(EngineError::Invalid(
            "a network without IPv4 is not supported by berth: leave out --ipv4=false".into(),
        ));
    }
    if req.config_only
        || req.ingress
        || req
            .scope
            .as_deref()
            .is_some_and(|s| !s.is_empty() && s != "local")
    {
        return Err(EngineError::Invalid(
            "swarm, ingress and config-only networks are not supported: berth's networks are local bridges".into(),
        ));
    }
    let mut subnet = None;
    let mut gateway = None;
    let mut subnet6 = None;
    if let Some(ipam) = &req.ipam {
        match ipam.driver.as_str() {
            "" | "default" => {}
            other => {
                return Err(EngineError::NotFound(format!(
                    "IPAM driver {other:?} not found: berth has the default one only"
                )))
            }
        }
        for c in &ipam.config {
            if !c.ip_range.is_empty() {
                return Err(EngineError::Invalid(format!(
                    "--ip-range {} is not supported: addresses come from the whole --subnet",
                    c.ip_range
                )));
            }
            if !c.auxiliary_addresses.is_empty() {
                return Err(EngineError::Invalid(
                    "--aux-address is not supported".into(),
                ));
            }
            if c.subnet.contains(':') {
                if subnet6.is_some() {
                    return Err(EngineError::Invalid("one IPv6 --subnet per network".into()));
                }
                if !c.gateway.is_empty() {
                    return Err(EngineError::Invalid(format!(
                        "--gateway {} for the IPv6 subnet is not supported: berth's IPv6 gateway is the subnet's address at the IPv4 gateway's offset",
                        c.gateway
                    )));
                }
                subnet6 = Some(parse_subnet6(&c.subnet)?);
                continue;
            }
            if subnet.is_some() || gateway.is_some() {
                return Err(EngineError::Invalid(
                    "one IPv4 --subnet per network (and one IPv6 one with --ipv6)".into(),
                ));
            }
            if !c.subnet.is_empty() {
                subnet = Some(parse_subnet(&c.subnet)?);
            }
            if !c.gateway.is_empty() {
                let g: Ipv4Addr = c.gateway.parse().map_err(|_| {
                    EngineError::Invalid(format!(
                        "invalid --gateway {:?}: not an IPv4 address",
                        c.gateway
                    ))
                })?;
                let Some(s) = subnet else {
                    return Err(EngineError::Invalid(
                        "--gateway needs --subnet (the subnet it belongs to)".into(),
                    ));
                };
                if !s.is_host(g) {
                    return Err(EngineError::Invalid(format!(
                        "invalid --gateway {g}: it is not a host address of the subnet {s}"
                    )));
                }
                gateway = Some(g);
            }
        }
    }
    let ipv6 = req.enable_ipv6 == Some(true);
    if subnet6.is_some() && !ipv6 {
        return Err(EngineError::Invalid(
            "an IPv6 --subnet needs --ipv6 (IPv6 is off for the network otherwise)".into(),
        ));
    }
    let bridge = req.options.get(BRIDGE_NAME_OPTION).cloned();
    if let Some(b) = &bridge {
        berth_net::link::check_interface_name(b)
            .map_err(|e| EngineError::Invalid(format!("invalid {BRIDGE_NAME_OPTION}: {e}")))?;
    }
    Ok(CreatePlan {
        name: req.name.clone(),
        subnet,
        gateway,
        ipv6,
        subnet6,
        internal: req.internal,
        attachable: req.attachable,
        labels: req.labels.clone(),
        options: req.options.clone(),
        bridge,
    })
}

/// Parses `--subnet` (`10.1.0.0/24`; host bits must be zero, as in Docker).
pub fn parse_subnet(text: &str) -> Result<Ipv4Subnet, EngineError> {
    let bad = |why: &str| {
        EngineError::Invalid(format!(
            "invalid --subnet {text:?}: {why} (expected ADDRESS/PREFIX, e.g. 10.99.0.0/24)"
        ))
    };
    let (address, prefix) = text
        .split_once('/')
        .ok_or_else(|| bad("no prefix length"))?;
    let address: Ipv4Addr = address.parse().map_err(|_| bad("not an IPv4 address"))?;
    let prefix: u8 = prefix
        .parse()
        .ok()
        .filter(|p| (1..=30).contains(p))
        .ok_or_else(|| bad("the prefix length must be 1 to 30"))?;
    // refuses host bits, naming the network address
    Ipv4Subnet::new(address, prefix)
        .map_err(|e| EngineError::Invalid(format!("invalid --subnet {text:?}: {e}")))
}

/// Parses an IPv6 `--subnet` (`fd00:1::/64`): host bits zero, prefix 8 to 96 (a container's
/// IPv6 address is the subnet's address at its IPv4 address's offset, which needs 32 bits).
pub fn parse_subnet6(text: &str) -> Result<(Ipv6Addr, u8), EngineError> {
    let bad = |why: &str| {
        EngineError::Invalid(format!(
            "invalid --subnet {text:?}: {why} (expected ADDRESS/PREFIX, e.g. fd00:1::/64)"
        ))
    };
    let (address, prefix) = text
        .split_once('/')
        .ok_or_else(|| bad("no prefix length"))?;
    let address: Ipv6Addr = address.parse().map_err(|_| bad("not an IPv6 address"))?;
    let prefix: u8 = prefix
        .parse()
        .ok()
        .filter(|p| (8..=96).contains(p))
        .ok_or_else(|| bad("the prefix length must be 8 to 96"))?;
    let mask = u128::MAX << (128 - u32::from(prefix));
    let bits = u128::from(address);
    if bits & !mask != 0 {
        return Err(bad(&format!(
            "host bits are set; did you mean {}/{prefix}?",
            Ipv6Addr::from(bits & mask)
        )));
    }
    Ok((address, prefix))
}

/// Whether two IPv6 subnets share an address.
pub fn overlaps6(a: (Ipv6Addr, u8), b: (Ipv6Addr, u8)) -> bool {
    let prefix = a.1.min(b.1);
    let mask = u128::MAX << (128 - u32::from(prefix));
    u128::from(a.0) & mask == u128::from(b.0) & mask
}

/// A unique local /64 (RFC 4193) for a network without an IPv6 `--subnet`: `fd` and 56 bits
/// of its id.
pub fn ula_subnet(id: &str) -> (Ipv6Addr, u8) {
    let bytes = hex::decode(&id[..14.min(id.len())]).unwrap_or_default();
    let mut octets = [0u8; 16];
    octets[0] = 0xfd;
    for (i, b) in bytes.iter().take(7).enumerate() {
        octets[1 + i] = *b;
    }
    (Ipv6Addr::from(octets), 64)
}

/// A network's IPv6 settings.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Ipv6Config {
    /// The subnet's address.
    pub subnet: Ipv6Addr,
    /// Its prefix length.
    pub prefix_len: u8,
    /// The gateway (the bridge's address): the subnet's address at the IPv4 gateway's offset.
    pub gateway: Ipv6Addr,
}

impl Ipv6Config {
    /// The IPv6 address at the same offset in the subnet as `v4` has in `subnet4`.
    pub fn mirror(&self, subnet4: Ipv4Subnet, v4: Ipv4Addr) -> Ipv6Addr {
        let offset = u32::from(v4).wrapping_sub(u32::from(subnet4.network()));
        Ipv6Addr::from(u128::from(self.subnet) + u128::from(offset))
    }

    /// `fd00:1::/64`.
    pub fn subnet_text(&self) -> String {
        format!("{}/{}", self.subnet, self.prefix_len)
    }
}

/// Whether two subnets share an address.
pub fn overlaps(a: Ipv4Subnet, b: Ipv4Subnet) -> bool {
    a.contains(b.network()) || b.contains(a.network())
}

/// The first /20 of berth's pool that overlaps none of `taken`.
pub fn free_subnet(taken: &[Ipv4Subnet]) -> Result<Ipv4Subnet, EngineError> {
    let size = 1u32 << (32 - u32::from(POOL_PREFIX));
    for i in 0..POOL_SIZE {
        let network = Ipv4Addr::from(u32::from(POOL_FIRST) + i * size);
        let candidate = Ipv4Subnet::new(network, POOL_PREFIX)
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        if !taken.iter().any(|t| overlaps(*t, candidate)) {
            return Ok(candidate);
        }
    }
    Err(EngineError::Conflict(
        "no free subnet left in berth's pool (10.214.0.0-10.221.255.255): remove unused networks (network prune) or give --subnet".into(),
    ))
}

/// The IPv4 routes of this network namespace (`/proc/net/route`), so that an automatically
/// chosen subnet never shadows a network the host already reaches.
pub fn host_routes() -> Vec<Ipv4Subnet> {
    let text = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (dest, mask) = (f.get(1)?, f.get(7)?);
            let dest = u32::from_str_radix(dest, 16).ok()?;
            let mask = u32::from_str_radix(mask, 16).ok()?;
            // the kernel prints the network-order words as native integers
            let dest = Ipv4Addr::from(dest.to_ne_bytes());
            let prefix = u32::from(Ipv4Addr::from(mask.to_ne_bytes())).count_ones() as u8;
            if prefix == 0 {
                return None; // the default route shadows nothing
            }
            Ipv4Subnet::new(dest, prefix).ok()
        })
        .collect()
}

/// The `networks` table of engine.db.
pub struct NetworkStore {
    db: Mutex<Connection>,
}

fn db_err(what: &'static str) -> impl Fn(rusqlite::Error) -> EngineError {
    move |e| EngineError::Internal(format!("network database: {what}: {e}"))
}

impl NetworkStore {
    /// Opens (and creates) the table.
    pub fn open(path: &Path) -> Result<NetworkStore, EngineError> {
        let conn = Connection::open(path).map_err(db_err("opening"))?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;
             CREATE TABLE IF NOT EXISTS networks (
                 id TEXT PRIMARY KEY,
                 name TEXT NOT NULL UNIQUE,
                 record TEXT NOT NULL
             );",
        )
        .map_err(db_err("creating the table"))?;
        Ok(NetworkStore {
            db: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a new network; a taken name is a conflict.
    pub fn insert(&self, r: &NetworkRecord) -> Result<(), EngineError> {
        let conn = self.conn();
        let taken: Option<String> = conn
            .query_row(
                "SELECT id FROM networks WHERE name = ?1",
                params![r.name],
                |row| row.get(0),
            )
            .optional()
            .map_err(db_err("looking up a name"))?;
        if let Some(id) = taken {
            return Err(EngineError::Conflict(format!(
                "network with name {} already exists (id {}); choose another name or remove it first",
                r.name,
                &id[..12.min(id.len())]
            )));
        }
        let json = serde_json::to_string(r).map_err(|e| EngineError::Internal(e.to_string()))?;
        conn.execute(
            "INSERT INTO networks (id, name, record) VALUES (?1, ?2, ?3)",
            params![r.id, r.name, json],
        )
        .map_err(db_err("inserting"))?;
        Ok(())
    }

    /// Removes a network's record.
    pub fn delete(&self, id: &str) -> Result<(), EngineError> {
        self.conn()
            .execute("DELETE FROM networks WHERE id = ?1", params![id])
            .map_err(db_err("deleting"))?;
        Ok(())
    }

    /// Every recorded network, by name.
    pub fn list(&self) -> Result<Vec<NetworkRecord>, EngineError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT record FROM networks ORDER BY name")
            .map_err(db_err("listing"))?;
        let rows = stmt
            .query_map([], |row| row.get::<_, String>(0))
            .map_err(db_err("listing"))?;
        let mut out = Vec::new();
        for row in rows {
            let json = row.map_err(db_err("listing"))?;
            match serde_json::from_str(&json) {
                Ok(r) => out.push(r),
                Err(e) => tracing::warn!(error = %e, "skipping an unreadable network record"),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::networks::{IpamConfig, IpamRequest};

    fn request(name: &str) -> NetworkCreateRequest {
        NetworkCreateRequest {
            name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn names_and_drivers_are_checked() {
        plan(&request("my-net_1.x")).expect("valid");
        for bad in ["", "-x", "a b", "a/b", ".x"] {
            assert!(plan(&request(bad)).is_err(), "{bad:?}");
        }
        let e = plan(&request("bridge")).expect_err("predefined");
        assert!(matches!(e, EngineError::Forbidden(_)), "{e:?}");
        let mut r = request("n");
        r.driver = "overlay".into();
        assert!(plan(&r)
            .expect_err("driver")
            .to_string()
            .contains("plugin \"overlay\" not found"));
        r.driver = "bridge".into();
        // what the docker CLI sends: an empty scope is the local one
        r.scope = Some(String::new());
        plan(&r).expect("docker CLI body");
        r.scope = Some("swarm".into());
        assert!(plan(&r).is_err());
        r.scope = None;
        r.enable_ipv6 = Some(true);
        assert!(plan(&r).expect("v6").ipv6);
    }

    #[test]
    fn subnets_and_gateways_are_checked() {
        let with = |subnet: &str, gateway: &str| {
            let mut r = request("n");
            r.ipam = Some(IpamRequest {
                config: vec![IpamConfig {
                    subnet: subnet.into(),
                    gateway: gateway.into(),
                    ..Default::default()
                }],
                ..Default::default()
            });
            plan(&r)
        };
        let p = with("10.99.0.0/24", "10.99.0.254").expect("valid");
        assert_eq!(p.subnet.expect("subnet").to_string(), "10.99.0.0/24");
        assert_eq!(p.gateway, Some(Ipv4Addr::new(10, 99, 0, 254)));
        let e = with("10.99.0.1/24", "").expect_err("host bits");
        assert!(e.to_string().contains("did you mean 10.99.0.0/24"), "{e}");
        assert!(with("10.99.0.0/24", "10.98.0.1").is_err());
        assert!(with("10.99.0.0/24", "10.99.0.255").is_err());
        assert!(with("", "10.99.0.1").is_err());
        // an IPv6 subnet needs --ipv6
        assert!(with("fd00::/64", "").is_err());
        assert_eq!(
            parse_subnet6("fd00:1::/64").expect("v6"),
            ("fd00:1::".parse().expect("ip"), 64)
        );
        assert!(parse_subnet6("fd00:1::1/64")
            .expect_err("host bits")
            .to_string()
            .contains("did you mean fd00:1::/64"));
        assert!(parse_subnet6("fd00:1::/120").is_err());
        assert!(overlaps6(
            parse_subnet6("fd00:1::/64").expect("a"),
            parse_subnet6("fd00::/16").expect("b")
        ));
        assert!(!overlaps6(
            parse_subnet6("fd00:1::/64").expect("a"),
            parse_subnet6("fd00:2::/64").expect("b")
        ));
        let ula = ula_subnet(&"ab".repeat(32));
        assert_eq!(ula, ("fdab:abab:abab:abab::".parse().expect("ip"), 64));
        let c = Ipv6Config {
            subnet: ula.0,
            prefix_len: 64,
            gateway: "fdab:abab:abab:abab::1".parse().expect("ip"),
        };
        let s4: Ipv4Subnet = "10.214.16.0/20".parse().expect("s");
        assert_eq!(
            c.mirror(s4, Ipv4Addr::new(10, 214, 17, 2)).to_string(),
            "fdab:abab:abab:abab::102"
        );
        assert!(with("10.99.0.0/33", "").is_err());
    }

    #[test]
    fn the_pool_skips_taken_subnets() {
        let first = free_subnet(&[]).expect("free");
        assert_eq!(first.to_string(), "10.214.0.0/20");
        let second = free_subnet(&[first]).expect("free");
        assert_eq!(second.to_string(), "10.214.16.0/20");
        let wide: Ipv4Subnet = "10.214.0.0/16".parse().expect("subnet");
        assert_eq!(
            free_subnet(&[wide]).expect("free").to_string(),
            "10.215.0.0/20"
        );
        let all: Ipv4Subnet = "10.208.0.0/12".parse().expect("subnet");
        assert!(free_subnet(&[all]).is_err());
        assert!(overlaps(wide, first));
        assert!(!overlaps(first, second));
    }

    #[test]
    fn records_round_trip_and_names_are_unique() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = NetworkStore::open(&dir.path().join("engine.db")).expect("open");
        let record = NetworkRecord {
            id: "a".repeat(64),
            name: "web".into(),
            driver: "bridge".into(),
            bridge: "bn-aaaaaaaaaaaa".into(),
            subnet: "10.214.0.0/20".parse().expect("subnet"),
            gateway: Ipv4Addr::new(10, 214, 0, 1),
            internal: true,
            ipv6: None,
            attachable: false,
            labels: [("a".to_string(), "b".to_string())].into(),
            options: BTreeMap::new(),
            created: "2026-11-23T00:00:00Z".into(),
        };
        store.insert(&record).expect("insert");
        let again = NetworkRecord {
            id: "b".repeat(64),
            ..record.clone()
        };
        let e = store.insert(&again).expect_err("taken");
        assert!(e.to_string().contains("already exists"), "{e}");
        assert_eq!(store.list().expect("list"), vec![record.clone()]);
        store.delete(&record.id).expect("delete");
        assert!(store.list().expect("list").is_empty());
    }

    #[test]
    fn host_routes_parse() {
        // whatever this namespace has, the parse must not panic and must skip the default
        for r in host_routes() {
            assert!(r.prefix_len() > 0);
        }
    }
}
