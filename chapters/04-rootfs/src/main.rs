//! `ch04`: chapter 03 plus a root filesystem of its own.

use clap::Subcommand;
use pfs_image::RootfsCommand;

/// The commands of `ch04`.
#[derive(Subcommand)]
enum Command {
    /// Run CMD in a root filesystem of its own (like `docker run IMAGE CMD`)
    Run(Box<ch04::RunArgs>),
    /// Build a root filesystem into the cache
    #[command(subcommand)]
    Rootfs(RootfsCommand),
    /// Pull an image from a registry into the cache (like `docker pull`)
    Pull(pfs_image::PullArgs),
    /// Remove what killed runs left (containers' directories, leases, veths)
    Cleanup(ch03::CleanupArgs),
}

fn main() {
    pfs_cli::main(
        "Chapter 04: chapter 03's container, plus a root filesystem of its own (overlayfs, pivot_root)",
        |command| match command {
            Command::Run(args) => ch04::run(&args),
            Command::Rootfs(RootfsCommand::Busybox) => built(ch04::rootfs::busybox()),
            Command::Rootfs(RootfsCommand::Debootstrap { suite, variant }) => {
                built(ch04::rootfs::debootstrap(&suite, &variant))
            }
            Command::Pull(args) => built(pfs_image::pull(&args)),
            Command::Cleanup(args) => ch04::remove_stale_containers()
                .and_then(|()| ch03::cleanup(&args.bridge, args.all)),
        },
    )
}

/// Print where a root filesystem is, for the user's next command.
fn built(result: anyhow::Result<std::path::PathBuf>) -> anyhow::Result<i32> {
    let dir = result?;
    println!("{}", dir.display());
    Ok(0)
}
