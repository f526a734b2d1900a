//! `process`, beyond what chapter 01 runs: what the command may do.
//! Chapter 07's capabilities, `no_new_privs` and seccomp filter, with the
//! config's sets; and what `ulimit`, `umask` and `choom` set in a shell.

use anyhow::{Context, Result};
use ch01::{explain, Layer};
use ch07::confine::{drop_bounding_set, install_seccomp_filter, set_no_new_privs};
use nix::unistd::Pid;
use oci_spec::runtime::Spec;
use pfs_oci::capabilities::set_capabilities;
use pfs_oci::settings::ProcessSettings;

/// The layer, its settings read and checked.
pub fn confine(spec: &Spec) -> Result<Confine> {
    Ok(Confine(pfs_oci::settings::process_settings(spec)?))
}

pub struct Confine(ProcessSettings);

// ANCHOR: confine
impl Layer for Confine {
    /// `oomScoreAdj`: the parent sets whom the OOM killer picks first.
    fn setup_from_parent(&mut self, child: Pid) -> Result<()> {
        let Some(score) = self.0.oom_score_adj else {
            return Ok(());
        };
        explain::oci("the OOM killer's choice", "process.oomScoreAdj");
        let path = format!("/proc/{child}/oom_score_adj");
        let shell = format!("choom -n {score} -p {child}");
        explain::step(&format!("write({path:?}, {score})"), &shell);
        std::fs::write(&path, score.to_string()).with_context(|| format!("write {path}"))
    }

    /// As root still: limits may be raised, the bounding set dropped.
    /// Without `no_new_privs` the filter needs CAP_SYS_ADMIN to be
    /// installed: then it comes now, before the user is set (as runc).
    fn setup_in_child(&mut self) -> Result<()> {
        let settings = &self.0;
        for (name, resource, soft, hard) in &settings.rlimits {
            pfs_oci::settings::set_rlimit(name, *resource, *soft, *hard)?;
        }
        if let Some(caps) = &settings.capabilities {
            drop_bounding_set(&caps.bounding)?;
        }
        if settings.keep_caps {
            // A change from uid 0 empties permitted unless asked not to.
            explain::step("prctl(PR_SET_KEEPCAPS, 1)", "setpriv --keep-caps");
            nix::sys::prctl::set_keepcaps(true).context("prctl(PR_SET_KEEPCAPS)")?;
        }
        match &settings.seccomp {
            Some(profile) if !settings.no_new_privs => install_seccomp_filter(profile),
            _ => Ok(()),
        }
    }

    /// After the user is set: umask, LSM label, capabilities, then
    /// `no_new_privs` and, last of all, the filter.
    fn just_before_exec(&mut self) -> Result<()> {
        let settings = &self.0;
        if let Some(mask) = settings.umask {
            explain::step(&format!("umask({mask:#o})"), "runc: process.user.umask");
            nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
        }
        if let Some((file, label)) = &settings.lsm_label {
            let call = format!("write({file:?}, {label:?})");
            explain::step(&call, "runc: process.apparmorProfile");
            std::fs::write(file, label).with_context(|| call.clone())?;
        }
        if let Some(caps) = &settings.capabilities {
            set_capabilities(caps)?;
        }
        if !settings.no_new_privs {
            return Ok(());
        }
        set_no_new_privs()?;
        settings
            .seccomp
            .as_ref()
            .map_or(Ok(()), install_seccomp_filter)
    }
}
// ANCHOR_END: confine
