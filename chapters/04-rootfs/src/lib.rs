//! # Chapter 04: a root filesystem, overlayfs and pivot_root
//!
//! Until now the container saw the host's files. An image is a stack of
//! tarballs; a container is a process whose `/` is that stack, unpacked.
//! This chapter adds one layer to chapter 03's runtime, [`Rootfs`]:
//!
//! 1. parent, before the child exists: make the container's directories:
//!    an overlay *upper* (its changes) and *work* directory, and a mount point;
//! 2. child, inside its mount namespace: mount an overlay of the image
//!    (read-only *lower*) and the upper directory, `pivot_root` into it,
//!    detach the old root, mount `/proc`, `/sys`, a minimal `/dev` and `/tmp`;
//!    volumes (`-v`, `--tmpfs`) are mounted into the new root before the pivot
//!    ([`volumes`]);
//! 3. parent, after exit: remove the upper directory, unless `--keep`.
//!
//! With a root of its own, the container's process starts from a clean
//! environment, and a pulled image's config gives its defaults
//! ([`process_in`]).

pub mod rootfs;
pub mod volumes;

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use ch01::{explain, Layer, Process};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use nix::unistd::{chdir, pivot_root};
use pfs_cli::volume::{Volume, VolumeArgs};

/// `run` options: chapter 03's, plus where the root filesystem comes from.
#[derive(clap::Args, Debug)]
#[group(skip)]
pub struct RunArgs {
    /// The root filesystem: busybox, debian, an image pulled with
    /// `ch04 pull`, or a directory (/path or ./path)
    #[arg(long, value_name = "ROOTFS", default_value = "busybox")]
    pub rootfs: String,
    /// Keep the container's changes (its overlay upper directory) after exit
    #[arg(long)]
    pub keep: bool,
    /// Mount the container's root read-only (/tmp and /dev stay writable)
    #[arg(long)]
    pub read_only: bool,
    #[command(flatten)]
    pub volumes: VolumeArgs,
    #[command(flatten)]
    pub ch03: ch03::RunArgs,
}

impl RunArgs {
    /// The process to run in the container's own root (see [`process_in`]).
    pub fn process(&self) -> Result<Process> {
        let lower = rootfs::resolve(&self.rootfs)?;
        let hostname = match &self.ch03.ch02.hostname {
            Some(name) => name.clone(),
            None => nix::unistd::gethostname()?.to_string_lossy().into_owned(),
        };
        let ch01 = &self.ch03.ch02.ch01;
        process_in(&lower, &ch01.process, &ch01.command, &hostname)
    }
}

// ANCHOR: process_in
/// With a root of its own, a container no longer inherits our environment
/// (our variables describe the host): it starts from a clean one, as
/// docker's, and its image's config gives the defaults of `-e`, `-w`, `-u`
/// and the command (the `Entrypoint`, then the given command or `Cmd`).
pub fn process_in(
    lower: &Path,
    args: &ProcessArgs,
    command: &[String],
    hostname: &str,
) -> Result<Process> {
    let image = pfs_image::image_defaults(lower)?;
    args.in_root(command, lower, &image, hostname)
}
// ANCHOR_END: process_in

// The cache of images and root filesystems is machinery (crates/image);
// the chapters after this one find it here too.
pub use pfs_cli::{ImageDefaults, ProcessArgs};
pub use pfs_image::{build_atomically, data_dir};

/// The directory of a running container's overlay: `upper`, `work`, `root`.
pub fn container_dir(id: &str) -> PathBuf {
    data_dir().join("containers").join(id)
}

/// Chapter 03's layers plus this chapter's root filesystem.
pub fn layers(args: &RunArgs) -> Result<Vec<Box<dyn Layer>>> {
    let lower = rootfs::resolve(&args.rootfs)?;
    check_overlay_option(&lower)?;
    let mut layers = ch03::layers(&args.ch03)?;
    layers.push(Box::new(Rootfs {
        lower,
        dir: container_dir(&std::process::id().to_string()),
        keep: args.keep,
        read_only: args.read_only,
        volumes: args.volumes.in_mount_order(),
    }));
    Ok(layers)
}

/// `ch04 run`: the runtime of chapter 01 with the layers of chapters 02–04.
pub fn run(args: &RunArgs) -> Result<i32> {
    let process = args.process()?;
    let mut layers = layers(args)?;
    ch01::run(&process, &mut layers)
}

/// overlayfs options are a comma-separated list with `:` between lower
/// directories: a path containing either cannot be passed.
fn check_overlay_option(path: &Path) -> Result<()> {
    let text = path.to_string_lossy();
    if text.contains(',') || text.contains(':') {
        bail!("rootfs path {text} contains ',' or ':', which overlayfs options cannot hold: move or link it");
    }
    Ok(())
}

// ANCHOR: rootfs_layer
/// The container's root filesystem: an overlay of `lower` (read-only) and a
/// fresh upper directory under `dir`, with `volumes` mounted into it.
pub struct Rootfs {
    pub lower: PathBuf,
    pub dir: PathBuf,
    pub keep: bool,
    pub read_only: bool,
    pub volumes: Vec<Volume>,
}

impl Layer for Rootfs {
    /// The new root is mounted in a mount namespace of the container's own
    /// (chapter 02's `MountProc` asks for one too: asking twice is fine).
    fn namespaces(&self) -> CloneFlags {
        CloneFlags::CLONE_NEWNS
    }

    fn prepare(&mut self) -> Result<()> {
        for sub in ["upper", "work", "root"] {
            let path = self.dir.join(sub);
            fs::create_dir_all(&path).with_context(|| format!("create {}", path.display()))?;
        }
        Ok(())
    }

    fn setup_in_child(&mut self) -> Result<()> {
        let root = self.dir.join("root");
        mount_overlay(
            &self.lower,
            &self.dir.join("upper"),
            &self.dir.join("work"),
            &root,
        )?;
        volumes::mount_volumes(&root, &self.volumes)?;
        explain::step(
            &format!("chdir({root:?})"),
            &format!("cd {}", root.display()),
        );
        chdir(&root).with_context(|| format!("chdir {}", root.display()))?;
        mount_proc_sys_dev_tmp()?; // relative to the new root: see its doc
        pivot_into(&root)?;
        ch01::fault::point("after-pivot-root");
        if self.read_only {
            remount_read_only("/")?;
        }
        Ok(())
    }

    fn cleanup(&mut self) -> Result<()> {
        if self.keep && self.dir.exists() {
            let kept = data_dir()
                .join("kept")
                .join(self.dir.file_name().unwrap_or_default());
            fs::create_dir_all(data_dir().join("kept"))?;
            fs::rename(&self.dir, &kept).with_context(|| format!("keep {}", kept.display()))?;
            eprintln!(
                "{}: kept the container's changes in {}",
                ch01::program_name(),
                kept.join("upper").display()
            );
            return Ok(());
        }
        // The overlay itself lived in the container's mount namespace,
        // which the kernel removed with the container's last process.
        match fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("remove {}", self.dir.display()))
            }
            _ => Ok(()), // removed, or prepare never made it
        }
    }
}
// ANCHOR_END: rootfs_layer

// ANCHOR: mount_overlay
/// overlayfs shows `upper` on top of `lower` at `target`: reads fall through
/// to the image, writes go to `upper` (copied up first), deletions leave a
/// "whiteout" in `upper`. The image itself is never modified, so many
/// containers can share it.
pub fn mount_overlay(lower: &Path, upper: &Path, work: &Path, target: &Path) -> Result<()> {
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    );
    explain::step(
        &format!("mount(\"overlay\", {target:?}, \"overlay\", {options:?})"),
        &format!("mount -t overlay overlay -o {options} {}", target.display()),
    );
    mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(options.as_str()),
    )
    .context("mount the overlay (is the overlay module available? try `modprobe overlay`)")
}
// ANCHOR_END: mount_overlay

// ANCHOR: pivot_into
/// Make `new_root` the container's `/`, and take the host's root out of its
/// mount namespace entirely. (`chroot` would only change how paths are
/// resolved: the host's root would still be mounted, and a root process can
/// walk back out to it. After `pivot_root` and the detach, it is gone.)
pub fn pivot_into(new_root: &Path) -> Result<()> {
    explain::step(
        &format!("chdir({new_root:?})"),
        &format!("cd {}", new_root.display()),
    );
    chdir(new_root).with_context(|| format!("chdir {}", new_root.display()))?;

    // pivot_root(".", ".") stacks the old root on top of the new one, at
    // the same place, so no directory is needed to hold it ...
    explain::step("pivot_root(\".\", \".\")", "pivot_root . .");
    pivot_root(".", ".").context("pivot_root")?;

    // ... and unmounting "." then detaches that old root (lazily, as
    // processes may still hold files of it open).
    explain::step("umount2(\".\", MNT_DETACH)", "umount -l .");
    umount2(".", MntFlags::MNT_DETACH).context("detach the old root")?;
    explain::step("chdir(\"/\")", "cd /");
    chdir("/").context("chdir /")
}
// ANCHOR_END: pivot_into

// ANCHOR: mount_proc_sys_dev_tmp
/// The filesystems every Linux program expects, made for the container:
/// `/proc` for its PID namespace, `/sys` read-only, a small `/dev` with only
/// harmless devices (no disks), and a private `/tmp`. Mounted in the new
/// root (our working directory) before the pivot, while the host's are in
/// reach: in a user namespace (chapter 07) the kernel mounts a new proc or
/// sysfs only where one is already fully visible, and makes no device node.
pub fn mount_proc_sys_dev_tmp() -> Result<()> {
    let nosuid_nodev = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    let noexec = nosuid_nodev | MsFlags::MS_NOEXEC;
    mount_fs("proc", "proc", noexec, None)?;
    mount_fs("sysfs", "sys", noexec | MsFlags::MS_RDONLY, None)?;
    mount_fs(
        "tmpfs",
        "dev",
        MsFlags::MS_NOSUID,
        Some("mode=755,size=64k"),
    )?;
    make_device_nodes()?;
    mount_fs(
        "devpts",
        "dev/pts",
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC, // not nodev: ptmx is a device
        Some("newinstance,ptmxmode=0666,mode=620"),
    )?;
    mount_fs("tmpfs", "dev/shm", nosuid_nodev, Some("mode=1777"))?;
    mount_fs("tmpfs", "tmp", nosuid_nodev, Some("mode=1777"))
}
// ANCHOR_END: mount_proc_sys_dev_tmp

/// Mount a kernel filesystem `fstype` on `target`, creating the mount point.
pub fn mount_fs(fstype: &str, target: &str, flags: MsFlags, options: Option<&str>) -> Result<()> {
    fs::create_dir_all(target).with_context(|| format!("create {target}"))?;
    let shown = options.map(|o| format!(" -o {o}")).unwrap_or_default();
    let flags_text = format!("{flags:?}")
        .replace("MsFlags(", "")
        .replace(" | ", "|")
        .replace(')', "");
    explain::step(
        &format!("mount({fstype:?}, {target:?}, {fstype:?}, {flags_text})"),
        &format!("mount -t {fstype}{shown} {fstype} {target}"),
    );
    mount(Some(fstype), target, Some(fstype), flags, options)
        .with_context(|| format!("mount {fstype} on {target}"))
}

// ANCHOR: make_device_nodes
/// A device node is a name for a driver, by major and minor number. The
/// container gets only the harmless ones, readable and writable by all.
pub fn make_device_nodes() -> Result<()> {
    const DEVICES: [(&str, u64, u64); 6] = [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ];
    for (name, major, minor) in DEVICES {
        let path = format!("dev/{name}");
        explain::step(
            &format!("mknod({path:?}, S_IFCHR|0666, makedev({major}, {minor}))"),
            &format!("mknod -m 666 {path} c {major} {minor}"),
        );
        let mode = Mode::from_bits_truncate(0o666);
        let made = mknod(path.as_str(), SFlag::S_IFCHR, mode, makedev(major, minor));
        if made == Err(nix::errno::Errno::EPERM) {
            // No node is made in a user namespace: show the host's (runc's way).
            fs::File::create(&path).with_context(|| format!("create {path}"))?;
            volumes::bind_mount(&Path::new("/").join(&path), &path)?;
            continue;
        }
        made.with_context(|| format!("mknod {path}"))?;
        // mknod's mode is filtered by the umask: set it exactly.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o666))?;
    }
    for (link, target) in [
        ("dev/ptmx", "pts/ptmx"),
        ("dev/fd", "/proc/self/fd"),
        ("dev/stdin", "/proc/self/fd/0"),
        ("dev/stdout", "/proc/self/fd/1"),
        ("dev/stderr", "/proc/self/fd/2"),
    ] {
        symlink(target, link).with_context(|| format!("symlink {link}"))?;
    }
    Ok(())
}
// ANCHOR_END: make_device_nodes

// ANCHOR: remount_read_only
/// `--read-only` and `-v …:ro`: make the mount at `target` read-only. The
/// mounts on top of it (`/tmp`, `/dev`, volumes) keep their own flags.
pub fn remount_read_only(target: &str) -> Result<()> {
    // A bind mount ignores every flag but MS_REC: it is made with the flags
    // of its source, so read-only takes a second call. With MS_BIND, that
    // remount changes this one mount, not the filesystem behind it: the
    // host still writes to the directory a `:ro` volume shows.
    let read_only = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY;
    explain::step(
        &format!("mount(NULL, {target:?}, NULL, MS_REMOUNT|MS_BIND|MS_RDONLY)"),
        &format!("mount -o remount,bind,ro {target}"),
    );
    mount(None::<&str>, target, None::<&str>, read_only, None::<&str>)
        .with_context(|| format!("remount {target} read-only"))
}
// ANCHOR_END: remount_read_only

/// Remove what killed runs left: container directories whose `ch04`
/// process is gone, and unfinished rootfs builds. (Changes kept with
/// `--keep` live in `kept/` and stay.)
pub fn remove_stale_containers() -> Result<()> {
    let dir = data_dir().join("containers");
    if let Ok(entries) = fs::read_dir(&dir) {
        for entry in entries.flatten() {
            let pid = entry.file_name();
            if !Path::new("/proc").join(&pid).exists() {
                fs::remove_dir_all(entry.path())
                    .with_context(|| format!("remove {}", entry.path().display()))?;
                println!("removed stale container {}", entry.path().display());
            }
        }
    }
    pfs_image::cache::remove_unfinished_builds()
}
