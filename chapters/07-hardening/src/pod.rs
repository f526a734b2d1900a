//! `ch07 pod ...`: chapter 06's pods, with every process hardened as
//! `ch07 run` hardens a container: pause, each container, and `pod exec`.

use anyhow::Result;
use ch01::Layer;
use pfs_pod::PodLayers;
use pfs_state::pods::Pod;

use crate::{confine, paths};

// ANCHOR: pod_layers
/// This chapter's options of `pod create` (for pause), `pod run` and `pod
/// exec`, and the layers they add to chapter 06's.
#[derive(clap::Args, Debug)]
pub struct Hardening {
    /// Turn off every step of this chapter (like `docker run --privileged`)
    #[arg(long)]
    pub privileged: bool,
    #[command(flatten)]
    pub confine: confine::ConfineArgs,
}

impl PodLayers for Hardening {
    /// The filesystem's steps (the v1 devices group next to chapter 06's
    /// cgroups), then the process's.
    fn layers(&self, pod: &Pod, name: &str) -> Result<Vec<Box<dyn Layer>>> {
        let confine = confine::layers(&self.confine)?; // check the flags first
        if self.privileged {
            return Ok(Vec::new());
        }
        let mut layers = paths::layers_at(&pod.cgroup().join(name))?;
        layers.extend(confine);
        Ok(layers)
    }

    /// `pod exec` joins the container's mounts, and its device policy:
    /// then the process's steps.
    fn exec_layers(&self, pod: &Pod, name: &str) -> Result<Vec<Box<dyn Layer>>> {
        let confine = confine::layers(&self.confine)?;
        if self.privileged {
            return Ok(Vec::new());
        }
        let mut layers = paths::join_devices_group(&pod.cgroup().join(name))?;
        layers.extend(confine);
        Ok(layers)
    }

    fn release(pod: &Pod) -> Result<()> {
        paths::remove_pod_groups(&pod.cgroup())
    }
}
// ANCHOR_END: pod_layers
