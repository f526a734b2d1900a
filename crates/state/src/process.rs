//! Liveness: does the process behind a record still run?
//!
//! A record names a process by its PID, and a PID outlives its process in
//! two ways: as a zombie (ended, waiting for its parent to collect its exit
//! status), and as a number the kernel later gives to another process. The
//! first is [`is_running`]'s business; for the second, a record keeps
//! something that identifies its process and compares it with
//! [`same_file`] (chapter 06 compares pause's network namespace).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// Whether a process runs: it exists, is not a zombie (a zombie has ended;
/// it only waits for its parent to collect its exit status), and is not
/// exiting. An exiting process has let go of everything but its PID; pause
/// may stay so for a while: as PID 1 of a PID namespace, its exit waits
/// until every process of the namespace has been collected by its parent.
pub fn is_running(pid: u32) -> bool {
    const PF_EXITING: u64 = 0x4; // the kernel's task flag, <linux/sched.h>
    if pid == 0 || i32::try_from(pid).is_err() {
        return false;
    }
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "PID (COMM) STATE PPID PGRP SESSION TTY TPGID FLAGS ...": COMM may
    // hold spaces and parentheses, so split after its last ')'.
    let Some((_, fields)) = stat.rsplit_once(") ") else {
        return false;
    };
    let fields: Vec<&str> = fields.split_whitespace().collect();
    let zombie = matches!(fields.first(), Some(&("Z" | "X")));
    let flags: u64 = fields.get(6).and_then(|f| f.parse().ok()).unwrap_or(0);
    !zombie && flags & PF_EXITING == 0
}

/// Two paths name the same object (same device and inode): for namespace
/// files, the same namespace.
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Poll until none of `pids` runs (true) or `timeout` passed (false). They
/// need not be our children (we could not `waitpid` them): we look at /proc.
pub fn wait_until_gone(pids: &[u32], timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if !pids.iter().any(|&pid| is_running(pid)) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// What `/proc/PID/cmdline` holds, words separated by spaces.
pub fn command_line_of(pid: u32) -> String {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let words: Vec<String> = raw
        .split(|&b| b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect();
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_runs_and_a_missing_one_does_not() {
        assert!(is_running(std::process::id()));
        assert!(!is_running(u32::MAX));
        assert!(!is_running(0));
    }

    #[test]
    fn a_zombie_does_not_run() {
        let child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        // Not collected yet: it ends and stays a zombie.
        assert!(wait_until_gone(&[pid], Duration::from_secs(5)));
        assert!(
            Path::new(&format!("/proc/{pid}")).exists(),
            "a zombie has /proc"
        );
        let mut child = child;
        child.wait().unwrap();
    }

    #[test]
    fn a_file_is_the_same_as_itself_only() {
        let a = Path::new("/proc/self/ns/net");
        assert!(same_file(a, a));
        assert!(!same_file(a, Path::new("/proc/self/ns/uts")));
        assert!(!same_file(a, Path::new("/nonexistent")));
    }

    #[test]
    fn our_command_line_is_read() {
        assert!(!command_line_of(std::process::id()).is_empty());
        assert_eq!(command_line_of(u32::MAX), "");
    }
}
