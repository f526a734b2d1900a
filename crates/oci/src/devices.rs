//! Devices: `linux.devices`, the nodes made as chapter 04 makes its own,
//! and `linux.resources.devices`, chapter 07's device policy with the
//! config's rules in place of Docker's list: on cgroup v1 a devices group
//! the child joins (chapter 07's `allow_safe_devices` with other lines), on
//! v2 chapter 07's program built from the rules, attached to chapter 05's
//! group.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use ch01::{explain, Layer};
use ch04::volumes::{bind_mount, fd_path, open_in_root};
use ch05::{Membership, Version};
use nix::errno::Errno;
use nix::fcntl::{open, AtFlags, OFlag};
use nix::sched::CloneFlags;
use nix::sys::stat::{fchmodat, makedev, mknodat, FchmodatFlags, Mode, SFlag};
use nix::unistd::{fchownat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use oci_spec::runtime::{Linux, LinuxDevice, LinuxDeviceType};
use pfs_security::devices;

use crate::tables;

/// The layer; after chapter 05's, whose group it attaches to on v2.
pub struct DevicePolicy {
    rules: Vec<String>,
    version: Version,
    group: PathBuf,
    v1_group: Option<PathBuf>,
    membership: Vec<Membership>,
}

/// The policy `linux` asks for (none without `resources.devices`), for the
/// container's `group`: the config's rules, then the nodes every container
/// has (as runc adds them).
pub fn policy(linux: &Linux, group: &Path) -> Result<Option<DevicePolicy>> {
    let resources = linux.resources().as_ref();
    let Some(rules) = resources.and_then(|r| r.devices().as_ref()) else {
        return Ok(None);
    };
    let always = ch07::paths::DEVICES_ALLOWED.map(String::from);
    Ok(Some(DevicePolicy {
        rules: [tables::device_allow_lines(rules)?, always.to_vec()].concat(),
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
            let program = ch07::paths::device_program(&rules)?;
            let program = pfs_bpf::load_device_program(&program)?;
            let group = Path::new("/sys/fs/cgroup").join(&self.group);
            return pfs_bpf::attach_device_program(&program, &group);
        }
        let group = Path::new(devices::DEVICES).join(&self.group);
        self.v1_group = Some(group.clone());
        self.membership = vec![devices::create(&group, |group| {
            ch05::write_file(&group.join("devices.deny"), "a")?;
            for rule in &rules {
                ch05::write_file(&group.join("devices.allow"), rule)?;
            }
            Ok(())
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

/// One node of `linux.devices`, made as chapter 04 makes its own: by
/// number, or where `mknod` is refused (in a user namespace) the host's,
/// bound on an empty file. Its directory is opened as the container sees
/// it, so a symlink of the image cannot lead out of the root.
pub fn make_node(root: &OwnedFd, device: &LinuxDevice) -> Result<()> {
    let path = device.path();
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        bail!("linux.devices: {} is not a file's path", path.display());
    };
    let dir = open_dir_in_root(root, parent)?;
    let kind = match device.typ() {
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        _ => SFlag::S_IFCHR,
    };
    let mode = Mode::from_bits_truncate(device.file_mode().unwrap_or(0o666));
    let (major, minor) = (device.major() as u64, device.minor() as u64);
    explain::step(
        &format!("mknodat(dir, {name:?}, {kind:?}|{mode:o}, makedev({major}, {minor}))"),
        &format!(
            "mknod -m {mode:o} {} {} {major} {minor}",
            path.display(),
            device.typ().as_str()
        ),
    );
    let _ = unlinkat(&dir, name, UnlinkatFlags::NoRemoveDir); // the image's own
    match mknodat(&dir, name, kind, mode, makedev(major, minor)) {
        Err(Errno::EPERM) => {
            let file = open_in_root(root, path, true)?;
            return bind_mount(path, &fd_path(&file));
        }
        made => made.with_context(|| format!("linux.devices: mknod {}", path.display()))?,
    }
    // mknod's mode went through the umask: set it exactly.
    fchmodat(&dir, name, mode, FchmodatFlags::FollowSymlink)?;
    let (uid, gid) = (
        device.uid().map(Uid::from_raw),
        device.gid().map(Gid::from_raw),
    );
    fchownat(&dir, name, uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW).context("chown")
}

/// The links every `/dev` has (`/dev/fd`, `/dev/ptmx`, ...).
pub fn make_links(root: &OwnedFd) -> Result<()> {
    for (link, target) in tables::DEVICE_LINKS {
        let (dir, name) = (Path::new(link).parent(), Path::new(link).file_name());
        let dir = open_dir_in_root(root, dir.unwrap_or(Path::new("/")))?;
        explain::step(
            &format!("symlinkat({target:?}, {link:?})"),
            &format!("ln -s {target} {link}"),
        );
        match symlinkat(target, &dir, name.unwrap_or_default()) {
            Err(Errno::EEXIST) => {} // the image's own, or a mount's
            made => made.with_context(|| format!("symlink {link}"))?,
        }
    }
    Ok(())
}

/// A directory of the new root, opened to make files in.
fn open_dir_in_root(root: &OwnedFd, dir: &Path) -> Result<OwnedFd> {
    let opened = open_in_root(root, dir, false)?; // named by its path while open
    let path = fd_path(&opened);
    let flags = OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    open(path.as_str(), flags, Mode::empty()).with_context(|| format!("open {}", dir.display()))
}
