//! `ch05`: chapter 04 plus cgroups: memory, pids and CPU limits.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    version,
    about = "Chapter 05: chapter 04's container, plus cgroup limits on memory, processes and CPU"
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
    /// Run CMD with resource limits (like `docker run --memory --pids-limit --cpus`)
    Run(Box<ch05::RunArgs>),
    /// Remove what killed runs left (cgroups, containers' directories, leases, veths)
    Cleanup {
        /// Also remove the bridge (refused while a container uses it)
        #[arg(long)]
        all: bool,
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
        Command::Run(args) => ch05::run(&args),
        Command::Cleanup { all, bridge } => ch05::cleanup(&bridge, all),
    };
    ch01::exit_with(result)
}
