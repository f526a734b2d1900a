//! The options of `ch06 pod ...`, parsed by clap, and the checks that
//! come before any work.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use ch01::{Layer, Process};
use ch03::ipam::Subnet;
use ch04::ImageDefaults;
use ch05::{Limits, Version};
use pfs_cli::volume::{in_mount_order, split_bind, Source, Volume};
use pfs_state::names::check_name;
use pfs_state::pods::{self, check_container_name, check_pod_name, Pod};

/// How long `pod stop` and `pod rm` give containers after SIGTERM (as
/// `docker stop` does).
pub const DEFAULT_TIMEOUT: u64 = 10;

/// The `pod` subcommands of `ch06`; `L` is a later chapter's options of
/// `create`, `run` and `exec`, and the layers they add ([`PodLayers`]).
#[derive(clap::Subcommand)]
pub enum PodCommand<L: PodLayers = NoLayers> {
    /// Start a pod: its pause process, in new network, IPC and UTS
    /// namespaces, with one address on the bridge
    Create {
        #[command(flatten)]
        args: CreateArgs,
        #[command(flatten)]
        more: L,
    },
    /// Run CMD in a new container that joins the pod's namespaces
    Run {
        #[command(flatten)]
        args: PodRunArgs,
        #[command(flatten)]
        more: L,
    },
    /// Run CMD inside a running container of the pod (like `docker exec`)
    Exec {
        #[command(flatten)]
        args: ExecArgs,
        #[command(flatten)]
        more: L,
    },
    /// List the containers of one pod, or of all
    Ps { pod: Option<String> },
    /// List the pods
    Ls,
    /// Print what a detached container (or `pause`) wrote
    Logs { pod: String, container: String },
    /// Stop the pod's containers, then pause; keep its record and logs
    Stop(StopArgs),
    /// Stop the pod, and remove everything of it
    Rm(StopArgs),
}

/// What a later chapter adds to every process of a pod (chapter 07
/// hardens them), with its options. Each method's default adds nothing.
pub trait PodLayers: clap::Args {
    /// More layers for a new process of `pod`: pause (`name` is "pause")
    /// or a container.
    fn layers(&self, _pod: &Pod, _name: &str) -> Result<Vec<Box<dyn Layer>>> {
        Ok(Vec::new())
    }

    /// More layers for `pod exec`'s process, which joins container `name`.
    fn exec_layers(&self, _pod: &Pod, _name: &str) -> Result<Vec<Box<dyn Layer>>> {
        Ok(Vec::new())
    }

    /// Undo what the layers made that outlives the pod's processes, once
    /// they are gone (`pod stop`, `pod rm`, `cleanup`).
    fn release(_pod: &Pod) -> Result<()> {
        Ok(())
    }
}

/// The commands of a chapter that runs containers and pods (chapter 07):
/// `R` is its `run` options, `L` what it adds to pods.
#[derive(clap::Subcommand)]
pub enum RunPodOrCleanup<R: clap::Args, L: PodLayers> {
    /// Run CMD in a container (see `run --help` for this chapter's options)
    Run(Box<R>),
    /// Create, run in, inspect and remove pods
    #[command(subcommand)]
    Pod(PodCommand<L>),
    /// Remove pods whose pause is gone, and what killed runs left; with
    /// --all also the bridge
    Cleanup(ch03::CleanupArgs),
}

/// Chapter 06's pods: no more options, no more layers.
#[derive(clap::Args, Debug)]
pub struct NoLayers {}

impl PodLayers for NoLayers {}

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
    /// An empty directory the pod's containers may mount (`pod run -v
    /// NAME:/path`), removed with the pod: Kubernetes' `emptyDir`
    #[arg(long = "volume", value_name = "NAME")]
    pub volumes: Vec<String>,
    /// The whole pod's limits (chapter 05's options)
    #[command(flatten)]
    pub limits: ch05::LimitArgs,
    #[command(flatten)]
    pub bridge: ch03::BridgeArgs,
}

impl CreateArgs {
    /// `pod create`'s checks, before any work, in this order: the pod's
    /// name, its hostname (`--hostname`, or the pod's name with '-' for
    /// '_', which a hostname may not hold), the volumes' names, the bridge, the subnet, the
    /// limits, that we are root, the cgroup version. Returns the pod's
    /// record (not saved yet), its subnet, its limits and the version.
    pub fn check(&self) -> Result<(Pod, Subnet, Limits, Version)> {
        check_pod_name(&self.name)?;
        let default = || self.name.replace('_', "-");
        let hostname = self.hostname.clone().unwrap_or_else(default);
        ch02::check_hostname(&hostname)?;
        for name in &self.volumes {
            if check_name(name).is_err() {
                bail!("invalid volume name {name:?}: use 1 to 64 letters, digits, '_', '.' or '-'");
            }
        }
        ch03::check_link_name(&self.bridge.bridge)?;
        let subnet = Subnet::parse(&self.bridge.subnet)?;
        let limits = self.limits.limits()?;
        ch01::require_root()?;
        let version = ch05::detect_version()?;
        let (bridge, cidr) = (&self.bridge.bridge, &self.bridge.subnet);
        let mut pod = Pod::new(&self.name, &hostname, self.share_pid, bridge, cidr);
        pod.volumes = self.volumes.clone();
        Ok((pod, subnet, limits, version))
    }
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
    /// Mount the pod's volume NAME at PATH, read-only with :ro
    #[arg(short = 'v', long = "volume", value_name = "NAME:PATH[:ro]", value_parser = check_volume)]
    pub volumes: Vec<String>,
    #[command(flatten)]
    pub process: ch04::ProcessArgs,
    /// The command to run in the container, and its arguments (after `--`)
    #[arg(value_name = "CMD", trailing_var_arg = true)]
    pub command: Vec<String>,
}

impl PodRunArgs {
    /// The pod's volumes `-v` names, as chapter 04 mounts them; a name the
    /// pod does not have is one line.
    pub fn volumes(&self, pod: &Pod) -> Result<Vec<Volume>> {
        let mut volumes = Vec::new();
        for text in &self.volumes {
            let (name, target, read_only) = split_bind(text).map_err(anyhow::Error::msg)?;
            if !pod.volumes.iter().any(|known| known == name) {
                bail!(
                    "pod {:?} has no volume {name:?}: create the pod with --volume {name}",
                    pod.name
                );
            }
            let source = Source::Host(crate::files::volume_dir(pod, name));
            let target = target.into();
            volumes.push(Volume {
                source,
                target,
                read_only,
            });
        }
        Ok(in_mount_order(volumes))
    }
}

/// `NAME:PATH[:ro]` (clap's `value_parser` for `pod run -v`).
fn check_volume(text: &str) -> Result<String, String> {
    split_bind(text).map(|_| text.to_string())
}

/// Options of `pod exec`.
#[derive(clap::Args, Debug)]
pub struct ExecArgs {
    pub pod: String,
    /// The running container to join
    pub container: String,
    #[command(flatten)]
    pub process: ch04::ProcessArgs,
    /// The command to run, and its arguments (after `--`)
    #[arg(value_name = "CMD", trailing_var_arg = true)]
    pub command: Vec<String>,
}

impl ExecArgs {
    /// The process `pod exec` runs in the container whose first process
    /// is `pid`: that process's environment, then `-e`; `-u` read against
    /// its root's /etc/passwd; a `-w` that exists there (as `docker exec`).
    pub fn process(&self, pid: u32, hostname: &str) -> Result<Process> {
        let environ = std::fs::read(format!("/proc/{pid}/environ"))
            .with_context(|| format!("read the environment of container {}", self.container))?;
        let container = ImageDefaults {
            env: environ
                .split(|byte| *byte == 0)
                .filter(|entry| !entry.is_empty())
                .map(|entry| String::from_utf8_lossy(entry).into_owned())
                .collect(),
            ..Default::default()
        };
        let root = PathBuf::from(format!("/proc/{pid}/root"));
        let process = self
            .process
            .in_root(&self.command, &root, &container, hostname)?;
        Ok(Process {
            make_cwd: false,
            ..process
        })
    }
}

/// Options of `pod stop` and `pod rm`.
#[derive(clap::Args, Debug)]
pub struct StopArgs {
    pub pod: String,
    /// Seconds the containers get to exit after SIGTERM, before SIGKILL
    #[arg(long, short = 't', value_name = "S", default_value_t = DEFAULT_TIMEOUT)]
    pub timeout: u64,
}

/// What `pod run` and `pod exec` check first, in this order: the pod's and
/// the container's names, that we are root, the cgroup version, and that
/// the pod exists and its pause runs.
pub fn load_running_pod(pod: &str, container: &str) -> Result<(Pod, Version)> {
    check_pod_name(pod)?;
    check_container_name(container)?;
    ch01::require_root()?;
    let version = ch05::detect_version()?;
    Ok((pods::load_running(pod)?, version))
}
