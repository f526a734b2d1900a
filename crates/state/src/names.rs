//! Container names: `--name web` writes `STATE_DIR/names/web` holding the
//! container's PID (as the host sees it). Chapter 03's `--net
//! container:web` reads it back and joins the network namespace of that
//! process, `/proc/PID/ns/net`; chapter 06 keeps one such directory per pod.
//! Until the container exists, the file says `starting PID`: the runtime
//! that reserved the name, so that a run killed before the container
//! started leaves a name anyone can see is stale.
//! Only this module reads or writes these files.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::process::is_running;

/// A container name: letters, digits, `_`, `.`, `-`; 1 to 64 of them,
/// starting with a letter or digit (Docker's rule, shortened).
pub fn check_name(name: &str) -> Result<()> {
    let first_ok = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric());
    let rest_ok = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if !first_ok || !rest_ok || name.len() > 64 {
        bail!("invalid container name {name:?}: use 1 to 64 letters, digits, '_', '.' or '-'");
    }
    Ok(())
}

fn name_path(state_dir: &Path, name: &str) -> PathBuf {
    state_dir.join("names").join(name)
}

/// The PID registered under `name`, if its process still runs.
pub fn lookup(state_dir: &Path, name: &str) -> Option<u32> {
    let text = std::fs::read_to_string(name_path(state_dir, name)).ok()?;
    let pid: u32 = text.trim().parse().ok()?;
    is_running(pid).then_some(pid)
}

/// Claim `name` before the container starts: the file appears, already
/// saying `starting PID`, by `link(2)`, which fails if the name exists, so
/// two runs cannot claim the same name; a name whose process is gone (a
/// killed run, or a killed runtime that was starting it) is taken over.
pub fn reserve(state_dir: &Path, name: &str) -> Result<()> {
    let path = name_path(state_dir, name);
    let dir = path.parent().expect("a name has a parent directory");
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let pid = std::process::id();
    let draft = dir.join(format!(".{name}.{pid}"));
    std::fs::write(&draft, format!("starting {pid}\n"))
        .with_context(|| format!("write {}", draft.display()))?;
    let mut result = Err(anyhow::anyhow!("container name {name:?} is already in use"));
    for _ in 0..2 {
        match std::fs::hard_link(&draft, &path) {
            Ok(()) => {
                result = Ok(());
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if !is_stale(state_dir, name) {
                    break;
                }
                let _ = std::fs::remove_file(&path);
            }
            Err(e) => {
                result = Err(e).with_context(|| format!("create {}", path.display()));
                break;
            }
        }
    }
    let _ = std::fs::remove_file(&draft);
    result
}

/// Whether `name` is held by nothing that runs: its container is gone, or
/// the runtime that reserved it died before the container started.
pub fn is_stale(state_dir: &Path, name: &str) -> bool {
    let Ok(text) = std::fs::read_to_string(name_path(state_dir, name)) else {
        return false; // no such name
    };
    let text = text.trim();
    let pid = text.strip_prefix("starting ").unwrap_or(text);
    !pid.parse().is_ok_and(is_running)
}

/// Write the container's PID into its reserved name.
pub fn register(state_dir: &Path, name: &str, pid: u32) -> Result<()> {
    let path = name_path(state_dir, name);
    let mut file = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .with_context(|| format!("open {}", path.display()))?;
    writeln!(file, "{pid}").with_context(|| format!("write {}", path.display()))
}

/// Forget `name`.
pub fn unregister(state_dir: &Path, name: &str) -> Result<()> {
    let path = name_path(state_dir, name);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Every registered name, with the PID it holds (if any).
pub fn all(state_dir: &Path) -> Vec<(String, Option<u32>)> {
    let mut names = files(state_dir);
    // A draft of `reserve` (a name never starts with '.').
    names.retain(|(name, _)| !name.starts_with('.'));
    names
}

/// Every file of the names directory, drafts included.
fn files(state_dir: &Path) -> Vec<(String, Option<u32>)> {
    let Ok(entries) = std::fs::read_dir(state_dir.join("names")) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let pid = std::fs::read_to_string(e.path())
                .ok()
                .and_then(|t| t.trim().parse().ok());
            (name, pid)
        })
        .collect()
}

/// `cleanup`: forget the names whose process is gone (a run killed with
/// SIGKILL could not), and the drafts of runtimes killed in `reserve`.
/// Returns the names removed.
pub fn remove_stale(state_dir: &Path) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for (name, _) in files(state_dir) {
        if is_stale(state_dir, &name) {
            unregister(state_dir, &name)?;
            removed.push(name);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for good in ["web", "web-1", "a.b_c", "9"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "-web", "has space", "a/b", &"a".repeat(65)] {
            let err = check_name(bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid container name"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn a_name_is_reserved_registered_found_and_forgotten() {
        let dir = std::env::temp_dir().join(format!("pfs-names-{}", std::process::id()));
        reserve(&dir, "web").unwrap();
        assert!(reserve(&dir, "web")
            .unwrap_err()
            .to_string()
            .contains("already in use"));
        register(&dir, "web", std::process::id()).unwrap();
        assert_eq!(lookup(&dir, "web"), Some(std::process::id()));
        assert!(reserve(&dir, "web").is_err());
        unregister(&dir, "web").unwrap();
        assert_eq!(lookup(&dir, "web"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_name_whose_process_is_gone_is_stale() {
        let dir = std::env::temp_dir().join(format!("pfs-stale-{}", std::process::id()));
        reserve(&dir, "alive").unwrap();
        register(&dir, "alive", std::process::id()).unwrap();
        reserve(&dir, "gone").unwrap();
        register(&dir, "gone", u32::MAX).unwrap();
        assert_eq!(remove_stale(&dir).unwrap(), ["gone"]);
        assert_eq!(all(&dir), [("alive".to_string(), Some(std::process::id()))]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A runtime killed between reserving a name and starting its
    /// container (`PFS_FAULT_AT=after-prepare`) left `starting PID`: the
    /// name is stale at once, and the next run takes it over.
    #[test]
    fn a_name_reserved_by_a_killed_runtime_is_stale_and_taken_over() {
        let dir = std::env::temp_dir().join(format!("pfs-starting-{}", std::process::id()));
        reserve(&dir, "mine").unwrap();
        assert!(!is_stale(&dir, "mine"), "we are starting it");
        assert_eq!(lookup(&dir, "mine"), None);
        std::fs::write(
            name_path(&dir, "killed"),
            format!("starting {}\n", u32::MAX),
        )
        .unwrap();
        assert!(is_stale(&dir, "killed"));
        reserve(&dir, "killed").unwrap();
        assert_eq!(remove_stale(&dir).unwrap(), Vec::<String>::new());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
