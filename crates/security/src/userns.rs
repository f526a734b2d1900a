//! For `--userns` (chapter 07): the host ids a container's root is mapped
//! to, and the new mount API calls nix lacks (an idmapped mount is made
//! with them). Machinery: the chapter's `userns.rs` is the lesson.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::libc;
use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{chown, fork, pause, pipe, read, write, ForkResult, Gid, Pid, Uid};

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

/// Root's ranges of uids and gids: /etc/subuid's and /etc/subgid's.
pub fn ranges() -> (IdRange, IdRange) {
    (
        range_for_root(Path::new("/etc/subuid")),
        range_for_root(Path::new("/etc/subgid")),
    )
}

/// What `--userns` cannot be given (Docker refuses them too): before
/// anything is made, one clear line.
pub fn check_options(userns: bool, privileged: bool, net: &str) -> Result<()> {
    if userns && privileged {
        bail!("--userns and --privileged cannot be used together: a privileged container is root on the host");
    }
    if userns && net.starts_with("container:") {
        bail!("--userns cannot join another container's network (--net container:NAME): its user namespace does not own it");
    }
    Ok(())
}

/// A user namespace, kept by file: a holder process unshares it and
/// waits; `map` writes its maps (given the holder's PID); then the holder
/// is killed and reaped (the namespace lives on in the file), even if
/// `map` fails or panics.
pub fn holder_user_namespace(map: impl FnOnce(Pid) -> Result<()>) -> Result<File> {
    let (ready_r, ready_w) = pipe().context("pipe")?;
    pfs_cli::explain::step(
        "fork(); unshare(CLONE_NEWUSER) (a holder)",
        "unshare --user sleep infinity &",
    );
    // SAFETY: the runtime has a single thread; the holder makes system
    // calls only, then ends with _exit(2).
    let holder = match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
            if unshare(CloneFlags::CLONE_NEWUSER).is_ok() && write(&ready_w, b"r").is_ok() {
                pause(); // until killed
            }
            unsafe { libc::_exit(1) }
        }
        ForkResult::Parent { child } => Holder(child),
    };
    drop(ready_w);
    if read(&ready_r, &mut [0u8; 1]) != Ok(1) {
        bail!("unshare(CLONE_NEWUSER) failed in the holder");
    }
    map(holder.0)?;
    File::open(format!("/proc/{}/ns/user", holder.0)).context("open the user namespace")
}

/// The holder's PID; dropping it kills and reaps the holder.
struct Holder(Pid);

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = kill(self.0, Signal::SIGKILL);
        let _ = waitpid(self.0, None);
    }
}

/// `chown` the directories `dirs` (under `parent`) to `uid`:`gid`.
pub fn chown_dirs(parent: &Path, dirs: &[&str], uid: u32, gid: u32) -> Result<()> {
    for dir in dirs.iter().map(|d| parent.join(d)) {
        chown(&dir, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))
            .with_context(|| format!("chown {}", dir.display()))?;
    }
    Ok(())
}

/// A detached copy of the mount tree at `path`, idmapped through `userns`;
/// `None` where the filesystem (or kernel) has no idmapped mounts, or when
/// `PFS_USERNS_COPY=1` asks for the other way (to see it, and to test it).
pub fn idmapped_tree(path: &Path, userns: &File) -> Result<Option<OwnedFd>> {
    if std::env::var_os("PFS_USERNS_COPY").is_some_and(|v| v == "1") {
        return Ok(None);
    }
    pfs_cli::explain::step(
        &format!(
            "open_tree({path:?}, OPEN_TREE_CLONE); mount_setattr(tree, MOUNT_ATTR_IDMAP, userns)"
        ),
        &format!(
            "mount --bind -o X-mount.idmap=/proc/PID/ns/user {} TREE",
            path.display()
        ),
    );
    let tree = open_tree_clone(path)?;
    match set_idmap(&tree, userns)? {
        true => Ok(Some(tree)),
        false => Ok(None),
    }
}

/// The other way to show `image` to a range: a copy of it whose every
/// owner is moved into the range (uid 0 -> `uids.base`, 1 -> base + 1...),
/// made once per image and range, in the data directory's `userns/`.
/// Slow and big where an idmapped mount is instant and free; hard links
/// become copies, extended attributes are not kept.
pub fn chowned_copy(image: &Path, uids: IdRange, gids: IdRange) -> Result<PathBuf> {
    let name = image.to_string_lossy().replace('/', "_");
    let copy = pfs_image::data_dir()
        .join("userns")
        .join(format!("{}-{}{name}", uids.base, gids.base));
    pfs_cli::explain::step(
        &format!(
            "(copy {} to {}, lchown each file by +{})",
            image.display(),
            copy.display(),
            uids.base
        ),
        &format!(
            "cp -a {} COPY; chown -R --from ... (shifted)",
            image.display()
        ),
    );
    pfs_image::build_atomically(&copy, |tmp| copy_shifted(image, tmp, uids.base, gids.base))?;
    Ok(copy)
}

/// Copy the tree `from` into the directory `to` (which exists), shifting
/// each owner by `uid`/`gid`. `chown` clears setuid and setgid bits: the
/// mode is set again after it.
fn copy_shifted(from: &Path, to: &Path, uid: u32, gid: u32) -> Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta =
        std::fs::symlink_metadata(from).with_context(|| format!("read {}", from.display()))?;
    let kind = meta.file_type();
    if kind.is_dir() {
        if !to.exists() {
            std::fs::create_dir(to).with_context(|| format!("create {}", to.display()))?;
        }
        for entry in std::fs::read_dir(from).with_context(|| format!("list {}", from.display()))? {
            let entry = entry?;
            copy_shifted(&entry.path(), &to.join(entry.file_name()), uid, gid)?;
        }
    } else if kind.is_symlink() {
        std::os::unix::fs::symlink(std::fs::read_link(from)?, to)?;
    } else if kind.is_file() {
        std::fs::copy(from, to).with_context(|| format!("copy {}", from.display()))?;
    } else {
        let mode = nix::sys::stat::Mode::from_bits_truncate(meta.mode());
        let kind = nix::sys::stat::SFlag::from_bits_truncate(meta.mode());
        nix::sys::stat::mknod(to, kind, mode, meta.rdev())
            .with_context(|| format!("mknod {}", to.display()))?;
    }
    std::os::unix::fs::lchown(to, Some(meta.uid() + uid), Some(meta.gid() + gid))
        .with_context(|| format!("chown {}", to.display()))?;
    if !kind.is_symlink() {
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    }
    Ok(())
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

/// The container's root, host uid `uid`, must be able to walk down to
/// `path` (the image, its overlay): check each directory on the way, so
/// that a private one (`mktemp -d` makes them 0700) gets one clear line.
pub fn check_reachable(paths: &[&PathBuf], uid: u32) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    for dir in paths.iter().flat_map(|path| path.ancestors().skip(1)) {
        let Ok(meta) = std::fs::metadata(dir) else {
            continue; // not made yet: it will be, searchable
        };
        if meta.uid() != uid && meta.mode() & 0o001 == 0 {
            bail!(
                "--userns: the container's root (host uid {uid}) cannot enter {} (mode {:o}): \
                 let others search it (chmod o+x) or choose another data directory",
                dir.display(),
                meta.mode() & 0o7777
            );
        }
    }
    Ok(())
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
/// `false`: this filesystem (or kernel) cannot (EINVAL; ENOSYS before 5.12).
pub fn set_idmap(tree: &OwnedFd, userns: &File) -> Result<bool> {
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
        if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) {
            return Ok(false);
        }
        return Err(e).context("mount_setattr(MOUNT_ATTR_IDMAP)");
    }
    Ok(true)
}

/// `move_mount(2)`: attach the detached mount `tree` on `target`.
pub fn move_mount(tree: impl AsFd, target: &Path) -> Result<()> {
    pfs_cli::explain::step(
        &format!("move_mount(tree, {target:?})"),
        &format!("mount --move TREE {}", target.display()),
    );
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
