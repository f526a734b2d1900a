//! Chapter 02 against the real kernel: run as root (`sudo scripts/test.sh`).

use testkit::{
    assert_host_unchanged_during, assert_in_order, error_line, namespace_of, require_root, run,
    run_checking_host, stderr, stdout, Running,
};

const CH02: &str = env!("CARGO_BIN_EXE_ch02");

/// Run `ch02 run ARGS`, checking that the host is left as it was.
fn ch02_run(args: &[&str]) -> std::process::Output {
    run_checking_host(CH02, &[&["run"], args].concat())
}

#[test]
fn ps_sees_only_the_containers_processes() {
    let output = ch02_run(&["--", "sh", "-c", "sleep 5 & ps -e --no-headers"]);
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        (2..=3).contains(&lines.len()),
        "expected sh, sleep and ps, got:\n{}",
        lines.join("\n")
    );
    assert!(
        lines[0].trim_start().starts_with("1 ") && lines[0].ends_with("sh"),
        "{}",
        lines[0]
    );
    let host = run("ps", &["-e", "--no-headers"]);
    assert!(
        stdout(&host).lines().count() > 3,
        "the host should have more processes"
    );
}

#[test]
fn the_container_has_its_own_hostname() {
    require_root();
    let host_name = nix::unistd::gethostname().unwrap();
    assert_ne!(
        host_name.to_str(),
        Some("box1"),
        "pick another name for this test"
    );
    let output = ch02_run(&["--hostname", "box1", "--", "hostname"]);
    assert_eq!(stdout(&output), "box1\n");
    assert_eq!(nix::unistd::gethostname().unwrap(), host_name);
}

#[test]
fn the_hosts_mount_table_is_the_same_before_during_and_after() {
    assert_host_unchanged_during(|| Running::sh(CH02, &["run", "--hostname", "box1"], "read x"));
}

#[test]
fn pid_mount_uts_and_ipc_namespaces_are_new_net_and_cgroup_are_shared() {
    let script = "for ns in pid mnt uts ipc net cgroup; do readlink /proc/self/ns/$ns; done";
    let output = ch02_run(&["--", "sh", "-c", script]);
    let inside: Vec<String> = stdout(&output).lines().map(str::to_string).collect();
    assert_eq!(inside.len(), 6, "{}", stderr(&output));
    for (ns, inside) in ["pid", "mnt", "uts", "ipc"].iter().zip(&inside) {
        assert_ne!(
            *inside,
            namespace_of("self", ns),
            "{ns} should be a new namespace"
        );
    }
    for (ns, inside) in ["net", "cgroup"].iter().zip(&inside[4..]) {
        assert_eq!(
            *inside,
            namespace_of("self", ns),
            "{ns} is not isolated before chapters 03 and 05"
        );
    }
}

#[test]
fn a_host_message_queue_is_invisible_inside() {
    require_root();
    // A System V message queue on the host (like `ipcmk -Q`).
    let key = 0x5eed_0002;
    // SAFETY: plain system calls on integers.
    let queue = unsafe { nix::libc::msgget(key, nix::libc::IPC_CREAT | 0o600) };
    assert!(queue >= 0, "msgget failed");
    let listed = |text: &str| {
        text.lines()
            .any(|l| l.split_whitespace().next() == Some(&key.to_string()))
    };
    let host = std::fs::read_to_string("/proc/sysvipc/msg").unwrap();
    let output = ch02_run(&["--", "cat", "/proc/sysvipc/msg"]);
    unsafe { nix::libc::msgctl(queue, nix::libc::IPC_RMID, std::ptr::null_mut()) };
    assert!(listed(&host), "the host should list its queue:\n{host}");
    // (An empty listing proves nothing if the container never ran.)
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        !listed(&stdout(&output)),
        "the container sees the host's queue:\n{}",
        stdout(&output)
    );
}

#[test]
fn an_invalid_hostname_is_one_line_and_nothing_runs() {
    for bad in ["", "has space", &"a".repeat(65)] {
        let output = ch02_run(&["--hostname", bad, "--", "echo", "ran"]);
        let message = error_line(&output, 125);
        assert_eq!(stdout(&output), "", "the command must not run");
        assert!(message.starts_with("ch02: invalid hostname"), "{message}");
    }
}

#[test]
fn explain_names_each_step_with_its_shell_equivalent() {
    let output = ch02_run(&["--explain", "--hostname", "box1", "--", "true"]);
    let steps = stderr(&output);
    let expected = [
        "unshare --pid",
        "unshare --fork",
        "unshare --mount --uts --ipc",
        "mount --make-rprivate /",
        "mount -t proc proc /proc",
        "hostname box1",
        "exec env -i ENV... true",
    ];
    assert_in_order(&steps, &expected);
}
