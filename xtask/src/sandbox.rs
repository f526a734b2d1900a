//! Cargo's runner for the workshop's test programs: run one as root, in a
//! mount namespace of its own whose mounts propagate among themselves, as a
//! systemd host's do, but not to the host. A step that gets mount
//! propagation wrong then changes what the tests see, which they report,
//! and never the real host; what it mounted vanishes with the test program.
//! The program runs in a session of its own: what a failed test left
//! running in it (a server waiting for a client) is killed after.

use anyhow::{Context, Result};
use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::{killpg, sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::unistd::{geteuid, Pid};
use std::ffi::OsString;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicI32, Ordering};

/// The test program's process group, for the signal handler.
static PROGRAM: AtomicI32 = AtomicI32::new(0);

pub fn run(program: &[OsString]) -> Result<ExitCode> {
    if !geteuid().is_root() {
        // Again, as root.
        let me = std::env::current_exe()?;
        let error = Command::new("sudo")
            .arg("-E")
            .arg(me)
            .args(["workshop", "sandbox"])
            .args(program)
            .exec();
        return Err(error).context("running sudo");
    }
    // `unshare --mount --propagation private`, then `mount --make-rshared /`.
    unshare(CloneFlags::CLONE_NEWNS).context("unshare(CLONE_NEWNS)")?;
    let none: Option<&str> = None;
    mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none)
        .context("making / private")?;
    mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_SHARED, none)
        .context("making / shared")?;

    let mut command = Command::new(&program[0]);
    command.args(&program[1..]);
    // SAFETY: setsid is async-signal-safe, as pre_exec requires.
    unsafe {
        command.pre_exec(|| nix::unistd::setsid().map(drop).map_err(Into::into));
    }
    let mut child = command
        .spawn()
        .with_context(|| format!("running {:?}", program[0]))?;
    let group = Pid::from_raw(child.id() as i32);
    PROGRAM.store(group.as_raw(), Ordering::SeqCst);
    let on_signal = SigAction::new(
        SigHandler::Handler(kill_and_exit),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only calls killpg and _exit (async-signal-safe).
        unsafe { sigaction(signal, &on_signal) }?;
    }
    let status = child.wait()?;
    let _ = killpg(group, Signal::SIGKILL); // what it left running
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    Ok(ExitCode::from(code as u8))
}

extern "C" fn kill_and_exit(_: nix::libc::c_int) {
    let group = PROGRAM.load(Ordering::SeqCst);
    if group > 0 {
        let _ = killpg(Pid::from_raw(group), Signal::SIGKILL);
    }
    // SAFETY: _exit ends the process at once, as a signal handler may.
    unsafe { nix::libc::_exit(130) }
}
