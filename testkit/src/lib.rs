//! Test support shared by the chapters' integration tests (a dev-dependency
//! only): a root guard that fails loudly, snapshots of the host's state to
//! prove a run left it as it was, and helpers to run a chapter's binary.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};

/// Integration tests create namespaces and mounts: they need root. Without
/// it they fail (never skip), saying how to run them.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these integration tests need root (they create namespaces and mounts): \
         run them with `sudo scripts/test.sh`"
    );
}

/// What a run must leave as it found it on the host.
#[derive(Debug, PartialEq, Eq)]
pub struct HostState {
    pub mountinfo: String,
    pub hostname: String,
    pub namespaces: Vec<(String, String)>,
}

impl HostState {
    /// Read the host's state as this (test) process sees it.
    pub fn capture() -> Self {
        let namespaces = ["pid", "mnt", "uts", "ipc", "net", "cgroup"]
            .iter()
            .map(|ns| (ns.to_string(), namespace_of("self", ns)))
            .collect();
        HostState {
            mountinfo: std::fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo"),
            hostname: nix::unistd::gethostname()
                .expect("gethostname")
                .to_string_lossy()
                .into_owned(),
            namespaces,
        }
    }

    /// Fail the test, showing the difference, if the host changed.
    pub fn assert_unchanged_since(&self, before: &HostState) {
        assert_eq!(
            before.hostname, self.hostname,
            "the host's hostname changed"
        );
        assert_eq!(
            before.namespaces, self.namespaces,
            "the test process's namespaces changed"
        );
        assert_eq!(
            before.mountinfo, self.mountinfo,
            "the host's mount table (/proc/self/mountinfo) changed"
        );
    }
}

/// The namespace a process is in, as the kernel names it: `mnt:[4026531841]`.
pub fn namespace_of(pid: &str, ns: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .unwrap_or_else(|e| panic!("readlink /proc/{pid}/ns/{ns}: {e}"))
        .to_string_lossy()
        .into_owned()
}

/// A chapter's binary, started with `args` (stdin closed, output captured).
pub fn run(binary: &str, args: &[&str]) -> Output {
    Command::new(binary)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("start {binary}: {e}"))
}

/// Standard output as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A container started in the background that waits for us: it prints a
/// line when it is ready, and ends when we close its stdin.
pub struct Running {
    pub child: Child,
    stdin: Option<ChildStdin>,
    pub stdout: BufReader<ChildStdout>,
}

impl Running {
    /// Start `binary args...`, whose command must print one line when ready
    /// and then wait for stdin to close (e.g. `sh -c 'echo ready; read x'`).
    pub fn start(binary: &str, args: &[&str]) -> Self {
        let mut child = Command::new(binary)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {binary}: {e}"));
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut running = Running {
            child,
            stdin,
            stdout,
        };
        running.read_line();
        running
    }

    /// The next line the container printed.
    pub fn read_line(&mut self) -> String {
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .expect("read from container");
        line.trim_end().to_string()
    }

    /// Write a line to the container's stdin.
    pub fn write_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        writeln!(stdin, "{line}").expect("write to container");
    }

    /// Send one last line, close stdin and wait for the container to end;
    /// its exit code.
    pub fn finish(mut self) -> Option<i32> {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = writeln!(stdin, "done"); // it may have ended already
        }
        self.child.wait().expect("wait").code()
    }
}
