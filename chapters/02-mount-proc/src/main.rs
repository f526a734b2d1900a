//! `ch02`: chapter 01 plus a mount namespace with its own /proc, a hostname and IPC.

/// The commands of `ch02`.
#[derive(clap::Subcommand)]
enum Command {
    /// Run CMD as PID 1 with its own /proc, hostname and IPC
    /// (like `unshare --fork --pid --mount-proc --uts --ipc`)
    Run(ch02::RunArgs),
}

fn main() {
    pfs_cli::main(
        "Chapter 02: a PID namespace, plus mount (with its own /proc), UTS and IPC namespaces",
        |command| match command {
            Command::Run(args) => ch02::run(&args),
        },
    )
}
