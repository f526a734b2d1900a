//! `ch07 pod ...`: chapter 06's pods, with every process hardened as
//! `ch07 run` hardens a container: pause, each container, and `pod exec`.

use anyhow::Result;
use ch01::Layer;
use pfs_pod::PodLayers;
use pfs_state::pods::Pod;

use pfs_security::devices;

use crate::{confine, Hardening};

// ANCHOR: pod_layers
/// The layers this chapter's options (`pod create` for pause, `pod run`,
/// `pod exec`) add to chapter 06's.
impl PodLayers for Hardening {
    /// The filesystem's steps (the v1 devices group next to chapter 06's
    /// cgroups), then the process's.
    fn layers(&self, pod: &Pod, name: &str) -> Result<Vec<Box<dyn Layer>>> {
        Hardening::layers(self, &pod.cgroup().join(name))
    }

    /// `pod exec` joins the container's mounts, and its device policy:
    /// then the process's steps.
    fn exec_layers(&self, pod: &Pod, name: &str) -> Result<Vec<Box<dyn Layer>>> {
        let confine = confine::layers(&self.confine)?;
        if self.privileged {
            return Ok(Vec::new());
        }
        let mut layers = devices::join_existing(&pod.cgroup().join(name))?;
        layers.extend(confine);
        Ok(layers)
    }

    fn release(pod: &Pod) -> Result<()> {
        devices::remove_pod_groups(&pod.cgroup())
    }
}
// ANCHOR_END: pod_layers
