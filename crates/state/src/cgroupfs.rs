//! The cgroup filesystem as records: the kernel keeps a group's accounting
//! in small text files, a number (`memory.peak`) or `key value` lines
//! (`memory.events`), and our groups are directories whose name says who
//! owns them. Chapter 05 (what a group used, `cleanup`) and chapter 06
//! (`cleanup` of pods' groups) read and sweep them with these helpers;
//! creating groups and writing limits is chapter 05's lesson.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::process::is_running;

/// The number in a file like `memory.peak`, if the kernel has that file.
pub fn read_number(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The value of `key` in a `key value` file like `memory.events`.
pub fn field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// The subdirectories of `dir` (none if it does not exist).
pub fn subdirectories(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// Remove `group`, the groups inside it first (one level, as chapter 06's
/// pod groups), then its parent if that is empty now. `remove` is chapter
/// 05's (see below). Under `lock("cgroups")`.
pub fn remove_with_members(group: &Path, remove: impl Fn(&Path) -> Result<()>) -> Result<()> {
    let _lock = crate::lock("cgroups")?;
    for member in subdirectories(group) {
        remove(&member)?;
    }
    remove(group)?;
    if let Some(parent) = group.parent() {
        let _ = fs::remove_dir(parent);
    }
    Ok(())
}

/// `cleanup`: remove each of `groups` whose name, the PID of the run that
/// made it, names no running process (a run killed with SIGKILL could not
/// remove its group); then its parent, if that is empty now. `remove` is
/// chapter 05's: kill what is left in the group, then `rmdir` it.
pub fn remove_groups_of_gone_runs(
    groups: Vec<PathBuf>,
    remove: impl Fn(&Path) -> Result<()>,
) -> Result<()> {
    for group in groups {
        let id = group.file_name().unwrap_or_default().to_string_lossy();
        if !id.parse().is_ok_and(is_running) {
            remove(&group)?;
            println!("removed stale cgroup {}", group.display());
        }
        if let Some(parent) = group.parent() {
            let _ = fs::remove_dir(parent);
        }
    }
    Ok(())
}

/// `cleanup`: in every hierarchy (`/sys/fs/cgroup` on v2, each
/// `/sys/fs/cgroup/CONTROLLER` on v1), remove the groups below `parent`
/// that hold no process, with the groups inside them, a minute after they
/// were made: their owner was killed with its whole state. (An owner being
/// set up fills its group within milliseconds.)
pub fn remove_abandoned_groups(parent: &str, remove: impl Fn(&Path) -> Result<()>) -> Result<()> {
    let root = Path::new("/sys/fs/cgroup");
    let mut hierarchies = vec![root.to_path_buf()];
    hierarchies.extend(subdirectories(root));
    let parents = hierarchies.into_iter().map(|h| h.join(parent));
    for parent in parents.filter(|g| g.is_dir()) {
        for group in subdirectories(&parent) {
            let mut members = subdirectories(&group);
            members.push(group.clone());
            let empty = members.iter().all(|g| {
                fs::read_to_string(g.join("cgroup.procs")).is_ok_and(|p| p.trim().is_empty())
            });
            let old = fs::metadata(&group)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age.as_secs() >= 60));
            if empty && old {
                for member in &members {
                    remove(member)?;
                }
                println!("removed abandoned cgroup {}", group.display());
            }
        }
        let _ = fs::remove_dir(&parent);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_read_from_key_value_files() {
        let events = "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\n";
        assert_eq!(field(events, "oom_kill"), Some(1));
        assert_eq!(field(events, "oom_group_kill"), None);
    }

    #[test]
    fn numbers_and_subdirectories_are_read() {
        let dir = std::env::temp_dir().join(format!("pfs-files-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("a")).unwrap();
        std::fs::write(dir.join("n"), "42\n").unwrap();
        assert_eq!(read_number(&dir.join("n")), Some(42));
        assert_eq!(read_number(&dir.join("missing")), None);
        assert_eq!(subdirectories(&dir), [dir.join("a")]);
        assert!(subdirectories(&dir.join("missing")).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn groups_named_after_gone_runs_are_removed_with_their_empty_parent() {
        let parent = std::env::temp_dir().join(format!("pfs-groups-{}", std::process::id()));
        let alive = parent.join(std::process::id().to_string());
        let gone = parent.join(u32::MAX.to_string());
        for dir in [&alive, &gone] {
            std::fs::create_dir_all(dir).unwrap();
        }
        let remove = |g: &Path| Ok(std::fs::remove_dir(g)?);
        remove_groups_of_gone_runs(vec![alive.clone(), gone.clone()], remove).unwrap();
        assert!(alive.exists() && !gone.exists());
        std::fs::remove_dir(&alive).unwrap();
        std::fs::remove_dir(&parent).unwrap();
    }
}
