//! `pod logs` and `doctor`. (`pod ls` and `pod ps` are `pfs_state::report`'s
//! tables; `cleanup` is chapter 06's own: it undoes dead pods.)

use std::path::Path;

use anyhow::Result;
use pfs_state::report::{self, Checklist};
use pfs_state::{names, pods};

use crate::log_path;
use pfs_image::cache::is_static_binary;

/// `pod logs POD C`: what a detached container (or pause) printed.
pub fn logs(pod: &str, container: &str) -> Result<i32> {
    let pod = pods::load(pod)?;
    names::check_name(container)?; // `pause` is allowed here
    report::print_log(&pod, container, &log_path(&pod, container))
}

/// `doctor`: chapter 03's and 05's checks, then overlayfs, busybox, pause
/// (`pause`: the program's bytes, embedded in `ch06`).
pub fn doctor(args: &ch03::BridgeArgs, pause: &[u8]) -> Result<i32> {
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
    let about = format!(
        "pause program ({} kB, static), built in",
        pause.len() / 1024
    );
    list.require(is_static_binary(pause), &about, "rebuild ch06");
    Ok(list.exit_code())
}
