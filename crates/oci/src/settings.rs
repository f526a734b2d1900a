//! `config.json` read into what chapter 08's layers take, and checked:
//! every error here comes before anything is created.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use nix::libc;
use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use oci_spec::runtime::{Linux, LinuxNamespaceType, Mount, Spec};
use pfs_cli::{Process, User};
use pfs_security::userns::IdRange;
use pfs_security::Profile;

use crate::capabilities::CapSets;
use crate::{mount_options, tables};

/// `process`: what chapter 01 runs (args, env, cwd, user and its groups).
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
    // The group is in the list already (containerd repeats it).
    for gid in user.additional_gids().iter().flatten() {
        if *gid != user.gid() && !run.groups.contains(gid) {
            run.groups.push(*gid);
        }
    }
    Ok(run)
}

/// `linux.cgroupsPath`, below each hierarchy's root (without one: the id
/// under chapter 05's parent group): `create` makes the group there,
/// `delete` removes it, `ps` and `kill --all` list it.
pub fn cgroup_path(spec: &Spec, id: &str) -> PathBuf {
    let path = spec.linux().as_ref().and_then(|l| l.cgroups_path().clone());
    match path {
        Some(path) => path.strip_prefix("/").unwrap_or(&path).to_path_buf(),
        None => std::path::Path::new(ch05::PARENT_GROUP).join(id),
    }
}

/// `linux.namespaces`: the flags of the new ones, and the paths of those
/// to join. A new PID namespace is left out: chapter 01 makes it at the fork.
pub fn namespaces(linux: &Linux) -> Result<(CloneFlags, Vec<(PathBuf, CloneFlags)>)> {
    let asked = linux.namespaces().clone().unwrap_or_default();
    if !asked.iter().any(|n| n.typ() == LinuxNamespaceType::Pid) {
        bail!("linux.namespaces: sharing the host's PID namespace is not supported (add {{\"type\": \"pid\"}})");
    }
    let (mut new, mut join) = (CloneFlags::empty(), Vec::new());
    for namespace in asked {
        let flag = match namespace.typ() {
            LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
            LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
            LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
            LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
            LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
            LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
            LinuxNamespaceType::User if namespace.path().is_none() => CloneFlags::CLONE_NEWUSER,
            other => bail!("linux.namespaces: joining a {other} namespace is not supported"),
        };
        match namespace.path() {
            Some(path) => join.push((path.clone(), flag)),
            None if flag == CloneFlags::CLONE_NEWPID => {}
            None => new |= flag,
        }
    }
    let maps = linux
        .uid_mappings()
        .iter()
        .chain(linux.gid_mappings())
        .flatten();
    if maps.count() > 0 && !new.contains(CloneFlags::CLONE_NEWUSER) {
        bail!("linux.uidMappings: given without a new user namespace (add {{\"type\": \"user\"}})");
    }
    Ok((new, join))
}

/// `linux.uidMappings` and `gidMappings`, as chapter 07 writes them.
pub fn id_maps(linux: &Linux) -> Result<(IdRange, IdRange)> {
    let map =
        |field, maps: &Option<Vec<_>>| tables::id_range(field, maps.as_deref().unwrap_or(&[]));
    let uids = map("uidMappings", linux.uid_mappings())?;
    Ok((uids, map("gidMappings", linux.gid_mappings())?))
}

/// The name `nsenter` gives a namespace flag (for `--explain`).
pub fn namespace_name(flag: CloneFlags) -> &'static str {
    match flag {
        CloneFlags::CLONE_NEWPID => "pid",
        CloneFlags::CLONE_NEWNS => "mount",
        CloneFlags::CLONE_NEWUTS => "uts",
        CloneFlags::CLONE_NEWIPC => "ipc",
        CloneFlags::CLONE_NEWNET => "net",
        _ => "cgroup",
    }
}

/// `linux.rootfsPropagation` (runc's default when absent: `rslave`).
pub fn propagation(linux: &Linux) -> Result<MsFlags> {
    let option = linux.rootfs_propagation().as_deref().unwrap_or("rslave");
    let parsed = mount_options::parse(&[option.to_string()]);
    if parsed.propagation.is_empty() {
        bail!("linux.rootfsPropagation: {option:?} is not a propagation (rprivate, rslave, ...)");
    }
    if parsed.propagation.contains(MsFlags::MS_SHARED) {
        // pivot_root refuses a shared root; runc makes its parent private.
        bail!("linux.rootfsPropagation: {option} is not supported by ch08 (use rslave)");
    }
    Ok(parsed.propagation)
}

/// `linux.sysctl`, sorted, each checked to be of the container's own
/// namespaces.
pub fn sysctls(linux: &Linux) -> Result<Vec<(String, String)>> {
    let namespaces = linux.namespaces().clone().unwrap_or_default();
    let has = |kind| namespaces.iter().any(|n| n.typ() == kind);
    let (ipc, net, uts) = (
        has(LinuxNamespaceType::Ipc),
        has(LinuxNamespaceType::Network),
        has(LinuxNamespaceType::Uts),
    );
    let mut sysctls: Vec<_> = linux
        .sysctl()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    sysctls.sort();
    for (key, _) in &sysctls {
        tables::check_sysctl(key, ipc, net, uts)?;
    }
    Ok(sysctls)
}

/// One entry of `mounts`, sorted out for mount(2).
pub struct MountEntry {
    pub destination: PathBuf,
    pub source: PathBuf,
    /// The filesystem's type; none for a bind mount.
    pub fstype: Option<String>,
    pub options: mount_options::MountOptions,
    /// A bind mount of a file: its target is a file too.
    pub is_file: bool,
}

/// `mounts`, each checked, and whether a `cgroup` one asks for the
/// container's own groups (chapter 07 mounts those its own way).
pub fn mounts(spec: &Spec) -> Result<(Vec<MountEntry>, bool)> {
    let all = spec.mounts().clone().unwrap_or_default();
    let is_cgroupfs = |entry: &Mount| entry.typ().as_deref() == Some("cgroup");
    let entries = all.iter().filter(|e| !is_cgroupfs(e)).map(mount_entry);
    Ok((entries.collect::<Result<_>>()?, all.iter().any(is_cgroupfs)))
}

fn mount_entry(entry: &Mount) -> Result<MountEntry> {
    let destination = entry.destination().clone();
    if !destination.is_absolute() {
        bail!(
            "mounts: destination {} is not absolute",
            destination.display()
        );
    }
    let options = mount_options::parse(entry.options().as_deref().unwrap_or_default());
    let kind = entry.typ().clone().unwrap_or_else(|| "none".into());
    let source = entry
        .source()
        .clone()
        .unwrap_or_else(|| kind.clone().into());
    if options.is_bind() && !source.exists() {
        bail!(
            "mounts: the source of {} does not exist: {}",
            destination.display(),
            source.display()
        );
    }
    let is_file = options.is_bind() && source.is_file();
    let fstype = Some(kind).filter(|_| !options.is_bind());
    Ok(MountEntry {
        destination,
        source,
        fstype,
        options,
        is_file,
    })
}

/// The rest of `process`, and `linux.seccomp`: what the process layer sets.
pub struct ProcessSettings {
    /// (name, resource, soft, hard) for setrlimit(2).
    pub rlimits: Vec<(String, libc::__rlimit_resource_t, u64, u64)>,
    pub oom_score_adj: Option<i32>,
    pub umask: Option<u32>,
    pub capabilities: Option<CapSets>,
    /// A user other than root: its capabilities must survive setuid.
    pub keep_caps: bool,
    pub no_new_privs: bool,
    pub seccomp: Option<Profile>,
    /// The LSM's exec file and what to write there, for the command's label.
    pub lsm_label: Option<(&'static str, String)>,
}

pub fn process_settings(spec: &Spec) -> Result<ProcessSettings> {
    let process = spec
        .process()
        .as_ref()
        .context("config.json has no process")?;
    let rlimits = process.rlimits().iter().flatten().map(|r| {
        let name = serde_json::to_value(r.typ())?
            .as_str()
            .unwrap_or_default()
            .to_string();
        let resource = tables::rlimit_resource(&name)?;
        Ok((name, resource, r.soft(), r.hard()))
    });
    let capabilities = process.capabilities().as_ref().map(|c| {
        anyhow::Ok(CapSets {
            bounding: tables::capability_set(c.bounding())?,
            effective: tables::capability_set(c.effective())?,
            permitted: tables::capability_set(c.permitted())?,
            inheritable: tables::capability_set(c.inheritable())?,
            ambient: tables::capability_set(c.ambient())?,
        })
    });
    let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    Ok(ProcessSettings {
        rlimits: rlimits.collect::<Result<_>>()?,
        oom_score_adj: process.oom_score_adj(),
        umask: process.user().umask(),
        capabilities: capabilities.transpose()?,
        keep_caps: process.user().uid() != 0 && process.capabilities().is_some(),
        no_new_privs: process.no_new_privileges() == Some(true),
        seccomp: seccomp.map(crate::seccomp::profile).transpose()?,
        lsm_label: lsm_label(process.apparmor_profile(), process.selinux_label())?,
    })
}

/// `apparmorProfile` or `selinuxLabel`: the file to write it to at exec
/// (runc's way); refused on a host without that LSM, where it could not
/// confine anything.
fn lsm_label(
    apparmor: &Option<String>,
    selinux: &Option<String>,
) -> Result<Option<(&'static str, String)>> {
    let enabled = |file: &str| std::fs::read_to_string(file).is_ok_and(|t| t.trim() != "N");
    let given = |field: &Option<String>| field.clone().filter(|v| !v.is_empty());
    match (given(apparmor), given(selinux)) {
        (Some(_), Some(_)) => bail!("process: apparmorProfile and selinuxLabel both set: keep one"),
        (Some(p), None) if enabled("/sys/module/apparmor/parameters/enabled") => {
            Ok(Some(("/proc/self/attr/apparmor/exec", format!("exec {p}"))))
        }
        (None, Some(l)) if enabled("/sys/fs/selinux/enforce") => {
            Ok(Some(("/proc/self/attr/exec", l)))
        }
        (Some(_), None) => {
            bail!("process.apparmorProfile: AppArmor is not enabled on this host (remove it)")
        }
        (None, Some(_)) => {
            bail!("process.selinuxLabel: SELinux is not enabled on this host (remove it)")
        }
        (None, None) => Ok(None),
    }
}

// ANCHOR: set_rlimit
/// `process.rlimits`: what `ulimit` sets in a shell, set for the command.
pub fn set_rlimit(
    name: &str,
    resource: libc::__rlimit_resource_t,
    soft: u64,
    hard: u64,
) -> Result<()> {
    ch01::explain::oci("a resource limit", "process.rlimits");
    let call = format!("setrlimit({name}, {{{soft}, {hard}}})");
    ch01::explain::step(
        &call,
        &format!("prlimit --{}={soft}:{hard}", name[7..].to_lowercase()),
    );
    let limit = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit only reads the struct we pass.
    if unsafe { libc::setrlimit(resource, &limit) } != 0 {
        return Err(std::io::Error::last_os_error()).context(call);
    }
    Ok(())
}
// ANCHOR_END: set_rlimit
#[cfg(test)]
mod tests {
    use super::*;

    fn linux(json: &str) -> Linux {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn additional_groups_are_listed_once_without_the_group() {
        let spec: Spec = serde_json::from_str(
            r#"{"ociVersion": "1.0.2", "root": {"path": "rootfs"}, "process": {"cwd": "/",
                "args": ["sh"], "user": {"uid": 1, "gid": 5, "additionalGids": [5, 10, 10, 20]}}}"#,
        )
        .unwrap();
        assert_eq!(process(&spec).unwrap().groups, [10, 20]);
    }

    #[test]
    fn new_and_joined_namespaces_are_sorted_out() {
        let (new, join) = namespaces(&linux(
            r#"{"namespaces": [{"type": "pid"}, {"type": "mount"},
                {"type": "network", "path": "/run/netns/x"}]}"#,
        ))
        .unwrap();
        assert_eq!(new, CloneFlags::CLONE_NEWNS);
        assert_eq!(
            join,
            [(PathBuf::from("/run/netns/x"), CloneFlags::CLONE_NEWNET)]
        );
    }

    #[test]
    fn the_hosts_pid_namespace_and_maps_without_a_user_namespace_are_refused() {
        let err = namespaces(&linux(r#"{"namespaces": [{"type": "mount"}]}"#)).unwrap_err();
        assert!(err.to_string().contains("PID namespace"), "{err}");
        let maps = r#"{"namespaces": [{"type": "pid"}],
            "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}"#;
        let err = namespaces(&linux(maps)).unwrap_err();
        assert!(
            err.to_string().contains("without a new user namespace"),
            "{err}"
        );
    }

    #[test]
    fn root_propagation_is_rslave_unless_said_and_never_shared() {
        let slave = MsFlags::MS_SLAVE | MsFlags::MS_REC;
        assert_eq!(propagation(&linux("{}")).unwrap(), slave);
        let private = linux(r#"{"rootfsPropagation": "private"}"#);
        assert_eq!(propagation(&private).unwrap(), MsFlags::MS_PRIVATE);
        assert!(propagation(&linux(r#"{"rootfsPropagation": "rshared"}"#)).is_err());
        assert!(propagation(&linux(r#"{"rootfsPropagation": "bind"}"#)).is_err());
    }

    #[test]
    fn a_sysctl_of_the_host_is_refused() {
        let ok = r#"{"namespaces": [{"type": "network"}], "sysctl": {"net.ipv4.ip_forward": "1"}}"#;
        assert_eq!(sysctls(&linux(ok)).unwrap().len(), 1);
        let host = r#"{"namespaces": [{"type": "network"}], "sysctl": {"kernel.panic": "1"}}"#;
        assert!(sysctls(&linux(host)).is_err());
    }
}
