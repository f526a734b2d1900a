//! # Chapter 08: an OCI runtime
//!
//! Docker, podman, containerd and the kubelet never call `unshare`: they
//! write an OCI *bundle*, a directory with a root filesystem and a
//! `config.json` that says which namespaces, mounts, limits and
//! confinement the container gets, and call a runtime (runc, crun) to
//! make it. This chapter is such a runtime: the same steps as chapters 01
//! to 07, chosen by a bundle's `config.json` instead of flags ([`spec`]
//! maps each field to the chapter that taught it), with runc's lifecycle
//! ([`lifecycle`]: create, start, state, kill, delete) and [`exec`].

pub mod exec;
pub mod lifecycle;
pub mod linux;
pub mod process;
pub mod spec;

use anyhow::Result;
use pfs_oci::cli::{Cli, Command, CreateArgs};

/// Run one command of the OCI runtime command line.
pub fn main(cli: &Cli) -> Result<i32> {
    cli.check_cgroup_manager()?;
    match &cli.command {
        Command::Create(args) => lifecycle::create(&cli.root, args).map(|()| 0),
        Command::Start(args) => lifecycle::start(&cli.root, &args.id),
        Command::Run(args) => run(args),
        Command::State(args) => pfs_oci::state::print_state(&cli.root, &args.id),
        Command::Kill(args) => lifecycle::kill(&cli.root, args),
        Command::Delete(args) => lifecycle::delete(&cli.root, args),
        Command::Exec(args) => exec::exec(&cli.root, args),
        Command::Ps(args) => pfs_oci::state::print_ps(&cli.root, &args.id, &args.format),
        Command::Features => pfs_oci::features::print(),
    }
}

/// `ch08 run --bundle B ID`: make the container the bundle describes and
/// wait for it, as `runc run` does.
pub fn run(args: &CreateArgs) -> Result<i32> {
    let bundle = pfs_oci::config::load(&args.bundle)?;
    let process = spec::process(&bundle.spec)?;
    let mut layers = spec::layers(&bundle, &args.id)?;
    ch01::run(&process, &mut layers)
}
