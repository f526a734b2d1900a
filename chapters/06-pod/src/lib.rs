//! # Chapter 06: the pod
//!
//! "For Kubernetes the pod is the smallest unit." Its containers share the
//! network namespace of a *pause container*, which has two missions: hold
//! the namespaces for all containers of the pod, and, when the pod shares
//! one PID namespace, be its PID 1 and reap zombie processes.
//!
//! This chapter adds no new kind of namespace: it *shares* them.
//!
//! - `ch06 pod create NAME` starts the pause program (`pause/src/main.rs`)
//!   with chapter 01's runtime, detached, in new network, IPC and UTS
//!   namespaces (its own PID namespace, where it is PID 1, is shared with
//!   `--share-pid`), with chapter 03's address on the bridge, chapter 04's
//!   root filesystem (holding only pause) and a pod-level cgroup
//!   (chapter 05). Its namespaces are bind-mounted into the pod's state
//!   directory ([`layers::KeepNamespaces`]).
//! - `ch06 pod run NAME --name C -- CMD` starts a container that *joins*
//!   those namespaces with `setns` ([`layers::JoinPod`]), with a mount
//!   namespace, root filesystem and cgroup of its own.
//! - `ch06 pod rm NAME` stops the containers, then pause, and undoes
//!   everything.
//!
//! The pods' records are kept by the `pfs_state` crate (`pods`); `pod ls`,
//! `pod ps`, `pod logs`, `cleanup` and `doctor` are in [`ops`].

pub mod detach;
pub mod layers;
pub mod ops;

use std::fs::{self, File};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use ch01::{explain, Child, Layer};
use ch03::ipam::Subnet;
use ch05::{Limits, Version};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use pfs_state::pods::{self, check_container_name, check_pod_name, Pod, State};
use pfs_state::process::{is_running, wait_until_gone};
use pfs_state::{leases, names};

use layers::{JoinContainer, JoinPod, KeepNamespaces, PodGroup};
pub use ops::{cleanup, doctor, list, logs, ps, CleanupArgs};

/// The pause program, built by build.rs as a small static binary and
/// embedded here: `ch06` writes it into the pause's root filesystem.
pub const PAUSE: &[u8] = include_bytes!(env!("PAUSE_BINARY"));

/// How long `pod stop` and `pod rm` give containers after SIGTERM (as
/// `docker stop` does).
pub const DEFAULT_TIMEOUT: u64 = 10;

/// Options of `pod create`.
#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// The pod's name: 1 to 64 letters, digits, '_', '.' or '-'
    pub name: String,
    /// Share one PID namespace: pause is PID 1 of every container, and
    /// reaps every orphan (Kubernetes' `shareProcessNamespace: true`)
    #[arg(long)]
    pub share_pid: bool,
    /// The pod's hostname, shared by its containers (default: the pod's name)
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,
    /// The whole pod's limits (chapter 05's options)
    #[command(flatten)]
    pub limits: ch05::LimitArgs,
    #[command(flatten)]
    pub bridge: ch03::BridgeArgs,
}

/// Options of `pod run`.
#[derive(clap::Args, Debug)]
pub struct PodRunArgs {
    /// The pod to run the container in
    pub pod: String,
    /// The container's name, unique in the pod
    #[arg(long, value_name = "NAME")]
    pub name: String,
    /// The root filesystem: busybox, debian, an image pulled with
    /// `ch04 pull`, or a directory (/path or ./path)
    #[arg(long, value_name = "ROOTFS", default_value = "busybox")]
    pub rootfs: String,
    /// Run in the background; its output goes to a log (`ch06 pod logs`)
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// The command to run in the container, and its arguments (after `--`)
    #[arg(value_name = "CMD", trailing_var_arg = true)]
    pub command: Vec<String>,
}

/// Options of `pod exec`.
#[derive(clap::Args, Debug)]
pub struct ExecArgs {
    pub pod: String,
    /// The running container to join
    pub container: String,
    /// The command to run, and its arguments (after `--`)
    #[arg(value_name = "CMD", trailing_var_arg = true)]
    pub command: Vec<String>,
}

/// Options of `pod stop` and `pod rm`.
#[derive(clap::Args, Debug)]
pub struct StopArgs {
    pub pod: String,
    /// Seconds the containers get to exit after SIGTERM, before SIGKILL
    #[arg(long, short = 't', value_name = "S", default_value_t = DEFAULT_TIMEOUT)]
    pub timeout: u64,
}

// ---------------------------------------------------------------------------
// pod create
// ---------------------------------------------------------------------------

// ANCHOR: create
/// `pod create`: check everything, claim the name, start pause, and record
/// the pod. Prints the pod's name.
pub fn create(args: &CreateArgs) -> Result<i32> {
    check_pod_name(&args.name)?;
    let hostname = match &args.hostname {
        Some(name) => name.clone(),
        None => args.name.replace('_', "-"), // a hostname has no '_'
    };
    ch02::check_hostname(&hostname)?;
    ch03::check_link_name(&args.bridge.bridge)?;
    let subnet = Subnet::parse(&args.bridge.subnet)?;
    let limits = args.limits.limits()?;
    ch01::require_root()?;
    let version = ch05::detect_version()?;

    let mut pod = Pod::new(
        &args.name,
        &hostname,
        args.share_pid,
        &args.bridge.bridge,
        &args.bridge.subnet,
    );
    pods::reserve(&pod)?;
    match start_pause(&pod, subnet, limits, version) {
        Ok(Child::Running(pause)) => {
            if let Err(e) = record_running(&mut pod, pause) {
                let _ = stop_processes(&pod, Duration::ZERO);
                let _ = release(&pod, version);
                forget(&pod);
                return Err(e);
            }
            println!("{}", pod.name);
            Ok(0)
        }
        Ok(Child::Exited(code)) => {
            forget(&pod);
            Ok(code)
        }
        Err(e) => {
            forget(&pod);
            Err(e)
        }
    }
}

/// Pause, started by chapter 01's runtime in the background, with the
/// layers of chapters 02 to 05 and this chapter's.
fn start_pause(pod: &Pod, subnet: Subnet, limits: Limits, version: Version) -> Result<Child> {
    let pause_root = pause_rootfs()?;
    let network =
        ch03::Bridged::new(&pod.bridge, subnet, None, pfs_state::state_dir()).with_veth_id(&pod.id);
    let mut layers: Vec<Box<dyn Layer>> = vec![
        Box::new(ch02::MountProc),
        Box::new(ch02::Hostname(Some(pod.hostname.clone()))),
        Box::new(ch02::Ipc),
        Box::new(network),
        Box::new(KeepNamespaces::new(pod.ns_dir(), pod.share_pid)),
        Box::new(PodGroup::new(
            ch05::new_group_at(version, &pod.cgroup()),
            limits,
        )),
        Box::new(ch05::Cgroup::new(
            ch05::new_group_at(version, &pod.cgroup().join("pause")),
            Limits::default(),
        )),
        Box::new(ch04::Rootfs {
            lower: pause_root,
            dir: data_dir(pod).join("pause"),
            keep: false,
            read_only: true,
        }),
    ];
    let log = create_log(&log_path(pod, "pause"))?;
    detach::run_detached(&["/pause".to_string()], &mut layers, log)
}
// ANCHOR_END: create

/// A root filesystem holding nothing but the pause program, made once
/// (per version of pause) under the data directory.
pub fn pause_rootfs() -> Result<PathBuf> {
    let dir = ch04::data_dir()
        .join("rootfs")
        .join(format!("pause-{:016x}", fnv1a(PAUSE)));
    if !dir.is_dir() {
        ch04::build_atomically(&dir, |tmp| {
            use std::os::unix::fs::PermissionsExt;
            let binary = tmp.join("pause");
            fs::write(&binary, PAUSE)?;
            fs::set_permissions(&binary, fs::Permissions::from_mode(0o755))?;
            Ok(())
        })?;
    }
    Ok(dir)
}

/// A short fingerprint of the pause binary (FNV-1a), to name its rootfs.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `DATA_DIR/pods/NAME`: the pod's overlays and logs, next to chapter 04's.
fn data_dir(pod: &Pod) -> PathBuf {
    ch04::data_dir().join("pods").join(&pod.name)
}

/// Where a detached container's output goes.
fn log_path(pod: &Pod, container: &str) -> PathBuf {
    data_dir(pod).join("logs").join(format!("{container}.log"))
}

/// Open (or empty) a log file, making its directory.
fn create_log(path: &Path) -> Result<File> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    File::create(path).with_context(|| format!("create {}", path.display()))
}

/// Pause runs: hand the address over to it, and write the record.
fn record_running(pod: &mut Pod, pause: Pid) -> Result<()> {
    pod.address = Some(adopt_lease(pod, pause)?);
    pod.pause = Some(pause.as_raw() as u32);
    pod.state = State::Running;
    pod.save()
}

// ANCHOR: adopt_lease
/// Chapter 03 leases an address to the process that runs the container,
/// and `cleanup` frees the leases of processes that are gone. `pod create`
/// exits at once, but the pod stays: pause becomes the lease's owner.
fn adopt_lease(pod: &Pod, pause: Pid) -> Result<Ipv4Addr> {
    let path = leases::path(&pfs_state::state_dir(), &pod.bridge);
    explain::step(
        &format!(
            "flock({}) and give {} to {pause}",
            path.display(),
            pod.veth()
        ),
        "(our IPAM: the lease now belongs to pause)",
    );
    leases::adopt(&path, &pod.veth(), pause.as_raw() as u32)
}
// ANCHOR_END: adopt_lease

/// Remove a pod's record and files (nothing of it runs any more).
fn forget(pod: &Pod) {
    pods::forget(pod);
    let _ = fs::remove_dir_all(data_dir(pod));
}

// ---------------------------------------------------------------------------
// pod run, pod exec
// ---------------------------------------------------------------------------

// ANCHOR: run
/// `pod run`: a container that joins the pod. Chapter 01's runtime, with
/// chapter 03's name registry (in the pod's directory), a mount namespace
/// (chapter 02), the pod's namespaces, a cgroup inside the pod's (chapter
/// 05) and a root filesystem (chapter 04).
pub fn run(args: &PodRunArgs) -> Result<i32> {
    check_pod_name(&args.pod)?;
    check_container_name(&args.name)?;
    ch01::require_root()?;
    let version = ch05::detect_version()?;
    let pod = pods::load_running(&args.pod)?;
    let lower = ch04::rootfs::resolve(&args.rootfs)?;
    forget_exited_container(&pod, &args.name, version)?;

    let mut layers: Vec<Box<dyn Layer>> = vec![
        Box::new(ch03::Name::new(pod.state_dir(), &args.name)),
        Box::new(ch02::MountProc),
        Box::new(JoinPod::new(pod.ns_dir(), pod.share_pid)),
        Box::new(ch05::Cgroup::new(
            ch05::new_group_at(version, &pod.cgroup().join(&args.name)),
            Limits::default(),
        )),
        Box::new(ch04::Rootfs {
            lower,
            dir: data_dir(&pod).join("containers").join(&args.name),
            keep: false,
            read_only: false,
        }),
    ];
    if !args.detach {
        return ch01::run(&args.command, &mut layers);
    }
    let log = create_log(&log_path(&pod, &args.name))?;
    match detach::run_detached(&args.command, &mut layers, log)? {
        Child::Running(_) => {
            println!("{}", args.name);
            Ok(0)
        }
        Child::Exited(code) => Ok(code),
    }
}
// ANCHOR_END: run

/// A detached container that ended keeps its name, cgroup and files until
/// its pod is removed, or until a new container takes its name: remove
/// them now. (A name whose container runs stays taken.)
fn forget_exited_container(pod: &Pod, name: &str, version: Version) -> Result<()> {
    if pods::has_exited(pod, name) {
        ch05::new_group_at(version, &pod.cgroup().join(name)).remove()?;
        let dir = data_dir(pod).join("containers").join(name);
        let _ = fs::remove_dir_all(dir);
        names::unregister(&pod.state_dir(), name)?;
    }
    Ok(())
}

/// `pod exec`: run a command inside a running container.
pub fn exec(args: &ExecArgs) -> Result<i32> {
    check_pod_name(&args.pod)?;
    check_container_name(&args.container)?;
    ch01::require_root()?;
    let version = ch05::detect_version()?;
    let pod = pods::load_running(&args.pod)?;
    let pid = pods::running_container(&pod, &args.container)?;
    let group = ch05::new_group_at(version, &pod.cgroup().join(&args.container));
    let mut layers: Vec<Box<dyn Layer>> = vec![Box::new(JoinContainer::new(pid, group))];
    ch01::run(&args.command, &mut layers)
}

// ---------------------------------------------------------------------------
// pod stop, pod rm
// ---------------------------------------------------------------------------

// ANCHOR: remove
/// `pod stop` (`keep_record`) and `pod rm`: stop every process of the pod,
/// then undo everything. `stop` keeps the record (shown as stopped) and the
/// logs; `rm` removes them too.
pub fn remove(args: &StopArgs, keep_record: bool) -> Result<i32> {
    check_pod_name(&args.pod)?;
    ch01::require_root()?;
    let version = ch05::detect_version()?;
    let _lock = pods::lock_pods()?;
    let mut pod = pods::load(&args.pod)?;
    if pod.state == State::Creating && is_running(pod.creator) {
        bail!("pod {:?} is being created: try again", pod.name);
    }
    if pod.state != State::Stopped {
        stop_processes(&pod, Duration::from_secs(args.timeout))?;
        release(&pod, version)?;
    }
    if keep_record {
        pod.state = State::Stopped;
        pod.pause = None;
        pod.address = None;
        pod.save()?;
    } else {
        forget(&pod);
    }
    Ok(0)
}
// ANCHOR_END: remove

// ANCHOR: stop_processes
/// SIGTERM to every container; SIGKILL to those still running after
/// `timeout`; then the same to pause, which exits at once on SIGTERM.
/// (With a shared PID namespace, the kernel kills every process left in it
/// when pause, its PID 1, dies.)
fn stop_processes(pod: &Pod, timeout: Duration) -> Result<()> {
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
fn stop_gracefully(pids: &[u32], timeout: Duration) {
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

fn send_signal(pid: u32, signal: Signal) {
    explain::step(
        &format!("kill({pid}, {signal})"),
        &format!("kill -{} {pid}", signal.as_str().trim_start_matches("SIG")),
    );
    let _ = kill(Pid::from_raw(pid as i32), signal);
}

// ANCHOR: release
/// Undo what `pod create` and `pod run` made, once no process of the pod
/// runs: the cgroups (containers', pause's, the pod's), the bind-mounted
/// namespaces, the address, the containers' files. The veth pair needs no
/// step: with its last process and its bind mount gone, the pod's network
/// namespace dies, and the kernel destroys its links with it.
fn release(pod: &Pod, version: Version) -> Result<()> {
    let mut groups: Vec<String> = pods::containers(pod).into_iter().map(|(n, _)| n).collect();
    groups.push("pause".into());
    for name in groups {
        ch05::new_group_at(version, &pod.cgroup().join(name)).remove()?;
    }
    ch05::new_group_at(version, &pod.cgroup()).remove()?;

    for kind in ["net", "ipc", "uts", "pid"] {
        layers::unmount_namespace(&pod.ns_dir().join(kind))?;
    }
    let _ = fs::remove_dir(pod.ns_dir());

    let path = leases::path(&pfs_state::state_dir(), &pod.bridge);
    explain::step(
        &format!("flock({}) and drop {}", path.display(), pod.veth()),
        "(our IPAM: give the address back)",
    );
    leases::release_veth(&path, &pod.veth())?;

    let _ = fs::remove_dir_all(pod.state_dir().join("names"));
    for sub in ["pause", "containers"] {
        let dir = data_dir(pod).join(sub);
        if dir.exists() {
            fs::remove_dir_all(&dir).with_context(|| format!("remove {}", dir.display()))?;
        }
    }
    Ok(())
}
// ANCHOR_END: release
