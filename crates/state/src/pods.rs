//! Pod records: what chapter 06's pods leave on disk while they live.
//! Only this module writes them.
//!
//! ```text
//! STATE_DIR/pods/web/                       (/run/pods-from-scratch by default)
//!   pod                  the record: id, state, pause's PID, address, volumes, ...
//!   ns/net ns/ipc ns/uts (ns/pid)  the pod's namespaces, bind-mounted
//!   names/app            a container's PID (see [`names`])
//! DATA_DIR/pods/web/   (/var/lib/pods-from-scratch; chapter 06 keeps these)
//!   pause/               pause's overlay (upper, work, root)
//!   containers/app/      each container's overlay
//!   logs/app.log         what a detached container printed
//!   volumes/logs/        a pod volume (`pod create --volume logs`)
//! ```
//!
//! The record is a few `key=value` lines, so `cat` shows it all.

use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::names;
use crate::process::{is_running, same_file};

/// Our pods' groups live below this group, in every hierarchy; chapter 05's
/// containers have `pods-from-scratch`, which its `cleanup` sweeps.
pub const PODS_GROUP: &str = "pods-from-scratch-pods";

/// Where a pod stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// `pod create` is starting it (or was killed while doing so).
    Creating,
    /// Its pause was started; it runs as long as pause does.
    Running,
    /// `pod stop` stopped it: only the record and the logs are left.
    Stopped,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            State::Creating => "creating",
            State::Running => "running",
            State::Stopped => "stopped",
        }
    }

    fn parse(text: &str) -> Option<State> {
        match text {
            "creating" => Some(State::Creating),
            "running" => Some(State::Running),
            "stopped" => Some(State::Stopped),
            _ => None,
        }
    }
}

/// A pod's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pod {
    pub name: String,
    /// Random, 8 hex digits: names the pod's veth and cgroup, which must not
    /// clash with another state directory's pod of the same name.
    pub id: String,
    pub state: State,
    /// The `ch06` process that creates the pod (while `Creating`).
    pub creator: u32,
    /// The pause process, as the host sees it.
    pub pause: Option<u32>,
    /// Whether the containers share pause's PID namespace.
    pub share_pid: bool,
    pub hostname: String,
    pub bridge: String,
    pub subnet: String,
    /// The pod's one address, on the bridge.
    pub address: Option<Ipv4Addr>,
    /// The names of the pod's volumes (`pod create --volume`).
    pub volumes: Vec<String>,
}

impl Pod {
    pub fn new(name: &str, hostname: &str, share_pid: bool, bridge: &str, subnet: &str) -> Pod {
        Pod {
            name: name.to_string(),
            id: random_id(),
            state: State::Creating,
            creator: std::process::id(),
            pause: None,
            share_pid,
            hostname: hostname.to_string(),
            bridge: bridge.to_string(),
            subnet: subnet.to_string(),
            address: None,
            volumes: Vec::new(),
        }
    }

    /// The host end of the pod's veth pair.
    pub fn veth(&self) -> String {
        format!("pfsh{}", self.id)
    }

    /// The pod's cgroup, below the root of each hierarchy.
    pub fn cgroup(&self) -> PathBuf {
        Path::new(PODS_GROUP).join(format!("{}-{}", self.name, self.id))
    }

    /// `STATE_DIR/pods/NAME`.
    pub fn state_dir(&self) -> PathBuf {
        pod_dir(&self.name)
    }

    /// `STATE_DIR/pods/NAME/ns`: the bind-mounted namespace files.
    pub fn ns_dir(&self) -> PathBuf {
        self.state_dir().join("ns")
    }

    /// The record as `key=value` lines.
    pub fn to_text(&self) -> String {
        let or_none = |v: Option<String>| v.unwrap_or_else(|| "-".into());
        format!(
            "id={}\nstate={}\ncreator={}\npause={}\nshare_pid={}\nhostname={}\nbridge={}\nsubnet={}\naddress={}\nvolumes={}\n",
            self.id,
            self.state.as_str(),
            self.creator,
            or_none(self.pause.map(|p| p.to_string())),
            if self.share_pid { "yes" } else { "no" },
            self.hostname,
            self.bridge,
            self.subnet,
            or_none(self.address.map(|a| a.to_string())),
            self.volumes.join(","),
        )
    }

    /// Read a record back; `None` if it is not one of ours.
    pub fn parse(name: &str, text: &str) -> Option<Pod> {
        let value = |key: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
                .map(str::to_string)
        };
        Some(Pod {
            name: name.to_string(),
            id: value("id")?,
            state: State::parse(&value("state")?)?,
            creator: value("creator")?.parse().ok()?,
            pause: value("pause")?.parse().ok(),
            share_pid: value("share_pid")? == "yes",
            hostname: value("hostname")?,
            bridge: value("bridge")?,
            subnet: value("subnet")?,
            address: value("address")?.parse().ok(),
            volumes: value("volumes")
                .unwrap_or_default()
                .split(',')
                .filter(|name| !name.is_empty())
                .map(str::to_string)
                .collect(),
        })
    }

    /// Write the record (to a temporary file, then renamed: a reader never
    /// sees half of it).
    pub fn save(&self) -> Result<()> {
        let path = self.state_dir().join("pod");
        let tmp = self.state_dir().join("pod.tmp");
        fs::write(&tmp, self.to_text()).with_context(|| format!("write {}", tmp.display()))?;
        fs::rename(&tmp, &path).with_context(|| format!("write {}", path.display()))
    }

    /// Whether the pod's pause process runs: its PID is alive, and its
    /// network namespace is the one bind-mounted in the pod's directory
    /// (so a PID reused by another process is not mistaken for pause).
    pub fn pause_is_running(&self) -> bool {
        let Some(pid) = self.pause else {
            return false;
        };
        is_running(pid)
            && same_file(
                Path::new(&format!("/proc/{pid}/ns/net")),
                &self.ns_dir().join("net"),
            )
    }

    /// What `pod ls` says about the pod.
    pub fn status(&self) -> &'static str {
        match self.state {
            State::Running if self.pause_is_running() => "running",
            State::Running => "dead (pause is gone: run `ch06 cleanup`)",
            State::Creating if is_running(self.creator) => "creating",
            State::Creating => "failed (run `ch06 cleanup`)",
            State::Stopped => "stopped",
        }
    }
}

/// `STATE_DIR/pods`.
pub fn pods_dir() -> PathBuf {
    crate::state_dir().join("pods")
}

/// `STATE_DIR/pods/NAME`.
pub fn pod_dir(name: &str) -> PathBuf {
    pods_dir().join(name)
}

/// A pod name follows the rule for container names: 1 to 64
/// letters, digits, `_`, `.` or `-`, starting with a letter or digit. So no
/// `/`: the name is a directory name.
pub fn check_pod_name(name: &str) -> Result<()> {
    if names::check_name(name).is_err() {
        bail!("invalid pod name {name:?}: use 1 to 64 letters, digits, '_', '.' or '-'");
    }
    Ok(())
}

/// A container name: [`names::check_name`]'s rule, and not `pause`, which names the
/// pause process's own group and log.
pub fn check_container_name(name: &str) -> Result<()> {
    names::check_name(name)?;
    if name == "pause" {
        bail!("invalid container name \"pause\": it is the name of the pod's pause process");
    }
    Ok(())
}

/// Claim a pod name: `mkdir` fails if the directory exists, so two
/// `pod create` can never both get it.
pub fn reserve(pod: &Pod) -> Result<()> {
    fs::create_dir_all(pods_dir()).context("create the pods directory")?;
    match fs::create_dir(pod.state_dir()) {
        Ok(()) => pod.save(),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!("pod {:?} already exists", pod.name)
        }
        Err(e) => Err(e).with_context(|| format!("create {}", pod.state_dir().display())),
    }
}

/// The record of the pod called `name`.
pub fn load(name: &str) -> Result<Pod> {
    check_pod_name(name)?;
    let path = pod_dir(name).join("pod");
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!("no pod named {name:?}"),
        Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
    };
    Pod::parse(name, &text).with_context(|| format!("{} is not a pod record", path.display()))
}

/// Every pod of this state directory, sorted by name.
pub fn all() -> Vec<Pod> {
    let Ok(entries) = fs::read_dir(pods_dir()) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names.iter().filter_map(|name| load(name).ok()).collect()
}

/// The containers registered in a pod, with their PIDs, sorted by name.
pub fn containers(pod: &Pod) -> Vec<(String, Option<u32>)> {
    let mut all = names::all(&pod.state_dir());
    all.sort();
    all
}

/// `pod rm`, `pod stop` and `cleanup` change pods under this lock, so two
/// of them never tear down the same pod at once.
pub fn lock_pods() -> Result<crate::Lock> {
    crate::lock("pods")
}

/// `cleanup`, under [`lock_pods`]: let `tear_down` undo each pod whose
/// pause is gone (killed) or whose `pod create` was killed.
pub fn remove_dead(tear_down: impl Fn(&Pod) -> Result<()>) -> Result<()> {
    for pod in all() {
        let dead = match pod.state {
            State::Running => !pod.pause_is_running(),
            State::Creating => !is_running(pod.creator),
            State::Stopped => false,
        };
        if dead {
            tear_down(&pod)?;
        }
    }
    Ok(())
}

/// Remove a pod's record and what else is in its state directory.
pub fn forget(pod: &Pod) {
    let _ = fs::remove_dir_all(pod.state_dir());
}

/// The pod called `name`, if it runs; else one line saying why not.
pub fn load_running(name: &str) -> Result<Pod> {
    let pod = load(name)?;
    if !pod.pause_is_running() {
        bail!("pod {name:?} is not running: {}", pod.status());
    }
    Ok(pod)
}

/// The PID of a running container of the pod.
pub fn running_container(pod: &Pod, name: &str) -> Result<u32> {
    let registered = containers(pod)
        .into_iter()
        .find(|(n, _)| n == name)
        .with_context(|| format!("no container named {name:?} in pod {:?}", pod.name))?;
    match registered.1 {
        Some(pid) if is_running(pid) => Ok(pid),
        _ => bail!("container {name:?} of pod {:?} is not running", pod.name),
    }
}

/// Whether the pod has a container called `name` that ended (a detached
/// one keeps its name until its pod is removed or the name is taken again),
/// or whose runtime was killed before it started.
pub fn has_exited(pod: &Pod, name: &str) -> bool {
    names::is_stale(&pod.state_dir(), name)
}

/// 8 random hex digits, from the kernel's random source.
fn random_id() -> String {
    let mut bytes = [0u8; 4];
    let read = fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes));
    if read.is_err() {
        // Unlikely; the PID and the time are unique enough here.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        bytes = (nanos ^ std::process::id()).to_be_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_written_and_read_back() {
        let mut pod = Pod::new("web", "web", true, "pfs0", "10.200.0.0/24");
        assert_eq!(pod.id.len(), 8);
        assert_eq!(Pod::parse("web", &pod.to_text()), Some(pod.clone()));
        pod.state = State::Running;
        pod.pause = Some(4242);
        pod.address = Some(Ipv4Addr::new(10, 200, 0, 2));
        pod.volumes = vec!["logs".into(), "cache".into()];
        let text = pod.to_text();
        assert!(text.contains("volumes=logs,cache\n"), "{text}");
        assert!(text.contains("pause=4242\n"), "{text}");
        assert!(text.contains("address=10.200.0.2\n"), "{text}");
        assert_eq!(Pod::parse("web", &text), Some(pod));
        assert_eq!(Pod::parse("web", "id=1\n"), None);
    }

    #[test]
    fn names_are_checked() {
        assert!(check_pod_name("web-1").is_ok());
        for bad in ["", "a/b", "../x", &"a".repeat(65), "-x"] {
            let err = check_pod_name(bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid pod name"), "{bad:?}: {err}");
        }
        assert!(check_container_name("app").is_ok());
        assert!(check_container_name("pause").is_err());
        assert!(check_container_name("a/b").is_err());
    }

    #[test]
    fn the_veth_fits_in_a_link_name_and_the_cgroup_is_ours() {
        let pod = Pod::new(&"w".repeat(64), "w", false, "pfs0", "10.200.0.0/24");
        assert!(pod.veth().len() <= 15); // the kernel's IFNAMSIZ - 1
        assert!(pod.cgroup().starts_with(PODS_GROUP));
    }
}
