//! The records, told to a person: `doctor`'s checklist, `pod ls`,
//! `pod ps`, `pod logs`. Each chapter decides *what* to check or show;
//! the layout lives here, once.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Result};

use crate::pods::{self, Pod};
use crate::process::{command_line_of, is_running};

/// `doctor`'s output: one line per check, `ok`, `MISSING` (a requirement;
/// the exit status becomes 1) or `note` (an option), with how to fix it.
#[derive(Debug, Default)]
pub struct Checklist {
    missing: usize,
}

impl Checklist {
    /// Something the chapter cannot run without.
    pub fn require(&mut self, ok: bool, what: &str, fix: &str) {
        self.line(if ok { "ok     " } else { "MISSING" }, ok, what, fix);
        if !ok {
            self.missing += 1;
        }
    }

    /// Something only some options need.
    pub fn note(&mut self, ok: bool, what: &str, fix: &str) {
        self.line(if ok { "ok     " } else { "note   " }, ok, what, fix);
    }

    fn line(&self, mark: &str, ok: bool, what: &str, fix: &str) {
        match ok {
            true => println!("{mark} {what}"),
            false => println!("{mark} {what}: {fix}"),
        }
    }

    /// What every chapter needs: root, and the kernel's namespaces.
    pub fn check_root_and_namespaces(&mut self) {
        let root = nix::unistd::geteuid().is_root();
        self.require(root, "running as root", "run it with sudo");
        for ns in ["pid", "mnt", "uts", "ipc", "net"] {
            let ok = Path::new(&format!("/proc/self/ns/{ns}")).exists();
            let lacking = "this kernel lacks them (CONFIG_NAMESPACES)";
            self.require(ok, &format!("{ns} namespaces"), lacking);
        }
    }

    /// 0 when everything required is there, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        i32::from(self.missing > 0)
    }
}

/// `pod ls`: one line per pod.
pub fn print_pods() -> Result<i32> {
    println!(
        "{:<16} {:<8} {:<8} {:<14} {:<10} {:<10} STATUS",
        "NAME", "ID", "PAUSE", "ADDRESS", "SHARE-PID", "CONTAINERS"
    );
    for pod in pods::all() {
        let pause = pod.pause.map_or("-".into(), |p| p.to_string());
        let address = pod.address.map_or("-".into(), |a| a.to_string());
        let running = pods::containers(&pod)
            .iter()
            .filter(|(_, pid)| pid.is_some_and(is_running))
            .count();
        println!(
            "{:<16} {:<8} {:<8} {:<14} {:<10} {:<10} {}",
            pod.name,
            pod.id,
            pause,
            address,
            if pod.share_pid { "yes" } else { "no" },
            running,
            pod.status()
        );
    }
    Ok(0)
}

/// `pod ps [POD]`: one line per container, of one pod or of all.
pub fn print_containers(pod: Option<&str>) -> Result<i32> {
    let pods = match pod {
        Some(name) => vec![pods::load(name)?],
        None => pods::all(),
    };
    println!(
        "{:<16} {:<16} {:<8} {:<8} COMMAND",
        "POD", "CONTAINER", "PID", "STATUS"
    );
    for pod in pods {
        for (name, pid) in pods::containers(&pod) {
            let running = pid.is_some_and(is_running);
            let command = match pid {
                Some(pid) if running => command_line_of(pid),
                _ => String::new(),
            };
            println!(
                "{:<16} {:<16} {:<8} {:<8} {}",
                pod.name,
                name,
                pid.map_or("-".into(), |p| p.to_string()),
                match (pid, running) {
                    (None, _) => "starting",
                    (Some(_), true) => "running",
                    (Some(_), false) => "exited",
                },
                command
            );
        }
    }
    Ok(0)
}

/// `pod logs`: the log of `container` of `pod`, kept at `log`.
pub fn print_log(pod: &Pod, container: &str, log: &Path) -> Result<i32> {
    match std::fs::read(log) {
        Ok(bytes) => {
            std::io::stdout().write_all(&bytes)?;
            Ok(0)
        }
        Err(_) if pods::containers(pod).iter().any(|(n, _)| n == container) => {
            bail!("container {container:?} has no log: it runs in the foreground")
        }
        Err(_) => bail!("no container named {container:?} in pod {:?}", pod.name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exit_code_counts_requirements_only() {
        let mut list = Checklist::default();
        list.require(true, "root", "sudo");
        list.note(false, "nft", "install it");
        assert_eq!(list.exit_code(), 0);
        list.require(false, "netlink", "none");
        assert_eq!(list.exit_code(), 1);
    }
}
