//! IPv4 subnets: parsing, membership, reserved addresses.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use crate::NetworkError;

/// An IPv4 subnet such as `10.213.0.0/16` (host bits zero, prefix 8..=30).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Subnet {
    network: Ipv4Addr,
    prefix_len: u8,
}

impl Ipv4Subnet {
    /// Builds a subnet; refuses host bits and prefixes that leave fewer than two hosts.
    pub fn new(network: Ipv4Addr, prefix_len: u8) -> Result<Self, NetworkError> {
        let invalid = |reason: &str| NetworkError::InvalidSubnet {
            value: format!("{network}/{prefix_len}"),
            reason: reason.to_string(),
        };
        if !(8..=30).contains(&prefix_len) {
            return Err(invalid("the prefix length must be between 8 and 30"));
        }
        let subnet = Self {
            network,
            prefix_len,
        };
        if u32::from(network) & !subnet.mask() != 0 {
            let fixed = Ipv4Addr::from(u32::from(network) & subnet.mask());
            return Err(invalid(&format!(
                "host bits are set; did you mean {fixed}/{prefix_len}?"
            )));
        }
        Ok(subnet)
    }

    fn mask(&self) -> u32 {
        u32::MAX << (32 - u32::from(self.prefix_len))
    }

    /// The network address.
    pub fn network(&self) -> Ipv4Addr {
        self.network
    }

    /// The prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// The broadcast address.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !self.mask())
    }

    /// The first host address (berth's default gateway).
    pub fn first_host(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    /// The last host address.
    pub fn last_host(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.broadcast()) - 1)
    }

    /// Whether `address` lies in the subnet (network and broadcast included).
    pub fn contains(&self, address: Ipv4Addr) -> bool {
        u32::from(address) & self.mask() == u32::from(self.network)
    }

    /// Whether `address` can be given to a host (in the subnet, not network or broadcast).
    pub fn is_host(&self, address: Ipv4Addr) -> bool {
        self.contains(address) && address != self.network && address != self.broadcast()
    }
}

impl fmt::Display for Ipv4Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_len)
    }
}

impl FromStr for Ipv4Subnet {
    type Err = NetworkError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: &str| NetworkError::InvalidSubnet {
            value: value.to_string(),
            reason: reason.to_string(),
        };
        let (address, prefix) = value
            .split_once('/')
            .ok_or_else(|| invalid("expected ADDRESS/PREFIX, for example 10.213.0.0/16"))?;
        let address: Ipv4Addr = address
            .parse()
            .map_err(|_| invalid("not an IPv4 address"))?;
        let prefix: u8 = prefix
            .parse()
            .map_err(|_| invalid("the prefix length is not a number"))?;
        Self::new(address, prefix).map_err(|err| match err {
            NetworkError::InvalidSubnet { reason, .. } => NetworkError::InvalidSubnet {
                value: value.to_string(),
                reason,
            },
            other => other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_computes_bounds() {
        let s: Ipv4Subnet = "10.213.0.0/16".parse().expect("valid");
        assert_eq!(s.broadcast(), Ipv4Addr::new(10, 213, 255, 255));
        assert_eq!(s.first_host(), Ipv4Addr::new(10, 213, 0, 1));
        assert_eq!(s.last_host(), Ipv4Addr::new(10, 213, 255, 254));
        assert!(s.contains(Ipv4Addr::new(10, 213, 7, 9)));
        assert!(!s.contains(Ipv4Addr::new(10, 214, 0, 1)));
        assert!(!s.is_host(s.broadcast()));
        assert_eq!(s.to_string(), "10.213.0.0/16");
    }

    #[test]
    fn refuses_bad_subnets() {
        for bad in [
            "10.213.0.0",
            "10.213.0.1/16",
            "10.213.0.0/31",
            "x/16",
            "10.0.0.0/abc",
        ] {
            let err = bad.parse::<Ipv4Subnet>().expect_err(bad);
            assert!(err.to_string().contains(bad), "{err}");
        }
        let err = "10.213.0.1/16"
            .parse::<Ipv4Subnet>()
            .expect_err("host bits");
        assert!(err.to_string().contains("10.213.0.0/16"), "{err}");
    }
}
