//! Cached root filesystems are built once, even when several first builds
//! start at the same time (on a fresh machine, two tests or two shells may
//! well ask for busybox together). Run as root.

use std::fs;
use std::process::{Command, Stdio};
use testkit::registry::TempDir;

const CH04: &str = env!("CARGO_BIN_EXE_ch04");

#[test]
fn four_first_busybox_builds_at_once_all_print_the_same_rootfs() {
    testkit::require_root();
    let data = TempDir::new("first-builds");
    let builds: Vec<_> = (0..4)
        .map(|_| {
            Command::new(CH04)
                .args(["rootfs", "busybox"])
                .env("PFS_DATA_DIR", &data.path)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("start {CH04}: {e}"))
        })
        .collect();
    let outputs: Vec<_> = builds
        .into_iter()
        .map(|build| build.wait_with_output().expect("wait for ch04"))
        .collect();
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
