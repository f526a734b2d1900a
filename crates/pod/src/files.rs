//! A pod's files under the data directory: pause's root filesystem, the
//! containers' overlays, the logs of what runs detached, the volumes.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ch05::Version;
use pfs_state::names;
use pfs_state::pods::{self, Pod};

/// A root filesystem holding nothing but the pause program (`pause`, its
/// bytes), made once (per version of pause) under the data directory.
pub fn pause_rootfs(pause: &[u8]) -> Result<PathBuf> {
    let dir = ch04::data_dir()
        .join("rootfs")
        .join(format!("pause-{:016x}", fnv1a(pause)));
    if !dir.is_dir() {
        ch04::build_atomically(&dir, |tmp| {
            use std::os::unix::fs::PermissionsExt;
            let binary = tmp.join("pause");
            fs::write(&binary, pause)?;
            fs::set_permissions(&binary, fs::Permissions::from_mode(0o755))?;
            Ok(())
        })?;
    }
    Ok(dir)
}

/// A short fingerprint of the pause binary (FNV-1a), to name its rootfs.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `DATA_DIR/pods/NAME`: the pod's overlays and logs, next to chapter 04's.
pub fn data_dir(pod: &Pod) -> PathBuf {
    ch04::data_dir().join("pods").join(&pod.name)
}

/// `DATA_DIR/pods/POD/volumes/NAME`: a volume of the pod.
pub fn volume_dir(pod: &Pod, name: &str) -> PathBuf {
    data_dir(pod).join("volumes").join(name)
}

/// Make the pod's volumes: empty directories anyone may write to (as
/// Kubernetes makes an `emptyDir`), which live as long as the pod's record.
pub fn make_volumes(pod: &Pod) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for name in &pod.volumes {
        let dir = volume_dir(pod, name);
        fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777))?;
    }
    Ok(())
}

/// Where a detached container's output goes.
pub fn log_path(pod: &Pod, container: &str) -> PathBuf {
    data_dir(pod).join("logs").join(format!("{container}.log"))
}

/// Open (or empty) a log file, making its directory.
pub fn create_log(path: &Path) -> Result<File> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    File::create(path).with_context(|| format!("create {}", path.display()))
}

/// Remove a pod's record and files (nothing of it runs any more).
pub fn forget(pod: &Pod) {
    pods::forget(pod);
    let _ = fs::remove_dir_all(data_dir(pod));
}

/// A detached container that ended keeps its name, cgroup and files until
/// its pod is removed, or until a new container takes its name: remove
/// them now. (A name whose container runs stays taken.)
pub fn forget_exited_container(pod: &Pod, name: &str, version: Version) -> Result<()> {
    if pods::has_exited(pod, name) {
        ch05::new_group_at(version, &pod.cgroup().join(name)).remove()?;
        let dir = data_dir(pod).join("containers").join(name);
        let _ = fs::remove_dir_all(dir);
        names::unregister(&pod.state_dir(), name)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_is_fnv1a_and_tells_binaries_apart() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_ne!(fnv1a(b"pause 1"), fnv1a(b"pause 2"));
    }
}
