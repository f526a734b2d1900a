//! Part `faults`: the runtime killed at every step of a run.
//!
//! For each kill point of `pfs_cli::fault::POINTS` and each command that
//! passes it (`run` of chapters 04, 05 and 07 with a bridge, `pod create`
//! of chapters 06 and 07, `pod run` into a running pod), all in one
//! throwaway network namespace (testkit::NetSandbox) with state and data
//! directories of our own:
//!
//! 1. run the command with `PFS_FAULT_AT=POINT`: it must die of SIGKILL
//!    (if it does not, the point was never reached: dead or misnamed);
//! 2. run the chapter's `cleanup`, then compare the host (crate::snapshot)
//!    and the sandbox's network with the snapshots taken before (after
//!    the next run, for `pod run`: see [`Case::next_restores`]);
//! 3. one normal run must then succeed.
//!
//! Then the two deaths a pod's processes may die: SIGKILL of a pod's
//! pause (then `pod rm` and `cleanup` leave nothing) and of a pod's
//! container (then the pod runs on: a new container of that name works,
//! and `pod rm` leaves nothing).
//!
//! Other tests may run containers on this host meanwhile: only what is
//! ours counts as left (see [`Ours`]).

use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use pfs_cli::fault::{self, POINTS};
use testkit::{NetSandbox, NetState};

use crate::report::Report;
use crate::snapshot::Snapshot;

const PART: &str = "faults";

/// A command of a chapter, the points it passes, and its normal run.
struct Case {
    binary: &'static str,
    /// The command's words (the kill point applies to this run).
    args: Vec<String>,
    points: Vec<&'static str>,
    /// The commands of a normal run, which must then succeed; the word
    /// `NEW` in them is a new pod's name each time.
    normal: Vec<Vec<String>>,
    /// Compare after the next run, not after `cleanup`: a killed `pod run`
    /// leaves an exited container, which `cleanup` keeps (its pod runs)
    /// and the next container of that name replaces.
    next_restores: bool,
}

impl Case {
    /// The points of `POINTS` but `except` (those the command never passes).
    fn points_but(except: &[&str]) -> Vec<&'static str> {
        let all = POINTS.iter().map(|(name, _)| *name);
        all.filter(|name| !except.contains(name)).collect()
    }
}

pub fn run(report: &mut Report) -> Result<()> {
    let sandbox = NetSandbox::new();
    let data_dir = sandbox.state_dir.join("data");
    // Our snapshot (crate::snapshot) reads these: it must see the state
    // and data directories the chapters use here. Put back at the end.
    let saved: Vec<_> = ["PFS_STATE_DIR", "PFS_DATA_DIR"]
        .map(|var| (var, std::env::var_os(var)))
        .into();
    std::env::set_var("PFS_STATE_DIR", &sandbox.state_dir);
    std::env::set_var("PFS_DATA_DIR", &data_dir);
    let mut faults = Faults {
        sandbox: &sandbox,
        data_dir,
        ours: Ours::default(),
        injected: 0,
        restored: 0,
        points: BTreeSet::new(),
    };
    let result = faults.all(report);
    // Every point must have killed a runtime somewhere: one that never did
    // is dead code or misnamed.
    for (point, _) in POINTS.iter().filter(|(p, _)| !faults.points.contains(p)) {
        report.failure(PART, format!("kill point {point} never killed a runtime"));
    }
    report.figure(PART, "kill points (distinct)", faults.points.len());
    report.figure(PART, "faults injected", faults.injected);
    report.figure(PART, "cleanups that restored the host", faults.restored);
    for (var, value) in saved {
        match value {
            Some(value) => std::env::set_var(var, value),
            None => std::env::remove_var(var),
        }
    }
    result
}

struct Faults<'a> {
    sandbox: &'a NetSandbox,
    data_dir: PathBuf,
    ours: Ours,
    injected: usize,
    restored: usize,
    /// The points that killed a runtime.
    points: BTreeSet<&'static str>,
}

impl Faults<'_> {
    fn all(&mut self, report: &mut Report) -> Result<()> {
        // A container run passes every point but the pod's; chapter 04
        // makes no cgroup.
        let no_cgroup = ["after-cgroup", "after-cgroup-join", "after-pause-started"];
        for (binary, except) in [
            ("ch04", &no_cgroup[..]),
            ("ch05", &["after-pause-started"]),
            ("ch07", &["after-pause-started"]),
        ] {
            let case = Case {
                binary,
                args: words(&["run", "--", "sleep", "2"]),
                points: Case::points_but(except),
                normal: vec![words(&["run", "--", "true"])],
                next_restores: false,
            };
            self.case(report, &case)?;
        }
        // `pod create` (chapter 06, and hardened by 07) starts pause
        // detached: it passes every point but the wait.
        for binary in ["ch06", "ch07"] {
            let pod = self.ours.pod_name();
            let case = Case {
                binary,
                args: words(&["pod", "create", &pod]),
                points: Case::points_but(&["while-waiting"]),
                normal: vec![
                    words(&["pod", "create", "NEW"]),
                    words(&["pod", "rm", "NEW"]),
                ],
                next_restores: false,
            };
            self.case(report, &case)?;
        }
        self.pod_run(report)?;
        self.kill_in_pod(
            report,
            "SIGKILL of a pod's pause, then pod rm and cleanup",
            Self::pause_of,
            &[&["pod", "rm", "POD"], &["cleanup"]],
        )?;
        // The pod runs on: a new container takes the name.
        self.kill_in_pod(
            report,
            "SIGKILL of a pod's container, then pod run of that name and pod rm",
            Self::container_of,
            &[
                &["pod", "run", "POD", "--name", "c", "--", "true"],
                &["pod", "rm", "POD"],
            ],
        )
    }

    /// `pod run` into a running pod (which is in the snapshots before): no
    /// lease or veth of its own, no pause to start.
    fn pod_run(&mut self, report: &mut Report) -> Result<()> {
        let pod = self.ours.pod_name();
        self.ok("ch06", &words(&["pod", "create", &pod]))?;
        let case = Case {
            binary: "ch06",
            args: words(&["pod", "run", &pod, "--name", "c", "--", "sleep", "2"]),
            points: Case::points_but(&["after-lease", "after-veth", "after-pause-started"]),
            normal: vec![words(&["pod", "run", &pod, "--name", "c", "--", "true"])],
            next_restores: true,
        };
        let result = self.case(report, &case);
        self.ok("ch06", &words(&["pod", "rm", &pod]))?;
        result
    }

    /// Every point of `case`: kill, clean up, compare, run again.
    fn case(&mut self, report: &mut Report, case: &Case) -> Result<()> {
        let cleanup = words(&["cleanup"]);
        // A normal run first: what any run makes once and keeps (the
        // bridge, root filesystems, directories) is then in the snapshots.
        self.normal_run(case.binary, &case.normal)?;
        self.ok(case.binary, &cleanup)?;
        let (host, net) = self.settled();
        for point in &case.points {
            let at = format!("{} {} at {point}", case.binary, case.args.join(" "));
            let output = self.chapter(case.binary, &case.args, Some(point))?;
            self.injected += 1;
            if output.status.signal() != Some(9) {
                report.failure(
                    PART,
                    format!(
                        "{at}: not killed ({}): the point was never reached\n{}",
                        output.status,
                        String::from_utf8_lossy(&output.stderr)
                    ),
                );
                continue;
            }
            self.points.insert(point);
            if let Err(e) = self.ok(case.binary, &cleanup) {
                report.failure(PART, format!("{at}: {e:#}"));
            }
            if !case.next_restores {
                self.compare(report, &format!("{at}, then cleanup"), &host, &net);
            }
            if let Err(e) = self.normal_run(case.binary, &case.normal) {
                report.failure(PART, format!("{at}: the next run failed: {e:#}"));
            }
            if case.next_restores {
                self.compare(report, &format!("{at}, then the next run"), &host, &net);
            }
        }
        Ok(())
    }

    /// SIGKILL, from outside, of one process of a pod that runs a
    /// container: `victim` gives its PID. Then the commands `then` (the
    /// word `POD` is the pod's name) must succeed and leave nothing.
    fn kill_in_pod(
        &mut self,
        report: &mut Report,
        what: &str,
        victim: fn(&Self, &str) -> Result<String>,
        then: &[&[&str]],
    ) -> Result<()> {
        let (host, net) = self.settled();
        let pod = self.ours.pod_name();
        self.ok("ch06", &words(&["pod", "create", &pod]))?;
        self.ok(
            "ch06",
            &words(&["pod", "run", &pod, "--name", "c", "-d", "--", "sleep", "60"]),
        )?;
        kill9_and_wait(&victim(self, &pod)?)?;
        self.injected += 1;
        for step in then {
            let step: Vec<String> = step
                .iter()
                .map(|w| {
                    if *w == "POD" {
                        pod.clone()
                    } else {
                        w.to_string()
                    }
                })
                .collect();
            if let Err(e) = self.ok("ch06", &step) {
                report.failure(PART, format!("{what}: {e:#}"));
            }
        }
        self.compare(report, what, &host, &net);
        Ok(())
    }

    /// The host PID of a pod's pause.
    fn pause_of(&self, pod: &str) -> Result<String> {
        self.pod_record(pod, "pause")
    }

    /// The host PID of the pod's container `c`, from its name registry.
    fn container_of(&self, pod: &str) -> Result<String> {
        let path = self
            .sandbox
            .state_dir
            .join("pods")
            .join(pod)
            .join("names")
            .join("c");
        let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
        Ok(text.trim().to_string())
    }

    /// The commands of a normal run; the word `NEW` is a new pod's name.
    fn normal_run(&mut self, binary: &str, normal: &[Vec<String>]) -> Result<()> {
        let pod = self.ours.pod_name();
        for command in normal {
            let command: Vec<String> = command
                .iter()
                .map(|w| if w == "NEW" { pod.clone() } else { w.clone() })
                .collect();
            self.ok(binary, &command)?;
        }
        Ok(())
    }

    /// Count a restored host, or report what is left.
    fn compare(&mut self, report: &mut Report, what: &str, host: &Snapshot, net: &NetState) {
        let left = self.left_since(host, net);
        if left.is_empty() {
            self.restored += 1;
        }
        for line in left {
            report.failure(PART, format!("{what}: left {line}"));
        }
    }

    /// Snapshots of the host and the sandbox, once the sandbox is settled.
    fn settled(&self) -> (Snapshot, NetState) {
        let net = self.sandbox.settled_snapshot();
        (Snapshot::take(), net)
    }

    /// What the host and the sandbox hold that they did not before, once
    /// settled: the kernel destroys a dead namespace's links, and finishes
    /// killing a dead runtime's container, a moment later.
    fn left_since(&self, host: &Snapshot, net: &NetState) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let mut left: Vec<String> = Snapshot::take()
                .leftovers_since(host)
                .into_iter()
                .filter(|line| self.ours.claims(line, &self.sandbox.state_dir))
                .collect();
            let now = self.sandbox.snapshot();
            let before: BTreeSet<&str> = net.0.lines().collect();
            let after: BTreeSet<&str> = now.0.lines().collect();
            left.extend(
                after
                    .difference(&before)
                    .map(|l| format!("in the sandbox: {l}")),
            );
            left.extend(
                before
                    .difference(&after)
                    .map(|l| format!("gone from the sandbox: {l}")),
            );
            if left.is_empty() || Instant::now() > deadline {
                return left;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Run a chapter's command in the sandbox (killed at `point`, if any).
    fn chapter(&mut self, binary: &str, args: &[String], point: Option<&str>) -> Result<Output> {
        let mut command = self.sandbox.command(&binary_path(binary)?);
        command
            .args(args)
            .env("PFS_DATA_DIR", &self.data_dir)
            .env_remove(fault::VAR)
            .stdin(Stdio::null());
        if let Some(point) = point {
            command.env(fault::VAR, point);
        }
        let child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("start {binary}"))?;
        self.ours.runtimes.insert(child.id().to_string());
        Ok(child.wait_with_output()?)
    }

    /// Run a chapter's command, which must succeed; its stdout.
    fn ok(&mut self, binary: &str, args: &[String]) -> Result<String> {
        let output = self.chapter(binary, args, None)?;
        if !output.status.success() {
            bail!(
                "{binary} {} failed ({}): {}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// A field of a pod's record (`key=value` lines).
    fn pod_record(&self, pod: &str, key: &str) -> Result<String> {
        let path = self.sandbox.state_dir.join("pods").join(pod).join("pod");
        let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
        let prefix = format!("{key}=");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map(str::to_string)
            .with_context(|| format!("no {key} in {}", path.display()))
    }
}

/// What tells our leftovers from those of whoever else runs containers on
/// this host meanwhile (other tests): our directories, the PIDs of the
/// runtimes we started (cgroups are named after them), our pods' names.
#[derive(Default)]
struct Ours {
    runtimes: BTreeSet<String>,
    pods: usize,
}

impl Ours {
    /// A new pod name, ours (its cgroup is `NAME-ID`).
    fn pod_name(&mut self) -> String {
        self.pods += 1;
        format!("fault{}-{}", std::process::id(), self.pods)
    }

    fn claims(&self, line: &str, root: &Path) -> bool {
        let root = root.to_string_lossy();
        if line.contains(&*root) {
            return true;
        }
        if let Some(path) = line.strip_prefix("cgroup ") {
            let pod = format!("fault{}-", std::process::id());
            return path.contains(&pod)
                || Path::new(path)
                    .iter()
                    .any(|part| self.runtimes.contains(&*part.to_string_lossy()));
        }
        if let Some(rest) = line.strip_prefix("process ") {
            // Ours if it runs with our state directory (a runtime) or on a
            // root filesystem of ours (a container: its `/` is an overlay
            // whose options name our data directory).
            let pid = rest.split(' ').next().unwrap_or_default();
            let read = |file: &str| {
                let text = std::fs::read(format!("/proc/{pid}/{file}")).unwrap_or_default();
                String::from_utf8_lossy(&text).into_owned()
            };
            let root_mount = read("mountinfo")
                .lines()
                .find(|l| l.split(' ').nth(4) == Some("/"))
                .map(str::to_string)
                .unwrap_or_default();
            return read("environ").contains(&*root) || root_mount.contains(&*root);
        }
        line.starts_with("host link")
    }
}

/// `kill -9 PID`, then wait until it is gone (its parent, init, collected
/// it), as a user would before the next command.
fn kill9_and_wait(pid: &str) -> Result<()> {
    let pid: i32 = pid
        .trim()
        .parse()
        .with_context(|| format!("a PID: {pid:?}"))?;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .with_context(|| format!("kill -9 {pid}"))?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while Path::new(&format!("/proc/{pid}")).exists() {
        if Instant::now() > deadline {
            bail!("{pid} still there 5 s after SIGKILL");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// A chapter's binary, built next to this one (same target directory).
fn binary_path(name: &str) -> Result<String> {
    let exe = std::env::current_exe().context("where is pfs-stress")?;
    let path = exe.with_file_name(name);
    if !path.exists() {
        bail!(
            "{} is not built: run `cargo build --workspace` first",
            path.display()
        );
    }
    Ok(path.to_string_lossy().into_owned())
}

fn words(list: &[&str]) -> Vec<String> {
    list.iter().map(|w| w.to_string()).collect()
}
