//! `ch01`: run a command as PID 1 of a new PID namespace.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    version,
    about = "Chapter 01: run a command as PID 1 of a new PID namespace"
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
    /// Run CMD as PID 1 of a new PID namespace (like `unshare --fork --pid`)
    Run(ch01::RunArgs),
}

fn main() {
    let cli: Cli = ch01::parse_args();
    if cli.explain {
        ch01::explain::enable();
    }
    let result = match cli.command {
        Command::Run(args) => ch01::run(&args.command, &mut []),
    };
    ch01::exit_with(result)
}
