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

/// Start `copies` runs of `binary args` at the same moment, with the data
/// directory `data_dir` (`PFS_DATA_DIR`), and wait for them all: for the
/// races of first builds and pulls.
pub fn run_at_once(
    binary: &str,
    args: &[&str],
    data_dir: &std::path::Path,
    copies: usize,
) -> Vec<Output> {
    let started: Vec<Child> = (0..copies)
        .map(|_| {
            Command::new(binary)
                .args(args)
                .env("PFS_DATA_DIR", data_dir)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("start {binary}: {e}"))
        })
        .collect();
    started
        .into_iter()
        .map(|child| {
            child
                .wait_with_output()
                .unwrap_or_else(|e| panic!("wait for {binary}: {e}"))
        })
        .collect()
}

/// A chapter's binary, started with `args` (stdin closed, output captured).
pub fn run(binary: &str, args: &[&str]) -> Output {
    Command::new(binary)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("start {binary}: {e}"))
}

/// [`run`] with a data (and state) directory of its own, `data`.
pub fn run_with_data_dir(binary: &str, data: &std::path::Path, args: &[&str]) -> Output {
    Command::new(binary)
        .args(args)
        .env("PFS_DATA_DIR", data)
        .env("PFS_STATE_DIR", data.join("state"))
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("start {binary}: {e}"))
}

/// [`run`], as root, asserting that the run left the host as it found it.
pub fn run_checking_host(binary: &str, args: &[&str]) -> Output {
    require_root();
    let before = HostState::capture();
    let output = run(binary, args);
    HostState::capture().assert_unchanged_since(&before);
    output
}

/// The message of a refused command, asserting the refusal: exit status
/// `code` and exactly one line on stderr.
pub fn error_line(output: &Output, code: i32) -> String {
    let message = stderr(output);
    assert_eq!(output.status.code(), Some(code), "{message}");
    assert_eq!(message.lines().count(), 1, "{message}");
    message
}

/// Standard output as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Assert that a command printed `expected` (showing all it said if not).
pub fn assert_stdout_contains(output: &Output, expected: &str) {
    let said = stdout(output);
    assert!(said.contains(expected), "{said}{}", stderr(output));
}

/// Assert that each of `expected` appears in `text`, in this order: the
/// steps `--explain` printed, each with its shell equivalent.
pub fn assert_in_order(text: &str, expected: &[&str]) {
    let mut rest = text;
    for step in expected {
        let at = rest
            .find(step)
            .unwrap_or_else(|| panic!("missing or out of order: {step}\n{text}"));
        rest = &rest[at..];
    }
}

/// A container started in the background that waits for us: it prints a
/// line when it is ready, and ends when we close its stdin.
pub struct Running {
    pub child: Child,
    stdin: Option<ChildStdin>,
    pub stdout: BufReader<ChildStdout>,
}

impl Running {
    /// Start `binary args...`, whose command must print `ready` when ready
    /// and then wait for stdin to close (e.g. `sh -c 'echo ready; read x'`).
    pub fn start(binary: &str, args: &[&str]) -> Self {
        let mut command = Command::new(binary);
        command.args(args);
        Self::start_command(command)
    }

    /// `binary OPTIONS -- sh -c 'echo ready; SCRIPT'`, started and ready.
    pub fn sh(binary: &str, options: &[&str], script: &str) -> Self {
        let mut command = Command::new(binary);
        command.args(options).args(ready_then(script));
        Self::start_command(command)
    }

    /// The host PID of the command the runtime started: its first child.
    pub fn command_pid(&self) -> String {
        let runtime = self.child.id();
        let children = std::fs::read_to_string(format!("/proc/{runtime}/task/{runtime}/children"))
            .expect("read the runtime's children");
        children
            .split_whitespace()
            .next()
            .expect("the runtime has a child")
            .to_string()
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

/// The command of a container that says `ready`, then runs `script`.
fn ready_then(script: &str) -> [String; 4] {
    ["--", "sh", "-c", &format!("echo ready; {script}")].map(String::from)
}

/// Assert that the host's state is the same before, while the container
/// `start` starts runs, and after it ended with status 0.
pub fn assert_host_unchanged_during(start: impl FnOnce() -> Running) {
    require_root();
    let before = HostState::capture();
    let container = start();
    HostState::capture().assert_unchanged_since(&before);
    assert_eq!(container.finish(), Some(0));
    HostState::capture().assert_unchanged_since(&before);
}

/// A test that fails before `finish` must not leave its container running:
/// two SIGTERMs make the chapter's runtime SIGKILL the command (see ch01)
/// and clean up as usual.
impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
            for _ in 0..2 {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            let _ = self.child.wait();
        }
    }
}

impl Running {
    /// Like [`Running::start`], for a prepared command (e.g. one from
    /// [`NetSandbox::command`]).
    pub fn start_command(mut command: Command) -> Self {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {command:?}: {e}"));
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut running = Running {
            child,
            stdin,
            stdout,
        };
        let ready = running.read_line();
        assert_eq!(ready, "ready", "{command:?} did not say it was ready");
        running
    }
}

/// A throwaway network namespace that plays "the host" for a network test,
/// with a state directory of its own. Everything the chapter creates (the
/// bridge, veths, routes, rules) lives in it, never in the real host's
/// namespace; it vanishes when the sandbox is dropped.
///
/// No name and no mount: the namespace is made by a short-lived thread
/// (`unshare(CLONE_NEWNET)` moves only the calling thread), and kept alive
/// by an open file on it; commands enter it with `setns` before `exec`.
pub struct NetSandbox {
    netns: std::fs::File,
    pub state_dir: std::path::PathBuf,
}

impl NetSandbox {
    /// A new, empty network namespace (only `lo`, down) and state directory.
    pub fn new() -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        require_root();
        let netns = new_network_namespace();
        let n = COUNT.fetch_add(1, Ordering::SeqCst);
        let state_dir = std::env::temp_dir().join(format!("pfs-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&state_dir);
        std::fs::create_dir_all(&state_dir).expect("create the sandbox's state dir");
        NetSandbox { netns, state_dir }
    }

    /// `program`, to be run inside the sandbox, with `PFS_STATE_DIR` set.
    pub fn command(&self, program: &str) -> Command {
        use std::os::fd::{AsRawFd, BorrowedFd};
        use std::os::unix::process::CommandExt;
        let mut command = Command::new(program);
        command.env("PFS_STATE_DIR", &self.state_dir);
        let fd = self.netns.as_raw_fd();
        // SAFETY: setns(2) is a plain system call, safe between fork and exec;
        // the file stays open as long as `self`, which outlives the spawn.
        unsafe {
            command.pre_exec(move || {
                let netns = BorrowedFd::borrow_raw(fd);
                nix::sched::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(std::io::Error::from)
            });
        }
        command
    }

    /// A path naming the sandbox's namespace, for other tools, e.g.
    /// `ip link set wan netns PATH` (this process's open file on it).
    pub fn netns_path(&self) -> String {
        use std::os::fd::AsRawFd;
        format!("/proc/{}/fd/{}", std::process::id(), self.netns.as_raw_fd())
    }

    /// Run `program args...` in the sandbox (stdin closed, output captured).
    pub fn run(&self, program: &str, args: &[&str]) -> Output {
        self.command(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("start {program}: {e}"))
    }

    /// Start `program args...` in the sandbox, as [`Running::start`] does.
    pub fn start(&self, program: &str, args: &[&str]) -> Running {
        let mut command = self.command(program);
        command.args(args);
        Running::start_command(command)
    }

    /// `program OPTIONS -- sh -c 'echo ready; SCRIPT'` in the sandbox, as
    /// [`Running::sh`] does.
    pub fn start_sh(&self, program: &str, options: &[&str], script: &str) -> Running {
        let mut command = self.command(program);
        command.args(options).args(ready_then(script));
        Running::start_command(command)
    }

    /// A new sandbox, and its network as it is before the test.
    pub fn with_snapshot() -> (Self, NetState) {
        let sandbox = Self::new();
        let before = sandbox.snapshot();
        (sandbox, before)
    }

    /// Assert that no link whose name contains `name` is left, waiting up
    /// to five seconds: the kernel destroys a dead network namespace's
    /// links in the background, veth pairs with them, a moment after its
    /// last process exits.
    pub fn assert_links_gone(&self, name: &str) {
        let links = || stdout(&self.run("ip", &["-o", "link"]));
        for _ in 0..100 {
            if !links().contains(name) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("links named {name}... are left:\n{}", links());
    }

    /// A snapshot taken once the kernel has finished reacting to the last
    /// change (a bridge port starting to forward, IPv6 addresses appearing
    /// on new links): two snapshots in a row, 100 ms apart, are the same.
    pub fn settled_snapshot(&self) -> NetState {
        let mut last = self.snapshot();
        for _ in 0..50 {
            std::thread::sleep(std::time::Duration::from_millis(100));
            let now = self.snapshot();
            if now == last {
                return now;
            }
            last = now;
        }
        panic!("the sandbox host's network kept changing:\n{}", last.0)
    }

    /// The sandbox's links, addresses, routes, rules and nftables ruleset,
    /// as iproute2 and nft print them (read-only commands).
    pub fn snapshot(&self) -> NetState {
        let text = |program: &str, args: &[&str]| {
            let output = self.run(program, args);
            let listing: Vec<String> = stdout(&output).lines().map(without_timers).collect();
            format!("$ {program} {}\n{}\n", args.join(" "), listing.join("\n"))
        };
        let mut listing = vec![
            text("ip", &["-d", "link", "show"]),
            text("ip", &["addr", "show"]),
            text("ip", &["-4", "route", "show", "table", "all"]),
            text("ip", &["-6", "route", "show", "table", "all"]),
            text("ip", &["rule", "show"]),
            text("cat", &["/proc/sys/net/ipv4/ip_forward"]),
        ];
        if std::path::Path::new("/usr/sbin/nft").exists() {
            listing.push(text("nft", &["list", "ruleset"]));
        }
        NetState(listing.join(""))
    }
}

impl Default for NetSandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for NetSandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.state_dir);
    }
}

/// A network namespace of our own, kept alive by the returned file.
fn new_network_namespace() -> std::fs::File {
    std::thread::spawn(|| {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
        without_duplicate_address_detection();
        std::fs::File::open("/proc/thread-self/ns/net").expect("open /proc/thread-self/ns/net")
    })
    .join()
    .expect("the namespace thread")
}

/// Turn IPv6 duplicate address detection off in the calling thread's new
/// network namespace (sysctls under /proc/sys/net belong to the namespace
/// of whoever opens them). With it on, a new link's IPv6 address stays
/// "tentative" for a second and then gains a local route, so a snapshot
/// would race the kernel; with it off the address is final at once.
fn without_duplicate_address_detection() {
    for scope in ["all", "default"] {
        let knob = format!("/proc/sys/net/ipv6/conf/{scope}/accept_dad");
        // No such file: IPv6 is off on this host, nothing to wait for.
        if std::path::Path::new(&knob).exists() {
            std::fs::write(&knob, "0").unwrap_or_else(|e| panic!("write {knob}: {e}"));
        }
    }
}

/// One line of `ip` output without what changes by itself as time goes
/// by: bridge timers (`gc_timer 0.08`).
fn without_timers(line: &str) -> String {
    let mut words = Vec::new();
    let mut skip_next = false;
    for word in line.split_whitespace() {
        if std::mem::take(&mut skip_next) {
            continue;
        }
        skip_next = word.ends_with("_timer");
        words.push(word);
    }
    words.join(" ")
}

/// What `ip` and `nft` list in a network namespace.
#[derive(Debug, PartialEq, Eq)]
pub struct NetState(pub String);

impl NetState {
    /// Fail the test, showing both listings, if the namespace changed.
    pub fn assert_unchanged_since(&self, before: &NetState) {
        assert!(
            before == self,
            "the sandbox host's network changed:\n--- before\n{}\n--- after\n{}",
            before.0,
            self.0
        );
    }
}

pub mod containerd;
pub mod oci;
pub mod podman;
pub mod registry;

/// The data and state directories of a test program, exported as
/// `PFS_DATA_DIR` and `PFS_STATE_DIR` for the chapter processes it starts.
/// They stay between runs, like the real cache (`$PFS_TEST_DATA_DIR`, or
/// /var/cache/pods-from-scratch/test-data), so a root filesystem is built
/// once per machine. Every test calls this before starting a process.
pub fn test_data_dir() -> &'static std::path::Path {
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::var_os("PFS_TEST_DATA_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| "/var/cache/pods-from-scratch/test-data".into());
        let state = dir.join("state");
        std::fs::create_dir_all(&state).expect("create the test data directory");
        // Set once, before any test of this program starts a process: the
        // others wait on this OnceLock.
        std::env::set_var("PFS_DATA_DIR", &dir);
        std::env::set_var("PFS_STATE_DIR", &state);
        dir
    })
}
