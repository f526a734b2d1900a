//! Chapter 05's limits against the real kernel, on whatever cgroup version
//! the machine runs (v1/hybrid on the CI host, v2 in scripts/vm-test.sh).
//! Run as root. `--net none` keeps the host's network out of it.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use testkit::{
    error_line, require_root, run_checking_host, stderr, stdout, test_data_dir, HostState, Running,
};

const CH05: &str = env!("CARGO_BIN_EXE_ch05");

/// `ch05 run --net none ARGS`, checking the host and that no group is left.
fn ch05_run(args: &[&str]) -> std::process::Output {
    test_data_dir();
    let output = run_checking_host(CH05, &[&["run", "--net", "none"], args].concat());
    assert_no_stale_group();
    output
}

/// Our groups in every hierarchy, named after the `ch05` process's PID.
fn our_groups() -> Vec<PathBuf> {
    let mut parents = vec![PathBuf::from("/sys/fs/cgroup/pods-from-scratch")];
    for controller in ["memory", "pids", "cpu", "cpuacct"] {
        parents.push(
            Path::new("/sys/fs/cgroup")
                .join(controller)
                .join("pods-from-scratch"),
        );
    }
    parents
        .iter()
        .filter_map(|p| std::fs::read_dir(p).ok())
        .flat_map(|entries| entries.flatten().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect()
}

/// Other tests may be running containers: a group whose `ch05` is gone is a leftover.
fn assert_no_stale_group() {
    let stale: Vec<_> = our_groups()
        .into_iter()
        .filter(|g| !Path::new("/proc").join(g.file_name().unwrap()).exists())
        .collect();
    assert!(stale.is_empty(), "groups left behind: {stale:?}");
}

/// The group of a running `ch05` process that holds `controller`'s files:
/// v2's one group, or v1's in that controller's hierarchy.
fn group_of(ch05_pid: u32, controller: &str) -> PathBuf {
    let v2 = Path::new("/sys/fs/cgroup/pods-from-scratch").join(ch05_pid.to_string());
    if v2.exists() {
        v2
    } else {
        Path::new("/sys/fs/cgroup")
            .join(controller)
            .join("pods-from-scratch")
            .join(ch05_pid.to_string())
    }
}

#[test]
fn a_memory_hog_is_killed_and_reported() {
    let hog = "a=aaaaaaaaaaaaaaaa; while :; do a=\"$a$a\"; done";
    let output = ch05_run(&["--memory", "32M", "--", "sh", "-c", hog]);
    assert_eq!(output.status.code(), Some(137), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("killed: out of memory (limit 32M)"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_fork_bomb_cannot_pass_the_pids_limit() {
    require_root();
    test_data_dir();
    // busybox sh gives up when a fork fails: the bomb runs in a child shell,
    // whose `sleep`s stay behind in the container while PID 1 reports.
    let script = "sh -c 'for i in $(seq 60); do sleep 30 & done' 2>/tmp/err; echo ready; \
                  read -r e </tmp/err; echo \"$e\"; read x";
    let mut container = Running::start(
        CH05,
        &[
            "run", "--net", "none", "--pids", "32", "--", "sh", "-c", script,
        ],
    );
    let seen = container.read_line();
    assert!(
        seen.contains("fork"),
        "the container should see fork fail, saw: {seen}"
    );
    let group = group_of(container.child.id(), "pids");
    let current: u64 = std::fs::read_to_string(group.join("pids.current"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(current <= 32, "{current} tasks in a group limited to 32");
    assert!(
        current >= 30,
        "only {current} tasks: the test did not reach the limit"
    );
    assert_eq!(container.finish(), Some(0));
    assert!(!group.exists(), "the group is still there after exit");
    assert_no_stale_group();
}

#[test]
fn half_a_cpu_gives_about_half_the_cpu_time() {
    let busy = "timeout 2 sh -c 'while :; do :; done'; true";
    let started = std::time::Instant::now();
    let output = ch05_run(&["--cpus", "0.5", "--stats", "--", "sh", "-c", busy]);
    // The loop runs 2 s of this machine's time, or longer on a slow
    // (emulated) one: half of what really passed is the most it may get.
    let wall = started.elapsed().as_secs_f64().max(2.0);
    let report = stderr(&output);
    let seconds: f64 = report
        .split("CPU time ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no CPU time in: {report}"));
    let (least, most) = (0.7 * 0.5 * 2.0, 1.3 * 0.5 * wall);
    assert!(
        (least..=most).contains(&seconds),
        "{seconds} s of CPU in {wall:.2} s at 0.5 CPU (expected {least:.2} to {most:.2}): {report}"
    );
}

#[test]
fn the_container_sees_its_own_group_as_root() {
    let output = ch05_run(&["--", "cat", "/proc/self/cgroup"]);
    let text = stdout(&output);
    assert!(!text.is_empty(), "{}", stderr(&output));
    for line in text.lines() {
        assert!(
            line.ends_with(":/"),
            "not the root of its cgroup namespace: {line}"
        );
    }
}

#[test]
fn stats_report_what_the_group_used() {
    require_root();
    test_data_dir();
    let before = HostState::capture();
    // The shell holds a megabyte or two (seq's output) while it waits.
    let script = "x=$(seq 200000); echo ready; read y";
    let mut command = Command::new(CH05);
    command
        .args(["run", "--net", "none", "--stats", "--", "sh", "-c", script])
        .stderr(Stdio::piped());
    let mut container = Running::start_command(command);
    // What this kernel counts for the group, v2 file or v1 file: those
    // counters must be numbers in the report, the others "n/a".
    let pid = container.child.id();
    let kept = |controller: &str, v2: &str, v1: &str| {
        let group = group_of(pid, controller);
        group.join(v2).exists() || group.join(v1).exists()
    };
    let counters = [
        (
            "peak memory",
            kept("memory", "memory.peak", "memory.max_usage_in_bytes"),
        ),
        ("CPU time", kept("cpuacct", "cpu.stat", "cpuacct.usage")),
        ("peak tasks", kept("pids", "pids.peak", "pids.peak")),
    ];
    let mut report = String::new();
    let mut errors = container.child.stderr.take().expect("stderr");
    assert_eq!(container.finish(), Some(0));
    errors.read_to_string(&mut report).expect("read stderr");
    HostState::capture().assert_unchanged_since(&before);
    assert_no_stale_group();

    let line = report
        .lines()
        .find_map(|l| l.strip_prefix("ch05: stats: "))
        .unwrap_or_else(|| panic!("no stats line in: {report}"));
    for (counter, kept) in counters {
        let value = line
            .split(&format!("{counter} "))
            .nth(1)
            .and_then(|rest| rest.split([' ', ',']).next())
            .unwrap_or_else(|| panic!("no {counter} in: {line}"));
        if !kept {
            assert_eq!(
                value, "n/a",
                "{counter}: the kernel does not count it: {line}"
            );
            continue;
        }
        let number: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("{counter} is not a number: {line}"));
        // (CPU time may round to 0.00 s; memory and tasks may not be 0.)
        assert!(
            number > 0.0 || counter == "CPU time",
            "{counter} is 0: {line}"
        );
    }
}

#[test]
fn bad_limits_are_one_line_and_nothing_is_created() {
    // (ch05_run fails if a group of the refused run was left behind.)
    for args in [["--memory", "12X"], ["--pids", "0"], ["--cpus", "0"]] {
        let output = ch05_run(&[&args[..], &["--", "echo", "ran"]].concat());
        let message = error_line(&output, 125);
        assert_eq!(stdout(&output), "", "the command must not run");
        assert!(message.starts_with("ch05: invalid"), "{message}");
    }
}
