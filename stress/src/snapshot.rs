//! What a run may leave on the host, listed line by line, so that two
//! snapshots can be compared: every line in the second that was not in the
//! first is a leftover.
//!
//! - mounts: /proc/self/mountinfo (mount point, type, source);
//! - cgroups: every group under a `pods-from-scratch` group (containers')
//!   or a `pods-from-scratch-pods` group (pods') of each hierarchy;
//! - state: every file under the state directory (`$PFS_STATE_DIR` or
//!   /run/pods-from-scratch), with the lease files' lines; the data
//!   directory's `containers` and `pods` (images and root filesystems are a
//!   cache, meant to stay);
//! - processes: every process in another PID namespace than ours (a
//!   container's), and every process of a chapter binary or pause, zombies
//!   aside;
//! - network: the links of the host's network namespace (each part runs its
//!   containers in a throwaway namespace of its own, see testkit::NetSandbox,
//!   and compares that one itself).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Snapshot(BTreeSet<String>);

impl Snapshot {
    pub fn take() -> Snapshot {
        let mut lines = BTreeSet::new();
        mounts(&mut lines);
        cgroups(&mut lines);
        state(&mut lines);
        processes(&mut lines);
        host_links(&mut lines);
        Snapshot(lines)
    }

    /// What is here now and was not in `before`.
    pub fn leftovers_since(&self, before: &Snapshot) -> Vec<String> {
        self.0.difference(&before.0).cloned().collect()
    }
}

fn mounts(lines: &mut BTreeSet<String>) {
    let table = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for line in table.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let after = fields
            .iter()
            .position(|f| *f == "-")
            .unwrap_or(fields.len());
        let (point, kind, source) = (
            fields.get(4).unwrap_or(&"?"),
            fields.get(after + 1).unwrap_or(&"?"),
            fields.get(after + 2).unwrap_or(&"?"),
        );
        lines.insert(format!("mount {point} ({kind} from {source})"));
    }
}

fn cgroups(lines: &mut BTreeSet<String>) {
    cgroups_under(Path::new("/sys/fs/cgroup"), lines);
}

/// Our groups in the hierarchy `root` (cgroup v2) or in the hierarchies
/// mounted below it (v1): single containers' under `pods-from-scratch`
/// (chapter 05), pods' under `pods-from-scratch-pods` (chapter 06).
fn cgroups_under(root: &Path, lines: &mut BTreeSet<String>) {
    let mut roots = vec![root.to_path_buf()];
    for entry in fs::read_dir(root).into_iter().flatten().flatten() {
        roots.push(entry.path());
    }
    for root in roots {
        for ours in ["pods-from-scratch", pfs_state::pods::PODS_GROUP] {
            walk(&root.join(ours), &mut |dir| {
                if dir.is_dir() {
                    lines.insert(format!("cgroup {}", dir.display()));
                }
            });
        }
    }
}

fn state(lines: &mut BTreeSet<String>) {
    let state_dir = std::env::var_os("PFS_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/run/pods-from-scratch".into());
    let data_dir = std::env::var_os("PFS_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/var/lib/pods-from-scratch".into());
    let mut note = |path: &Path| {
        // Lock files stay by design (flock); their presence is no leftover.
        if path.extension().is_some_and(|e| e == "lock") {
            return;
        }
        lines.insert(format!("file {}", path.display()));
        if path.parent().is_some_and(|p| p.ends_with("leases")) {
            for lease in fs::read_to_string(path).unwrap_or_default().lines() {
                lines.insert(format!("lease {}: {lease}", path.display()));
            }
        }
    };
    walk(&state_dir, &mut note);
    walk(&data_dir.join("containers"), &mut note);
    walk(&data_dir.join("pods"), &mut note);
}

fn processes(lines: &mut BTreeSet<String>) {
    let ours = fs::read_link("/proc/self/ns/pid").ok();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let comm = fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        let comm = comm.trim();
        if is_zombie_of_init(&entry.path()) {
            continue;
        }
        let other_namespace = fs::read_link(entry.path().join("ns/pid")).ok() != ours;
        let ours_by_name = comm == "pause" || (comm.len() == 4 && comm.starts_with("ch0"));
        if (other_namespace || ours_by_name) && !comm.is_empty() {
            lines.insert(format!("process {pid} {comm}"));
        }
    }
}

/// A process that has ended and waits for init to collect it: a detached
/// container (pause, `pod run -d`) is init's child once the runtime that
/// started it has exited, and how soon init reaps is init's business (this
/// machine's init is slow at it), not a leftover of ours.
fn is_zombie_of_init(proc_dir: &Path) -> bool {
    let stat = fs::read_to_string(proc_dir.join("stat")).unwrap_or_default();
    // "PID (COMM) STATE PPID ...": COMM may hold spaces, so split after ")".
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map_or(vec![], |(_, rest)| rest.split(' ').collect());
    fields.first() == Some(&"Z") && fields.get(1) == Some(&"1")
}

fn host_links(lines: &mut BTreeSet<String>) {
    let output = Command::new("ip").args(["-o", "link", "show"]).output();
    let listing = output.map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    for line in listing.unwrap_or_default().lines() {
        // "3: name@peer: <FLAGS> ..." -> the name only (flags and counters move).
        if let Some(name) = line.split(": ").nth(1) {
            lines.insert(format!("host link {name}"));
        }
    }
}

/// Call `note` on `dir` and everything below it (nothing if it is missing).
fn walk(dir: &Path, note: &mut dyn FnMut(&Path)) {
    if !dir.exists() {
        return;
    }
    note(dir);
    if dir.is_dir() && !dir.is_symlink() {
        for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
            walk(&entry.path(), note);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pod's group was missed: they live under `pods-from-scratch-pods`,
    /// not under chapter 05's `pods-from-scratch`.
    #[test]
    fn a_pods_group_and_a_containers_group_are_both_listed() {
        let root = std::env::temp_dir().join(format!("pfs-snapshot-{}", std::process::id()));
        let pod = root.join("memory/pods-from-scratch-pods/web-1234abcd/pause");
        let container = root.join("pods-from-scratch/4242");
        fs::create_dir_all(&pod).unwrap();
        fs::create_dir_all(&container).unwrap();
        fs::create_dir_all(root.join("system.slice/other")).unwrap();
        let mut lines = BTreeSet::new();
        cgroups_under(&root, &mut lines);
        fs::remove_dir_all(&root).unwrap();
        let listed = |dir: &Path| lines.contains(&format!("cgroup {}", dir.display()));
        assert!(listed(&pod) && listed(pod.parent().unwrap()), "{lines:?}");
        assert!(listed(&container), "{lines:?}");
        assert_eq!(lines.len(), 5, "ours only: {lines:?}");
    }
}
