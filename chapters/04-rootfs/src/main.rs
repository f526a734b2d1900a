//! `ch04`: chapter 03 plus a root filesystem of its own.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    version,
    about = "Chapter 04: chapter 03's container, plus a root filesystem of its own (overlayfs, pivot_root)"
)]
struct Cli {
    /// Print each kernel step as it happens, with its shell equivalent
    #[arg(long, global = true)]
    explain: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run CMD in a root filesystem of its own (like `docker run IMAGE CMD`)
    Run(ch04::RunArgs),
    /// Build a root filesystem into the cache
    #[command(subcommand)]
    Rootfs(Rootfs),
    /// Pull an image from a registry into the cache (like `docker pull`)
    Pull(pfs_image::PullArgs),
    /// Remove what killed runs left (containers' directories, leases, veths)
    Cleanup {
        /// Also remove the bridge (refused while a container uses it)
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        bridge: ch03::BridgeArgs,
    },
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
    let cli: Cli = ch01::parse_args();
    if cli.explain {
        ch01::explain::enable();
    }
    let result = match cli.command {
        Command::Run(args) => ch04::run(&args),
        Command::Rootfs(Rootfs::Busybox) => built(ch04::rootfs::busybox()),
        Command::Rootfs(Rootfs::Debootstrap { suite, variant }) => {
            built(ch04::rootfs::debootstrap(&suite, &variant))
        }
        Command::Pull(args) => built(pfs_image::pull(&args)),
        Command::Cleanup { all, bridge } => {
            ch04::remove_stale_containers().and_then(|()| ch03::cleanup(&bridge, all))
        }
    };
    ch01::exit_with(result)
}

/// Print where a root filesystem is, for the user's next command.
fn built(result: anyhow::Result<std::path::PathBuf>) -> anyhow::Result<i32> {
    let dir = result?;
    println!("{}", dir.display());
    Ok(0)
}
