//! `ch03 cleanup` and `ch03 doctor`: what killed runs left, and what this
//! machine lacks. The records are swept by `pfs_state`; what is chapter
//! 03's own is the network: veths, nftables tables, the bridge.

use anyhow::{bail, Result};
use pfs_netlink::{self as netlink, nat};
use pfs_state::report::Checklist;
use pfs_state::{leases, names};

use crate::ipam::Subnet;
use crate::{check_link_name, delete_link, BridgeArgs};

// ANCHOR: cleanup
/// A run killed with SIGKILL cannot clean up. Its lease stays, with its
/// veth, and its name. Remove those whose owner process is gone; with
/// `all`, also the bridge (when no container uses it any more).
pub fn cleanup(args: &BridgeArgs, all: bool) -> Result<i32> {
    ch01::require_root()?;
    check_link_name(&args.bridge)?;
    let state_dir = pfs_state::state_dir();
    let leases = leases::path(&state_dir, &args.bridge);
    let (stale, still_used) = leases::remove_stale(&leases)?;
    for lease in stale {
        if !lease.veth.is_empty() {
            delete_link(&lease.veth)?;
        }
        println!(
            "removed stale lease {} (veth {})",
            lease.address, lease.veth
        );
    }
    for table in nat::remove_stale_tables()? {
        println!("removed stale nftables table {table}");
    }
    for name in names::remove_stale(&state_dir)? {
        println!("removed stale name {name}");
    }
    if all {
        if still_used > 0 {
            bail!(
                "{still_used} running container(s) still use {}: stop them first",
                args.bridge
            );
        }
        if netlink::link_index(&args.bridge)?.is_some() {
            delete_link(&args.bridge)?;
            println!("removed bridge {}", args.bridge);
        }
        let _ = std::fs::remove_file(&leases);
        nat::restore_forwarding(&state_dir)?;
    }
    Ok(0)
}
// ANCHOR_END: cleanup

/// `ch03 doctor`: check what the chapter needs, one line each. Exit status
/// 0 when everything required is there, 1 otherwise.
pub fn doctor(args: &BridgeArgs) -> Result<i32> {
    let mut list = Checklist::default();
    check(args, &mut list);
    Ok(list.exit_code())
}

/// This chapter's checks, for its `doctor` and the later chapters': the
/// kernel's namespaces, netlink and NAT (from the support crates), then
/// this chapter's own: the bridge.
pub fn check(args: &BridgeArgs, list: &mut Checklist) {
    list.check_root_and_namespaces();
    netlink::check(list);
    let subnet = &args.subnet;
    let subnet_ok = Subnet::parse(subnet).is_ok();
    list.require(subnet_ok, &format!("subnet {subnet}"), "not a valid subnet");
    let bridge = &args.bridge;
    let name_ok = check_link_name(bridge).is_ok();
    list.require(
        name_ok,
        &format!("bridge name {bridge}"),
        "not a valid link name",
    );
    let exists = netlink::link_index(bridge).ok().flatten().is_some();
    let first_run = "it is made by the first `ch03 run`";
    list.note(exists, &format!("bridge {bridge} exists"), first_run);
}
