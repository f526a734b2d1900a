//! For `--userns` (chapter 07): the host ids a container's root is mapped
//! to, and the new mount API calls nix lacks (an idmapped mount is made
//! with them). Machinery: the chapter's `userns.rs` is the lesson.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use anyhow::{bail, Context, Result};
use nix::libc;

/// The range used when /etc/subuid (or /etc/subgid) has no entry for root:
/// where `useradd` starts the first user's, 65536 ids as Docker takes.
pub const FALLBACK: IdRange = IdRange {
    base: 100_000,
    count: 65_536,
};

/// Host ids `base .. base + count`, seen inside as `0 .. count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdRange {
    pub base: u32,
    pub count: u32,
}

impl IdRange {
    /// The line of `/proc/PID/uid_map` (or `gid_map`) that maps it.
    pub fn map_line(&self) -> String {
        format!("0 {} {}", self.base, self.count)
    }
}

/// Root's range in `file` (/etc/subuid or /etc/subgid), else [`FALLBACK`].
pub fn range_for_root(file: &Path) -> IdRange {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    first_root_entry(&text).unwrap_or(FALLBACK)
}

/// The first `root:BASE:COUNT` (or `0:...`) line that maps a non-zero base.
fn first_root_entry(text: &str) -> Option<IdRange> {
    text.lines().find_map(|line| {
        let mut fields = line.trim().split(':');
        let (name, base, count) = (fields.next()?, fields.next()?, fields.next()?);
        let range = IdRange {
            base: base.parse().ok()?,
            count: count.parse().ok()?,
        };
        let usable = (name == "root" || name == "0") && range.base > 0 && range.count > 0;
        usable.then_some(range)
    })
}

/// `open_tree(2)` with `OPEN_TREE_CLONE`: a detached copy of the mount at
/// `path` (not yet anywhere in the tree), as a file descriptor.
pub fn open_tree_clone(path: &Path) -> Result<OwnedFd> {
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())?;
    let flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC | libc::AT_RECURSIVE as u32;
    // SAFETY: a path and flags in, a new file descriptor (or -1) out.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c_path.as_ptr(), flags) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("open_tree({})", path.display()));
    }
    // SAFETY: the kernel just gave us this descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// `mount_setattr(2)` with `MOUNT_ATTR_IDMAP`: the detached mount `tree`
/// shows its files' owners through the maps of the user namespace `userns`.
pub fn set_idmap(tree: &OwnedFd, userns: &File) -> Result<()> {
    let attr = libc::mount_attr {
        attr_set: libc::MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    let empty = c"";
    // SAFETY: the kernel reads `size_of(attr)` bytes of `attr`.
    let done = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    if done < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EINVAL) {
            bail!("mount_setattr(MOUNT_ATTR_IDMAP): this filesystem or kernel has no idmapped mounts ({e})");
        }
        return Err(e).context("mount_setattr(MOUNT_ATTR_IDMAP)");
    }
    Ok(())
}

/// `move_mount(2)`: attach the detached mount `tree` on `target`.
pub fn move_mount(tree: impl AsFd, target: &Path) -> Result<()> {
    let c_target = std::ffi::CString::new(target.as_os_str().as_encoded_bytes())?;
    let empty = c"";
    // SAFETY: two paths and descriptors in, nothing kept.
    let done = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_fd().as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            c_target.as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if done < 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("move_mount onto {}", target.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_entry_is_taken_else_the_fallback() {
        let text = "alice:100000:65536\nroot:231072:65536\n";
        let root = IdRange {
            base: 231072,
            count: 65536,
        };
        assert_eq!(first_root_entry(text), Some(root));
        assert_eq!(first_root_entry("alice:100000:65536\n"), None);
        assert_eq!(first_root_entry("root:0:65536\nroot:x:1\n"), None);
        assert_eq!(range_for_root(Path::new("/nonexistent/subuid")), FALLBACK);
        assert_eq!(root.map_line(), "0 231072 65536");
    }
}
