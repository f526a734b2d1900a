//! What the tests of an OCI runtime driven by podman and containerd share:
//! which runtime binary to hand them, a busybox OCI image made locally, and
//! the checks that a run left no mount or cgroup behind.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::registry::OciLayout;
use crate::HostState;

/// The runtime podman and containerd are told to call: `$PFS_OCI_RUNTIME`
/// (e.g. /usr/sbin/runc, to check the tests themselves), else (unset or
/// empty) `ours`, the chapter's binary (`env!("CARGO_BIN_EXE_ch08")`).
pub fn runtime(ours: &str) -> String {
    match std::env::var("PFS_OCI_RUNTIME") {
        Ok(runtime) if !runtime.is_empty() => runtime,
        _ => ours.to_string(),
    }
}

/// The tag of the busybox image in [`busybox_layout`].
pub const BUSYBOX_TAG: &str = "busybox";

/// An OCI image layout holding `rootfs` (a busybox root filesystem) as a
/// one-layer image tagged [`BUSYBOX_TAG`], made with umoci once and kept in
/// the tests' data directory. Its path is lowercase: podman names an image
/// pulled from an `oci:` layout after the path.
pub fn busybox_layout(rootfs: &Path) -> PathBuf {
    let layout = crate::test_data_dir().join("oci/busybox");
    if layout.join("index.json").is_file() {
        return layout;
    }
    // Built beside, then renamed: a test program running at the same time
    // sees either no layout or a whole one.
    let building = layout.with_file_name(format!(".busybox-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&building);
    std::fs::create_dir_all(building.parent().expect("a parent")).expect("create the oci dir");
    let image = OciLayout::init(&building);
    image.new_image(BUSYBOX_TAG);
    image.insert_dir(BUSYBOX_TAG, rootfs, "/");
    if std::fs::rename(&building, &layout).is_err() {
        let _ = std::fs::remove_dir_all(&building); // another program won the race
    }
    layout
}

/// The mount points at or under `dir`, as this process's mount table lists
/// them.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let table = std::fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    table
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(PathBuf::from)
        .filter(|target| target.starts_with(dir))
        .collect()
}

/// Unmount whatever is mounted under `dir`, deepest first (lazily: a tool
/// may still hold a file open in it). For a fixture's Drop: the test has
/// already failed if anything was left.
pub fn unmount_all_under(dir: &Path) {
    let mut targets = mounts_under(dir);
    targets.sort();
    for target in targets.iter().rev() {
        let _ = nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// The cgroup directories, in every hierarchy, whose name contains `name`
/// (a container's ID, a pod's ID, a containerd namespace).
pub fn cgroups_named(name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = hierarchies();
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue; // removed while we looked
        };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                if entry.file_name().to_string_lossy().contains(name) {
                    found.push(entry.path());
                }
                dirs.push(entry.path());
            }
        }
    }
    found
}

/// Every cgroup hierarchy's root: /sys/fs/cgroup itself on cgroup v2, each
/// controller's directory (and the unified one) on v1.
pub fn hierarchies() -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    if root.join("cgroup.controllers").exists() {
        return vec![root.to_path_buf()];
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(root)
        .expect("read /sys/fs/cgroup")
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir())) // not the cpu,cpuacct links
        .map(|e| e.path())
        .collect();
    found.sort();
    found
}

/// Remove the cgroup directories in `groups` and those under them,
/// deepest first; a directory still in use stays (rmdir refuses it).
pub fn remove_cgroups(groups: &[PathBuf]) {
    let mut all: Vec<PathBuf> = Vec::new();
    for group in groups {
        collect_dirs(group, &mut all);
    }
    all.sort();
    for dir in all.iter().rev() {
        let _ = std::fs::remove_dir(dir);
    }
}

/// [`remove_cgroups`] named `name`, again and again for up to five seconds
/// ([`scaled`]) while some stay: a process in one (conmon) is still ending.
pub fn remove_cgroups_named(name: &str) {
    let deadline = Instant::now() + scaled(5);
    loop {
        let groups = cgroups_named(name);
        remove_cgroups(&groups);
        if cgroups_named(name).is_empty() || Instant::now() > deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn collect_dirs(dir: &Path, into: &mut Vec<PathBuf>) {
    into.push(dir.to_path_buf());
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            collect_dirs(&entry.path(), into);
        }
    }
}

/// One scenario of a test program: it takes its turn (the scenarios of a
/// program run one at a time: each has a time budget, and a mount table
/// compared before and after would see the others' mounts), needs root,
/// and must leave the host as it found it, within its budget.
pub struct Scenario {
    budget: Budget,
    before: HostState,
    _turn: MutexGuard<'static, ()>,
}

impl Scenario {
    pub fn begin(what: &'static str, seconds: u64) -> Self {
        static TURN: Mutex<()> = Mutex::new(());
        let turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
        crate::require_root();
        crate::test_data_dir();
        Scenario {
            budget: Budget::start(what, seconds),
            before: HostState::capture(),
            _turn: turn,
        }
    }

    /// Check the budget, then that the host is as it was.
    pub fn end(self) {
        self.budget.check();
        HostState::capture().assert_unchanged_since(&self.before);
    }
}

/// The standard output of `tool args` that must have succeeded (else a
/// panic showing all it said).
pub fn succeeded(tool: &str, args: &[&str], output: Output) -> String {
    assert!(
        output.status.success(),
        "{tool} {} failed ({}):\n{}{}",
        args.join(" "),
        output.status,
        crate::stdout(&output),
        crate::stderr(&output)
    );
    crate::stdout(&output)
}

/// `seconds` of this machine's time: times `$PFS_TEST_TIME_FACTOR` (1 if
/// unset), which scripts/vm-test.sh sets in its emulated, much slower VM.
pub fn scaled(seconds: u64) -> Duration {
    let factor = std::env::var("PFS_TEST_TIME_FACTOR")
        .ok()
        .and_then(|f| f.parse().ok())
        .unwrap_or(1);
    Duration::from_secs(seconds * factor)
}

/// A scenario's time budget ([`scaled`]): how long it may take, checked
/// (and printed) at its end, so a runtime that makes podman wait for a
/// timeout fails.
pub struct Budget {
    what: &'static str,
    limit: Duration,
    started: Instant,
}

impl Budget {
    pub fn start(what: &'static str, seconds: u64) -> Self {
        Budget {
            what,
            limit: scaled(seconds),
            started: Instant::now(),
        }
    }

    /// Print the time taken, and fail if it is over the budget.
    pub fn check(self) {
        let took = self.started.elapsed();
        eprintln!(
            "{}: {:.1} s (budget {} s)",
            self.what,
            took.as_secs_f64(),
            self.limit.as_secs()
        );
        assert!(
            took <= self.limit,
            "{} took {:.1} s, over its budget of {} s",
            self.what,
            took.as_secs_f64(),
            self.limit.as_secs()
        );
    }
}
