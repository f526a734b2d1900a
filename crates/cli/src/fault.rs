//! A test-only hook: kill the runtime with SIGKILL at a named step, so that
//! the reliability suite (`pfs-stress faults`) can check that `cleanup`
//! undoes what a run killed at *that* step left, without sleeps and luck.
//!
//! Each step is marked in the chapters by one line, `fault::point("NAME")`.
//! It does nothing unless the environment variable [`VAR`] (`PFS_FAULT_AT`)
//! names that point: then the runtime (the chapter's binary) dies at once
//! with SIGKILL, as if `kill -9` had come at that very moment.
//!
//! A point in the parent simply kills itself. A point in the child cannot:
//! the child is in a new PID namespace, where the runtime has no PID, and
//! `kill(2)` (or a pidfd) cannot reach a process outside. So [`arm`], run
//! by [`crate::main`] when `PFS_FAULT_AT` is set, asks the kernel to send
//! the runtime SIGKILL when a byte arrives on a pipe (`F_SETOWN` names the
//! runtime, `F_SETSIG` the signal, `O_ASYNC` turns it on); the kernel does
//! that across namespaces. Any process started from the runtime (parent
//! or child) writes that byte; a child then waits to die with its runtime
//! (chapter 01's `PR_SET_PDEATHSIG`), or, if it asked for no such death
//! (a detached pause), goes on as it would.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::OnceLock;

use nix::libc;

/// The environment variable that names the point to die at.
pub const VAR: &str = "PFS_FAULT_AT";

/// Every point, in the order a run passes them (chapter: where), so that
/// the suite can go through them all.
pub const POINTS: [(&str, &str); 10] = [
    ("after-lease", "ch03, parent: an address leased"),
    ("after-cgroup", "ch05, parent: the cgroup made"),
    ("after-prepare", "ch01, parent: every layer prepared"),
    ("after-clone", "ch01, parent: the child forked"),
    ("after-veth", "ch03, parent: the veth pair made"),
    ("after-cgroup-join", "ch05, child: in its cgroup"),
    ("after-pivot-root", "ch04, child: on its new root"),
    ("before-exec", "ch01, child: all set"),
    ("while-waiting", "ch01, parent: the command runs"),
    ("after-pause-started", "ch06, parent: pause runs"),
];

/// fcntl(2)'s F_SETSIG (10 on Linux, every architecture), which the libc
/// crate does not name.
const F_SETSIG: libc::c_int = 10;

/// The pipe's two ends (the read end is kept open: it is what signals).
static ARMED: OnceLock<(OwnedFd, OwnedFd)> = OnceLock::new();

/// Mark the step `name`: kill the runtime here if `PFS_FAULT_AT` says so.
pub fn point(name: &str) {
    debug_assert!(
        POINTS.iter().any(|(p, _)| *p == name),
        "unlisted point {name}"
    );
    if std::env::var_os(VAR).is_some_and(|at| at == name) {
        die();
    }
}

/// Make the pipe whose first byte kills this process (see the module
/// doc). Does nothing when `PFS_FAULT_AT` is unset.
pub fn arm() {
    if std::env::var_os(VAR).is_none() || ARMED.get().is_some() {
        return;
    }
    let Ok((read, write)) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) else {
        return; // then `die` kills the caller itself
    };
    let fd = read.as_raw_fd();
    // SAFETY: fcntl(2) on a descriptor we own, with integer arguments.
    let armed = unsafe {
        libc::fcntl(fd, libc::F_SETOWN, libc::getpid()) == 0
            && libc::fcntl(fd, F_SETSIG, libc::SIGKILL) == 0
            && libc::fcntl(fd, libc::F_SETFL, libc::O_ASYNC | libc::O_NONBLOCK) == 0
    };
    if armed {
        let _ = ARMED.set((read, write));
    }
}

fn die() {
    eprintln!(
        "{}: {VAR}: SIGKILL of the runtime here",
        crate::program_name()
    );
    match ARMED.get() {
        // SAFETY: write(2) of one byte from a live buffer.
        Some((_, write)) => unsafe {
            libc::write(write.as_raw_fd(), b"k".as_ptr().cast(), 1);
        },
        // Not armed (not started through `crate::main`): kill ourselves.
        None => {
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
        }
    }
    // The runtime dies as the write returns: only a child gets here. It
    // waits to die with its runtime, unless it asked for no such death.
    let mut death_signal: libc::c_int = 0;
    // SAFETY: PR_GET_PDEATHSIG writes one int where we point.
    unsafe { libc::prctl(libc::PR_GET_PDEATHSIG, &mut death_signal) };
    if death_signal != 0 {
        loop {
            nix::unistd::pause();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_named_once_in_kebab_case() {
        let mut names: Vec<&str> = POINTS.iter().map(|(name, _)| *name).collect();
        assert!(names
            .iter()
            .all(|n| n.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')));
        names.sort();
        names.dedup();
        assert_eq!(names.len(), POINTS.len());
    }

    #[test]
    fn without_the_variable_a_point_does_nothing() {
        // The test runs without PFS_FAULT_AT (the suite sets it only for
        // the chapters' binaries): we are still here afterwards.
        assert!(std::env::var_os(VAR).is_none());
        arm();
        assert!(ARMED.get().is_none());
        point("after-prepare");
    }
}
