//! cgroup v1's devices groups of chapter 07: where they live, making and
//! removing one, `pod exec` joining its container's, and removing what pods
//! and killed runs left. What goes *in* a group, the allow-list, is the
//! chapter's lesson (`paths::allow_safe_devices`).

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use ch01::Layer;
use ch05::Membership;
use pfs_state::cgroupfs;

/// The root of cgroup v1's devices hierarchy, on the host.
pub const DEVICES: &str = "/sys/fs/cgroup/devices";

/// Make the devices group `group` (a path under [`DEVICES`]), let `allow`
/// fill its list, and open its `tasks` for the child to join.
pub fn create(group: &Path, allow: impl FnOnce(&Path) -> Result<()>) -> Result<Membership> {
    let _lock = pfs_state::lock("cgroups")?;
    fs::create_dir_all(group).with_context(|| format!("create {}", group.display()))?;
    allow(group)?;
    ch05::open_membership(group.join("tasks"))
}

/// Remove the group after the run, and our parent group if now unused.
pub fn remove(group: &Path) -> Result<()> {
    if !group.exists() {
        return Ok(());
    }
    let _lock = pfs_state::lock("cgroups")?;
    ch05::remove_group(group)?;
    let _ = fs::remove_dir(Path::new(DEVICES).join(ch05::PARENT_GROUP));
    Ok(())
}

/// `pod exec`: a layer that puts the command in the devices group of its
/// container, named `group` as chapter 06 names its cgroups (none if the
/// container has no group: v2, or `--privileged`).
pub fn join_existing(group: &Path) -> Result<Vec<Box<dyn Layer>>> {
    let tasks = Path::new(DEVICES).join(group).join("tasks");
    if !tasks.exists() {
        return Ok(Vec::new());
    }
    let membership = vec![ch05::open_membership(tasks)?];
    Ok(vec![Box::new(JoinDevices { membership })])
}

struct JoinDevices {
    membership: Vec<Membership>,
}

impl Layer for JoinDevices {
    fn setup_in_child(&mut self) -> Result<()> {
        ch05::join_group(&self.membership)
    }
}

/// `pod rm`: a pod's devices groups (its processes are gone).
pub fn remove_pod_groups(pod_group: &Path) -> Result<()> {
    cgroupfs::remove_with_members(&Path::new(DEVICES).join(pod_group), ch05::remove_group)
}

/// `ch07 cleanup`: the devices groups of killed runs (chapter 05's cleanup
/// knows its own hierarchies only).
pub fn remove_stale_groups() -> Result<()> {
    let _lock = pfs_state::lock("cgroups")?;
    let groups = cgroupfs::subdirectories(&Path::new(DEVICES).join(ch05::PARENT_GROUP));
    cgroupfs::remove_groups_of_gone_runs(groups, ch05::remove_group)
}
