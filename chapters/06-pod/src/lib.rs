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

pub mod detach;
pub mod layers;
pub mod state;

use std::fs::{self, File};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use ch01::{explain, Child, Layer};
use ch03::ipam::{self, Subnet};
use ch05::{Limits, Version};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use layers::{JoinContainer, JoinPod, KeepNamespaces, PodGroup};
use state::{check_container_name, check_pod_name, is_running, Pod, State};

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
    state::reserve(&pod)?;
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
    let network = ch03::Bridged::new(&pod.bridge, subnet, None, ch03::names::state_dir())
        .with_veth_id(&pod.id);
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
            dir: pod.data_dir().join("pause"),
            keep: false,
            read_only: true,
        }),
    ];
    let log = create_log(&pod.log_path("pause"))?;
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
    let path = ipam::leases_path(&ch03::names::state_dir(), &pod.bridge);
    explain::step(
        &format!(
            "flock({}) and give {} to {pause}",
            path.display(),
            pod.veth()
        ),
        "(our IPAM: the lease now belongs to pause)",
    );
    ipam::with_leases(&path, |leases| {
        let lease = leases
            .iter_mut()
            .find(|lease| lease.veth == pod.veth())
            .context("the pod's address lease is gone")?;
        lease.owner = pause.as_raw() as u32;
        Ok(lease.address)
    })
}
// ANCHOR_END: adopt_lease

/// Remove a pod's record and files (nothing of it runs any more).
fn forget(pod: &Pod) {
    let _ = fs::remove_dir_all(pod.state_dir());
    let _ = fs::remove_dir_all(pod.data_dir());
}

// ---------------------------------------------------------------------------
// pod run, pod exec
// ---------------------------------------------------------------------------

/// A running pod, or one line saying why not.
fn running_pod(name: &str) -> Result<Pod> {
    let pod = state::load(name)?;
    if !pod.pause_is_running() {
        bail!("pod {name:?} is not running: {}", pod.status());
    }
    Ok(pod)
}

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
    let pod = running_pod(&args.pod)?;
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
            dir: pod.data_dir().join("containers").join(&args.name),
            keep: false,
            read_only: false,
        }),
    ];
    if !args.detach {
        return ch01::run(&args.command, &mut layers);
    }
    let log = create_log(&pod.log_path(&args.name))?;
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
    let exited = state::containers(pod)
        .into_iter()
        .any(|(n, pid)| n == name && pid.is_some_and(|pid| !is_running(pid)));
    if exited {
        ch05::new_group_at(version, &pod.cgroup().join(name)).remove()?;
        let dir = pod.data_dir().join("containers").join(name);
        let _ = fs::remove_dir_all(dir);
        ch03::names::unregister(&pod.state_dir(), name)?;
    }
    Ok(())
}

/// The PID of a running container of the pod.
fn container_pid(pod: &Pod, name: &str) -> Result<u32> {
    let registered = state::containers(pod)
        .into_iter()
        .find(|(n, _)| n == name)
        .with_context(|| format!("no container named {name:?} in pod {:?}", pod.name))?;
    match registered.1 {
        Some(pid) if is_running(pid) => Ok(pid),
        _ => bail!("container {name:?} of pod {:?} is not running", pod.name),
    }
}

/// `pod exec`: run a command inside a running container.
pub fn exec(args: &ExecArgs) -> Result<i32> {
    check_pod_name(&args.pod)?;
    check_container_name(&args.container)?;
    ch01::require_root()?;
    let version = ch05::detect_version()?;
    let pod = running_pod(&args.pod)?;
    let pid = container_pid(&pod, &args.container)?;
    let group = ch05::new_group_at(version, &pod.cgroup().join(&args.container));
    let mut layers: Vec<Box<dyn Layer>> = vec![Box::new(JoinContainer::new(pid, group))];
    ch01::run(&args.command, &mut layers)
}

// ---------------------------------------------------------------------------
// pod ls, pod ps, pod logs
// ---------------------------------------------------------------------------

/// `pod ls`: one line per pod.
pub fn list() -> Result<i32> {
    println!(
        "{:<16} {:<8} {:<8} {:<14} {:<10} {:<10} STATUS",
        "NAME", "ID", "PAUSE", "ADDRESS", "SHARE-PID", "CONTAINERS"
    );
    for pod in state::all() {
        let pause = pod.pause.map_or("-".into(), |p| p.to_string());
        let address = pod.address.map_or("-".into(), |a| a.to_string());
        let running = state::containers(&pod)
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

/// `pod ps [POD]`: one line per container.
pub fn ps(pod: Option<&str>) -> Result<i32> {
    let pods = match pod {
        Some(name) => vec![state::load(name)?],
        None => state::all(),
    };
    println!(
        "{:<16} {:<16} {:<8} {:<8} COMMAND",
        "POD", "CONTAINER", "PID", "STATUS"
    );
    for pod in pods {
        for (name, pid) in state::containers(&pod) {
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

/// What `/proc/PID/cmdline` holds, words separated by spaces.
fn command_line_of(pid: u32) -> String {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let words: Vec<String> = raw
        .split(|&b| b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect();
    words.join(" ")
}

/// `pod logs POD C`: what a detached container (or pause) printed.
pub fn logs(pod: &str, container: &str) -> Result<i32> {
    let pod = state::load(pod)?;
    ch03::names::check_name(container)?; // `pause` is allowed here
    let path = pod.log_path(container);
    match fs::read(&path) {
        Ok(bytes) => {
            use std::io::Write;
            std::io::stdout().write_all(&bytes)?;
            Ok(0)
        }
        Err(_) if state::containers(&pod).iter().any(|(n, _)| n == container) => {
            bail!("container {container:?} has no log: it runs in the foreground")
        }
        Err(_) => bail!("no container named {container:?} in pod {:?}", pod.name),
    }
}

// ---------------------------------------------------------------------------
// pod stop, pod rm, cleanup
// ---------------------------------------------------------------------------

// ANCHOR: remove
/// `pod stop` (`keep_record`) and `pod rm`: stop every process of the pod,
/// then undo everything. `stop` keeps the record (shown as stopped) and the
/// logs; `rm` removes them too.
pub fn remove(args: &StopArgs, keep_record: bool) -> Result<i32> {
    check_pod_name(&args.pod)?;
    ch01::require_root()?;
    let version = ch05::detect_version()?;
    let _lock = state::lock_pods()?;
    let mut pod = state::load(&args.pod)?;
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
    let containers: Vec<u32> = state::containers(pod)
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

/// Poll until none of `pids` runs (true) or `timeout` passed (false). They
/// are not our children (we cannot `waitpid` them): we look at /proc.
fn wait_until_gone(pids: &[u32], timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if !pids.iter().any(|&pid| is_running(pid)) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

// ANCHOR: release
/// Undo what `pod create` and `pod run` made, once no process of the pod
/// runs: the cgroups (containers', pause's, the pod's), the bind-mounted
/// namespaces, the address, the containers' files. The veth pair needs no
/// step: with its last process and its bind mount gone, the pod's network
/// namespace dies, and the kernel destroys its links with it.
fn release(pod: &Pod, version: Version) -> Result<()> {
    let mut groups: Vec<String> = state::containers(pod).into_iter().map(|(n, _)| n).collect();
    groups.push("pause".into());
    for name in groups {
        ch05::new_group_at(version, &pod.cgroup().join(name)).remove()?;
    }
    ch05::new_group_at(version, &pod.cgroup()).remove()?;

    for kind in ["net", "ipc", "uts", "pid"] {
        layers::unmount_namespace(&pod.ns_dir().join(kind))?;
    }
    let _ = fs::remove_dir(pod.ns_dir());

    release_lease(pod)?;

    let _ = fs::remove_dir_all(pod.state_dir().join("names"));
    for sub in ["pause", "containers"] {
        let dir = pod.data_dir().join(sub);
        if dir.exists() {
            fs::remove_dir_all(&dir).with_context(|| format!("remove {}", dir.display()))?;
        }
    }
    Ok(())
}
// ANCHOR_END: release

/// Give the pod's address back (found by its veth: a pod that failed while
/// starting has not recorded its address yet).
fn release_lease(pod: &Pod) -> Result<()> {
    let path = ipam::leases_path(&ch03::names::state_dir(), &pod.bridge);
    if !path.exists() {
        return Ok(());
    }
    explain::step(
        &format!("flock({}) and drop {}", path.display(), pod.veth()),
        "(our IPAM: give the address back)",
    );
    ipam::with_leases(&path, |leases| {
        leases.retain(|lease| lease.veth != pod.veth());
        Ok(())
    })
}

/// Options of `cleanup`.
#[derive(clap::Args, Debug)]
pub struct CleanupArgs {
    /// Also remove the bridge (refused while a container or pod uses it)
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub bridge: ch03::BridgeArgs,
}

// ANCHOR: cleanup
/// `cleanup`: tear down the pods whose pause is gone (killed) or whose
/// `pod create` was killed, then what earlier chapters' killed runs left.
pub fn cleanup(args: &CleanupArgs) -> Result<i32> {
    ch01::require_root()?;
    let version = ch05::detect_version()?;
    {
        let _lock = state::lock_pods()?;
        for pod in state::all() {
            let gone = match pod.state {
                State::Running => !pod.pause_is_running(),
                State::Creating => !is_running(pod.creator),
                State::Stopped => false,
            };
            if gone {
                stop_processes(&pod, Duration::ZERO)?;
                release(&pod, version)?;
                forget(&pod);
                println!("removed pod {} (its pause was gone)", pod.name);
            }
        }
        remove_abandoned_pod_groups()?;
    }
    ch05::remove_stale_groups()?;
    ch04::remove_stale_containers()?;
    ch03::cleanup(&args.bridge, args.all)
}
// ANCHOR_END: cleanup

/// A pod's cgroup in which no process is left, a minute after it was
/// made, belongs to no pod: its pod was killed with its whole state (a
/// killed `ch06 demo`), or lived in another state directory and is dead.
/// (A pod being created fills its group within milliseconds.)
fn remove_abandoned_pod_groups() -> Result<()> {
    for pods_group in pods_groups() {
        for group in ch05::subdirectories(&pods_group) {
            let mut members = ch05::subdirectories(&group);
            members.push(group.clone());
            let empty = members.iter().all(|g| {
                fs::read_to_string(g.join("cgroup.procs")).is_ok_and(|p| p.trim().is_empty())
            });
            let old = fs::metadata(&group)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age.as_secs() >= 60));
            if empty && old {
                for member in &members {
                    ch05::remove_group(member)?;
                }
                println!("removed abandoned cgroup {}", group.display());
            }
        }
        let _ = fs::remove_dir(&pods_group);
    }
    Ok(())
}

/// Our pods' parent group in every hierarchy: `/sys/fs/cgroup` on v2, each
/// `/sys/fs/cgroup/CONTROLLER` on v1.
fn pods_groups() -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    let mut hierarchies = vec![root.to_path_buf()];
    hierarchies.extend(ch05::subdirectories(root));
    hierarchies
        .into_iter()
        .map(|h| h.join(state::PODS_GROUP))
        .filter(|g| g.is_dir())
        .collect()
}

// ---------------------------------------------------------------------------
// doctor
// ---------------------------------------------------------------------------

/// `doctor`: chapter 03's checks, then cgroups, overlayfs, busybox, pause.
pub fn doctor(args: &ch03::BridgeArgs) -> Result<i32> {
    let mut missing = ch03::doctor(args)?;
    let mut check = |ok: bool, what: &str, fix: &str| {
        if ok {
            println!("ok      {what}");
        } else {
            println!("MISSING {what}: {fix}");
            missing = 1;
        }
    };
    let cgroups = ch05::describe_host();
    check(
        cgroups.is_ok(),
        cgroups.as_deref().unwrap_or("cgroups"),
        "no cgroup filesystem at /sys/fs/cgroup",
    );
    let filesystems = fs::read_to_string("/proc/filesystems").unwrap_or_default();
    check(
        filesystems.contains("overlay"),
        "overlayfs",
        "load it: modprobe overlay",
    );
    check(
        Path::new("/bin/busybox").exists(),
        "busybox, for the default root filesystem",
        "apt-get install busybox-static",
    );
    check(
        Path::new("/proc/self/ns/pid_for_children").exists(),
        "setns into a PID namespace (Linux 4.12)",
        "this kernel is too old for --share-pid",
    );
    check(
        is_static_binary(PAUSE),
        &format!(
            "pause program ({} kB, static), built in",
            PAUSE.len() / 1024
        ),
        "rebuild ch06",
    );
    Ok(missing)
}

/// An ELF binary that names no dynamic loader (the interpreter, which a
/// dynamic binary names in its first page: `/lib64/ld-linux-x86-64.so.2`).
fn is_static_binary(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(4096)];
    bytes.starts_with(b"\x7fELF") && !head.windows(7).any(|w| w == b"ld-linu")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_pause_is_a_static_elf_binary() {
        assert!(is_static_binary(PAUSE));
        assert!(!is_static_binary(&std::fs::read("/bin/sh").unwrap()));
        assert!(PAUSE.len() < 1 << 20, "{} bytes", PAUSE.len());
    }
}
