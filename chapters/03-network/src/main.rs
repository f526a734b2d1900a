//! `ch03`: chapter 02 plus a network namespace, a veth pair, an IP and a bridge.

/// The commands of `ch03`.
#[derive(clap::Subcommand)]
enum Command {
    /// Run CMD with its own network namespace, plugged into our bridge
    /// (like `docker run --net=bridge`)
    Run(Box<ch03::RunArgs>),
    /// Remove what killed runs left (stale leases, their veths, names);
    /// with --all also the bridge
    Cleanup(ch03::CleanupArgs),
    /// Check root, namespaces, netlink, forwarding and nft; say what is missing
    Doctor(ch03::BridgeArgs),
}

fn main() {
    pfs_cli::main(
        "Chapter 03: chapter 02's container, plus a network namespace wired to a bridge",
        |command| match command {
            Command::Run(args) => ch03::run(&args),
            Command::Cleanup(args) => ch03::cleanup(&args.bridge, args.all),
            Command::Doctor(bridge) => ch03::doctor(&bridge),
        },
    )
}
