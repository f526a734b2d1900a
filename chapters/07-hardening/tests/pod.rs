//! `ch07 pod ...` against the real kernel: pause, every container and
//! `pod exec` are hardened as `ch07 run` is. Run as root.
//!
//! Each test runs `ch07` in a throwaway network namespace that plays "the
//! host" (testkit's `NetSandbox`), with state and data directories of its
//! own, and checks at its end that the pod left nothing: no process, cgroup
//! (devices included), mount, state, and the same host network and mounts.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::{Mutex, MutexGuard};

use pfs_state::pods::Pod;
use pfs_state::process::is_running;
use testkit::{error_line, stderr, stdout, HostState, NetSandbox, NetState};

const CH07: &str = env!("CARGO_BIN_EXE_ch07");
const DOCKER_DEFAULT: &str = "00000000a80425fb";

/// A shell line a container runs: its status fields, how much it reads of
/// `/proc/timer_list`, and what `/proc/kcore` is (if this kernel has one);
/// masked, both are /dev/null.
const SHOW: &str = "grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; \
                    echo timer_list $(head -c 4096 /proc/timer_list | wc -c); \
                    [ ! -e /proc/kcore ] || stat -c 'kcore %F' /proc/kcore";

/// The tests take turns: each checks the host's mount table at its end.
static TURN: Mutex<()> = Mutex::new(());

/// A sandbox host for one test, and what it looked like before.
struct Host {
    sandbox: NetSandbox,
    before: (NetState, HostState),
    _turn: MutexGuard<'static, ()>,
}

impl Host {
    fn new() -> Host {
        let turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
        let sandbox = NetSandbox::new();
        let before = (sandbox.snapshot(), HostState::capture());
        Host {
            sandbox,
            before,
            _turn: turn,
        }
    }

    /// Run `ch07 ARGS` in the sandbox (stdin closed, output captured).
    fn ch07(&self, args: &[&str]) -> Output {
        let data = self.sandbox.state_dir.join("data");
        let mut command = self.sandbox.command(CH07);
        command.args(args).env("PFS_DATA_DIR", data);
        command.stdin(Stdio::null()).output().expect("run ch07")
    }

    /// Run `ch07 ARGS`, which must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let output = self.ch07(args);
        assert!(
            output.status.success(),
            "ch07 {args:?}: {}",
            stderr(&output)
        );
        stdout(&output)
    }

    /// The record of a pod, as `ch07` wrote it.
    fn pod(&self, name: &str) -> Pod {
        let path = self.sandbox.state_dir.join("pods").join(name).join("pod");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        Pod::parse(name, &text).expect("a pod record")
    }

    /// `pod rm` the pod, then assert that nothing of it is left.
    fn rm_leaving_nothing(self, name: &str) {
        let pod = self.pod(name);
        let pause = pod.pause.expect("a running pod");
        let groups = cgroup_dirs(&pod);
        assert!(!groups.is_empty(), "the pod has no cgroup");
        self.ok(&["pod", "rm", name, "--timeout", "1"]);
        assert!(!is_running(pause), "pause still runs");
        for group in groups {
            assert!(!group.exists(), "cgroup {} is left", group.display());
        }
        self.sandbox.assert_links_gone(&pod.veth());
        for dir in ["pods", "data/pods"] {
            let left = std::fs::read_dir(self.sandbox.state_dir.join(dir))
                .map(|d| d.count())
                .unwrap_or(0);
            assert_eq!(left, 0, "left in {dir}");
        }
        self.ok(&["cleanup", "--all"]);
        let (net, host) = &self.before;
        self.sandbox.snapshot().assert_unchanged_since(net);
        HostState::capture().assert_unchanged_since(host);
    }
}

impl Drop for Host {
    /// A failed test leaves no pod running behind it.
    fn drop(&mut self) {
        if std::thread::panicking() {
            for pod in ["hard", "open"] {
                let _ = self.ch07(&["pod", "rm", pod, "--timeout", "0"]);
            }
            let _ = self.ch07(&["cleanup", "--all"]);
        }
    }
}

/// The pod's cgroup in every hierarchy that has it (on v1: memory, pids,
/// and this chapter's devices; on v2: the one tree).
fn cgroup_dirs(pod: &Pod) -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    let mut hierarchies = vec![root.to_path_buf()];
    hierarchies.extend(std::fs::read_dir(root).unwrap().flatten().map(|e| e.path()));
    hierarchies
        .into_iter()
        .map(|h| h.join(pod.cgroup()))
        .filter(|g| g.is_dir())
        .collect()
}

/// The value of `field` in a `/proc/PID/status` text.
fn field<'a>(status: &'a str, field: &str) -> &'a str {
    let line = status.lines().find(|l| l.starts_with(&format!("{field}:")));
    line.unwrap_or_else(|| panic!("no {field} in {status}"))[field.len() + 1..].trim()
}

/// Assert Docker's default confinement in a `/proc/PID/status` text.
fn assert_hardened(status: &str, who: &str) {
    assert_eq!(field(status, "CapEff"), DOCKER_DEFAULT, "{who}");
    assert_eq!(field(status, "NoNewPrivs"), "1", "{who}");
    assert_eq!(field(status, "Seccomp"), "2", "{who}");
}

/// Assert that [`SHOW`] found the kernel's files masked, or not.
fn assert_masked(seen: &str, masked: bool) {
    assert_eq!(seen.contains("timer_list 0\n"), masked, "{seen}");
    if let Some(kcore) = seen.lines().find(|l| l.starts_with("kcore ")) {
        assert_eq!(kcore == "kcore character special file", masked, "{seen}");
    }
}

fn host_status(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap()
}

#[test]
fn pause_every_container_and_exec_are_hardened_and_still_share_localhost() {
    let host = Host::new();
    host.ok(&["pod", "create", "hard"]);
    let pod = host.pod("hard");
    assert_hardened(&host_status(pod.pause.unwrap()), "pause");
    // cgroup v1: pause is in a devices group of the pod's, with runc's
    // allow-list; v2 has no devices file (a program on each group instead).
    let devices = Path::new("/sys/fs/cgroup/devices").join(pod.cgroup());
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        assert!(!devices.exists(), "a devices group on cgroup v2");
    } else {
        let list = std::fs::read_to_string(devices.join("pause/devices.list")).unwrap();
        assert!(
            list.contains("c 1:3 rwm") && !list.contains("a *:*"),
            "{list}"
        );
    }

    let server = "mkdir /www && echo over-localhost > /www/index.html \
                  && exec httpd -f -p 127.0.0.1:8080 -h /www";
    host.ok(&[
        "pod", "run", "hard", "--name", "web", "-d", "--", "sh", "-c", server,
    ]);
    let client = format!(
        "{SHOW}; for i in $(seq 50); do wget -qO- http://127.0.0.1:8080/ && exit; sleep 0.1; done"
    );
    let seen = host.ok(&[
        "pod", "run", "hard", "--name", "client", "--", "sh", "-c", &client,
    ]);
    assert_hardened(&seen, "a container");
    assert_masked(&seen, true);
    assert!(seen.ends_with("over-localhost\n"), "{seen}");

    let seen = host.ok(&["pod", "exec", "hard", "web", "--", "sh", "-c", SHOW]);
    assert_hardened(&seen, "pod exec");
    // Even given CAP_SYS_ADMIN, `pod exec` meets the seccomp filter.
    let mount = ["--", "mount", "-t", "tmpfs", "t", "/tmp"];
    let exec = ["pod", "exec", "hard", "web", "--cap-add", "SYS_ADMIN"];
    let output = host.ch07(&[&exec[..], &mount].concat());
    assert_ne!(output.status.code(), Some(0));
    let said = stderr(&output);
    assert!(said.contains("permission denied"), "{said}");

    // The device policy holds for `pod exec` too (it joins the container's
    // devices group on v1, its group with the program on v2): a node can
    // be made (CAP_MKNOD is Docker's), not opened.
    let twin = "mknod /tun c 10 200 && true < /tun && echo opened";
    let output = host.ch07(&["pod", "exec", "hard", "web", "--", "sh", "-c", twin]);
    let said = stderr(&output);
    assert!(!String::from_utf8_lossy(&output.stdout).contains("opened"));
    assert!(said.contains("Operation not permitted"), "{said}");

    host.rm_leaving_nothing("hard");
}

#[test]
fn a_privileged_pod_keeps_every_capability_and_a_bad_flag_is_one_line() {
    let host = Host::new();
    let output = host.ch07(&["pod", "create", "open", "--cap-add", "NOPE"]);
    let message = error_line(&output, 125);
    assert!(message.contains("NOPE"), "{message}");
    assert!(
        !host.sandbox.state_dir.join("pods/open").exists(),
        "a record is left"
    );

    let ours = host_status(std::process::id());
    host.ok(&["pod", "create", "open", "--privileged"]);
    let pause = host_status(host.pod("open").pause.unwrap());
    let seen = host.ok(&[
        "pod",
        "run",
        "open",
        "--name",
        "c",
        "--privileged",
        "--",
        "sh",
        "-c",
        SHOW,
    ]);
    for (status, who) in [(&pause, "pause"), (&seen, "container")] {
        assert_eq!(field(status, "CapEff"), field(&ours, "CapEff"), "{who}");
        assert_eq!(field(status, "NoNewPrivs"), "0", "{who}");
        assert_eq!(field(status, "Seccomp"), "0", "{who}");
    }
    assert_masked(&seen, false);
    let output = host.ch07(&[
        "pod",
        "run",
        "open",
        "--name",
        "d",
        "--cap-drop",
        "NOPE",
        "--",
        "true",
    ]);
    let message = error_line(&output, 125);
    assert!(message.contains("NOPE"), "{message}");

    host.rm_leaving_nothing("open");
}
