//! Part `load`: 200 container runs, 20 at a time, as users would start
//! them on one machine: chapters 04, 05, 06 (`ch06 run`, its single
//! container) and 07 take turns (50 runs each, mixed in every batch), all
//! with bridge networking on one bridge, in one throwaway "host"
//! (testkit::NetSandbox) with its own state and data directories.
//!
//! Every container writes its eth0 address into a volume shared by its
//! batch, then waits for a barrier file: so the 20 addresses are read while
//! all 20 containers hold them. Then each exits with a status of its own
//! (run i: `exit i % 100`, distinct within a batch), which its run must
//! return. Afterwards: no lease, no state record, no container directory,
//! no veth; the sandbox's network as after the first batch (nothing piles
//! up), and after `cleanup --all` as before the part.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use testkit::{stderr, stdout};

use crate::host::{changes, Host};
use crate::report::Report;

const PART: &str = "load";
const CHAPTERS: [&str; 4] = ["ch04", "ch05", "ch06", "ch07"];
const RUNS: usize = 200;
const AT_ONCE: usize = 20;
/// How long a batch may take to hold its 20 addresses: 0.3 s on this
/// 2-core host, up to 30 s in the emulated cgroup v2 VM (scripts/vm-test.sh).
const READY_WITHIN: Duration = Duration::from_secs(120);

pub fn run(report: &mut Report) -> Result<()> {
    let host = Host::new()?;
    let before = host.sandbox.snapshot();
    let (mut checked, mut fewest_addresses) = (0, AT_ONCE);
    let mut after_first = None;
    for batch in 0..RUNS / AT_ONCE {
        let started = Instant::now();
        let (statuses, addresses) = run_batch(&host, batch, report)?;
        // A line per batch: a slow machine (an emulated VM) shows progress.
        eprintln!(
            "pfs-stress: load: batch {}/{}: {addresses} addresses held at once, {:.1} s",
            batch + 1,
            RUNS / AT_ONCE,
            started.elapsed().as_secs_f64()
        );
        checked += statuses;
        fewest_addresses = fewest_addresses.min(addresses);
        // The bridge stays between runs, by design (as docker0 does); the
        // rest of the network must come back to this after each batch.
        if after_first.is_none() {
            after_first = Some(host.idle_snapshot()?);
        }
    }
    for left in host.leftovers() {
        report.failure(PART, format!("left after the runs: {left}"));
    }
    if let Some(first) = after_first {
        let last = host.idle_snapshot()?;
        if let Some(change) = changes(
            "the network from the first batch to the last",
            &first,
            &last,
        ) {
            report.failure(PART, change);
        }
    }
    // The bridge goes with `cleanup --all`; then the network is as before.
    for failure in host.cleanup_all(&before)? {
        report.failure(PART, failure);
    }
    report.figure(
        PART,
        "container runs (ch04, ch05, ch06, ch07: 50 each)",
        RUNS,
    );
    report.figure(PART, "batches of 20 at once", RUNS / AT_ONCE);
    report.figure(PART, "distinct IPs per batch (min)", fewest_addresses);
    report.figure(PART, "exit statuses checked", checked);
    Ok(())
}

/// Runs `batch * 20 ..`, all at once: how many exit statuses were checked,
/// and how many distinct addresses the 20 held.
fn run_batch(host: &Host, batch: usize, report: &mut Report) -> Result<(usize, usize)> {
    let shared = host.state_dir().join(format!("batch-{batch}"));
    fs::create_dir_all(&shared)?;
    let volume = format!("{}:/shared", shared.display());
    let runs: Vec<usize> = (batch * AT_ONCE..(batch + 1) * AT_ONCE).collect();
    let mut children = Vec::new();
    for &i in &runs {
        let chapter = CHAPTERS[i % CHAPTERS.len()];
        let script = container_script(i);
        let args = [
            "run", "--net", "bridge", "-v", &volume, "--", "sh", "-c", &script,
        ];
        let child = host
            .command(chapter, &args)?
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        children.push((i, chapter, child));
    }
    let addresses = wait_for_addresses(&shared, &runs, &mut children);
    // The barrier: every container may now exit (also after a failure, so
    // that none is left waiting).
    fs::write(shared.join("go"), "")?;
    let mut held = BTreeSet::new();
    match addresses {
        Ok(addresses) => {
            for (i, address) in addresses {
                if address.starts_with("10.200.0.") {
                    held.insert(address);
                } else {
                    report.failure(
                        PART,
                        format!("run {i}: eth0 has {address:?}, not an address of 10.200.0.0/24"),
                    );
                }
            }
            if held.len() != AT_ONCE {
                report.failure(PART, format!("batch {batch}: {} distinct addresses among {AT_ONCE} containers alive at once", held.len()));
            }
        }
        Err(e) => report.failure(PART, format!("batch {batch}: {e:#}")),
    }
    let mut checked = 0;
    for (i, chapter, child) in children {
        let output = child.wait_with_output()?;
        let expected = (i % 100) as i32;
        checked += 1;
        if output.status.code() != Some(expected) {
            report.failure(
                PART,
                format!(
                    "run {i} ({chapter}): exit status {:?}, its command's was {expected}: {}{}",
                    output.status.code(),
                    stdout(&output),
                    stderr(&output)
                ),
            );
        }
    }
    fs::remove_dir_all(&shared)?;
    Ok((checked, held.len()))
}

/// Run i's command: write the address, wait for the barrier, exit i % 100.
fn container_script(i: usize) -> String {
    format!(
        "a=$(ip -o -4 addr show dev eth0 | awk '{{print $4}}' | cut -d/ -f1); \
         echo \"$a\" > /shared/.{i} && mv /shared/.{i} /shared/{i}; \
         while [ ! -e /shared/go ]; do usleep 20000; done; exit {}",
        i % 100
    )
}

/// The address each run wrote, once all have; an error if one of them
/// ended first or the batch took longer than [`READY_WITHIN`].
fn wait_for_addresses(
    shared: &Path,
    runs: &[usize],
    children: &mut [(usize, &str, Child)],
) -> Result<Vec<(usize, String)>> {
    let deadline = Instant::now() + READY_WITHIN;
    loop {
        let written: Vec<(usize, String)> = runs
            .iter()
            .filter_map(|i| Some((*i, fs::read_to_string(shared.join(i.to_string())).ok()?)))
            .map(|(i, a)| (i, a.trim().to_string()))
            .collect();
        if written.len() == runs.len() {
            return Ok(written);
        }
        for (i, chapter, child) in children.iter_mut() {
            if let Some(status) = child.try_wait()? {
                anyhow::bail!(
                    "run {i} ({chapter}) ended ({status}) before the others held their addresses"
                );
            }
        }
        ensure!(
            Instant::now() < deadline,
            "{} of {} containers held an address after {READY_WITHIN:?}",
            written.len(),
            runs.len()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
