//! cgroup v1: one hierarchy per controller (/sys/fs/cgroup/memory,
//! /sys/fs/cgroup/pids, ...). A container needs a group in each of them,
//! with the same name, and the container's process in each.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use pfs_state::cgroupfs::{field, read_number, subdirectories};

use crate::{open_membership, remove_group, write_file, ControlGroup, Limits, Membership, Stats};

/// The hierarchies we use: limits in memory, pids and cpu; CPU time in cpuacct.
const CONTROLLERS: [&str; 4] = ["memory", "pids", "cpu", "cpuacct"];

/// A container's groups, `/sys/fs/cgroup/CONTROLLER/pods-from-scratch/ID`.
pub struct CgroupV1 {
    /// Below the root of each hierarchy: `pods-from-scratch/ID`.
    path: PathBuf,
}

impl CgroupV1 {
    pub fn new(id: &str) -> Self {
        CgroupV1 {
            path: Path::new(crate::PARENT_GROUP).join(id),
        }
    }

    /// A group at `path` below the root of each hierarchy, e.g. chapter
    /// 06's nested groups: `pods-from-scratch-pods/web-1a2b3c4d/app`.
    pub fn at(path: &Path) -> Self {
        CgroupV1 {
            path: path.to_path_buf(),
        }
    }

    fn parent(controller: &str) -> PathBuf {
        PathBuf::from("/sys/fs/cgroup")
            .join(controller)
            .join(crate::PARENT_GROUP)
    }

    fn dir(&self, controller: &str) -> PathBuf {
        PathBuf::from("/sys/fs/cgroup")
            .join(controller)
            .join(&self.path)
    }
}

impl ControlGroup for CgroupV1 {
    // ANCHOR: create
    fn create(&mut self, limits: &Limits) -> Result<()> {
        for controller in CONTROLLERS {
            let dir = self.dir(controller);
            fs::create_dir_all(&dir).with_context(|| {
                format!(
                    "create {} (is the {controller} controller mounted?)",
                    dir.display()
                )
            })?;
        }
        if let Some(bytes) = limits.memory {
            let memory = self.dir("memory");
            write_file(&memory.join("memory.limit_in_bytes"), &bytes.to_string())?;
            // memory+swap: the same number means no swap at all. It must be
            // written after the memory limit (it may never be below it).
            let memsw = memory.join("memory.memsw.limit_in_bytes");
            if memsw.exists() {
                write_file(&memsw, &bytes.to_string())?;
            }
        }
        if let Some(pids) = limits.pids {
            write_file(&self.dir("pids").join("pids.max"), &pids.to_string())?;
        }
        if let Some(cpus) = limits.cpus {
            let period = 100_000;
            let quota = (cpus * period as f64).round() as u64;
            let cpu = self.dir("cpu");
            write_file(&cpu.join("cpu.cfs_period_us"), &period.to_string())?;
            write_file(&cpu.join("cpu.cfs_quota_us"), &quota.to_string())?;
        }
        Ok(())
    }
    // ANCHOR_END: create

    /// `tasks` lists threads: "0" written there moves just the writer.
    fn open_to_join(&self) -> Result<Vec<Membership>> {
        CONTROLLERS
            .iter()
            .map(|controller| open_membership(self.dir(controller).join("tasks")))
            .collect()
    }

    fn oom_kills(&self) -> u64 {
        // The kernel counts its OOM kills here since Linux 4.13.
        let control =
            fs::read_to_string(self.dir("memory").join("memory.oom_control")).unwrap_or_default();
        field(&control, "oom_kill").unwrap_or(0)
    }

    fn stats(&self) -> Stats {
        Stats {
            peak_memory: read_number(&self.dir("memory").join("memory.max_usage_in_bytes")),
            cpu_usec: read_number(&self.dir("cpuacct").join("cpuacct.usage")).map(|ns| ns / 1000),
            // Newer kernels keep a peak of pids in v1 too; older ones: n/a.
            peak_tasks: read_number(&self.dir("pids").join("pids.peak")),
        }
    }

    fn remove(&self) -> Result<()> {
        for controller in CONTROLLERS {
            let dir = self.dir(controller);
            remove_group(&dir)?;
            // The parent goes too when no other group uses it.
            if let Some(parent) = dir.parent() {
                let _ = fs::remove_dir(parent);
            }
        }
        Ok(())
    }
}

/// The groups of ours that `cleanup` may find, in every hierarchy.
pub fn groups() -> Vec<PathBuf> {
    CONTROLLERS
        .iter()
        .flat_map(|c| subdirectories(&CgroupV1::parent(c)))
        .collect()
}
