//! What the user sees during a pull (progress on stderr, so that stdout
//! holds only the result), and how they stop it (Ctrl-C).

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use oci_spec::image::Digest;
use std::io::{self, IsTerminal};
use std::sync::atomic::{AtomicBool, Ordering};

// ANCHOR: ctrl_c
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Was Ctrl-C pressed since the pull began?
pub(crate) fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

extern "C" fn on_interrupt(_: nix::libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// On Ctrl-C (or SIGTERM, SIGHUP), note it: the next read of a blob fails,
/// and the error path removes the work directory as for any other error.
/// `SA_RESETHAND`: a second Ctrl-C kills at once (the next pull removes
/// what is left in `tmp/`).
pub(crate) fn stop_on_ctrl_c() -> Result<()> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let action = SigAction::new(
        SigHandler::Handler(on_interrupt),
        SaFlags::SA_RESETHAND | SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only stores to an atomic.
        unsafe { sigaction(signal, &action) }.context("sigaction")?;
    }
    Ok(())
}
// ANCHOR_END: ctrl_c

/// A progress bar on a terminal; nothing otherwise (plain lines are
/// printed when each layer is done).
pub(crate) fn progress_bar(size: u64, step: &str) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(size);
    if let Ok(style) = ProgressStyle::with_template(
        "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(step.to_string());
    bar
}

/// Progress goes to stderr, so that stdout holds only results.
pub(crate) fn say(line: &str) {
    eprintln!("{line}");
}

/// `sha256:0123456789ab` (enough to recognise a layer).
pub(crate) fn short(digest: &Digest) -> String {
    let hex = digest.digest();
    format!("{}:{}", digest.algorithm(), &hex[..hex.len().min(12)])
}

pub(crate) fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}
