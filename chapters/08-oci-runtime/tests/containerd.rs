//! containerd drives the runtime: `ctr run --runc-binary RUNTIME`, through
//! containerd's runc shim (containerd-shim-runc-v2), where RUNTIME is `ch08`
//! (or `$PFS_OCI_RUNTIME`, e.g. /usr/sbin/runc, to check the tests
//! themselves). Run as root (`sudo scripts/test.sh`).
//!
//! Safety: each test starts a containerd of its own (root, state and
//! sockets in a temporary directory, in a network namespace of its own),
//! imports the busybox image from an OCI archive, and checks at its end
//! that nothing is left: no task, container, mount or cgroup, the host's
//! mount table as it was. The tests take turns ([`Scenario`]).

use std::time::{Duration, Instant};

use testkit::containerd::Containerd;
use testkit::oci::{scaled, Scenario, BUSYBOX_TAG};
use testkit::{namespace_of, stderr, stdout};

/// Run `scenario` with a containerd of its own and the busybox image (its
/// name passed in), within `budget` seconds, then check that the host is
/// as it was.
fn with_containerd(what: &'static str, budget: u64, scenario: impl FnOnce(&Containerd, &str)) {
    let run = Scenario::begin(what, budget);
    let rootfs = ch04::rootfs::busybox().expect("the busybox root filesystem");
    let containerd = Containerd::start(&runtime());
    let image = containerd.import(
        &testkit::oci::busybox_layout(&rootfs),
        "busybox",
        BUSYBOX_TAG,
    );
    scenario(&containerd, &image);
    containerd.assert_clean();
    drop(containerd);
    run.end();
}

fn runtime() -> String {
    testkit::oci::runtime(env!("CARGO_BIN_EXE_ch08"))
}

/// Assert that the runtime under test runs `id`: the state it keeps (in
/// the `--runc-root` the shim gave it) names the container.
fn assert_run_by_runtime(containerd: &Containerd, id: &str) {
    let root = containerd.dir().join("runc").join(&containerd.namespace);
    let state = testkit::registry::run_tool(
        &runtime(),
        &["--root", &root.display().to_string(), "state", id],
    );
    let compact: String = state.split_whitespace().collect();
    assert!(compact.contains("\"status\":\"running\""), "{state}");
}

#[test]
fn ctr_run_rm_prints_what_the_command_prints() {
    with_containerd("ctr run --rm echo hi", 30, |containerd, image| {
        let output = containerd.run(&["--rm", image, "pfs-echo", "echo", "hi"]);
        assert!(
            output.status.success(),
            "{}\n{}",
            stderr(&output),
            containerd.log()
        );
        assert_eq!(stdout(&output), "hi\n");
    });
}

/// PID 1 of the detached task: on SIGTERM it exits with 7 (PID 1 has no
/// default action for SIGTERM: without the trap it would not end).
const SERVICE: &str = "trap 'exit 7' TERM; while :; do sleep 0.1; done";

#[test]
fn ctr_detached_task_kill_delete() {
    with_containerd(
        "ctr run -d, task kill, task delete",
        60,
        |containerd, image| {
            let id = "pfs-service";
            let output = containerd.run(&["-d", image, id, "sh", "-c", SERVICE]);
            assert!(
                output.status.success(),
                "{}\n{}",
                stderr(&output),
                containerd.log()
            );

            // `ctr task ls`: ID, PID, STATUS.
            let task = || -> Vec<String> {
                let listing = containerd.ok(&["task", "ls"]);
                let row = listing
                    .lines()
                    .find(|l| l.starts_with(id))
                    .unwrap_or_default();
                row.split_whitespace().map(str::to_string).collect()
            };
            let row = task();
            assert_eq!(row.get(2).map(String::as_str), Some("RUNNING"), "{row:?}");
            let pid = &row[1];
            assert_ne!(namespace_of(pid, "pid"), namespace_of("self", "pid"));
            assert_ne!(namespace_of(pid, "mnt"), namespace_of("self", "mnt"));
            assert_run_by_runtime(containerd, id);

            containerd.ok(&["task", "kill", id]); // SIGTERM
            let deadline = Instant::now() + scaled(10);
            while task().get(2).map(String::as_str) != Some("STOPPED") {
                assert!(
                    Instant::now() < deadline,
                    "still {:?} after SIGTERM",
                    task()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
            // ctr reports a non-zero exit status when it deletes the task.
            let deleted = containerd.ctr(&["task", "delete", id]);
            assert!(deleted.status.success(), "{}", stderr(&deleted));
            assert!(
                stderr(&deleted).contains("exit code 7"),
                "{}",
                stderr(&deleted)
            );
            containerd.ok(&["container", "delete", id]);
        },
    );
}
