//! `ch06`: chapter 05's containers, grouped into pods around a pause process.

use clap::Subcommand;
use pfs_pod::{NoLayers, PodCommand};

/// The commands of `ch06`.
#[derive(Subcommand)]
enum Command {
    /// Run CMD in a container of its own, as in chapter 05
    Run(Box<ch05::RunArgs>),
    /// Create, run in, inspect and remove pods
    #[command(subcommand)]
    Pod(PodCommand),
    /// Remove pods whose pause is gone, and what killed runs left; with
    /// --all also the bridge
    Cleanup(ch03::CleanupArgs),
    /// Check root, namespaces, netlink, cgroups, overlayfs, busybox, pause
    Doctor(ch03::BridgeArgs),
    /// Replay the story: a pod, its pause, two containers on one IP, a
    /// zombie reaped; all inside throwaway namespaces
    Demo(pfs_demo::DemoArgs),
}

fn main() {
    pfs_cli::main(
        "Chapter 06: pods: containers that share a pause process's namespaces and one IP",
        |command| match command {
            Command::Run(args) => ch05::run(&args),
            Command::Pod(pod) => ch06::pod(pod),
            Command::Cleanup(args) => ch06::cleanup::<NoLayers>(&args),
            Command::Doctor(bridge) => pfs_pod::doctor(&bridge, ch06::PAUSE),
            Command::Demo(args) => pfs_demo::demo(&args),
        },
    )
}
