//! fstab-style mount options (`nosuid`, `ro`, `rbind`, `mode=755`) as
//! mount(2) takes them: flags, propagation, and the data string for the
//! filesystem.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use nix::mount::MsFlags;

/// One mount's options, sorted out.
#[derive(Debug, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags for mount(2).
    pub flags: MsFlags,
    /// Propagation to set after mounting (`rprivate`, `shared`, ...).
    pub propagation: MsFlags,
    /// What is left, for the filesystem: `mode=755,size=65536k`.
    pub data: String,
    /// `tmpcopyup` (podman's `--tmpfs`): a new tmpfs starts with a copy of
    /// the directory it covers.
    pub copy_up: bool,
}

impl MountOptions {
    /// A bind mount (`bind` or `rbind`).
    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }
}

/// Sort `options` into flags, propagation and data. Options that set a
/// flag and options that clear one (`ro`, `rw`) may come in any order:
/// the last one wins, as with mount(8).
pub fn parse(options: &[String]) -> MountOptions {
    let mut parsed = MountOptions {
        flags: MsFlags::empty(),
        propagation: MsFlags::empty(),
        data: String::new(),
        copy_up: false,
    };
    let mut data = Vec::new();
    for option in options {
        if option == "tmpcopyup" || option == "notmpcopyup" {
            parsed.copy_up = option == "tmpcopyup";
        } else if let Some(propagation) = propagation(option) {
            parsed.propagation |= propagation;
        } else if let Some((set, flag)) = flag(option) {
            parsed.flags.set(flag, set);
        } else {
            data.push(option.as_str());
        }
    }
    parsed.data = data.join(",");
    parsed
}

/// An option that sets (`true`) or clears (`false`) a flag.
fn flag(option: &str) -> Option<(bool, MsFlags)> {
    Some(match option {
        "ro" => (true, MsFlags::MS_RDONLY),
        "rw" => (false, MsFlags::MS_RDONLY),
        "nosuid" => (true, MsFlags::MS_NOSUID),
        "suid" => (false, MsFlags::MS_NOSUID),
        "nodev" => (true, MsFlags::MS_NODEV),
        "dev" => (false, MsFlags::MS_NODEV),
        "noexec" => (true, MsFlags::MS_NOEXEC),
        "exec" => (false, MsFlags::MS_NOEXEC),
        "sync" => (true, MsFlags::MS_SYNCHRONOUS),
        "async" => (false, MsFlags::MS_SYNCHRONOUS),
        "dirsync" => (true, MsFlags::MS_DIRSYNC),
        "remount" => (true, MsFlags::MS_REMOUNT),
        "mand" => (true, MsFlags::MS_MANDLOCK),
        "nomand" => (false, MsFlags::MS_MANDLOCK),
        "noatime" => (true, MsFlags::MS_NOATIME),
        "atime" => (false, MsFlags::MS_NOATIME),
        "nodiratime" => (true, MsFlags::MS_NODIRATIME),
        "diratime" => (false, MsFlags::MS_NODIRATIME),
        "relatime" => (true, MsFlags::MS_RELATIME),
        "norelatime" => (false, MsFlags::MS_RELATIME),
        "strictatime" => (true, MsFlags::MS_STRICTATIME),
        "nostrictatime" => (false, MsFlags::MS_STRICTATIME),
        "bind" => (true, MsFlags::MS_BIND),
        "rbind" => (true, MsFlags::MS_BIND | MsFlags::MS_REC),
        _ => return None,
    })
}

fn propagation(option: &str) -> Option<MsFlags> {
    let rec = MsFlags::MS_REC;
    Some(match option {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | rec,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | rec,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | rec,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | rec,
        _ => return None,
    })
}

/// Copy the tree `from` into the directory `to` (for `tmpcopyup`): files,
/// directories and symlinks, with their modes and owners.
pub fn copy_up(from: &Path, to: &Path) -> Result<()> {
    for entry in fs::read_dir(from).with_context(|| format!("read {}", from.display()))? {
        let entry = entry?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        let meta = fs::symlink_metadata(&source)?;
        let kind = meta.file_type();
        if kind.is_dir() {
            fs::create_dir(&target)?;
            copy_up(&source, &target)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&source)?, &target)?;
        } else if kind.is_file() {
            fs::copy(&source, &target)?;
        } else {
            bail!(
                "tmpcopyup: {} is not a file, directory or symlink",
                source.display()
            );
        }
        if !kind.is_symlink() {
            fs::set_permissions(&target, meta.permissions())?;
        }
        std::os::unix::fs::lchown(&target, Some(meta.uid()), Some(meta.gid()))?;
    }
    Ok(())
}

/// Change the flags or the propagation of the mount at `target`.
pub fn remount(target: &std::path::Path, flags: MsFlags) -> anyhow::Result<()> {
    use anyhow::Context;
    ch01::explain::step(
        &format!("mount(NULL, {target:?}, NULL, {flags:?})"),
        "mount -o remount",
    );
    nix::mount::mount(None::<&str>, target, None::<&str>, flags, None::<&str>)
        .with_context(|| format!("mount({target:?}, {flags:?})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(text: &str) -> Vec<String> {
        text.split(',').map(String::from).collect()
    }

    #[test]
    fn flags_propagation_and_data_are_sorted_out() {
        let parsed = parse(&options("nosuid,strictatime,mode=755,size=65536k,rprivate"));
        assert_eq!(parsed.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(parsed.propagation, MsFlags::MS_PRIVATE | MsFlags::MS_REC);
        assert_eq!(parsed.data, "mode=755,size=65536k");
    }

    #[test]
    fn the_last_of_ro_and_rw_wins() {
        assert!(parse(&options("ro,rw")).flags.is_empty());
        assert_eq!(parse(&options("rw,ro")).flags, MsFlags::MS_RDONLY);
    }

    #[test]
    fn tmpcopyup_is_ours_not_the_filesystems() {
        let parsed = parse(&options("nosuid,tmpcopyup,size=1m"));
        assert!(parsed.copy_up);
        assert_eq!(parsed.data, "size=1m");
        assert!(!parse(&options("tmpcopyup,notmpcopyup")).copy_up);
    }

    #[test]
    fn podmans_options_are_sorted_out() {
        let parsed = parse(&options(
            "nosuid,noexec,newinstance,ptmxmode=0666,mode=0620,gid=5",
        ));
        assert_eq!(parsed.flags, MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC);
        assert_eq!(parsed.data, "newinstance,ptmxmode=0666,mode=0620,gid=5");
        let bind = parse(&options("bind,rprivate,nosuid,noexec,nodev"));
        assert!(bind.is_bind() && bind.propagation == MsFlags::MS_PRIVATE | MsFlags::MS_REC);
    }

    #[test]
    fn copy_up_copies_files_directories_and_links() {
        let base = std::env::temp_dir().join(format!("pfs-copy-up-{}", std::process::id()));
        let (from, to) = (base.join("from"), base.join("to"));
        fs::create_dir_all(from.join("dir")).unwrap();
        fs::create_dir_all(&to).unwrap();
        fs::write(from.join("dir/file"), "x").unwrap();
        std::os::unix::fs::symlink("dir/file", from.join("link")).unwrap();
        copy_up(&from, &to).unwrap();
        assert_eq!(fs::read_to_string(to.join("link")).unwrap(), "x");
        assert!(fs::symlink_metadata(to.join("link")).unwrap().is_symlink());
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn rbind_is_a_recursive_bind() {
        let parsed = parse(&options("rbind,ro"));
        assert!(parsed.is_bind());
        assert!(parsed.flags.contains(MsFlags::MS_REC | MsFlags::MS_RDONLY));
    }
}
