//! # pfs-pod: what a pod runtime needs around chapter 06's lesson
//!
//! This crate is machinery, not a lesson. Chapter 06 (`chapters/06-pod`)
//! teaches the pod: the pause process, its namespaces kept by bind mounts
//! and joined with `setns`, one address for the whole pod, and undoing it
//! all. To be a runtime one can use, `ch06` also needs what is here:
//!
//! - the options of the `pod` commands ([`CreateArgs`], [`PodRunArgs`],
//!   [`ExecArgs`], [`StopArgs`], the [`PodCommand`] list, and [`PodLayers`],
//!   what a later chapter adds to a pod's processes) and the checks
//!   `pod run` and `pod exec` start with ([`load_running_pod`]);
//! - running detached ([`detach`]): pause, and `pod run -d`, outlive the
//!   `ch06` that starts them;
//! - the pod's files: pause's root filesystem ([`pause_rootfs`]), the
//!   overlays, logs and volumes under [`data_dir`] ([`make_volumes`], and
//!   [`PodRunArgs::volumes`] for `pod run -v`), forgetting a pod ([`forget`]);
//! - stopping processes: SIGTERM, a grace period, SIGKILL
//!   ([`stop_processes`]);
//! - `pod logs` and `doctor` ([`logs`], [`doctor`]).
//!
//! The pods' records themselves are `pfs_state::pods`'s.

mod args;
pub mod detach;
mod files;
mod ops;
mod stop;

pub use args::DEFAULT_TIMEOUT;
pub use args::{load_running_pod, NoLayers, PodLayers, RunPodOrCleanup};
pub use args::{CreateArgs, ExecArgs, PodCommand, PodRunArgs, StopArgs};
pub use files::{data_dir, forget, forget_exited_container, log_path, make_volumes, pause_rootfs};
pub use ops::{doctor, logs};
pub use pfs_image::cache::is_static_binary;
pub use pfs_state::report::{print_containers as ps, print_pods as list};
pub use stop::{send_signal, stop_gracefully, stop_processes};
