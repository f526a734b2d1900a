//! `--userns`: root in the container, nobody on the host.
//!
//! A user namespace maps ids: the container's root (uid 0) is host uid
//! BASE, a user with no rights over the host's files. Chapter 01 makes it
//! with the child (`clone`), so that every other namespace belongs to it;
//! the parent, still root on the host, writes its maps; the child becomes
//! its root. The image is shown to the range by an idmapped mount.

use std::fs::{self, File};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use ch01::{explain, Layer};
use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{chown, fork, pause, pipe, read, write, ForkResult, Gid, Pid, Uid};
use nix::unistd::{setgroups, setresgid, setresuid};
use pfs_security::userns::{self as ids, IdRange};

/// The layer: first in the list, so that it acts before the others.
pub struct UserNs {
    uids: IdRange,
    gids: IdRange,
    /// The image, shown to the range by an idmapped mount on top of it.
    image: PathBuf,
    /// Chapter 04's upper and work directories, given to the range.
    overlay: [PathBuf; 2],
    idmapped: Option<OwnedFd>,
}

pub fn layer(image: PathBuf) -> UserNs {
    let dir = ch04::container_dir(&std::process::id().to_string());
    UserNs {
        uids: ids::range_for_root(Path::new("/etc/subuid")),
        gids: ids::range_for_root(Path::new("/etc/subgid")),
        image,
        overlay: [dir.join("upper"), dir.join("work")],
        idmapped: None,
    }
}

impl Layer for UserNs {
    fn namespaces(&self) -> CloneFlags {
        CloneFlags::CLONE_NEWUSER
    }

    /// The idmapped image needs a user namespace with the same maps now,
    /// before the fork, for the child to inherit it: a holder's.
    fn prepare(&mut self) -> Result<()> {
        let (holder, ready) = start_holder()?;
        let userns = holder_ready(&ready)
            .and_then(|()| write_id_maps(holder, self.uids, self.gids))
            .and_then(|()| Ok(File::open(format!("/proc/{holder}/ns/user"))?));
        let _ = kill(holder, Signal::SIGKILL);
        let _ = waitpid(holder, None);
        self.idmapped = Some(idmap_image(&self.image, &userns?)?);
        Ok(())
    }

    fn setup_from_parent(&mut self, child: Pid) -> Result<()> {
        write_id_maps(child, self.uids, self.gids)?;
        let (uid, gid) = (Uid::from_raw(self.uids.base), Gid::from_raw(self.gids.base));
        for dir in &self.overlay {
            chown(dir, Some(uid), Some(gid)).with_context(|| format!("chown {}", dir.display()))?;
        }
        Ok(())
    }

    /// First in the child: its root, then chapter 04's lower directory is
    /// the image as the range sees it (root:root).
    fn setup_in_child(&mut self) -> Result<()> {
        become_root()?;
        let idmapped = self.idmapped.take().context("no idmapped image")?;
        explain::step(
            &format!("move_mount(idmapped, {:?})", self.image),
            "(mount --bind -o X-mount.idmap)",
        );
        ids::move_mount(idmapped, &self.image)
    }

    fn cleanup(&mut self) -> Result<()> {
        self.idmapped = None; // closed: the detached mount goes
        Ok(())
    }
}

/// A process that unshares a user namespace, says so on the pipe, waits.
fn start_holder() -> Result<(Pid, OwnedFd)> {
    let (ready_r, ready_w) = pipe().context("pipe")?;
    explain::step("fork(); unshare(CLONE_NEWUSER)", "unshare --user sleep");
    // SAFETY: this program has a single thread (see chapter 01).
    match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            let made = unshare(CloneFlags::CLONE_NEWUSER);
            if made.is_ok() && write(&ready_w, b"r").is_ok() {
                pause(); // until killed
            }
            // SAFETY: _exit(2) ends only the holder.
            unsafe { nix::libc::_exit(1) }
        }
        ForkResult::Parent { child } => Ok((child, ready_r)),
    }
}

fn holder_ready(ready: &OwnedFd) -> Result<()> {
    if read(ready, &mut [0u8; 1])? != 1 {
        bail!("unshare(CLONE_NEWUSER | CLONE_NEWPID) failed");
    }
    Ok(())
}

// ANCHOR: write_id_maps
/// The maps are written from outside, by a process with the privileges
/// of the parent namespace: container id 0 is host id BASE, and so on.
fn write_id_maps(process: Pid, uids: IdRange, gids: IdRange) -> Result<()> {
    for (file, range) in [("uid_map", uids), ("gid_map", gids)] {
        let path = format!("/proc/{process}/{file}");
        explain::step(
            &format!("write({path:?}, {:?})", range.map_line()),
            &format!("echo {} > {path}", range.map_line()),
        );
        fs::write(&path, range.map_line()).with_context(|| format!("write {path}"))?;
    }
    Ok(())
}
// ANCHOR_END: write_id_maps

// ANCHOR: idmap_image
/// The image's files belong to host uid 0, which the range cannot see.
/// An idmapped mount shows them through the namespace's maps: uid 0 on
/// disk is uid 0 in the container, and the files stay as they are.
fn idmap_image(image: &Path, userns: &File) -> Result<OwnedFd> {
    explain::step(
        &format!("open_tree({image:?}, OPEN_TREE_CLONE); mount_setattr(MOUNT_ATTR_IDMAP)"),
        &format!(
            "mount --bind -o X-mount.idmap=/proc/PID/ns/user {}",
            image.display()
        ),
    );
    let tree = ids::open_tree_clone(image)?;
    ids::set_idmap(&tree, userns)?;
    Ok(tree)
}
// ANCHOR_END: idmap_image

// ANCHOR: become_root
/// In the child, once the maps are written: our ids (host 0) mean nothing
/// in the namespace until we take its 0 (host BASE). A change of user
/// unsets chapter 01's parent-death signal: set it again.
fn become_root() -> Result<()> {
    explain::step(
        "setgroups([]); setresgid(0, 0, 0); setresuid(0, 0, 0)",
        "setpriv --clear-groups --regid 0 --reuid 0",
    );
    setgroups(&[]).context("setgroups")?;
    let root = (Gid::from_raw(0), Uid::from_raw(0));
    setresgid(root.0, root.0, root.0).context("setresgid")?;
    setresuid(root.1, root.1, root.1).context("setresuid")?;
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).context("prctl(PR_SET_PDEATHSIG)")
}
// ANCHOR_END: become_root
