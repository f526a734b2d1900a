//! An IPv4 subnet: parse it (`--subnet`, `--ip`) and do its arithmetic
//! (network, gateway, broadcast, the addresses a container may get).
//! Machinery for chapter 03's IPAM: the idea itself, `choose_address`,
//! stays in the chapter (`chapters/03-network/src/ipam.rs`).

use std::fmt;
use std::net::Ipv4Addr;

use anyhow::{bail, Result};

/// An IPv4 subnet such as `10.200.0.0/24`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subnet {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    /// Parse `A.B.C.D/N`. The host bits must be zero, and the prefix must
    /// leave room for a gateway and at least one container (8 to 30).
    pub fn parse(text: &str) -> Result<Subnet> {
        let Some((address, prefix)) = text.split_once('/') else {
            bail!("invalid subnet {text:?}: write it as ADDRESS/PREFIX, e.g. 10.200.0.0/24");
        };
        let network: Ipv4Addr = address.parse().map_err(|_| {
            anyhow::anyhow!("invalid subnet {text:?}: {address:?} is not an IPv4 address")
        })?;
        let prefix: u8 = match prefix.parse() {
            Ok(n) if (8..=30).contains(&n) => n,
            _ => bail!("invalid subnet {text:?}: the prefix length must be a number from 8 to 30"),
        };
        let subnet = Subnet { network, prefix };
        if subnet.network_address() != network {
            bail!(
                "invalid subnet {text:?}: host bits are set, did you mean {}?",
                subnet.with_network(subnet.network_address())
            );
        }
        Ok(subnet)
    }

    fn with_network(self, network: Ipv4Addr) -> Subnet {
        Subnet { network, ..self }
    }

    fn mask(self) -> u32 {
        u32::MAX << (32 - u32::from(self.prefix))
    }

    fn network_address(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) & self.mask())
    }

    /// The last address of the subnet, for broadcast: not for a container.
    pub fn broadcast(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !self.mask())
    }

    /// The first address: the bridge's, the containers' default gateway.
    pub fn gateway(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    pub fn contains(self, address: Ipv4Addr) -> bool {
        u32::from(address) & self.mask() == u32::from(self.network)
    }

    /// The addresses a container may get: all but the network address, the
    /// gateway and the broadcast address.
    pub fn container_addresses(self) -> impl Iterator<Item = Ipv4Addr> {
        let first = u32::from(self.gateway()) + 1;
        let last = u32::from(self.broadcast()) - 1;
        (first..=last).map(Ipv4Addr::from)
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// Parse the address asked for with `--ip`, and check it may be given to a
/// container of `subnet`.
pub fn parse_requested(text: &str, subnet: Subnet) -> Result<Ipv4Addr> {
    let address: Ipv4Addr = text.parse().map_err(|_| {
        anyhow::anyhow!("invalid address {text:?}: expected an IPv4 address such as 10.200.0.9")
    })?;
    if !subnet.contains(address) {
        bail!("address {address} is outside the subnet {subnet}");
    }
    if address == subnet.network || address == subnet.gateway() || address == subnet.broadcast() {
        bail!("address {address} is reserved in {subnet} (network, gateway or broadcast)");
    }
    Ok(address)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subnet_knows_its_gateway_broadcast_and_container_range() {
        let s = Subnet::parse("10.200.0.0/24").unwrap();
        assert_eq!(s.gateway(), Ipv4Addr::new(10, 200, 0, 1));
        assert_eq!(s.broadcast(), Ipv4Addr::new(10, 200, 0, 255));
        assert_eq!(s.container_addresses().count(), 253);
        assert_eq!(
            s.container_addresses().next(),
            Some(Ipv4Addr::new(10, 200, 0, 2))
        );
        assert!(s.contains(Ipv4Addr::new(10, 200, 0, 77)));
        assert!(!s.contains(Ipv4Addr::new(10, 200, 1, 77)));
        assert_eq!(s.to_string(), "10.200.0.0/24");
    }

    #[test]
    fn malformed_subnets_are_refused_with_one_line() {
        for bad in [
            "10.200.0.0",
            "10.200.0/24",
            "10.200.0.0/33",
            "10.200.0.0/31",
            "10.200.0.0/x",
            "",
            "/24",
        ] {
            let err = Subnet::parse(bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid subnet"), "{bad:?}: {err}");
            assert_eq!(err.lines().count(), 1);
        }
        let err = Subnet::parse("10.200.0.1/24").unwrap_err().to_string();
        assert!(err.contains("did you mean 10.200.0.0/24"), "{err}");
    }

    #[test]
    fn requested_addresses_are_checked_against_the_subnet() {
        let s = Subnet::parse("10.200.0.0/24").unwrap();
        assert_eq!(
            parse_requested("10.200.0.9", s).unwrap(),
            Ipv4Addr::new(10, 200, 0, 9)
        );
        let outside = parse_requested("10.201.0.9", s).unwrap_err().to_string();
        assert_eq!(
            outside,
            "address 10.201.0.9 is outside the subnet 10.200.0.0/24"
        );
        for reserved in ["10.200.0.0", "10.200.0.1", "10.200.0.255"] {
            let err = parse_requested(reserved, s).unwrap_err().to_string();
            assert!(err.contains("is reserved"), "{err}");
        }
        for bad in ["10.200.0", "10.200.0.256", "abc", ""] {
            let err = parse_requested(bad, s).unwrap_err().to_string();
            assert!(err.starts_with("invalid address"), "{bad:?}: {err}");
        }
    }
}
