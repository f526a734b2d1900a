//! Part `pods`: 10 pods created and removed 10 times (100 pod lifecycles),
//! each with 3 containers, all at once on one bridge in a throwaway host;
//! even rounds with chapter 06's `ch06 pod`, odd ones with chapter 07's
//! hardened `ch07 pod`. Each lifecycle checks, while the pod runs, that its
//! pause and its 3 containers run, and after `pod rm`, that none of them
//! does and that its cgroups and veth are gone. Then one more pod, whose
//! pause is killed with SIGKILL: `pod rm` must still remove the rest.
//! Last: no lease, record or file left, and after `cleanup --all` the
//! sandbox's network as before.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use pfs_state::pods::Pod;
use pfs_state::process::is_running;
use testkit::{stderr, stdout};

use crate::host::Host;
use crate::report::Report;

const PART: &str = "pods";
const PODS: usize = 10;
const ROUNDS: usize = 10;
const CONTAINERS: [&str; 3] = ["a", "b", "c"];
/// A container that ends at once on SIGTERM (as PID 1 of its namespace, a
/// shell without a trap would ignore it, and `pod rm` would wait).
const SERVE: &str = "trap 'exit 0' TERM; sleep 600 & wait";

pub fn run(report: &mut Report) -> Result<()> {
    let host = Host::new()?;
    let before = host.sandbox.snapshot();
    for round in 0..ROUNDS {
        let chapter = if round % 2 == 0 { "ch06" } else { "ch07" };
        let failures: Vec<String> = std::thread::scope(|scope| {
            let lifecycles: Vec<_> = (0..PODS)
                .map(|n| {
                    let host = &host;
                    scope.spawn(move || lifecycle(host, chapter, &format!("p{n}")))
                })
                .collect();
            lifecycles
                .into_iter()
                .filter_map(|l| match l.join() {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(format!("round {round} ({chapter}): {e:#}")),
                    Err(_) => Some(format!("round {round} ({chapter}): a lifecycle panicked")),
                })
                .collect()
        });
        for failure in failures {
            report.failure(PART, failure);
        }
    }
    if let Err(e) = pause_killed(&host) {
        report.failure(PART, format!("pod rm after SIGKILL of pause: {e:#}"));
    }
    for left in host.leftovers() {
        report.failure(PART, format!("left after the pods: {left}"));
    }
    // A failed part leaves no pod running behind it (it was reported).
    let pods = std::fs::read_dir(host.state_dir().join("pods"));
    for pod in pods.into_iter().flatten().flatten() {
        let name = pod.file_name().to_string_lossy().into_owned();
        let _ = ok(&host, "ch07", &["pod", "rm", &name, "--timeout", "0"]);
    }
    for failure in host.cleanup_all(&before)? {
        report.failure(PART, failure);
    }
    report.figure(
        PART,
        "pod lifecycles (10 pods at once x 10 rounds)",
        PODS * ROUNDS,
    );
    report.figure(PART, "containers", PODS * ROUNDS * CONTAINERS.len());
    report.figure(PART, "pod rm after a SIGKILL of pause", 1);
    Ok(())
}

/// One pod: create it, run its 3 containers, check they run, remove it,
/// check that nothing of it is left.
fn lifecycle(host: &Host, chapter: &str, pod: &str) -> Result<()> {
    ok(host, chapter, &["pod", "create", pod])?;
    for name in CONTAINERS {
        let args = [
            "pod", "run", pod, "--name", name, "-d", "--", "sh", "-c", SERVE,
        ];
        ok(host, chapter, &args)?;
    }
    let traces = Traces::of(host, pod)?;
    for &pid in &traces.processes {
        ensure!(is_running(pid), "{pod}: process {pid} does not run");
    }
    ok(host, chapter, &["pod", "rm", pod])?;
    traces.check_gone(host, pod)
}

/// A pod with 3 containers whose pause is killed: `pod rm` removes the rest.
fn pause_killed(host: &Host) -> Result<()> {
    let pod = "doomed";
    ok(host, "ch07", &["pod", "create", pod])?;
    for name in CONTAINERS {
        let args = [
            "pod", "run", pod, "--name", name, "-d", "--", "sh", "-c", SERVE,
        ];
        ok(host, "ch07", &args)?;
    }
    let traces = Traces::of(host, pod)?;
    let pause = traces.processes[0];
    kill(Pid::from_raw(pause as i32), Signal::SIGKILL)?;
    wait_until(|| !is_running(pause)).context("pause does not die")?;
    ok(host, "ch07", &["pod", "rm", pod])?;
    traces.check_gone(host, pod)
}

/// Run `chapter ARGS` in the host; fail with what it said unless it succeeds.
fn ok(host: &Host, chapter: &str, args: &[&str]) -> Result<()> {
    let output = host.command(chapter, args)?.output()?;
    ensure!(
        output.status.success(),
        "{chapter} {}: {}{}{}",
        args.join(" "),
        output.status,
        stdout(&output),
        stderr(&output)
    );
    Ok(())
}

/// What a running pod made outside its state directory: its processes
/// (pause first), its cgroups and its veth.
struct Traces {
    processes: Vec<u32>,
    groups: Vec<std::path::PathBuf>,
    veth: String,
}

impl Traces {
    fn of(host: &Host, name: &str) -> Result<Traces> {
        let dir = host.state_dir().join("pods").join(name);
        let text = std::fs::read_to_string(dir.join("pod"))?;
        let pod = Pod::parse(name, &text).context("a pod record")?;
        let mut processes: Vec<u32> = pod.pause.into_iter().collect();
        for container in CONTAINERS {
            let pid = std::fs::read_to_string(dir.join("names").join(container))?;
            processes.push(pid.trim().parse()?);
        }
        ensure!(processes.len() == 4, "{name}: no pause in its record");
        let mut groups = Vec::new();
        for hierarchy in std::fs::read_dir("/sys/fs/cgroup")?.flatten() {
            let group = hierarchy.path().join(pod.cgroup());
            if group.is_dir() {
                groups.push(group);
            }
        }
        let v2 = Path::new("/sys/fs/cgroup").join(pod.cgroup());
        if v2.is_dir() {
            groups.push(v2);
        }
        ensure!(
            !groups.is_empty(),
            "{name}: no cgroup {}",
            pod.cgroup().display()
        );
        Ok(Traces {
            processes,
            groups,
            veth: pod.veth(),
        })
    }

    /// After `pod rm`: no process, cgroup, veth or record of the pod (the
    /// kernel destroys the veth a moment after the namespace's end).
    fn check_gone(&self, host: &Host, name: &str) -> Result<()> {
        for &pid in &self.processes {
            ensure!(!is_running(pid), "{name}: process {pid} still runs");
        }
        for group in &self.groups {
            ensure!(
                !group.exists(),
                "{name}: cgroup {} is left",
                group.display()
            );
        }
        let links = || stdout(&host.sandbox.run("ip", &["-o", "link", "show"]));
        if wait_until(|| !links().contains(&self.veth)).is_err() {
            bail!("{name}: veth {} is left", self.veth);
        }
        for dir in [host.state_dir(), &host.data_dir()] {
            let record = dir.join("pods").join(name);
            ensure!(!record.exists(), "{name}: {} is left", record.display());
        }
        Ok(())
    }
}

/// Wait up to 5 seconds for `done`.
fn wait_until(done: impl Fn() -> bool) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        ensure!(Instant::now() < deadline, "not within 5 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}
