//! `ch06`: chapter 05's containers, grouped into pods around a pause process.

use clap::Subcommand;

/// The commands of `ch06`.
#[derive(Subcommand)]
enum Command {
    /// Run CMD in a container of its own, as in chapter 05
    Run(Box<ch05::RunArgs>),
    /// Create, run in, inspect and remove pods
    #[command(subcommand)]
    Pod(Pod),
    /// Remove pods whose pause is gone, and what killed runs left; with
    /// --all also the bridge
    Cleanup(ch06::CleanupArgs),
    /// Check root, namespaces, netlink, cgroups, overlayfs, busybox, pause
    Doctor(ch03::BridgeArgs),
    /// Replay the story: a pod, its pause, two containers on one IP, a
    /// zombie reaped; all inside throwaway namespaces
    Demo(pfs_demo::DemoArgs),
}

#[derive(Subcommand)]
enum Pod {
    /// Start a pod: its pause process, in new network, IPC and UTS
    /// namespaces, with one address on the bridge
    Create(ch06::CreateArgs),
    /// Run CMD in a new container that joins the pod's namespaces
    Run(ch06::PodRunArgs),
    /// Run CMD inside a running container of the pod (like `docker exec`)
    Exec(ch06::ExecArgs),
    /// List the containers of one pod, or of all
    Ps { pod: Option<String> },
    /// List the pods
    Ls,
    /// Print what a detached container (or `pause`) wrote
    Logs { pod: String, container: String },
    /// Stop the pod's containers, then pause; keep its record and logs
    Stop(ch06::StopArgs),
    /// Stop the pod, and remove everything of it
    Rm(ch06::StopArgs),
}

fn main() {
    pfs_cli::main(
        "Chapter 06: pods: containers that share a pause process's namespaces and one IP",
        |command| match command {
            Command::Run(args) => ch05::run(&args),
            Command::Pod(Pod::Create(args)) => ch06::create(&args),
            Command::Pod(Pod::Run(args)) => ch06::run(&args),
            Command::Pod(Pod::Exec(args)) => ch06::exec(&args),
            Command::Pod(Pod::Ps { pod }) => ch06::ps(pod.as_deref()),
            Command::Pod(Pod::Ls) => ch06::list(),
            Command::Pod(Pod::Logs { pod, container }) => ch06::logs(&pod, &container),
            Command::Pod(Pod::Stop(args)) => ch06::remove(&args, true),
            Command::Pod(Pod::Rm(args)) => ch06::remove(&args, false),
            Command::Cleanup(args) => ch06::cleanup(&args),
            Command::Doctor(bridge) => ch06::doctor(&bridge),
            Command::Demo(args) => pfs_demo::demo(&args),
        },
    )
}
