//! `ch04 rootfs`: cached root filesystems, built in a fresh data directory.
//! They are built once, even when several first builds start at the same
//! time (on a fresh machine, two tests or two shells may well ask for busybox
//! together), and stdout is the rootfs path alone. Run as root.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use testkit::registry::TempDir;

const CH04: &str = env!("CARGO_BIN_EXE_ch04");

#[test]
fn four_first_busybox_builds_at_once_all_print_the_same_rootfs() {
    testkit::require_root();
    let data = TempDir::new("first-builds");
    let outputs = testkit::run_at_once(CH04, &["rootfs", "busybox"], &data.path, 4);
    for output in &outputs {
        assert!(
            output.status.success(),
            "ch04 rootfs busybox failed ({}): {}",
            output.status,
            testkit::stderr(output)
        );
        assert_eq!(testkit::stdout(output), testkit::stdout(&outputs[0]));
    }
    let rootfs = testkit::stdout(&outputs[0]).trim().to_string();
    assert!(fs::metadata(format!("{rootfs}/bin/busybox")).is_ok());
    let unfinished: Vec<_> = fs::read_dir(data.join("rootfs"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".tmp-"))
        .collect();
    assert!(unfinished.is_empty(), "left behind: {unfinished:?}");
}

#[test]
fn debootstraps_log_goes_to_stderr_and_stdout_is_the_path_alone() {
    testkit::require_root();
    let data = TempDir::new("debootstrap");
    // A stand-in debootstrap, first on PATH, that logs on its stdout as the
    // real one does: `debootstrap --variant=V SUITE DIR [MIRROR]`.
    let bin = data.join("bin");
    fs::create_dir(&bin).unwrap();
    let fake = bin.join("debootstrap");
    fs::write(
        &fake,
        "#!/bin/sh\necho 'I: Retrieving InRelease'\nmkdir -p \"$3/etc\"\n",
    )
    .unwrap();
    fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let output = Command::new(CH04)
        .args(["rootfs", "debootstrap", "--suite", "fake"])
        .env("PFS_DATA_DIR", &data.path)
        .env("PATH", path)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("start {CH04}: {e}"));
    let stderr = testkit::stderr(&output);
    assert!(output.status.success(), "{stderr}");
    let expected = data.join("rootfs/debian-fake-minbase");
    assert_eq!(
        testkit::stdout(&output),
        format!("{}\n", expected.display())
    );
    assert!(stderr.contains("I: Retrieving InRelease"), "{stderr}");
    assert!(expected.join("etc").is_dir());
}
