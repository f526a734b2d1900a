//! The limits of `linux.resources` that chapter 05's `Limits` has no field
//! for, written to the group's own files once chapter 05 has made it: swap
//! (podman's `--memory` asks for twice the memory) and CPU shares.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use ch01::{explain, Layer};
use ch05::Version;
use oci_spec::runtime::LinuxResources;

/// The layer, after chapter 05's: each file and what to write there.
pub struct MoreLimits(Vec<(PathBuf, String)>);

/// The files for `resources` in the container's `group` (none: no layer).
pub fn more_limits(
    resources: Option<&LinuxResources>,
    group: &Path,
    version: Version,
) -> Result<Option<MoreLimits>> {
    let memory = resources.and_then(|r| r.memory().as_ref());
    let (limit, swap) = (
        memory.and_then(|m| m.limit()),
        memory.and_then(|m| m.swap()),
    );
    let shares = resources
        .and_then(|r| r.cpu().as_ref())
        .and_then(|c| c.shares());
    let root = Path::new("/sys/fs/cgroup");
    let mut files = Vec::new();
    if let Some(swap) = swap {
        files.push(match version {
            Version::V1 => (
                root.join("memory")
                    .join(group)
                    .join("memory.memsw.limit_in_bytes"),
                swap.to_string(),
            ),
            Version::V2 => (
                root.join(group).join("memory.swap.max"),
                swap_max(limit, swap)?,
            ),
        });
    }
    if let Some(shares) = shares.filter(|s| *s > 0) {
        files.push(match version {
            Version::V1 => (
                root.join("cpu").join(group).join("cpu.shares"),
                shares.to_string(),
            ),
            Version::V2 => (
                root.join(group).join("cpu.weight"),
                cpu_weight(shares).to_string(),
            ),
        });
    }
    Ok((!files.is_empty()).then_some(MoreLimits(files)))
}

impl Layer for MoreLimits {
    fn prepare(&mut self) -> Result<()> {
        explain::oci(
            "swap and CPU shares",
            "linux.resources.memory.swap, .cpu.shares",
        );
        for (file, value) in &self.0 {
            if !file.exists() {
                bail!(
                    "linux.resources: this kernel has no {} (swap accounting off?)",
                    file.display()
                );
            }
            ch05::write_file(file, value)?;
        }
        Ok(())
    }
}

/// The OCI swap is memory+swap, as v1's `memsw`; v2's `memory.swap.max`
/// is the swap alone (runc's conversion).
fn swap_max(limit: Option<i64>, swap: i64) -> Result<String> {
    match (limit, swap) {
        (_, -1) => Ok("max".into()),
        (Some(limit), swap) if limit > 0 && swap >= limit => Ok((swap - limit).to_string()),
        _ => bail!("linux.resources.memory.swap must be -1, or at least memory.limit"),
    }
}

/// v1's shares (2 to 262144, 1024 by default) onto v2's weight (1 to
/// 10000, 100 by default), as runc maps them.
fn cpu_weight(shares: u64) -> u64 {
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_is_memory_plus_swap_on_v1_and_swap_alone_on_v2() {
        assert_eq!(swap_max(Some(100), 300).unwrap(), "200");
        assert_eq!(swap_max(None, -1).unwrap(), "max");
        assert!(swap_max(None, 300).is_err());
        assert!(swap_max(Some(300), 100).is_err());
    }

    #[test]
    fn shares_map_onto_weights() {
        assert_eq!(cpu_weight(2), 1);
        assert_eq!(cpu_weight(1024), 39);
        assert_eq!(cpu_weight(262_144), 10_000);
    }
}
