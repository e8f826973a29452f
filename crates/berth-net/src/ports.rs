//! `-p [IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp]`: parsing, and turning a spec into concrete
//! host-port → container-port mappings (ranges, a free host port when none is given).

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};
use std::str::FromStr;

use crate::{NetworkError, Result};

/// A transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Protocol {
    /// `tcp` or `udp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An inclusive port range (`first == last` for one port).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    /// First port.
    pub first: u16,
    /// Last port.
    pub last: u16,
}

impl PortRange {
    /// How many ports.
    pub fn len(&self) -> usize {
        usize::from(self.last - self.first) + 1
    }

    /// Never empty; present for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// One parsed `-p` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    /// The host address to bind (`None`: every host address).
    pub host_ip: Option<Ipv4Addr>,
    /// The host port(s) (`None`: pick free ones).
    pub host_ports: Option<PortRange>,
    /// The container port(s).
    pub container_ports: PortRange,
    /// The protocol.
    pub protocol: Protocol,
}

/// One concrete published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortMapping {
    /// The host address (`None`: every host address, shown as 0.0.0.0).
    pub host_ip: Option<Ipv4Addr>,
    /// The host port.
    pub host_port: u16,
    /// The container port.
    pub container_port: u16,
    /// The protocol.
    pub protocol: Protocol,
}

impl fmt::Display for PortMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} -> {}:{}",
            self.container_port,
            self.protocol,
            self.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
            self.host_port
        )
    }
}

fn parse_range(spec: &str, text: &str, what: &str) -> Result<PortRange> {
    let invalid = |reason: String| NetworkError::InvalidPortSpec {
        spec: spec.to_string(),
        reason,
    };
    let port = |p: &str| -> Result<u16> {
        match p.parse::<u16>() {
            Ok(0) | Err(_) => Err(invalid(format!(
                "{what} {p:?} is not a port number (1-65535)"
            ))),
            Ok(n) => Ok(n),
        }
    };
    let (first, last) = match text.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => {
            let p = port(text)?;
            (p, p)
        }
    };
    if last < first {
        return Err(invalid(format!(
            "{what} range {text} ends before it starts"
        )));
    }
    Ok(PortRange { first, last })
}

impl FromStr for PortSpec {
    type Err = NetworkError;

    fn from_str(spec: &str) -> Result<Self> {
        let invalid = |reason: &str| NetworkError::InvalidPortSpec {
            spec: spec.to_string(),
            reason: reason.to_string(),
        };
        let (rest, protocol) = match spec.rsplit_once('/') {
            Some((rest, "tcp")) => (rest, Protocol::Tcp),
            Some((rest, "udp")) => (rest, Protocol::Udp),
            Some((_, "sctp")) => return Err(invalid("sctp is not supported; use tcp or udp")),
            Some(_) => return Err(invalid("the protocol must be tcp or udp")),
            None => (spec, Protocol::Tcp),
        };
        if rest.starts_with('[') {
            return Err(invalid("IPv6 host addresses are not supported yet"));
        }
        let parts: Vec<&str> = rest.split(':').collect();
        let (host_ip, host_ports, container) = match parts.as_slice() {
            [container] => (None, None, *container),
            [host, container] => (None, Some(*host), *container),
            [ip, host, container] => (Some(*ip), Some(*host), *container),
            _ => {
                return Err(invalid(
                    "expected [IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp]",
                ))
            }
        };
        let host_ip = match host_ip {
            None | Some("") => None,
            Some(ip) => match ip.parse::<Ipv4Addr>() {
                Ok(a) if a.is_unspecified() => None,
                Ok(a) => Some(a),
                Err(_) => return Err(invalid("the host address is not an IPv4 address")),
            },
        };
        let host_ports = match host_ports {
            None | Some("") => None,
            Some(p) => Some(parse_range(spec, p, "host port")?),
        };
        if container.is_empty() {
            return Err(invalid("the container port is missing"));
        }
        let container_ports = parse_range(spec, container, "container port")?;
        if let Some(host) = host_ports {
            if host.len() != container_ports.len() && container_ports.len() != 1 {
                return Err(invalid(
                    "the host and container port ranges must be the same size",
                ));
            }
        }
        Ok(Self {
            host_ip,
            host_ports,
            container_ports,
            protocol,
        })
    }
}

/// Answers whether a host port can be taken: not already published by berth and not bound
/// by another program.
pub trait PortChecker {
    /// Whether (`protocol`, `host_ip`, `port`) is free.
    fn is_free(&self, protocol: Protocol, host_ip: Option<Ipv4Addr>, port: u16) -> bool;
    /// A free port picked by the kernel (ephemeral range), or `None` when it gave none.
    fn ephemeral(&self, protocol: Protocol, host_ip: Option<Ipv4Addr>) -> Option<u16>;
}

/// [`PortChecker`] that asks the kernel of the calling thread's network namespace by binding,
/// and consults `published` for ports berth already publishes (which are DNATed, not bound).
pub struct SocketPortChecker<F: Fn(Protocol, u16) -> bool> {
    /// Whether berth already publishes (`protocol`, `port`) on any host address.
    pub published: F,
}

fn bind_port(protocol: Protocol, host_ip: Option<Ipv4Addr>, port: u16) -> Option<u16> {
    let address = SocketAddrV4::new(host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED), port);
    match protocol {
        Protocol::Tcp => TcpListener::bind(address)
            .ok()
            .and_then(|l| l.local_addr().ok())
            .map(|a| a.port()),
        Protocol::Udp => UdpSocket::bind(address)
            .ok()
            .and_then(|s| s.local_addr().ok())
            .map(|a| a.port()),
    }
}

impl<F: Fn(Protocol, u16) -> bool> PortChecker for SocketPortChecker<F> {
    fn is_free(&self, protocol: Protocol, host_ip: Option<Ipv4Addr>, port: u16) -> bool {
        !(self.published)(protocol, port) && bind_port(protocol, host_ip, port).is_some()
    }

    fn ephemeral(&self, protocol: Protocol, host_ip: Option<Ipv4Addr>) -> Option<u16> {
        bind_port(protocol, host_ip, 0)
    }
}

impl PortSpec {
    /// Concrete mappings: ranges paired port by port; a host range with one container port
    /// takes the first free host port of the range; no host port takes a free ephemeral one.
    pub fn resolve(&self, checker: &dyn PortChecker) -> Result<Vec<PortMapping>> {
        let mapping = |host_port, container_port| PortMapping {
            host_ip: self.host_ip,
            host_port,
            container_port,
            protocol: self.protocol,
        };
        let in_use = |port| NetworkError::PortInUse {
            host_ip: self.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
            port,
            protocol: self.protocol,
        };
        let container = self.container_ports;
        match self.host_ports {
            Some(host) if host.len() == container.len() => (0..host.len())
                .map(|i| {
                    let (h, c) = (host.first + i as u16, container.first + i as u16);
                    if checker.is_free(self.protocol, self.host_ip, h) {
                        Ok(mapping(h, c))
                    } else {
                        Err(in_use(h))
                    }
                })
                .collect(),
            Some(host) => (host.first..=host.last)
                .find(|p| checker.is_free(self.protocol, self.host_ip, *p))
                .map(|p| vec![mapping(p, container.first)])
                .ok_or(NetworkError::NoFreePort {
                    protocol: self.protocol,
                    first: host.first,
                    last: host.last,
                }),
            None => {
                let mut out: Vec<PortMapping> = Vec::new();
                for c in container.first..=container.last {
                    let port = (0..64)
                        .filter_map(|_| checker.ephemeral(self.protocol, self.host_ip))
                        .find(|p| {
                            !out.iter().any(|m| m.host_port == *p)
                                && checker.is_free(self.protocol, self.host_ip, *p)
                        })
                        .ok_or(NetworkError::NoFreePort {
                            protocol: self.protocol,
                            first: 1,
                            last: u16::MAX,
                        })?;
                    out.push(mapping(port, c));
                }
                Ok(out)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::collections::HashSet;

    fn spec(s: &str) -> PortSpec {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parses_the_docker_forms() {
        let one = |p| PortRange { first: p, last: p };
        assert_eq!(
            spec("80"),
            PortSpec {
                host_ip: None,
                host_ports: None,
                container_ports: one(80),
                protocol: Protocol::Tcp
            }
        );
        assert_eq!(spec("8080:80").host_ports, Some(one(8080)));
        assert_eq!(spec("53:53/udp").protocol, Protocol::Udp);
        let s = spec("127.0.0.1:8080:80/tcp");
        assert_eq!(s.host_ip, Some(Ipv4Addr::LOCALHOST));
        assert_eq!(s.host_ports, Some(one(8080)));
        let s = spec("127.0.0.1::80");
        assert_eq!((s.host_ip, s.host_ports), (Some(Ipv4Addr::LOCALHOST), None));
        assert_eq!(spec("0.0.0.0:81:80").host_ip, None);
        let s = spec("8000-8002:80-82");
        assert_eq!(
            s.host_ports,
            Some(PortRange {
                first: 8000,
                last: 8002
            })
        );
        assert_eq!(
            s.container_ports,
            PortRange {
                first: 80,
                last: 82
            }
        );
        assert_eq!(spec("8000-8010:80").container_ports, one(80));
        assert_eq!(spec("80-81").host_ports, None);
    }

    #[test]
    fn refuses_bad_specs_clearly() {
        for (bad, says) in [
            ("", "container port"),
            ("0", "not a port number"),
            ("70000", "not a port number"),
            ("80/icmp", "tcp or udp"),
            ("80/sctp", "sctp"),
            ("a:80", "host port"),
            ("1.2.3:80:80", "IPv4"),
            ("[::1]:80:80", "IPv6"),
            ("8000-8002:80-81", "same size"),
            ("90-80", "ends before"),
            ("1:2:3:4", "expected"),
            ("8080:", "container port is missing"),
        ] {
            let err = bad.parse::<PortSpec>().expect_err(bad);
            let text = err.to_string();
            assert!(
                text.contains(says) && text.contains(&format!("{bad:?}")),
                "{bad}: {text}"
            );
        }
    }

    /// Fake: ports in `busy` are taken; ephemeral answers count up from 40000.
    struct Fake {
        busy: HashSet<u16>,
        next: Cell<u16>,
    }

    impl PortChecker for Fake {
        fn is_free(&self, _: Protocol, _: Option<Ipv4Addr>, port: u16) -> bool {
            !self.busy.contains(&port)
        }
        fn ephemeral(&self, _: Protocol, _: Option<Ipv4Addr>) -> Option<u16> {
            let p = self.next.get();
            self.next.set(p + 1);
            Some(p)
        }
    }

    #[test]
    fn resolves_ranges_and_free_ports() {
        let fake = Fake {
            busy: [8000, 8001, 40001].into(),
            next: Cell::new(40000),
        };
        let ports = |s: &str| -> Vec<(u16, u16)> {
            spec(s)
                .resolve(&fake)
                .expect(s)
                .iter()
                .map(|m| (m.host_port, m.container_port))
                .collect()
        };
        assert_eq!(
            ports("9000-9002:80-82"),
            [(9000, 80), (9001, 81), (9002, 82)]
        );
        assert_eq!(ports("8000-8010:80"), [(8002, 80)]);
        fake.next.set(40000);
        assert_eq!(ports("80-82"), [(40000, 80), (40002, 81), (40003, 82)]);
        let err = spec("8001:80").resolve(&fake).expect_err("busy");
        assert_eq!(
            err.to_string(),
            "Bind for 0.0.0.0:8001 failed: port is already allocated"
        );
        let err = spec("8000-8001:80").resolve(&fake).expect_err("all busy");
        assert!(err.to_string().contains("no free host port"), "{err}");
    }

    #[test]
    fn socket_checker_sees_bound_and_published_ports() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let bound = listener.local_addr().expect("addr").port();
        let checker = SocketPortChecker {
            published: |_, p| p == 1,
        };
        assert!(!checker.is_free(Protocol::Tcp, Some(Ipv4Addr::LOCALHOST), bound));
        assert!(!checker.is_free(Protocol::Tcp, Some(Ipv4Addr::LOCALHOST), 1));
        let mapping = spec("127.0.0.1::80").resolve(&checker).expect("free port");
        assert_ne!(mapping[0].host_port, bound);
        assert!(checker.is_free(
            Protocol::Tcp,
            Some(Ipv4Addr::LOCALHOST),
            mapping[0].host_port
        ));
    }
}
