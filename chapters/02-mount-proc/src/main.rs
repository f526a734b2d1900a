//! `ch02`: chapter 01 plus a mount namespace with its own /proc, a hostname and IPC.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    version,
    about = "Chapter 02: a PID namespace, plus mount (with its own /proc), UTS and IPC namespaces"
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
    /// Run CMD as PID 1 with its own /proc, hostname and IPC
    /// (like `unshare --fork --pid --mount-proc --uts --ipc`)
    Run(ch02::RunArgs),
}

fn main() {
    let cli: Cli = ch01::parse_args();
    if cli.explain {
        ch01::explain::enable();
    }
    let result = match cli.command {
        Command::Run(args) => ch02::run(&args),
    };
    ch01::exit_with(result)
}
