//! The filesystem's doors: `/sys/fs/cgroup`, `/proc`'s sensitive files, `/dev`.
//!
//! Chapter 04 already mounts `/sys` read-only and gives the container a
//! fresh `/dev` (a few safe nodes, a new `devpts` instance, `/dev/shm`).
//! What is left open: the kernel's files in `/proc`, a message queue
//! filesystem of the container's own, the disks a root process can reach
//! with `mknod`, and a `/sys/fs/cgroup` in which the container cannot even
//! read its own limits.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ch01::{explain, Layer};
use ch04::{mount_fs, remount_read_only};
use ch05::{Membership, Version};
use nix::mount::{mount, MsFlags};
use nix::sched::CloneFlags;
use pfs_state::cgroupfs;

/// The OCI runtime spec's default masked paths, as Docker sets them.
const MASKED: [&str; 11] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// ... and its read-only paths: the kernel's knobs.
const READ_ONLY: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// cgroup v1's devices allow-list, as runc writes it for Docker: any node
/// may be made (`m`), only the harmless ones read or written.
const DEVICES_ALLOWED: [&str; 10] = [
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",   // null
    "c 1:5 rwm",   // zero
    "c 1:7 rwm",   // full
    "c 1:8 rwm",   // random
    "c 1:9 rwm",   // urandom
    "c 5:0 rwm",   // tty
    "c 5:2 rwm",   // ptmx
    "c 136:* rwm", // the pseudo-terminals in /dev/pts
];

/// The root of cgroup v1's devices hierarchy, on the host.
const DEVICES: &str = "/sys/fs/cgroup/devices";

/// This chapter's filesystem layer.
pub fn layers() -> Result<Vec<Box<dyn Layer>>> {
    layers_at(&Path::new(ch05::PARENT_GROUP).join(std::process::id().to_string()))
}

/// The layer, with `group` as the v1 devices group (a pod's container
/// names its group as chapter 06 does its cgroups).
pub fn layers_at(group: &Path) -> Result<Vec<Box<dyn Layer>>> {
    let version = ch05::detect_version()?;
    let devices = Path::new(DEVICES);
    // v1 hosts without a devices hierarchy, and v2 hosts: see `Paths`.
    let devices = (version == Version::V1 && devices.is_dir()).then(|| devices.join(group));
    Ok(vec![Box::new(Paths {
        version,
        devices,
        membership: Vec::new(),
    })])
}

// ANCHOR: paths_layer
/// The layer. Its child steps run after chapter 04's `pivot_root` and after
/// chapter 05 moved the child into its groups and a new cgroup namespace.
///
/// On cgroup v2 there is no devices file to write: the kernel asks a BPF
/// program attached to the group instead. We do not assemble one; the
/// capability drop of `confine` (no `CAP_MKNOD`) closes the same door, as
/// long as no disk node is bind-mounted in.
pub struct Paths {
    version: Version,
    /// v1: the container's group in the devices hierarchy.
    devices: Option<PathBuf>,
    membership: Vec<Membership>,
}

impl Layer for Paths {
    fn prepare(&mut self) -> Result<()> {
        if let Some(group) = &self.devices {
            let _lock = pfs_state::lock("cgroups")?;
            fs::create_dir_all(group).with_context(|| format!("create {}", group.display()))?;
            allow_safe_devices(group)?;
            self.membership = vec![ch05::open_membership(group.join("tasks"))?];
        }
        Ok(())
    }

    fn setup_in_child(&mut self) -> Result<()> {
        if !self.membership.is_empty() {
            ch05::join_group(&self.membership)?;
            // Joined after chapter 05's cgroup namespace was made: a new
            // one makes this group, too, the root of what we see.
            ch01::enter_namespaces(CloneFlags::CLONE_NEWCGROUP)?;
        }
        mount_cgroupfs(self.version)?;
        explain::oci("a message queue filesystem", "mounts[/dev/mqueue]");
        let no_exec = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        mount_fs("mqueue", "/dev/mqueue", no_exec, None)?;
        explain::oci("mask the kernel's files", "linux.maskedPaths");
        for path in MASKED {
            mask_path(path)?;
        }
        explain::oci("the kernel's knobs read-only", "linux.readonlyPaths");
        for path in READ_ONLY {
            make_read_only(path)?;
        }
        Ok(())
    }

    fn cleanup(&mut self) -> Result<()> {
        if let Some(group) = self.devices.as_ref().filter(|g| g.exists()) {
            let _lock = pfs_state::lock("cgroups")?;
            ch05::remove_group(group)?;
            let _ = fs::remove_dir(Path::new(DEVICES).join(ch05::PARENT_GROUP));
            // if unused
        }
        Ok(())
    }
}
// ANCHOR_END: paths_layer

// ANCHOR: allow_safe_devices
/// A new v1 devices group inherits "everything"; `a` in `devices.deny`
/// empties its list, and each line of `devices.allow` lets one kind of node
/// back in. A disk made with `mknod` can then be made, never opened.
fn allow_safe_devices(group: &Path) -> Result<()> {
    explain::oci("the devices allow-list", "linux.resources.devices");
    ch05::write_file(&group.join("devices.deny"), "a")?;
    for rule in DEVICES_ALLOWED {
        ch05::write_file(&group.join("devices.allow"), rule)?;
    }
    Ok(())
}
// ANCHOR_END: allow_safe_devices

// ANCHOR: mount_cgroupfs
/// The container's own groups, read-only. Chapter 05's cgroup namespace
/// made its group the root of what a cgroup mount shows: the container
/// sees its limits, not the host's tree, and cannot change them.
fn mount_cgroupfs(version: Version) -> Result<()> {
    explain::oci(
        "its cgroups, read-only",
        "mounts[/sys/fs/cgroup] (docker: --cgroupns)",
    );
    let read_only =
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_RDONLY;
    if version == Version::V2 {
        return mount_fs("cgroup2", "/sys/fs/cgroup", read_only, None);
    }
    // v1: a tmpfs to hold one mount per hierarchy, as on the host. Only
    // memory and pids: the others may be mounted together on the host
    // (`cpu,cpuacct`), and a mount must name exactly the same set.
    mount_fs(
        "tmpfs",
        "/sys/fs/cgroup",
        MsFlags::MS_NOSUID,
        Some("mode=755"),
    )?;
    for controller in ["memory", "pids"] {
        let target = format!("/sys/fs/cgroup/{controller}");
        fs::create_dir(&target).with_context(|| format!("create {target}"))?;
        explain::step(
            &format!("mount(\"cgroup\", {target:?}, \"cgroup\", MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC, {controller:?})"),
            &format!("mount -t cgroup -o ro,{controller} cgroup {target}"),
        );
        mount(
            Some("cgroup"),
            target.as_str(),
            Some("cgroup"),
            read_only,
            Some(controller),
        )
        .with_context(|| format!("mount the {controller} cgroup on {target}"))?;
    }
    remount("/sys/fs/cgroup", MsFlags::MS_NOSUID | MsFlags::MS_RDONLY)
}
// ANCHOR_END: mount_cgroupfs

// ANCHOR: mask_path
/// Hide a kernel file behind `/dev/null` (reads find nothing, writes go
/// nowhere), a directory behind an empty read-only tmpfs. What this kernel
/// does not have is skipped.
pub fn mask_path(path: &str) -> Result<()> {
    let Ok(meta) = fs::metadata(path) else {
        return Ok(());
    };
    if meta.is_dir() {
        let flags = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
        // "ro" twice: the flag makes it so, the option shows it in --explain.
        return mount_fs("tmpfs", path, flags, Some("ro"));
    }
    bind("/dev/null", path)
}
// ANCHOR_END: mask_path

// ANCHOR: make_read_only
/// A read-only view of `path`: bind it onto itself, so that it is a mount
/// of its own, then make that mount read-only.
pub fn make_read_only(path: &str) -> Result<()> {
    if !Path::new(path).exists() {
        return Ok(());
    }
    bind(path, path)?;
    remount_read_only(path)
}
// ANCHOR_END: make_read_only

/// `mount --bind SOURCE TARGET`.
fn bind(source: &str, target: &str) -> Result<()> {
    explain::step(
        &format!("mount({source:?}, {target:?}, NULL, MS_BIND)"),
        &format!("mount --bind {source} {target}"),
    );
    mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .with_context(|| format!("bind {source} on {target}"))
}

/// Change the flags of the filesystem mounted at `target`.
fn remount(target: &str, flags: MsFlags) -> Result<()> {
    explain::step(
        &format!("mount(NULL, {target:?}, NULL, MS_REMOUNT|MS_NOSUID|MS_RDONLY)"),
        &format!("mount -o remount,ro {target}"),
    );
    let flags = MsFlags::MS_REMOUNT | flags;
    mount(None::<&str>, target, None::<&str>, flags, None::<&str>)
        .with_context(|| format!("remount {target}"))
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
