//! `linux.namespaces` with a `path`: namespaces to join instead of making
//! new ones, with chapter 06's `setns` step (how a pod's containers share
//! its pause's; how a CRI engine puts a container in its sandbox).

use std::fs::File;
use std::path::PathBuf;

use anyhow::{Context, Result};
use ch01::Layer;
use ch06::layers::join_namespace;
use nix::sched::CloneFlags;

use crate::settings::namespace_name;

/// The layer: it also names the new namespaces, for chapter 01.
pub struct Namespaces {
    pub new: CloneFlags,
    pub join: Vec<(PathBuf, CloneFlags)>,
    files: Vec<(File, PathBuf, CloneFlags)>,
}

impl Namespaces {
    pub fn new(new: CloneFlags, join: Vec<(PathBuf, CloneFlags)>) -> Self {
        let files = Vec::new();
        Namespaces { new, join, files }
    }

    fn join(&self, pid: bool) -> Result<bool> {
        let is_pid = |flag: &CloneFlags| (*flag == CloneFlags::CLONE_NEWPID) == pid;
        let files = self.files.iter().filter(|(_, _, flag)| is_pid(flag));
        for (file, path, flag) in files.clone() {
            ch01::explain::oci("join a namespace", "linux.namespaces[].path");
            join_namespace(file, path, namespace_name(*flag), *flag)?;
        }
        Ok(files.count() > 0)
    }
}

impl Layer for Namespaces {
    fn namespaces(&self) -> CloneFlags {
        self.new
    }

    /// Open the namespaces to join while their paths are in reach.
    fn prepare(&mut self) -> Result<()> {
        for (path, flag) in &self.join {
            let file = File::open(path)
                .with_context(|| format!("linux.namespaces: cannot open {}", path.display()))?;
            self.files.push((file, path.clone(), *flag));
        }
        Ok(())
    }

    /// A PID namespace is joined before the fork, by the parent (chapter 06).
    fn join_pid_namespace(&mut self) -> Result<bool> {
        self.join(true)
    }

    fn setup_in_child(&mut self) -> Result<()> {
        self.join(false).map(|_| ())
    }
}
