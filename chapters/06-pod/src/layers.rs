//! This chapter's layers, for chapter 01's runtime:
//!
//! - [`KeepNamespaces`] (the pause process): bind-mount its namespaces into
//!   the pod's directory, so that they can be found, and joined, by path;
//! - [`PodGroup`] (the pause process): the pod's cgroup, with the pod's
//!   limits; pause's and the containers' groups live inside it;
//! - [`JoinPod`] (a container): join the pod's namespaces with `setns`;
//! - [`JoinContainer`] (`pod exec`): join a running container's namespaces,
//!   its mount namespace included, and its cgroup.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ch01::{explain, Layer};
use ch05::ControlGroup;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, CloneFlags};
use nix::unistd::Pid;

/// The namespaces every pod shares: their names in `/proc/PID/ns/`, and
/// the flag that `setns` takes for each. (The PID namespace is shared only
/// with `--share-pid`.)
pub const SHARED: [(&str, CloneFlags); 3] = [
    ("net", CloneFlags::CLONE_NEWNET),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
];

// ANCHOR: bind_mount_namespace
/// A namespace lives while a process is in it, or while something refers to
/// it: an open file, or a *mount* of its `/proc/PID/ns/KIND` file. Bind-mount
/// that file onto an empty file of ours, and the namespace can be found by
/// path (`nsenter --net=PATH`) and outlives even its last process. This is
/// exactly what `ip netns add` does in `/run/netns`.
pub fn bind_mount_namespace(pid: Pid, kind: &str, target: &Path) -> Result<()> {
    let source = format!("/proc/{pid}/ns/{kind}");
    File::create(target).with_context(|| format!("create {}", target.display()))?;
    explain::step(
        &format!("mount({source:?}, {target:?}, MS_BIND)"),
        &format!("mount --bind {source} {}", target.display()),
    );
    mount(
        Some(source.as_str()),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .with_context(|| format!("bind-mount {source} on {}", target.display()))
}
// ANCHOR_END: bind_mount_namespace

/// Undo [`bind_mount_namespace`]: unmount the file, then remove it. Once no
/// process and no mount refers to it, the kernel frees the namespace.
pub fn unmount_namespace(target: &Path) -> Result<()> {
    if !target.exists() {
        return Ok(());
    }
    explain::step(
        &format!("umount2({target:?}, MNT_DETACH)"),
        &format!("umount --lazy {}", target.display()),
    );
    // EINVAL: not mounted (a failed start, or unmounted already).
    match umount2(target, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) => {}
        Err(e) => return Err(e).with_context(|| format!("unmount {}", target.display())),
    }
    fs::remove_file(target).with_context(|| format!("remove {}", target.display()))
}

// ANCHOR: join_namespace
/// The key step of a pod: `setns(2)` moves the calling process into the
/// namespace that an open file refers to (a bind-mounted one here, or a
/// `/proc/PID/ns/` file). Every container of the pod does this with the
/// same files, so they all share one network stack, one hostname, one IPC.
pub fn join_namespace(file: &File, path: &Path, kind: &str, flag: CloneFlags) -> Result<()> {
    let flag_name = flag.iter_names().next().map_or("?", |(name, _)| name);
    let option = if kind == "mnt" { "mount" } else { kind }; // nsenter --mount
    explain::step(
        &format!("setns({:?}, {flag_name})", path.display().to_string()),
        &format!("nsenter --{option}={}", path.display()),
    );
    setns(file, flag).with_context(|| format!("join the {kind} namespace of {}", path.display()))
}
// ANCHOR_END: join_namespace

/// Open a namespace file, to join it later (in the child).
fn open_namespace(path: &Path) -> Result<File> {
    explain::step(
        &format!("open({:?})", path.display().to_string()),
        "(a handle on the namespace, for setns)",
    );
    File::open(path).with_context(|| format!("open {}", path.display()))
}

// ---------------------------------------------------------------------------
// The pause process's layers
// ---------------------------------------------------------------------------

// ANCHOR: keep_namespaces
/// Pause's namespaces, bind-mounted as `ns/net`, `ns/ipc`, `ns/uts` (and
/// `ns/pid` when the pod shares it) in the pod's state directory.
pub struct KeepNamespaces {
    dir: PathBuf,
    kinds: Vec<&'static str>,
    mounted: Vec<PathBuf>,
}

impl KeepNamespaces {
    pub fn new(dir: PathBuf, share_pid: bool) -> Self {
        let mut kinds: Vec<&str> = SHARED.iter().map(|(kind, _)| *kind).collect();
        if share_pid {
            kinds.push("pid");
        }
        KeepNamespaces {
            dir,
            kinds,
            mounted: Vec::new(),
        }
    }
}

impl Layer for KeepNamespaces {
    fn prepare(&mut self) -> Result<()> {
        fs::create_dir_all(&self.dir).with_context(|| format!("create {}", self.dir.display()))
    }

    /// Parent, pause exists (in its new namespaces) and waits: mount them.
    fn setup_from_parent(&mut self, child: Pid) -> Result<()> {
        for kind in &self.kinds {
            let target = self.dir.join(kind);
            bind_mount_namespace(child, kind, &target)?;
            self.mounted.push(target);
        }
        Ok(())
    }

    /// Only if pause did not start (once it runs, `pod rm` does this).
    fn cleanup(&mut self) -> Result<()> {
        for target in self.mounted.drain(..) {
            unmount_namespace(&target)?;
        }
        let _ = fs::remove_dir(&self.dir);
        Ok(())
    }
}
// ANCHOR_END: keep_namespaces

/// The pod's own cgroup: it holds the pod's limits and no process; pause
/// and each container get a group inside it, so the limits apply to them
/// all together (a v2 group with children may hold no process itself).
/// It is chapter 05's layer, less the child's part: pause joins its own
/// group, inside this one.
pub struct PodGroup(pub ch05::Cgroup);

impl Layer for PodGroup {
    fn prepare(&mut self) -> Result<()> {
        self.0.prepare()
    }

    fn cleanup(&mut self) -> Result<()> {
        self.0.cleanup()
    }
}

// ANCHOR: join_pid_namespace_for_children
/// Like `unshare`, `setns(CLONE_NEWPID)` does not move the caller: it makes
/// the caller's next child a member of that namespace (not its PID 1, which
/// exists already). Chapter 01's runtime forks right after asking us.
fn join_pid_namespace_for_children(pid_namespace: Option<&File>) -> Result<bool> {
    let Some(pid_namespace) = pid_namespace else {
        return Ok(false); // a new PID namespace, as in chapter 01
    };
    explain::step("setns(<pid namespace>, CLONE_NEWPID)", "nsenter --pid=FILE");
    setns(pid_namespace, CloneFlags::CLONE_NEWPID).context("setns(CLONE_NEWPID)")?;
    Ok(true)
}
// ANCHOR_END: join_pid_namespace_for_children

// ---------------------------------------------------------------------------
// A container's layer
// ---------------------------------------------------------------------------

// ANCHOR: join_pod
/// A container of the pod: no new network, IPC or UTS namespace, but the
/// pod's, held by pause. With a shared PID namespace, the child is also
/// forked into pause's (chapter 01 asks [`Layer::join_pid_namespace`]).
#[derive(Default)]
pub struct JoinPod {
    ns_dir: PathBuf,
    kinds: &'static [(&'static str, CloneFlags)],
    share_pid: bool,
    opened: Vec<(File, PathBuf, &'static str, CloneFlags)>,
    pid_namespace: Option<File>,
}

impl JoinPod {
    pub fn new(ns_dir: PathBuf, share_pid: bool) -> Self {
        JoinPod {
            ns_dir,
            kinds: &SHARED,
            share_pid,
            ..Default::default()
        }
    }
}

impl Layer for JoinPod {
    /// Parent: open the pod's namespace files now, while we see them.
    fn prepare(&mut self) -> Result<()> {
        for &(kind, flag) in self.kinds {
            let path = self.ns_dir.join(kind);
            self.opened.push((open_namespace(&path)?, path, kind, flag));
        }
        if self.share_pid {
            self.pid_namespace = Some(open_namespace(&self.ns_dir.join("pid"))?);
        }
        Ok(())
    }

    fn join_pid_namespace(&mut self) -> Result<bool> {
        join_pid_namespace_for_children(self.pid_namespace.as_ref())
    }

    /// Child: join each of them.
    fn setup_in_child(&mut self) -> Result<()> {
        for (file, path, kind, flag) in &self.opened {
            join_namespace(file, path, kind, *flag)?;
        }
        Ok(())
    }
}
// ANCHOR_END: join_pod

// ---------------------------------------------------------------------------
// `pod exec`'s layer
// ---------------------------------------------------------------------------

// ANCHOR: join_container
/// `pod exec`: the command joins a running container entirely: its cgroup,
/// its PID namespace (forked into), and its IPC, UTS, network, cgroup and
/// mount namespaces (`setns`), mount last: it changes our root to the
/// container's. Like `nsenter --target PID --all` (or `docker exec`).
/// The namespaces are joined as [`JoinPod`] joins the pod's, from
/// `/proc/PID/ns/` instead of the pod's directory.
pub struct JoinContainer {
    namespaces: JoinPod,
    group: Box<dyn ControlGroup>,
    memberships: Vec<ch05::Membership>,
}

impl JoinContainer {
    pub fn new(pid: u32, group: Box<dyn ControlGroup>) -> Self {
        let namespaces = JoinPod {
            ns_dir: PathBuf::from(format!("/proc/{pid}/ns")),
            kinds: &[
                ("ipc", CloneFlags::CLONE_NEWIPC),
                ("uts", CloneFlags::CLONE_NEWUTS),
                ("net", CloneFlags::CLONE_NEWNET),
                ("cgroup", CloneFlags::CLONE_NEWCGROUP),
                ("mnt", CloneFlags::CLONE_NEWNS),
            ],
            share_pid: true,
            ..Default::default()
        };
        let memberships = Vec::new();
        JoinContainer {
            namespaces,
            group,
            memberships,
        }
    }
}

impl Layer for JoinContainer {
    fn prepare(&mut self) -> Result<()> {
        self.namespaces.prepare()?;
        self.memberships = self.group.open_to_join()?;
        Ok(())
    }

    fn join_pid_namespace(&mut self) -> Result<bool> {
        self.namespaces.join_pid_namespace()
    }

    /// Child: the command counts against the container's limits, then it
    /// enters the container's namespaces.
    fn setup_in_child(&mut self) -> Result<()> {
        ch05::join_group(&self.memberships)?;
        self.namespaces.setup_in_child()
    }
}
// ANCHOR_END: join_container
