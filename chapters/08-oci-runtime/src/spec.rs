//! From `config.json` to chapters 01–07: each field of the bundle's
//! configuration becomes the step of the chapter that taught it. pfs-oci
//! reads and checks the fields ([`pfs_oci::settings`]); the layers here
//! and in [`crate::linux`] and [`crate::process`] act on them.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use ch01::{explain, Layer};
use ch04::volumes::{fd_path, open_in_root};
use nix::fcntl::{open, OFlag};
use nix::mount::{mount, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use oci_spec::runtime::LinuxDevice;
use pfs_oci::config::Bundle;
use pfs_oci::join::Namespaces;
use pfs_oci::settings::MountEntry;
use pfs_oci::{devices, mount_options, resources, settings, tables};

use crate::{linux, process};

pub use pfs_oci::settings::process;

// ANCHOR: layers
/// The layers the bundle asks for, in chapter order. Every field is read
/// and checked here, before anything is created.
pub fn layers(bundle: &Bundle, id: &str) -> Result<Vec<Box<dyn Layer>>> {
    let spec = &bundle.spec;
    let Some(linux) = spec.linux() else {
        bail!("config.json has no linux section: this runtime runs Linux containers only");
    };
    let (new, join) = settings::namespaces(linux)?;
    let mut layers: Vec<Box<dyn Layer>> = Vec::new();
    if new.contains(CloneFlags::CLONE_NEWUSER) {
        layers.push(Box::new(linux::user_namespace(linux)?)); // chapter 07
    }
    layers.push(Box::new(Namespaces::new(new, join))); // chapters 01-03, 06
    if new.contains(CloneFlags::CLONE_NEWNET) {
        layers.push(Box::new(ch03::LoopbackOnly)); // chapter 03: `lo` up, as runc does
    }
    let group = settings::cgroup_path(spec, id);
    let limits = tables::limits(linux.resources().as_ref());
    let version = ch05::detect_version()?; // on the host: after the pivot, /sys is the container's
    let cgroup = ch05::new_group_at(version, &group);
    layers.push(Box::new(ch05::Cgroup::new(cgroup, limits))); // chapter 05
    if let Some(more) = resources::more_limits(linux.resources().as_ref(), &group, version)? {
        layers.push(Box::new(more)); // chapter 05's files
    }
    if let Some(policy) = devices::policy(linux, &group)? {
        layers.push(Box::new(policy)); // chapter 07
    }
    layers.push(Box::new(BundleRoot {
        rootfs: bundle.rootfs.clone(), // chapter 04
        version,
        propagation: settings::propagation(linux)?,
        mounts: settings::mounts(spec)?,
        devices: linux.devices().clone().unwrap_or_default(),
        hostname: spec.hostname().clone(),
    }));
    let read_only = spec.root().as_ref().and_then(|r| r.readonly()) == Some(true);
    layers.push(Box::new(linux::inside_root(linux, read_only)?)); // chapter 07
    layers.push(Box::new(process::confine(spec)?)); // chapter 07
    Ok(layers)
}
// ANCHOR_END: layers

/// `root`, `mounts`, `linux.devices` and `hostname`: chapter 04's root
/// filesystem, with the bundle's mounts instead of chapter 04's fixed ones.
struct BundleRoot {
    rootfs: PathBuf,
    version: ch05::Version,
    propagation: MsFlags,
    /// The mounts, and whether the container's own groups are mounted.
    mounts: (Vec<MountEntry>, bool),
    devices: Vec<LinuxDevice>,
    hostname: Option<String>,
}

impl Layer for BundleRoot {
    fn namespaces(&self) -> CloneFlags {
        CloneFlags::CLONE_NEWNS
    }

    fn setup_in_child(&mut self) -> Result<()> {
        if let Some(name) = &self.hostname {
            explain::oci("the hostname", "hostname");
            ch02::set_hostname(name)?;
        }
        // Chapter 02 made every mount private; runc makes them slaves by
        // default: the host's new mounts still reach us, ours never it.
        explain::oci("mount propagation", "linux.rootfsPropagation");
        mount_options::remount(Path::new("/"), self.propagation)?;
        // pivot_root needs the new root to be a mount point: bind it
        // onto itself.
        let rootfs = self.rootfs.to_string_lossy();
        ch04::volumes::bind_mount(&self.rootfs, &rootfs)?;
        // Every path below is opened as the container will see it.
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let root = open(&self.rootfs, flags, Mode::empty()).context("open the root")?;
        explain::oci("the bundle's mounts", "mounts");
        for entry in &self.mounts.0 {
            mount_entry(&root, entry)?;
        }
        explain::oci("device nodes", "linux.devices");
        for device in tables::default_devices().iter().chain(&self.devices) {
            devices::make_node(&root, device)?; // chapter 04
        }
        devices::make_links(&root)?;
        ch04::pivot_into(&self.rootfs)?;
        // The container's own groups, as chapter 07 mounts them: from
        // inside its cgroup namespace, after the pivot.
        if self.mounts.1 {
            ch07::paths::mount_cgroupfs(self.version)?;
        }
        Ok(())
    }
}

// ANCHOR: mount_entry
/// One entry of `mounts`, at its destination inside the root filesystem:
/// opened with chapter 04's `open_in_root`, so that a symlink of the image
/// (`dev -> /tmp`, `../../..`) leads inside it, never to the host's files.
fn mount_entry(root: &OwnedFd, m: &MountEntry) -> Result<()> {
    let (source, destination, flags) = (&m.source, &m.destination, m.options.flags);
    let data = Some(m.options.data.as_str()).filter(|d| !d.is_empty());
    let kind = m.fstype.as_deref().unwrap_or("bind");
    let call = format!("mount({source:?}, {destination:?}, {kind:?}, {flags:?})");
    let shell = format!("mount -t {kind} {source:?} {destination:?}");
    explain::step(&call, &shell);
    let target = open_in_root(root, destination, m.is_file)?;
    let (at, fstype) = (fd_path(&target), m.fstype.as_deref());
    mount(Some(source), at.as_str(), fstype, flags, data).with_context(|| call.clone())?;
    // The flags of a bind mount, and any propagation, are set on the
    // mount itself: a new lookup finds it on top of `target`.
    let on_top = open_in_root(root, destination, m.is_file)?;
    let mounted = PathBuf::from(fd_path(&on_top)); // valid while `on_top` is open
    if m.options.copy_up {
        mount_options::copy_up(Path::new(&at), &mounted)?; // what it covers
    }
    let bind_flags = flags - MsFlags::MS_BIND - MsFlags::MS_REC;
    if m.options.is_bind() && !bind_flags.is_empty() {
        let flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | bind_flags;
        mount_options::remount(&mounted, flags)?;
    }
    if !m.options.propagation.is_empty() {
        mount_options::remount(&mounted, m.options.propagation)?;
    }
    Ok(())
}
// ANCHOR_END: mount_entry
