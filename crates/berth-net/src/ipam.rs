//! IP address management: one address per (network, container), never handed out twice,
//! persisted through [`IpamStore`] and reconciled against the containers that still exist.

use std::collections::{BTreeMap, HashSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{params, Connection, TransactionBehavior};

use crate::{Ipv4Subnet, NetworkError, Result};

/// One recorded allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    /// The network's name.
    pub network: String,
    /// The address.
    pub address: Ipv4Addr,
    /// The container (or other owner) holding it.
    pub owner: String,
}

/// Chooses an address given the addresses already taken (owner by address).
pub type Chooser<'a> = &'a dyn Fn(&BTreeMap<Ipv4Addr, String>) -> Result<Ipv4Addr>;

/// Where allocations live. `allocate` must be atomic: read the taken addresses, call the
/// chooser, record its answer, all in one transaction, so two allocations never race.
pub trait IpamStore: Send + Sync {
    /// The address `owner` already holds in `network`, if any.
    fn lookup(&self, network: &str, owner: &str) -> Result<Option<Ipv4Addr>>;
    /// Atomically records the address `choose` picks for `owner` in `network`.
    fn allocate(&self, network: &str, owner: &str, choose: Chooser<'_>) -> Result<Ipv4Addr>;
    /// Frees what `owner` holds in `network`; returns the freed address.
    fn release(&self, network: &str, owner: &str) -> Result<Option<Ipv4Addr>>;
    /// Every allocation of `network`.
    fn list(&self, network: &str) -> Result<Vec<Allocation>>;
}

/// The allocator of one network.
#[derive(Clone)]
pub struct Ipam {
    store: Arc<dyn IpamStore>,
    network: String,
    subnet: Ipv4Subnet,
    gateway: Ipv4Addr,
}

impl Ipam {
    /// An allocator for `network` over `subnet`, with `gateway` reserved.
    pub fn new(
        store: Arc<dyn IpamStore>,
        network: impl Into<String>,
        subnet: Ipv4Subnet,
        gateway: Ipv4Addr,
    ) -> Result<Self> {
        if !subnet.is_host(gateway) {
            return Err(NetworkError::AddressOutsideSubnet {
                address: gateway,
                subnet,
            });
        }
        Ok(Self {
            store,
            network: network.into(),
            subnet,
            gateway,
        })
    }

    /// The subnet.
    pub fn subnet(&self) -> Ipv4Subnet {
        self.subnet
    }

    /// The gateway address.
    pub fn gateway(&self) -> Ipv4Addr {
        self.gateway
    }

    /// Gives `owner` an address: `requested` (`--ip`) when given and free, else the lowest
    /// free one. Asking again for the same owner returns the address it holds (so a retried
    /// start after a crash gets the same one), unless a different `requested` is asked.
    pub fn allocate(&self, owner: &str, requested: Option<Ipv4Addr>) -> Result<Ipv4Addr> {
        if let Some(address) = requested {
            self.check_requestable(address)?;
        }
        let (subnet, gateway, network) = (self.subnet, self.gateway, self.network.as_str());
        let choose = move |taken: &BTreeMap<Ipv4Addr, String>| -> Result<Ipv4Addr> {
            if let Some(address) = requested {
                return match taken.get(&address) {
                    Some(holder) if holder != owner => Err(NetworkError::AddressInUse {
                        address,
                        network: network.to_string(),
                        owner: holder.clone(),
                    }),
                    _ => Ok(address),
                };
            }
            let first = u32::from(subnet.first_host());
            let last = u32::from(subnet.last_host());
            (first..=last)
                .map(Ipv4Addr::from)
                .find(|a| *a != gateway && !taken.contains_key(a))
                .ok_or_else(|| NetworkError::SubnetExhausted {
                    network: network.to_string(),
                    subnet,
                })
        };
        if let Some(held) = self.store.lookup(&self.network, owner)? {
            if requested.is_none() || requested == Some(held) {
                return Ok(held);
            }
            self.store.release(&self.network, owner)?;
        }
        self.store.allocate(&self.network, owner, &choose)
    }

    fn check_requestable(&self, address: Ipv4Addr) -> Result<()> {
        if !self.subnet.contains(address) {
            return Err(NetworkError::AddressOutsideSubnet {
                address,
                subnet: self.subnet,
            });
        }
        if !self.subnet.is_host(address) || address == self.gateway {
            return Err(NetworkError::AddressReserved {
                address,
                subnet: self.subnet,
            });
        }
        Ok(())
    }

    /// Frees `owner`'s address (no-op when it holds none).
    pub fn release(&self, owner: &str) -> Result<Option<Ipv4Addr>> {
        self.store.release(&self.network, owner)
    }

    /// The allocations of this network.
    pub fn allocations(&self) -> Result<Vec<Allocation>> {
        self.store.list(&self.network)
    }

    /// Frees the addresses of owners not in `live` (containers gone while the daemon was
    /// down); returns what was freed.
    pub fn reconcile(&self, live: &HashSet<String>) -> Result<Vec<Allocation>> {
        let mut freed = Vec::new();
        for allocation in self.store.list(&self.network)? {
            if !live.contains(&allocation.owner) {
                self.store.release(&self.network, &allocation.owner)?;
                freed.push(allocation);
            }
        }
        Ok(freed)
    }
}

/// [`IpamStore`] in SQLite (WAL), table `ipam_allocations`; may share the engine's database
/// file.
pub struct SqliteIpamStore {
    path: PathBuf,
    connection: Mutex<Connection>,
}

impl SqliteIpamStore {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let err = |source| NetworkError::Store {
            path: path.to_path_buf(),
            source,
        };
        let connection = Connection::open(path).map_err(err)?;
        connection
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err)?;
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        // WAL + NORMAL: a commit is not fsynced (the WAL is at checkpoints), so it survives a
        // daemon crash but may be lost with the machine; after a reboot no container runs and
        // reconcile frees every allocation anyway. FULL cost an fsync on every allocate and
        // release (3-35 ms of every bridged `run --rm` on this disk)
        connection
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        connection
            .execute_batch(
                "CREATE TABLE IF NOT EXISTS ipam_allocations (
                    network TEXT NOT NULL,
                    address TEXT NOT NULL,
                    owner TEXT NOT NULL,
                    PRIMARY KEY (network, address),
                    UNIQUE (network, owner)
                );",
            )
            .map_err(err)?;
        Ok(Self {
            path: path.to_path_buf(),
            connection: Mutex::new(connection),
        })
    }

    fn err(&self, source: rusqlite::Error) -> NetworkError {
        NetworkError::Store {
            path: self.path.clone(),
            source,
        }
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // a panic while holding the lock leaves no half-done transaction (rusqlite rolls
        // back on drop), so a poisoned lock is safe to reuse
        self.connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn parse_address(text: String) -> rusqlite::Result<Ipv4Addr> {
    text.parse().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

impl IpamStore for SqliteIpamStore {
    fn lookup(&self, network: &str, owner: &str) -> Result<Option<Ipv4Addr>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT address FROM ipam_allocations WHERE network = ?1 AND owner = ?2",
            )
            .map_err(|e| self.err(e))?;
        let mut rows = stmt
            .query_map(params![network, owner], |r| parse_address(r.get(0)?))
            .map_err(|e| self.err(e))?;
        rows.next().transpose().map_err(|e| self.err(e))
    }

    fn allocate(&self, network: &str, owner: &str, choose: Chooser<'_>) -> Result<Ipv4Addr> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let taken = {
            let mut stmt = tx
                .prepare_cached("SELECT address, owner FROM ipam_allocations WHERE network = ?1")
                .map_err(|e| self.err(e))?;
            let rows = stmt
                .query_map(params![network], |r| {
                    Ok((parse_address(r.get(0)?)?, r.get::<_, String>(1)?))
                })
                .map_err(|e| self.err(e))?;
            rows.collect::<rusqlite::Result<BTreeMap<_, _>>>()
                .map_err(|e| self.err(e))?
        };
        let address = choose(&taken)?;
        tx.execute(
            "INSERT OR REPLACE INTO ipam_allocations (network, address, owner) VALUES (?1, ?2, ?3)",
            params![network, address.to_string(), owner],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(address)
    }

    fn release(&self, network: &str, owner: &str) -> Result<Option<Ipv4Addr>> {
        let held = self.lookup(network, owner)?;
        self.conn()
            .execute(
                "DELETE FROM ipam_allocations WHERE network = ?1 AND owner = ?2",
                params![network, owner],
            )
            .map_err(|e| self.err(e))?;
        Ok(held)
    }

    fn list(&self, network: &str) -> Result<Vec<Allocation>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT address, owner FROM ipam_allocations WHERE network = ?1 ORDER BY owner",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![network], |r| {
                Ok(Allocation {
                    network: network.to_string(),
                    address: parse_address(r.get(0)?)?,
                    owner: r.get(1)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }
}

/// [`IpamStore`] in memory, for tests of code built on [`Ipam`].
#[derive(Default)]
pub struct MemoryIpamStore {
    // network → address → owner
    allocations: Mutex<BTreeMap<String, BTreeMap<Ipv4Addr, String>>>,
}

impl MemoryIpamStore {
    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, BTreeMap<Ipv4Addr, String>>> {
        self.allocations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl IpamStore for MemoryIpamStore {
    fn lookup(&self, network: &str, owner: &str) -> Result<Option<Ipv4Addr>> {
        Ok(self
            .map()
            .get(network)
            .and_then(|m| m.iter().find(|(_, o)| *o == owner).map(|(a, _)| *a)))
    }

    fn allocate(&self, network: &str, owner: &str, choose: Chooser<'_>) -> Result<Ipv4Addr> {
        let mut map = self.map();
        let taken = map.entry(network.to_string()).or_default();
        let address = choose(taken)?;
        taken.retain(|_, o| o != owner);
        taken.insert(address, owner.to_string());
        Ok(address)
    }

    fn release(&self, network: &str, owner: &str) -> Result<Option<Ipv4Addr>> {
        let mut map = self.map();
        let Some(taken) = map.get_mut(network) else {
            return Ok(None);
        };
        let held = taken.iter().find(|(_, o)| *o == owner).map(|(a, _)| *a);
        taken.retain(|_, o| o != owner);
        Ok(held)
    }

    fn list(&self, network: &str) -> Result<Vec<Allocation>> {
        Ok(self
            .map()
            .get(network)
            .map(|m| {
                m.iter()
                    .map(|(a, o)| Allocation {
                        network: network.to_string(),
                        address: *a,
                        owner: o.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().expect("address")
    }

    fn small(store: Arc<dyn IpamStore>) -> Ipam {
        let subnet: Ipv4Subnet = "10.213.0.0/29".parse().expect("subnet");
        Ipam::new(store, "bridge", subnet, subnet.first_host()).expect("ipam")
    }

    fn exercise(ipam: &Ipam) {
        // /29: .0 network, .7 broadcast, .1 gateway → .2 to .6 usable
        let mut got = Vec::new();
        for i in 0..5 {
            got.push(ipam.allocate(&format!("c{i}"), None).expect("alloc"));
        }
        assert_eq!(
            got,
            [
                "10.213.0.2",
                "10.213.0.3",
                "10.213.0.4",
                "10.213.0.5",
                "10.213.0.6"
            ]
            .map(ip)
        );
        let err = ipam.allocate("c5", None).expect_err("full");
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
        // asking again for the same owner returns its address, no second one
        assert_eq!(ipam.allocate("c3", None).expect("again"), ip("10.213.0.5"));
        assert_eq!(ipam.release("c1").expect("release"), Some(ip("10.213.0.3")));
        assert_eq!(ipam.release("c1").expect("release twice"), None);
        assert_eq!(ipam.allocate("c6", None).expect("reuse"), ip("10.213.0.3"));
        let addresses: HashSet<_> = ipam
            .allocations()
            .expect("list")
            .iter()
            .map(|a| a.address)
            .collect();
        assert_eq!(addresses.len(), 5, "no address twice");
    }

    #[test]
    fn allocates_in_order_and_never_twice_memory() {
        exercise(&small(Arc::new(MemoryIpamStore::default())));
    }

    #[test]
    fn allocates_in_order_and_never_twice_sqlite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteIpamStore::open(&dir.path().join("engine.db")).expect("open");
        exercise(&small(Arc::new(store)));
    }

    #[test]
    fn requested_addresses_are_honoured_or_refused() {
        let ipam = small(Arc::new(MemoryIpamStore::default()));
        assert_eq!(
            ipam.allocate("a", Some(ip("10.213.0.5"))).expect("free"),
            ip("10.213.0.5")
        );
        let err = ipam
            .allocate("b", Some(ip("10.213.0.5")))
            .expect_err("taken");
        assert_eq!(err.kind(), ErrorKind::Conflict);
        assert!(err.to_string().contains("in use by container a"), "{err}");
        for reserved in ["10.213.0.0", "10.213.0.1", "10.213.0.7"] {
            let err = ipam.allocate("b", Some(ip(reserved))).expect_err(reserved);
            assert!(err.to_string().contains("reserved"), "{err}");
        }
        let err = ipam
            .allocate("b", Some(ip("10.214.0.2")))
            .expect_err("outside");
        assert!(
            err.to_string().contains("not in subnet 10.213.0.0/29"),
            "{err}"
        );
        // the lowest free address skips the requested one
        assert_eq!(ipam.allocate("b", None).expect("next"), ip("10.213.0.2"));
        // the same owner may move to another requested address; the old one is freed
        assert_eq!(
            ipam.allocate("a", Some(ip("10.213.0.6"))).expect("move"),
            ip("10.213.0.6")
        );
        assert_eq!(
            ipam.allocate("c", Some(ip("10.213.0.5"))).expect("freed"),
            ip("10.213.0.5")
        );
    }

    #[test]
    fn survives_reopen_and_reconciles() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("engine.db");
        {
            let ipam = small(Arc::new(SqliteIpamStore::open(&path).expect("open")));
            ipam.allocate("alive", None).expect("alloc");
            ipam.allocate("gone", None).expect("alloc");
            ipam.allocate("also-gone", Some(ip("10.213.0.6")))
                .expect("alloc");
        }
        let ipam = small(Arc::new(SqliteIpamStore::open(&path).expect("reopen")));
        assert_eq!(
            ipam.allocate("alive", None).expect("held"),
            ip("10.213.0.2")
        );
        assert_eq!(ipam.allocate("new", None).expect("next"), ip("10.213.0.4"));
        let live: HashSet<String> = ["alive".to_string(), "new".to_string()].into();
        let mut freed: Vec<_> = ipam
            .reconcile(&live)
            .expect("reconcile")
            .into_iter()
            .map(|a| a.owner)
            .collect();
        freed.sort();
        assert_eq!(freed, ["also-gone", "gone"]);
        let owners: Vec<_> = ipam
            .allocations()
            .expect("list")
            .into_iter()
            .map(|a| a.owner)
            .collect();
        assert_eq!(owners, ["alive", "new"]);
        // networks are separate
        let other = Ipam::new(
            Arc::new(SqliteIpamStore::open(&path).expect("reopen")),
            "other",
            "10.214.0.0/24".parse().expect("subnet"),
            ip("10.214.0.1"),
        )
        .expect("ipam");
        assert_eq!(
            other.allocate("alive", None).expect("alloc"),
            ip("10.214.0.2")
        );
    }

    #[test]
    fn concurrent_allocations_never_collide() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("engine.db");
        SqliteIpamStore::open(&path).expect("create");
        let subnet: Ipv4Subnet = "10.213.0.0/24".parse().expect("subnet");
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let path = path.clone();
                std::thread::spawn(move || {
                    // separate connections, as two daemons' requests would have
                    let store = Arc::new(SqliteIpamStore::open(&path).expect("open"));
                    let ipam =
                        Ipam::new(store, "bridge", subnet, subnet.first_host()).expect("ipam");
                    (0..20)
                        .map(|i| ipam.allocate(&format!("t{t}-{i}"), None).expect("alloc"))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let all: Vec<_> = handles
            .into_iter()
            .flat_map(|h| h.join().expect("thread"))
            .collect();
        let unique: HashSet<_> = all.iter().collect();
        assert_eq!(unique.len(), 80);
    }
}
