//! `ch07 --explain run`: each of this chapter's steps names what asks a
//! container engine for it (the field of runc's `config.json`, or Docker's
//! flag), in the order the steps run. Run as root.

use testkit::{assert_in_order, run, stderr, test_data_dir, HostState};

const CH07: &str = env!("CARGO_BIN_EXE_ch07");

#[test]
fn each_step_names_its_runc_or_docker_equivalent_in_order() {
    testkit::require_root();
    test_data_dir();
    let before = HostState::capture();
    let output = run(CH07, &["--explain", "run", "--net", "none", "--", "true"]);
    HostState::capture().assert_unchanged_since(&before);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stderr(&output);
    // cgroup v1 only: v2 has no devices file (see `paths::Paths`).
    let devices =
        "# the devices allow-list                             ~ runc: linux.resources.devices";
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    assert_eq!(text.contains(devices), !v2, "{text}");
    let steps = [
        "# its cgroups, read-only",
        "~ runc: mounts[/sys/fs/cgroup] (docker: --cgroupns)",
        "# a message queue filesystem",
        "~ runc: mounts[/dev/mqueue]",
        "# mask the kernel's files",
        "~ runc: linux.maskedPaths",
        "# the kernel's knobs read-only",
        "~ runc: linux.readonlyPaths",
        "# capabilities (docker: --cap-add, --cap-drop)",
        "~ runc: process.capabilities",
        "PR_CAPBSET_DROP",
        "capset(",
        "~ setpriv --no-new-privs; runc: process.noNewPrivileges",
        "~ runc: linux.seccomp (docker: --security-opt seccomp=PROFILE.json)",
        "execve(",
    ];
    let expected: Vec<&str> = (!v2).then_some(devices).into_iter().chain(steps).collect();
    assert_in_order(&text, &expected);
}
