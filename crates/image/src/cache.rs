//! Cached artefacts under the data directory: root filesystems (busybox,
//! debootstrap, ch06's pause) are built atomically: in a temporary
//! directory beside their final place, then renamed there, so a failed or
//! interrupted build never leaves a half-made artefact behind.

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

// ANCHOR: build_atomically
/// Build into `TARGET.tmp-PID`, then rename to `TARGET`; remove the
/// temporary directory if the build fails.
pub fn build_atomically(target: &Path, build: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let parent = target.parent().expect("an artefact has a parent directory");
    fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))?;
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
// ANCHOR_END: build_atomically

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
