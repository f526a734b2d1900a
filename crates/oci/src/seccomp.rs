//! `linux.seccomp` read into chapter 07's seccomp [`Profile`]: the OCI
//! format is Docker's profile format with the engine's choices made
//! (`includes`/`excludes` already resolved), so the conversion is one to one.

use anyhow::{anyhow, bail, Result};
use std::str::FromStr;

use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp};
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg};
use pfs_security::{Profile, Rule};

/// The errno of `SCMP_ACT_ERRNO` when the config gives none (runc's).
const EPERM: u32 = nix::libc::EPERM as u32;

/// Convert `linux.seccomp`. The filter is built for this machine's
/// architecture (calls made under another one meet libseccomp's default
/// for a foreign architecture: the process is killed), so the config must
/// list it, or list none.
pub fn profile(seccomp: &LinuxSeccomp) -> Result<Profile> {
    check_architectures(seccomp)?;
    if seccomp.flags().as_ref().is_some_and(|f| !f.is_empty()) {
        bail!("linux.seccomp.flags is not supported by ch08 (remove it)");
    }
    let default_errno = seccomp.default_errno_ret().unwrap_or(EPERM);
    let default = action(seccomp.default_action(), default_errno)?;
    let mut rules = Vec::new();
    for syscall in seccomp.syscalls().iter().flatten() {
        let args = syscall.args().iter().flatten();
        rules.push(Rule {
            names: syscall.names().clone(),
            action: action(syscall.action(), syscall.errno_ret().unwrap_or(EPERM))?,
            args: args.map(arg_compare).collect::<Result<_>>()?,
        });
    }
    Ok(Profile { default, rules })
}

fn check_architectures(seccomp: &LinuxSeccomp) -> Result<()> {
    let listed = seccomp.architectures().clone().unwrap_or_default();
    let native = ScmpArch::native();
    let is_native = |arch: &String| ScmpArch::from_str(arch).is_ok_and(|a| a == native);
    let names: Vec<String> = listed.iter().map(|a| a.to_string()).collect();
    if !names.is_empty() && !names.iter().any(is_native) {
        bail!("linux.seccomp.architectures lists {names:?}, not this machine's ({native:?})");
    }
    Ok(())
}

/// `SCMP_ACT_ERRNO` with its errno, or another action by its name.
fn action(action: LinuxSeccompAction, errno: u32) -> Result<ScmpAction> {
    if action == LinuxSeccompAction::ScmpActNotify {
        bail!("linux.seccomp: SCMP_ACT_NOTIFY needs a listener, which ch08 does not support");
    }
    let name = action.to_string();
    ScmpAction::from_str(&name, Some(errno as i32))
        .map_err(|_| anyhow!("linux.seccomp: unknown action {name}"))
}

/// `{"index": 1, "value": V, "valueTwo": W, "op": "SCMP_CMP_..."}`; for
/// `SCMP_CMP_MASKED_EQ`, V is the mask and W the value (as runc reads it).
fn arg_compare(arg: &LinuxSeccompArg) -> Result<ScmpArgCompare> {
    let name = arg.op().to_string();
    let op = ScmpCompareOp::from_str(&name)
        .map_err(|_| anyhow!("linux.seccomp: unknown comparison {name}"))?;
    let index = arg.index() as u32;
    Ok(match op {
        ScmpCompareOp::MaskedEqual(_) => ScmpArgCompare::new(
            index,
            ScmpCompareOp::MaskedEqual(arg.value()),
            arg.value_two().unwrap_or(0),
        ),
        op => ScmpArgCompare::new(index, op, arg.value()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str) -> Result<Profile> {
        profile(&serde_json::from_str(json).unwrap())
    }

    #[test]
    fn actions_errnos_and_arguments_are_converted() {
        let profile = read(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64", "SCMP_ARCH_X86"],
                "syscalls": [
                  {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                  {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                  {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                   "args": [{"index": 0, "value": 255, "valueTwo": 8, "op": "SCMP_CMP_MASKED_EQ"}]}
                ]}"#,
        )
        .unwrap();
        assert_eq!(profile.default, ScmpAction::Errno(38));
        assert_eq!(profile.rules[0].names, ["read", "write"]);
        assert_eq!(profile.rules[1].action, ScmpAction::Errno(13));
        let expected = ScmpArgCompare::new(0, ScmpCompareOp::MaskedEqual(255), 8);
        assert_eq!(profile.rules[2].args, [expected]);
    }

    #[test]
    fn errno_defaults_to_eperm() {
        let profile = read(r#"{"defaultAction": "SCMP_ACT_ERRNO"}"#).unwrap();
        assert_eq!(profile.default, ScmpAction::Errno(nix::libc::EPERM));
    }

    #[test]
    fn a_foreign_architecture_alone_is_refused() {
        let err =
            read(r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_S390X"]}"#)
                .unwrap_err();
        assert!(err.to_string().contains("not this machine's"), "{err}");
    }

    #[test]
    fn notify_is_refused() {
        assert!(read(r#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#).is_err());
    }
}
