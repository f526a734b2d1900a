//! The reliability suite's test-only hook (`PFS_FAULT_AT`, see
//! `pfs_cli::fault`): the runtime dies by SIGKILL at the named step,
//! whether the parent or the child (in its new PID namespace) passes it,
//! and a name it does not pass changes nothing. Run as root.

use std::os::unix::process::ExitStatusExt;
use std::process::Command;

use testkit::{require_root, stderr, stdout};

const CH01: &str = env!("CARGO_BIN_EXE_ch01");

fn run_at(point: &str) -> std::process::Output {
    Command::new(CH01)
        .args(["run", "--", "sh", "-c", "echo ran"])
        .env("PFS_FAULT_AT", point)
        .output()
        .expect("run ch01")
}

#[test]
fn the_runtime_dies_by_sigkill_at_the_named_point_in_the_parent_or_the_child() {
    require_root();
    // after-prepare and after-clone are the parent's; before-exec is the
    // child's, which must reach its runtime outside its PID namespace.
    for point in ["after-prepare", "after-clone", "before-exec"] {
        let output = run_at(point);
        assert_eq!(
            output.status.signal(),
            Some(9),
            "{point}: {}",
            stderr(&output)
        );
        assert_eq!(stdout(&output), "", "{point}: the command ran");
    }
    let output = run_at("while-waiting");
    assert_eq!(output.status.signal(), Some(9), "{}", stderr(&output));
}

#[test]
fn a_point_the_run_does_not_pass_changes_nothing() {
    require_root();
    let output = run_at("after-veth"); // chapter 03's: ch01 makes no veth
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "ran\n");
}
