//! `ch03`: chapter 02 plus a network namespace, a veth pair, an IP and a bridge.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    version,
    about = "Chapter 03: chapter 02's container, plus a network namespace wired to a bridge"
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
    /// Run CMD with its own network namespace, plugged into our bridge
    /// (like `docker run --net=bridge`)
    Run(ch03::RunArgs),
    /// Remove what killed runs left (stale leases, their veths, names);
    /// with --all also the bridge
    Cleanup {
        /// Also remove the bridge (refused while a container uses it)
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        bridge: ch03::BridgeArgs,
    },
    /// Check root, namespaces, netlink, forwarding and nft; say what is missing
    Doctor {
        #[command(flatten)]
        bridge: ch03::BridgeArgs,
    },
}

fn main() {
    let cli: Cli = ch01::parse_args();
    if cli.explain {
        ch01::explain::enable();
    }
    let result = match cli.command {
        Command::Run(args) => ch03::run(&args),
        Command::Cleanup { all, bridge } => ch03::cleanup(&bridge, all),
        Command::Doctor { bridge } => ch03::doctor(&bridge),
    };
    ch01::exit_with(result)
}
