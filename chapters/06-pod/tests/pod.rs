//! Chapter 06's pods against the real kernel: run as root
//! (`sudo scripts/test.sh`).
//!
//! Safety: every test runs `ch06` inside a throwaway network namespace that
//! plays "the host" ([`NetSandbox`]), with state and data directories of
//! its own; traffic goes only to 127.0.0.1 or to addresses in namespaces
//! the test made. Each test checks, at its end, that nothing is left:
//! no process, bind mount, namespace file, veth, lease, cgroup or state.
//!
//! The tests take turns (one lock): several assert how long something
//! takes, which other tests running at the same time would disturb.

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use pfs_state::pods::Pod;
use pfs_state::process::{is_running, same_file};
use testkit::{namespace_of, stderr, stdout, NetSandbox, NetState, Running};

const CH06: &str = env!("CARGO_BIN_EXE_ch06");

/// A shell line that prints the container's eth0 address, e.g. `10.200.0.2`.
const PRINT_ADDRESS: &str = "ip -o -4 addr show dev eth0 | awk '{print $4}' | cut -d/ -f1";

static TURN: Mutex<()> = Mutex::new(());

/// A sandbox host for one test, and what it looked like before.
struct Host {
    sandbox: NetSandbox,
    before: NetState,
    _turn: std::sync::MutexGuard<'static, ()>,
}

impl Host {
    fn new() -> Host {
        let turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
        let sandbox = NetSandbox::new();
        let before = sandbox.snapshot();
        Host {
            sandbox,
            before,
            _turn: turn,
        }
    }

    fn state_dir(&self) -> &Path {
        &self.sandbox.state_dir
    }

    fn data_dir(&self) -> PathBuf {
        self.sandbox.state_dir.join("data")
    }

    /// `ch06 ARGS` in the sandbox, with its data directory.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = self.sandbox.command(CH06);
        command.args(args).env("PFS_DATA_DIR", self.data_dir());
        command
    }

    /// Run `ch06 ARGS` (stdin closed, output captured).
    fn ch06(&self, args: &[&str]) -> Output {
        self.command(args)
            .stdin(Stdio::null())
            .output()
            .expect("run ch06")
    }

    /// Run `ch06 ARGS`, which must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let output = self.ch06(args);
        assert!(
            output.status.success(),
            "ch06 {args:?} failed ({}): {}{}",
            output.status,
            stdout(&output),
            stderr(&output)
        );
        stdout(&output)
    }

    /// The record of a pod, as `ch06` wrote it.
    fn pod(&self, name: &str) -> Pod {
        let path = self.state_dir().join("pods").join(name).join("pod");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        Pod::parse(name, &text).expect("a pod record")
    }

    /// The host PID of a pod's pause process.
    fn pause(&self, name: &str) -> u32 {
        self.pod(name).pause.expect("the pod has a pause")
    }

    /// The host PID of a container, from the pod's name registry.
    fn container(&self, pod: &str, name: &str) -> u32 {
        let path = self
            .state_dir()
            .join("pods")
            .join(pod)
            .join("names")
            .join(name);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        text.trim().parse().expect("a PID")
    }

    /// Everything a pod made, looked up now, to check it is gone later.
    fn traces(&self, name: &str) -> Traces {
        let pod = self.pod(name);
        let names = self.state_dir().join("pods").join(name).join("names");
        let mut processes: Vec<u32> = pod.pause.into_iter().collect();
        if let Ok(entries) = std::fs::read_dir(names) {
            for entry in entries.flatten() {
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                processes.extend(text.trim().parse::<u32>());
            }
        }
        Traces {
            processes,
            groups: cgroup_dirs(&pod),
            veth: pod.veth(),
        }
    }

    /// `pod rm OPTIONS` each of `pods`, then [`Host::assert_nothing_left`]
    /// of them.
    fn rm_leaving_nothing(self, pods: &[&str], options: &[&str]) {
        let traces: Vec<Traces> = pods.iter().map(|pod| self.traces(pod)).collect();
        for pod in pods {
            self.ok(&[&["pod", "rm", pod], options].concat());
        }
        self.assert_nothing_left(&traces);
    }

    /// No pod is left, nor anything of the pods whose traces are given;
    /// after `ch06 cleanup --all`, the sandbox's network is as it was.
    fn assert_nothing_left(self, traces: &[Traces]) {
        for trace in traces {
            for &pid in &trace.processes {
                assert!(!is_running(pid), "process {pid} still runs");
            }
            for group in &trace.groups {
                assert!(!group.exists(), "cgroup {} is left", group.display());
            }
            self.sandbox.assert_links_gone(&trace.veth);
        }
        let mounts = mounts_under(self.state_dir());
        assert!(mounts.is_empty(), "mounts left: {mounts:?}");
        for dir in [self.state_dir().join("pods"), self.data_dir().join("pods")] {
            let left: Vec<_> = std::fs::read_dir(&dir)
                .map(|d| d.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
            assert!(left.is_empty(), "left in {}: {left:?}", dir.display());
        }
        let leases =
            std::fs::read_to_string(self.state_dir().join("leases/pfs0")).unwrap_or_default();
        assert_eq!(leases, "", "leases are left");
        self.ok(&["cleanup", "--all"]);
        self.sandbox.snapshot().assert_unchanged_since(&self.before);
    }
}

impl Drop for Host {
    /// A failed test leaves no pod running behind it.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        if let Ok(pods) = std::fs::read_dir(self.state_dir().join("pods")) {
            for pod in pods.flatten() {
                let name = pod.file_name().to_string_lossy().into_owned();
                let _ = self.ch06(&["pod", "rm", &name, "--timeout", "0"]);
            }
        }
        let _ = self.ch06(&["cleanup", "--all"]);
    }
}

/// What a pod made that lives outside its state directory.
struct Traces {
    processes: Vec<u32>,
    groups: Vec<PathBuf>,
    veth: String,
}

/// The pod's cgroup in every hierarchy that has it.
fn cgroup_dirs(pod: &Pod) -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    let mut hierarchies = vec![root.to_path_buf()];
    hierarchies.extend(
        std::fs::read_dir(root)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir()),
    );
    hierarchies
        .into_iter()
        .map(|h| h.join(pod.cgroup()))
        .filter(|g| g.exists())
        .collect()
}

/// Mount points at or below `dir`, from our mount table.
fn mounts_under(dir: &Path) -> Vec<String> {
    let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let dir = dir.to_string_lossy().into_owned();
    let below = format!("{dir}/");
    table
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .filter(|point| *point == dir || point.starts_with(&below))
        .map(str::to_string)
        .collect()
}

/// The command of every process in the PID namespace of `pid`, with its
/// state letter: `[("pause", 'S'), ("sleep", 'Z')]`.
fn processes_in_pid_namespace_of(pid: u32) -> Vec<(String, char)> {
    let ns = namespace_of(&pid.to_string(), "pid");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let same = std::fs::read_link(entry.path().join("ns/pid"))
            .is_ok_and(|link| link.to_string_lossy() == ns);
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        if let (true, Some((head, rest))) = (same, stat.rsplit_once(") ")) {
            let comm = head.split_once(" (").map_or("", |(_, c)| c).to_string();
            found.push((comm, rest.chars().next().unwrap_or('?')));
        }
    }
    found
}

/// Assert a failed command said one line, starting with `ch06: `.
fn assert_one_line_error(output: &Output, what: &str) -> String {
    assert!(!output.status.success(), "{what}: should fail");
    let message = stderr(output);
    assert_eq!(message.lines().count(), 1, "{what}: {message}");
    assert!(message.starts_with("ch06: "), "{what}: {message}");
    message
}

/// Retry a client script for a while: the server may still be starting.
fn retried(script: &str) -> String {
    format!("for i in $(seq 50); do {script} && exit 0; sleep 0.1; done; exit 1")
}

// ---------------------------------------------------------------------------

#[test]
fn two_containers_of_a_pod_share_one_address_and_localhost() {
    let host = Host::new();
    host.ok(&["pod", "create", "web"]);
    let server = format!(
        "{PRINT_ADDRESS}; mkdir /www && echo hello-over-localhost > /www/index.html \
         && exec httpd -f -p 127.0.0.1:8080 -h /www"
    );
    assert_eq!(
        host.ok(&["pod", "run", "web", "--name", "server", "-d", "--", "sh", "-c", &server]),
        "server\n"
    );
    let client = format!(
        "{PRINT_ADDRESS}; {}",
        retried("wget -qO- http://127.0.0.1:8080/")
    );
    let seen = host.ok(&[
        "pod", "run", "web", "--name", "client", "--", "sh", "-c", &client,
    ]);
    let lines: Vec<&str> = seen.lines().collect();
    assert_eq!(lines.get(1), Some(&"hello-over-localhost"), "{seen}");

    let server_log = host.ok(&["pod", "logs", "web", "server"]);
    let address = server_log.lines().next().unwrap_or_default().to_string();
    assert!(address.starts_with("10.200.0."), "{server_log}");
    assert_eq!(lines[0], address, "two containers, one address");
    assert_eq!(host.pod("web").address.unwrap().to_string(), address);

    // The server listens on the pod's loopback only: the host, on the
    // bridge, cannot reach it at the pod's address.
    let from_host = host
        .sandbox
        .run("busybox", &["nc", "-w", "1", &address, "8080"]);
    assert!(!from_host.status.success(), "reached from the host");
    // (Refused at the pod's address: not a wrong address, nor a timeout,
    // nor a crash: busybox's wget crashed here, which passed unnoticed.)
    let said = stderr(&from_host);
    assert!(said.contains("Connection refused"), "{said}");

    host.rm_leaving_nothing(&["web"], &[]);
}

#[test]
fn two_pods_get_two_addresses_and_reach_each_other() {
    let host = Host::new();
    host.ok(&["pod", "create", "a"]);
    host.ok(&["pod", "create", "b"]);
    let address_a = host.pod("a").address.unwrap().to_string();
    let address_b = host.pod("b").address.unwrap().to_string();
    assert_ne!(address_a, address_b, "two pods, two addresses");

    let server =
        "mkdir /www && echo hello-from-pod-a > /www/index.html && exec httpd -f -p 8080 -h /www";
    host.ok(&[
        "pod", "run", "a", "--name", "server", "-d", "--", "sh", "-c", server,
    ]);
    let client = retried(&format!("wget -qO- http://{address_a}:8080/"));
    let seen = host.ok(&[
        "pod", "run", "b", "--name", "client", "--", "sh", "-c", &client,
    ]);
    assert_eq!(seen, "hello-from-pod-a\n");
    let own = host.ok(&[
        "pod",
        "run",
        "b",
        "--name",
        "client",
        "--",
        "sh",
        "-c",
        PRINT_ADDRESS,
    ]);
    assert_eq!(own.trim(), address_b);

    host.rm_leaving_nothing(&["a", "b"], &[]);
}

#[test]
fn with_a_shared_pid_namespace_pause_is_pid_1_for_every_container() {
    let host = Host::new();
    host.ok(&["pod", "create", "shared", "--share-pid"]);
    let pause = host.pause("shared");
    host.ok(&[
        "pod", "run", "shared", "--name", "a", "-d", "--", "sleep", "60",
    ]);
    let a = host.container("shared", "a");
    assert_eq!(
        namespace_of(&a.to_string(), "pid"),
        namespace_of(&pause.to_string(), "pid"),
        "a is in pause's PID namespace"
    );
    let seen = host.ok(&[
        "pod",
        "exec",
        "shared",
        "a",
        "--",
        "sh",
        "-c",
        "cat /proc/1/cmdline; echo",
    ]);
    assert_eq!(seen.trim_end_matches(['\n', '\0']), "/pause");
    let seen = host.ok(&[
        "pod",
        "run",
        "shared",
        "--name",
        "b",
        "--",
        "sh",
        "-c",
        "cat /proc/1/cmdline; echo; ps -o comm | grep -c sleep",
    ]);
    let lines: Vec<&str> = seen.lines().collect();
    assert_eq!(lines[0].trim_end_matches('\0'), "/pause", "{seen}");
    assert_eq!(lines[1], "1", "b sees a's sleep: {seen}");

    host.rm_leaving_nothing(&["shared"], &["--timeout", "1"]);
}

#[test]
fn with_a_shared_pid_namespace_100_orphans_leave_no_zombie() {
    let host = Host::new();
    host.ok(&["pod", "create", "reaper", "--share-pid"]);
    let pause = host.pause("reaper");
    // Each subshell starts a `usleep` and exits: the usleep is an orphan,
    // and its new parent is PID 1 of the namespace, pause. (A container
    // that runs on: when a container ends, its cgroup is removed, which
    // kills what is left in it, orphans included.)
    let orphans = "for i in $(seq 100); do (usleep 3000000 &); done; exec sleep 60";
    host.ok(&[
        "pod", "run", "reaper", "--name", "orphans", "-d", "--", "sh", "-c", orphans,
    ]);
    let main = host.container("reaper", "orphans");
    let usleeps = |state: fn(char) -> bool| {
        processes_in_pid_namespace_of(pause)
            .into_iter()
            .filter(|(comm, s)| comm == "usleep" && state(*s))
            .count()
    };
    let children = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default()
    };
    // Every one of the 100 is adopted by pause, while it sleeps ...
    let mut adopted = std::collections::HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        adopted.extend(children(pause).split_whitespace().map(str::to_string));
        let loop_done = std::fs::read_to_string(format!("/proc/{main}/comm"))
            .is_ok_and(|comm| comm == "sleep\n");
        if loop_done && usleeps(|s| s != 'Z') == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the orphans did not end");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(adopted.len(), 100, "pause adopted {} of 100", adopted.len());
    // ... they ended, and within a second of the last one, no zombie is left.
    let ended = Instant::now();
    loop {
        let processes = processes_in_pid_namespace_of(pause);
        let zombies: Vec<_> = processes.iter().filter(|(_, s)| *s == 'Z').collect();
        if zombies.is_empty() {
            break;
        }
        assert!(
            ended.elapsed() < Duration::from_secs(1),
            "zombies left a second after the orphans ended: {zombies:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(children(pause), "", "pause collected every child");
    // ... and still runs: a pause that died would have taken the whole
    // namespace with it, zombies and all, and left nothing to see here.
    assert!(is_running(pause), "pause is gone");

    host.rm_leaving_nothing(&["reaper"], &[]);
}

#[test]
fn without_a_shared_pid_namespace_each_container_has_its_own_pid_1() {
    let host = Host::new();
    host.ok(&["pod", "create", "apart"]);
    let pause = host.pause("apart");
    host.ok(&[
        "pod", "run", "apart", "--name", "a", "-d", "--", "sleep", "60",
    ]);
    let a = host.container("apart", "a");
    let pid_ns = |pid: u32| namespace_of(&pid.to_string(), "pid");
    assert_ne!(pid_ns(a), pid_ns(pause));
    let seen = host.ok(&[
        "pod",
        "run",
        "apart",
        "--name",
        "b",
        "--",
        "sh",
        "-c",
        "echo $$; ps -o comm | grep -c -e sleep -e pause; true",
    ]);
    assert_eq!(seen, "1\n0\n", "b is PID 1 and sees neither a nor pause");
    let seen = host.ok(&["pod", "exec", "apart", "a", "--", "cat", "/proc/1/cmdline"]);
    assert_eq!(seen, "sleep\x0060\x00", "a's PID 1 is its own command");
    // Yet the network is the pod's.
    assert_eq!(
        namespace_of(&a.to_string(), "net"),
        namespace_of(&pause.to_string(), "net")
    );

    host.rm_leaving_nothing(&["apart"], &["--timeout", "1"]);
}

#[test]
fn pod_rm_kills_a_container_that_ignores_sigterm_after_the_timeout_and_leaves_nothing() {
    for share_pid in [true, false] {
        let host = Host::new();
        // Two pods alike, but one has a container deaf to SIGTERM.
        for pod in ["quick", "stubborn"] {
            let mut create = vec!["pod", "create", pod];
            if share_pid {
                create.push("--share-pid");
            }
            host.ok(&create);
            host.ok(&[
                "pod", "run", pod, "--name", "polite", "-d", "--", "sleep", "60",
            ]);
        }
        let deaf = "trap '' TERM; echo deaf; while :; do sleep 0.1; done";
        host.ok(&[
            "pod", "run", "stubborn", "--name", "deaf", "-d", "--", "sh", "-c", deaf,
        ]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while host.ok(&["pod", "logs", "stubborn", "deaf"]) != "deaf\n" {
            assert!(
                Instant::now() < deadline,
                "the deaf container did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let traces = [host.traces("quick"), host.traces("stubborn")];
        assert_eq!(traces[1].processes.len(), 3, "pause and two containers");
        let namespaces = if share_pid { 4 } else { 3 };
        assert_eq!(mounts_under(host.state_dir()).len(), 2 * namespaces);

        // What `pod rm` costs by itself on this machine (in an emulated VM,
        // seconds), then the same with a container that waits for SIGKILL.
        let started = Instant::now();
        host.ok(&["pod", "rm", "quick", "--timeout", "1"]);
        let overhead = started.elapsed();
        let started = Instant::now();
        host.ok(&["pod", "rm", "stubborn", "--timeout", "1"]);
        let took = started.elapsed();
        assert!(
            took >= Duration::from_secs(1),
            "the SIGTERM-deaf container did not get its timeout: {took:?}"
        );
        assert!(
            took < Duration::from_secs(2) + overhead,
            "pod rm --timeout 1 took {took:?}, more than the timeout and a second \
             beyond {overhead:?} (share_pid: {share_pid})"
        );
        host.assert_nothing_left(&traces);
    }
}

#[test]
fn the_pod_outlives_the_ch06_that_created_it() {
    let host = Host::new();
    // SIGKILL `pod create` the moment pause runs (its --explain line about
    // handing the address over to pause comes next): nothing of ch06's
    // death may reach the pod.
    let mut create = host
        .command(&["--explain", "pod", "create", "orphan"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut explained = BufReader::new(create.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("give pfsh") {
        line.clear();
        assert!(explained.read_line(&mut line).unwrap() > 0, "no adopt step");
    }
    create.kill().unwrap();
    create.wait().unwrap();

    // Pause runs on: find it by the pod's bind-mounted network namespace.
    let ns = host.state_dir().join("pods/orphan/ns/net");
    std::thread::sleep(Duration::from_millis(200));
    let pause = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .find(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c == "pause\n")
                && same_file(Path::new(&format!("/proc/{pid}/ns/net")), &ns)
        })
        .expect("pause survived its creator");
    assert!(is_running(pause));
    let sid = nix::unistd::getsid(Some(Pid::from_raw(pause as i32))).unwrap();
    assert_eq!(
        sid.as_raw() as u32,
        pause,
        "pause leads a session of its own"
    );
    let mut traces = host.traces("orphan");
    traces.processes.push(pause);

    host.ok(&["pod", "rm", "orphan"]);
    host.assert_nothing_left(&[traces]);
}

#[test]
fn a_killed_pod_run_does_not_kill_the_pod() {
    let host = Host::new();
    host.ok(&["pod", "create", "sturdy"]);
    let pause = host.pause("sturdy");
    // A foreground container dies with its ch06 (chapter 01's rule); the
    // pod does not.
    let command = host.command(&[
        "pod",
        "run",
        "sturdy",
        "--name",
        "fg",
        "--",
        "sh",
        "-c",
        "echo ready; sleep 60",
    ]);
    let mut run = Running::start_command(command);
    let fg = host.container("sturdy", "fg");
    run.child.kill().unwrap();
    run.child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while is_running(fg) {
        assert!(Instant::now() < deadline, "the container outlived its ch06");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(is_running(pause), "the pod died with a ch06");
    let seen = host.ok(&["pod", "run", "sturdy", "--name", "again", "--", "hostname"]);
    assert_eq!(seen, "sturdy\n");
    // The killed run's name is taken over by a new container.
    host.ok(&["pod", "run", "sturdy", "--name", "fg", "--", "true"]);

    host.rm_leaving_nothing(&["sturdy"], &[]);
}

/// A `pod run` killed (with the test-only hook, `PFS_FAULT_AT`) once it
/// has reserved the container's name: the name is stale at once, and the
/// next container of that name starts. (It was "already in use" for a
/// minute, found by `pfs-stress faults`.)
#[test]
fn a_name_reserved_by_a_killed_pod_run_is_taken_over_at_once() {
    let host = Host::new();
    host.ok(&["pod", "create", "faulty"]);
    let killed = host
        .command(&["pod", "run", "faulty", "--name", "c", "--", "true"])
        .env("PFS_FAULT_AT", "after-prepare")
        .stdin(Stdio::null())
        .output()
        .expect("run ch06");
    assert_eq!(killed.status.signal(), Some(9), "{}", stderr(&killed));
    host.ok(&["pod", "run", "faulty", "--name", "c", "--", "true"]);
    host.rm_leaving_nothing(&["faulty"], &[]);
}

#[test]
fn after_pause_is_killed_cleanup_removes_the_rest() {
    let host = Host::new();
    host.ok(&["pod", "create", "doomed"]);
    host.ok(&[
        "pod", "run", "doomed", "--name", "a", "-d", "--", "sleep", "60",
    ]);
    let traces = host.traces("doomed");
    let pause = host.pause("doomed");
    kill(Pid::from_raw(pause as i32), Signal::SIGKILL).unwrap();
    std::thread::sleep(Duration::from_millis(100));

    let listing = host.ok(&["pod", "ls"]);
    assert!(listing.contains("dead"), "{listing}");
    let output = host.ch06(&["pod", "run", "doomed", "--name", "b", "--", "true"]);
    let message = assert_one_line_error(&output, "run into a dead pod");
    assert!(message.contains("not running"), "{message}");

    let said = host.ok(&["cleanup"]);
    assert!(said.contains("removed pod doomed"), "{said}");
    host.assert_nothing_left(&[traces]);
}

#[test]
fn bad_input_is_one_line_and_a_non_zero_exit() {
    let host = Host::new();
    host.ok(&["pod", "create", "taken"]);
    host.ok(&["pod", "create", "halted"]);
    host.ok(&["pod", "stop", "halted"]);
    let long = "x".repeat(65);
    let cases: [(&str, &[&str], &str); 14] = [
        (
            "duplicate pod",
            &["pod", "create", "taken"],
            "already exists",
        ),
        (
            "unknown pod: run",
            &["pod", "run", "nope", "--name", "c", "--", "true"],
            "no pod named",
        ),
        (
            "unknown pod: exec",
            &["pod", "exec", "nope", "c", "--", "true"],
            "no pod named",
        ),
        ("unknown pod: rm", &["pod", "rm", "nope"], "no pod named"),
        ("unknown pod: ps", &["pod", "ps", "nope"], "no pod named"),
        (
            "unknown container: exec",
            &["pod", "exec", "taken", "ghost", "--", "true"],
            "no container named",
        ),
        (
            "unknown container: logs",
            &["pod", "logs", "taken", "ghost"],
            "no container named",
        ),
        (
            "run into a stopped pod",
            &["pod", "run", "halted", "--name", "c", "--", "true"],
            "not running: stopped",
        ),
        (
            "slash in a pod name",
            &["pod", "create", "a/b"],
            "invalid pod name",
        ),
        (
            "long pod name",
            &["pod", "create", &long],
            "invalid pod name",
        ),
        (
            "slash in a container name",
            &["pod", "run", "taken", "--name", "a/b", "--", "true"],
            "invalid container name",
        ),
        (
            "long container name",
            &["pod", "run", "taken", "--name", &long, "--", "true"],
            "invalid container name",
        ),
        (
            "no command",
            &["pod", "run", "taken", "--name", "c"],
            "missing command",
        ),
        (
            "bad limit",
            &["pod", "create", "limited", "--memory", "12X"],
            "invalid size",
        ),
    ];
    for (what, args, expected) in cases {
        let output = host.ch06(args);
        let message = assert_one_line_error(&output, what);
        assert!(message.contains(expected), "{what}: {message}");
        assert_eq!(stdout(&output), "", "{what}");
    }
    let pods: Vec<_> = std::fs::read_dir(host.state_dir().join("pods"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(pods.len(), 2, "only the two good pods: {pods:?}");
    let containers = host.state_dir().join("pods/taken/names");
    let left = std::fs::read_dir(containers)
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(left, 0, "a bad run registered a container");

    host.rm_leaving_nothing(&["taken", "halted"], &[]);
}

#[test]
fn exec_joins_the_container_mount_namespace_included() {
    let host = Host::new();
    host.ok(&["pod", "create", "box", "--hostname", "box.example"]);
    let setup = "echo inside > /tmp/marker; exec sleep 60";
    host.ok(&[
        "pod", "run", "box", "--name", "a", "-d", "--", "sh", "-c", setup,
    ]);
    let a = host.container("box", "a");
    let seen = host.ok(&[
        "pod",
        "exec",
        "box",
        "a",
        "--",
        "sh",
        "-c",
        "cat /tmp/marker; hostname; cat /etc/os-release | grep ^ID=",
    ]);
    assert_eq!(seen, "inside\nbox.example\nID=busybox\n");
    // The exec'd command was in a's cgroup, hence its cgroup namespace's root.
    let seen = host.ok(&["pod", "exec", "box", "a", "--", "cat", "/proc/self/cgroup"]);
    assert!(!seen.is_empty(), "no cgroup listed");
    assert!(seen.lines().all(|l| l.ends_with(":/")), "{seen}");
    let listing = host.ok(&["pod", "ps", "box"]);
    assert!(
        listing.contains(&format!("a                {a:<8} running  sleep 60")),
        "{listing}"
    );

    host.rm_leaving_nothing(&["box"], &["--timeout", "1"]);
}

#[test]
fn pod_run_and_exec_take_env_workdir_and_user() {
    let host = Host::new();
    host.ok(&["pod", "create", "box"]);
    let script = "echo $MODE $HOSTNAME $(pwd) $(id -u):$(id -g)";
    let seen = host.ok(&[
        "pod", "run", "box", "--name", "once", "-e", "MODE=run", "-w", "/srv", "-u", "65534", "--",
        "sh", "-c", script,
    ]);
    assert_eq!(seen, "run box /srv 65534:65534\n");
    host.ok(&[
        "pod", "run", "box", "--name", "a", "-d", "-e", "MODE=app", "--", "sleep", "60",
    ]);
    // exec starts from the container's environment, as `docker exec` does.
    let seen = host.ok(&[
        "pod",
        "exec",
        "box",
        "a",
        "-e",
        "EXTRA=1",
        "-w",
        "/tmp",
        "-u",
        "65534:65534",
        "--",
        "sh",
        "-c",
        "echo $MODE $EXTRA $(pwd) $(id -u)",
    ]);
    assert_eq!(seen, "app 1 /tmp 65534\n");
    host.rm_leaving_nothing(&["box"], &["--timeout", "1"]);
}

#[test]
fn the_pods_limits_hold_its_containers_together() {
    let host = Host::new();
    host.ok(&["pod", "create", "small", "--pids", "20", "--memory", "64M"]);
    host.ok(&[
        "pod", "run", "small", "--name", "a", "-d", "--", "sleep", "60",
    ]);
    let a = host.container("small", "a");
    let pod = host.pod("small");
    // a's group is inside the pod's (v1: one line per hierarchy; v2: one).
    let groups = std::fs::read_to_string(format!("/proc/{a}/cgroup")).unwrap();
    let inside = format!("{}/a", pod.cgroup().display());
    assert!(
        groups.lines().any(|l| l.ends_with(&inside)),
        "{inside} not in:\n{groups}"
    );
    // 20 processes for the whole pod, whichever container makes them: pause
    // and a's 16 leave room for 3 more, so b cannot start its 10 sleeps.
    let pids = cgroup_dirs(&pod)
        .into_iter()
        .map(|g| g.join("pids.current"))
        .find(|f| f.exists())
        .expect("the pod's pids.current");
    let current = || -> u32 {
        std::fs::read_to_string(&pids)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    host.ok(&[
        "pod",
        "run",
        "small",
        "--name",
        "a15",
        "-d",
        "--",
        "sh",
        "-c",
        "for i in $(seq 15); do sleep 60 & done; exec sleep 60",
    ]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while current() < 18 {
        assert!(Instant::now() < deadline, "a15 did not start its sleeps");
        std::thread::sleep(Duration::from_millis(20));
    }
    host.ok(&[
        "pod",
        "run",
        "small",
        "--name",
        "b10",
        "-d",
        "--",
        "sh",
        "-c",
        "for i in $(seq 10); do sleep 60 & done; exec sleep 60",
    ]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !host
        .ok(&["pod", "logs", "small", "b10"])
        .contains("can't fork")
    {
        assert!(Instant::now() < deadline, "b10 could fork 10 times");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        current() <= 20,
        "{} processes in a pod limited to 20",
        current()
    );

    host.rm_leaving_nothing(&["small"], &["--timeout", "1"]);
}

#[test]
fn stop_keeps_the_record_and_the_logs_and_rm_removes_them() {
    let host = Host::new();
    host.ok(&["pod", "create", "logged"]);
    host.ok(&[
        "pod",
        "run",
        "logged",
        "--name",
        "talker",
        "-d",
        "--",
        "sh",
        "-c",
        "echo said-it; sleep 60",
    ]);
    let traces = host.traces("logged");
    host.ok(&["pod", "stop", "logged", "--timeout", "1"]);
    let listing = host.ok(&["pod", "ls"]);
    assert!(listing.contains("stopped"), "{listing}");
    assert_eq!(host.ok(&["pod", "logs", "logged", "talker"]), "said-it\n");
    assert!(host
        .ok(&["pod", "logs", "logged", "pause"])
        .contains("Shutting down"));
    host.ok(&["pod", "rm", "logged"]);
    let output = host.ch06(&["pod", "logs", "logged", "talker"]);
    assert_one_line_error(&output, "logs of a removed pod");
    host.assert_nothing_left(&[traces]);
}

#[test]
fn two_containers_of_a_pod_share_a_volume_that_goes_with_the_pod() {
    let host = Host::new();
    let volume = host.data_dir().join("pods/shared/volumes/logs");
    host.ok(&["pod", "create", "shared", "--volume", "logs"]);
    assert!(volume.is_dir(), "pod create made no volume");
    let app = "echo line-1 >> /logs/app.log; echo line-2 >> /logs/app.log";
    host.ok(&[
        "pod",
        "run",
        "shared",
        "--name",
        "app",
        "-v",
        "logs:/logs",
        "--",
        "sh",
        "-c",
        app,
    ]);
    let sidecar = "cat /var/log/app/app.log; touch /var/log/app/x 2>/dev/null || echo read-only";
    let seen = host.ok(&[
        "pod",
        "run",
        "shared",
        "--name",
        "sidecar",
        "--volume",
        "logs:/var/log/app:ro",
        "--",
        "sh",
        "-c",
        sidecar,
    ]);
    assert_eq!(seen, "line-1\nline-2\nread-only\n");
    let traces = host.traces("shared");
    host.ok(&["pod", "stop", "shared", "--timeout", "0"]);
    assert!(
        volume.join("app.log").exists(),
        "pod stop removed the volume"
    );
    host.ok(&["pod", "rm", "shared"]);
    assert!(!volume.exists(), "pod rm left the volume");
    host.assert_nothing_left(&[traces]);
}

#[test]
fn an_unknown_pod_volume_is_one_line_and_nothing_is_made() {
    let host = Host::new();
    let output = host.ch06(&["pod", "create", "shared", "--volume", "a/b"]);
    assert_one_line_error(&output, "a volume name with a /");
    host.ok(&["pod", "create", "shared", "--volume", "logs"]);
    for (volume, said) in [
        ("cache:/cache", "has no volume \"cache\""),
        ("logs:cache", "must be absolute"),
        ("logs:/a/../b", "must not contain .."),
    ] {
        let output = host.ch06(&[
            "pod", "run", "shared", "--name", "app", "-v", volume, "--", "true",
        ]);
        let message = assert_one_line_error(&output, volume);
        assert!(message.contains(said), "{volume}: {message}");
    }
    let pod = host.data_dir().join("pods/shared");
    assert!(
        !pod.join("containers/app").exists(),
        "a container dir is left"
    );
    assert!(
        !pod.join("volumes/cache").exists(),
        "an unknown volume was made"
    );
    let names = host.state_dir().join("pods/shared/names/app");
    assert!(!names.exists(), "the name app is taken");
    host.rm_leaving_nothing(&["shared"], &[]);
}

#[test]
fn the_demo_runs_in_namespaces_of_its_own_and_leaves_nothing() {
    let host = Host::new();
    let output = host.ch06(&["demo", "--no-pause"]);
    let told = stdout(&output);
    assert!(output.status.success(), "{told}{}", stderr(&output));
    // The two containers of the pod print the same address ...
    let pod_addresses: Vec<&str> = told
        .lines()
        .filter(|l| l.contains("eth0") && l.contains("10.200.0.2/24"))
        .collect();
    assert_eq!(pod_addresses.len(), 3, "{told}"); // nsenter, web, client
                                                  // ... the client reaches the server over localhost ...
    assert!(told.contains("hello from web, over localhost"), "{told}");
    // ... the orphan's parent is pause, and no zombie is left ...
    assert!(told
        .lines()
        .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["1", "0", "S", "pause"]));
    assert!(told.lines().any(|l| l.ends_with(" 1 S    sleep")), "{told}");
    assert!(!told.lines().any(|l| l.contains(" Z ")), "{told}");
    // ... the sidecar reads what app wrote to the pod's volume ...
    assert!(
        told.contains("\nrequest 1 served\nrequest 2 served\nrequest 3 served\n"),
        "{told}"
    );
    // ... and two containers outside a pod get two addresses.
    assert!(
        told.contains("10.200.0.3/24") && told.contains("10.200.0.4/24"),
        "{told}"
    );
    // Nothing of it was made in the sandbox host or its directories.
    assert_eq!(
        mounts_under(Path::new("/tmp/pods-from-scratch-demo")),
        Vec::<String>::new()
    );
    host.sandbox.snapshot().assert_unchanged_since(&host.before);
    host.assert_nothing_left(&[]);
}

#[test]
fn doctor_checks_what_the_chapter_needs() {
    let host = Host::new();
    let said = host.ok(&["doctor"]);
    for needed in ["pause program", "overlayfs", "cgroup v", "busybox"] {
        assert!(
            said.lines()
                .any(|l| l.starts_with("ok") && l.contains(needed)),
            "{needed}: {said}"
        );
    }
    host.assert_nothing_left(&[]);
}
