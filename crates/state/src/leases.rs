//! IP leases: which container holds which address of a bridge's subnet.
//!
//! Chapter 03 decides *which* address a container gets (its IPAM lesson,
//! `choose_address`); this module keeps the record of it, one file per
//! bridge, `STATE_DIR/leases/BRIDGE`, one line per container:
//!
//! ```text
//! 10.200.0.2 owner=4242 veth=pfsh4242
//! ```
//!
//! Several runs may start at the same moment. Each one takes an exclusive
//! `flock(2)` on the leases file, reads it, picks a free address, writes it
//! back, and only then lets go: two runs can never pick the same address.
//! Only this module reads or writes these files.

use std::io::{Read, Seek, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::process::is_running;

/// One line of the leases file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub address: Ipv4Addr,
    /// The process that owns the lease (and must free it): the `ch03` run,
    /// or a pod's pause.
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
pub fn path(state_dir: &Path, bridge: &str) -> PathBuf {
    state_dir.join("leases").join(bridge)
}

// ANCHOR: with_leases
/// Open the leases file, take an exclusive `flock(2)` on it (waiting for
/// any other run that holds it), let `change` edit the list, write the
/// list back. The lock goes away when the file is closed, at the end.
fn with_leases<T>(path: &Path, change: impl FnOnce(&mut Vec<Lease>) -> Result<T>) -> Result<T> {
    let mut file = crate::lock_file(path)?;
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

fn write_all_over(file: &mut std::fs::File, text: &str) -> std::io::Result<()> {
    file.set_len(0)?;
    file.rewind()?;
    file.write_all(text.as_bytes())?;
    file.sync_data()
}

/// Lease an address to `owner`, for its veth `veth`: `choose` is given
/// the addresses already leased and picks one (or refuses).
pub fn allocate(
    path: &Path,
    owner: u32,
    veth: &str,
    choose: impl FnOnce(&[Ipv4Addr]) -> Result<Ipv4Addr>,
) -> Result<Ipv4Addr> {
    with_leases(path, |leases| {
        let taken: Vec<Ipv4Addr> = leases.iter().map(|l| l.address).collect();
        let address = choose(&taken)?;
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

/// Hand the lease of `veth` over to another process, `owner` (chapter 06:
/// the run that started a pod exits, its pause keeps the address).
pub fn adopt(path: &Path, veth: &str, owner: u32) -> Result<Ipv4Addr> {
    with_leases(path, |leases| {
        let lease = leases
            .iter_mut()
            .find(|lease| lease.veth == veth)
            .context("the pod's address lease is gone")?;
        lease.owner = owner;
        Ok(lease.address)
    })
}

/// The address leased for `veth`.
pub fn address_of(path: &Path, veth: &str) -> Result<Ipv4Addr> {
    with_leases(path, |leases| {
        let lease = leases.iter().find(|lease| lease.veth == veth);
        lease
            .map(|lease| lease.address)
            .with_context(|| format!("no address is leased for {veth}"))
    })
}

/// Give back the address of `veth`, if it has one (a pod that failed while
/// starting has not recorded its address yet, but its veth is known).
pub fn release_veth(path: &Path, veth: &str) -> Result<()> {
    if !path.exists() {
        return Ok(());
    }
    with_leases(path, |leases| {
        leases.retain(|lease| lease.veth != veth);
        Ok(())
    })
}

/// `cleanup`: drop the leases whose owner is gone (a run killed with
/// SIGKILL could not give its address back). Returns them, for their veths
/// to be deleted, and how many leases are still held.
pub fn remove_stale(path: &Path) -> Result<(Vec<Lease>, usize)> {
    if !path.exists() {
        return Ok((Vec::new(), 0));
    }
    with_leases(path, |leases| {
        let (alive, stale): (Vec<_>, Vec<_>) = leases.drain(..).partition(|l| is_running(l.owner));
        *leases = alive;
        Ok((stale, leases.len()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_leases(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pfs-leases-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        path(&dir, "pfs0")
    }

    /// The lowest free address of 10.200.0.2 to .254 (chapter 03 asks its
    /// `choose_address`).
    fn lowest_free(taken: &[Ipv4Addr]) -> Result<Ipv4Addr> {
        (2..255)
            .map(|n| Ipv4Addr::new(10, 200, 0, n))
            .find(|a| !taken.contains(a))
            .context("no free address")
    }

    fn remove(path: &Path) {
        std::fs::remove_dir_all(path.parent().unwrap().parent().unwrap()).unwrap();
    }

    #[test]
    fn leases_are_written_read_back_and_released() {
        let path = temp_leases("file");
        let a = allocate(&path, 100, "pfsh100", lowest_free).unwrap();
        let b = allocate(&path, 101, "pfsh101", lowest_free).unwrap();
        assert_ne!(a, b);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "10.200.0.2 owner=100 veth=pfsh100\n10.200.0.3 owner=101 veth=pfsh101\n"
        );
        let err = allocate(&path, 102, "pfsh102", |_| anyhow::bail!("taken")).unwrap_err();
        assert_eq!(err.to_string(), "taken");
        release(&path, a).unwrap();
        assert_eq!(allocate(&path, 103, "pfsh103", lowest_free).unwrap(), a);
        release(&path, a).unwrap();
        release(&path, b).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        remove(&path);
    }

    #[test]
    fn a_lease_is_adopted_and_released_by_its_veth() {
        let path = temp_leases("adopt");
        let a = allocate(&path, 100, "pfsh1a2b", lowest_free).unwrap();
        assert_eq!(adopt(&path, "pfsh1a2b", 200).unwrap(), a);
        assert_eq!(address_of(&path, "pfsh1a2b").unwrap(), a);
        assert!(address_of(&path, "pfshnone").is_err());
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "10.200.0.2 owner=200 veth=pfsh1a2b\n");
        assert!(adopt(&path, "pfshnone", 200).is_err());
        release_veth(&path, "pfsh1a2b").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        remove(&path);
    }

    #[test]
    fn leases_of_gone_owners_are_stale() {
        let path = temp_leases("stale");
        assert_eq!(remove_stale(&path).unwrap(), (Vec::new(), 0));
        allocate(&path, std::process::id(), "alive", lowest_free).unwrap();
        let gone = allocate(&path, u32::MAX, "gone", lowest_free).unwrap();
        let (stale, still_used) = remove_stale(&path).unwrap();
        assert_eq!(still_used, 1);
        assert_eq!(stale.len(), 1);
        assert_eq!((stale[0].address, stale[0].veth.as_str()), (gone, "gone"));
        remove(&path);
    }

    #[test]
    fn concurrent_allocations_never_share_an_address() {
        let path = temp_leases("threads");
        let threads: Vec<_> = (0..20)
            .map(|i| {
                let path = path.clone();
                std::thread::spawn(move || allocate(&path, i, "v", lowest_free).unwrap())
            })
            .collect();
        let mut addresses: Vec<Ipv4Addr> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        addresses.sort();
        addresses.dedup();
        assert_eq!(addresses.len(), 20);
        remove(&path);
    }
}
