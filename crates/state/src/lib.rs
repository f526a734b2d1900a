//! # pfs-state: the runtime's bookkeeping
//!
//! This crate is machinery, not a lesson. The chapters teach kernel steps;
//! to run containers for real they also need to remember things between
//! commands: which name belongs to which PID, which container holds which
//! IP address, which pods exist. That memory lives here, as small text
//! files under one state directory, `$PFS_STATE_DIR` or
//! `/run/pods-from-scratch`:
//!
//! ```text
//! STATE_DIR/
//!   names/NAME          a container's PID      (names: chapter 03's --name)
//!   leases/BRIDGE       one line per address   (leases: chapter 03's IPAM)
//!   pods/NAME/pod       a pod's record         (pods: chapter 06)
//!   *.lock              what `lock` flocks     (chapters 05 and 06)
//! ```
//!
//! The kernel keeps records of its own that we read and sweep: a process's
//! `/proc/PID/stat` ([`process`]), a cgroup's files ([`cgroupfs`]).
//!
//! One module owns each kind of record, and nothing else writes it: chapter
//! 06 hands a lease over to its pause process through [`leases::adopt`],
//! not by editing chapter 03's file. Whether the process behind a record
//! still runs is one question with one answer, [`process::is_running`].
//! The operations that read the records for a person (`cleanup`, `doctor`,
//! `pod ls`, `pod ps`) find their generic parts in [`report`].
//!
//! Used by chapter 03 (names, leases, `cleanup`, `doctor`), chapter 05 (the
//! cgroups lock, its groups' files and stale groups) and chapter 06 (pods,
//! `pod ls`, `pod ps`, `pod logs`, `cleanup`).

pub mod cgroupfs;
pub mod leases;
pub mod names;
pub mod pods;
pub mod process;
pub mod report;

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::fcntl::{Flock, FlockArg};

/// Where runtime state lives: `$PFS_STATE_DIR`, or `/run/pods-from-scratch`.
pub fn state_dir() -> PathBuf {
    match std::env::var_os("PFS_STATE_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from("/run/pods-from-scratch"),
    }
}

/// An exclusive `flock(2)` on a file; it goes away when this is dropped
/// (or when the process dies: a killed run never leaves a lock behind).
/// It reads and writes the file it locks.
pub type Lock = Flock<File>;

/// Open `path` (made, with its directory, if missing; never truncated) and
/// take an exclusive lock on it, waiting while another process holds it.
pub fn lock_file(path: &Path) -> Result<Lock> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .with_context(|| format!("open {}", path.display()))?;
    Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, errno)| errno)
        .with_context(|| format!("flock {}", path.display()))
}

/// The lock called `what` in the state directory, `STATE_DIR/WHAT.lock`:
/// `lock("cgroups")` while creating or removing groups under our shared
/// parent group, `lock("pods")` while tearing pods down.
pub fn lock(what: &str) -> Result<Lock> {
    lock_file(&state_dir().join(format!("{what}.lock"))).with_context(|| format!("lock {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_file_is_made_with_its_directory_and_kept() {
        let dir = std::env::temp_dir().join(format!("pfs-lock-{}", std::process::id()));
        let path = dir.join("sub").join("x.lock");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "kept").unwrap();
        drop(lock_file(&path).unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "kept");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
