//! `ch07`: chapter 05's containers, hardened as `docker run` hardens them.

/// The commands of `ch07`.
#[derive(clap::Subcommand)]
enum Command {
    /// Run CMD in a hardened container (like `docker run`)
    Run(Box<ch07::RunArgs>),
    /// Remove what killed runs left (cgroups, containers' directories, leases, veths)
    Cleanup(ch03::CleanupArgs),
}

fn main() {
    pfs_cli::main(
        "Chapter 07: chapter 05's container, hardened: a safe /dev, masked /proc, capabilities, no_new_privs, seccomp",
        |command| match command {
            Command::Run(args) => ch07::run(&args),
            Command::Cleanup(args) => ch07::cleanup(&args.bridge, args.all),
        },
    )
}
