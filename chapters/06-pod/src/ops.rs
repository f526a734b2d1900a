//! `pod ls`, `pod ps`, `pod logs`, `cleanup` and `doctor`: this chapter's
//! part of the runtime's operations. The records are shown by
//! `pfs_state::report` (`pod ls` and `pod ps` are its functions);
//! `cleanup` and `doctor` do the pods' share, then call chapter 05's and
//! 03's.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use pfs_state::pods;
use pfs_state::report::{self, Checklist};
use pfs_state::{cgroupfs, names};

use crate::{forget, log_path, release, stop_processes, PAUSE};

pub use report::{print_containers as ps, print_pods as list};

/// `pod logs POD C`: what a detached container (or pause) printed.
pub fn logs(pod: &str, container: &str) -> Result<i32> {
    let pod = pods::load(pod)?;
    names::check_name(container)?; // `pause` is allowed here
    report::print_log(&pod, container, &log_path(&pod, container))
}

/// Options of `cleanup`.
#[derive(clap::Args, Debug)]
pub struct CleanupArgs {
    /// Also remove the bridge (refused while a container or pod uses it)
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub bridge: ch03::BridgeArgs,
}

// ANCHOR: cleanup
/// `cleanup`: tear down the pods whose pause is gone (killed) or whose
/// `pod create` was killed, then what earlier chapters' killed runs left.
pub fn cleanup(args: &CleanupArgs) -> Result<i32> {
    ch01::require_root()?;
    let version = ch05::detect_version()?;
    {
        let _lock = pods::lock_pods()?;
        pods::remove_dead(|pod| {
            stop_processes(pod, Duration::ZERO)?;
            release(pod, version)?;
            forget(pod);
            println!("removed pod {} (its pause was gone)", pod.name);
            Ok(())
        })?;
        // Pods killed with their whole state (a killed `ch06 demo`) left
        // only their cgroups.
        cgroupfs::remove_abandoned_groups(pods::PODS_GROUP, ch05::remove_group)?;
    }
    ch05::cleanup(&args.bridge, args.all)
}
// ANCHOR_END: cleanup

/// `doctor`: chapter 03's and 05's checks, then overlayfs, busybox, pause.
pub fn doctor(args: &ch03::BridgeArgs) -> Result<i32> {
    let mut list = Checklist::default();
    ch03::ops::check(args, &mut list);
    ch05::ops::check(&mut list);
    let filesystems = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    let overlay = filesystems.contains("overlay");
    list.require(overlay, "overlayfs", "load it: modprobe overlay");
    let busybox = Path::new("/bin/busybox").exists();
    let install = "apt-get install busybox-static";
    list.require(busybox, "busybox, for the default root filesystem", install);
    let setns_pid = Path::new("/proc/self/ns/pid_for_children").exists();
    let too_old = "this kernel is too old for --share-pid";
    list.require(
        setns_pid,
        "setns into a PID namespace (Linux 4.12)",
        too_old,
    );
    let pause = format!(
        "pause program ({} kB, static), built in",
        PAUSE.len() / 1024
    );
    list.require(is_static_binary(PAUSE), &pause, "rebuild ch06");
    Ok(list.exit_code())
}

/// An ELF binary that names no dynamic loader (the interpreter, which a
/// dynamic binary names in its first page: `/lib64/ld-linux-x86-64.so.2`).
fn is_static_binary(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(4096)];
    bytes.starts_with(b"\x7fELF") && !head.windows(7).any(|w| w == b"ld-linu")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_pause_is_a_static_elf_binary() {
        assert!(is_static_binary(PAUSE));
        assert!(!is_static_binary(&std::fs::read("/bin/sh").unwrap()));
        assert!(PAUSE.len() < 1 << 20, "{} bytes", PAUSE.len());
    }
}
