//! What the user sees during a pull (progress on stderr, so that stdout
//! holds only the result), and how they stop it (Ctrl-C).

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use oci_spec::image::Digest;
use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, IsTerminal};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

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

/// Run a long command whose output is a log (debootstrap): all of it goes
/// to our stderr, so that our stdout holds only results. On a terminal, as
/// one line that shows the time elapsed and the log's latest line (its last
/// 20 lines are printed if it fails); elsewhere (a pipe, CI), as it is.
pub fn run_with_spinner(command: &mut Command, what: &str) -> io::Result<ExitStatus> {
    if !io::stderr().is_terminal() {
        return command.stdout(Stdio::from(io::stderr())).status();
    }
    let (reader, writer) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    command.stdout(writer.try_clone()?).stderr(writer);
    let child = command.spawn();
    // The command keeps its copies of the pipe's writing end: drop them,
    // or the reading below would never see the end of the log.
    command.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = child?;
    let spinner = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {prefix} {elapsed:>4} {wide_msg}") {
        spinner.set_style(style);
    }
    spinner.set_prefix(what.to_string());
    spinner.enable_steady_tick(Duration::from_millis(200));
    let mut tail = VecDeque::with_capacity(20);
    for line in BufReader::new(std::fs::File::from(reader)).lines() {
        let line = line?;
        spinner.set_message(line.clone());
        if tail.len() == 20 {
            tail.pop_front();
        }
        tail.push_back(line);
    }
    let status = child.wait()?;
    spinner.finish_and_clear();
    if status.success() {
        say(&format!("{what}: done in {}s", spinner.elapsed().as_secs()));
    } else {
        tail.iter().for_each(|line| say(line));
    }
    Ok(status)
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
