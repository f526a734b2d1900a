//! `ch05 cleanup` and the `doctor` check of cgroups: this chapter's part of
//! the runtime's operations. Chapter 05's `cleanup` removes the groups of
//! killed runs, then calls chapter 04's, which calls chapter 03's.

use std::fs;
use std::path::Path;

use anyhow::Result;
use pfs_state::cgroupfs;
use pfs_state::report::Checklist;

use crate::{detect_version, remove_group, v1, v2, Version};

/// `ch05 cleanup`: what killed runs of chapters 05, 04 and 03 left.
pub fn cleanup(bridge: &ch03::BridgeArgs, all: bool) -> Result<i32> {
    ch01::require_root()?;
    remove_stale_groups()?;
    ch04::remove_stale_containers()?;
    ch03::cleanup(bridge, all)
}

/// Remove the groups of runs whose `ch05` process (the group's name) is gone.
pub fn remove_stale_groups() -> Result<()> {
    let _lock = pfs_state::lock("cgroups")?;
    let groups = match detect_version()? {
        Version::V2 => v2::groups(),
        Version::V1 => v1::groups(),
    };
    cgroupfs::remove_groups_of_gone_runs(groups, remove_group)
}

/// `doctor`: the cgroup version and the controllers we can use.
pub fn check(list: &mut Checklist) {
    let root = Path::new("/sys/fs/cgroup");
    let (ok, what) = match detect_version() {
        Ok(Version::V2) => {
            let controllers = fs::read_to_string(root.join("cgroup.controllers"));
            let controllers = controllers.unwrap_or_default();
            (
                true,
                format!("cgroup v2 (unified), controllers: {}", controllers.trim()),
            )
        }
        Ok(Version::V1) => {
            let mounted: Vec<&str> = ["memory", "pids", "cpu", "cpuacct"]
                .into_iter()
                .filter(|c| root.join(c).join("cgroup.procs").exists())
                .collect();
            (
                true,
                format!("cgroup v1 (or hybrid), controllers: {}", mounted.join(" ")),
            )
        }
        Err(_) => (false, "cgroups".to_string()),
    };
    list.require(ok, &what, "no cgroup filesystem at /sys/fs/cgroup");
}
