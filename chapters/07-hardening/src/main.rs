//! `ch07`: chapter 05's containers, hardened as `docker run` hardens them.

use pfs_cli::RunOrCleanup::{Cleanup, Run};

const ABOUT: &str = "Chapter 07: chapter 05's container, hardened: a safe /dev, masked /proc, \
                     capabilities, no_new_privs, seccomp";

/// `ch07 run` (like `docker run`), `ch07 cleanup`.
fn main() {
    pfs_cli::main(ABOUT, |command| match command {
        Run::<ch07::RunArgs, ch03::CleanupArgs>(args) => ch07::run(&args),
        Cleanup(args) => ch07::cleanup(&args.bridge, args.all),
    })
}
