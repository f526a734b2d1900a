//! `pfs-stress`: the reliability suite (not a lesson: machinery that keeps
//! the project's promise true as chapters are added). It runs the chapters'
//! binaries as a user would, many at once and killed at every step, then
//! compares the host with a snapshot taken before: every lease, veth, mount,
//! cgroup, nft rule, state record and process a run made must be gone.
//!
//! ```text
//! pfs-stress [PART...]    parts: load faults pulls pods (default: all)
//! ```
//! Run as root, from the workspace root, after `cargo build --workspace`
//! (scripts/stress.sh does both). Prints one table of figures at the end;
//! exits non-zero on any failure or leftover.

mod faults;
mod host;
mod load;
mod pods;
mod pulls;
mod report;
mod snapshot;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use report::Report;

/// A part of the suite: its name, and what it runs.
type Part = (&'static str, fn(&mut Report) -> anyhow::Result<()>);

const PARTS: [Part; 4] = [
    ("load", load::run),
    ("faults", faults::run),
    ("pulls", pulls::run),
    ("pods", pods::run),
];

/// A binary of the workspace (`ch04`, `ch06` ...), built next to this one
/// by `cargo build --workspace`: the suite runs the very binaries a learner
/// would.
pub fn binary(name: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::current_exe()?.with_file_name(name);
    anyhow::ensure!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` first",
        path.display()
    );
    Ok(path)
}

fn main() -> ExitCode {
    testkit::require_root();
    let asked: Vec<String> = std::env::args().skip(1).collect();
    if let Some(unknown) = asked.iter().find(|a| !PARTS.iter().any(|(n, _)| n == a)) {
        eprintln!("pfs-stress: unknown part {unknown:?}: the parts are load, faults, pulls, pods");
        return ExitCode::from(2);
    }
    let mut report = Report::default();
    for (name, run) in PARTS {
        if !asked.is_empty() && !asked.iter().any(|a| a == name) {
            continue;
        }
        let start = Instant::now();
        let before = snapshot::Snapshot::take();
        // testkit's helpers panic on what they cannot do (no namespace, a
        // network that never settles): that is a failure of this part, and
        // the next part and the leftover check still run.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&mut report)));
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => report.failure(name, format!("{e:#}")),
            Err(_) => report.failure(name, "panicked (the message is above)"),
        }
        for leftover in snapshot::Snapshot::take().leftovers_since(&before) {
            report.leftover(name, leftover);
        }
        report.time(name, start.elapsed());
    }
    report.print();
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
