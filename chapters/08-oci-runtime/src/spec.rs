//! From `config.json` to chapters 01–07: each field of the bundle's
//! configuration becomes the step of the chapter that taught it.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use ch01::{explain, Layer, Process, User};
use nix::mount::{mount, MsFlags};
use nix::sched::{setns, CloneFlags};
use oci_spec::runtime::{LinuxNamespaceType, Mount, Spec};
use pfs_oci::config::Bundle;
use pfs_oci::mount_options;

/// `process`: what chapter 01 runs (args, env, cwd, user).
pub fn process(spec: &Spec) -> Result<Process> {
    let Some(process) = spec.process() else {
        bail!("config.json has no process: nothing to run");
    };
    let mut run = Process::new(process.args().clone().unwrap_or_default());
    run.env = process.env().clone().unwrap_or_default();
    run.cwd = Some(process.cwd().clone());
    let user = process.user();
    run.user = Some(User {
        uid: user.uid(),
        gid: user.gid(),
    });
    Ok(run)
}

/// The layers the bundle asks for, in chapter order.
pub fn layers(bundle: &Bundle, id: &str) -> Result<Vec<Box<dyn Layer>>> {
    let spec = &bundle.spec;
    let Some(linux) = spec.linux() else {
        bail!("config.json has no linux section: this runtime runs Linux containers only");
    };
    let mut layers: Vec<Box<dyn Layer>> = vec![Box::new(namespaces(spec)?)];
    let group = cgroups_path(linux.cgroups_path().as_deref(), id);
    let version = ch05::detect_version()?;
    let limits = ch05::Limits::default();
    layers.push(Box::new(ch05::Cgroup::new(
        ch05::new_group_at(version, &group),
        limits,
    )));
    layers.push(Box::new(BundleRoot {
        rootfs: bundle.rootfs.clone(),
        read_only: spec
            .root()
            .as_ref()
            .is_some_and(|r| r.readonly() == Some(true)),
        mounts: spec.mounts().clone().unwrap_or_default(),
        hostname: spec.hostname().clone(),
    }));
    Ok(layers)
}

/// `linux.cgroupsPath`, below each hierarchy's root (runc's default: the id
/// under a parent group of ours).
fn cgroups_path(path: Option<&Path>, id: &str) -> PathBuf {
    match path {
        Some(path) => path.strip_prefix("/").unwrap_or(path).to_path_buf(),
        None => Path::new(ch05::PARENT_GROUP).join(id),
    }
}

/// `linux.namespaces`: new ones (chapters 01–03), or existing ones to
/// join by `path` (chapter 06: how a pod's containers share its pause's).
struct Namespaces {
    new: CloneFlags,
    join: Vec<(PathBuf, CloneFlags)>,
    files: Vec<(File, PathBuf, CloneFlags)>,
}

fn namespaces(spec: &Spec) -> Result<Namespaces> {
    let asked = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    let mut namespaces = Namespaces {
        new: CloneFlags::empty(),
        join: Vec::new(),
        files: Vec::new(),
    };
    if !asked.iter().any(|n| n.typ() == LinuxNamespaceType::Pid) {
        bail!("linux.namespaces: sharing the host's PID namespace is not supported (add {{\"type\": \"pid\"}})");
    }
    for namespace in asked {
        let flag = match namespace.typ() {
            LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
            LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
            LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
            LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
            LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
            LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
            other => bail!("linux.namespaces: type {other} is not supported yet"),
        };
        match namespace.path() {
            Some(path) => namespaces.join.push((path.clone(), flag)),
            // A new PID namespace is chapter 01's own step, at the fork.
            None if flag == CloneFlags::CLONE_NEWPID => {}
            None => namespaces.new |= flag,
        }
    }
    Ok(namespaces)
}

impl Layer for Namespaces {
    fn namespaces(&self) -> CloneFlags {
        self.new
    }

    /// Open the namespaces to join while their paths are in reach.
    fn prepare(&mut self) -> Result<()> {
        for (path, flag) in &self.join {
            let file = File::open(path)
                .with_context(|| format!("linux.namespaces: cannot open {}", path.display()))?;
            self.files.push((file, path.clone(), *flag));
        }
        Ok(())
    }

    /// A PID namespace is joined before the fork, by the parent (chapter 06).
    fn join_pid_namespace(&mut self) -> Result<bool> {
        let pid = CloneFlags::CLONE_NEWPID;
        let Some((file, path, _)) = self.files.iter().find(|(_, _, f)| *f == pid) else {
            return Ok(false);
        };
        join(file, path, pid)?;
        Ok(true)
    }

    fn setup_in_child(&mut self) -> Result<()> {
        let others = self
            .files
            .iter()
            .filter(|(_, _, f)| *f != CloneFlags::CLONE_NEWPID);
        for (file, path, flag) in others {
            join(file, path, *flag)?;
        }
        Ok(())
    }
}

fn join(file: &File, path: &Path, flag: CloneFlags) -> Result<()> {
    explain::step(
        &format!("setns({}, {flag:?})", path.display()),
        &format!("nsenter --{}={}", kind(flag), path.display()),
    );
    setns(file, flag).with_context(|| format!("setns {}", path.display()))
}

fn kind(flag: CloneFlags) -> &'static str {
    match flag {
        CloneFlags::CLONE_NEWPID => "pid",
        CloneFlags::CLONE_NEWNS => "mount",
        CloneFlags::CLONE_NEWUTS => "uts",
        CloneFlags::CLONE_NEWIPC => "ipc",
        CloneFlags::CLONE_NEWNET => "net",
        _ => "cgroup",
    }
}

/// `root`, `mounts` and `hostname`: chapter 04's root filesystem, with the
/// bundle's mounts instead of chapter 04's fixed ones.
struct BundleRoot {
    rootfs: PathBuf,
    read_only: bool,
    mounts: Vec<Mount>,
    hostname: Option<String>,
}

impl Layer for BundleRoot {
    fn namespaces(&self) -> CloneFlags {
        CloneFlags::CLONE_NEWNS
    }

    fn setup_in_child(&mut self) -> Result<()> {
        if let Some(name) = &self.hostname {
            ch02::set_hostname(name)?;
        }
        ch02::make_mounts_private()?;
        bind_to_itself(&self.rootfs)?;
        let is_cgroupfs = |entry: &&Mount| entry.typ().as_deref() == Some("cgroup");
        for entry in self.mounts.iter().filter(|e| !is_cgroupfs(e)) {
            mount_entry(&self.rootfs, entry)?;
        }
        ch04::pivot_into(&self.rootfs)?;
        // The container's own groups, as chapter 07 mounts them: from
        // inside its cgroup namespace, after the pivot.
        if self.mounts.iter().any(|e| is_cgroupfs(&e)) {
            ch07::paths::mount_cgroupfs(ch05::detect_version()?)?;
        }
        if self.read_only {
            ch04::remount_read_only("/")?;
        }
        Ok(())
    }
}

/// pivot_root needs the new root to be a mount point: the bundle's root
/// directory is made one by binding it onto itself.
fn bind_to_itself(rootfs: &Path) -> Result<()> {
    explain::step(
        &format!("mount({rootfs:?}, {rootfs:?}, MS_BIND|MS_REC)"),
        &format!("mount --rbind {0} {0}", rootfs.display()),
    );
    let flags = MsFlags::MS_BIND | MsFlags::MS_REC;
    mount(Some(rootfs), rootfs, None::<&str>, flags, None::<&str>)
        .with_context(|| format!("bind {} onto itself", rootfs.display()))
}

/// One entry of `mounts`, at its destination inside the root filesystem.
fn mount_entry(rootfs: &Path, entry: &Mount) -> Result<()> {
    let destination = entry.destination();
    let target = rootfs.join(destination.strip_prefix("/").unwrap_or(destination));
    let options = mount_options::parse(entry.options().as_deref().unwrap_or_default());
    let kind = entry.typ().clone().unwrap_or_else(|| "none".into());
    let source = entry
        .source()
        .clone()
        .unwrap_or_else(|| kind.clone().into());
    let source_is_file = options.is_bind() && source.is_file();
    if source_is_file {
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)?;
        }
        if !target.exists() {
            File::create(&target).with_context(|| format!("create {}", target.display()))?;
        }
    } else {
        fs::create_dir_all(&target).with_context(|| format!("create {}", target.display()))?;
    }
    let data = Some(options.data.as_str()).filter(|d| !d.is_empty());
    explain::step(
        &format!(
            "mount({source:?}, {destination:?}, {kind:?}, {:?})",
            options.flags
        ),
        &format!(
            "mount -t {kind} {} {}",
            source.display(),
            destination.display()
        ),
    );
    let fstype = Some(kind.as_str()).filter(|_| !options.is_bind());
    mount(Some(&source), &target, fstype, options.flags, data)
        .with_context(|| format!("mounts: {}", destination.display()))?;
    // A bind mount takes its flags (ro, nosuid, ...) only from a remount.
    let bind_flags = options.flags - MsFlags::MS_BIND - MsFlags::MS_REC;
    if options.is_bind() && !bind_flags.is_empty() {
        let flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | bind_flags;
        mount(None::<&str>, &target, None::<&str>, flags, None::<&str>)
            .with_context(|| format!("mounts: remount {}", destination.display()))?;
    }
    if !options.propagation.is_empty() {
        mount(
            None::<&str>,
            &target,
            None::<&str>,
            options.propagation,
            None::<&str>,
        )
        .with_context(|| format!("mounts: propagation of {}", destination.display()))?;
    }
    Ok(())
}

/// The container's cgroup, below each hierarchy's root, as [`layers`]
/// places it: `delete` removes it, `ps` and `kill --all` list it.
pub fn cgroup_path(spec: &Spec, id: &str) -> PathBuf {
    let path = spec.linux().as_ref().and_then(|l| l.cgroups_path().clone());
    cgroups_path(path.as_deref(), id)
}
