//! podman drives the runtime: containers and a pod started by podman and
//! conmon with `podman --runtime RUNTIME`, where RUNTIME is `ch08` (or
//! `$PFS_OCI_RUNTIME`, e.g. /usr/sbin/runc, to check the tests themselves).
//! Run as root (`sudo scripts/test.sh`).
//!
//! Safety: each test has a podman of its own (storage, state and
//! configuration in a temporary directory, the busybox image from a local
//! OCI layout), run in a network namespace of its own, containers without
//! a network. Each checks at its end that nothing is left: no container,
//! mount or container cgroup, the host's mount table as it was.
//! The tests take turns ([`Scenario`]).

use std::time::{Duration, Instant};

use testkit::oci::{scaled, Scenario};
use testkit::podman::{Podman, BUSYBOX};
use testkit::{namespace_of, stderr, stdout};

/// Run `scenario` with a podman of its own calling the runtime under test,
/// within `budget` seconds, then check that the host is as it was.
fn with_podman(what: &'static str, budget: u64, scenario: impl FnOnce(&Podman)) {
    let run = Scenario::begin(what, budget);
    let rootfs = ch04::rootfs::busybox().expect("the busybox root filesystem");
    let podman = Podman::new(&runtime(), &testkit::oci::busybox_layout(&rootfs));
    scenario(&podman);
    podman.assert_clean();
    drop(podman);
    run.end();
}

fn runtime() -> String {
    testkit::oci::runtime(env!("CARGO_BIN_EXE_ch08"))
}

/// `podman run` with local images only, and `options`. Without a pod,
/// give `--network none`: in a pod, that would leave the pod's network.
fn run_args<'a>(options: &[&'a str]) -> Vec<&'a str> {
    ["run", "--pull=never"]
        .iter()
        .chain(options)
        .copied()
        .collect()
}

/// The host PID of a running container's first process.
fn pid_of(podman: &Podman, container: &str) -> String {
    let pid = podman.ok(&["inspect", "--format", "{{.State.Pid}}", container]);
    pid.trim().to_string()
}

/// Assert that conmon was told to call the runtime under test (`-r PATH`)
/// for `container`: podman did not fall back on its default runtime.
fn assert_run_by_runtime(podman: &Podman, container: &str) {
    let conmon = podman.ok(&["inspect", "--format", "{{.State.ConmonPid}}", container]);
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", conmon.trim())).expect("conmon");
    let words: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect();
    let runtime_at = words.iter().position(|w| w == "-r").expect("conmon -r");
    assert_eq!(words[runtime_at + 1], runtime(), "conmon: {words:?}");
}

/// Wait up to ten seconds ([`scaled`]) for `container`'s log to contain
/// `text`.
fn wait_for_log(podman: &Podman, container: &str, text: &str) -> String {
    let deadline = Instant::now() + scaled(10);
    loop {
        let log = podman.ok(&["logs", container]);
        if log.contains(text) {
            return log;
        }
        assert!(Instant::now() < deadline, "no {text:?} in the log: {log}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The words of a command line without quotes: `"-d --name box"`.
fn words(line: &str) -> Vec<&str> {
    line.split(' ').collect()
}

/// `podman run --rm --network none BUSYBOX COMMAND...`, in the foreground.
fn run_rm(podman: &Podman, command: &[&str]) -> std::process::Output {
    podman.podman(&run_args(
        &[&["--rm", "--network", "none", BUSYBOX], command].concat(),
    ))
}

#[test]
fn run_rm_prints_what_the_command_prints() {
    with_podman("podman run --rm echo hi", 30, |podman| {
        let output = run_rm(podman, &["echo", "hi"]);
        assert_eq!(stdout(&output), "hi\n", "{}", stderr(&output));
        assert!(output.status.success(), "{}", stderr(&output));
    });
}

#[test]
fn exit_code_passes_through() {
    with_podman("podman run exit 3", 30, |podman| {
        let output = run_rm(podman, &["sh", "-c", "exit 3"]);
        assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    });
}

#[test]
fn a_terminal_reaches_run_and_exec() {
    // `-t`: conmon hands the runtime a console socket; the container's
    // stdio is a pty of its own devpts (podman turns its \n into \r\n).
    with_podman("podman run -t, exec -t", 60, |podman| {
        let run = words("--rm --network none -t");
        let command = [BUSYBOX, "sh", "-c", "tty; echo $((6*7))"];
        let output = podman.podman(&run_args(&[&run[..], &command[..]].concat()));
        let seen = stdout(&output).replace('\r', "");
        assert_eq!(seen, "/dev/pts/0\n42\n", "{}", stderr(&output));

        let options = words("-d --network none --name box");
        podman.ok(&run_args(
            &[&options[..], &[BUSYBOX, "sleep", "100"]].concat(),
        ));
        let seen = podman.ok(&["exec", "-t", "box", "tty"]).replace('\r', "");
        assert_eq!(seen, "/dev/pts/0\n", "exec -t gets a terminal of its own");
        podman.ok(&["rm", "--force", "--time", "0", "box"]);
    });
}

/// A container whose PID 1 says `ready`, then waits; on SIGTERM it says
/// `got TERM` and exits with 0 (PID 1 has no default action for SIGTERM:
/// without the trap, `podman stop` would wait and SIGKILL it, status 137).
const SERVICE: &str = "trap 'echo got TERM; exit 0' TERM; echo ready; while :; do sleep 0.1; done";

#[test]
fn detached_container_exec_logs_stop_rm() {
    with_podman("podman run -d, exec, logs, stop, rm", 60, |podman| {
        let options = words("-d --network none --name box --hostname pfs-box");
        let id = podman.ok(&run_args(
            &[&options[..], &[BUSYBOX, "sh", "-c", SERVICE]].concat(),
        ));
        assert_eq!(id.trim().len(), 64, "podman run -d prints the ID: {id}");
        assert_run_by_runtime(podman, "box");
        wait_for_log(podman, "box", "ready");

        // exec joins the container: its PID namespace (PID 1 is the
        // service's shell), its UTS namespace (the hostname).
        let pid = pid_of(podman, "box");
        let seen = podman.ok(&[
            "exec",
            "box",
            "sh",
            "-c",
            "readlink /proc/self/ns/pid; cat /proc/1/cmdline | tr '\\0' ' '; echo; hostname",
        ]);
        let lines: Vec<&str> = seen.lines().collect();
        assert_eq!(lines.len(), 3, "{seen}");
        assert_eq!(lines[0], namespace_of(&pid, "pid"), "exec's PID namespace");
        assert!(
            lines[1].contains("echo ready"),
            "PID 1 is the service: {seen}"
        );
        assert_eq!(lines[2], "pfs-box");

        // stop sends SIGTERM through the runtime (`kill ID TERM`): the trap
        // answers it (and exits with 0) before stop's time is up and a
        // SIGKILL ends the container with status 137.
        podman.ok(&["stop", "--time", "30", "box"]);
        assert!(podman.ok(&["logs", "box"]).contains("got TERM"));
        let status = podman.ok(&["inspect", "--format", "{{.State.ExitCode}}", "box"]);
        assert_eq!(status.trim(), "0");
        podman.ok(&["rm", "box"]);
    });
}

/// The web page container `server` serves on 127.0.0.1:8080 of the pod.
const SERVE: &str = "echo hello from the server > /tmp/index.html; \
                     exec httpd -f -p 127.0.0.1:8080 -h /tmp";

/// The other container: its network namespace, then the page, fetched over
/// the pod's loopback (retried while the server starts).
const FETCH: &str = "readlink /proc/self/ns/net; \
                     for i in $(seq 50); do \
                     wget -q -O - http://127.0.0.1:8080/index.html && exit 0; sleep 0.1; done; \
                     exit 1";

#[test]
fn pod_containers_share_one_network_namespace() {
    with_podman("podman pod, two containers over 127.0.0.1", 60, |podman| {
        // --share-parent=false: each container in a cgroup of its own, not
        // under the pod's. With cgroupfs on cgroup v2, podman 4.3 leaves
        // the pod's cgroup with a device filter that allows nothing, and
        // no container of the pod may open /dev/null.
        podman.ok(&words(
            "pod create --network none --share-parent=false --name pod1",
        ));
        podman.ok(&run_args(&[
            "-d", "--pod", "pod1", "--name", "server", BUSYBOX, "sh", "-c", SERVE,
        ]));
        assert_run_by_runtime(podman, "server");
        let output = podman.podman(&run_args(&[
            "--rm", "--pod", "pod1", BUSYBOX, "sh", "-c", FETCH,
        ]));
        let fetched = stdout(&output);
        let lines: Vec<&str> = fetched.lines().collect();
        assert_eq!(
            lines.get(1).copied(),
            Some("hello from the server"),
            "{fetched}{}\nthe server's log: {}",
            stderr(&output),
            podman.ok(&["logs", "server"])
        );

        // One network namespace: the infra container's, joined by both
        // (by path in their config.json), not the host's.
        let server = namespace_of(&pid_of(podman, "server"), "net");
        let infra = podman.ok(&[
            "pod",
            "inspect",
            "--format",
            "{{.InfraContainerID}}",
            "pod1",
        ]);
        let infra = namespace_of(&pid_of(podman, infra.trim()), "net");
        assert_eq!(lines[0], server, "the client's and the server's");
        assert_eq!(server, infra, "the server's and the infra container's");
        assert_ne!(server, namespace_of("self", "net"), "the pod has its own");
        podman.ok(&["pod", "rm", "--force", "--time", "0", "pod1"]);
    });
}
