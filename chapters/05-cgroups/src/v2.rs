//! cgroup v2: one unified hierarchy at /sys/fs/cgroup. A group is a
//! directory; its controllers are enabled by the parent's
//! `cgroup.subtree_control`; limits and statistics are files in it.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use pfs_state::cgroupfs::{field, read_number, subdirectories};

use crate::{open_membership, remove_group, write_file, ControlGroup, Limits, Membership, Stats};

const ROOT: &str = "/sys/fs/cgroup";

/// A container's group, `/sys/fs/cgroup/pods-from-scratch/ID`.
pub struct CgroupV2 {
    parent: PathBuf,
    dir: PathBuf,
}

impl CgroupV2 {
    pub fn new(id: &str) -> Self {
        let parent = PathBuf::from(ROOT).join(crate::PARENT_GROUP);
        CgroupV2 {
            dir: parent.join(id),
            parent,
        }
    }

    /// A group at `path` below the root, e.g. chapter 06's nested groups:
    /// `pods-from-scratch-pods/web-1a2b3c4d/app` inside its pod's group.
    pub fn at(path: &Path) -> Self {
        let dir = PathBuf::from(ROOT).join(path);
        CgroupV2 {
            parent: dir.parent().unwrap_or(Path::new(ROOT)).to_path_buf(),
            dir,
        }
    }
}

impl ControlGroup for CgroupV2 {
    // ANCHOR: create
    fn create(&mut self, limits: &Limits) -> Result<()> {
        // Controllers flow down the tree: a group may use a controller only
        // if its parent enabled it for its children.
        enable_controllers(&PathBuf::from(ROOT))?;
        fs::create_dir_all(&self.parent).context("create our parent group")?;
        enable_controllers(&self.parent)?;
        fs::create_dir(&self.dir).with_context(|| format!("create {}", self.dir.display()))?;

        if let Some(bytes) = limits.memory {
            write_file(&self.dir.join("memory.max"), &bytes.to_string())?;
            // Without this the container would swap instead of hitting its limit.
            let swap = self.dir.join("memory.swap.max");
            if swap.exists() {
                write_file(&swap, "0")?;
            }
        }
        if let Some(pids) = limits.pids {
            write_file(&self.dir.join("pids.max"), &pids.to_string())?;
        }
        if let Some(cpus) = limits.cpus {
            // "QUOTA PERIOD": this much CPU time (µs) in every period.
            let period = 100_000;
            let quota = (cpus * period as f64).round() as u64;
            write_file(&self.dir.join("cpu.max"), &format!("{quota} {period}"))?;
        }
        Ok(())
    }
    // ANCHOR_END: create

    /// v2 moves whole processes: "0" in `cgroup.procs` moves the writer's.
    fn open_to_join(&self) -> Result<Vec<Membership>> {
        Ok(vec![open_membership(self.dir.join("cgroup.procs"))?])
    }

    fn oom_kills(&self) -> u64 {
        let events = fs::read_to_string(self.dir.join("memory.events")).unwrap_or_default();
        field(&events, "oom_kill").unwrap_or(0)
    }

    fn stats(&self) -> Stats {
        let cpu = fs::read_to_string(self.dir.join("cpu.stat")).unwrap_or_default();
        Stats {
            peak_memory: read_number(&self.dir.join("memory.peak")),
            cpu_usec: field(&cpu, "usage_usec"),
            peak_tasks: read_number(&self.dir.join("pids.peak")),
        }
    }

    fn remove(&self) -> Result<()> {
        remove_group(&self.dir)?;
        // The parent goes too when no other container uses it.
        let _ = fs::remove_dir(&self.parent);
        Ok(())
    }
}

/// Enable the controllers we use for the children of `group`.
fn enable_controllers(group: &std::path::Path) -> Result<()> {
    let available = fs::read_to_string(group.join("cgroup.controllers")).unwrap_or_default();
    let wanted: Vec<String> = ["memory", "pids", "cpu"]
        .iter()
        .filter(|c| available.split_whitespace().any(|a| a == **c))
        .map(|c| format!("+{c}"))
        .collect();
    write_file(&group.join("cgroup.subtree_control"), &wanted.join(" "))
}

/// The groups of ours that `cleanup` may find.
pub fn groups() -> Vec<PathBuf> {
    subdirectories(&PathBuf::from(ROOT).join(crate::PARENT_GROUP))
}
