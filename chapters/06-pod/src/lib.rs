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
//!   namespace, root filesystem and cgroup of its own, and the pod's
//!   volumes it asks for (`-v NAME:/path`, chapter 04's mounts).
//! - `ch06 pod exec NAME C -- CMD` joins a running container
//!   ([`layers::JoinContainer`]).
//! - `ch06 pod rm NAME` stops the containers, then pause, and undoes
//!   everything; `ch06 cleanup` does the same for pods whose pause died.
//!
//! Here is the lesson: the layers, and the commands that put them
//! together. What a pod runtime needs around it is machinery, in the
//! `pfs_pod` crate: the commands' options and first checks, running
//! detached (pause must outlive `ch06`), the pod's files and logs,
//! stopping processes with a grace period, `pod logs` and `doctor`. The
//! pods' records are kept by the `pfs_state` crate (`pods`), whose tables
//! are `pod ls` and `pod ps`.

pub mod layers;

use std::fs;
use std::net::Ipv4Addr;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use ch01::{explain, Child, Layer, Process};
use ch03::ipam::Subnet;
use ch05::{Limits, Version};
use nix::unistd::Pid;
use pfs_pod::{data_dir, detach, forget, log_path, stop_processes};
use pfs_pod::{CreateArgs, ExecArgs, PodCommand, PodLayers, PodRunArgs, StopArgs};
use pfs_state::pods::{self, check_pod_name, Pod, State};
use pfs_state::process::is_running;
use pfs_state::{cgroupfs, leases};

use layers::{JoinContainer, JoinPod, KeepNamespaces, PodGroup};

/// The pause program, built by build.rs as a small static binary and
/// embedded here: `ch06` writes it into the pause's root filesystem.
pub const PAUSE: &[u8] = include_bytes!(env!("PAUSE_BINARY"));

// ANCHOR: pod
/// `ch06 pod ...` (and `ch07 pod ...`, whose options and layers `L` adds
/// to each process of the pod).
pub fn pod<L: PodLayers>(command: PodCommand<L>) -> Result<i32> {
    match command {
        PodCommand::Create { args, more } => create(&args, &more),
        PodCommand::Run { args, more } => run(&args, &more),
        PodCommand::Exec { args, more } => exec(&args, &more),
        PodCommand::Ps { pod } => pfs_pod::ps(pod.as_deref()),
        PodCommand::Ls => pfs_pod::list(),
        PodCommand::Logs { pod, container } => pfs_pod::logs(&pod, &container),
        PodCommand::Stop(args) => remove::<L>(&args, true),
        PodCommand::Rm(args) => remove::<L>(&args, false),
    }
}
// ANCHOR_END: pod

// ---------------------------------------------------------------------------
// pod create
// ---------------------------------------------------------------------------

// ANCHOR: create
/// `pod create`: check everything (`CreateArgs::check`), claim the name,
/// make the pod's volumes, start pause, and record the pod. Prints the
/// pod's name.
pub fn create<L: PodLayers>(args: &CreateArgs, more: &L) -> Result<i32> {
    let (mut pod, subnet, limits, version) = args.check()?;
    pods::reserve(&pod)?;
    match pfs_pod::make_volumes(&pod)
        .and_then(|()| start_pause(&pod, subnet, limits, version, more))
    {
        Ok(Child::Running(pause)) => {
            ch01::fault::point("after-pause-started");
            if let Err(e) = record_running(&mut pod, pause) {
                let _ = stop_processes(&pod, Duration::ZERO);
                let _ = release::<L>(&pod, version);
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
/// layers of chapters 02 to 05, this chapter's, and `more`'s.
fn start_pause(
    pod: &Pod,
    subnet: Subnet,
    limits: Limits,
    version: Version,
    more: &impl PodLayers,
) -> Result<Child> {
    let pause_root = pfs_pod::pause_rootfs(PAUSE)?;
    let network =
        ch03::Bridged::new(&pod.bridge, subnet, None, pfs_state::state_dir()).with_veth_id(&pod.id);
    let mut layers: Vec<Box<dyn Layer>> = vec![
        Box::new(ch02::MountProc),
        Box::new(ch02::Hostname(Some(pod.hostname.clone()))),
        Box::new(ch02::Ipc),
        Box::new(network),
        Box::new(KeepNamespaces::new(pod.ns_dir(), pod.share_pid)),
        Box::new(PodGroup(ch05::Cgroup::new(
            ch05::new_group_at(version, &pod.cgroup()),
            limits,
        ))),
        Box::new(ch05::Cgroup::new(
            ch05::new_group_at(version, &pod.cgroup().join("pause")),
            Limits::default(),
        )),
        Box::new(ch04::Rootfs {
            lower: pause_root,
            dir: data_dir(pod).join("pause"),
            keep: false,
            read_only: true,
            volumes: Vec::new(),
        }),
    ];
    layers.extend(more.layers(pod, "pause")?);
    let log = log_path(pod, "pause");
    let pause = Process::new(vec!["/pause".to_string()]);
    detach::run_detached(&pause, &mut layers, &log)
}
// ANCHOR_END: create

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

// ---------------------------------------------------------------------------
// pod run, pod exec
// ---------------------------------------------------------------------------

// ANCHOR: run
/// `pod run`: a container that joins the pod. Chapter 01's runtime, with
/// chapter 03's name registry (in the pod's directory), a mount namespace
/// (chapter 02), the pod's namespaces, a cgroup inside the pod's (chapter
/// 05) and a root filesystem with the pod's volumes it asks for (chapter
/// 04); then `more`'s layers.
pub fn run(args: &PodRunArgs, more: &impl PodLayers) -> Result<i32> {
    let (pod, version) = pfs_pod::load_running_pod(&args.pod, &args.name)?;
    let lower = ch04::rootfs::resolve(&args.rootfs)?;
    let volumes = args.volumes(&pod)?;
    let process = ch04::process_in(&lower, &args.process, &args.command, &pod.hostname)?;
    pfs_pod::forget_exited_container(&pod, &args.name, version)?;

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
            volumes,
        }),
    ];
    layers.extend(more.layers(&pod, &args.name)?);
    if !args.detach {
        return ch01::run(&process, &mut layers);
    }
    let log = log_path(&pod, &args.name);
    match detach::run_detached(&process, &mut layers, &log)? {
        Child::Running(_) => {
            println!("{}", args.name);
            Ok(0)
        }
        Child::Exited(code) => Ok(code),
    }
}
// ANCHOR_END: run

/// `pod exec`: run a command inside a running container (with `more`'s
/// layers).
pub fn exec(args: &ExecArgs, more: &impl PodLayers) -> Result<i32> {
    let (pod, version) = pfs_pod::load_running_pod(&args.pod, &args.container)?;
    let pid = pods::running_container(&pod, &args.container)?;
    let group = ch05::new_group_at(version, &pod.cgroup().join(&args.container));
    let process = args.process(pid, &pod.hostname)?;
    let mut layers: Vec<Box<dyn Layer>> = vec![Box::new(JoinContainer::new(pid, group))];
    layers.extend(more.exec_layers(&pod, &args.container)?);
    ch01::run(&process, &mut layers)
}

// ---------------------------------------------------------------------------
// pod stop, pod rm, cleanup
// ---------------------------------------------------------------------------

// ANCHOR: remove
/// `pod stop` (`keep_record`) and `pod rm`: stop every process of the pod,
/// then undo everything. `stop` keeps the record (shown as stopped) and the
/// logs; `rm` removes them too.
pub fn remove<L: PodLayers>(args: &StopArgs, keep_record: bool) -> Result<i32> {
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
        release::<L>(&pod, version)?;
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

// ANCHOR: release
/// Undo what `pod create` and `pod run` made, once no process of the pod
/// runs: the cgroups (containers', pause's, the pod's), the bind-mounted
/// namespaces, the address, the containers' files. The veth pair needs no
/// step: with its last process and its bind mount gone, the pod's network
/// namespace dies, and the kernel destroys its links with it. Last, what
/// `L`'s layers left.
fn release<L: PodLayers>(pod: &Pod, version: Version) -> Result<()> {
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
    L::release(pod)
}
// ANCHOR_END: release

// ANCHOR: cleanup
/// `cleanup`: tear down the pods whose pause is gone (killed) or whose
/// `pod create` was killed, then what earlier chapters' killed runs left.
pub fn cleanup<L: PodLayers>(args: &ch03::CleanupArgs) -> Result<i32> {
    ch01::require_root()?;
    let version = ch05::detect_version()?;
    {
        let _lock = pods::lock_pods()?;
        pods::remove_dead(|pod| {
            stop_processes(pod, Duration::ZERO)?;
            release::<L>(pod, version)?;
            forget(pod);
            println!("removed pod {} (its pause was gone)", pod.name);
            Ok(())
        })?;
        // Pods killed with their whole state (a killed `ch06 demo`) left
        // only their cgroups.
        cgroupfs::remove_abandoned_groups(pods::PODS_GROUP, ch05::remove_group)?;
    }
    ch05::cleanup(&args.bridge, args.all)
}
// ANCHOR_END: cleanup

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_pause_is_a_small_static_elf_binary() {
        assert!(pfs_pod::is_static_binary(PAUSE));
        assert!(PAUSE.len() < 1 << 20, "{} bytes", PAUSE.len());
    }
}
