//! IPAM (IP address management): which container has which address.
//!
//! "If your host has 100 containers they must have 100 different IP
//! addresses." A bridge has a subnet; its first address is the gateway,
//! and [`choose_address`] gives each container another one. Which
//! addresses are taken is a record, one line per container in the state
//! directory, kept under a lock by `pfs_state::leases`
//! (`crates/state/src/leases.rs`): two runs that start at the same moment
//! never pick the same address.
//!
//! What a subnet is, as arithmetic (parse `10.200.0.0/24`, its gateway,
//! its broadcast address, the range between), is machinery:
//! [`Subnet`] lives in `pfs_netlink::subnet` (`crates/netlink/src/subnet.rs`).

use std::net::Ipv4Addr;

use anyhow::{bail, Result};
pub use pfs_netlink::subnet::{parse_requested, Subnet};

// ANCHOR: choose_address
/// The heart of IPAM, with no I/O: given the addresses already leased, give
/// the one asked for if it is free, else the lowest free one.
pub fn choose_address(
    subnet: Subnet,
    taken: &[Ipv4Addr],
    requested: Option<Ipv4Addr>,
) -> Result<Ipv4Addr> {
    if let Some(address) = requested {
        if taken.contains(&address) {
            bail!("address {address} is already taken by another container");
        }
        return Ok(address);
    }
    match subnet.container_addresses().find(|a| !taken.contains(a)) {
        Some(address) => Ok(address),
        None => {
            bail!("no free address left in {subnet}: stop a container or use a larger --subnet")
        }
    }
}
// ANCHOR_END: choose_address

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet() -> Subnet {
        Subnet::parse("10.200.0.0/24").unwrap()
    }

    #[test]
    fn the_lowest_free_address_is_chosen() {
        let taken = [Ipv4Addr::new(10, 200, 0, 2), Ipv4Addr::new(10, 200, 0, 4)];
        assert_eq!(
            choose_address(subnet(), &[], None).unwrap(),
            Ipv4Addr::new(10, 200, 0, 2)
        );
        assert_eq!(
            choose_address(subnet(), &taken, None).unwrap(),
            Ipv4Addr::new(10, 200, 0, 3)
        );
    }

    #[test]
    fn a_requested_address_is_given_when_free_and_refused_when_taken() {
        let wanted = Ipv4Addr::new(10, 200, 0, 9);
        assert_eq!(choose_address(subnet(), &[], Some(wanted)).unwrap(), wanted);
        let err = choose_address(subnet(), &[wanted], Some(wanted))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "address 10.200.0.9 is already taken by another container"
        );
    }

    #[test]
    fn an_exhausted_subnet_is_an_error() {
        let small = Subnet::parse("10.200.0.0/30").unwrap(); // .1 gateway, .2 the only one
        let taken: Vec<_> = small.container_addresses().collect();
        assert_eq!(taken, [Ipv4Addr::new(10, 200, 0, 2)]);
        let err = choose_address(small, &taken, None).unwrap_err().to_string();
        assert!(
            err.starts_with("no free address left in 10.200.0.0/30"),
            "{err}"
        );
    }
}
