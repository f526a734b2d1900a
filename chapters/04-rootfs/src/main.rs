//! `ch04`: chapter 03 plus a root filesystem of its own.

use clap::Subcommand;

/// The commands of `ch04`.
#[derive(Subcommand)]
enum Command {
    /// Run CMD in a root filesystem of its own (like `docker run IMAGE CMD`)
    Run(Box<ch04::RunArgs>),
    /// Build a root filesystem into the cache
    #[command(subcommand)]
    Rootfs(Rootfs),
    /// Pull an image from a registry into the cache (like `docker pull`)
    Pull(pfs_image::PullArgs),
    /// Remove what killed runs left (containers' directories, leases, veths)
    Cleanup(ch03::CleanupArgs),
}

#[derive(Subcommand)]
enum Rootfs {
    /// The offline default: the host's static busybox and its applets
    Busybox,
    /// A Debian root filesystem made by debootstrap (needs the network)
    Debootstrap {
        /// The Debian release
        #[arg(long, default_value = ch04::rootfs::DEFAULT_SUITE)]
        suite: String,
        /// debootstrap's package set: minbase, buildd, fakechroot or default
        #[arg(long, default_value = ch04::rootfs::DEFAULT_VARIANT)]
        variant: String,
    },
}

fn main() {
    pfs_cli::main(
        "Chapter 04: chapter 03's container, plus a root filesystem of its own (overlayfs, pivot_root)",
        |command| match command {
            Command::Run(args) => ch04::run(&args),
            Command::Rootfs(Rootfs::Busybox) => built(ch04::rootfs::busybox()),
            Command::Rootfs(Rootfs::Debootstrap { suite, variant }) => {
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
