//! The image store under the data directory (see the crate's
//! documentation for its layout): verified blobs, unpacked images, and the
//! private work directories of pulls in progress.

use crate::cache::{lock, Lock};
use crate::reference::Reference;
use anyhow::{Context, Result};
use oci_spec::image::Digest;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The layout under the data directory.
pub(crate) struct Store {
    root: PathBuf,
}

/// A pull's private work directory (`tmp/PID-N-NAME`): the rootfs being built
/// and partial blobs. Removed when dropped, which happens on every error.
pub(crate) struct WorkDir {
    pub(crate) path: PathBuf,
}

impl WorkDir {
    pub(crate) fn rootfs(&self) -> PathBuf {
        self.path.join("rootfs")
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

// ANCHOR: impl_store
impl Store {
    // ANCHOR_END: impl_store
    pub(crate) fn open(root: &Path) -> Result<Self> {
        let store = Store {
            root: root.to_path_buf(),
        };
        for dir in ["blobs/sha256", "images", "locks", "tmp"] {
            let dir = root.join(dir);
            fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        }
        store.remove_stale_work_dirs(None);
        Ok(store)
    }

    pub(crate) fn blob_path(&self, digest: &Digest) -> PathBuf {
        blob_file(&self.root, digest)
    }

    pub(crate) fn image_dir(&self, reference: &Reference) -> PathBuf {
        self.root.join("images").join(reference.dir_name())
    }

    /// Wait for, then hold, the lock of one image: `locks/NAME.lock`. (Not
    /// in `images/`, which holds finished images only.)
    pub(crate) fn lock_image(&self, reference: &Reference) -> Result<Lock> {
        lock(
            &self
                .root
                .join("locks")
                .join(format!("{}.lock", reference.dir_name())),
        )
    }

    /// `tmp/PID-N-NAME` for the image `NAME`, whose lock we hold, with an
    /// empty `rootfs` in it, private to root: nobody else may change it
    /// while we unpack (see `unpack`).
    pub(crate) fn new_work_dir(&self, locked: &Reference) -> Result<WorkDir> {
        use std::os::unix::fs::DirBuilderExt;
        let name = locked.dir_name();
        // The pull we waited for may have been killed meanwhile: its PID
        // may not look gone yet (a zombie), but its work is stale.
        self.remove_stale_work_dirs(Some(&name));
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::SeqCst);
        let path = self
            .root
            .join("tmp")
            .join(format!("{}-{n}-{name}", std::process::id()));
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .with_context(|| format!("create {}", path.display()))?;
        let work = WorkDir { path };
        fs::DirBuilder::new().mode(0o755).create(work.rootfs())?;
        Ok(work)
    }

    // ANCHOR: install
    /// The last step, all or nothing: rename the finished work directory to
    /// `images/NAME`. If an older pull is there, the two are swapped in one
    /// step (`renameat2(RENAME_EXCHANGE)`) and the old one is deleted with
    /// the work directory.
    pub(crate) fn install(&self, work: WorkDir, image_dir: &Path) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&work.path, fs::Permissions::from_mode(0o755))?;
        if image_dir.exists() {
            nix::fcntl::renameat2(
                nix::fcntl::AT_FDCWD,
                &work.path,
                nix::fcntl::AT_FDCWD,
                image_dir,
                nix::fcntl::RenameFlags::RENAME_EXCHANGE,
            )
            .with_context(|| format!("replace {}", image_dir.display()))?;
        } else {
            fs::rename(&work.path, image_dir)
                .with_context(|| format!("rename into {}", image_dir.display()))?;
        }
        Ok(()) // `work` is dropped: the old image, if any, is deleted
    }
    // ANCHOR_END: install

    /// Work directories of pulls that died without cleaning up (killed,
    /// power cut): their process is gone, or they are of the image whose
    /// lock we hold (`locked`), so no pull of it runs.
    fn remove_stale_work_dirs(&self, locked: Option<&str>) {
        let Ok(entries) = fs::read_dir(self.root.join("tmp")) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            // PID and N are numbers: the image's name is all after them.
            let mut parts = name.splitn(3, '-');
            let (pid, image) = (parts.next().unwrap_or_default(), parts.nth(1));
            let dead = !pid.is_empty() && !Path::new("/proc").join(pid).exists();
            if dead || (image.is_some() && image == locked) {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
}

fn blob_file(root: &Path, digest: &Digest) -> PathBuf {
    // The digest was validated (hex only), so it is a safe file name.
    root.join("blobs")
        .join(digest.algorithm().to_string())
        .join(digest.digest())
}

/// Was this exact manifest pulled into `image_dir` already?
pub(crate) fn is_up_to_date(image_dir: &Path, digest: &Digest) -> bool {
    let recorded = fs::read_to_string(image_dir.join("digest")).unwrap_or_default();
    recorded == digest.as_ref() && image_dir.join("rootfs").is_dir()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_work_dir_removes_those_of_killed_pulls() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let image = crate::parse_reference("127.0.0.1:5000/stress:v1").unwrap();
        let other = crate::parse_reference("127.0.0.1:5000/stress:v1-old").unwrap();
        let stale = |pid: u32, name: &str| {
            let path = dir.path().join(format!("tmp/{pid}-9-{name}"));
            fs::create_dir_all(path.join("rootfs")).unwrap();
            fs::write(path.join("0123.partial"), "half a blob").unwrap();
            path
        };
        // A pull that was alive at `open` (we waited for its lock), then
        // killed: its PID is gone.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = stale(child.id(), &other.dir_name());
        child.wait().unwrap();
        // A pull of our image that still looks alive (a zombie not reaped
        // yet: here, our own PID): we hold the lock, so it is dead.
        let ours = stale(std::process::id(), &image.dir_name());
        // Another image's pull, alive: not ours to touch.
        let running = stale(std::process::id(), &other.dir_name());
        let work = store.new_work_dir(&image).unwrap();
        assert!(!dead.exists(), "a dead pull's work is still there");
        assert!(!ours.exists(), "a killed pull of our image left its work");
        assert!(running.exists(), "a running pull's work was removed");
        assert!(work.rootfs().is_dir());
    }
}
