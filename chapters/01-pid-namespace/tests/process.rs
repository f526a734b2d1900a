//! Chapter 01's process settings against the real kernel, as `docker run`
//! takes them: `-e`, `--env-file`, `-w`, `-u`. Run as root.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;

use testkit::{error_line, require_root, run_checking_host, stderr, stdout, HostState};

const CH01: &str = env!("CARGO_BIN_EXE_ch01");

/// `ch01 run OPTIONS -- sh -c SCRIPT`, checking the host is left as found.
fn ch01_sh(options: &[&str], script: &str) -> std::process::Output {
    let args = [&["run"], options, &["--", "sh", "-c", script]].concat();
    run_checking_host(CH01, &args)
}

/// `ch01 run OPTIONS -- true` must be refused with one line starting so.
fn refused(options: &[&str], start: &str) -> String {
    let message = error_line(&ch01_sh(options, "true"), 125);
    assert!(message.starts_with(start), "{message}");
    message
}

#[test]
fn e_sets_variables_and_a_name_alone_passes_ours_on() {
    require_root();
    let output = Command::new(CH01)
        .args(["run", "-e", "GREETING=hello world", "-e", "OURS", "-e"])
        .args(["NOT_SET_HERE", "--", "sh", "-c"])
        .arg("echo \"$GREETING|$OURS|${NOT_SET_HERE-unset}\"")
        .env("OURS", "from the host")
        .env_remove("NOT_SET_HERE")
        .output()
        .unwrap();
    assert_eq!(stdout(&output), "hello world|from the host|unset\n");
}

#[test]
fn e_wins_over_env_file_which_wins_over_our_environment() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.env");
    fs::write(&file, "# the app's settings\n\nMODE=file\nLEVEL=3\n").unwrap();
    let file = file.to_str().unwrap();
    let output = ch01_sh(
        &["--env-file", file, "-e", "MODE=option"],
        "echo $MODE $LEVEL; test -n \"$PATH\" && echo our PATH too",
    );
    assert_eq!(stdout(&output), "option 3\nour PATH too\n");
}

#[test]
fn a_missing_env_file_or_a_nameless_line_is_one_clear_line() {
    refused(
        &["--env-file", "/no/such/file"],
        "ch01: cannot read env file /no/such/file",
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.env");
    fs::write(&file, "A=1\n=nameless\n").unwrap();
    let message = refused(&["--env-file", file.to_str().unwrap()], "ch01: env file");
    assert!(
        message.contains("line 2: no valid variable name"),
        "{message}"
    );
}

#[test]
fn w_sets_the_working_directory() {
    let output = ch01_sh(&["-w", "/tmp"], "pwd");
    assert_eq!(stdout(&output), "/tmp\n");
}

#[test]
fn w_to_a_missing_directory_is_refused_and_nothing_is_made() {
    let missing = "/tmp/pfs-no-such-dir";
    refused(
        &["-w", missing],
        "ch01: working directory /tmp/pfs-no-such-dir not found",
    );
    assert!(!std::path::Path::new(missing).exists());
    refused(&["-w", "tmp"], "ch01: invalid working directory \"tmp\"");
}

#[test]
fn u_runs_as_that_user_and_group_and_its_files_are_theirs() {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o1777)).unwrap();
    let file = dir.path().join("made-by-1000");
    let script = format!("id -u; id -g; id -G; touch {}", file.display());
    let output = ch01_sh(&["-u", "1000:1000"], &script);
    assert_eq!(stdout(&output), "1000\n1000\n1000\n", "{}", stderr(&output));
    let owner = fs::metadata(&file).unwrap();
    assert_eq!((owner.uid(), owner.gid()), (1000, 1000));
}

#[test]
fn u_without_a_group_takes_the_users_group_from_passwd_or_0() {
    // The host's /etc/passwd is the container's in chapter 01.
    let passwd = fs::read_to_string("/etc/passwd").unwrap();
    let nobody = passwd.lines().find(|l| l.starts_with("nobody:")).unwrap();
    let fields: Vec<&str> = nobody.split(':').collect();
    let output = ch01_sh(&["-u", fields[2]], "id -g");
    assert_eq!(stdout(&output), format!("{}\n", fields[3]));
    let unknown = ch01_sh(&["-u", "4242"], "id -g");
    assert_eq!(stdout(&unknown), "0\n");
}

#[test]
fn the_directory_is_entered_as_the_user() {
    // root may enter /root; user 1000 may not, and is told so.
    refused(
        &["-u", "1000", "-w", "/root"],
        "ch01: cannot enter working directory /root",
    );
}

#[test]
fn a_bad_user_is_one_clear_line() {
    let before = HostState::capture();
    for bad in ["alice", "1000:", "1000:staff"] {
        refused(&["-u", bad], "ch01: invalid user");
    }
    HostState::capture().assert_unchanged_since(&before);
}
