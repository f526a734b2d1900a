//! # Chapter 05: cgroups, on v2 and v1
//!
//! Namespaces change what a container *sees*; control groups (cgroups)
//! change what it may *use*. A cgroup is a directory in a special
//! filesystem: make one, write limits into its files, write a PID into
//! `cgroup.procs`, and that process and all its children are held to them.
//!
//! Two versions are in use. Modern systems (and the book's VM) have **cgroup
//! v2**: one tree at `/sys/fs/cgroup`. Older and "hybrid" hosts have **v1**:
//! one tree per controller (`/sys/fs/cgroup/memory`, `.../pids`, ...). The
//! chapter supports both behind one small trait, [`ControlGroup`], with
//! [`v2::CgroupV2`] and [`v1::CgroupV1`]. Files are written by our code:
//! that is the lesson, so no cgroup crate.
//!
//! The layer, [`Cgroup`], acts at two of chapter 01's moments:
//! 1. parent, before the child exists: create the group, write the limits,
//!    open the file through which a process joins it;
//! 2. child, before it runs the command: write "0" (itself) into that file,
//!    so the command is limited from its first instruction; then enter a
//!    new cgroup namespace, *after* the move, so that the container sees
//!    its own group as `/`.
//!
//! After exit: report an OOM kill and (`--stats`) what the group used, kill
//! stragglers, remove the group. `cleanup` and the `doctor` checks are in
//! [`ops`].

pub mod ops;
pub mod v1;
pub mod v2;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use ch01::{explain, Layer};
use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// The name of our parent group in every hierarchy.
pub const PARENT_GROUP: &str = "pods-from-scratch";

/// The limits options: of a container here, of a whole pod in chapter 06.
#[derive(clap::Args, Debug, Default)]
#[group(skip)]
pub struct LimitArgs {
    /// Memory limit, in bytes or with a unit: 64M, 1G (like `docker run --memory`)
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<String>,
    /// Maximum number of processes and threads (like `--pids-limit`)
    #[arg(long, value_name = "N")]
    pub pids: Option<u64>,
    /// CPU time, in CPUs: 0.5 is half of one CPU (like `docker run --cpus`)
    #[arg(long, value_name = "CPUS")]
    pub cpus: Option<f64>,
}

impl LimitArgs {
    /// Check the options, before anything is created.
    pub fn limits(&self) -> Result<Limits> {
        parse_limits(self.memory.as_deref(), self.pids, self.cpus)
    }
}

/// `run` options: chapter 04's, plus resource limits.
#[derive(clap::Args, Debug)]
#[group(skip)]
pub struct RunArgs {
    #[command(flatten)]
    pub limits: LimitArgs,
    /// After exit, print what the container used: peak memory, CPU time, peak tasks
    #[arg(long)]
    pub stats: bool,
    #[command(flatten)]
    pub ch04: ch04::RunArgs,
}

impl RunArgs {
    /// The process to run in the container.
    pub fn process(&self) -> Result<ch01::Process> {
        self.ch04.process()
    }
}

/// Limits as the kernel takes them.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Limits {
    pub memory: Option<u64>,
    pub pids: Option<u64>,
    pub cpus: Option<f64>,
}

/// What a group used, read from its own accounting files.
#[derive(Debug, Default)]
pub struct Stats {
    pub peak_memory: Option<u64>,
    pub cpu_usec: Option<u64>,
    pub peak_tasks: Option<u64>,
}

// ANCHOR: control_group
/// What a container needs from cgroups, whatever their version.
pub trait ControlGroup {
    /// Create the group (v1: one per hierarchy) and write the limits.
    fn create(&mut self, limits: &Limits) -> Result<()>;
    /// Open the files through which a process joins the group (v1: one
    /// per hierarchy), for [`join_group`]; its future children follow it.
    fn open_to_join(&self) -> Result<Vec<Membership>>;
    /// How many processes the kernel killed for lack of memory.
    fn oom_kills(&self) -> u64;
    /// What the group used.
    fn stats(&self) -> Stats;
    /// Kill what is left in the group, then remove it.
    fn remove(&self) -> Result<()>;
}
// ANCHOR_END: control_group

/// Which cgroup version the host runs.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Version {
    V1,
    V2,
}

// ANCHOR: detect_version
/// `/sys/fs/cgroup` is itself a cgroup2 filesystem on a pure v2 host; on a
/// v1 or hybrid host it is a tmpfs holding one mount per controller.
pub fn detect_version() -> Result<Version> {
    let fs = nix::sys::statfs::statfs("/sys/fs/cgroup").context("statfs /sys/fs/cgroup")?;
    if fs.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC {
        Ok(Version::V2)
    } else {
        Ok(Version::V1)
    }
}
// ANCHOR_END: detect_version

/// The control group of a new container, for the host's version.
pub fn new_group(version: Version, id: &str) -> Box<dyn ControlGroup> {
    match version {
        Version::V2 => Box::new(v2::CgroupV2::new(id)),
        Version::V1 => Box::new(v1::CgroupV1::new(id)),
    }
}

/// A control group at `path` below the root of the hierarchies: chapter 06
/// nests groups, a pod's and its containers' inside it.
pub fn new_group_at(version: Version, path: &Path) -> Box<dyn ControlGroup> {
    match version {
        Version::V2 => Box::new(v2::CgroupV2::at(path)),
        Version::V1 => Box::new(v1::CgroupV1::at(path)),
    }
}

/// `--memory`, `--pids` and `--cpus` as the kernel takes them.
pub fn parse_limits(memory: Option<&str>, pids: Option<u64>, cpus: Option<f64>) -> Result<Limits> {
    let memory = memory.map(parse_size).transpose()?;
    if pids == Some(0) {
        bail!("invalid --pids 0: at least 1 process is needed");
    }
    if let Some(cpus) = cpus {
        if !(cpus.is_finite() && (0.01..=1024.0).contains(&cpus)) {
            bail!("invalid --cpus {cpus}: use a number of CPUs from 0.01, e.g. 0.5");
        }
    }
    Ok(Limits { memory, pids, cpus })
}

/// `64M` → 67108864. Units are powers of 1024, like Docker's.
pub fn parse_size(text: &str) -> Result<u64> {
    let invalid = || anyhow::anyhow!("invalid size {text:?}: use bytes or a unit, e.g. 64M or 1G");
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, ""),
    };
    let number: u64 = digits.parse().map_err(|_| invalid())?;
    let scale: u64 = match unit.to_ascii_uppercase().trim_end_matches('B') {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => return Err(invalid()),
    };
    let bytes = number.checked_mul(scale).ok_or_else(invalid)?;
    if bytes < 1 << 20 {
        bail!("invalid size {text:?}: a container needs at least 1M");
    }
    Ok(bytes)
}

/// Chapter 04's layers plus this chapter's cgroup.
pub fn layers(args: &RunArgs) -> Result<Vec<Box<dyn Layer>>> {
    let limits = args.limits.limits()?;
    let version = detect_version()?;
    let mut layers = ch04::layers(&args.ch04)?;
    let group = new_group(version, &std::process::id().to_string());
    let mut cgroup = Cgroup::new(group, limits);
    cgroup.memory_text = args.limits.memory.clone();
    cgroup.stats = args.stats;
    layers.push(Box::new(cgroup));
    Ok(layers)
}

/// `ch05 run`: the runtime of chapter 01 with the layers of chapters 02–05.
pub fn run(args: &RunArgs) -> Result<i32> {
    let process = args.process()?;
    let mut layers = layers(args)?;
    ch01::run(&process, &mut layers)
}

/// The layer: a control group around the container.
pub struct Cgroup {
    group: Box<dyn ControlGroup>,
    limits: Limits,
    memory_text: Option<String>,
    stats: bool,
    /// Opened by the parent, written by the child (see [`join_group`]).
    memberships: Vec<Membership>,
}

impl Cgroup {
    /// The layer for `group`, held to `limits` (chapter 06 makes its nested
    /// groups with [`new_group_at`]).
    pub fn new(group: Box<dyn ControlGroup>, limits: Limits) -> Self {
        Cgroup {
            group,
            limits,
            memory_text: None,
            stats: false,
            memberships: Vec::new(),
        }
    }
}

// ANCHOR: cgroup_layer
impl Layer for Cgroup {
    fn prepare(&mut self) -> Result<()> {
        // Under a lock: no run removes our parent group while we create in it.
        let _lock = pfs_state::lock("cgroups")?;
        self.group.create(&self.limits)?;
        ch01::fault::point("after-cgroup");
        self.memberships = self.group.open_to_join()?;
        Ok(())
    }

    fn setup_in_child(&mut self) -> Result<()> {
        join_group(&self.memberships)?;
        ch01::fault::point("after-cgroup-join");
        // Now that we are in our group, a new cgroup namespace makes it our
        // root: /proc/self/cgroup says "/", and the host's tree is hidden.
        ch01::enter_namespaces(CloneFlags::CLONE_NEWCGROUP)
    }

    fn cleanup(&mut self) -> Result<()> {
        if self.group.oom_kills() > 0 {
            let limit = self.memory_text.as_deref().unwrap_or("?");
            eprintln!(
                "{}: killed: out of memory (limit {limit})",
                ch01::program_name()
            );
        }
        if self.stats {
            eprintln!(
                "{}: {}",
                ch01::program_name(),
                describe(&self.group.stats())
            );
        }
        let _lock = pfs_state::lock("cgroups")?;
        self.group.remove()
    }
}
// ANCHOR_END: cgroup_layer

/// `peak memory 1.2 MiB, CPU time 0.98 s, peak tasks 3`.
pub fn describe(stats: &Stats) -> String {
    let unknown = || "n/a".to_string();
    let memory = stats.peak_memory.map_or_else(unknown, |b| {
        format!("{:.1} MiB", b as f64 / (1 << 20) as f64)
    });
    let cpu = stats
        .cpu_usec
        .map_or_else(unknown, |us| format!("{:.2} s", us as f64 / 1e6));
    let tasks = stats.peak_tasks.map_or_else(unknown, |n| n.to_string());
    format!("stats: peak memory {memory}, CPU time {cpu}, peak tasks {tasks}")
}

// ANCHOR: join_group
/// A file through which a process joins a group, opened by the parent.
pub struct Membership {
    pub path: PathBuf,
    pub file: fs::File,
}

/// Open `path` for [`join_group`].
pub fn open_membership(path: PathBuf) -> Result<Membership> {
    let file = fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .with_context(|| format!("open {}", path.display()))?;
    Ok(Membership { path, file })
}

/// The child moves itself into its group by writing "0" ("me") to each
/// file the parent opened for it before the fork: an open file stays
/// usable after `pivot_root` hides /sys/fs/cgroup. Why not let the parent
/// write the child's PID, as runc does? To move another process the kernel
/// takes a lock that waits until every CPU has passed a quiet point (an RCU
/// grace period, ~10 ms: longer than the rest of the run). A thread that
/// moves only itself skips that lock: v1's `tasks` file moves one thread,
/// and our child has only one. (v2's `cgroup.procs` moves a whole process,
/// lock and all; v2's answer is `clone3` with `CLONE_INTO_CGROUP`.)
pub fn join_group(memberships: &[Membership]) -> Result<()> {
    for Membership { path, file } in memberships {
        explain::step(
            &format!("write({:?}, \"0\")", path.display().to_string()),
            &format!("echo \"0\" > {}", path.display()),
        );
        (&*file)
            .write_all(b"0")
            .with_context(|| format!("join {}", path.display()))?;
    }
    Ok(())
}
// ANCHOR_END: join_group

// ANCHOR: write_file
/// Every cgroup operation is a write to a file: show it as the shell would.
pub fn write_file(path: &Path, value: &str) -> Result<()> {
    explain::step(
        &format!("write({:?}, {value:?})", path.display().to_string()),
        &format!("echo {value:?} > {}", path.display()),
    );
    fs::write(path, value).with_context(|| format!("write {value:?} to {}", path.display()))
}
// ANCHOR_END: write_file

/// Kill every process still in `group`, wait until it is empty, remove it.
/// (v2 has `cgroup.kill` for this since Linux 5.14; killing by PID works
/// everywhere.)
pub fn remove_group(group: &Path) -> Result<()> {
    if !group.exists() {
        return Ok(());
    }
    for _ in 0..200 {
        let procs = fs::read_to_string(group.join("cgroup.procs")).unwrap_or_default();
        if procs.trim().is_empty() {
            explain::step(
                &format!("rmdir({:?})", group.display().to_string()),
                &format!("rmdir {}", group.display()),
            );
            return fs::remove_dir(group).with_context(|| format!("remove {}", group.display()));
        }
        for pid in procs.lines().filter_map(|l| l.trim().parse().ok()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    bail!("{} still has processes after SIGKILL", group.display())
}

pub use ops::cleanup;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_parsed_like_docker() {
        assert_eq!(parse_size("64M").unwrap(), 64 << 20);
        assert_eq!(parse_size("1g").unwrap(), 1 << 30);
        assert_eq!(parse_size("2048K").unwrap(), 2 << 20);
        assert_eq!(parse_size("2097152").unwrap(), 2 << 20);
        for bad in ["", "M", "64X", "-1M", "1.5G", "12", "99999999999999G"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn stats_are_described_in_one_line() {
        let stats = Stats {
            peak_memory: Some(3 << 20),
            cpu_usec: Some(980_000),
            peak_tasks: None,
        };
        assert_eq!(
            describe(&stats),
            "stats: peak memory 3.0 MiB, CPU time 0.98 s, peak tasks n/a"
        );
    }
}
