//! `ch08 exec`: another process in a running container, as `podman exec`
//! asks for it. It is chapter 06's `pod exec`: join the container's cgroup
//! and namespaces (its PID namespace before the fork), then run the
//! process with its own settings.

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::Path;

use anyhow::{bail, Result};
use ch01::{Child, Layer, Process};
use ch06::layers::JoinContainer;
use nix::unistd::Pid;
use pfs_oci::cli::ExecArgs;
use pfs_oci::state::Record;

use crate::lifecycle::{write_pid_file, OutliveRuntime};
use crate::spec;

// ANCHOR: exec
/// Join the container, run the process; without `--detach` wait for it
/// and return its exit status, with it return once it runs.
pub fn exec(root: &Path, args: &ExecArgs) -> Result<i32> {
    ch01::require_root()?;
    let record = Record::load(root, &args.id)?;
    let (status, Some(pid)) = (record.status(root), record.pid) else {
        bail!("container {} has no process: create it first", args.id);
    };
    if !matches!(status, "created" | "running") {
        bail!(
            "container {} is {status}: exec needs a running container",
            args.id
        );
    }
    if args.tty {
        bail!("exec --tty: terminals are not supported yet (run it without -t)");
    }
    let process = process(&record, args)?;
    let group = ch05::new_group_at(ch05::detect_version()?, &record.cgroup);
    let mut layers: Vec<Box<dyn Layer>> = vec![Box::new(JoinContainer::new(pid, group))];
    if args.detach {
        layers.push(Box::new(OutliveRuntime));
    }
    let until = |child: Pid, sock: &mut UnixStream| {
        write_pid_file(args.pid_file.as_ref(), child)?;
        if args.detach {
            return wait_until_exec(child, sock);
        }
        Ok(Child::Exited(ch01::wait_for_exit(child)?))
    };
    match ch01::launch(&process, &mut layers, until)? {
        Child::Exited(status) => Ok(status),
        Child::Running(_) => Ok(0),
    }
}
// ANCHOR_END: exec

/// The process to run: `--process FILE`, or the command words with the
/// container's own environment, working directory and user.
fn process(record: &Record, args: &ExecArgs) -> Result<Process> {
    let mut spec = pfs_oci::config::load(&record.bundle)?.spec;
    let mut process = spec.process().clone().unwrap_or_default();
    match &args.process {
        Some(file) => process = pfs_oci::config::load_process(file)?,
        None if args.command.is_empty() => bail!("exec: give a command, or --process FILE"),
        None => {
            process.set_args(Some(args.command.clone()));
        }
    }
    if process.terminal() == Some(true) && !args.tty {
        bail!("process.terminal: terminals are not supported yet: set it to false");
    }
    spec.set_process(Some(process));
    spec::process(&spec)
}

/// Chapter 01's child says "x" just before `execve`; a closed socket
/// means it failed first.
fn wait_until_exec(child: Pid, sock: &mut UnixStream) -> Result<Child> {
    let mut starting = [0u8; 1];
    if sock.read(&mut starting)? == 1 {
        return Ok(Child::Running(child));
    }
    Ok(Child::Exited(ch01::wait_for_exit(child)?))
}
