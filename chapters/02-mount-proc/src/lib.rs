//! # Chapter 02: a mount namespace with its own /proc, a hostname and IPC
//!
//! Chapter 01's child is PID 1, yet `ps` still lists the host's processes:
//! `ps` reads `/proc`, and `/proc` is still the host's. This chapter adds
//! three layers to chapter 01's runtime, like
//! `unshare --fork --pid --mount-proc --uts --ipc`:
//!
//! - [`MountProc`]: a new mount namespace, `/` made private, a fresh `/proc`;
//! - [`Hostname`]: a new UTS namespace, with its own hostname;
//! - [`Ipc`]: a new IPC namespace (System V queues, semaphores, shared memory).

use anyhow::{bail, Context, Result};
use ch01::{explain, Layer};
use nix::mount::{mount, MsFlags};
use nix::sched::CloneFlags;

/// `run` options: chapter 01's, plus the hostname.
#[derive(clap::Args, Debug)]
#[group(skip)]
pub struct RunArgs {
    /// Hostname inside the container (it gets its own UTS namespace)
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,
    #[command(flatten)]
    pub ch01: ch01::RunArgs,
}

impl RunArgs {
    /// The process to run in the container.
    pub fn process(&self) -> Result<ch01::Process> {
        self.ch01.process()
    }
}

// ANCHOR: layers
/// This chapter's layers, after checking the options (nothing is created
/// when an option is wrong).
pub fn layers(args: &RunArgs) -> Result<Vec<Box<dyn Layer>>> {
    if let Some(name) = &args.hostname {
        check_hostname(name)?;
    }
    Ok(vec![
        Box::new(MountProc),
        Box::new(Hostname(args.hostname.clone())),
        Box::new(Ipc),
    ])
}

/// `ch02 run`: chapter 01's runtime with this chapter's layers.
pub fn run(args: &RunArgs) -> Result<i32> {
    let process = args.process()?;
    let mut layers = layers(args)?;
    ch01::run(&process, &mut layers)
}

/// A new mount namespace in which `/proc` shows only the container.
pub struct MountProc;

impl Layer for MountProc {
    fn namespaces(&self) -> CloneFlags {
        CloneFlags::CLONE_NEWNS
    }
    fn setup_in_child(&mut self) -> Result<()> {
        make_mounts_private()?;
        mount_proc()
    }
}
// ANCHOR_END: layers

// ANCHOR: make_mounts_private
/// A new mount namespace starts as a copy of the host's mounts, and on most
/// systems (systemd) they are *shared*: a mount made on a copy would
/// propagate back to the host. Mark every mount private first.
pub fn make_mounts_private() -> Result<()> {
    explain::step(
        "mount(NULL, \"/\", NULL, MS_REC|MS_PRIVATE)",
        "mount --make-rprivate /",
    );
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .context("make / private (mount --make-rprivate /)")
}
// ANCHOR_END: make_mounts_private

// ANCHOR: mount_proc
/// A proc filesystem shows the PID namespace of the process that mounts it.
/// We are PID 1 of the new one, so this `/proc` lists only our processes,
/// and it hides the host's `/proc` in our mount namespace only.
pub fn mount_proc() -> Result<()> {
    explain::step(
        "mount(\"proc\", \"/proc\", \"proc\", MS_NOSUID|MS_NODEV|MS_NOEXEC)",
        "mount -t proc proc /proc",
    );
    mount(
        Some("proc"),
        "/proc",
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .context("mount proc on /proc")
}
// ANCHOR_END: mount_proc

/// A new UTS namespace, and the hostname to set in it (if any).
pub struct Hostname(pub Option<String>);

impl Layer for Hostname {
    fn namespaces(&self) -> CloneFlags {
        CloneFlags::CLONE_NEWUTS
    }
    fn setup_in_child(&mut self) -> Result<()> {
        match &self.0 {
            Some(name) => set_hostname(name),
            None => Ok(()),
        }
    }
}

// ANCHOR: set_hostname
/// In its own UTS namespace the container can rename itself; the host
/// keeps its name.
pub fn set_hostname(name: &str) -> Result<()> {
    explain::step(
        &format!("sethostname({name:?})"),
        &format!("hostname {name}"),
    );
    nix::unistd::sethostname(name).context("sethostname")
}
// ANCHOR_END: set_hostname

/// The kernel takes up to 64 bytes (HOST_NAME_MAX); we also keep to the
/// characters a hostname may have (RFC 1123), so typos fail early.
pub fn check_hostname(name: &str) -> Result<()> {
    let valid_chars = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if name.is_empty() || name.len() > 64 || !valid_chars {
        bail!("invalid hostname {name:?}: use 1 to 64 letters, digits, '-' or '.'");
    }
    Ok(())
}

/// A new IPC namespace: System V message queues, semaphores and shared
/// memory of the host are out of sight, and ours stay in.
pub struct Ipc;

impl Layer for Ipc {
    fn namespaces(&self) -> CloneFlags {
        CloneFlags::CLONE_NEWIPC
    }
}

#[cfg(test)]
mod tests {
    use super::check_hostname;

    #[test]
    fn hostnames_are_checked() {
        assert!(check_hostname("box1").is_ok());
        assert!(check_hostname("web-1.example").is_ok());
        assert!(check_hostname(&"a".repeat(64)).is_ok());
        for bad in ["", "has space", "slash/", &"a".repeat(65)] {
            let err = check_hostname(bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid hostname"), "{bad:?}: {err}");
        }
    }
}
