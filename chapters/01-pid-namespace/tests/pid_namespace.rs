//! Chapter 01 against the real kernel: run as root (`sudo scripts/test.sh`).

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::thread::sleep;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use testkit::{error_line, namespace_of, require_root, run_checking_host, stderr, stdout, Running};

const CH01: &str = env!("CARGO_BIN_EXE_ch01");

/// Run `ch01 run -- ARGS`, checking that the host is left as it was.
fn ch01_run(args: &[&str]) -> std::process::Output {
    run_checking_host(CH01, &[&["run", "--"], args].concat())
}

#[test]
fn the_command_is_pid_1() {
    let output = ch01_run(&["sh", "-c", "echo $$"]);
    assert_eq!(stdout(&output), "1\n");
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn the_exit_status_is_the_commands() {
    let output = ch01_run(&["sh", "-c", "exit 7"]);
    assert_eq!(output.status.code(), Some(7));
}

#[test]
fn the_command_does_not_ignore_sigpipe() {
    // Rust ignores SIGPIPE for itself; the command must not inherit that.
    let output = ch01_run(&["sed", "-n", "s/^SigIgn:\t//p", "/proc/self/status"]);
    let ignored = u64::from_str_radix(stdout(&output).trim(), 16).unwrap();
    assert_eq!(
        ignored & 1 << (Signal::SIGPIPE as u64 - 1),
        0,
        "{ignored:x}"
    );
}

#[test]
fn ps_still_sees_the_hosts_processes() {
    // `ps` reads /proc, which is still the host's: it finds this very test
    // process, which lives outside the container. Chapter 02 fixes that.
    let me = std::process::id().to_string();
    let output = ch01_run(&["ps", "-o", "pid=", "-p", &me]);
    assert_eq!(stdout(&output).trim(), me);
}

#[test]
fn an_unknown_command_exits_127_with_one_line() {
    let output = ch01_run(&["no-such-command"]);
    assert_eq!(output.status.code(), Some(127));
    assert_eq!(
        stderr(&output),
        "ch01: command not found: no-such-command\n"
    );
}

#[test]
fn a_missing_command_is_one_clear_line() {
    let output = ch01_run(&[]);
    let message = error_line(&output, 125);
    assert!(message.starts_with("ch01: missing command"), "{message}");
}

#[test]
fn without_root_it_says_it_needs_root() {
    require_root(); // to become somebody else
    let output = Command::new(CH01)
        .args(["run", "--", "true"])
        .uid(65534)
        .gid(65534)
        .output()
        .expect("run ch01 as nobody");
    let message = error_line(&output, 125);
    assert!(message.starts_with("ch01: needs root"), "{message}");
}

#[test]
fn signals_reach_the_command() {
    require_root();
    let mut container = Running::start(
        CH01,
        &[
            "run",
            "--",
            "sh",
            "-c",
            "trap 'echo got TERM; exit 3' TERM; echo ready; while :; do sleep 0.1; done",
        ],
    );
    kill(Pid::from_raw(container.child.id() as i32), Signal::SIGTERM).unwrap();
    assert_eq!(container.read_line(), "got TERM");
    assert_eq!(container.finish(), Some(3));
}

#[test]
fn pid_1_ignores_a_signal_it_has_no_handler_for_and_a_second_one_kills_it() {
    require_root();
    let mut container = Running::sh(CH01, &["run"], "exec sleep 60");
    let ch01 = Pid::from_raw(container.child.id() as i32);
    kill(ch01, Signal::SIGTERM).unwrap();
    sleep(Duration::from_millis(300));
    assert!(
        container.child.try_wait().unwrap().is_none(),
        "sleep as PID 1 has no SIGTERM handler, so it should have ignored it"
    );
    kill(ch01, Signal::SIGTERM).unwrap();
    assert_eq!(
        container.finish(),
        Some(128 + 9),
        "second signal: SIGKILL, 128+9"
    );
}

#[test]
fn only_the_first_child_goes_into_the_new_pid_namespace() {
    require_root();
    let container = Running::sh(CH01, &["run"], "read x");
    let ch01 = container.child.id().to_string();
    // The runtime's own later children would stay on the host.
    assert_eq!(
        namespace_of(&ch01, "pid_for_children"),
        namespace_of(&ch01, "pid")
    );
    assert_ne!(
        namespace_of(&ch01, "pid"),
        namespace_of(&container.command_pid(), "pid")
    );
    assert_eq!(container.finish(), Some(0));
}

#[test]
fn killing_the_runtime_kills_the_container() {
    require_root();
    let mut container = Running::sh(CH01, &["run"], "exec sleep 60");
    let sleep_pid = container.command_pid();
    container.child.kill().unwrap(); // SIGKILL: ch01 cannot clean anything up
    container.child.wait().unwrap();
    for _ in 0..50 {
        // Gone, or dead and waiting for the host's init to reap it.
        match std::fs::read_to_string(format!("/proc/{sleep_pid}/stat")) {
            Err(_) => return,
            Ok(stat) if stat.rsplit(") ").next().unwrap().starts_with('Z') => return,
            Ok(_) => {}
        }
        sleep(Duration::from_millis(20));
    }
    panic!("the container (host PID {sleep_pid}) outlived its runtime");
}
