//! `ch07`: chapter 05's containers and chapter 06's pods, hardened as
//! `docker run` hardens them.

use pfs_pod::RunPodOrCleanup::{Cleanup, Pod, Run};

const ABOUT: &str = "Chapter 07: chapter 05's container and chapter 06's pods, hardened: \
                     a safe /dev, masked /proc, capabilities, no_new_privs, seccomp";

/// `ch07 run` (like `docker run`), `ch07 pod ...`, `ch07 cleanup`.
fn main() {
    pfs_cli::main(ABOUT, |command| match command {
        Run::<ch07::RunArgs, ch07::Hardening>(args) => ch07::run(&args),
        Pod(pod) => ch06::pod(pod),
        Cleanup(args) => ch07::cleanup(&args),
    })
}
