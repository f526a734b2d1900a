//! `ch05`: chapter 04 plus cgroups: memory, pids and CPU limits.

use pfs_cli::RunOrCleanup::{Cleanup, Run};

const ABOUT: &str =
    "Chapter 05: chapter 04's container, plus cgroup limits on memory, processes and CPU";

/// `ch05 run` (like `docker run --memory --pids-limit --cpus`), `ch05 cleanup`.
fn main() {
    pfs_cli::main(ABOUT, |command| match command {
        Run::<ch05::RunArgs, ch03::CleanupArgs>(args) => ch05::run(&args),
        Cleanup(args) => ch05::cleanup(&args.bridge, args.all),
    })
}
