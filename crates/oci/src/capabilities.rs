//! `process.capabilities`: its five sets, set as the spec gives them (chapter
//! 07's `cut_capabilities` keeps one set; an OCI config names each).

use anyhow::{Context, Result};
use caps::{CapSet, CapsHashSet};
use ch01::explain;
use pfs_security::capability_names as names;

/// The five capability sets of `process.capabilities`.
pub struct CapSets {
    pub bounding: CapsHashSet,
    pub effective: CapsHashSet,
    pub permitted: CapsHashSet,
    pub inheritable: CapsHashSet,
    pub ambient: CapsHashSet,
}

/// `process.capabilities`, set by set: effective is emptied first, as it
/// must stay within permitted. Ambient last: a capability is ambient (kept
/// through `execve` by a user other than root) only if it is both
/// permitted and inheritable.
pub fn set_capabilities(caps: &CapSets) -> Result<()> {
    let (eff, inh) = (names(&caps.effective), names(&caps.inheritable));
    let shell = format!(
        "setpriv --inh-caps {inh} --ambient-caps {}",
        names(&caps.ambient)
    );
    explain::step(
        &format!("capset(eff={{{eff}}}, inh={{{inh}}}, ...)"),
        &shell,
    );
    caps::clear(None, CapSet::Effective).context("clear the effective set")?;
    caps::set(None, CapSet::Permitted, &caps.permitted).context("capset permitted")?;
    caps::set(None, CapSet::Inheritable, &caps.inheritable).context("capset inheritable")?;
    caps::set(None, CapSet::Effective, &caps.effective).context("capset effective")?;
    caps::clear(None, CapSet::Ambient).context("clear the ambient set")?;
    let raise = |cap: &&caps::Capability| caps::raise(None, CapSet::Ambient, **cap).is_err();
    let refused: CapsHashSet = caps.ambient.iter().filter(raise).copied().collect();
    // For root they change nothing (its capabilities after `execve` come
    // from the bounding set): say so only for another user, as a warning.
    if !refused.is_empty() && !nix::unistd::geteuid().is_root() {
        // runc warns and goes on.
        let program = ch01::program_name();
        eprintln!(
            "{program}: warning: ambient capabilities not inheritable: {}",
            names(&refused)
        );
    }
    Ok(())
}
