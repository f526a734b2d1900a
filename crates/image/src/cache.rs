//! Cached artefacts under the data directory: root filesystems (busybox,
//! debootstrap, ch06's pause) are built once, atomically, and the images
//! pulled into the store are installed the same way.
//!
//! Atomically: a build happens in a temporary directory beside its final
//! place, then is renamed there, so a failed or interrupted build never
//! leaves a half-made artefact behind. Once: a build holds the artefact's
//! lock (`flock(2)` on `NAME.lock`), so when two first builds start at the
//! same time the second waits, then finds the first one's result and uses
//! it.
//!
//! Also what those builds ask of the host: the Debian mirror apt uses (for
//! debootstrap), and whether a binary is static (busybox and pause are
//! copied into roots that hold no C library).

use anyhow::{Context, Result};
use std::fs;
use std::path::{Path, PathBuf};

/// Where images and root filesystems are cached: `$PFS_DATA_DIR`, or
/// `/var/lib/pods-from-scratch`.
pub fn data_dir() -> PathBuf {
    std::env::var_os("PFS_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/pods-from-scratch"))
}

// The lock is the runtime's one flock helper (pfs-state). Lock files stay:
// removing one would let a third process lock a new file of the same name
// while the second still waits on the old one.
pub(crate) use pfs_state::{lock_file as lock, Lock};

/// Build `target` unless it is there: into `TARGET.tmp-PID`, then renamed
/// to `TARGET`; the temporary directory is removed if the build fails.
/// Holding `TARGET.lock` meanwhile, so concurrent first builds make it once.
pub fn build_atomically(target: &Path, build: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let parent = target.parent().expect("an artefact has a parent directory");
    fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))?;
    let _lock = lock(&with_suffix(target, ".lock"))?;
    if target.is_dir() {
        return Ok(()); // built by whoever held the lock before us
    }
    let tmp = with_suffix(target, &format!(".tmp-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir(&tmp).with_context(|| format!("create {}", tmp.display()))?;
    let built = build(&tmp).and_then(|()| {
        fs::rename(&tmp, target).with_context(|| format!("rename to {}", target.display()))
    });
    if built.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    built
}

/// `/a/busybox` + `.lock` → `/a/busybox.lock`
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

/// Remove the temporary directories of rootfs builds that were killed.
pub fn remove_unfinished_builds() -> Result<()> {
    let dir = data_dir().join("rootfs");
    let Ok(entries) = fs::read_dir(&dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some((_, pid)) = name.rsplit_once(".tmp-") {
            if !Path::new("/proc").join(pid).exists() {
                fs::remove_dir_all(entry.path())?;
                println!("removed unfinished build {}", entry.path().display());
            }
        }
    }
    Ok(())
}

/// On a Debian host, the mirror apt already uses (it is reachable, maybe a
/// local one); elsewhere debootstrap's own default.
pub fn host_debian_mirror() -> Option<String> {
    let os = fs::read_to_string("/etc/os-release").ok()?;
    if !os.lines().any(|l| l == "ID=debian") {
        return None;
    }
    let mut sources = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = fs::read_dir("/etc/apt/sources.list.d") {
        sources.extend(dir.flatten().map(|e| e.path()));
    }
    sources
        .iter()
        .filter_map(|path| fs::read_to_string(path).ok())
        .flat_map(|text| {
            text.split_whitespace()
                .filter(|w| w.starts_with("http") && w.trim_end_matches('/').ends_with("/debian"))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .next()
}

/// An ELF binary that names no dynamic loader (the interpreter, which a
/// dynamic binary names in its first page: `/lib64/ld-linux-x86-64.so.2`).
pub fn is_static_binary(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(4096)];
    bytes.starts_with(b"\x7fELF") && !head.windows(7).any(|w| w == b"ld-linu")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Barrier;

    #[test]
    fn concurrent_first_builds_build_once_and_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("rootfs/artefact");
        let builds = AtomicUsize::new(0);
        let start = Barrier::new(4);
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        start.wait();
                        build_atomically(&target, |tmp| {
                            builds.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(50));
                            fs::write(tmp.join("file"), "built")?;
                            Ok(())
                        })
                    })
                })
                .collect();
            for handle in handles {
                handle.join().unwrap().unwrap();
            }
        });
        assert_eq!(builds.load(Ordering::SeqCst), 1);
        assert_eq!(fs::read_to_string(target.join("file")).unwrap(), "built");
    }

    #[test]
    fn a_failed_build_leaves_nothing_but_its_lock() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("artefact");
        let error = build_atomically(&target, |tmp| {
            fs::write(tmp.join("half"), "")?;
            anyhow::bail!("the build failed")
        })
        .unwrap_err();
        assert_eq!(error.to_string(), "the build failed");
        let left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["artefact.lock"]);
    }

    #[test]
    fn a_binary_is_static_when_it_is_elf_and_names_no_loader() {
        let mut elf = b"\x7fELF\x02\x01\x01".to_vec();
        elf.resize(8192, 0);
        assert!(is_static_binary(&elf));
        elf[100..127].copy_from_slice(b"/lib64/ld-linux-x86-64.so.2");
        assert!(!is_static_binary(&elf));
        assert!(!is_static_binary(b"#!/bin/sh\n"));
        assert!(!is_static_binary(&std::fs::read("/bin/sh").unwrap()));
    }
}

/// The Debian suite and variant `--rootfs debian` means.
pub const DEFAULT_SUITE: &str = "bookworm";
pub const DEFAULT_VARIANT: &str = "minbase";

/// `ch04 rootfs ...`: build a root filesystem into the cache.
#[derive(clap::Subcommand)]
pub enum RootfsCommand {
    /// The offline default: the host's static busybox and its applets
    Busybox,
    /// A Debian root filesystem made by debootstrap (needs the network)
    Debootstrap {
        /// The Debian release
        #[arg(long, default_value = DEFAULT_SUITE)]
        suite: String,
        /// debootstrap's package set: minbase, buildd, fakechroot or default
        #[arg(long, default_value = DEFAULT_VARIANT)]
        variant: String,
    },
}
