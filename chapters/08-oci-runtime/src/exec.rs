//! `ch08 exec`: another process in a running container, as `podman exec`
//! asks for it. It is chapter 06's `pod exec`: join the container's cgroup
//! and namespaces (its PID namespace before the fork), then run the
//! process with its own settings.

use std::os::unix::net::UnixStream;
use std::path::Path;

use anyhow::{bail, Result};
use ch01::{Child, Layer};
use ch06::layers::JoinContainer;
use nix::unistd::Pid;
use pfs_oci::cli::ExecArgs;
use pfs_oci::state::Record;

use crate::lifecycle::{Console, OutliveRuntime};
use crate::spec;

// ANCHOR: exec
/// Join the container, run the process; without `--detach` wait for it
/// and return its exit status, with it return once it runs.
pub fn exec(root: &Path, args: &ExecArgs) -> Result<i32> {
    ch01::require_root()?;
    let record = Record::load(root, &args.id)?;
    let status = record.status(root);
    let (Some(pid), "created" | "running") = (record.pid, status) else {
        bail!("container {} is {status}: exec needs it running", args.id);
    };
    let spec = pfs_oci::config::exec_spec(&record.bundle, args)?;
    let process = spec::process(&spec)?;
    let group = ch05::new_group_at(ch05::detect_version()?, &record.cgroup);
    let mut layers: Vec<Box<dyn Layer>> = vec![Box::new(JoinContainer::new(pid, group))];
    layers.push(Box::new(pfs_oci::fds::PreserveFds(args.preserve_fds)));
    // As confined as the container: its v1 device policy (chapter 07 found
    // a pod exec without it could open the host's disks), its process's.
    layers.extend(pfs_security::devices::join_existing(&record.cgroup)?);
    layers.push(Box::new(crate::process::confine(&spec)?));
    if args.detach {
        layers.push(Box::new(OutliveRuntime));
    }
    if let Some(socket) = pfs_oci::console::connect_for(&spec, args.console_socket.as_deref())? {
        layers.push(Box::new(Console(socket))); // `podman exec -t`
    }
    let until = |child: Pid, sock: &mut UnixStream| {
        pfs_oci::state::write_pid_file(args.pid_file.as_deref(), child.as_raw())?;
        match args.detach {
            true => pfs_pod::detach::wait_until_exec(child, sock),
            false => Ok(Child::Exited(ch01::wait_for_exit(child)?)),
        }
    };
    match ch01::launch(&process, &mut layers, until)? {
        Child::Exited(status) => Ok(status),
        Child::Running(_) => Ok(0),
    }
}
// ANCHOR_END: exec
