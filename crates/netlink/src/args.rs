//! The network options that `run`, `cleanup` and `doctor` share, in chapter
//! 03 and every chapter after it: argument plumbing, not a lesson.
//!
//! Defaults: the bridge `pfs0` with subnet `10.200.0.0/24` (gateway
//! `10.200.0.1`). Docker uses 172.17.0.0/16, podman 10.88.0.0/16,
//! Kubernetes (flannel) 10.244.0.0/16 and services 10.96.0.0/12, k3s
//! 10.42.0.0/16: none of them overlaps. Change them with `--bridge` and
//! `--subnet`, or `PFS_BRIDGE` and `PFS_SUBNET`.

/// Our bridge's default name (15 bytes at most, the kernel's IFNAMSIZ).
pub const DEFAULT_BRIDGE: &str = "pfs0";
/// Our default subnet: used by no common tool (see the module docs).
pub const DEFAULT_SUBNET: &str = "10.200.0.0/24";

/// The bridge and subnet, shared by `run` and `cleanup`.
#[derive(clap::Args, Debug, Clone)]
#[group(skip)]
pub struct BridgeArgs {
    /// Name of the host's bridge that containers are plugged into
    #[arg(long, value_name = "NAME", env = "PFS_BRIDGE", default_value = DEFAULT_BRIDGE)]
    pub bridge: String,
    /// Subnet of the bridge: its first address is the gateway, the others go to containers
    #[arg(long, value_name = "CIDR", env = "PFS_SUBNET", default_value = DEFAULT_SUBNET)]
    pub subnet: String,
}

/// Options of `cleanup`, in chapter 03 and the next ones.
#[derive(clap::Args, Debug)]
pub struct CleanupArgs {
    /// Also remove the bridge (refused while a container uses it)
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub bridge: BridgeArgs,
}
