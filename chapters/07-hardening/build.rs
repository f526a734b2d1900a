//! Builds the escape gallery's probe (tests/probe/probe.rs) for the tests:
//! static, so it runs in a busybox root, and built here rather than by the
//! tests, which also run in a VM without a compiler. Alone in its folder,
//! which the tests mount into containers as a volume.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let source = "tests/probe/probe.rs";
    println!("cargo:rerun-if-changed={source}");
    let dir = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("probe");
    std::fs::create_dir_all(&dir).unwrap();
    let rustc = std::env::var("RUSTC").unwrap_or("rustc".into());
    let status = Command::new(rustc)
        .args([
            "--edition",
            "2021",
            "-O",
            "-C",
            "target-feature=+crt-static",
            "-o",
        ])
        .arg(dir.join("probe"))
        .arg(source)
        .status()
        .expect("run rustc");
    assert!(status.success(), "rustc {source} failed");
    println!("cargo:rustc-env=GALLERY_PROBE_DIR={}", dir.display());
}
