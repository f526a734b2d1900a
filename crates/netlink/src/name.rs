//! `--name NAME`: a layer that keeps the container's name record, so that
//! `--net container:NAME` can find the container's PID (and from it, its
//! network namespace). The records are kept by `pfs_state::names`; this
//! layer only says when, in the runtime's three moments: bookkeeping, not
//! a lesson.
//! Chapter 03 adds it to a run with `--name`, chapter 06 to every pod
//! container.

use std::path::PathBuf;

use anyhow::Result;
use ch01::Layer;
use nix::unistd::Pid;
use pfs_state::names;

/// `--name NAME`: reserve the name, record the container's PID under it,
/// forget it when the container is gone.
pub struct Name {
    state_dir: PathBuf,
    name: String,
    reserved: bool,
}

impl Name {
    pub fn new(state_dir: PathBuf, name: &str) -> Self {
        Name {
            state_dir,
            name: name.to_string(),
            reserved: false,
        }
    }
}

impl Layer for Name {
    fn prepare(&mut self) -> Result<()> {
        names::reserve(&self.state_dir, &self.name)?;
        self.reserved = true;
        Ok(())
    }
    fn setup_from_parent(&mut self, child: Pid) -> Result<()> {
        names::register(&self.state_dir, &self.name, child.as_raw() as u32)
    }
    fn cleanup(&mut self) -> Result<()> {
        if !std::mem::take(&mut self.reserved) {
            return Ok(());
        }
        names::unregister(&self.state_dir, &self.name)
    }
}
