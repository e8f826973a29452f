//! Published TCP ports for connections made on the host itself, translated at `connect()`.
//!
//! [`crate::nft`] publishes a port with DNAT. For a connection from another machine that costs
//! nothing per packet after the first, but a connection made on the host (to 127.0.0.1 or one
//! of the host's addresses) is DNATed in the `output` hook, and the kernel then routes every
//! one of its packets again (`ip_route_me_harder`): about 10 % of the throughput of the direct
//! path to the container. So, as Cilium's socket load balancing does, berth also attaches two
//! small cgroup BPF programs for the daemon's network namespace:
//! - `connect4`: a TCP `connect()` to a published port gets the container's address and port
//!   instead, so the connection goes straight to the container, with no NAT at all;
//! - `getpeername4`: such a socket's `getpeername()` still answers the address it connected to.
//!
//! ```text
//! map ports  (hash)           netns cookie . host address . port → container address . port
//!                             netns cookie . 0.0.0.0      . port    published on every address
//!                             netns cookie . address      . 0    → the namespace's own addresses
//! map peers  (LRU hash)       socket cookie → the address . port it connected to
//! ```
//! A port published on every address is translated when the destination is local: 127.0.0.0/8
//! or an address of the namespace ([`LocalPorts::set_local_addresses`], kept current by
//! [`watch_addresses`]), which is what the nft rule's `fib daddr type local` matches.
//!
//! The nft table stays the source of truth and handles everything else (UDP, other machines,
//! containers, and every connection while no program is attached): the programs are attached
//! to the cgroup v2 root, so they see every process, and act only on sockets of the daemon's
//! network namespace. Their links are file descriptors of the daemon, so they go with it,
//! `kill -9` included, and connections then take the nft path again.
//!
//! Seen from the connection: its local address is the bridge's (as the container sees it),
//! and the host's nft `output` rules see the container's address, not the published port.
//! `berth daemon --local-ports nat` turns all of this off.

use std::collections::HashSet;
use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;

use crate::bpf::{self, helper, Asm, Cond, Map, MapType, Program, Reg, Size};
use crate::ports::{PortMapping, Protocol};
use crate::{NetworkError, Result};

// struct bpf_sock_addr
const CTX_USER_IP4: i16 = 4;
const CTX_USER_PORT: i16 = 24;
const CTX_PROTOCOL: i16 = 36;
const IPPROTO_TCP: i32 = 6;

/// Most ports (and local addresses) one daemon can hold in the map.
const MAX_PORTS: u32 = 65536;
/// Sockets whose original peer `getpeername()` can still answer (the oldest go first).
const MAX_PEERS: u32 = 8192;

/// `netns cookie . address . port` as the programs build it on their stack.
fn port_key(netns: u64, addr: Ipv4Addr, port: u16) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&netns.to_ne_bytes());
    key[8..12].copy_from_slice(&addr.octets());
    key[12..].copy_from_slice(&port_word(port));
    key
}

/// A port as `user_port` holds it: the network-order u16 in a u32.
fn port_word(port: u16) -> [u8; 4] {
    u32::from(u16::from_ne_bytes(port.to_be_bytes())).to_ne_bytes()
}

/// `address . port` of a map value.
fn addr_port(addr: Ipv4Addr, port: u16) -> [u8; 8] {
    let mut value = [0u8; 8];
    value[..4].copy_from_slice(&addr.octets());
    value[4..].copy_from_slice(&port_word(port));
    value
}

/// `r0 = bpf_map_lookup_elem(map, r10 + key)`.
fn lookup(a: &mut Asm, map: &Map, key: i32) {
    a.ld_map(Reg::R1, map);
    a.mov(Reg::R2, Reg::R10);
    a.add_imm(Reg::R2, key);
    a.call(helper::MAP_LOOKUP_ELEM);
}

/// The `connect4` program.
fn connect4(ports: &Map, peers: &Map) -> Vec<bpf::Insn> {
    use Reg::*;
    let mut a = Asm::new();
    let (out, any, found) = (a.label(), a.label(), a.label());
    a.mov(R6, R1);
    a.load(Size::W, R2, R6, CTX_PROTOCOL);
    a.jump_if(Cond::Ne, R2, IPPROTO_TCP, out);
    a.load(Size::W, R7, R6, CTX_USER_IP4);
    a.load(Size::W, R8, R6, CTX_USER_PORT);
    a.jump_if(Cond::Eq, R8, 0, out);
    a.mov(R1, R6);
    a.call(helper::GET_NETNS_COOKIE);
    // key on the stack: [r10-16] cookie, [r10-8] address, [r10-4] port
    a.store(Size::Dw, R10, -16, R0);
    a.store(Size::W, R10, -8, R7);
    a.store(Size::W, R10, -4, R8);
    // published on this very address?
    lookup(&mut a, ports, -16);
    a.jump_if(Cond::Ne, R0, 0, found);
    // is the address local: 127.0.0.0/8, or one of the namespace's (port 0 entries)?
    a.mov(R1, R7);
    a.and_imm(R1, u32::from_ne_bytes([0xff, 0, 0, 0]) as i32);
    a.jump_if(Cond::Eq, R1, u32::from_ne_bytes([127, 0, 0, 0]) as i32, any);
    a.store_imm(Size::W, R10, -4, 0);
    lookup(&mut a, ports, -16);
    a.jump_if(Cond::Eq, R0, 0, out);
    // published on every address?
    a.bind(any);
    a.store_imm(Size::W, R10, -8, 0);
    a.store(Size::W, R10, -4, R8);
    lookup(&mut a, ports, -16);
    a.jump_if(Cond::Eq, R0, 0, out);
    // to the container, remembering the original peer for getpeername
    a.bind(found);
    a.load(Size::W, R1, R0, 0);
    a.store(Size::W, R6, CTX_USER_IP4, R1);
    a.load(Size::W, R1, R0, 4);
    a.store(Size::W, R6, CTX_USER_PORT, R1);
    a.mov(R1, R6);
    a.call(helper::GET_SOCKET_COOKIE);
    a.store(Size::Dw, R10, -24, R0);
    a.store(Size::W, R10, -32, R7);
    a.store(Size::W, R10, -28, R8);
    a.ld_map(R1, peers);
    a.mov(R2, R10);
    a.add_imm(R2, -24);
    a.mov(R3, R10);
    a.add_imm(R3, -32);
    a.mov_imm(R4, 0);
    a.call(helper::MAP_UPDATE_ELEM);
    a.bind(out);
    a.mov_imm(R0, 1);
    a.exit();
    a.finish()
}

/// The `getpeername4` program.
fn getpeername4(peers: &Map) -> Vec<bpf::Insn> {
    use Reg::*;
    let mut a = Asm::new();
    let out = a.label();
    a.mov(R6, R1);
    a.call(helper::GET_SOCKET_COOKIE);
    a.store(Size::Dw, R10, -8, R0);
    lookup(&mut a, peers, -8);
    a.jump_if(Cond::Eq, R0, 0, out);
    a.load(Size::W, R1, R0, 0);
    a.store(Size::W, R6, CTX_USER_IP4, R1);
    a.load(Size::W, R1, R0, 4);
    a.store(Size::W, R6, CTX_USER_PORT, R1);
    a.bind(out);
    a.mov_imm(R0, 1);
    a.exit();
    a.finish()
}

/// The mount point of the cgroup v2 hierarchy in `mountinfo` text (`/sys/fs/cgroup`, or
/// `/sys/fs/cgroup/unified` on a hybrid host).
fn cgroup2_mount(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (before, after) = line.split_once(" - ")?;
        (after.split_whitespace().next() == Some("cgroup2"))
            .then(|| before.split_whitespace().nth(4).map(PathBuf::from))?
    })
}

fn bpf_err(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> NetworkError {
    let action = action.into();
    move |source| NetworkError::Bpf {
        action,
        source,
        log: String::new(),
    }
}

/// The programs, attached for the calling thread's network namespace, and their maps.
#[derive(Debug)]
pub struct LocalPorts {
    ports: Map,
    netns: u64,
    cgroup: PathBuf,
    local: Mutex<HashSet<Ipv4Addr>>,
    _links: [bpf::Link; 2],
}

impl LocalPorts {
    /// Loads the programs and attaches them to the cgroup v2 root for the calling thread's
    /// network namespace. Fails (and the caller keeps the nft path alone) where the kernel,
    /// the privileges or the mounts do not allow it.
    pub fn attach() -> Result<LocalPorts> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(bpf_err("read /proc/self/mountinfo"))?;
        let cgroup = cgroup2_mount(&mountinfo).ok_or_else(|| NetworkError::Bpf {
            action: "find the cgroup v2 hierarchy".into(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no cgroup2 mount"),
            log: String::new(),
        })?;
        Self::attach_at(&cgroup)
    }

    /// [`LocalPorts::attach`] with the programs attached to cgroup v2 directory `cgroup`.
    pub fn attach_at(cgroup: &Path) -> Result<LocalPorts> {
        let dir = File::open(cgroup).map_err(bpf_err(format!("open {}", cgroup.display())))?;
        let netns = bpf::netns_cookie().map_err(bpf_err("read the network namespace cookie"))?;
        let ports = Map::create(
            MapType::Hash,
            "berth_ports",
            16,
            8,
            MAX_PORTS,
            bpf::F_NO_PREALLOC,
        )
        .map_err(bpf_err("create the ports map"))?;
        let peers = Map::create(MapType::LruHash, "berth_peers", 8, 8, MAX_PEERS, 0)
            .map_err(bpf_err("create the peers map"))?;
        let load = |attach: u32, name: &str, insns: &[bpf::Insn]| {
            Program::load(bpf::PROG_TYPE_CGROUP_SOCK_ADDR, attach, name, insns).map_err(|e| {
                NetworkError::Bpf {
                    action: format!("load the {name} program"),
                    source: e.error,
                    log: e.log,
                }
            })
        };
        let connect = load(
            bpf::ATTACH_INET4_CONNECT,
            "berth_connect4",
            &connect4(&ports, &peers),
        )?;
        let getpeername = load(
            bpf::ATTACH_INET4_GETPEERNAME,
            "berth_peername4",
            &getpeername4(&peers),
        )?;
        let attach = |program: &Program, attach: u32, what: &str| {
            program
                .attach_cgroup(dir.as_fd(), attach)
                .map_err(bpf_err(format!(
                    "attach the {what} program to {}",
                    cgroup.display()
                )))
        };
        let links = [
            attach(&getpeername, bpf::ATTACH_INET4_GETPEERNAME, "getpeername4")?,
            attach(&connect, bpf::ATTACH_INET4_CONNECT, "connect4")?,
        ];
        // the programs hold the peers map (and the links the programs)
        Ok(LocalPorts {
            ports,
            netns,
            cgroup: cgroup.to_path_buf(),
            local: Mutex::new(HashSet::new()),
            _links: links,
        })
    }

    /// The cgroup v2 directory the programs are attached to.
    pub fn cgroup(&self) -> &Path {
        &self.cgroup
    }

    /// Translates connections to the TCP ports of `mappings` (UDP ones are left to nft) to
    /// `container_ip`. All or nothing.
    pub fn add(&self, container_ip: Ipv4Addr, mappings: &[PortMapping]) -> Result<()> {
        let mut added: Vec<[u8; 16]> = Vec::new();
        for m in mappings.iter().filter(|m| m.protocol == Protocol::Tcp) {
            let key = port_key(
                self.netns,
                m.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
                m.host_port,
            );
            if let Err(e) = self
                .ports
                .update(&key, &addr_port(container_ip, m.container_port))
            {
                for key in added {
                    let _ = self.ports.delete(&key);
                }
                return Err(bpf_err(format!(
                    "add port {} to the ports map",
                    m.host_port
                ))(e));
            }
            added.push(key);
        }
        Ok(())
    }

    /// Stops translating the TCP ports of `mappings`; idempotent.
    pub fn remove(&self, mappings: &[PortMapping]) -> Result<()> {
        for m in mappings.iter().filter(|m| m.protocol == Protocol::Tcp) {
            let key = port_key(
                self.netns,
                m.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
                m.host_port,
            );
            self.ports.delete(&key).map_err(bpf_err(format!(
                "remove port {} from the ports map",
                m.host_port
            )))?;
        }
        Ok(())
    }

    /// The container address and port a connection to `addr:port` goes to, if it is
    /// translated (the lookup of the program, for tests and `berth port`-like checks).
    pub fn lookup(&self, addr: Ipv4Addr, port: u16) -> Result<Option<(Ipv4Addr, u16)>> {
        let value = self
            .ports
            .lookup(&port_key(self.netns, addr, port))
            .map_err(bpf_err("look up the ports map"))?;
        Ok(value.map(|v| {
            let addr = Ipv4Addr::new(v[0], v[1], v[2], v[3]);
            let port = u16::from_be_bytes(
                u16::try_from(u32::from_ne_bytes([v[4], v[5], v[6], v[7]]))
                    .unwrap_or(0)
                    .to_ne_bytes(),
            );
            (addr, port)
        }))
    }

    /// Replaces the set of the namespace's own addresses (besides 127.0.0.0/8): connections
    /// to them reach the ports published on every address.
    pub fn set_local_addresses(&self, addrs: impl IntoIterator<Item = Ipv4Addr>) -> Result<()> {
        let want: HashSet<Ipv4Addr> = addrs
            .into_iter()
            .filter(|a| a.octets()[0] != 127 && !a.is_unspecified())
            .collect();
        let mut have = self.local.lock().unwrap_or_else(|p| p.into_inner());
        for gone in have.difference(&want) {
            self.ports
                .delete(&port_key(self.netns, *gone, 0))
                .map_err(bpf_err(format!("remove local address {gone}")))?;
        }
        for new in want.difference(&have) {
            self.ports
                .update(&port_key(self.netns, *new, 0), &[0; 8])
                .map_err(bpf_err(format!("add local address {new}")))?;
        }
        *have = want;
        Ok(())
    }

    /// The addresses [`LocalPorts::set_local_addresses`] last set.
    pub fn local_addresses(&self) -> HashSet<Ipv4Addr> {
        self.local.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Every IPv4 address of the calling task's network namespace.
async fn all_addresses(handle: &rtnetlink::Handle) -> Result<Vec<Ipv4Addr>> {
    use futures_util::TryStreamExt;
    use rtnetlink::packet_route::address::AddressAttribute;
    let mut stream = handle.address().get().execute();
    let mut out = Vec::new();
    while let Some(message) = stream.try_next().await.map_err(|e| NetworkError::Netlink {
        operation: "list the addresses of",
        interface: "every interface".into(),
        source: e,
    })? {
        for attr in &message.attributes {
            if let AddressAttribute::Local(std::net::IpAddr::V4(a))
            | AddressAttribute::Address(std::net::IpAddr::V4(a)) = attr
            {
                out.push(*a);
            }
        }
    }
    Ok(out)
}

/// Keeps `local`'s address set equal to the namespace's addresses: reads them now, then again
/// after every address change the kernel announces. Runs until the netlink socket fails; call
/// it from a task of a runtime in the daemon's network namespace.
pub async fn watch_addresses(local: Arc<LocalPorts>) -> Result<()> {
    use rtnetlink::sys::{AsyncSocket, SocketAddr};
    let (mut connection, handle, mut messages) =
        rtnetlink::new_connection().map_err(|source| NetworkError::Setup {
            what: "open a netlink socket".into(),
            source,
        })?;
    connection
        .socket_mut()
        .socket_mut()
        .bind(&SocketAddr::new(
            0,
            rtnetlink::constants::RTMGRP_IPV4_IFADDR,
        ))
        .map_err(|source| NetworkError::Setup {
            what: "subscribe to address changes".into(),
            source,
        })?;
    let driver = tokio::spawn(connection);
    let result = async {
        loop {
            local.set_local_addresses(all_addresses(&handle).await?)?;
            if messages.next().await.is_none() {
                return Ok(());
            }
            // one read for a burst of changes
            while let Ok(Some(_)) =
                tokio::time::timeout(std::time::Duration::from_millis(5), messages.next()).await
            {
            }
        }
    }
    .await;
    driver.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_cgroup2_mount_of_a_hybrid_and_a_unified_host() {
        let hybrid = "25 24 0:22 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755\n\
                      26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw\n\
                      27 25 0:24 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        assert_eq!(
            cgroup2_mount(hybrid),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        let unified = "30 24 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw\n";
        assert_eq!(
            cgroup2_mount(unified),
            Some(PathBuf::from("/sys/fs/cgroup"))
        );
        assert_eq!(
            cgroup2_mount("27 25 0:24 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"),
            None
        );
    }

    #[test]
    fn keys_hold_address_and_port_in_network_order() {
        let key = port_key(0x0102030405060708, Ipv4Addr::new(127, 0, 0, 1), 8080);
        assert_eq!(&key[8..12], &[127, 0, 0, 1]);
        // user_port: the big-endian port in the low half of a native u32
        assert_eq!(
            u32::from_ne_bytes(key[12..16].try_into().expect("4 bytes")),
            u32::from(u16::from_ne_bytes([0x1f, 0x90]))
        );
        assert_eq!(
            &addr_port(Ipv4Addr::new(10, 213, 0, 2), 80)[..4],
            &[10, 213, 0, 2]
        );
    }
}
