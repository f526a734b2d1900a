//! A containerd daemon of a test's own: its root, state and sockets in a
//! temporary directory (never /run/containerd or the system's daemon), the
//! CRI plugin off (no CNI, no network setup), started inside a network
//! namespace of its own, driven with `ctr`. Its containers live in a
//! containerd namespace named after the test program, so their cgroups
//! (`/NAMESPACE/ID`) are found and removed at the end. The runtime keeps its
//! state (`--runc-root`) and ctr its FIFOs (`--fifo-dir`) in that directory
//! too; only the shims' sockets go where containerd 1.6 always puts them,
//! /run/containerd/s (removed at the end if this daemon made it).

use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use crate::oci::{hierarchies, remove_cgroups_named, unmount_all_under};
use crate::registry::TempDir;
use crate::NetSandbox;

/// The daemon, its client and the shim that calls the runtime: one package.
const TOOLS: [(&str, &str); 3] = [
    ("containerd", "containerd"),
    ("ctr", "containerd"),
    ("containerd-shim-runc-v2", "containerd"),
];

/// Where containerd 1.6's shims put their sockets, whatever the config.
const RUN_DIR: &str = "/run/containerd";

pub struct Containerd {
    daemon: Child,
    runtime: String,
    /// Whether /run/containerd was there before (the shims' sockets).
    run_dir_was_there: bool,
    /// The containerd namespace of this test's containers.
    pub namespace: String,
    dir: TempDir,
    sandbox: NetSandbox,
}

impl Containerd {
    /// Start a daemon whose containers `runtime` runs, and wait until it
    /// answers.
    pub fn start(runtime: &str) -> Self {
        crate::require_root();
        crate::registry::require_tools(&TOOLS);
        let dir = TempDir::new("containerd");
        let at = |name: &str| dir.join(name).display().to_string();
        let config = format!(
            "version = 2\n\
             root = \"{}\"\n\
             state = \"{}\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{}\"\n\
             [ttrpc]\n  address = \"{}\"\n\
             [debug]\n  address = \"{}\"\n",
            at("root"),
            at("state"),
            at("containerd.sock"),
            at("containerd.sock.ttrpc"),
            at("debug.sock"),
        );
        std::fs::write(dir.join("config.toml"), config).expect("write config.toml");
        let log = std::fs::File::create(dir.join("containerd.log")).expect("create the log");
        let sandbox = NetSandbox::new();
        let daemon = sandbox
            .command("containerd")
            .arg("--config")
            .arg(dir.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start containerd");
        let namespace = dir
            .path
            .file_name()
            .expect("a name")
            .to_string_lossy()
            .into_owned();
        let mut containerd = Containerd {
            daemon,
            runtime: runtime.to_string(),
            run_dir_was_there: Path::new(RUN_DIR).exists(),
            namespace,
            dir,
            sandbox,
        };
        containerd.wait_until_ready();
        containerd
    }

    fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + crate::oci::scaled(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.daemon.try_wait() {
                panic!("containerd exited ({status}):\n{}", self.log());
            }
            if self.ctr(&["version"]).status.success() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("containerd did not answer in time:\n{}", self.log());
    }

    /// The daemon's log (the shim's messages about the runtime too).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }

    /// `ctr --address SOCKET --namespace NAMESPACE ARGS` (stdin closed,
    /// output captured).
    pub fn ctr(&self, args: &[&str]) -> Output {
        self.sandbox
            .command("ctr")
            .arg("--address")
            .arg(self.dir.join("containerd.sock"))
            .arg("--namespace")
            .arg(&self.namespace)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("start ctr: {e}"))
    }

    /// `ctr run` with the runtime under test (`--runc-binary RUNTIME`, its
    /// state under the daemon's directory), then `args`: `ctr run --rm
    /// --runc-binary RUNTIME ... IMAGE ID CMD`.
    pub fn run(&self, args: &[&str]) -> Output {
        let root = self.dir.join("runc").display().to_string();
        let fifos = self.dir.join("fifo").display().to_string();
        let options = ["run", "--runc-binary", &self.runtime, "--runc-root", &root];
        self.ctr(&[&options[..], &["--fifo-dir", &fifos], args].concat())
    }

    /// [`Containerd::ctr`], which must succeed; its standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        crate::oci::succeeded("ctr", args, self.ctr(args))
    }

    /// Import the OCI image layout `layout` as an archive (`tar` of the
    /// layout), named `localhost/NAME:TAG` after the layout's tag; returns
    /// that name.
    pub fn import(&self, layout: &Path, name: &str, tag: &str) -> String {
        let archive = self.dir.join(format!("{name}.tar"));
        crate::registry::run_tool(
            "tar",
            &[
                "-C",
                &layout.display().to_string(),
                "-cf",
                &archive.display().to_string(),
                ".",
            ],
        );
        let base = format!("localhost/{name}");
        let archive = archive.display().to_string();
        self.ok(&[
            "image",
            "import",
            "--base-name",
            &base,
            "--digests",
            &archive,
        ]);
        format!("{base}:{tag}")
    }

    /// Where containerd keeps everything of its own.
    pub fn dir(&self) -> &Path {
        &self.dir.path
    }

    /// Assert that no task or container is left, and nothing of theirs: no
    /// mount under the daemon's directory (a task's root filesystem), no
    /// container cgroup under the namespace's.
    pub fn assert_clean(&self) {
        for list in [
            &["task", "ls", "--quiet"][..],
            &["container", "ls", "--quiet"],
        ] {
            let left = self.ok(list);
            assert!(left.trim().is_empty(), "ctr {list:?} lists: {left}");
        }
        let states = std::fs::read_dir(self.dir.join("runc").join(&self.namespace));
        let states: Vec<_> = states
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(states.is_empty(), "the runtime's state left: {states:?}");
        let mounts = crate::oci::mounts_under(&self.dir.path);
        assert!(mounts.is_empty(), "mounts left: {mounts:?}");
        let groups: Vec<PathBuf> = hierarchies()
            .iter()
            .map(|h| h.join(&self.namespace))
            .flat_map(|parent| std::fs::read_dir(parent).into_iter().flatten().flatten())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect();
        assert!(groups.is_empty(), "container cgroups left: {groups:?}");
    }
}

/// Kill and delete every task and container, stop the daemon (and any
/// shim of its still running), unmount what is left under its directory,
/// remove the namespace's cgroups.
impl Drop for Containerd {
    fn drop(&mut self) {
        let containers = crate::stdout(&self.ctr(&["container", "ls", "--quiet"]));
        for id in containers.lines() {
            let _ = self.ctr(&["task", "kill", "--signal", "SIGKILL", id]);
            let _ = self.ctr(&["task", "delete", "--force", id]);
            let _ = self.ctr(&["container", "delete", id]);
        }
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.daemon.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.daemon.wait();
        kill_shims_of(&self.dir.join("containerd.sock"));
        unmount_all_under(&self.dir.path);
        remove_cgroups_named(&self.namespace);
        if !self.run_dir_was_there {
            let _ = std::fs::remove_dir(Path::new(RUN_DIR).join("s"));
            let _ = std::fs::remove_dir(RUN_DIR);
        }
    }
}

/// SIGKILL the shims still serving `socket` (each names it in its command
/// line: `containerd-shim-runc-v2 ... -address SOCKET`).
fn kill_shims_of(socket: &Path) {
    let socket = socket.display().to_string();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let words: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let is_shim = words
            .first()
            .is_some_and(|w| w.ends_with(b"containerd-shim-runc-v2"));
        if is_shim && words.contains(&socket.as_bytes()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}
