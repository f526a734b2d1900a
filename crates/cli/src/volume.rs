//! `-v HOST:CONTAINER[:ro|:rw]` and `--tmpfs PATH[:size=SIZE]`, parsed and
//! checked while the command line is read, before anything is created.
//! Mounting them is chapter 04's lesson; this is only their plumbing.

use std::path::{Component, Path, PathBuf};

/// What is mounted on a volume's target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A host file or directory, bind-mounted.
    Host(PathBuf),
    /// A fresh tmpfs, with its mount options: `mode=1777` (anyone may
    /// write, only the owner delete, as in `/tmp`) and `size=` when given.
    Tmpfs(String),
}

/// One `-v` or `--tmpfs`: what goes where in the container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Volume {
    pub source: Source,
    /// An absolute path in the container, without `..`.
    pub target: PathBuf,
    pub read_only: bool,
}

/// The volume options of `run`.
#[derive(clap::Args, Debug)]
#[group(skip)]
pub struct VolumeArgs {
    /// Bind-mount a host path into the container, read-only with :ro
    #[arg(short = 'v', long = "volume", value_name = "HOST:CONTAINER[:ro]", value_parser = parse_bind)]
    pub volumes: Vec<Volume>,
    /// Mount a fresh tmpfs at PATH (nosuid, nodev, mode 1777)
    #[arg(long, value_name = "PATH[:size=SIZE]", value_parser = parse_tmpfs)]
    pub tmpfs: Vec<Volume>,
}

impl VolumeArgs {
    /// Every volume, in [`in_mount_order`].
    pub fn in_mount_order(&self) -> Vec<Volume> {
        in_mount_order([&self.volumes[..], &self.tmpfs].concat())
    }
}

/// The order volumes must be mounted in: a volume inside another after
/// it, or the other would hide it.
pub fn in_mount_order(mut volumes: Vec<Volume>) -> Vec<Volume> {
    volumes.sort_by_key(|volume| volume.target.components().count());
    volumes
}

impl Volume {
    /// Whether the target is a file (a host file is bind-mounted).
    pub fn is_file(&self) -> bool {
        matches!(&self.source, Source::Host(host) if !host.is_dir())
    }
}

/// `HOST:CONTAINER[:ro|:rw]` (clap's `value_parser` for `-v`).
pub fn parse_bind(text: &str) -> Result<Volume, String> {
    let (host, target, read_only) = split_bind(text)?;
    let host = PathBuf::from(host);
    if !host.is_absolute() {
        return Err(format!("host path {host:?} must be absolute (try $PWD/…)"));
    }
    if !host.exists() {
        return Err(format!(
            "host path {host:?} does not exist: create it first"
        ));
    }
    Ok(Volume {
        source: Source::Host(host),
        target: container_path(target)?,
        read_only,
    })
}

/// `SOURCE:CONTAINER[:ro|:rw]` split, the container path checked; the
/// source is chapter 06's volume name or a host path.
pub fn split_bind(text: &str) -> Result<(&str, &str, bool), String> {
    let mut parts = text.splitn(3, ':');
    let (source, target) = match (parts.next(), parts.next()) {
        (Some(source), Some(target)) if !source.is_empty() => (source, target),
        _ => return Err("expected SOURCE:CONTAINER_PATH[:ro]".into()),
    };
    let read_only = match parts.next() {
        None | Some("rw") => false,
        Some("ro") => true,
        Some(other) => return Err(format!("unknown option {other:?}: use ro or rw")),
    };
    container_path(target)?;
    Ok((source, target, read_only))
}

/// `PATH[:size=SIZE]` (clap's `value_parser` for `--tmpfs`).
pub fn parse_tmpfs(text: &str) -> Result<Volume, String> {
    let (target, options) = match text.split_once(':') {
        None => (text, "mode=1777".to_string()),
        Some((target, option)) => match option.strip_prefix("size=") {
            Some(size) if is_size(size) => (target, format!("mode=1777,size={size}")),
            Some(size) => return Err(format!("bad size {size:?}: write e.g. 64k, 16m, 1g or 50%")),
            None => return Err(format!("unknown option {option:?}: only size=SIZE")),
        },
    };
    Ok(Volume {
        source: Source::Tmpfs(options),
        target: container_path(target)?,
        read_only: false,
    })
}

/// A size tmpfs takes: digits, then k, m, g or % (bytes without).
fn is_size(size: &str) -> bool {
    let digits = size.trim_end_matches(['k', 'K', 'm', 'M', 'g', 'G', '%']);
    !digits.is_empty()
        && size.len() - digits.len() <= 1
        && digits.bytes().all(|b| b.is_ascii_digit())
}

/// The runtime mounts these itself, after the volumes: a volume there
/// would be hidden.
const RUNTIME_MOUNTS: [&str; 4] = ["/proc", "/sys", "/dev", "/tmp"];

/// A mount target in the container: absolute, not `/`, no `..`, and not
/// where the runtime mounts its own filesystems.
fn container_path(text: &str) -> Result<PathBuf, String> {
    let path = Path::new(text);
    if !path.is_absolute() {
        return Err(format!("container path {text:?} must be absolute"));
    }
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(format!("container path {text:?} must not contain .."));
    }
    if path.parent().is_none() {
        return Err("container path / cannot be a volume: use --rootfs".into());
    }
    if let Some(taken) = RUNTIME_MOUNTS.iter().find(|m| path.starts_with(m)) {
        return Err(format!(
            "container path {text:?} is under {taken}, which the runtime mounts itself"
        ));
    }
    Ok(path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bind_is_host_container_and_options() {
        let volume = parse_bind("/etc:/host-etc:ro").unwrap();
        assert_eq!(volume.source, Source::Host("/etc".into()));
        assert_eq!(volume.target, PathBuf::from("/host-etc"));
        assert!(volume.read_only);
        assert!(!parse_bind("/etc:/data:rw").unwrap().read_only);
    }

    #[test]
    fn bad_binds_say_what_is_wrong() {
        for (text, said) in [
            ("etc:/data", "must be absolute"),
            ("/no/such/path:/data", "does not exist"),
            ("/etc:data", "must be absolute"),
            ("/etc:/data/../etc", "must not contain .."),
            ("/etc:/", "cannot be a volume"),
            ("/etc:/tmp/x", "runtime mounts itself"),
            ("/etc:/data:rx", "unknown option"),
            ("/etc", "expected SOURCE:CONTAINER_PATH"),
        ] {
            let error = parse_bind(text).unwrap_err();
            assert!(error.contains(said), "{text}: {error}");
        }
    }

    #[test]
    fn tmpfs_takes_a_size() {
        let volume = parse_tmpfs("/scratch:size=1m").unwrap();
        assert_eq!(volume.source, Source::Tmpfs("mode=1777,size=1m".into()));
        let default = parse_tmpfs("/s").unwrap().source;
        assert_eq!(default, Source::Tmpfs("mode=1777".into()));
        for bad in ["/s:size=", "/s:size=1mb", "/s:size=k", "/s:mode=1777", "s"] {
            assert!(parse_tmpfs(bad).is_err(), "{bad}");
        }
    }
}
