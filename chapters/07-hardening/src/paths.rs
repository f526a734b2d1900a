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
use ch04::{mount_fs, remount_read_only, volumes::bind_mount};
use ch05::{Membership, Version};
use nix::mount::{mount, MsFlags};
use nix::sched::CloneFlags;
use pfs_bpf::{DeviceRule, Insn, R0, R1, R2, R3, R4, R5};
use pfs_security::devices;

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

// ANCHOR: devices_allowed
/// The devices allow-list, as runc sets it for Docker: any node may be made
/// (`m`), only the harmless ones read or written. cgroup v1 takes these
/// lines as they are; for v2 they become a program.
pub const DEVICES_ALLOWED: [&str; 10] = [
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
// ANCHOR_END: devices_allowed

/// The layer, for the container's `group` (a pod's container names its
/// group as chapter 06 does its cgroups).
pub fn layers_at(group: &Path) -> Result<Vec<Box<dyn Layer>>> {
    let version = ch05::detect_version()?;
    let devices = Path::new(devices::DEVICES);
    // v1 hosts without a devices hierarchy, and v2 hosts: see `Paths`.
    let devices = (version == Version::V1 && devices.is_dir()).then(|| devices.join(group));
    Ok(vec![Box::new(Paths {
        version,
        group: group.to_path_buf(),
        devices,
        membership: Vec::new(),
    })])
}

// ANCHOR: paths_layer
/// The layer. Its child steps run after chapter 04's `pivot_root` and after
/// chapter 05 moved the child into its groups and a new cgroup namespace.
///
/// The device policy is set in the parent: on v1 in a group of the devices
/// hierarchy, which the child joins; on v2, which has no devices files, as
/// a program attached to chapter 05's group.
pub struct Paths {
    version: Version,
    /// The container's group, under each hierarchy's root.
    group: PathBuf,
    /// v1: the container's group in the devices hierarchy.
    devices: Option<PathBuf>,
    membership: Vec<Membership>,
}

impl Layer for Paths {
    fn prepare(&mut self) -> Result<()> {
        if self.version == Version::V2 {
            return attach_device_program(&self.group); // to chapter 05's group
        }
        if let Some(group) = &self.devices {
            self.membership = vec![devices::create(group, allow_safe_devices)?];
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
        self.devices.as_deref().map_or(Ok(()), devices::remove)
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

// ANCHOR: device_program
/// cgroup v2's device policy: a program the kernel runs at each open or
/// mknod of a device node in the group, on `struct bpf_cgroup_dev_ctx`
/// (r1 points at it). It returns 1 (in r0) to allow, 0 to deny. Ours reads
/// the context into registers, then tries the rules in order: the first
/// rule the node matches allows it; none: denied.
pub fn device_program(rules: &[&str]) -> Result<Vec<Insn>> {
    let mut program = vec![
        Insn::load_u32(R2, R1, 0), // access_type, low 16 bits:
        Insn::and(R2, 0xffff),     //   the node's kind (block, char)
        Insn::load_u32(R3, R1, 0), // access_type, high 16 bits:
        Insn::rsh(R3, 16),         //   the access (mknod, read, write)
        Insn::load_u32(R4, R1, 4), // major
        Insn::load_u32(R5, R1, 8), // minor
    ];
    for rule in rules {
        program.extend(rule_checks(&rule.parse()?));
    }
    program.extend([Insn::mov(R0, 0), Insn::exit()]);
    Ok(program)
}
// ANCHOR_END: device_program

// ANCHOR: rule_checks
/// One rule: a test for each thing it names, each a jump to the next rule
/// when the node does not match; a node that passes them all is allowed.
pub fn rule_checks(rule: &DeviceRule) -> Vec<Insn> {
    // Asks for an access the rule does not give (a bit outside its own)?
    let mut checks = vec![Insn::jset(R3, !rule.access & 0xffff)];
    for (register, value) in [(R2, rule.kind), (R4, rule.major), (R5, rule.minor)] {
        checks.extend(value.map(|value| Insn::jne(register, value)));
    }
    // A jump skips the checks after it, then the 2 instructions of allow.
    for (check, skip) in checks.iter_mut().rev().zip(2..) {
        check.off = skip;
    }
    checks.extend([Insn::mov(R0, 1), Insn::exit()]);
    checks
}
// ANCHOR_END: rule_checks

// ANCHOR: attach_device_program
/// Load the program (the kernel's verifier first proves that it ends and
/// reads only the context) and attach it to chapter 05's group: from then
/// on it decides for every process in the group. It goes away with the
/// group.
fn attach_device_program(group: &Path) -> Result<()> {
    let program = pfs_bpf::load_device_program(&device_program(&DEVICES_ALLOWED)?)?;
    pfs_bpf::attach_device_program(&program, &Path::new("/sys/fs/cgroup").join(group))
}
// ANCHOR_END: attach_device_program

// ANCHOR: mount_cgroupfs
/// The container's own groups, read-only. Chapter 05's cgroup namespace
/// made its group the root of what a cgroup mount shows: the container
/// sees its limits, not the host's tree, and cannot change them.
pub fn mount_cgroupfs(version: Version) -> Result<()> {
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
    bind_mount(Path::new("/dev/null"), path)
}
// ANCHOR_END: mask_path

// ANCHOR: make_read_only
/// A read-only view of `path`: bind it onto itself, so that it is a mount
/// of its own, then make that mount read-only.
pub fn make_read_only(path: &str) -> Result<()> {
    if !Path::new(path).exists() {
        return Ok(());
    }
    bind_mount(Path::new(path), path)?;
    remount_read_only(path)
}
// ANCHOR_END: make_read_only

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
