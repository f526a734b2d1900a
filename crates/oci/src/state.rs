//! A container's record under `--root`: `<root>/<id>/state.json`, written
//! by `create` before anything is made on the host (so that `delete
//! --force` can undo a `create` killed at any point), and the runtime
//! spec's state JSON that `ch08 state` prints from it.

use std::collections::HashMap;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

/// What `create` writes, and every other command reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub id: String,
    /// The bundle's directory, absolute.
    pub bundle: PathBuf,
    /// The container's cgroup, below each hierarchy's root.
    pub cgroup: PathBuf,
    /// When `create` began, RFC 3339.
    pub created: String,
    /// `creating` until the process waits for `start`, then `created`.
    pub status: String,
    /// The container's process on the host, once it exists.
    pub pid: Option<u32>,
    /// Its start time (field 22 of /proc/PID/stat): a PID the kernel has
    /// given to another process since is not ours.
    pub start_time: Option<u64>,
    pub annotations: HashMap<String, String>,
}

/// The file through which `start` releases a created container.
pub const EXEC_FIFO: &str = "exec.fifo";

/// runc's rule for ids: letters, digits, `_`, `+`, `-`, `.`, and not `.` or `..`.
pub fn check_id(id: &str) -> Result<()> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_+-.".contains(c);
    if id.is_empty() || id == "." || id == ".." || !id.chars().all(allowed) {
        bail!("invalid container id {id:?}: use letters, digits, '_', '+', '-' and '.'");
    }
    Ok(())
}

/// `<root>/<id>`: the container's state directory.
pub fn dir(root: &Path, id: &str) -> PathBuf {
    root.join(id)
}

impl Record {
    /// A new container's record, status `creating`.
    pub fn new(
        id: &str,
        bundle: &Path,
        cgroup: &Path,
        annotations: HashMap<String, String>,
    ) -> Self {
        Record {
            id: id.to_string(),
            bundle: bundle.to_path_buf(),
            cgroup: cgroup.to_path_buf(),
            created: crate::log::now_rfc3339(),
            status: "creating".into(),
            pid: None,
            start_time: None,
            annotations,
        }
    }

    /// Make the state directory and write the record in it; an id that is
    /// taken is refused (the directory exists: `mkdir` is the lock).
    pub fn reserve(&self, root: &Path) -> Result<PathBuf> {
        fs::create_dir_all(root).with_context(|| format!("create {}", root.display()))?;
        let dir = dir(root, &self.id);
        match fs::create_dir(&dir) {
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                bail!(
                    "container {} exists already: pick another id, or `delete` it first",
                    self.id
                )
            }
            other => other.with_context(|| format!("create {}", dir.display()))?,
        }
        self.save(root)?;
        Ok(dir)
    }

    /// Write the record atomically (a new file, renamed over the old one).
    pub fn save(&self, root: &Path) -> Result<()> {
        let file = dir(root, &self.id).join("state.json");
        let record = json!({
            "id": self.id,
            "bundle": self.bundle,
            "cgroup": self.cgroup,
            "created": self.created,
            "status": self.status,
            "pid": self.pid,
            "startTime": self.start_time,
            "annotations": self.annotations,
        });
        write_atomically(&file, &record.to_string())
    }

    /// Read container `id`'s record; an unknown id is one clear error.
    pub fn load(root: &Path, id: &str) -> Result<Record> {
        check_id(id)?;
        let file = dir(root, id).join("state.json");
        let text = match fs::read_to_string(&file) {
            Err(e) if e.kind() == ErrorKind::NotFound => {
                bail!(
                    "container {id} does not exist (under --root {})",
                    root.display()
                )
            }
            other => other.with_context(|| format!("read {}", file.display()))?,
        };
        let record: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a state record", file.display()))?;
        let text = |key: &str| record[key].as_str().unwrap_or_default().to_string();
        Ok(Record {
            id: text("id"),
            bundle: text("bundle").into(),
            cgroup: text("cgroup").into(),
            created: text("created"),
            status: text("status"),
            pid: record["pid"].as_u64().map(|p| p as u32),
            start_time: record["startTime"].as_u64(),
            annotations: serde_json::from_value(record["annotations"].clone()).unwrap_or_default(),
        })
    }

    /// The process is made and waits for `start`.
    pub fn created(&mut self, pid: u32) {
        self.pid = Some(pid);
        self.start_time = start_time(pid);
        self.status = "created".into();
    }

    /// For `delete`: with `force`, an unknown id is nothing to do (runc).
    pub fn load_unless_forced(root: &Path, id: &str, force: bool) -> Result<Option<Record>> {
        if force && check_id(id).is_ok() && !dir(root, id).exists() {
            return Ok(None);
        }
        Record::load(root, id).map(Some)
    }

    /// The record's process still runs (and is the same process).
    pub fn is_alive(&self) -> bool {
        match (self.pid, self.start_time) {
            (Some(pid), Some(started)) => {
                pfs_state::process::is_running(pid) && start_time(pid) == Some(started)
            }
            _ => false,
        }
    }

    /// The status, derived as runc does: no live process is `stopped`; a
    /// live one still waiting on the exec fifo is `created`, else `running`.
    pub fn status(&self, root: &Path) -> &'static str {
        if self.status == "creating" {
            return "creating";
        }
        if !self.is_alive() {
            return "stopped";
        }
        if dir(root, &self.id).join(EXEC_FIFO).exists() {
            "created"
        } else {
            "running"
        }
    }

    /// The runtime spec's state (what `ch08 state` prints and hooks read).
    pub fn to_state(&self, root: &Path) -> Value {
        let status = self.status(root);
        let mut state = json!({
            "ociVersion": oci_spec::runtime::VERSION,
            "id": self.id,
            "status": status,
            "bundle": self.bundle,
            "created": self.created,
            "owner": "",
            "annotations": self.annotations,
        });
        // The spec asks for the PID while there is a process: created, running.
        if let (Some(pid), "created" | "running") = (self.pid, status) {
            state["pid"] = json!(pid);
        }
        state
    }
}

/// Field 22 of /proc/PID/stat: when the process started, in clock ticks
/// since boot.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // COMM (field 2) may hold spaces: count from after its ')'.
    let (_, rest) = stat.rsplit_once(") ")?;
    rest.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// Write `text` to `file` atomically, as runc writes its pid file.
pub fn write_atomically(file: &Path, text: &str) -> Result<()> {
    let name = file.file_name().unwrap_or_default().to_string_lossy();
    let temporary = file.with_file_name(format!(".{name}.tmp"));
    fs::write(&temporary, text).with_context(|| format!("write {}", temporary.display()))?;
    fs::rename(&temporary, file).with_context(|| format!("write {}", file.display()))
}

/// The PIDs in the cgroup at `path` (below the hierarchies' root): v2's
/// one hierarchy, or v1's pids hierarchy.
pub fn cgroup_pids(path: &Path) -> Vec<u32> {
    let root = Path::new("/sys/fs/cgroup");
    let hierarchy = if root.join("cgroup.controllers").exists() {
        root.to_path_buf()
    } else {
        root.join("pids")
    };
    let procs = hierarchy.join(path).join("cgroup.procs");
    let text = fs::read_to_string(procs).unwrap_or_default();
    text.lines().filter_map(|l| l.trim().parse().ok()).collect()
}

/// Write the pid file, when asked for.
pub fn write_pid_file(file: Option<&Path>, pid: i32) -> Result<()> {
    match file {
        Some(file) => write_atomically(file, &pid.to_string()),
        None => Ok(()),
    }
}

/// Send `signal` to `pid`; one that is gone meanwhile is no error.
pub fn signal(pid: u32, signal: nix::sys::signal::Signal) -> Result<()> {
    pfs_cli::explain::step(
        &format!("kill({pid}, {signal})"),
        &format!("kill -{signal} {pid}"),
    );
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(e) => Err(e).with_context(|| format!("kill {pid}")),
    }
}

/// `ch08 state ID`: the runtime spec's state JSON.
pub fn print_state(root: &Path, id: &str) -> Result<i32> {
    println!("{:#}", Record::load(root, id)?.to_state(root));
    Ok(0)
}

/// `ch08 ps ID`: the PIDs in the container's cgroup, as a JSON array
/// (containerd asks so) or a table.
pub fn print_ps(root: &Path, id: &str, format: &str) -> Result<i32> {
    let pids = cgroup_pids(&Record::load(root, id)?.cgroup);
    match format {
        "json" => println!("{}", json!(pids)),
        "table" => {
            println!("PID\tCMD");
            for &pid in &pids {
                println!("{pid}\t{}", pfs_state::process::command_line_of(pid));
            }
        }
        other => bail!("ps --format {other}: use table or json"),
    }
    Ok(0)
}

/// Read the one byte a fifo's writer sends, polling (the fifo is open
/// without blocking) for as long as `writer_lives`.
pub fn read_byte_while(fifo: &mut std::fs::File, writer_lives: impl Fn() -> bool) -> Result<()> {
    use std::io::Read;
    let mut byte = [0u8; 1];
    loop {
        match fifo.read(&mut byte) {
            Ok(1) => return Ok(()),
            Err(e) if e.kind() != ErrorKind::WouldBlock => return Err(e).context("read the fifo"),
            _ if !writer_lives() => bail!("the process ended before it was released"),
            _ => std::thread::sleep(std::time::Duration::from_millis(1)),
        }
    }
}

/// Remove the groups `create` made at `cgroup` below each hierarchy's
/// root: chapter 05's, and the v1 devices group of the device policy.
pub fn remove_cgroups(cgroup: &Path) -> Result<()> {
    let group = ch05::new_group_at(ch05::detect_version()?, cgroup);
    pfs_state::lock("cgroups").and_then(|_lock| group.remove())?;
    let devices = Path::new(pfs_security::devices::DEVICES).join(cgroup);
    pfs_security::devices::remove(&devices)
}

/// `create`'s side: the child says "r" once it waits for start; if the
/// pipe closes first, the child failed: collect it.
pub fn wait_until_ready(
    child: nix::unistd::Pid,
    reader: std::os::fd::OwnedFd,
    writer: std::os::fd::OwnedFd,
) -> Result<ch01::Child> {
    drop(writer); // ours: without it, a child that dies reads as EOF
    let mut ready = [0u8; 1];
    match std::io::Read::read(&mut std::fs::File::from(reader), &mut ready)
        .context("wait for the child")?
    {
        1 => Ok(ch01::Child::Running(child)),
        _ => Ok(ch01::Child::Exited(ch01::wait_for_exit(child)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_runcs_rule() {
        for good in ["a", "web-1", "a.b_c+d", "0123abcdef"] {
            assert!(check_id(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "../x"] {
            let error = check_id(bad).unwrap_err().to_string();
            assert!(error.starts_with("invalid container id"), "{error}");
        }
    }

    #[test]
    fn a_record_is_read_back_as_written() {
        let root = std::env::temp_dir().join(format!("pfs-oci-state-{}", std::process::id()));
        let mut record = Record::new("t1", Path::new("/b"), Path::new("g/t1"), HashMap::new());
        record.reserve(&root).unwrap();
        record.status = "created".into();
        record.pid = Some(42);
        record.start_time = Some(7);
        record.save(&root).unwrap();
        assert_eq!(Record::load(&root, "t1").unwrap(), record);
        let taken = record.reserve(&root).unwrap_err().to_string();
        assert!(taken.contains("exists already"), "{taken}");
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn our_own_start_time_is_read() {
        assert!(start_time(std::process::id()).is_some());
    }
}
