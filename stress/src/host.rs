//! A throwaway "host" for a part's containers: a testkit::NetSandbox (a
//! network namespace of its own, with its own state directory) and a data
//! directory inside it, so that a part's bridge, leases, records and
//! container directories are its own, and can be checked to the last file.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use testkit::{stderr, stdout, NetSandbox, NetState};

pub struct Host {
    pub sandbox: NetSandbox,
}

impl Host {
    /// A new sandbox, with the busybox root filesystem built in its data
    /// directory (once, before the runs: a part tests runs, not first builds).
    pub fn new() -> Result<Host> {
        let host = Host {
            sandbox: NetSandbox::new(),
        };
        let built = host.command("ch04", &["rootfs", "busybox"])?.output()?;
        ensure!(
            built.status.success(),
            "ch04 rootfs busybox: {}",
            stderr(&built)
        );
        Ok(host)
    }

    pub fn state_dir(&self) -> &Path {
        &self.sandbox.state_dir
    }

    pub fn data_dir(&self) -> PathBuf {
        self.sandbox.state_dir.join("data")
    }

    /// `binary ARGS` (a workspace binary), to be run in the sandbox with its
    /// data directory, stdin closed.
    pub fn command(&self, binary: &str, args: &[&str]) -> Result<Command> {
        let path = crate::binary(binary)?;
        let mut command = self.sandbox.command(&path.to_string_lossy());
        command
            .args(args)
            .env("PFS_DATA_DIR", self.data_dir())
            .stdin(Stdio::null());
        Ok(command)
    }

    /// The network once no container runs: the bridge, with no port left,
    /// has lost its carrier, and the kernel has told its routes and state
    /// (it does so a moment later, up to a second: the "linkwatch" work,
    /// which an emulated VM showed outlasting a settled snapshot).
    pub fn idle_snapshot(&self) -> Result<NetState> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let bridge = stdout(&self.sandbox.run("ip", &["-o", "link", "show", "pfs0"]));
            if bridge.is_empty() || bridge.contains("state DOWN") {
                return Ok(self.sandbox.settled_snapshot());
            }
            ensure!(
                Instant::now() < deadline,
                "the bridge is still up 10 s after the last container: {bridge}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `ch07 cleanup --all`, which removes the bridge too (the last
    /// chapter's cleanup undoes every earlier chapter's): what went wrong,
    /// if it failed or the network is not as `before`.
    pub fn cleanup_all(&self, before: &NetState) -> Result<Vec<String>> {
        let mut failures = Vec::new();
        let cleanup = self.command("ch07", &["cleanup", "--all"])?.output()?;
        if !cleanup.status.success() {
            failures.push(format!("ch07 cleanup --all: {}", stderr(&cleanup)));
        }
        let after = self.sandbox.settled_snapshot();
        failures.extend(changes("the network, after cleanup --all,", before, &after));
        Ok(failures)
    }

    /// What the runs left in the sandbox's state and data directories: every
    /// file but lock files, empty lease files and the cache of root
    /// filesystems; and every link but `lo` and the bridge `pfs0`.
    pub fn leftovers(&self) -> Vec<String> {
        let mut files = Vec::new();
        files_under(self.state_dir(), &mut files);
        let cache = self.data_dir().join("rootfs");
        let mut left = Vec::new();
        for path in files {
            let lock = path.extension().is_some_and(|e| e == "lock");
            let empty = fs::metadata(&path).is_ok_and(|m| m.len() == 0);
            let lease = path.parent().is_some_and(|p| p.ends_with("leases"));
            if !(lock || path.starts_with(&cache) || (lease && empty)) {
                let text = fs::read_to_string(&path).unwrap_or_default();
                left.push(format!("file {} {text:?}", path.display()));
            }
        }
        left.extend(
            self.links_left()
                .into_iter()
                .map(|name| format!("link {name} in the sandbox")),
        );
        left
    }

    /// The sandbox's links but `lo` and the bridge, once the kernel is done:
    /// a container's host-side veth goes with its network namespace, which
    /// the kernel tears down a little after the container's last process
    /// (tens of ms, more on a loaded machine): wait up to 5 s for that.
    fn links_left(&self) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let links = stdout(&self.sandbox.run("ip", &["-o", "link", "show"]));
            let left: Vec<String> = links
                .lines()
                .map(|line| line.split(": ").nth(1).unwrap_or(line).to_string())
                .filter(|name| name != "lo" && name != "pfs0")
                .collect();
            if left.is_empty() || Instant::now() >= deadline {
                return left;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Every file (not directory) at or below `dir`.
fn files_under(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() && !path.is_symlink() {
            files_under(&path, found);
        } else {
            found.push(path);
        }
    }
}

/// `None` if the two listings are the same, else what changed: the lines
/// of `before` gone, and the new ones.
pub fn changes(what: &str, before: &NetState, after: &NetState) -> Option<String> {
    let lines = |s: &NetState| s.0.lines().map(str::to_string).collect::<BTreeSet<_>>();
    let (b, a) = (lines(before), lines(after));
    let gone: Vec<_> = b.difference(&a).collect();
    let new: Vec<_> = a.difference(&b).collect();
    (before != after).then(|| format!("{what} changed: gone {gone:?}, new {new:?}"))
}
