//! Stopping a pod's processes: SIGTERM, a grace period, SIGKILL.

use std::time::Duration;

use anyhow::Result;
use ch01::explain;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use pfs_state::pods::{self, Pod};
use pfs_state::process::{is_running, wait_until_gone};

// ANCHOR: stop_processes
/// SIGTERM to every container; SIGKILL to those still running after
/// `timeout`; then the same to pause, which exits at once on SIGTERM.
/// (With a shared PID namespace, the kernel kills every process left in it
/// when pause, its PID 1, dies.)
pub fn stop_processes(pod: &Pod, timeout: Duration) -> Result<()> {
    let containers: Vec<u32> = pods::containers(pod)
        .into_iter()
        .filter_map(|(_, pid)| pid)
        .filter(|&pid| is_running(pid))
        .collect();
    stop_gracefully(&containers, timeout);
    if pod.pause_is_running() {
        let pause = pod.pause.into_iter().collect::<Vec<_>>();
        stop_gracefully(&pause, Duration::from_secs(1));
    }
    Ok(())
}

/// SIGTERM, a grace period, then SIGKILL for what is left.
pub fn stop_gracefully(pids: &[u32], timeout: Duration) {
    for &pid in pids {
        send_signal(pid, Signal::SIGTERM);
    }
    if wait_until_gone(pids, timeout) {
        return;
    }
    for &pid in pids.iter().filter(|&&pid| is_running(pid)) {
        send_signal(pid, Signal::SIGKILL);
    }
    wait_until_gone(pids, Duration::from_secs(1));
}
// ANCHOR_END: stop_processes

/// `kill(2)`, narrated as `kill -TERM PID`.
pub fn send_signal(pid: u32, signal: Signal) {
    explain::step(
        &format!("kill({pid}, {signal})"),
        &format!("kill -{} {pid}", signal.as_str().trim_start_matches("SIG")),
    );
    let _ = kill(Pid::from_raw(pid as i32), signal);
}
