//! # Unpacking image layers safely
//!
//! An image layer is a tar stream. Applying it means writing each entry
//! under the root filesystem we are building. A layer comes from the
//! network, so it is untrusted input, and `tar xf` of untrusted input is
//! dangerous: an entry may try to write outside the target directory.
//! Every entry goes through three checks before anything is written:
//!
//! 1. its path is made of plain names below the target: a `..`
//!    (`../../etc/passwd`) is refused, and an absolute path (`/etc/passwd`)
//!    is read from the target's root, as GNU tar and Docker do (umoci
//!    writes the root directory as `/`);
//! 2. no directory on the way to it is a symlink: a layer may create
//!    `evil -> /etc` and then write `evil/passwd`, which would land in the
//!    host's `/etc`, so an entry whose parent goes through a symlink is
//!    refused (Docker instead resolves such a symlink *inside* the root;
//!    refusing is simpler and no layer made by `docker build` or umoci
//!    needs it);
//! 3. an existing file in its place is removed first and the new one is
//!    created with `O_EXCL`, which never follows a symlink: so a symlink
//!    left there by a lower layer is replaced, never written through.
//!
//! A hard link's target goes through checks 1 and 2 as well, so it can
//! only name a file inside the target (`link(2)` never follows a symlink).
//! Symlinks themselves may point anywhere: inside the container they are
//! resolved against the container's root, and the checks above make sure
//! we never follow them while unpacking.
//!
//! We check a path, then act on it. That is race-free only because nobody
//! else writes into the target while we unpack (it is a fresh private
//! directory); a tool that unpacks into a directory others can change must
//! walk it with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` instead.
//!
//! Whiteouts are how a layer deletes what a lower layer made (the OCI image
//! spec's rules, those of aufs): `DIR/.wh.NAME` deletes `DIR/NAME`, and
//! `DIR/.wh..wh..opq` empties `DIR` ("opaque directory"). Both apply to
//! lower layers only: an entry of the same layer is kept.
//!
//! Device nodes (`c` and `b` entries) are skipped and counted: the
//! container's `/dev` is a fresh tmpfs that `ch04 run` fills with the few
//! devices a container needs. A device node in an image is a classic way to
//! hand a container a raw host disk (`b 8 0` is `/dev/sda`).
//!
//! Extended attributes (e.g. file capabilities) are not applied, and
//! directories keep the time of unpacking as their mtime.

use anyhow::{bail, Context, Result};
use std::cell::Cell;
use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs::{self, OpenOptions, Permissions};
use std::io::{self, BufWriter, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};
use tar::{Archive, Entry, EntryType, Header};

/// The name prefix that marks a whiteout file.
const WHITEOUT_PREFIX: &str = ".wh.";
/// The whiteout file that makes its directory opaque.
const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";

/// What applying one layer did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LayerStats {
    /// Files, directories, links and fifos written.
    pub written: u64,
    /// Whiteouts applied (`.wh.NAME` and opaque directories).
    pub whiteouts: u64,
    /// Device nodes skipped (see the module's documentation).
    pub devices_skipped: u64,
}

// ANCHOR: apply_layer
/// Apply one layer (an uncompressed tar stream) onto the root filesystem
/// `target`, which must exist. An entry that would write outside `target`
/// stops the layer with an error naming it; `target` is then half-written
/// and the caller throws it away.
pub fn apply_layer(tar_stream: impl Read, target: &Path) -> Result<LayerStats> {
    let mut layer = Layer::new(target);
    let position = Rc::new(Cell::new(0));
    let mut archive = Archive::new(CountingReader {
        inner: tar_stream,
        position: position.clone(),
    });
    let mut data_end = 0; // where the last entry's data ends in the stream
    for entry in archive.entries().context("read the layer's tar stream")? {
        let mut entry = match entry {
            Ok(entry) => entry,
            // Some writers (umoci 0.4's `insert`) stop right after the last
            // file's data, with no padding and no end-of-archive blocks. Go's
            // tar reader, and so Docker, accepts that: so do we, exactly there.
            Err(_) if data_end > 0 && position.get() == data_end => break,
            Err(e) => return Err(e).context("read the layer's tar stream"),
        };
        data_end = entry.raw_file_position() + entry.size();
        let shown = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        layer
            .apply_entry(&mut entry)
            .with_context(|| format!("layer entry `{shown}`"))?;
    }
    layer.apply_directory_modes()?;
    Ok(layer.stats)
}
// ANCHOR_END: apply_layer

/// Counts the bytes the tar reader took from the stream.
struct CountingReader<R> {
    inner: R,
    position: Rc<Cell<u64>>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.position.set(self.position.get() + n as u64);
        Ok(n)
    }
}

/// The state of one layer being applied.
struct Layer<'a> {
    target: &'a Path,
    /// Only root may give files to other users (`chown`).
    as_root: bool,
    /// Paths written by this layer (and their parents): whiteouts must
    /// leave them alone.
    written: HashSet<PathBuf>,
    /// Directory modes, applied at the end: a read-only directory must
    /// stay writable until its content is unpacked.
    directory_modes: Vec<(PathBuf, u32)>,
    stats: LayerStats,
}

// ANCHOR: impl_layer
impl<'a> Layer<'a> {
    // ANCHOR_END: impl_layer
    fn new(target: &'a Path) -> Self {
        Layer {
            target,
            as_root: nix::unistd::geteuid().is_root(),
            written: HashSet::new(),
            directory_modes: Vec::new(),
            stats: LayerStats::default(),
        }
    }

    // ANCHOR: apply_entry
    /// Check one entry's path, then write it (or apply it, if it is a
    /// whiteout).
    fn apply_entry<R: Read>(&mut self, entry: &mut Entry<R>) -> Result<()> {
        let relative = confined_path(&entry.path()?)?;
        let Some(name) = relative.file_name().map(OsStr::to_os_string) else {
            return Ok(()); // the root itself (`./`): it already exists
        };
        let parent_relative = relative.parent().unwrap_or(Path::new(""));
        if let Some(whiteout) = whiteout_kind(&name)? {
            return self.apply_whiteout(parent_relative, whiteout);
        }
        let kind = entry.header().entry_type();
        if kind.is_character_special() || kind.is_block_special() {
            self.stats.devices_skipped += 1;
            return Ok(());
        }
        if kind.is_pax_global_extensions() {
            return Ok(()); // metadata for the whole archive, nothing to write
        }
        let parent = resolve_parent(self.target, parent_relative, true)?
            .context("missing parent directory")?;
        let path = parent.join(&name);
        let existing_dir = make_room(&path, kind.is_dir())?;
        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.write_file(entry, &path)?
            }
            EntryType::Directory => self.make_directory(entry, &path, &relative, existing_dir)?,
            EntryType::Symlink => self.make_symlink(entry, &path)?,
            EntryType::Link => self.make_hard_link(entry, &path)?,
            EntryType::Fifo => self.make_fifo(entry, &path)?,
            other => bail!("unsupported tar entry type {:?}", other.as_byte() as char),
        }
        self.remember_written(&relative);
        self.stats.written += 1;
        Ok(())
    }
    // ANCHOR_END: apply_entry

    /// A regular file: created with `O_EXCL` (never through a symlink),
    /// then its content, owner, mode and modification time.
    fn write_file<R: Read>(&mut self, entry: &mut Entry<R>, path: &Path) -> Result<()> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("create {}", path.display()))?;
        // A big buffer: fewer write(2) calls for big files.
        let mut writer = BufWriter::with_capacity(256 * 1024, file);
        io::copy(entry, &mut writer).with_context(|| format!("write {}", path.display()))?;
        let file = writer.into_inner().map_err(|e| e.into_error())?;
        let header = entry.header();
        self.set_owner(header, path)?; // before chmod: chown clears the set-user-ID bit
        file.set_permissions(Permissions::from_mode(header.mode()? & 0o7777))?;
        file.set_modified(UNIX_EPOCH + Duration::from_secs(header.mtime()?))?;
        Ok(())
    }

    /// A directory: made if it does not exist yet (a lower layer's
    /// directory is merged with this one), its mode applied at the end.
    fn make_directory<R: Read>(
        &mut self,
        entry: &Entry<R>,
        path: &Path,
        relative: &Path,
        existing_dir: bool,
    ) -> Result<()> {
        if !existing_dir {
            fs::create_dir(path).with_context(|| format!("mkdir {}", path.display()))?;
        }
        let header = entry.header();
        self.set_owner(header, path)?;
        self.directory_modes
            .push((relative.to_path_buf(), header.mode()? & 0o7777));
        Ok(())
    }

    /// A symlink: its target is stored as it is and never followed here.
    fn make_symlink<R: Read>(&mut self, entry: &Entry<R>, path: &Path) -> Result<()> {
        let link_target = entry.link_name()?.context("symlink without a target")?;
        std::os::unix::fs::symlink(&link_target, path)
            .with_context(|| format!("symlink {}", path.display()))?;
        self.set_owner(entry.header(), path)
    }

    // ANCHOR: hard_link
    /// A hard link: its target is a path inside the archive, checked like
    /// an entry's path, so it can only name a file under `target`.
    fn make_hard_link<R: Read>(&mut self, entry: &Entry<R>, path: &Path) -> Result<()> {
        let link_name = entry.link_name()?.context("hard link without a target")?;
        let relative = confined_path(&link_name).context("hard link target")?;
        let Some(name) = relative.file_name() else {
            bail!("hard link to the root directory");
        };
        let parent_relative = relative.parent().unwrap_or(Path::new(""));
        let source = resolve_parent(self.target, parent_relative, false)
            .context("hard link target")?
            .context("hard link to a file that does not exist")?
            .join(name);
        let metadata = fs::symlink_metadata(&source)
            .with_context(|| format!("hard link to {}", link_name.display()))?;
        if metadata.is_dir() {
            bail!("hard link to a directory");
        }
        // linkat(2) without AT_SYMLINK_FOLLOW: a symlink is linked, not followed.
        fs::hard_link(&source, path).with_context(|| format!("link {}", path.display()))?;
        Ok(())
    }
    // ANCHOR_END: hard_link

    /// A named pipe: harmless, so it is made.
    fn make_fifo<R: Read>(&mut self, entry: &Entry<R>, path: &Path) -> Result<()> {
        let header = entry.header();
        let mode = nix::sys::stat::Mode::from_bits_truncate(header.mode()? & 0o777);
        nix::unistd::mkfifo(path, mode).with_context(|| format!("mkfifo {}", path.display()))?;
        self.set_owner(header, path)
    }

    /// Give `path` the owner its entry names, if we may (as root); a
    /// symlink gets it itself (`lchown` never follows one).
    fn set_owner(&self, header: &Header, path: &Path) -> Result<()> {
        if self.as_root {
            let (uid, gid) = (header.uid()? as u32, header.gid()? as u32);
            std::os::unix::fs::lchown(path, Some(uid), Some(gid))
                .with_context(|| format!("chown {}", path.display()))?;
        }
        Ok(())
    }

    // ANCHOR: apply_whiteout
    /// `DIR/.wh.NAME` deletes `DIR/NAME`; `DIR/.wh..wh..opq` deletes what
    /// `DIR` holds. Only what lower layers made is deleted.
    fn apply_whiteout(&mut self, dir_relative: &Path, whiteout: Whiteout) -> Result<()> {
        if whiteout == Whiteout::Ignored {
            return Ok(());
        }
        let create_missing = whiteout == Whiteout::Opaque;
        let Some(dir) = resolve_parent(self.target, dir_relative, create_missing)? else {
            return Ok(()); // nothing below: nothing to delete
        };
        match whiteout {
            Whiteout::Remove(name) => {
                if !self.written.contains(&dir_relative.join(&name)) {
                    remove_if_present(&dir.join(&name))?;
                }
            }
            Whiteout::Opaque => {
                for child in fs::read_dir(&dir)? {
                    let child = child?;
                    if !self.written.contains(&dir_relative.join(child.file_name())) {
                        remove_if_present(&child.path())?;
                    }
                }
            }
            Whiteout::Ignored => {}
        }
        self.stats.whiteouts += 1;
        Ok(())
    }
    // ANCHOR_END: apply_whiteout

    /// Remember a path written by this layer, and its parents.
    fn remember_written(&mut self, relative: &Path) {
        for path in relative.ancestors() {
            if path.as_os_str().is_empty() || !self.written.insert(path.to_path_buf()) {
                break; // the parents are in already
            }
        }
    }

    /// Give directories their modes, deepest first, once their content is
    /// written.
    fn apply_directory_modes(&mut self) -> Result<()> {
        for (relative, mode) in self.directory_modes.iter().rev() {
            let path = self.target.join(relative);
            // A later entry may have replaced the directory: check again.
            if fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
                fs::set_permissions(&path, Permissions::from_mode(*mode))
                    .with_context(|| format!("chmod {}", path.display()))?;
            }
        }
        Ok(())
    }
}

// ANCHOR: confined_path
/// Check 1: an entry's path as plain names below the target
/// (`./etc/passwd` and `/etc/passwd` → `etc/passwd`). A `..` is refused:
/// climbing back down again (`a/../b`) is legal but never needed.
pub fn confined_path(path: &Path) -> Result<PathBuf> {
    let mut clean = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(name) => clean.push(name),
            // The target is the root: `/` is the target, not the host's `/`.
            Component::CurDir | Component::RootDir => {}
            Component::Prefix(_) => bail!("refused: {}", path.display()), // Windows only
            Component::ParentDir => bail!("refused: `..` in {}", path.display()),
        }
    }
    Ok(clean)
}
// ANCHOR_END: confined_path

// ANCHOR: resolve_parent
/// Check 2: walk from `target` down to the directory `relative`, one name
/// at a time, refusing to go through a symlink. With `create`, missing
/// directories are made (archives may omit them); without, a missing one
/// gives `None`.
pub fn resolve_parent(target: &Path, relative: &Path, create: bool) -> Result<Option<PathBuf>> {
    let mut dir = target.to_path_buf();
    for name in relative.components() {
        dir.push(name);
        match fs::symlink_metadata(&dir) {
            Ok(metadata) if metadata.is_dir() => {}
            Ok(metadata) if metadata.file_type().is_symlink() => {
                bail!(
                    "refused: the path goes through the symlink {}",
                    shown(target, &dir)
                )
            }
            Ok(_) => bail!("{} is not a directory", shown(target, &dir)),
            Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                fs::create_dir(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
                fs::set_permissions(&dir, Permissions::from_mode(0o755))?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("lstat {}", dir.display())),
        }
    }
    Ok(Some(dir))
}
// ANCHOR_END: resolve_parent

/// Check 3: clear the place of a new entry. An existing directory stays if
/// the new entry is a directory too (it is merged); anything else there
/// (file, symlink, directory tree) is removed without following symlinks.
/// Returns whether a directory was kept.
fn make_room(path: &Path, new_is_dir: bool) -> Result<bool> {
    match fs::symlink_metadata(path) {
        Ok(metadata) if metadata.is_dir() && new_is_dir => Ok(true),
        Ok(_) => {
            remove_if_present(path)?;
            Ok(false)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("lstat {}", path.display())),
    }
}

/// Delete a file, a symlink (not what it points to) or a directory tree.
fn remove_if_present(path: &Path) -> Result<()> {
    let result = match fs::symlink_metadata(path) {
        Ok(metadata) if metadata.is_dir() => fs::remove_dir_all(path), // does not follow symlinks
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => Err(e),
    };
    result.with_context(|| format!("remove {}", path.display()))
}

/// What a whiteout file asks for.
#[derive(Debug, PartialEq, Eq)]
enum Whiteout {
    /// `.wh.NAME`: delete NAME.
    Remove(OsString),
    /// `.wh..wh..opq`: empty the directory.
    Opaque,
    /// Other `.wh..wh.` names: skipped.
    Ignored,
}

/// Is this file name a whiteout? `.wh.`, `.wh..` and `.wh...` are
/// refused: they would delete the directory itself or its parent.
fn whiteout_kind(name: &OsStr) -> Result<Option<Whiteout>> {
    let bytes = name.as_bytes();
    if bytes == OPAQUE_WHITEOUT.as_bytes() {
        return Ok(Some(Whiteout::Opaque));
    }
    let Some(deleted) = bytes.strip_prefix(WHITEOUT_PREFIX.as_bytes()) else {
        return Ok(None);
    };
    if deleted.starts_with(WHITEOUT_PREFIX.as_bytes()) {
        // `.wh..wh.plnk` and the like: aufs bookkeeping, not part of the image.
        return Ok(Some(Whiteout::Ignored));
    }
    if matches!(deleted, b"" | b"." | b"..") {
        bail!("refused: whiteout of an invalid name");
    }
    Ok(Some(Whiteout::Remove(
        OsStr::from_bytes(deleted).to_os_string(),
    )))
}

/// A path inside the target as the archive names it, for messages.
fn shown(target: &Path, path: &Path) -> String {
    path.strip_prefix(target)
        .unwrap_or(path)
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tar::{Builder, Header};

    /// One entry of a crafted layer. Names and link targets are written as
    /// raw bytes: the `tar` crate's builder refuses `..` and absolute paths,
    /// and a malicious layer is exactly what we want to build.
    enum Item<'a> {
        File(&'a str, &'a [u8]),
        Dir(&'a str),
        Symlink(&'a str, &'a str),
        HardLink(&'a str, &'a str),
        CharDevice(&'a str),
        Fifo(&'a str),
    }

    fn header(name: &str, kind: EntryType, mode: u32, size: u64, link: &str) -> Header {
        let mut header = Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(size);
        header.set_mtime(1_700_000_000);
        header.set_uid(nix::unistd::geteuid().as_raw() as u64);
        header.set_gid(nix::unistd::getegid().as_raw() as u64);
        let old = header.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        header.set_cksum();
        header
    }

    /// A tar stream holding `items`, in memory.
    fn layer(items: &[Item]) -> Vec<u8> {
        let mut builder = Builder::new(Vec::new());
        for item in items {
            let (header, data): (Header, &[u8]) = match item {
                Item::File(name, data) => (
                    header(name, EntryType::Regular, 0o644, data.len() as u64, ""),
                    data,
                ),
                Item::Dir(name) => (header(name, EntryType::Directory, 0o755, 0, ""), b""),
                Item::Symlink(name, to) => (header(name, EntryType::Symlink, 0o777, 0, to), b""),
                Item::HardLink(name, to) => (header(name, EntryType::Link, 0o644, 0, to), b""),
                Item::CharDevice(name) => (header(name, EntryType::Char, 0o666, 0, ""), b""),
                Item::Fifo(name) => (header(name, EntryType::Fifo, 0o600, 0, ""), b""),
            };
            builder.append(&header, data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    /// A temporary directory holding `rootfs/` (the target) and `outside/`
    /// (which no layer may touch), with a secret in it.
    struct Scene {
        _dir: tempfile::TempDir,
        rootfs: PathBuf,
        outside: PathBuf,
    }

    impl Scene {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let rootfs = dir.path().join("rootfs");
            let outside = dir.path().join("outside");
            fs::create_dir(&rootfs).unwrap();
            fs::create_dir(&outside).unwrap();
            fs::write(outside.join("secret"), "host secret").unwrap();
            Scene {
                _dir: dir,
                rootfs,
                outside,
            }
        }

        /// Unpack a layer holding `items`; it must succeed.
        fn apply(&self, items: &[Item]) -> LayerStats {
            self.apply_stream(&layer(items))
                .expect("the layer should unpack")
        }

        fn apply_stream(&self, stream: &[u8]) -> Result<LayerStats> {
            apply_layer(stream, &self.rootfs)
        }

        /// The outside directory holds only its secret, unchanged and not
        /// linked from anywhere.
        fn assert_outside_untouched(&self) {
            let names: Vec<_> = fs::read_dir(&self.outside)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(
                names,
                ["secret"],
                "something was written outside the target"
            );
            let secret = self.outside.join("secret");
            assert_eq!(fs::read_to_string(&secret).unwrap(), "host secret");
            use std::os::unix::fs::MetadataExt;
            assert_eq!(
                fs::metadata(&secret).unwrap().nlink(),
                1,
                "secret hard-linked"
            );
        }

        /// Applying `items` fails, with an error that mentions `what`.
        fn assert_refuses(&self, items: &[Item], what: &str) {
            let error = format!(
                "{:#}",
                self.apply_stream(&layer(items))
                    .expect_err("the layer should be refused")
            );
            assert!(error.contains(what), "unexpected error: {error}");
        }

        fn abs_outside(&self, name: &str) -> String {
            self.outside.join(name).display().to_string()
        }
    }

    #[test]
    fn files_directories_and_links_are_unpacked() {
        let scene = Scene::new();
        let stats = scene.apply(&[
            Item::Dir("./"),
            Item::Dir("./etc/"),
            Item::File("./etc/os-release", b"NAME=test\n"),
            Item::File("usr/bin/tool", b"#!/bin/sh\n"), // parent not listed
            Item::Symlink("bin", "usr/bin"),
            Item::Symlink("etc/absolute", "/etc/os-release"),
            Item::HardLink("etc/os-release.hard", "etc/os-release"),
            Item::Fifo("run.fifo"),
        ]);
        let root = &scene.rootfs;
        assert_eq!(
            fs::read_to_string(root.join("etc/os-release")).unwrap(),
            "NAME=test\n"
        );
        assert_eq!(
            fs::read_to_string(root.join("bin/tool")).unwrap(),
            "#!/bin/sh\n"
        );
        assert_eq!(
            fs::read_link(root.join("etc/absolute")).unwrap(),
            Path::new("/etc/os-release")
        );
        assert_eq!(
            fs::read_to_string(root.join("etc/os-release.hard")).unwrap(),
            "NAME=test\n"
        );
        let mode = fs::metadata(root.join("etc/os-release"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o644);
        use std::os::unix::fs::FileTypeExt;
        assert!(fs::symlink_metadata(root.join("run.fifo"))
            .unwrap()
            .file_type()
            .is_fifo());
        assert_eq!(stats.written, 7);
        scene.assert_outside_untouched();
    }

    #[test]
    fn dot_dot_is_refused() {
        let scene = Scene::new();
        scene.assert_refuses(&[Item::File("../outside/evil", b"x")], "`..`");
        scene.assert_refuses(&[Item::File("etc/../../outside/evil", b"x")], "`..`");
        scene.assert_outside_untouched();
    }

    #[test]
    fn an_absolute_path_stays_inside() {
        let scene = Scene::new();
        let absolute = scene.abs_outside("evil");
        scene.apply(&[Item::Dir("/"), Item::File(&absolute, b"x")]);
        let inside = scene.rootfs.join(absolute.trim_start_matches('/'));
        assert_eq!(fs::read_to_string(inside).unwrap(), "x");
        scene.assert_outside_untouched();
    }

    #[test]
    fn writing_through_a_symlink_is_refused() {
        let scene = Scene::new();
        let absolute = scene.outside.display().to_string();
        for link_target in [absolute.as_str(), "../outside"] {
            scene.assert_refuses(
                &[
                    Item::Symlink("evil", link_target),
                    Item::File("evil/planted", b"x"),
                ],
                "goes through the symlink evil",
            );
            // A directory entry below the symlink is refused just the same.
            scene.assert_refuses(
                &[Item::Symlink("evil", link_target), Item::Dir("evil/sub")],
                "symlink",
            );
        }
        scene.assert_outside_untouched();
    }

    #[test]
    fn a_symlink_from_a_lower_layer_is_not_written_through() {
        let scene = Scene::new();
        // Layer 1 plants symlinks; layer 2 writes through them.
        scene.apply(&[
            Item::Symlink("etc", &scene.outside.display().to_string()),
            Item::Symlink("passwd", &scene.abs_outside("secret")),
        ]);
        scene.assert_refuses(&[Item::File("etc/secret", b"overwritten")], "symlink");
        // A file entry in the symlink's own place replaces the symlink.
        scene.apply(&[Item::File("passwd", b"mine")]);
        let passwd = scene.rootfs.join("passwd");
        assert!(fs::symlink_metadata(&passwd).unwrap().is_file());
        assert_eq!(fs::read_to_string(passwd).unwrap(), "mine");
        scene.assert_outside_untouched();
    }

    #[test]
    fn hard_links_to_outside_are_refused() {
        let scene = Scene::new();
        scene.assert_refuses(&[Item::HardLink("stolen", "../outside/secret")], "`..`");
        // An absolute target is read inside the target, where it is missing.
        let absolute = scene.abs_outside("secret");
        scene.assert_refuses(&[Item::HardLink("stolen", &absolute)], "does not exist");
        let outside = scene.outside.display().to_string();
        scene.assert_refuses(
            &[
                Item::Symlink("evil", &outside),
                Item::HardLink("stolen", "evil/secret"),
            ],
            "symlink",
        );
        assert!(!scene.rootfs.join("stolen").exists());
        scene.assert_outside_untouched();
    }

    #[test]
    fn a_hard_link_to_a_symlink_links_the_symlink_itself() {
        let scene = Scene::new();
        scene.apply(&[
            Item::Symlink("link", &scene.abs_outside("secret")),
            Item::HardLink("hard", "link"),
        ]);
        let hard = scene.rootfs.join("hard");
        assert!(fs::symlink_metadata(&hard)
            .unwrap()
            .file_type()
            .is_symlink());
        scene.assert_outside_untouched();
    }

    /// A scene with a lower layer for whiteouts to delete from.
    fn scene_with_lower_layer() -> Scene {
        let scene = Scene::new();
        scene.apply(&[
            Item::File("etc/motd", b"hello"),
            Item::File("etc/keep", b"keep"),
            Item::File("var/cache/a/b", b"cached"),
            Item::Symlink("link", &scene.abs_outside("secret")),
            Item::File("app/old", b"old"),
            Item::File("app/sub/deep", b"old"),
            Item::File("other/file", b"kept"),
        ]);
        scene
    }

    #[test]
    fn whiteouts_delete_lower_files_and_directories() {
        let scene = scene_with_lower_layer();
        let stats = scene.apply(&[
            Item::File("etc/.wh.motd", b""),
            Item::File("var/.wh.cache", b""),
            Item::File(".wh.link", b""),
            Item::File("nothere/.wh.file", b""), // nothing to delete
        ]);
        let root = &scene.rootfs;
        assert!(!root.join("etc/motd").exists());
        assert!(
            !root.join("etc/.wh.motd").exists(),
            "a whiteout is not a file"
        );
        assert!(root.join("etc/keep").exists());
        assert!(!root.join("var/cache").exists());
        assert!(fs::symlink_metadata(root.join("link")).is_err());
        assert!(!root.join("nothere").exists());
        assert_eq!(stats.whiteouts, 3);
        scene.assert_outside_untouched(); // the symlink went, not its target
    }

    #[test]
    fn a_whiteout_spares_its_own_layer() {
        let scene = Scene::new();
        scene.apply(&[
            Item::File("etc/new", b"new"),
            Item::File("etc/.wh.new", b""),
        ]);
        assert!(scene.rootfs.join("etc/new").exists());
    }

    #[test]
    fn an_opaque_directory_hides_lower_content_only() {
        let scene = scene_with_lower_layer();
        scene.apply(&[
            Item::Dir("app"),
            Item::File("app/-first", b"same layer, before the marker"),
            Item::File("app/.wh..wh..opq", b""),
            Item::File("app/new", b"new"),
        ]);
        let root = &scene.rootfs;
        let mut names: Vec<_> = fs::read_dir(root.join("app"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["-first", "new"]);
        assert!(root.join("other/file").exists());
    }

    #[test]
    fn whiteouts_cannot_escape() {
        let scene = Scene::new();
        for name in ["etc/.wh..", "etc/.wh.", ".wh..", "etc/.wh..."] {
            scene.assert_refuses(&[Item::File(name, b"")], "invalid name");
        }
        scene.assert_refuses(&[Item::File("../outside/.wh.secret", b"")], "`..`");
        let outside = scene.outside.display().to_string();
        scene.assert_refuses(
            &[
                Item::Symlink("evil", &outside),
                Item::File("evil/.wh.secret", b""),
            ],
            "symlink",
        );
        scene.assert_refuses(&[Item::File("evil/.wh..wh..opq", b"")], "symlink");
        scene.assert_outside_untouched();
    }

    #[test]
    fn device_nodes_are_skipped() {
        let scene = Scene::new();
        let stats = scene.apply(&[
            Item::CharDevice("dev/null"),
            Item::File("etc/hostname", b"box"),
        ]);
        assert_eq!(stats.devices_skipped, 1);
        assert!(fs::symlink_metadata(scene.rootfs.join("dev/null")).is_err());
        assert!(scene.rootfs.join("etc/hostname").exists());
    }

    #[test]
    fn a_file_replaces_a_lower_directory_and_back() {
        let scene = Scene::new();
        scene.apply(&[Item::File("opt/tool/bin", b"x")]);
        scene.apply(&[Item::File("opt/tool", b"now a file")]);
        assert_eq!(
            fs::read_to_string(scene.rootfs.join("opt/tool")).unwrap(),
            "now a file"
        );
        scene.apply(&[Item::Dir("opt/tool")]);
        assert!(scene.rootfs.join("opt/tool").is_dir());
    }

    #[test]
    fn a_read_only_directory_gets_its_mode_after_its_content() {
        let scene = Scene::new();
        // A directory 0555 followed by a file inside it.
        let mut builder = Builder::new(Vec::new());
        builder
            .append(&header("ro", EntryType::Directory, 0o555, 0, ""), &b""[..])
            .unwrap();
        builder
            .append(
                &header("ro/file", EntryType::Regular, 0o644, 1, ""),
                &b"x"[..],
            )
            .unwrap();
        let stream = builder.into_inner().unwrap();
        apply_layer(&stream[..], &scene.rootfs).unwrap();
        let mode = fs::metadata(scene.rootfs.join("ro"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o555);
        assert!(scene.rootfs.join("ro/file").exists());
    }

    #[test]
    fn a_stream_may_end_right_after_the_last_file() {
        let scene = Scene::new();
        let mut stream = layer(&[Item::Dir("etc"), Item::File("etc/last", b"four")]);
        stream.truncate(2 * 512 + 4); // two headers and the data, nothing after
        scene.apply_stream(&stream).unwrap();
        assert_eq!(
            fs::read_to_string(scene.rootfs.join("etc/last")).unwrap(),
            "four"
        );
        // One byte less is a truncated file: an error.
        let scene = Scene::new();
        stream.truncate(2 * 512 + 3);
        assert!(scene.apply_stream(&stream).is_err());
        // A partial header after the last file: an error too.
        let scene = Scene::new();
        let mut stream = layer(&[Item::File("a", b"four"), Item::File("b", b"x")]);
        stream.truncate(1024 + 100);
        assert!(scene.apply_stream(&stream).is_err());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let scene = Scene::new();
        let garbage = vec![0x42u8; 1024];
        assert!(apply_layer(&garbage[..], &scene.rootfs).is_err());
        let mut truncated = layer(&[Item::File("big", &[7u8; 4096])]);
        truncated.truncate(1024);
        assert!(apply_layer(&truncated[..], &scene.rootfs).is_err());
    }
}
