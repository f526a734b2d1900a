//! # Chapter 07: hardening
//!
//! After chapter 06 a container is isolated, not confined: its root keeps
//! every capability of the host's root, may make device nodes, write
//! `/proc/sys`, call `mount` or `unshare`. `docker run` closes those doors
//! by default; this chapter closes them one small step at a time, in the
//! order a container engine applies them:
//!
//! 1. the filesystem ([`paths`]): a safe `/dev`, `/sys` read-only, the
//!    kernel's sensitive `/proc` files masked or read-only, the container's
//!    own cgroup files visible, read-only;
//! 2. the process ([`confine`]): capabilities cut to Docker's default set,
//!    `no_new_privs`, and last, right before `execve`, a seccomp filter;
//! 3. with `--userns` ([`userns`]), the container's root is an unprivileged
//!    host uid, and the image is shown to it as root's.
//!
//! `--privileged` turns every step off, as Docker's flag does, so that the
//! difference can be seen.

pub mod confine;
pub mod paths;
pub mod pod;
pub mod userns;

use anyhow::Result;
use std::path::Path;

use ch01::Layer;

/// This chapter's options, for `run` and every process of a pod.
#[derive(clap::Args, Debug)]
#[group(skip)]
pub struct Hardening {
    /// Turn off every step of this chapter (like `docker run --privileged`)
    #[arg(long)]
    pub privileged: bool,
    #[command(flatten)]
    pub confine: confine::ConfineArgs,
}

impl Hardening {
    /// This chapter's layers for a container whose cgroups are `group`:
    /// the filesystem's steps, then the process's (the last of which runs
    /// right before `execve`). None with `--privileged`.
    pub fn layers(&self, group: &Path) -> Result<Vec<Box<dyn Layer>>> {
        let confine = confine::layers(&self.confine)?; // check the flags first
        if self.privileged {
            return Ok(Vec::new());
        }
        let mut layers = paths::layers_at(group)?;
        layers.extend(confine);
        Ok(layers)
    }
}

/// `run` options: chapter 05's, plus this chapter's.
#[derive(clap::Args, Debug)]
#[group(skip)]
pub struct RunArgs {
    /// Map the container's root to an unprivileged host uid (root's range in /etc/subuid, else 100000)
    #[arg(long)]
    pub userns: bool,
    #[command(flatten)]
    pub hardening: Hardening,
    #[command(flatten)]
    pub ch05: ch05::RunArgs,
}

/// Chapter 05's layers, then this chapter's (`userns` first of all).
pub fn layers(args: &RunArgs) -> Result<Vec<Box<dyn Layer>>> {
    let net = &args.ch05.ch04.ch03.net;
    pfs_security::userns::check_options(args.userns, args.hardening.privileged, net)?;
    let group = Path::new(ch05::PARENT_GROUP).join(std::process::id().to_string());
    let hardening = args.hardening.layers(&group)?;
    let mut layers = ch05::layers(&args.ch05)?;
    if args.userns {
        layers.insert(0, userns::layer(&args.ch05.ch04.rootfs)?);
    }
    layers.extend(hardening);
    Ok(layers)
}

/// `ch07 run`: chapter 01's runtime with the layers of chapters 02 to 07.
pub fn run(args: &RunArgs) -> Result<i32> {
    let process = args.ch05.process()?;
    let mut layers = layers(args)?;
    ch01::run(&process, &mut layers)
}

/// `ch07 cleanup`: the pods whose pause is gone, and what killed runs of
/// chapters 07 to 03 left.
pub fn cleanup(args: &ch03::CleanupArgs) -> Result<i32> {
    let status = ch06::cleanup::<Hardening>(args)?;
    pfs_security::devices::remove_stale_groups()?;
    Ok(status)
}
