//! `ch05`: chapter 04 plus cgroups: memory, pids and CPU limits.

/// The commands of `ch05`.
#[derive(clap::Subcommand)]
enum Command {
    /// Run CMD with resource limits (like `docker run --memory --pids-limit --cpus`)
    Run(Box<ch05::RunArgs>),
    /// Remove what killed runs left (cgroups, containers' directories, leases, veths)
    Cleanup(ch03::CleanupArgs),
}

fn main() {
    pfs_cli::main(
        "Chapter 05: chapter 04's container, plus cgroup limits on memory, processes and CPU",
        |command| match command {
            Command::Run(args) => ch05::run(&args),
            Command::Cleanup(args) => ch05::cleanup(&args.bridge, args.all),
        },
    )
}
