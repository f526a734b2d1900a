//! `--userns`: root in the container, nobody on the host.
//!
//! A user namespace maps ids: the container's root (uid 0) is host uid
//! BASE, a user with no rights over the host's files. Chapter 01 makes it
//! with the child (`clone`), so that every other namespace belongs to it;
//! the parent, still root on the host, writes its maps; the child becomes
//! its root. The image is shown to the range by an idmapped mount (or,
//! where the filesystem has none, a copy chowned to the range).

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use anyhow::{Context, Result};
use ch01::{explain, Layer};
use ch04::volumes::bind_mount;
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::unistd::{setgid, setgroups, setuid, Gid, Pid, Uid};
use pfs_security::userns::{self as ids, IdRange};

/// The layer, first in the list: it acts before the others. The ids are
/// root's ranges (`ids::ranges`); the overlay is chapter 04's, of this run.
pub struct UserNs {
    /// The image, covered in the child by its view for the range.
    image: PathBuf,
    view: Option<View>,
}

/// The image as the range sees it: an idmapped mount of it, or a copy.
enum View {
    Idmapped(OwnedFd),
    ChownedCopy(PathBuf),
}

/// The layer, for the image `--rootfs` names.
pub fn layer(rootfs: &str) -> Result<Box<dyn Layer>> {
    let image = ch04::rootfs::resolve(rootfs)?;
    Ok(Box::new(UserNs { image, view: None }))
}

impl Layer for UserNs {
    fn namespaces(&self) -> CloneFlags {
        CloneFlags::CLONE_NEWUSER
    }

    // ANCHOR: prepare
    /// The idmapped image is made now, for the child to inherit, with a
    /// holder's user namespace of the same maps (the child's is not born).
    fn prepare(&mut self) -> Result<()> {
        let (uids, gids) = ids::ranges();
        let containers = ch04::data_dir().join("containers");
        ids::check_reachable(&[&self.image, &containers], uids.base)?;
        let userns = ids::holder_user_namespace(|holder| write_id_maps(holder, (uids, gids)))?;
        // The image's files belong to host uid 0, which the range does not
        // map. An idmapped mount shows them through the maps: uid 0 on disk
        // is uid 0 inside (host BASE), and the files stay as they are.
        // Where the filesystem has none: a copy owned by the range.
        self.view = Some(match ids::idmapped_tree(&self.image, &userns)? {
            Some(tree) => View::Idmapped(tree),
            None => View::ChownedCopy(ids::chowned_copy(&self.image, uids, gids)?),
        });
        Ok(())
    }
    // ANCHOR_END: prepare

    /// The child's maps; the overlay's writable half given to the range.
    fn setup_from_parent(&mut self, child: Pid) -> Result<()> {
        let (uids, gids) = ids::ranges();
        write_id_maps(child, (uids, gids))?;
        let overlay = ch04::container_dir(&std::process::id().to_string());
        ids::chown_dirs(&overlay, &["upper", "work"], uids.base, gids.base)
    }

    /// First in the child: become root, then cover the image with its
    /// idmapped view, which chapter 04's overlay takes as its lower layer.
    fn setup_in_child(&mut self) -> Result<()> {
        become_root()?;
        match self.view.take().context("no view of the image")? {
            View::Idmapped(tree) => ids::move_mount(tree, &self.image),
            View::ChownedCopy(copy) => bind_mount(&copy, &self.image.to_string_lossy()),
        }
    }
}

// ANCHOR: write_id_maps
/// The maps are written from outside, by a process with the privileges
/// of the parent namespace: container id 0 is host id BASE, and so on.
pub fn write_id_maps(process: Pid, (uids, gids): (IdRange, IdRange)) -> Result<()> {
    for (file, range) in [("uid_map", uids), ("gid_map", gids)] {
        let (path, line) = (format!("/proc/{process}/{file}"), range.map_line());
        let shell = format!("echo {line} > {path}");
        explain::step(&format!("write({path:?}, {line:?})"), &shell);
        std::fs::write(&path, &line).with_context(|| format!("write {path}"))?;
    }
    Ok(())
}
// ANCHOR_END: write_id_maps

// ANCHOR: become_root
/// In the child, once the maps are written: our ids (host 0) mean nothing
/// in the namespace until we take its 0 (host BASE). A change of user
/// unsets chapter 01's parent-death signal: set it again.
pub fn become_root() -> Result<()> {
    explain::step("setgroups([]), setgid(0), setuid(0)", "setpriv");
    setgroups(&[]).context("setgroups")?;
    setgid(Gid::from_raw(0)).context("setgid")?;
    setuid(Uid::from_raw(0)).context("setuid")?;
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).context("prctl(PR_SET_PDEATHSIG)")
}
// ANCHOR_END: become_root
