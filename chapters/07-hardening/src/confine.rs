//! The process's doors: capabilities, `no_new_privs`, seccomp.
//!
//! Root in a container is root on the host, less what these steps take
//! away: capabilities the command may never hold again, the setuid
//! programs that could give them back, and the syscalls it may make.

use anyhow::{Context, Result};
use caps::{CapSet, Capability, CapsHashSet};
use ch01::{explain, Layer};
use libseccomp::{ScmpAction, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};
use pfs_security::{capability_names as names, Profile, Rule, Seccomp};

/// The options (Docker's names), parsed by clap.
pub use pfs_security::ConfineArgs;

// ANCHOR: default_capabilities
/// The 14 capabilities `docker run` leaves a container (CapEff a80425fb):
/// enough to act as root on its own files, nothing over the machine.
const DEFAULT_CAPABILITIES: [Capability; 14] = [
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_FOWNER,
    Capability::CAP_FSETID,
    Capability::CAP_KILL,
    Capability::CAP_SETGID,
    Capability::CAP_SETUID,
    Capability::CAP_SETPCAP,
    Capability::CAP_NET_BIND_SERVICE,
    Capability::CAP_NET_RAW,
    Capability::CAP_SYS_CHROOT,
    Capability::CAP_MKNOD,
    Capability::CAP_AUDIT_WRITE,
    Capability::CAP_SETFCAP,
];
// ANCHOR_END: default_capabilities

// ANCHOR: blocked
/// The syscalls the default profile refuses with EPERM: those Docker's
/// default profile leaves out, as they reach past the container (mounts,
/// namespaces, kernel keys and modules, the clock, tracing, rebooting).
#[rustfmt::skip]
const BLOCKED: &[&str] = &[
    "mount", "umount2", "pivot_root", "fsopen", "fsmount", "move_mount", "open_tree",
    "unshare", "setns",
    "keyctl", "add_key", "request_key",
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
    "bpf", "perf_event_open", "lookup_dcookie", "syslog", "iopl", "ioperm",
    "open_by_handle_at", "name_to_handle_at",
    "reboot", "swapon", "swapoff", "acct", "quotactl", "vhangup", "nfsservctl",
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
    "ptrace", "process_vm_readv", "process_vm_writev", "userfaultfd",
];
// ANCHOR_END: blocked

const EPERM: i32 = nix::libc::EPERM;

// ANCHOR: default_profile
/// A deny-list: every syscall allowed but [`BLOCKED`]. And `clone` too
/// when it asks for a user namespace, the one kind a process without
/// capabilities may make, where it would hold them all again. `clone3`
/// passes its flags in memory, which a filter cannot read: it gets ENOSYS,
/// so the C library falls back to `clone` (what Docker does).
fn default_profile() -> Profile {
    let mut profile = Profile::deny(BLOCKED, EPERM);
    let new_user = nix::libc::CLONE_NEWUSER as u64;
    let flags = ScmpArgCompare::new(0, ScmpCompareOp::MaskedEqual(new_user), new_user);
    profile.rules.push(Rule {
        names: vec!["clone".into()],
        action: ScmpAction::Errno(EPERM),
        args: vec![flags],
    });
    profile.rules.push(Rule {
        names: vec!["clone3".into()],
        action: ScmpAction::Errno(nix::libc::ENOSYS),
        args: Vec::new(),
    });
    profile
}
// ANCHOR_END: default_profile

/// This chapter's process layer, after checking the options: an unknown
/// capability or a bad profile stops us before anything is created.
pub fn layers(args: &ConfineArgs) -> Result<Vec<Box<dyn Layer>>> {
    let keep = pfs_security::capabilities(&DEFAULT_CAPABILITIES, &args.cap_add, &args.cap_drop)?;
    let seccomp = match pfs_security::seccomp(&args.security_opt, &keep)? {
        Seccomp::Default => Some(default_profile()),
        Seccomp::Unconfined => None,
        Seccomp::Profile(profile) => Some(profile),
    };
    Ok(vec![Box::new(Confine { keep, seccomp })])
}

/// The capabilities to keep, and the seccomp profile (none: unconfined).
struct Confine {
    keep: CapsHashSet,
    seccomp: Option<Profile>,
}

impl Layer for Confine {
    /// The bounding set first, while we still hold CAP_SETPCAP: a setuid
    /// to a user (`-u`) comes next, and takes it away.
    fn setup_in_child(&mut self) -> Result<()> {
        drop_bounding_set(&self.keep)
    }

    /// After the user is set, in this order: the capabilities the command
    /// starts with, `no_new_privs`, and last, the seccomp filter.
    fn just_before_exec(&mut self) -> Result<()> {
        cut_capabilities(&self.keep)?;
        set_no_new_privs()?;
        match &self.seccomp {
            Some(profile) => install_seccomp_filter(profile),
            None => Ok(()),
        }
    }
}

// ANCHOR: drop_bounding_set
/// The bounding set is the ceiling of every capability this process and
/// its descendants may ever hold, even root after `execve`, even a setuid
/// program. A capability dropped from it is gone for good.
pub fn drop_bounding_set(keep: &CapsHashSet) -> Result<()> {
    let bounding = caps::read(None, CapSet::Bounding).context("read the bounding set")?;
    let dropped: CapsHashSet = bounding.difference(keep).copied().collect();
    explain::oci(
        "capabilities (docker: --cap-add, --cap-drop)",
        "process.capabilities",
    );
    explain::step(
        &format!("prctl(PR_CAPBSET_DROP, CAP) for {} others", dropped.len()),
        &format!("setpriv --bounding-set -all,+{}", names(keep)),
    );
    for cap in dropped {
        caps::drop(None, CapSet::Bounding, cap).with_context(|| format!("drop {cap}"))?;
    }
    Ok(())
}
// ANCHOR_END: drop_bounding_set

// ANCHOR: cut_capabilities
/// The sets the command starts with: effective and permitted keep only
/// what we keep of what we hold (nothing after a setuid to a user, which
/// empties them), inheritable and ambient nothing (as Docker since 20.10:
/// they would hand capabilities on through `execve`).
fn cut_capabilities(keep: &CapsHashSet) -> Result<()> {
    let held = caps::read(None, CapSet::Permitted).context("read the permitted set")?;
    let kept: CapsHashSet = held.intersection(keep).copied().collect();
    explain::step(
        &format!(
            "capset(effective = permitted = {{{}}}, inheritable = {{}})",
            names(&kept)
        ),
        &format!("setpriv --inh-caps -all --caps +{}", names(&kept)),
    );
    caps::clear(None, CapSet::Inheritable).context("clear the inheritable set")?;
    // Effective first: it must stay within permitted.
    caps::set(None, CapSet::Effective, &kept).context("set the effective set")?;
    caps::set(None, CapSet::Permitted, &kept).context("set the permitted set")?;
    explain::step(
        "prctl(PR_CAP_AMBIENT_CLEAR_ALL)",
        "setpriv --ambient-caps -all",
    );
    caps::clear(None, CapSet::Ambient).context("clear the ambient set")
}
// ANCHOR_END: cut_capabilities

// ANCHOR: set_no_new_privs
/// From now on `execve` can never grant privileges: setuid bits and file
/// capabilities are ignored. It also lets us install a seccomp filter
/// without CAP_SYS_ADMIN.
pub fn set_no_new_privs() -> Result<()> {
    explain::step(
        "prctl(PR_SET_NO_NEW_PRIVS, 1)",
        "setpriv --no-new-privs; runc: process.noNewPrivileges",
    );
    nix::sys::prctl::set_no_new_privs().context("prctl(PR_SET_NO_NEW_PRIVS)")
}
// ANCHOR_END: set_no_new_privs

// ANCHOR: install_seccomp_filter
/// Compile the profile into a BPF program the kernel runs on every
/// syscall of this process and its children, and load it. Last step
/// before `execve`: after it, we could no longer mount or `setns` either.
pub fn install_seccomp_filter(profile: &Profile) -> Result<()> {
    let mut filter = ScmpFilterContext::new(profile.default).context("seccomp_init")?;
    let mut rules = 0;
    for rule in profile.rules.iter().filter(|r| r.action != profile.default) {
        for name in &rule.names {
            // A name this kernel's architecture lacks has nothing to filter.
            let Ok(syscall) = ScmpSyscall::from_name(name) else {
                continue;
            };
            filter
                .add_rule_conditional(rule.action, syscall, &rule.args)
                .with_context(|| format!("seccomp rule for {name}"))?;
            rules += 1;
        }
    }
    explain::step(
        &format!("seccomp(SECCOMP_SET_MODE_FILTER, BPF of {rules} rules)"),
        "runc: linux.seccomp (docker: --security-opt seccomp=PROFILE.json)",
    );
    filter.load().context("seccomp(SECCOMP_SET_MODE_FILTER)")
}
// ANCHOR_END: install_seccomp_filter
