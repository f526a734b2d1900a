//! podman, set up for one test: its configuration, storage and state in a
//! temporary directory (never the machine's /var/lib/containers), the
//! busybox image from a local OCI layout, and the OCI runtime under test
//! passed on every call (`podman --runtime PATH`). It runs in a network
//! namespace of its own, and its containers get none (`--network none`):
//! the host's network is never touched.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::oci::{
    cgroups_named, mounts_under, remove_cgroups_named, unmount_all_under, BUSYBOX_TAG,
};
use crate::registry::TempDir;
use crate::NetSandbox;

/// The tools podman runs (the pods' pause: catatonit), and their packages.
const TOOLS: [(&str, &str); 3] = [
    ("podman", "podman"),
    ("conmon", "conmon"),
    ("catatonit", "catatonit"),
];

/// The name the busybox image has in every [`Podman`]'s storage.
pub const BUSYBOX: &str = "localhost/busybox";

pub struct Podman {
    runtime: String,
    dir: TempDir,
    sandbox: NetSandbox,
    /// podman makes `libpod_parent` (the cgroupfs parent of its groups)
    /// and never removes it: removed on drop if this podman made it.
    libpod_parent_was_there: bool,
}

impl Podman {
    /// A podman of its own that calls `runtime`, with the busybox image in
    /// `layout` (see [`crate::oci::busybox_layout`]) as [`BUSYBOX`].
    pub fn new(runtime: &str, layout: &Path) -> Self {
        crate::require_root();
        crate::registry::require_tools(&TOOLS);
        let dir = TempDir::new("podman");
        write_config(&dir);
        let podman = Podman {
            runtime: runtime.to_string(),
            sandbox: NetSandbox::new(),
            libpod_parent_was_there: !cgroups_named("libpod_parent").is_empty(),
            dir,
        };
        let image = format!("oci:{}:{BUSYBOX_TAG}", layout.display());
        let id = podman.ok(&["pull", "--quiet", &image]);
        podman.ok(&["tag", id.trim(), BUSYBOX]);
        podman
    }

    /// `podman --runtime RUNTIME ARGS` (stdin closed, output captured).
    pub fn podman(&self, args: &[&str]) -> Output {
        self.command(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("start podman: {e}"))
    }

    /// [`Podman::podman`], which must succeed; its standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        crate::oci::succeeded("podman", args, self.podman(args))
    }

    /// The command [`Podman::podman`] runs, to start it another way.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = self.sandbox.command("podman");
        command
            .env("CONTAINERS_CONF", self.dir.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", self.dir.join("storage.conf"))
            .arg("--runtime")
            .arg(&self.runtime)
            .args(args);
        command
    }

    /// Where podman keeps everything of its own.
    pub fn dir(&self) -> &Path {
        &self.dir.path
    }

    /// Assert that no container or pod is left, and nothing of theirs: no
    /// mount under podman's directory (a container's root filesystem or
    /// /dev/shm) beyond its storage's own, no container cgroup.
    pub fn assert_clean(&self) {
        for list in [&["ps", "--all", "--quiet"][..], &["pod", "ps", "--quiet"]] {
            let left = self.ok(list);
            assert!(left.trim().is_empty(), "podman {list:?} lists: {left}");
        }
        let storage = self.dir.join("root/overlay");
        let mounts: Vec<PathBuf> = mounts_under(&self.dir.path)
            .into_iter()
            .filter(|m| *m != storage)
            .collect();
        assert!(mounts.is_empty(), "mounts left: {mounts:?}");
        let groups = cgroups_named("libpod-");
        assert!(groups.is_empty(), "container cgroups left: {groups:?}");
    }
}

/// containers.conf and storage.conf as PEERS.md says: cgroupfs, events in
/// a file, ulimits it may set (the VM lacks CAP_SYS_RESOURCE), no network
/// unless asked, and every path under `dir`.
fn write_config(dir: &TempDir) {
    let at = |name: &str| dir.join(name).display().to_string();
    let containers = format!(
        "[containers]\n\
         default_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n\
         netns = \"none\"\n\
         [engine]\n\
         cgroup_manager = \"cgroupfs\"\n\
         events_logger = \"file\"\n\
         events_logfile_path = \"{}\"\n\
         tmp_dir = \"{}\"\n\
         volume_path = \"{}\"\n\
         static_dir = \"{}\"\n",
        at("events.log"),
        at("tmp"),
        at("volumes"),
        at("root/libpod"),
    );
    let storage = format!(
        "[storage]\ndriver = \"overlay\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
        at("root"),
        at("run"),
    );
    std::fs::write(dir.join("containers.conf"), containers).expect("write containers.conf");
    std::fs::write(dir.join("storage.conf"), storage).expect("write storage.conf");
}

/// Remove every container and pod (their cgroups too, even those podman
/// leaves), unmount what podman mounted under its directory, delete it.
impl Drop for Podman {
    fn drop(&mut self) {
        let ids = |args: &[&str]| -> Vec<String> {
            let output = self.podman(args);
            crate::stdout(&output).lines().map(str::to_string).collect()
        };
        let containers = ids(&["ps", "--all", "--quiet", "--no-trunc"]);
        let pods = ids(&["pod", "ps", "--quiet", "--no-trunc"]);
        let _ = self.podman(&["pod", "rm", "--all", "--force", "--time", "0"]);
        let _ = self.podman(&["rm", "--all", "--force", "--time", "0"]);
        for id in containers.iter().chain(&pods) {
            remove_cgroups_named(id);
        }
        if !self.libpod_parent_was_there {
            remove_cgroups_named("libpod_parent");
        }
        unmount_all_under(&self.dir.path);
    }
}
