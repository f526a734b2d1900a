//! Chapter 04's root filesystem against the real kernel: run as root.
//!
//! These tests use `--net none` (a network namespace with only `lo`), so
//! they never touch the host's network. Root filesystems are cached in a
//! test data directory that stays between runs, like the real cache.

use std::path::{Path, PathBuf};

use testkit::{
    assert_host_unchanged_during, assert_stdout_contains, error_line, require_root, run,
    run_checking_host, stderr, stdout, Running,
};

const CH04: &str = env!("CARGO_BIN_EXE_ch04");

fn data_dir() -> &'static Path {
    testkit::test_data_dir()
}

/// `ch04 run --net none ARGS`, checking that the host and the containers
/// directory are left as they were.
fn ch04_run(args: &[&str]) -> std::process::Output {
    data_dir();
    let output = run_checking_host(CH04, &[&["run", "--net", "none"], args].concat());
    assert_no_container_left();
    output
}

/// A container that waits until it is told to finish.
fn start_waiting() -> Running {
    data_dir();
    Running::sh(CH04, &["run", "--net", "none"], "read x")
}

fn assert_no_container_left() {
    let containers = data_dir().join("containers");
    if let Ok(entries) = std::fs::read_dir(&containers) {
        let left: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        // Other tests of this binary may be running containers right now:
        // only directories whose ch04 process is gone are leftovers.
        let stale: Vec<_> = left
            .iter()
            .filter(|p| !Path::new("/proc").join(p.file_name().unwrap()).exists())
            .collect();
        assert!(stale.is_empty(), "left behind: {stale:?}");
    }
}

#[test]
fn the_container_sees_the_busybox_root() {
    let output = ch04_run(&["--", "cat", "/etc/os-release"]);
    assert_stdout_contains(&output, "ID=busybox");
}

#[test]
fn slash_dot_dot_is_slash() {
    let output = ch04_run(&[
        "--",
        "sh",
        "-c",
        "ls -di / /.. | awk '{print $1}' | uniq | wc -l",
    ]);
    assert_eq!(stdout(&output).trim(), "1", "{}", stderr(&output));
}

#[test]
fn the_containers_writes_vanish_and_never_reach_the_image() {
    let output = ch04_run(&["--", "sh", "-c", "echo hello > /written && cat /written"]);
    assert_eq!(stdout(&output), "hello\n", "{}", stderr(&output));
    let image = data_dir().join("rootfs/busybox");
    assert!(image.join("bin/busybox").exists());
    assert!(
        !image.join("written").exists(),
        "the write reached the image"
    );
    let again = ch04_run(&["--", "ls", "/written"]);
    assert_ne!(
        again.status.code(),
        Some(0),
        "a new container sees the old one's file"
    );
    // (ls said so: a container that never started would fail as well.)
    let said = stderr(&again);
    assert!(said.contains("/written: No such file"), "{said}");
}

#[test]
fn keep_keeps_the_changes() {
    let output = ch04_run(&["--keep", "--", "sh", "-c", "echo kept > /note"]);
    let message = stderr(&output);
    let upper = message
        .trim()
        .rsplit(' ')
        .next()
        .map(PathBuf::from)
        .expect("ch04 says where it kept the changes");
    assert_eq!(
        std::fs::read_to_string(upper.join("note")).unwrap(),
        "kept\n",
        "{message}"
    );
    std::fs::remove_dir_all(upper.parent().unwrap()).unwrap();
}

#[test]
fn read_only_root_refuses_writes_but_tmp_works() {
    let output = ch04_run(&[
        "--read-only",
        "--",
        "sh",
        "-c",
        "touch /x || echo refused; touch /tmp/x && echo tmp-ok",
    ]);
    assert_eq!(stdout(&output), "refused\ntmp-ok\n", "{}", stderr(&output));
}

#[test]
fn the_container_has_its_own_proc_dev_and_tmp() {
    let script = "echo $$; ls /dev | tr '\\n' ' '; echo; grep -c . /proc/self/mountinfo";
    let output = ch04_run(&["--", "sh", "-c", script]);
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "1", "{text}");
    for device in [
        "null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "ptmx",
    ] {
        assert!(
            lines[1].split(' ').any(|d| d == device),
            "/dev lacks {device}: {}",
            lines[1]
        );
    }
    assert!(
        !lines[1].contains("sda") && !lines[1].contains("vda"),
        "a host disk in /dev"
    );
    // /, /proc, /sys, /dev, /dev/pts, /dev/shm, /tmp and nothing of the host's
    assert_eq!(lines[2], "7", "{text}");
}

#[test]
fn a_pseudo_terminal_can_be_opened() {
    // /dev/ptmx is a device node in /dev/pts: a `nodev` mount refuses it.
    let output = ch04_run(&["--", "sh", "-c", "true <> /dev/ptmx && echo opened"]);
    assert_eq!(stdout(&output), "opened\n", "{}", stderr(&output));
}

#[test]
fn the_hosts_mount_table_is_unchanged_during_the_run() {
    assert_host_unchanged_during(start_waiting);
}

#[test]
fn a_missing_rootfs_directory_is_one_line() {
    let output = ch04_run(&["--rootfs", "/no/such/dir", "--", "true"]);
    assert_eq!(output.status.code(), Some(125));
    assert_eq!(
        stderr(&output),
        "ch04: rootfs directory not found: /no/such/dir\n"
    );
}

#[test]
fn a_rootfs_without_the_command_says_command_not_found() {
    let output = ch04_run(&["--", "bash", "-c", "true"]);
    assert_eq!(output.status.code(), Some(127));
    assert_eq!(stderr(&output), "ch04: command not found: bash\n");
}

#[test]
fn an_image_that_was_not_pulled_is_one_line() {
    let output = ch04_run(&["--rootfs", "127.0.0.1:5999/never-pulled:1", "--", "true"]);
    let message = error_line(&output, 125);
    assert!(message.contains("ch04 pull"), "{message}");
}

#[test]
fn a_debootstrapped_debian_prints_debians_os_release() {
    require_root();
    data_dir();
    // Built once per machine (about 1–2 minutes from the Debian mirror the
    // host's apt uses), then cached in the test data directory.
    let built = run(CH04, &["rootfs", "debootstrap"]);
    assert!(
        built.status.success(),
        "debootstrap failed:\n{}",
        stderr(&built)
    );
    let output = ch04_run(&["--rootfs", "debian", "--", "cat", "/etc/os-release"]);
    assert_stdout_contains(&output, "ID=debian");
}

#[test]
fn the_hosts_root_is_gone_from_the_containers_mount_namespace() {
    require_root();
    // chroot would only change the container's view of `/`; after
    // pivot_root and the detach, the mount namespace's own root is the
    // container's too. `nsenter --mount` starts at the namespace's root.
    let container = start_waiting();
    let pid = container.command_pid();
    let seen = run(
        "nsenter",
        &[
            &format!("--mount=/proc/{pid}/ns/mnt"),
            "cat",
            "/etc/os-release",
        ],
    );
    assert!(
        stdout(&seen).contains("ID=busybox"),
        "the namespace's root is not the container's: {}",
        stdout(&seen)
    );
    assert_eq!(container.finish(), Some(0));
}
