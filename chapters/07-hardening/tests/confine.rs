//! The process's doors against the real kernel: what `/proc/self/status`
//! shows inside, and the error a probe gets. Run as root. Every open-door
//! probe is harmless: `unshare -U` and `mount` act only inside the
//! container's own namespaces, which vanish with it.

use std::path::PathBuf;

use testkit::{error_line, run_checking_host, stderr, stdout, test_data_dir};

const CH07: &str = env!("CARGO_BIN_EXE_ch07");
const DOCKER_DEFAULT: &str = "00000000a80425fb";

/// `ch07 run --net none ARGS`, checking the host is left as found.
fn ch07_run(args: &[&str]) -> std::process::Output {
    test_data_dir();
    run_checking_host(CH07, &[&["run", "--net", "none"], args].concat())
}

/// The `/proc/self/status` fields a command in the container sees.
fn status(options: &[&str]) -> String {
    let output = ch07_run(&[options, &["--", "cat", "/proc/self/status"]].concat());
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    stdout(&output)
}

/// The value of `field` in a `/proc/PID/status` text.
fn field<'a>(status: &'a str, field: &str) -> &'a str {
    let line = status.lines().find(|l| l.starts_with(&format!("{field}:")));
    line.unwrap_or_else(|| panic!("no {field} in {status}"))[field.len() + 1..].trim()
}

/// A seccomp profile in a file of its own, removed when dropped.
struct ProfileFile(PathBuf);

impl ProfileFile {
    fn new(name: &str, text: &str) -> Self {
        let path = std::env::temp_dir().join(format!("ch07-{}-{name}.json", std::process::id()));
        std::fs::write(&path, text).unwrap();
        ProfileFile(path)
    }
    fn option(&self) -> String {
        format!("seccomp={}", self.0.display())
    }
}

impl Drop for ProfileFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn a_hardened_container_has_dockers_capabilities_no_new_privs_and_seccomp() {
    let inside = status(&[]);
    for set in ["CapEff", "CapPrm", "CapBnd"] {
        assert_eq!(field(&inside, set), DOCKER_DEFAULT, "{set}");
    }
    for set in ["CapInh", "CapAmb"] {
        assert_eq!(field(&inside, set), "0000000000000000", "{set}");
    }
    assert_eq!(field(&inside, "NoNewPrivs"), "1");
    assert_eq!(field(&inside, "Seccomp"), "2");
}

#[test]
fn privileged_keeps_every_capability_and_no_filter() {
    let ours = std::fs::read_to_string("/proc/self/status").unwrap();
    let inside = status(&["--privileged"]);
    assert_eq!(field(&inside, "CapEff"), field(&ours, "CapEff"));
    assert_eq!(field(&inside, "CapBnd"), field(&ours, "CapBnd"));
    assert_eq!(field(&inside, "NoNewPrivs"), "0");
    assert_eq!(field(&inside, "Seccomp"), "0");
}

#[test]
fn a_user_starts_with_no_capability_under_the_same_bounding_set() {
    // setuid(1000) empties permitted and effective: nothing to cut.
    let inside = status(&["-u", "1000"]);
    assert_eq!(field(&inside, "CapEff"), "0000000000000000");
    assert_eq!(field(&inside, "CapPrm"), "0000000000000000");
    assert_eq!(field(&inside, "CapBnd"), DOCKER_DEFAULT);
    assert_eq!(field(&inside, "Seccomp"), "2");
}

#[test]
fn cap_drop_all_then_cap_add_keeps_exactly_that_one() {
    let inside = status(&["--cap-drop", "ALL", "--cap-add", "net_raw"]);
    let net_raw = "0000000000002000"; // bit 13
    assert_eq!(field(&inside, "CapEff"), net_raw);
    assert_eq!(field(&inside, "CapBnd"), net_raw);
}

#[test]
fn a_new_user_namespace_is_refused_and_open_when_privileged() {
    let output = ch07_run(&["--", "unshare", "-U", "true"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("Operation not permitted"),
        "{}",
        stderr(&output)
    );
    let output = ch07_run(&["--privileged", "--", "unshare", "-U", "true"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
fn seccomp_refuses_mount_even_with_cap_sys_admin() {
    let mount = ["--", "mount", "-t", "tmpfs", "x", "/tmp"];
    let output = ch07_run(&[&["--cap-add", "SYS_ADMIN"][..], &mount].concat());
    assert_ne!(output.status.code(), Some(0));
    assert!(
        stderr(&output).contains("permission denied"),
        "{}",
        stderr(&output)
    );
    // Without the filter, the same capability mounts (in the container's
    // own mount namespace): seccomp was what refused.
    let unconfined = [
        "--cap-add",
        "SYS_ADMIN",
        "--security-opt",
        "seccomp=unconfined",
    ];
    let output = ch07_run(&[&unconfined[..], &mount].concat());
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
fn seccomp_unconfined_reopens_only_seccomp() {
    let inside = status(&["--security-opt", "seccomp=unconfined"]);
    assert_eq!(field(&inside, "Seccomp"), "0");
    assert_eq!(field(&inside, "CapEff"), DOCKER_DEFAULT);
    assert_eq!(field(&inside, "NoNewPrivs"), "1");
}

#[test]
fn a_profile_file_is_honoured() {
    let profile = ProfileFile::new(
        "no-mkdir",
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                          "comment": "unknown fields are ignored"}]}"#,
    );
    let output = ch07_run(&["--security-opt", &profile.option(), "--", "mkdir", "/x"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("Operation not permitted"),
        "{}",
        stderr(&output)
    );
    let output = ch07_run(&["--", "mkdir", "/x"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
fn bad_flags_get_one_line_and_leave_nothing() {
    let malformed = ProfileFile::new("malformed", "{\"defaultAction\": ");
    let unknown = ProfileFile::new("unknown", r#"{"defaultAction": "SCMP_ACT_MAYBE"}"#);
    let (malformed, unknown) = (malformed.option(), unknown.option());
    let cases = [
        (
            vec!["--cap-add", "NET_RAWR"],
            "unknown capability: NET_RAWR",
        ),
        (vec!["--cap-drop", "nope"], "unknown capability: nope"),
        (
            vec!["--security-opt", "seccomp=/no/such.json"],
            "cannot read seccomp profile",
        ),
        (vec!["--security-opt", &malformed], "is not valid JSON"),
        (
            vec!["--security-opt", &unknown],
            "unknown action SCMP_ACT_MAYBE",
        ),
        (
            vec!["--security-opt", "apparmor=x"],
            "unsupported --security-opt",
        ),
    ];
    for (options, expected) in cases {
        let output = ch07_run(&[&options[..], &["--", "true"]].concat());
        let line = error_line(&output, 125);
        assert!(line.contains(expected), "{options:?}: {line}");
    }
}
