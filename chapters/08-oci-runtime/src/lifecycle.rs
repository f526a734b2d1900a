//! The lifecycle, split as runc splits it: `create` makes the container
//! and stops its process right before `execve`; `start` lets it go on;
//! `state`, `kill` and `delete` act on it from its record. Each command is
//! a new run of `ch08`: what connects them is the state directory.

use std::fs::{self, OpenOptions};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use ch01::{explain, Child, Layer};
use nix::fcntl::{open, OFlag};
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use pfs_oci::cli::{CreateArgs, DeleteArgs, KillArgs};
use pfs_oci::config::Bundle;
use pfs_oci::state::{self, Record, EXEC_FIFO};
use pfs_oci::{console, fds::PreserveFds, hooks};

use crate::spec;

// ANCHOR: create
/// `ch08 create`: the record first, so that `delete --force` can undo a
/// `create` killed at any point; then the container, stopped at the exec
/// fifo. Prints nothing: conmon reads our stdout.
pub fn create(root: &Path, args: &CreateArgs) -> Result<()> {
    ch01::require_root()?;
    state::check_id(&args.id)?;
    let bundle = pfs_oci::config::load(&args.bundle)?;
    pfs_oci::config::check_for_create(&bundle.spec, args.console_socket.as_deref())?;
    let cgroup = pfs_oci::settings::cgroup_path(&bundle.spec, &args.id);
    let annotations = bundle.spec.annotations().clone().unwrap_or_default();
    let mut record = Record::new(&args.id, &bundle.dir, &cgroup, annotations);
    record.reserve(root)?;
    make(root, &bundle, &mut record, args).inspect_err(|_| {
        let _ = destroy(root, &record);
    })
}

/// The container itself, once its record exists.
fn make(root: &Path, bundle: &Bundle, record: &mut Record, args: &CreateArgs) -> Result<()> {
    let process = spec::process(&bundle.spec)?;
    let mut layers = spec::layers(bundle, &record.id)?;
    let fifo = make_exec_fifo(&state::dir(root, &record.id))?;
    let (ready_reader, ready_writer) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("pipe2")?;
    // prestart and createRuntime hooks run once the child exists (moment 2).
    let state = record.to_state(root);
    layers.push(Box::new(hooks::RuntimeHooks::new(&bundle.spec, state)));
    layers.insert(0, Box::new(PreserveFds(args.preserve_fds))); // before any filter
    layers.push(Box::new(OutliveRuntime));
    if let Some(socket) = console::connect_for(&bundle.spec, args.console_socket.as_deref())? {
        layers.push(Box::new(Console(socket)));
    }
    // Last: every other step of the child is done when it waits for start.
    let ready = ready_writer.as_raw_fd();
    layers.push(Box::new(WaitForStart { ready, fifo }));
    let until =
        |child, _: &mut UnixStream| state::wait_until_ready(child, ready_reader, ready_writer);
    let Child::Running(pid) = ch01::launch(&process, &mut layers, until)? else {
        bail!("the container's process ended before it was ready (it said why above)");
    };
    record.created(pid.as_raw() as u32);
    record.save(root)?;
    state::write_pid_file(args.pid_file.as_deref(), pid.as_raw())
}
// ANCHOR_END: create

// ANCHOR: exec_fifo
/// The exec fifo: the container's process blocks opening it for writing
/// until `start` opens it for reading. Mode 0622: the process may have
/// become another user by then. We keep an `O_PATH` handle, which opens
/// nothing yet and survives `pivot_root`.
fn make_exec_fifo(dir: &Path) -> Result<OwnedFd> {
    let path = dir.join(EXEC_FIFO);
    explain::step(
        &format!("mkfifo({path:?}, 0622)"),
        &format!("mkfifo -m 0622 {}", path.display()),
    );
    nix::unistd::mkfifo(&path, Mode::from_bits_truncate(0o622)).context("mkfifo")?;
    // The umask took write access away from the others: give it back.
    fs::set_permissions(&path, fs::Permissions::from_mode(0o622))?;
    open(&path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()).context("open the exec fifo")
}
// ANCHOR_END: exec_fifo

// ANCHOR: wait_for_start
/// The child's last steps before `execve`: tell `create` it is ready, then
/// wait for `start`.
struct WaitForStart {
    /// The write end of `create`'s ready pipe.
    ready: RawFd,
    fifo: OwnedFd,
}

impl Layer for WaitForStart {
    fn just_before_exec(&mut self) -> Result<()> {
        // SAFETY: the pipe's write end stays open in the child until execve.
        let ready = unsafe { std::os::fd::BorrowedFd::borrow_raw(self.ready) };
        nix::unistd::write(ready, b"r").context("tell create we are ready")?;
        wait_for_start(&self.fifo)
    }
}

/// Open the fifo for writing through our `O_PATH` handle (its path is
/// outside our root now): the open blocks until `start` opens the other end.
fn wait_for_start(fifo: &OwnedFd) -> Result<()> {
    let path = format!("/proc/self/fd/{}", fifo.as_raw_fd());
    explain::step(
        &format!("open({path:?}, O_WRONLY)"),
        "(blocks until `ch08 start` opens the exec fifo)",
    );
    let fifo = open(
        path.as_str(),
        OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .context("open the exec fifo (is /proc mounted in the container?)")?;
    nix::unistd::write(&fifo, b"0").context("write to the exec fifo")?;
    Ok(())
}

// ANCHOR_END: wait_for_start

// ANCHOR: outlive_runtime
/// The container outlives `ch08 create`: a session of its own, and no
/// death signal when we exit (chapter 01 asked for one). Its stdio stays
/// what our caller gave us: conmon's pipes.
pub(crate) struct OutliveRuntime;

impl Layer for OutliveRuntime {
    fn setup_in_child(&mut self) -> Result<()> {
        explain::step("setsid()", "setsid");
        nix::unistd::setsid().context("setsid")?;
        explain::step("prctl(PR_SET_PDEATHSIG, 0)", "(setsid(1) asks for none)");
        nix::sys::prctl::set_pdeathsig(None).context("prctl(PR_SET_PDEATHSIG)")
    }
}
// ANCHOR_END: outlive_runtime

// ANCHOR: console
/// `process.terminal`: a terminal of the container's own, made from its
/// devpts after the mounts; the master end goes to our caller over the
/// socket we connected to before the pivot; the slave end becomes the
/// process's controlling terminal and stdio.
pub(crate) struct Console(pub(crate) UnixStream);

impl Layer for Console {
    fn setup_in_child(&mut self) -> Result<()> {
        let (master, terminal) = console::open_pty()?;
        console::send_master(&self.0, &master)?;
        console::make_controlling_terminal(&terminal)
    }
}

// ANCHOR_END: console

// ANCHOR: start
/// `ch08 start`: only a created container; release it through the fifo.
pub fn start(root: &Path, id: &str) -> Result<i32> {
    let record = Record::load(root, id)?;
    let status = record.status(root);
    if status != "created" {
        bail!("container {id} is {status}: only a created container can be started");
    }
    let fifo = state::dir(root, id).join(EXEC_FIFO);
    release(&fifo, &record)?;
    fs::remove_file(&fifo).with_context(|| format!("remove {}", fifo.display()))?;
    hooks::run_poststart(&record.bundle, &record.to_state(root))?;
    Ok(0)
}

/// Open the fifo for reading (without blocking: a process that died
/// would never open the other end) and read the byte the process writes
/// once its open returns; it goes on to `execve`.
fn release(fifo: &Path, record: &Record) -> Result<()> {
    explain::step(
        &format!("open({fifo:?}, O_RDONLY)"),
        &format!("cat {}", fifo.display()),
    );
    let mut reader = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(fifo)
        .with_context(|| format!("open {}", fifo.display()))?;
    state::read_byte_while(&mut reader, || record.is_alive())
        .with_context(|| format!("start {}", record.id))
}
// ANCHOR_END: start

// ANCHOR: kill
/// `ch08 kill ID [SIGNAL]`: to the container's process, or with `--all`
/// to every process in its cgroup. A recorded PID whose start time has
/// changed is another process now: never signal it.
pub fn kill(root: &Path, args: &KillArgs) -> Result<i32> {
    let record = Record::load(root, &args.id)?;
    let signal = pfs_oci::cli::parse_signal(&args.signal)?;
    let Some(pid) = record.pid.filter(|_| record.is_alive()) else {
        // "container not running": the words containerd and podman look for.
        bail!("cannot signal {}: container not running", args.id);
    };
    let all = args.all.then(|| state::cgroup_pids(&record.cgroup));
    for pid in all.unwrap_or(vec![pid]) {
        state::signal(pid, signal)?;
    }
    Ok(0)
}
// ANCHOR_END: kill

// ANCHOR: delete
/// `ch08 delete [--force] ID`: a running container needs `--force`, and
/// so does one still `creating` (its `create` may be at work); a created
/// one is killed, as runc does. With `--force`, an unknown id is no error.
pub fn delete(root: &Path, args: &DeleteArgs) -> Result<i32> {
    let Some(record) = Record::load_unless_forced(root, &args.id, args.force)? else {
        return Ok(0);
    };
    let status = record.status(root);
    if matches!(status, "running" | "creating") && !args.force {
        bail!(
            "container {} is {status}: kill it first, or delete --force",
            args.id
        );
    }
    destroy(root, &record)?;
    Ok(0)
}

/// Undo all a container made, whatever moment `create` reached: its
/// process, its cgroup (chapter 05), then the poststop hooks and the record.
fn destroy(root: &Path, record: &Record) -> Result<()> {
    if let Some(pid) = record.pid.filter(|_| record.is_alive()) {
        state::signal(pid, Signal::SIGKILL)?;
        if !pfs_state::process::wait_until_gone(&[pid], Duration::from_secs(10)) {
            bail!("container {}'s process {pid} does not die", record.id);
        }
    }
    state::remove_cgroups(&record.cgroup)?;
    if record.status != "creating" {
        hooks::run_poststop(&record.bundle, &record.to_state(root));
    }
    fs::remove_dir_all(state::dir(root, &record.id)).context("remove the state directory")
}
// ANCHOR_END: delete
