//! `ch01`: run a command as PID 1 of a new PID namespace.

/// The commands of `ch01`.
#[derive(clap::Subcommand)]
enum Command {
    /// Run CMD as PID 1 of a new PID namespace (like `unshare --fork --pid`)
    Run(ch01::RunArgs),
}

fn main() {
    pfs_cli::main(
        "Chapter 01: run a command as PID 1 of a new PID namespace",
        |command| match command {
            Command::Run(args) => ch01::run(&args.process()?, &mut []),
        },
    )
}
