//! The process's doors: capabilities, `no_new_privs`, seccomp.

use anyhow::Result;
use ch01::Layer;

/// Options of the process's confinement.
#[derive(clap::Args, Debug)]
#[group(skip)]
pub struct ConfineArgs {}

/// This chapter's process layers, after checking the options.
pub fn layers(_args: &ConfineArgs) -> Result<Vec<Box<dyn Layer>>> {
    Ok(Vec::new())
}
