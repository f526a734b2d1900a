//! `linux`: chapter 07's user namespace maps and device policy, device
//! nodes, and what is done inside the new root: sysctls, masked and
//! read-only paths.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use ch01::{explain, Layer};
use ch05::{Membership, Version};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sched::CloneFlags;
use nix::sys::stat::{fchmodat, makedev, mknodat, FchmodatFlags, Mode, SFlag};
use nix::unistd::{fchownat, unlinkat, Gid, Pid, Uid, UnlinkatFlags};
use oci_spec::runtime::LinuxNamespaceType::{Ipc, Network, Uts};
use oci_spec::runtime::{Linux, LinuxDevice, LinuxDeviceType};
use pfs_oci::tables;
use pfs_security::{devices, userns::IdRange};

/// `linux.uidMappings` and `gidMappings`: the parent writes the maps of
/// the child's new user namespace (chapter 01 made it with the child).
pub struct UserNamespace {
    maps: (IdRange, IdRange),
}

pub fn user_namespace(linux: &Linux) -> Result<UserNamespace> {
    let uids = tables::id_range(
        "uidMappings",
        linux.uid_mappings().as_deref().unwrap_or_default(),
    )?;
    let gids = tables::id_range(
        "gidMappings",
        linux.gid_mappings().as_deref().unwrap_or_default(),
    )?;
    Ok(UserNamespace { maps: (uids, gids) })
}

impl Layer for UserNamespace {
    fn namespaces(&self) -> CloneFlags {
        CloneFlags::CLONE_NEWUSER
    }

    fn setup_from_parent(&mut self, child: Pid) -> Result<()> {
        explain::oci(
            "the user namespace's maps",
            "linux.uidMappings, linux.gidMappings",
        );
        ch07::userns::write_id_maps(child, self.maps)
    }

    fn setup_in_child(&mut self) -> Result<()> {
        ch07::userns::become_root()
    }
}

// ANCHOR: devices_policy
/// `linux.resources.devices`: chapter 07's device policy, with the
/// config's rules in place of Docker's list: on v1 a devices group the
/// child joins, on v2 a program attached to chapter 05's group.
pub struct DevicePolicy {
    rules: Vec<String>,
    version: Version,
    group: PathBuf,
    v1_group: Option<PathBuf>,
    membership: Vec<Membership>,
}

pub fn device_policy(linux: &Linux, group: &Path) -> Result<Option<DevicePolicy>> {
    let resources = linux.resources().as_ref();
    let Some(rules) = resources.and_then(|r| r.devices().as_ref()) else {
        return Ok(None);
    };
    Ok(Some(DevicePolicy {
        // The config's list, then the nodes every container has (runc's).
        rules: [
            tables::device_allow_lines(rules)?,
            ch07::paths::DEVICES_ALLOWED.map(String::from).to_vec(),
        ]
        .concat(),
        version: ch05::detect_version()?,
        group: group.to_path_buf(),
        v1_group: None,
        membership: Vec::new(),
    }))
}

impl Layer for DevicePolicy {
    fn prepare(&mut self) -> Result<()> {
        explain::oci("the devices allow-list", "linux.resources.devices");
        let rules: Vec<&str> = self.rules.iter().map(String::as_str).collect();
        if self.version == Version::V2 {
            let program = pfs_bpf::load_device_program(&ch07::paths::device_program(&rules)?)?;
            return pfs_bpf::attach_device_program(
                &program,
                &Path::new("/sys/fs/cgroup").join(&self.group),
            );
        }
        let group = Path::new(devices::DEVICES).join(&self.group);
        self.v1_group = Some(group.clone());
        self.membership = vec![devices::create(&group, |group| {
            ch05::write_file(&group.join("devices.deny"), "a")?;
            rules
                .iter()
                .try_for_each(|rule| ch05::write_file(&group.join("devices.allow"), rule))
        })?];
        Ok(())
    }

    fn setup_in_child(&mut self) -> Result<()> {
        if self.membership.is_empty() {
            return Ok(());
        }
        ch05::join_group(&self.membership)?;
        // As chapter 07: a new cgroup namespace makes this group a root too.
        ch01::enter_namespaces(CloneFlags::CLONE_NEWCGROUP)
    }

    fn cleanup(&mut self) -> Result<()> {
        self.v1_group.as_deref().map_or(Ok(()), devices::remove)
    }
}
// ANCHOR_END: devices_policy

/// What is done in the new root, after `pivot_root` (and after its
/// `/proc` is mounted): paths there are the container's.
pub struct InsideRoot {
    sysctl: Vec<(String, String)>,
    masked: Vec<String>,
    read_only: Vec<String>,
    root_read_only: bool,
}

/// Read and check `linux`'s fields; `root_read_only` is `root.readonly`.
pub fn inside_root(linux: &Linux, root_read_only: bool) -> Result<InsideRoot> {
    let has = |kind| linux.namespaces().iter().flatten().any(|n| n.typ() == kind);
    let mut sysctl: Vec<(String, String)> = linux
        .sysctl()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    sysctl.sort();
    for (key, _) in &sysctl {
        tables::check_sysctl(key, has(Ipc), has(Network), has(Uts))?;
    }
    Ok(InsideRoot {
        sysctl,
        masked: linux.masked_paths().clone().unwrap_or_default(),
        read_only: linux.readonly_paths().clone().unwrap_or_default(),
        root_read_only,
    })
}

impl Layer for InsideRoot {
    fn setup_in_child(&mut self) -> Result<()> {
        for (key, value) in &self.sysctl {
            set_sysctl(key, value)?;
        }
        explain::oci("mask the kernel's files", "linux.maskedPaths");
        for path in &self.masked {
            ch07::paths::mask_path(path)?;
        }
        explain::oci("the kernel's knobs read-only", "linux.readonlyPaths");
        for path in &self.read_only {
            ch07::paths::make_read_only(path)?;
        }
        if self.root_read_only {
            explain::oci("the root filesystem read-only", "root.readonly");
            ch04::remount_read_only("/")?;
        }
        Ok(())
    }
}

// ANCHOR: make_device
/// One node of `linux.devices`, as chapter 04 makes its own: by number,
/// or, where `mknod` is refused (a user namespace), the host's bound on an
/// empty file. In the new root, before the pivot: its directory is opened
/// as the container sees it, so an image's symlink cannot lead out.
pub fn make_device(root: &OwnedFd, device: &LinuxDevice) -> Result<()> {
    let path = device.path();
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        bail!("linux.devices: {} is not a file's path", path.display());
    };
    let dir = ch04::volumes::open_in_root(root, parent, false)?;
    let dir = nix::fcntl::open(
        ch04::volumes::fd_path(&dir).as_str(),
        OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let kind = match device.typ() {
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        _ => SFlag::S_IFCHR,
    };
    let mode = Mode::from_bits_truncate(device.file_mode().unwrap_or(0o666));
    let (major, minor) = (device.major() as u64, device.minor() as u64);
    explain::step(
        &format!(
            "mknodat(dir, {name:?}, {kind:?}|{:o}, makedev({major}, {minor}))",
            mode.bits()
        ),
        &format!(
            "mknod -m {:o} {} {} {major} {minor}",
            mode.bits(),
            path.display(),
            device.typ().as_str()
        ),
    );
    let _ = unlinkat(&dir, name, UnlinkatFlags::NoRemoveDir); // the image's own
    match mknodat(&dir, name, kind, mode, makedev(major, minor)) {
        Err(Errno::EPERM) => {
            let file = ch04::volumes::open_in_root(root, path, true)?;
            return ch04::volumes::bind_mount(path, &ch04::volumes::fd_path(&file));
        }
        made => made.with_context(|| format!("linux.devices: mknod {}", path.display()))?,
    }
    // mknod's mode went through the umask: set it exactly.
    fchmodat(&dir, name, mode, FchmodatFlags::FollowSymlink)?;
    let (uid, gid) = (
        device.uid().map(Uid::from_raw),
        device.gid().map(Gid::from_raw),
    );
    fchownat(&dir, name, uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW)
        .with_context(|| format!("chown {}", path.display()))
}
// ANCHOR_END: make_device

/// The links every `/dev` has, in the new root, before the pivot.
pub fn make_device_links(root: &OwnedFd) -> Result<()> {
    for (link, target) in tables::DEVICE_LINKS {
        let link = Path::new(link);
        let dir =
            ch04::volumes::open_in_root(root, link.parent().unwrap_or(Path::new("/")), false)?;
        let dir = nix::fcntl::open(
            ch04::volumes::fd_path(&dir).as_str(),
            OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        let name = link.file_name().unwrap_or_default();
        explain::step(
            &format!("symlinkat({target:?}, dir, {name:?})"),
            &format!("ln -s {target} {}", link.display()),
        );
        match nix::unistd::symlinkat(target, &dir, name) {
            Err(Errno::EEXIST) => {} // the image's, or a mount's
            made => made.with_context(|| format!("symlink {}", link.display()))?,
        }
    }
    Ok(())
}

// ANCHOR: set_sysctl
/// `linux.sysctl`: a kernel setting of the container's own namespace (its
/// network's, its IPC's), written where `sysctl -w` writes it.
fn set_sysctl(key: &str, value: &str) -> Result<()> {
    let path = Path::new("/proc/sys").join(key.replace('.', "/"));
    explain::oci("a namespaced kernel setting", "linux.sysctl");
    explain::step(
        &format!("write({path:?}, {value:?})"),
        &format!("sysctl -w {key}={value:?}"),
    );
    std::fs::write(&path, value).with_context(|| format!("linux.sysctl: write {}", path.display()))
}
// ANCHOR_END: set_sysctl
