//! The record table of one network: which names (container name, aliases, short id) map to
//! which addresses, and which address maps back to which name.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::RwLock;

use crate::{NetworkError, Result};

/// Length of the short container id Docker registers as a DNS name.
pub const SHORT_ID_LEN: usize = 12;

/// One container's presence on a network, as the embedded DNS server answers for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsContainer {
    /// The full container id (the key: adding the same id again replaces its records). Its
    /// first [`SHORT_ID_LEN`] characters are registered as a name too, as Docker does.
    pub id: String,
    /// The container's name (a leading `/`, as the Docker API writes it, is dropped).
    pub name: String,
    /// Its aliases on this network (`--network-alias`, compose service names).
    pub aliases: Vec<String>,
    /// Its IPv4 addresses on this network.
    pub ipv4: Vec<Ipv4Addr>,
    /// Its IPv6 addresses on this network (none yet: AAAA queries then get an empty answer).
    pub ipv6: Vec<Ipv6Addr>,
    /// `--dns` servers of this container: its queries for names the network does not own go
    /// there instead of to the network's upstreams. Empty: the network's upstreams.
    pub dns_servers: Vec<SocketAddr>,
}

/// The addresses a name resolves to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsAddresses {
    /// IPv4 addresses, rotated on each lookup when there are several (round robin).
    pub ipv4: Vec<Ipv4Addr>,
    /// IPv6 addresses, rotated likewise.
    pub ipv6: Vec<Ipv6Addr>,
}

#[derive(Debug, Default)]
struct Table {
    /// id → the container as added (name without `/`).
    containers: HashMap<String, DnsContainer>,
    /// lower-case name → ids holding it, in the order they were added.
    names: HashMap<String, Vec<String>>,
    /// address → ids holding it, in the order they were added.
    addresses: HashMap<IpAddr, Vec<String>>,
}

/// The DNS records of one network. Shared (`Arc`) between the daemon, which adds and removes
/// containers, and that network's [`super::Resolver`], which reads it on every query.
#[derive(Debug)]
pub struct DnsRecords {
    network: String,
    table: RwLock<Table>,
    rotation: AtomicUsize,
}

/// Normalises a DNS name for lookups: ASCII lower case, without the trailing dot.
pub fn normalize_name(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// Checks that `name` can be a DNS name: 1–253 bytes of labels of 1–63 letters, digits, `-`
/// or `_`, separated by dots (one trailing dot allowed).
pub fn check_dns_name(name: &str) -> Result<()> {
    let invalid = |reason: &str| NetworkError::InvalidDnsName {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    let bare = name.strip_suffix('.').unwrap_or(name);
    if bare.is_empty() {
        return Err(invalid("it is empty"));
    }
    if bare.len() > 253 {
        return Err(invalid("it is longer than 253 bytes"));
    }
    for label in bare.split('.') {
        if label.is_empty() {
            return Err(invalid("it has an empty label (two dots in a row)"));
        }
        if label.len() > 63 {
            return Err(invalid("a label is longer than 63 bytes"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(invalid("use only letters, digits, '-', '_' and '.'"));
        }
    }
    Ok(())
}

fn rotate<T>(mut items: Vec<T>, by: usize) -> Vec<T> {
    if items.len() > 1 {
        let by = by % items.len();
        items.rotate_left(by);
    }
    items
}

impl DnsRecords {
    /// An empty table for the network named `network` (its name also answers as a suffix:
    /// `web.NETWORK` resolves like `web`, and PTR answers are `NAME.NETWORK.`, as in Docker).
    pub fn new(network: impl Into<String>) -> Self {
        Self {
            network: network.into(),
            table: RwLock::new(Table::default()),
            rotation: AtomicUsize::new(0),
        }
    }

    /// The network's name.
    pub fn network(&self) -> &str {
        &self.network
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Table> {
        // a panic while holding the lock cannot leave the maps inconsistent in a way lookups
        // could not survive: every write below completes before it returns
        self.table.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Table> {
        self.table.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a container's records, replacing those it had (same id). Its name, each alias and
    /// its short id resolve to its addresses; several containers may share an alias, and the
    /// name then answers all of their addresses. Invalid names are refused, whole.
    pub fn add(&self, container: DnsContainer) -> Result<()> {
        let mut container = container;
        if let Some(name) = container.name.strip_prefix('/') {
            container.name = name.to_string();
        }
        if container.id.is_empty() {
            return Err(NetworkError::InvalidDnsName {
                name: container.id,
                reason: "the container id is empty".into(),
            });
        }
        check_dns_name(&container.name)?;
        for alias in &container.aliases {
            check_dns_name(alias)?;
        }
        let keys = Self::keys(&container);
        let mut table = self.write();
        Self::remove_locked(&mut table, &container.id);
        for key in keys {
            table
                .names
                .entry(key)
                .or_default()
                .push(container.id.clone());
        }
        let addresses: Vec<IpAddr> = container
            .ipv4
            .iter()
            .map(|ip| IpAddr::V4(*ip))
            .chain(container.ipv6.iter().map(|ip| IpAddr::V6(*ip)))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        for address in addresses {
            table
                .addresses
                .entry(address)
                .or_default()
                .push(container.id.clone());
        }
        table.containers.insert(container.id.clone(), container);
        Ok(())
    }

    /// The lower-case names a container answers to, without duplicates.
    fn keys(container: &DnsContainer) -> Vec<String> {
        let short_id: String = container.id.chars().take(SHORT_ID_LEN).collect();
        let mut keys = Vec::new();
        for name in std::iter::once(&container.name)
            .chain(&container.aliases)
            .chain(std::iter::once(&short_id))
        {
            let key = normalize_name(name);
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        keys
    }

    fn remove_locked(table: &mut Table, id: &str) -> Option<DnsContainer> {
        let container = table.containers.remove(id)?;
        for key in Self::keys(&container) {
            if let Some(ids) = table.names.get_mut(&key) {
                ids.retain(|held| held != id);
                if ids.is_empty() {
                    table.names.remove(&key);
                }
            }
        }
        for address in container
            .ipv4
            .iter()
            .map(|ip| IpAddr::V4(*ip))
            .chain(container.ipv6.iter().map(|ip| IpAddr::V6(*ip)))
        {
            if let Some(ids) = table.addresses.get_mut(&address) {
                ids.retain(|held| held != id);
                if ids.is_empty() {
                    table.addresses.remove(&address);
                }
            }
        }
        Some(container)
    }

    /// Removes a container's records; returns what it had, `None` when it had none.
    pub fn remove(&self, id: &str) -> Option<DnsContainer> {
        Self::remove_locked(&mut self.write(), id)
    }

    /// Drops the records of every container not in `live` (daemon restart); returns the ids
    /// removed.
    pub fn reconcile(&self, live: &HashSet<String>) -> Vec<String> {
        let mut table = self.write();
        let stale: Vec<String> = table
            .containers
            .keys()
            .filter(|id| !live.contains(*id))
            .cloned()
            .collect();
        for id in &stale {
            Self::remove_locked(&mut table, id);
        }
        stale
    }

    /// The containers on the table, sorted by id.
    pub fn containers(&self) -> Vec<DnsContainer> {
        let mut all: Vec<_> = self.read().containers.values().cloned().collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// Whether the table holds no container.
    pub fn is_empty(&self) -> bool {
        self.read().containers.is_empty()
    }

    /// The addresses `name` resolves to (case-insensitive, trailing dot or not, `NAME` or
    /// `NAME.NETWORK`), `None` when the network does not own the name. Several addresses come
    /// rotated by one on each call.
    pub fn lookup(&self, name: &str) -> Option<DnsAddresses> {
        let key = normalize_name(name);
        let table = self.read();
        let ids = table.names.get(&key).or_else(|| {
            let suffix = format!(".{}", normalize_name(&self.network));
            let bare = key.strip_suffix(&suffix)?;
            table.names.get(bare)
        })?;
        let mut ipv4 = Vec::new();
        let mut ipv6 = Vec::new();
        for container in ids.iter().filter_map(|id| table.containers.get(id)) {
            for ip in &container.ipv4 {
                if !ipv4.contains(ip) {
                    ipv4.push(*ip);
                }
            }
            for ip in &container.ipv6 {
                if !ipv6.contains(ip) {
                    ipv6.push(*ip);
                }
            }
        }
        let turn = self.rotation.fetch_add(1, Ordering::Relaxed);
        Some(DnsAddresses {
            ipv4: rotate(ipv4, turn),
            ipv6: rotate(ipv6, turn),
        })
    }

    /// The name a container address maps back to (`NAME.NETWORK`, the first container that
    /// holds the address), for PTR answers; `None` for an address no container holds.
    pub fn reverse(&self, address: IpAddr) -> Option<String> {
        let table = self.read();
        let id = table.addresses.get(&address)?.first()?;
        let container = table.containers.get(id)?;
        Some(if self.network.is_empty() {
            container.name.clone()
        } else {
            format!("{}.{}", container.name, self.network)
        })
    }

    /// The `--dns` servers of the container holding `address`, if it set any.
    pub fn dns_servers_of(&self, address: IpAddr) -> Option<Vec<SocketAddr>> {
        let table = self.read();
        let ids = table.addresses.get(&address)?;
        ids.iter()
            .filter_map(|id| table.containers.get(id))
            .map(|c| c.dns_servers.clone())
            .find(|servers| !servers.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web(id: &str, ip: [u8; 4]) -> DnsContainer {
        DnsContainer {
            id: id.into(),
            name: "/web".into(),
            aliases: vec!["Frontend".into(), "app.local".into()],
            ipv4: vec![Ipv4Addr::from(ip)],
            ..Default::default()
        }
    }

    #[test]
    fn names_aliases_and_short_id_resolve_case_insensitively() {
        let records = DnsRecords::new("mynet");
        records
            .add(web("0123456789abcdef0123", [10, 0, 0, 2]))
            .expect("add");
        let ip = vec![Ipv4Addr::new(10, 0, 0, 2)];
        for name in [
            "web",
            "WEB.",
            "frontend",
            "FrontEnd.",
            "app.local",
            "0123456789ab",
            "web.mynet",
            "Web.MyNet.",
        ] {
            assert_eq!(
                records.lookup(name).map(|a| a.ipv4),
                Some(ip.clone()),
                "{name}"
            );
        }
        for name in ["0123456789abcdef0123", "webx", "mynet", "web.other", ""] {
            assert_eq!(records.lookup(name), None, "{name}");
        }
        assert_eq!(
            records.reverse("10.0.0.2".parse().expect("ip")).as_deref(),
            Some("web.mynet")
        );
        assert_eq!(records.reverse("10.0.0.3".parse().expect("ip")), None);
    }

    #[test]
    fn shared_alias_answers_every_container_in_rotation() {
        let records = DnsRecords::new("n");
        let mut a = web("aaaa", [10, 0, 0, 2]);
        a.name = "a".into();
        let mut b = web("bbbb", [10, 0, 0, 3]);
        b.name = "b".into();
        records.add(a).expect("a");
        records.add(b).expect("b");
        let first = records.lookup("frontend").expect("known").ipv4;
        let second = records.lookup("frontend").expect("known").ipv4;
        assert_eq!(first.len(), 2);
        assert_eq!(
            first.iter().collect::<HashSet<_>>(),
            second.iter().collect()
        );
        assert_ne!(first, second, "no rotation");
        assert_eq!(
            records.lookup("a").expect("a").ipv4,
            [Ipv4Addr::new(10, 0, 0, 2)]
        );

        // removing one leaves the other under the shared alias
        assert!(records.remove("aaaa").is_some());
        assert!(records.remove("aaaa").is_none());
        assert_eq!(records.lookup("a"), None);
        assert_eq!(
            records.lookup("frontend").expect("b").ipv4,
            [Ipv4Addr::new(10, 0, 0, 3)]
        );
        assert_eq!(records.reverse("10.0.0.2".parse().expect("ip")), None);
        records.remove("bbbb");
        assert!(records.is_empty());
        let table = records.read();
        assert!(
            table.names.is_empty() && table.addresses.is_empty(),
            "stale entries"
        );
    }

    #[test]
    fn re_adding_replaces_and_reconcile_drops_the_dead() {
        let records = DnsRecords::new("n");
        records.add(web("aaaa", [10, 0, 0, 2])).expect("add");
        let mut moved = web("aaaa", [10, 0, 0, 9]);
        moved.aliases.clear();
        records.add(moved).expect("replace");
        assert_eq!(
            records.lookup("web").expect("web").ipv4,
            [Ipv4Addr::new(10, 0, 0, 9)]
        );
        assert_eq!(records.lookup("frontend"), None);
        assert_eq!(records.reverse("10.0.0.2".parse().expect("ip")), None);

        let mut other = web("bbbb", [10, 0, 0, 3]);
        other.name = "other".into();
        records.add(other).expect("add");
        let stale = records.reconcile(&HashSet::from(["bbbb".to_string()]));
        assert_eq!(stale, ["aaaa"]);
        assert_eq!(records.lookup("web"), None);
        assert!(records.lookup("other").is_some());
    }

    #[test]
    fn invalid_names_are_refused_whole() {
        let records = DnsRecords::new("n");
        let mut bad = web("aaaa", [10, 0, 0, 2]);
        bad.aliases.push("two..dots".into());
        let err = records.add(bad).expect_err("invalid alias");
        assert_eq!(err.kind(), crate::ErrorKind::Invalid);
        assert!(err.to_string().contains("two..dots"), "{err}");
        assert!(records.is_empty());
        for name in ["", "a b", "x".repeat(64).as_str(), "é"] {
            assert!(check_dns_name(name).is_err(), "{name:?}");
        }
        for name in ["web", "my_app-1", "a.b.c.", "0123456789ab"] {
            check_dns_name(name).expect(name);
        }
    }
}
