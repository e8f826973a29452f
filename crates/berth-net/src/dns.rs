//! The embedded DNS server of user-defined networks (Docker's embedded DNS, adapted).
//!
//! The daemon runs one [`Resolver`] per user-defined network, in the host's network namespace,
//! bound to the network's gateway address on port 53 (UDP and TCP); the containers of that
//! network get that address as their only `nameserver` ([`ContainerResolvConf`]).
//!
//! What it answers, from the network's [`DnsRecords`] (names are case-insensitive, with or
//! without the trailing dot, and `NAME.NETWORK` answers like `NAME`):
//! - a container's name, each of its aliases and its short id (12 characters): `A` with its
//!   IPv4 addresses on the network, TTL 600 as in Docker; several containers may share an alias,
//!   which then answers all their addresses, rotated on each query (Docker shuffles);
//! - `AAAA` for such a name: its IPv6 addresses, or an empty NOERROR answer when it has none
//!   (as Docker), so clients do not fall through to other servers;
//! - `PTR` for a container's address: `NAME.NETWORK.`;
//! - any other type for such a name: an empty NOERROR answer. Docker forwards those types; berth
//!   never lets a name the network owns leak to the upstreams.
//!
//! What it forwards: every other query, to the upstreams of [`ResolverConfig`] (the host's
//! resolv.conf nameservers, [`ResolvConf`]) or to the asking container's own `--dns` servers,
//! over the client's transport: UDP with a timeout per server and the next server after a
//! timeout, an error, SERVFAIL, REFUSED or a non-authoritative NXDOMAIN (kept if nothing better
//! comes, as Docker does); TCP queries over TCP. A truncated UDP answer goes back truncated so
//! the client retries over TCP. With no upstream, or when all fail, the answer is SERVFAIL. The
//! query goes upstream under a fresh random id; only answers with that id and question are
//! taken. A removed container's name is no longer the network's: it is forwarded like any
//! external name (Docker's behaviour), so it gets whatever the upstreams say, normally NXDOMAIN.
//!
//! `--internal` networks ([`ResolverConfig::internal`]): nothing is forwarded; external names
//! get SERVFAIL, as Docker answers there (REFUSED would be as defensible; SERVFAIL keeps clients
//! and tests written against Docker unchanged).
//!
//! Undecodable packets and responses are dropped without an answer (the server goes on);
//! queries with zero or several questions get FORMERR, other opcodes NOTIMP. UDP answers that
//! exceed the client's size (512, or its EDNS size) lose answer records until they fit and carry
//! the TC bit.
//!
//! Differences from Docker, whose resolver listens on 127.0.0.11 inside each container's
//! namespace, redirected there by iptables rules in that namespace:
//! - one server per network on the gateway address, in the host namespace: no per-container
//!   socket or rules, and host resolvers on loopback (systemd-resolved's 127.0.0.53) work as
//!   upstreams directly. Since other networks' containers can route to that address too, the
//!   server answers only its network's subnet and loopback ([`ResolverConfig::clients`]).
//! - per-container `--dns` servers are found by the client's source address.
//! - no SRV/service (swarm) records, no `ndots`-based refusal of single-label names.
//!
//! How the daemon wires one network (the records table outlives restarts of the server):
//!
//! ```no_run
//! # async fn wire() -> berth_net::Result<()> {
//! use std::net::{IpAddr, Ipv4Addr, SocketAddr};
//! use std::path::Path;
//! use std::sync::Arc;
//! use berth_net::dns::{ContainerResolvConf, DnsContainer, DnsRecords, ResolvConf, Resolver, ResolverConfig};
//!
//! let subnet: berth_net::Ipv4Subnet = "10.214.0.0/16".parse()?;
//! let gateway = IpAddr::V4(subnet.first_host());
//! let host = ResolvConf::read(Path::new("/etc/resolv.conf"))?;
//! let records = Arc::new(DnsRecords::new("appnet"));
//! let config = ResolverConfig {
//!     clients: Some(subnet),
//!     internal: false, // `--internal`
//!     ..ResolverConfig::forwarding_to(host.upstreams())
//! };
//! let resolver = Resolver::start(SocketAddr::new(gateway, 53), records.clone(), config).await?;
//! // on connect (container start): its records, and its /etc/resolv.conf
//! records.add(DnsContainer {
//!     id: "4f2a9c1d7e3b8a6f5c0d2e1f".into(),
//!     name: "/web".into(),
//!     aliases: vec!["frontend".into()],
//!     ipv4: vec![Ipv4Addr::new(10, 214, 0, 2)],
//!     ..Default::default()
//! })?;
//! let resolv_conf = ContainerResolvConf::for_container(gateway, &host, &[], &[]).render();
//! # let _ = resolv_conf;
//! // on disconnect (container stop or removal), and at network removal
//! records.remove("4f2a9c1d7e3b8a6f5c0d2e1f");
//! resolver.stop().await;
//! # Ok(())
//! # }
//! ```
//!
//! Wire format: `hickory-proto` (the protocol crate of Hickory DNS) encodes and decodes every
//! message; hand-written parsing of names, compression pointers and EDNS is where DNS servers
//! get their bugs. Forwarded answers are passed on byte for byte (only the id is rewritten), so
//! record types the library does not model still reach the client intact.

mod records;
mod resolv_conf;
mod server;

pub use records::{
    check_dns_name, normalize_name, DnsAddresses, DnsContainer, DnsRecords, SHORT_ID_LEN,
};
pub use resolv_conf::{ContainerResolvConf, ResolvConf};
pub use server::{
    Resolver, ResolverConfig, DEFAULT_UPSTREAM_TIMEOUT, MAX_CONCURRENT_FORWARDS,
    MAX_TCP_CONNECTIONS, TCP_IDLE_TIMEOUT, TTL,
};
