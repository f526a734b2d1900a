//! `linux`: chapter 07's user namespace maps, and what is done in the new
//! root once its `/proc` is mounted: sysctls, chapter 07's masked and
//! read-only paths. (Its device nodes: `pfs_oci::devices::make_node`.)

use std::path::Path;

use anyhow::{Context, Result};
use ch01::{explain, Layer};
use nix::sched::CloneFlags;
use nix::unistd::Pid;
use oci_spec::runtime::Linux;
use pfs_oci::settings;
use pfs_security::userns::IdRange;

/// `linux.uidMappings` and `gidMappings`: the parent writes the maps of
/// the child's new user namespace (chapter 01 made it with the child).
pub struct UserNamespace((IdRange, IdRange));

pub fn user_namespace(linux: &Linux) -> Result<UserNamespace> {
    Ok(UserNamespace(settings::id_maps(linux)?))
}

impl Layer for UserNamespace {
    fn namespaces(&self) -> CloneFlags {
        CloneFlags::CLONE_NEWUSER
    }

    fn setup_from_parent(&mut self, child: Pid) -> Result<()> {
        explain::oci("the user namespace's maps", "linux.uidMappings");
        ch07::userns::write_id_maps(child, self.0)
    }

    fn setup_in_child(&mut self) -> Result<()> {
        ch07::userns::become_root()
    }
}

/// What is done in the new root, after `pivot_root`.
pub struct InsideRoot {
    sysctls: Vec<(String, String)>,
    masked: Vec<String>,
    read_only: Vec<String>,
    root_read_only: bool,
}

pub fn inside_root(linux: &Linux, root_read_only: bool) -> Result<InsideRoot> {
    Ok(InsideRoot {
        sysctls: settings::sysctls(linux)?,
        masked: linux.masked_paths().clone().unwrap_or_default(),
        read_only: linux.readonly_paths().clone().unwrap_or_default(),
        root_read_only,
    })
}

// ANCHOR: inside_root
impl Layer for InsideRoot {
    /// Sysctls before `/proc/sys` is made read-only, the root last.
    fn setup_in_child(&mut self) -> Result<()> {
        for (key, value) in &self.sysctls {
            set_sysctl(key, value)?;
        }
        explain::oci("mask the kernel's files", "linux.maskedPaths");
        for path in &self.masked {
            ch07::paths::mask_path(path)?;
        }
        explain::oci("the kernel's knobs read-only", "linux.readonlyPaths");
        for path in &self.read_only {
            ch07::paths::make_read_only(path)?;
        }
        if self.root_read_only {
            explain::oci("the root filesystem read-only", "root.readonly");
            ch04::remount_read_only("/")?;
        }
        Ok(())
    }
}
// ANCHOR_END: inside_root

// ANCHOR: set_sysctl
/// `linux.sysctl`: a kernel setting of the container's own namespaces
/// (its network's, its IPC's), written where `sysctl -w` writes it.
fn set_sysctl(key: &str, value: &str) -> Result<()> {
    let path = Path::new("/proc/sys").join(key.replace('.', "/"));
    explain::oci("a namespaced kernel setting", "linux.sysctl");
    explain::step(
        &format!("write({path:?}, {value:?})"),
        &format!("sysctl -w {key}={value:?}"),
    );
    std::fs::write(&path, value).with_context(|| format!("linux.sysctl: {}", path.display()))
}
// ANCHOR_END: set_sysctl
