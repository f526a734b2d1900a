//! `process`: who the command runs as and what it may do: chapter 01's
//! process, chapter 07's capabilities, `no_new_privs` and seccomp filter,
//! and the settings a shell's `ulimit` and `umask` would make.

use anyhow::{bail, Context, Result};
use caps::{CapSet, CapsHashSet};
use ch01::{explain, Layer, Process, User};
use nix::libc;
use nix::sys::stat::{umask, Mode};
use nix::unistd::Pid;
use oci_spec::runtime::Spec;
use pfs_oci::tables;
use pfs_security::Profile;

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
    run.groups = user.additional_gids().clone().unwrap_or_default();
    Ok(run)
}

/// The five capability sets of `process.capabilities`.
struct Capabilities {
    bounding: CapsHashSet,
    effective: CapsHashSet,
    permitted: CapsHashSet,
    inheritable: CapsHashSet,
    ambient: CapsHashSet,
}

/// The layer for the rest of `process`, and `linux.seccomp`.
pub struct Confine {
    rlimits: Vec<(libc::__rlimit_resource_t, u64, u64)>,
    oom_score_adj: Option<i32>,
    umask: Option<u32>,
    capabilities: Option<Capabilities>,
    keep_caps: bool,
    no_new_privs: bool,
    seccomp: Option<Profile>,
    lsm_exec: Option<(&'static str, String)>,
}

/// Read and check it all before anything is created.
pub fn confine(spec: &Spec) -> Result<Confine> {
    let process = spec
        .process()
        .as_ref()
        .context("config.json has no process")?;
    let rlimits = process.rlimits().iter().flatten();
    let rlimits = rlimits.map(|r| {
        let name = serde_json::to_value(r.typ())?;
        let resource = tables::rlimit_resource(name.as_str().unwrap_or_default())?;
        Ok((resource, r.soft(), r.hard()))
    });
    let capabilities = process.capabilities().as_ref().map(|c| {
        anyhow::Ok(Capabilities {
            bounding: tables::capability_set(c.bounding())?,
            effective: tables::capability_set(c.effective())?,
            permitted: tables::capability_set(c.permitted())?,
            inheritable: tables::capability_set(c.inheritable())?,
            ambient: tables::capability_set(c.ambient())?,
        })
    });
    let linux = spec.linux().as_ref();
    let seccomp = linux.and_then(|l| l.seccomp().as_ref());
    Ok(Confine {
        rlimits: rlimits.collect::<Result<_>>()?,
        oom_score_adj: process.oom_score_adj(),
        umask: process.user().umask(),
        capabilities: capabilities.transpose()?,
        keep_caps: process.user().uid() != 0,
        no_new_privs: process.no_new_privileges() == Some(true),
        seccomp: seccomp.map(pfs_oci::seccomp::profile).transpose()?,
        lsm_exec: lsm_exec(process.apparmor_profile(), process.selinux_label())?,
    })
}

/// `apparmorProfile` and `selinuxLabel`: the label the kernel puts on the
/// command at `execve`, written to a file of the LSM's; refused on a
/// host without that LSM, where it could not confine anything.
fn lsm_exec(
    apparmor: &Option<String>,
    selinux: &Option<String>,
) -> Result<Option<(&'static str, String)>> {
    let enabled = |file: &str| std::fs::read_to_string(file).is_ok_and(|t| t.trim() != "N");
    match (
        apparmor.as_deref().filter(|p| !p.is_empty()),
        selinux.as_deref().filter(|l| !l.is_empty()),
    ) {
        (Some(_), Some(_)) => {
            bail!("process: apparmorProfile and selinuxLabel both set: choose one")
        }
        (Some(p), None) if enabled("/sys/module/apparmor/parameters/enabled") => {
            Ok(Some(("/proc/self/attr/apparmor/exec", format!("exec {p}"))))
        }
        (None, Some(l)) if enabled("/sys/fs/selinux/enforce") => {
            Ok(Some(("/proc/self/attr/exec", l.into())))
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

impl Layer for Confine {
    /// `oomScoreAdj`: the parent sets whom the OOM killer picks first.
    fn setup_from_parent(&mut self, child: Pid) -> Result<()> {
        let Some(score) = self.oom_score_adj else {
            return Ok(());
        };
        explain::oci("the OOM killer's preference", "process.oomScoreAdj");
        let path = format!("/proc/{child}/oom_score_adj");
        explain::step(
            &format!("write({path:?}, \"{score}\")"),
            &format!("choom -n {score} -p {child}"),
        );
        std::fs::write(&path, score.to_string()).with_context(|| format!("write {path}"))
    }

    /// As root still: limits may be raised, the bounding set dropped.
    fn setup_in_child(&mut self) -> Result<()> {
        for (resource, soft, hard) in &self.rlimits {
            set_rlimit(*resource, *soft, *hard)?;
        }
        if let Some(caps) = &self.capabilities {
            ch07::confine::drop_bounding_set(&caps.bounding)?;
            if self.keep_caps {
                keep_capabilities_through_setuid()?;
            }
        }
        Ok(())
    }

    /// After the user is set: umask, label, capabilities, `no_new_privs`,
    /// the filter. Without `no_new_privs`, the filter needs CAP_SYS_ADMIN
    /// to be installed: then it comes before the capabilities go (runc's order).
    fn just_before_exec(&mut self) -> Result<()> {
        if let Some(mask) = self.umask {
            explain::oci("the file mode creation mask", "process.user.umask");
            explain::step(&format!("umask({mask:#o})"), &format!("umask {mask:04o}"));
            umask(Mode::from_bits_truncate(mask));
        }
        if let Some((file, label)) = &self.lsm_exec {
            explain::step(
                &format!("write({file:?}, {label:?})"),
                "runc: process.apparmorProfile",
            );
            std::fs::write(file, label).with_context(|| format!("write {file}"))?;
        }
        let seccomp = |profile: &Option<Profile>| {
            profile
                .as_ref()
                .map_or(Ok(()), ch07::confine::install_seccomp_filter)
        };
        if !self.no_new_privs {
            seccomp(&self.seccomp)?;
        }
        if let Some(caps) = &self.capabilities {
            set_capabilities(caps)?;
        }
        if self.no_new_privs {
            ch07::confine::set_no_new_privs()?;
            seccomp(&self.seccomp)?;
        }
        Ok(())
    }
}

// ANCHOR: set_rlimit
/// `process.rlimits`: what `ulimit` sets in a shell, set for the command.
fn set_rlimit(resource: libc::__rlimit_resource_t, soft: u64, hard: u64) -> Result<()> {
    explain::oci("a resource limit", "process.rlimits");
    explain::step(
        &format!("setrlimit({resource}, {soft}, {hard})"),
        &format!("prlimit --pid $$ ({resource}={soft}:{hard})"),
    );
    let limit = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit reads the struct we pass, nothing else.
    if unsafe { libc::setrlimit(resource, &limit) } != 0 {
        return Err(std::io::Error::last_os_error()).context("setrlimit");
    }
    Ok(())
}
// ANCHOR_END: set_rlimit

/// A change from uid 0 to another empties the permitted set, unless we
/// ask to keep it: the config's sets are then cut from what is kept.
fn keep_capabilities_through_setuid() -> Result<()> {
    explain::step(
        "prctl(PR_SET_KEEPCAPS, 1)",
        "setpriv --keep-caps (runc: process.user)",
    );
    nix::sys::prctl::set_keepcaps(true).context("prctl(PR_SET_KEEPCAPS)")
}

// ANCHOR: set_capabilities
/// `process.capabilities`, set by set: effective is cleared first, as it
/// must stay within permitted; ambient last, as it needs a capability to
/// be both permitted and inheritable.
fn set_capabilities(caps: &Capabilities) -> Result<()> {
    let names = pfs_security::capability_names;
    explain::step(
        &format!(
            "capset(effective = {{{}}}, permitted = {{{}}}, inheritable = {{{}}})",
            names(&caps.effective),
            names(&caps.permitted),
            names(&caps.inheritable)
        ),
        &format!(
            "setpriv --inh-caps {} --caps {}",
            names(&caps.inheritable),
            names(&caps.effective)
        ),
    );
    caps::clear(None, CapSet::Effective).context("clear the effective set")?;
    caps::set(None, CapSet::Permitted, &caps.permitted).context("set the permitted set")?;
    caps::set(None, CapSet::Inheritable, &caps.inheritable).context("set the inheritable set")?;
    caps::set(None, CapSet::Effective, &caps.effective).context("set the effective set")?;
    explain::step(
        &format!(
            "prctl(PR_CAP_AMBIENT_RAISE) for {{{}}}",
            names(&caps.ambient)
        ),
        &format!("setpriv --ambient-caps {}", names(&caps.ambient)),
    );
    caps::clear(None, CapSet::Ambient).context("clear the ambient set")?;
    // One not inheritable cannot be ambient: runc warns and goes on.
    let refused: CapsHashSet = caps
        .ambient
        .iter()
        .copied()
        .filter(|cap| caps::raise(None, CapSet::Ambient, *cap).is_err())
        .collect();
    if !refused.is_empty() {
        eprintln!(
            "{}: warning: process.capabilities.ambient: not inheritable, not raised: {}",
            ch01::program_name(),
            names(&refused)
        );
    }
    Ok(())
}
// ANCHOR_END: set_capabilities
