//! IPAM (IP address management): which container has which address.
//!
//! "If your host has 100 containers they must have 100 different IP
//! addresses." The leases live in one file per bridge in the state
//! directory, one line per container:
//!
//! ```text
//! 10.200.0.2 owner=4242 veth=pfsh4242
//! ```
//!
//! Several `ch03 run` may start at the same moment. Each one takes an
//! exclusive `flock(2)` on the leases file, reads it, picks a free address,
//! writes it back, and only then lets go: two runs can never pick the same
//! address.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::fcntl::{Flock, FlockArg};

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

/// One line of the leases file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub address: Ipv4Addr,
    /// The `ch03` process that owns the lease (and must free it).
    pub owner: u32,
    /// The host end of the container's veth pair.
    pub veth: String,
}

impl Lease {
    fn parse(line: &str) -> Option<Lease> {
        let mut words = line.split_whitespace();
        let address = words.next()?.parse().ok()?;
        let mut lease = Lease {
            address,
            owner: 0,
            veth: String::new(),
        };
        for word in words {
            match word.split_once('=') {
                Some(("owner", pid)) => lease.owner = pid.parse().ok()?,
                Some(("veth", name)) => lease.veth = name.to_string(),
                _ => {}
            }
        }
        Some(lease)
    }

    fn line(&self) -> String {
        format!("{} owner={} veth={}\n", self.address, self.owner, self.veth)
    }
}

/// The leases file of a bridge: `STATE_DIR/leases/BRIDGE`.
pub fn leases_path(state_dir: &Path, bridge: &str) -> PathBuf {
    state_dir.join("leases").join(bridge)
}

// ANCHOR: with_leases
/// Open the leases file, take an exclusive `flock(2)` on it (waiting for
/// any other `ch03` that holds it), let `change` edit the list, write the
/// list back. The lock goes away when the file is closed, at the end.
pub fn with_leases<T>(path: &Path, change: impl FnOnce(&mut Vec<Lease>) -> Result<T>) -> Result<T> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .with_context(|| format!("open {}", path.display()))?;
    let mut file = Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, errno)| errno)
        .with_context(|| format!("flock {}", path.display()))?;

    let mut text = String::new();
    file.read_to_string(&mut text)
        .with_context(|| format!("read {}", path.display()))?;
    let mut leases: Vec<Lease> = text.lines().filter_map(Lease::parse).collect();
    let result = change(&mut leases)?;

    let text: String = leases.iter().map(Lease::line).collect();
    write_all_over(&mut file, &text).with_context(|| format!("write {}", path.display()))?;
    Ok(result)
}
// ANCHOR_END: with_leases

fn write_all_over(file: &mut File, text: &str) -> std::io::Result<()> {
    file.set_len(0)?;
    file.rewind()?;
    file.write_all(text.as_bytes())?;
    file.sync_data()
}

/// Lease an address for the container whose runtime is `owner`.
pub fn allocate(
    path: &Path,
    subnet: Subnet,
    requested: Option<Ipv4Addr>,
    owner: u32,
    veth: &str,
) -> Result<Ipv4Addr> {
    with_leases(path, |leases| {
        let taken: Vec<Ipv4Addr> = leases.iter().map(|l| l.address).collect();
        let address = choose_address(subnet, &taken, requested)?;
        leases.push(Lease {
            address,
            owner,
            veth: veth.to_string(),
        });
        Ok(address)
    })
}

/// Give an address back.
pub fn release(path: &Path, address: Ipv4Addr) -> Result<()> {
    with_leases(path, |leases| {
        leases.retain(|l| l.address != address);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet() -> Subnet {
        Subnet::parse("10.200.0.0/24").unwrap()
    }

    fn temp_leases(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pfs-ipam-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        leases_path(&dir, "pfs0")
    }

    #[test]
    fn a_subnet_knows_its_gateway_broadcast_and_container_range() {
        let s = subnet();
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

    #[test]
    fn requested_addresses_are_checked_against_the_subnet() {
        let s = subnet();
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

    #[test]
    fn leases_are_written_read_back_and_released() {
        let path = temp_leases("file");
        let a = allocate(&path, subnet(), None, 100, "pfsh100").unwrap();
        let b = allocate(&path, subnet(), None, 101, "pfsh101").unwrap();
        assert_ne!(a, b);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "10.200.0.2 owner=100 veth=pfsh100\n10.200.0.3 owner=101 veth=pfsh101\n"
        );
        let err = allocate(&path, subnet(), Some(b), 102, "pfsh102").unwrap_err();
        assert!(err.to_string().contains("already taken"));
        release(&path, a).unwrap();
        assert_eq!(allocate(&path, subnet(), None, 103, "pfsh103").unwrap(), a);
        release(&path, a).unwrap();
        release(&path, b).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        std::fs::remove_dir_all(path.parent().unwrap().parent().unwrap()).unwrap();
    }

    #[test]
    fn concurrent_allocations_never_share_an_address() {
        let path = temp_leases("threads");
        let threads: Vec<_> = (0..20)
            .map(|i| {
                let path = path.clone();
                std::thread::spawn(move || allocate(&path, subnet(), None, i, "v").unwrap())
            })
            .collect();
        let mut addresses: Vec<Ipv4Addr> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        addresses.sort();
        addresses.dedup();
        assert_eq!(addresses.len(), 20);
        std::fs::remove_dir_all(path.parent().unwrap().parent().unwrap()).unwrap();
    }
}
