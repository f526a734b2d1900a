//! Build the pause program (`pause/`, a crate of its own) as a small static
//! binary, and give its path to the chapter, which embeds it.
//!
//! One `cargo build`, with a target directory of its own so that it never
//! waits on the build that runs us. The same by hand:
//!
//! ```text
//! cd chapters/06-pod/pause
//! RUSTFLAGS='-C target-feature=+crt-static' \
//!     cargo build --release --target x86_64-unknown-linux-gnu
//! ```
//!
//! `+crt-static` links the C library (glibc) into the binary, so that it
//! runs in a root filesystem that holds nothing else. The size settings
//! (`panic = "abort"`, `opt-level = "z"`, LTO, `strip`) are in
//! `pause/Cargo.toml`.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let pause_dir = manifest_dir.join("pause");
    let target_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap()).join("pause-build");
    // Naming the target keeps RUSTFLAGS off build scripts of dependencies.
    let target = std::env::var("TARGET").unwrap();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());

    let status = Command::new(cargo)
        .args(["build", "--release", "--offline", "--quiet"])
        .args(["--target", &target])
        .arg("--target-dir")
        .arg(&target_dir)
        .current_dir(&pause_dir)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        // What the outer build gives its own rustc is not for this one.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("RUSTC_WRAPPER")
        .status()
        .expect("run cargo to build the pause program");
    assert!(status.success(), "building the pause program failed");

    let binary = target_dir.join(&target).join("release").join("pause");
    println!("cargo:rustc-env=PAUSE_BINARY={}", binary.display());
    for input in ["src/main.rs", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", pause_dir.join(input).display());
    }
}
