//! The process a container runs, and the options that shape it, as
//! `docker run` takes them: `-e NAME=VALUE`, `--env-file FILE`, `-w DIR`,
//! `-u UID[:GID]`. Chapter 01 executes a [`Process`] (its lesson is the
//! order of the steps: user, working directory, `execve`); reading the
//! options into one is plumbing, and lives here.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The `PATH` a container with a root of its own starts with (docker's).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What `execve` runs, with whom and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    /// The command and its arguments.
    pub args: Vec<String>,
    /// The environment, `NAME=VALUE` each.
    pub env: Vec<String>,
    /// The working directory (absolute), or stay where the layers left us.
    pub cwd: Option<PathBuf>,
    /// Create `cwd` if missing (in a root of the container's own only).
    pub make_cwd: bool,
    /// Run as this user instead of root.
    pub user: Option<User>,
    /// The user's supplementary groups, besides its group (an OCI
    /// config's `additionalGids`); none if empty.
    pub groups: Vec<u32>,
}

impl Process {
    /// `args`, with our own environment, as root, where we are.
    pub fn new(args: Vec<String>) -> Self {
        Process {
            args,
            env: our_environment(),
            cwd: None,
            make_cwd: false,
            user: None,
            groups: Vec::new(),
        }
    }
}

/// A numeric user and its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
}

/// What an image says about its process (its config's `Env`,
/// `WorkingDir`, `User`, `Entrypoint` and `Cmd`): defaults under the options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageDefaults {
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
}

/// `run`'s process options, as `docker run` spells them.
#[derive(clap::Args, Debug, Default)]
#[group(skip)]
pub struct ProcessArgs {
    /// Set NAME to VALUE in the container; NAME alone passes our own NAME
    /// on (if set); may be repeated
    #[arg(short = 'e', long = "env", value_name = "NAME[=VALUE]")]
    pub env: Vec<String>,
    /// Read NAME=VALUE lines from FILE (`#` comments, blank lines ignored);
    /// `-e` wins over it
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// The working directory in the container (an absolute path)
    #[arg(short = 'w', long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// Run as UID (numeric), in group GID, or else in the user's group of
    /// the container's /etc/passwd, or else 0
    #[arg(short = 'u', long, value_name = "UID[:GID]")]
    pub user: Option<String>,
}

impl ProcessArgs {
    /// The process of a container on the host's files (chapters 01 to 03):
    /// our environment plus the options; a `-w` directory must exist.
    pub fn on_host(&self, command: &[String]) -> Result<Process> {
        let mut process = Process::new(command.to_vec());
        self.apply_env(&mut process.env)?;
        let user = self.user.as_deref();
        process.user = user
            .map(|text| parse_user(text, Path::new("/")))
            .transpose()?;
        if let Some(dir) = &self.workdir {
            let dir = absolute(dir)?;
            if !dir.is_dir() {
                bail!(
                    "working directory {} not found: create it first (from chapter 04 on, a container's own root gets it made)",
                    dir.display()
                );
            }
            process.cwd = Some(dir);
        }
        Ok(process)
    }

    /// The process of a container with a root of its own, `root` (chapter
    /// 04 on): a clean environment as docker's (`PATH`, `HOSTNAME`,
    /// `HOME`), then the image's, `--env-file`, `-e`; the image's working
    /// directory, user and command unless the options say otherwise.
    pub fn in_root(
        &self,
        command: &[String],
        root: &Path,
        image: &ImageDefaults,
        hostname: &str,
    ) -> Result<Process> {
        let user = match (&self.user, &image.user) {
            (Some(text), _) => Some(parse_user(text, root)?),
            (None, Some(text)) if !text.is_empty() => Some(
                parse_user(text, root).context("the image's User (give -u UID[:GID] instead)")?,
            ),
            _ => None,
        };
        let mut env = clean_environment(root, user.map_or(0, |u| u.uid), hostname);
        for entry in &image.env {
            set_var(&mut env, entry);
        }
        self.apply_env(&mut env)?;
        let workdir = self.workdir.as_deref().or(image.workdir.as_deref());
        let cwd = workdir.filter(|dir| !dir.is_empty()).map(absolute);
        let given = if command.is_empty() {
            &image.cmd
        } else {
            command
        };
        let args = [&image.entrypoint[..], given].concat();
        if args.is_empty() {
            bail!("missing command: put it after `--` (the image sets no Cmd or Entrypoint)");
        }
        Ok(Process {
            args,
            env,
            cwd: cwd.transpose()?,
            make_cwd: true,
            user,
            groups: Vec::new(),
        })
    }

    /// `--env-file` files in order, then `-e`: a later value wins.
    fn apply_env(&self, env: &mut Vec<String>) -> Result<()> {
        for file in &self.env_file {
            for entry in read_env_file(file)? {
                set_var(env, &entry);
            }
        }
        for text in &self.env {
            if let Some(entry) = env_entry(text).with_context(|| format!("-e {text:?}"))? {
                set_var(env, &entry);
            }
        }
        Ok(())
    }
}

/// What a container with a root of its own starts from, as docker's:
/// `PATH`, `HOSTNAME`, and `HOME` from `root`'s /etc/passwd (else `/root`
/// for root, `/` for another user).
fn clean_environment(root: &Path, uid: u32, hostname: &str) -> Vec<String> {
    let home = passwd_entry(root, uid).map_or_else(
        || if uid == 0 { "/root" } else { "/" }.to_string(),
        |fields| fields[5].clone(),
    );
    vec![
        format!("PATH={DEFAULT_PATH}"),
        format!("HOSTNAME={hostname}"),
        format!("HOME={home}"),
    ]
}

/// `UID[:GID]`; without GID, the user's group in `root`'s /etc/passwd, or 0.
pub fn parse_user(text: &str, root: &Path) -> Result<User> {
    let number = |part: &str| {
        part.parse::<u32>().map_err(|_| {
            anyhow::anyhow!(
                "invalid user {text:?}: use numbers, UID or UID:GID (e.g. 1000:1000); names are not supported"
            )
        })
    };
    let (uid, gid) = match text.split_once(':') {
        Some((uid, gid)) => (number(uid)?, Some(number(gid)?)),
        None => (number(text)?, None),
    };
    let group_of_user = || passwd_entry(root, uid).and_then(|fields| fields[3].parse().ok());
    let gid = gid.or_else(group_of_user).unwrap_or(0);
    Ok(User { uid, gid })
}

/// The fields of `uid`'s line in `root`/etc/passwd, if there is one. A
/// symlink is not followed: in an image, it could point at the host's.
fn passwd_entry(root: &Path, uid: u32) -> Option<Vec<String>> {
    let path = root.join("etc/passwd");
    if !path.symlink_metadata().ok()?.is_file() {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .map(|line| line.split(':').map(String::from).collect::<Vec<_>>())
        .find(|fields| fields.len() >= 7 && fields[2] == uid.to_string())
}

/// An absolute working directory, or one clear line.
fn absolute(dir: &str) -> Result<PathBuf> {
    if !dir.starts_with('/') {
        bail!("invalid working directory {dir:?}: it must be an absolute path, e.g. /tmp");
    }
    Ok(PathBuf::from(dir))
}

/// `NAME=VALUE` as is; `NAME` alone takes our own NAME's value, and is
/// nothing when we have none (as docker does).
fn env_entry(text: &str) -> Result<Option<String>> {
    let name = text.split_once('=').map_or(text, |(name, _)| name);
    if name.is_empty() || name.contains(char::is_whitespace) || name.contains('\0') {
        bail!("no valid variable name: use NAME=VALUE");
    }
    if text.contains('=') {
        return Ok(Some(text.to_string()));
    }
    Ok(std::env::var_os(name).map(|value| format!("{name}={}", value.to_string_lossy())))
}

/// Docker's env-file format: one `NAME=VALUE` (or `NAME`) per line; blank
/// lines and lines starting with `#` are ignored.
pub fn read_env_file(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read env file {}", path.display()))?;
    let mut entries = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let entry = env_entry(line)
            .with_context(|| format!("env file {} line {}", path.display(), number + 1))?;
        entries.extend(entry);
    }
    Ok(entries)
}

/// Set `NAME=VALUE` in `env`, replacing NAME's earlier value in place.
fn set_var(env: &mut Vec<String>, entry: &str) {
    let name = |e: &str| e.split_once('=').map_or(e, |(n, _)| n).to_string();
    let wanted = name(entry);
    match env.iter_mut().find(|e| name(e) == wanted) {
        Some(old) => *old = entry.to_string(),
        None => env.push(entry.to_string()),
    }
}

/// Our own environment, as `NAME=VALUE` strings.
fn our_environment() -> Vec<String> {
    std::env::vars_os()
        .map(|(name, value)| {
            let mut entry = name.as_bytes().to_vec();
            entry.push(b'=');
            entry.extend_from_slice(value.as_bytes());
            OsStr::from_bytes(&entry).to_string_lossy().into_owned()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_with_passwd(text: &str) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("etc")).unwrap();
        std::fs::write(root.path().join("etc/passwd"), text).unwrap();
        root
    }

    #[test]
    fn users_are_numbers_and_the_group_comes_from_passwd() {
        let root = root_with_passwd("app:x:1000:1001:App:/home/app:/bin/sh\n");
        let user = |text| parse_user(text, root.path()).unwrap();
        assert_eq!(user("1000:50"), User { uid: 1000, gid: 50 });
        assert_eq!(
            user("1000"),
            User {
                uid: 1000,
                gid: 1001
            }
        );
        assert_eq!(user("7"), User { uid: 7, gid: 0 });
        for bad in ["app", "1000:", ":5", "-1", "1000:staff"] {
            let err = parse_user(bad, root.path()).unwrap_err().to_string();
            assert!(err.starts_with("invalid user"), "{bad}: {err}");
        }
    }

    #[test]
    fn env_files_skip_comments_and_blank_lines() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("env");
        std::fs::write(&file, "# a comment\n\nA=1\n  B=two words\nC==x\n").unwrap();
        let entries = read_env_file(&file).unwrap();
        assert_eq!(entries, ["A=1", "B=two words", "C==x"]);
        std::fs::write(&file, "A=1\n=nameless\n").unwrap();
        let err = format!("{:#}", read_env_file(&file).unwrap_err());
        assert!(err.contains("line 2: no valid variable name"), "{err}");
        assert!(read_env_file(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn later_values_win_in_place() {
        let mut env = vec!["A=1".to_string(), "B=2".to_string()];
        set_var(&mut env, "A=3");
        set_var(&mut env, "C=4");
        assert_eq!(env, ["A=3", "B=2", "C=4"]);
    }

    #[test]
    fn in_a_root_of_its_own_the_image_gives_the_defaults() {
        let root = root_with_passwd("app:x:1000:1000::/home/app:/bin/sh\n");
        let image = ImageDefaults {
            env: vec!["PATH=/app/bin".into(), "MODE=image".into()],
            workdir: Some("/srv".into()),
            user: Some("1000".into()),
            entrypoint: vec!["/entry".into()],
            cmd: vec!["serve".into()],
        };
        let args = ProcessArgs {
            env: vec!["MODE=option".into()],
            ..Default::default()
        };
        let process = args.in_root(&[], root.path(), &image, "box").unwrap();
        assert_eq!(process.args, ["/entry", "serve"]);
        assert_eq!(
            process.env,
            [
                "PATH=/app/bin",
                "HOSTNAME=box",
                "HOME=/home/app",
                "MODE=option"
            ]
        );
        assert_eq!(process.cwd, Some(PathBuf::from("/srv")));
        assert_eq!(
            process.user,
            Some(User {
                uid: 1000,
                gid: 1000
            })
        );
        let given = args.in_root(&["sh".into()], root.path(), &image, "box");
        assert_eq!(given.unwrap().args, ["/entry", "sh"]);
        let named = ImageDefaults {
            user: Some("nginx".into()),
            ..image.clone()
        };
        let err = format!(
            "{:#}",
            args.in_root(&[], root.path(), &named, "box").unwrap_err()
        );
        assert!(err.starts_with("the image's User"), "{err}");
        let none = ImageDefaults::default();
        let err = args.in_root(&[], root.path(), &none, "box").unwrap_err();
        assert!(err.to_string().starts_with("missing command"), "{err}");
    }
}
