//! Volumes (`-v`, `--tmpfs`): a host directory or a fresh tmpfs mounted
//! into the new root, after the overlay and before `pivot_root` (after it,
//! the host's paths are gone).

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ch01::explain;
use nix::errno::Errno;
use nix::fcntl::{open, openat2, OFlag, OpenHow, ResolveFlag};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{mkdirat, mknodat, Mode, SFlag};
use pfs_cli::volume::{Source, Volume};

// ANCHOR: mount_volumes
/// Mount each volume on its target in `root`, the merged overlay. The
/// target is named by an open file descriptor (`/proc/self/fd/N`), so no
/// one can swap a symlink into its path between the lookup and the mount.
pub fn mount_volumes(root: &Path, volumes: &[Volume]) -> Result<()> {
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let root = open(root, flags, Mode::empty()).context("open the new root")?;
    for volume in volumes {
        let opened = open_in_root(&root, &volume.target, volume.is_file())?;
        let target = fd_path(&opened); // valid while `opened` is
        match &volume.source {
            Source::Host(host) => bind_mount(host, &target)?,
            Source::Tmpfs(options) => {
                let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
                crate::mount_fs("tmpfs", &target, flags, Some(options))?
            }
        }
        if volume.read_only {
            // `target` names the directory the mount now covers: look the
            // path up again to reach the mount itself.
            let mounted = open_in_root(&root, &volume.target, volume.is_file())?;
            crate::remount_read_only(&fd_path(&mounted))?;
        }
    }
    Ok(())
}
// ANCHOR_END: mount_volumes

// ANCHOR: open_in_root
/// Open `path` as the container will see it. With `RESOLVE_IN_ROOT` the
/// kernel resolves every symlink and `..` as if `root` were `/`: a symlink
/// in the image to `/etc` or `../../..` leads to the image's `/etc` or `/`,
/// never to the host's. What is missing is made on the way (`mkdir -p`,
/// the last part an empty file when a file is mounted there) in the merged
/// overlay, so it lands in the container's upper directory, not the image.
pub fn open_in_root(root: &OwnedFd, path: &Path, is_file: bool) -> Result<OwnedFd> {
    explain::step(
        &format!("openat2(root, {path:?}, O_PATH, RESOLVE_IN_ROOT)"),
        "(no shell tool: a path walked as if root were /)",
    );
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT);
    let (mut walked, mut opened) = (PathBuf::from("/"), open_beneath(root, Path::new("/"), how)?);
    let mut names = path.iter().skip(1).peekable(); // after the `/`
    let mode = Mode::from_bits_truncate(0o755);
    while let Some(name) = names.next() {
        walked.push(name);
        // mkdirat and mknodat never follow a symlink `name`: they fail
        // with EEXIST, and openat2 then follows it inside the root.
        let made = if is_file && names.peek().is_none() {
            mknodat(&opened, name, SFlag::S_IFREG, mode, 0)
        } else {
            mkdirat(&opened, name, mode)
        };
        let context = || format!("volume target {} in the new root", walked.display());
        if let Err(error) = made.or_else(|e| if e == Errno::EEXIST { Ok(()) } else { Err(e) }) {
            return Err(error).with_context(context);
        }
        opened = open_beneath(root, &walked, how).with_context(context)?;
    }
    Ok(opened)
}
// ANCHOR_END: open_in_root

/// `openat2`, again when it says EAGAIN: a rename or mount anywhere on the
/// machine while it resolved a `..` means it cannot prove that the `..`
/// stayed inside the root, and the kernel asks the caller to try again.
fn open_beneath(root: &OwnedFd, path: &Path, how: OpenHow) -> nix::Result<OwnedFd> {
    let mut tries = 0;
    loop {
        match openat2(root, path, how) {
            Err(Errno::EAGAIN) if tries < 100 => tries += 1,
            result => return result,
        }
    }
}

/// The path by which the kernel reaches an open file: the mount calls
/// follow it to the very file we opened.
pub fn fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

// ANCHOR: bind_mount
/// A bind mount shows a directory (or file) at a second place: the same
/// files, not a copy, so what the container writes there is on the host.
/// `MS_REC` brings along the mounts below `source`.
pub fn bind_mount(source: &Path, target: &str) -> Result<()> {
    explain::step(
        &format!("mount({source:?}, {target:?}, NULL, MS_BIND|MS_REC)"),
        &format!("mount --rbind {} {target}", source.display()),
    );
    let flags = MsFlags::MS_BIND | MsFlags::MS_REC;
    mount(Some(source), target, None::<&str>, flags, None::<&str>)
        .with_context(|| format!("bind-mount {}", source.display()))
}
// ANCHOR_END: bind_mount
