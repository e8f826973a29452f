//! berth-net: container networking for berth.
//!
//! - [`link`]: the bridge and per-container veth pairs over rtnetlink (no `ip` binary), the
//!   container end moved into the container's network namespace and configured there.
//! - [`ipam`]: address allocation in a subnet, persisted through the [`ipam::IpamStore`] seam
//!   (SQLite implementation, one transaction per allocation) and reconciled against live
//!   containers.
//! - [`ports`]: parsing of `-p [IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp]` and host port choice.
//! - [`nft`]: berth's own nftables table (`ip berth`): MASQUERADE, hairpin NAT and published
//!   ports held as map elements, so adding or removing one container's ports is exact.
//! - [`localports`]: published TCP ports for connections made on the host itself, translated
//!   at `connect()` by two cgroup BPF programs ([`bpf`]: the raw `bpf(2)` calls and a tiny
//!   assembler; the one module of this crate with `unsafe`), so they skip NAT.
//! - [`sysctl`]: the few per-namespace switches NAT needs (`ip_forward`, `route_localnet`).
//! - [`dns`]: the embedded DNS server of user-defined networks (container names, aliases and
//!   short ids; the rest forwarded to the host's resolvers), and resolv.conf reading/writing.
//!
//! Defaults: bridge `berth0`, subnet [`DEFAULT_SUBNET`] (10.213.0.0/16: clear of Docker's
//! 172.17.0.0/16 and Podman's 10.88.0.0/16), gateway the subnet's first address.
#![deny(unsafe_code)]

pub mod bpf;
pub mod dns;
pub mod ipam;
pub mod link;
pub mod localports;
pub mod nft;
pub mod ports;
pub mod subnet;
pub mod sysctl;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

pub use ipam::{Ipam, IpamStore, MemoryIpamStore, SqliteIpamStore};
pub use link::{ContainerAttachment, Netlink};
pub use nft::{Nft, NftNetwork};
pub use ports::{PortMapping, PortSpec, Protocol};
pub use subnet::Ipv4Subnet;

/// The default bridge's name.
pub const DEFAULT_BRIDGE: &str = "berth0";
/// The default bridge network's subnet.
pub const DEFAULT_SUBNET: &str = "10.213.0.0/16";
/// The name of berth's nftables table (family `ip`).
pub const DEFAULT_NFT_TABLE: &str = "berth";

/// What kind of failure a [`NetworkError`] is, for the daemon's error→status mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The thing named does not exist.
    NotFound,
    /// The request conflicts with existing state (address or port in use).
    Conflict,
    /// The request is malformed.
    Invalid,
    /// Resources ran out (no free address or port).
    Unavailable,
    /// The kernel, nft or the store failed.
    Internal,
}

/// Errors of berth-net.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// A subnet string could not be parsed or is unusable.
    #[error("invalid subnet {value:?}: {reason}")]
    InvalidSubnet {
        /// The text given.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// A `-p` specification could not be parsed.
    #[error("invalid port specification {spec:?}: {reason}")]
    InvalidPortSpec {
        /// The text given.
        spec: String,
        /// Why it is refused.
        reason: String,
    },
    /// A requested address lies outside the network's subnet.
    #[error("address {address} is not in subnet {subnet}; pick an address inside it")]
    AddressOutsideSubnet {
        /// The address requested.
        address: Ipv4Addr,
        /// The network's subnet.
        subnet: Ipv4Subnet,
    },
    /// A requested address is the network, broadcast or gateway address.
    #[error(
        "address {address} is reserved in subnet {subnet} (network, broadcast or gateway address)"
    )]
    AddressReserved {
        /// The address requested.
        address: Ipv4Addr,
        /// The network's subnet.
        subnet: Ipv4Subnet,
    },
    /// A requested address is held by another container.
    #[error("address {address} in network {network} is already in use by container {owner}")]
    AddressInUse {
        /// The address requested.
        address: Ipv4Addr,
        /// The network's name.
        network: String,
        /// The container holding it.
        owner: String,
    },
    /// Every address of the subnet is allocated.
    #[error("no free address left in network {network} ({subnet})")]
    SubnetExhausted {
        /// The network's name.
        network: String,
        /// Its subnet.
        subnet: Ipv4Subnet,
    },
    /// The IPAM database failed.
    #[error("ipam database {path}")]
    Store {
        /// The database file.
        path: PathBuf,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// A netlink request failed.
    #[error("netlink: cannot {operation} interface {interface}")]
    Netlink {
        /// What was attempted.
        operation: &'static str,
        /// The interface concerned.
        interface: String,
        /// The kernel's answer.
        #[source]
        source: rtnetlink::Error,
    },
    /// An interface that must exist does not.
    #[error("interface {interface} not found")]
    LinkNotFound {
        /// Its name.
        interface: String,
    },
    /// An interface name is too long or malformed.
    #[error("invalid interface name {name:?}: at most 15 bytes, no '/', ':' or whitespace")]
    InvalidInterfaceName {
        /// The name.
        name: String,
    },
    /// An I/O error on a path (netns file, /proc/sys entry).
    #[error("{path}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A thread or socket could not be set up.
    #[error("{what}")]
    Setup {
        /// What was being set up.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// `nft` could not be started.
    #[error("cannot run {binary} (install Debian's nftables package)")]
    NftSpawn {
        /// The binary.
        binary: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// `nft` exited with a failure.
    #[error("nft {action} failed ({status}): {stderr}")]
    Nft {
        /// What berth asked of it.
        action: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it printed on stderr.
        stderr: String,
    },
    /// `nft` printed JSON berth cannot read.
    #[error("cannot parse the output of nft {action}")]
    NftOutput {
        /// What berth asked of it.
        action: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A host port is already published (by berth) or bound (by another program).
    #[error("Bind for {host_ip}:{port} failed: port is already allocated")]
    PortInUse {
        /// The host address (0.0.0.0 for all).
        host_ip: Ipv4Addr,
        /// The port.
        port: u16,
        /// Its protocol.
        protocol: Protocol,
    },
    /// A name given for DNS (container name, alias) cannot be one.
    #[error("invalid DNS name {name:?}: {reason}")]
    InvalidDnsName {
        /// The name given.
        name: String,
        /// Why it is refused.
        reason: String,
    },
    /// The embedded DNS server cannot bind its address.
    #[error("cannot bind the embedded DNS server to {address}/{protocol} (is another DNS server bound there?)")]
    DnsBind {
        /// The address.
        address: SocketAddr,
        /// `udp` or `tcp`.
        protocol: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A `bpf(2)` step of [`localports`] failed.
    #[error("cannot {action}{}", if log.is_empty() { String::new() } else { format!("; the verifier said:\n{log}") })]
    Bpf {
        /// What berth was doing.
        action: String,
        /// The error.
        #[source]
        source: std::io::Error,
        /// The verifier's log, for a program the kernel refused.
        log: String,
    },
    /// No free host port could be found.
    #[error("no free host port for {protocol} in {first}-{last}")]
    NoFreePort {
        /// The protocol.
        protocol: Protocol,
        /// First port tried.
        first: u16,
        /// Last port tried.
        last: u16,
    },
}

impl NetworkError {
    /// The kind of failure, for mapping to an HTTP status.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidSubnet { .. }
            | Self::InvalidPortSpec { .. }
            | Self::AddressOutsideSubnet { .. }
            | Self::AddressReserved { .. }
            | Self::InvalidInterfaceName { .. }
            | Self::InvalidDnsName { .. } => ErrorKind::Invalid,
            Self::DnsBind { source, .. } if source.kind() == std::io::ErrorKind::AddrInUse => {
                ErrorKind::Conflict
            }
            Self::AddressInUse { .. } | Self::PortInUse { .. } => ErrorKind::Conflict,
            Self::SubnetExhausted { .. } | Self::NoFreePort { .. } => ErrorKind::Unavailable,
            Self::LinkNotFound { .. } => ErrorKind::NotFound,
            Self::Store { .. }
            | Self::Netlink { .. }
            | Self::Io { .. }
            | Self::Setup { .. }
            | Self::NftSpawn { .. }
            | Self::Nft { .. }
            | Self::NftOutput { .. }
            | Self::DnsBind { .. }
            | Self::Bpf { .. } => ErrorKind::Internal,
        }
    }
}

/// Result of this crate.
pub type Result<T, E = NetworkError> = std::result::Result<T, E>;
