//! Running detached: pause, and `pod run -d`, must outlive the `ch06` that
//! starts them. Chapter 01's `run` waits for its child, and its child dies
//! with it (`PR_SET_PDEATHSIG`); a detached child instead leaves our session,
//! asks for no death signal, reads /dev/null and writes to a log, and we
//! return as soon as it is about to `execve`.

use std::fs::File;
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::Path;

use anyhow::{Context, Result};
use ch01::{explain, Child, Layer, Process};
use nix::unistd::Pid;

use crate::files::create_log;

// ANCHOR: run_detached
/// Like chapter 01's `run`, but in the background: the command runs in a
/// session of its own, with stdin from /dev/null and stdout and stderr
/// going to the file `log` (made, or emptied), and it is *not* killed when
/// we exit. Returns as soon as
/// the command is about to run: [`Child::Running`] with its PID, or
/// [`Child::Exited`] if the child failed first (it said why in the log).
///
/// When the command runs, the layers are not cleaned up: what they made (a
/// veth, a cgroup, mounts) now belongs to it, and whoever stops it must undo
/// that (`pod rm`). Otherwise they are, as in `run`.
pub fn run_detached(
    process: &Process,
    layers: &mut Vec<Box<dyn Layer>>,
    log: &Path,
) -> Result<Child> {
    let log = create_log(log)?;
    let null = File::open("/dev/null").context("open /dev/null")?;
    // Last, so that the other layers' errors still reach our terminal.
    layers.push(Box::new(Detach { null, log }));
    ch01::launch(process, layers, wait_until_exec)
}

/// The child says "x" just before `execve`. If the socket closes first,
/// the child failed: collect its exit status.
pub fn wait_until_exec(child: Pid, sock: &mut UnixStream) -> Result<Child> {
    let mut starting = [0u8; 1];
    if sock.read(&mut starting).context("wait for the child")? == 1 {
        return Ok(Child::Running(child));
    }
    Ok(Child::Exited(ch01::wait_for_exit(child)?))
}
// ANCHOR_END: run_detached

/// The child's side of detaching, in the child just before `execve`.
struct Detach {
    null: File,
    log: File,
}

// ANCHOR: start_new_session
impl Layer for Detach {
    fn setup_in_child(&mut self) -> Result<()> {
        // Leave our session (and our terminal): Ctrl-C in our terminal no
        // longer reaches it.
        explain::step("setsid()", "setsid");
        nix::unistd::setsid().context("setsid")?;
        // Chapter 01 asked for SIGKILL when we die: not any more.
        explain::step("prctl(PR_SET_PDEATHSIG, 0)", "(setsid(1) asks for none)");
        nix::sys::prctl::set_pdeathsig(None).context("prctl(PR_SET_PDEATHSIG)")?;
        explain::step(
            "dup2(null, 0); dup2(log, 1); dup2(log, 2)",
            "< /dev/null > LOG 2>&1",
        );
        nix::unistd::dup2_stdin(&self.null).context("dup2 stdin")?;
        nix::unistd::dup2_stdout(&self.log).context("dup2 stdout")?;
        nix::unistd::dup2_stderr(&self.log).context("dup2 stderr")
    }
}
// ANCHOR_END: start_new_session
