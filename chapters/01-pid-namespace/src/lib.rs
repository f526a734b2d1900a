//! # Chapter 01: a PID namespace
//!
//! `ch01 run -- CMD` runs CMD as PID 1 of a new PID namespace, like
//! `unshare --fork --pid CMD`. This crate is also the skeleton every later
//! chapter grows: it forks the child, lets each [`Layer`] of isolation act at
//! the right moment, waits, forwards signals and returns the exit status.
//!
//! Starting a container has three moments, and a layer may act in each:
//!
//! 1. the parent, before the child exists ([`Layer::prepare`]);
//! 2. the parent, after the child exists but before it runs the command
//!    ([`Layer::setup_from_parent`]); the child waits on a socket meanwhile;
//! 3. the child, inside its new namespaces, just before `execve`
//!    ([`Layer::setup_in_child`]).
//!
//! A fourth, [`Layer::just_before_exec`], comes after the process's own
//! settings below, for what would stop the runtime's last steps (chapter
//! 07's seccomp filter).
//!
//! Then the parent waits for the child, and every layer cleans up in
//! reverse order ([`Layer::cleanup`]), from one place: [`launch`].
//!
//! What the child finally runs is a [`Process`]: its command, environment,
//! working directory and user (`-e`, `--env-file`, `-w`, `-u`), set after
//! every layer, in the order `set_up_process` teaches, then `execve`.
//!
//! The `fault::point("...")` lines mark steps where the reliability suite
//! kills the runtime (with `PFS_FAULT_AT`, see `pfs_cli::fault`); they do
//! nothing in a normal run.

use std::ffi::{CStr, CString, OsStr};
use std::io::{Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};

use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::signal::{kill, sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{chdir, execve, fork, setgid, setgroups, setuid, ForkResult, Gid, Pid, Uid};

// The command line's machinery (the narration of `--explain`, the root
// check, the program's name, reading `-e`/`-w`/`-u` into a `Process`)
// lives in the support crate pfs-cli.
pub use pfs_cli::{explain, fault, program_name, require_root, Process, User, EXIT_RUNTIME_FAILED};

const EXIT_CANNOT_EXECUTE: i32 = 126;
const EXIT_NOT_FOUND: i32 = 127;

/// Arguments of `run` that every chapter shares.
#[derive(clap::Args, Debug)]
#[group(skip)]
pub struct RunArgs {
    #[command(flatten)]
    pub process: pfs_cli::ProcessArgs,
    /// The command to run in the container, and its arguments (after `--`)
    #[arg(value_name = "CMD", trailing_var_arg = true)]
    pub command: Vec<String>,
}

impl RunArgs {
    /// The command and its arguments.
    pub fn command(&self) -> &[String] {
        &self.command
    }

    /// The process to run (every chapter's `RunArgs` has this): on the
    /// host's files, with our environment and the options.
    pub fn process(&self) -> Result<Process> {
        self.process.on_host(&self.command)
    }
}

// ANCHOR: layer
/// One layer of isolation. Every method has a default that does nothing,
/// so a layer implements only the moments it acts in.
///
/// The contract: a layer names every namespace it needs itself (two
/// layers may name the same one). `cleanup` is called once for every
/// layer whose `prepare` was called, even if that `prepare` failed half-way,
/// so it undoes whatever exists and ignores what does not.
pub trait Layer {
    /// Moment 1: in the parent, before the child exists.
    fn prepare(&mut self) -> Result<()> {
        Ok(())
    }
    /// Namespaces the child enters (with `unshare`) as soon as it exists.
    fn namespaces(&self) -> CloneFlags {
        CloneFlags::empty()
    }
    /// Just before the fork, in the parent: make our next child a member
    /// of an existing PID namespace instead of PID 1 of a new one, and
    /// return `true` (chapter 06: a pod's).
    fn join_pid_namespace(&mut self) -> Result<bool> {
        Ok(false)
    }
    /// Moment 2: in the parent; the child exists and waits to be released.
    fn setup_from_parent(&mut self, _child: Pid) -> Result<()> {
        Ok(())
    }
    /// Moment 3: in the child, inside its namespaces, before `execve`.
    fn setup_in_child(&mut self) -> Result<()> {
        Ok(())
    }
    /// Moment 4: in the child, after the user and working directory are
    /// set, right before `execve`: for what would stop those steps.
    fn just_before_exec(&mut self) -> Result<()> {
        Ok(())
    }
    /// After the child is gone (or starting it failed): undo `prepare`.
    fn cleanup(&mut self) -> Result<()> {
        Ok(())
    }
}
// ANCHOR_END: layer

// ANCHOR: run
/// Run `process` as PID 1 of a new PID namespace, with `layers` of
/// isolation around it. Returns the command's exit status (128+N when a
/// signal N killed it).
pub fn run(process: &Process, layers: &mut [Box<dyn Layer>]) -> Result<i32> {
    match launch(process, layers, |child, _| {
        fault::point("while-waiting");
        wait_for_exit(child).map(Child::Exited)
    })? {
        Child::Exited(status) => Ok(status),
        Child::Running(_) => unreachable!("wait_for_exit returns once the child is gone"),
    }
}

/// What became of the container when [`launch`] returns.
#[derive(Debug, PartialEq, Eq)]
pub enum Child {
    /// It ended, with this exit status; the layers have cleaned up.
    Exited(i32),
    /// It runs on, as this PID (chapter 06's detached containers): what
    /// the layers made now belongs to it, and nothing is cleaned up.
    Running(Pid),
}

/// The life of a container: moment 1 for every layer, the fork, moment 2,
/// then `until` (which waits for the child to exit, or in chapter 06 only
/// until it runs the command), then every layer's cleanup, in reverse
/// order, on success, error and panic alike: the one place it happens.
pub fn launch(
    process: &Process,
    layers: &mut [Box<dyn Layer>],
    until: impl FnOnce(Pid, &mut UnixStream) -> Result<Child>,
) -> Result<Child> {
    require_root()?;
    let exec = Exec::new(process)?;
    forward_signals_to_child()?;

    let mut prepared = 0;
    let result = even_if_it_panics(|| {
        prepare_layers(layers, &mut prepared)?;
        fault::point("after-prepare");
        let (child, mut to_child) = start(&exec, layers)?;
        until(child, &mut to_child).inspect_err(|_| stop(child))
    });
    match result {
        // From now on our signals are ours again: the child is on its own.
        Ok(Child::Running(_)) => CHILD.store(0, Ordering::SeqCst),
        _ => cleanup_layers(&mut layers[..prepared]),
    }
    result
}
// ANCHOR_END: run

/// Run the parent's steps, turning a panic (a bug in some layer) into an
/// error: even then, the layers prepared so far must be cleaned up, or the
/// host keeps what they made. (The child never returns through here: it
/// `execve`s or `_exit`s, see `run_child`.)
fn even_if_it_panics<T>(steps: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(steps))
        .unwrap_or_else(|_| Err(anyhow!("a step panicked (a bug): cleaned up")))
}

/// Moment 1 for every layer; `prepared` counts the layers to clean up,
/// the one whose `prepare` fails included (it may have done half).
fn prepare_layers(layers: &mut [Box<dyn Layer>], prepared: &mut usize) -> Result<()> {
    for layer in layers.iter_mut() {
        *prepared += 1;
        layer.prepare()?;
    }
    if INTERRUPTED.load(Ordering::SeqCst) {
        bail!("interrupted before the container started");
    }
    Ok(())
}

/// Undo, in reverse order; one layer failing does not stop the others.
fn cleanup_layers(layers: &mut [Box<dyn Layer>]) {
    for layer in layers.iter_mut().rev() {
        if let Err(e) = layer.cleanup() {
            eprintln!("{}: cleanup: {e:#}", program_name());
        }
    }
}

/// Fork the child and take it through moment 2. Returns its PID and our
/// end of the socket: the child writes "x" on it just before `execve`.
fn start(exec: &Exec, layers: &mut [Box<dyn Layer>]) -> Result<(Pid, UnixStream)> {
    // A socket pair lets the parent and child take turns (moment 2).
    let (mut to_child, to_parent) = UnixStream::pair().context("socketpair")?;
    match fork_child(layers)? {
        ForkResult::Child => {
            drop(to_child);
            run_child(exec, layers, to_parent)
        }
        ForkResult::Parent { child } => {
            drop(to_parent);
            CHILD.store(child.as_raw(), Ordering::SeqCst);
            fault::point("after-clone");
            if let Err(e) = release_child(child, layers, &mut to_child) {
                // The child never ran the command: stop it and report.
                stop(child);
                return Err(e);
            }
            Ok((child, to_child))
        }
    }
}

/// Kill a child that must not go on, and collect it.
fn stop(child: Pid) {
    let _ = kill(child, Signal::SIGKILL);
    let _ = waitpid(child, None);
}

// ANCHOR: fork_into_new_pid_namespace
/// The chapter's key step: `unshare(CLONE_NEWPID)` does not move the caller
/// into a new PID namespace, it makes the caller's *next child* the first
/// process (PID 1) of one. So we unshare, then fork at once.
fn fork_into_new_pid_namespace() -> Result<ForkResult> {
    explain::step("unshare(CLONE_NEWPID)", "unshare --pid");
    unshare(CloneFlags::CLONE_NEWPID).context("unshare(CLONE_NEWPID)")?;

    explain::step("fork()", "unshare --fork");
    // SAFETY: this program has a single thread, so the child gets a
    // consistent copy of memory (no lock is held by a thread that vanishes).
    unsafe { fork() }.context("fork")
}
// ANCHOR_END: fork_into_new_pid_namespace

/// Fork into a new PID namespace, unless a layer joined an existing one
/// for our children (chapter 06).
fn fork_child(layers: &mut [Box<dyn Layer>]) -> Result<ForkResult> {
    let mut joined = false;
    for layer in layers.iter_mut() {
        joined |= layer.join_pid_namespace()?;
    }
    let user = CloneFlags::CLONE_NEWUSER;
    if !joined && layers.iter().any(|layer| layer.namespaces().contains(user)) {
        return fork_into_new_user_namespace();
    }
    if !joined {
        return fork_into_new_pid_namespace();
    }
    explain::step("fork()", "(nsenter forks after entering a PID namespace)");
    // SAFETY: as above, this program has a single thread.
    unsafe { fork() }.context("fork")
}

// ANCHOR: fork_into_new_user_namespace
/// Namespaces belong to the user namespace their maker is in, so a user
/// namespace comes first; we cannot unshare one (we would move into it):
/// `clone` makes it and the PID namespace it owns with the child.
fn fork_into_new_user_namespace() -> Result<ForkResult> {
    explain::step(
        "clone(CLONE_NEWUSER | CLONE_NEWPID)",
        "unshare --user --pid --fork",
    );
    let flags = nix::libc::CLONE_NEWUSER | nix::libc::CLONE_NEWPID | nix::libc::SIGCHLD;
    // SAFETY: with no new stack, clone returns twice, as fork (one thread).
    match unsafe { nix::libc::syscall(nix::libc::SYS_clone, flags, 0, 0, 0, 0) } {
        -1 => Err(Errno::last()).context("clone(CLONE_NEWUSER | CLONE_NEWPID)"),
        0 => Ok(ForkResult::Child),
        pid => Ok(ForkResult::Parent {
            child: Pid::from_raw(pid as i32),
        }),
    }
}
// ANCHOR_END: fork_into_new_user_namespace

// ANCHOR: restore_pid_namespace_for_children
/// After the fork, point our own `pid_for_children` back at our namespace:
/// any process we start later (a helper tool) must not land in the
/// container. `unshare(1)` never needs this, because it only execs.
fn restore_pid_namespace_for_children() -> Result<()> {
    explain::step(
        "setns(/proc/self/ns/pid, CLONE_NEWPID)",
        "(none: unshare(1) execs and never forks again)",
    );
    let own = std::fs::File::open("/proc/self/ns/pid").context("open /proc/self/ns/pid")?;
    setns(&own, CloneFlags::CLONE_NEWPID).context("setns(CLONE_NEWPID)")
}
// ANCHOR_END: restore_pid_namespace_for_children

// ANCHOR: release_child
/// Moment 2, parent side: wait until the child has entered its namespaces,
/// let each layer act on it, then release it.
fn release_child(child: Pid, layers: &mut [Box<dyn Layer>], sock: &mut UnixStream) -> Result<()> {
    let mut ready = [0u8; 1];
    let child_is_ready = sock.read(&mut ready).context("wait for the child")? == 1;
    restore_pid_namespace_for_children()?;
    if !child_is_ready {
        // The child failed before it was ready; it said why on stderr.
        return Ok(());
    }
    for layer in layers.iter_mut() {
        layer.setup_from_parent(child)?;
    }
    sock.write_all(b"go").context("release the child")
}
// ANCHOR_END: release_child

/// The child: enter the layers' namespaces, wait for the parent, let each
/// layer set itself up from inside, then become the command.
fn run_child(exec: &Exec, layers: &mut [Box<dyn Layer>], mut parent: UnixStream) -> ! {
    explain::now_in_child();
    // A panic must end the child here, not unwind into the parent's code,
    // which would clean up the layers a second time, from the child.
    let setup = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        setup_child(exec, layers, &mut parent)
    }));
    match setup {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            eprintln!("{}: {e:#}", program_name());
            exit_child(EXIT_RUNTIME_FAILED);
        }
        Err(_) => exit_child(EXIT_RUNTIME_FAILED), // the panic hook said why
    }
    let errno = exec_command(exec);
    let name = exec.argv[0].to_string_lossy();
    if errno == Errno::ENOENT {
        eprintln!("{}: command not found: {name}", program_name());
        exit_child(EXIT_NOT_FOUND);
    }
    eprintln!("{}: cannot run {name}: {}", program_name(), errno.desc());
    exit_child(EXIT_CANNOT_EXECUTE)
}

/// End the child at once with `_exit(2)`: no Rust exit handlers run, so
/// nothing the parent buffered is flushed twice.
fn exit_child(code: i32) -> ! {
    // SAFETY: _exit(2) only ends this process.
    unsafe { nix::libc::_exit(code) }
}

fn setup_child(exec: &Exec, layers: &mut [Box<dyn Layer>], parent: &mut UnixStream) -> Result<()> {
    // If the runtime is killed, the kernel kills its container too, so a
    // `kill -9` of ch01 leaves no container running without its parent.
    explain::step(
        "prctl(PR_SET_PDEATHSIG, SIGKILL)",
        "(none: unshare(1) execs)",
    );
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).context("prctl(PR_SET_PDEATHSIG)")?;
    let namespaces = layers
        .iter()
        .fold(CloneFlags::empty(), |all, layer| all | layer.namespaces())
        - CloneFlags::CLONE_NEWUSER; // if any, made with us
    if !namespaces.is_empty() {
        enter_namespaces(namespaces)?;
    }
    parent
        .write_all(b"r")
        .context("tell the parent we are ready")?;
    let mut go = [0u8; 2];
    parent
        .read_exact(&mut go)
        .context("the parent did not release us")?;
    for layer in layers.iter_mut() {
        layer.setup_in_child()?;
    }
    set_up_process(exec)?;
    for layer in layers.iter_mut() {
        layer.just_before_exec()?;
    }
    fault::point("before-exec");
    restore_default_sigpipe()?;
    // The last word to the parent: all set, the command comes next. A
    // runtime that has left already (chapter 08's `create`) hears nothing.
    let _ = parent.write_all(b"x");
    Ok(())
}

/// Rust programs ignore SIGPIPE (a write to a closed pipe fails instead),
/// and an ignored signal stays ignored through `execve`: give the command
/// the default back, or `yes | head -1` would never end `yes` by signal.
fn restore_default_sigpipe() -> Result<()> {
    // SAFETY: SIG_DFL installs no handler.
    unsafe { nix::sys::signal::signal(Signal::SIGPIPE, SigHandler::SigDfl) }
        .context("signal(SIGPIPE, SIG_DFL)")?;
    Ok(())
}

/// Names of the namespace flags and the matching `unshare(1)` options.
const NAMESPACES: [(CloneFlags, &str, &str); 7] = [
    (CloneFlags::CLONE_NEWPID, "CLONE_NEWPID", "--pid"),
    (CloneFlags::CLONE_NEWNS, "CLONE_NEWNS", "--mount"),
    (CloneFlags::CLONE_NEWUTS, "CLONE_NEWUTS", "--uts"),
    (CloneFlags::CLONE_NEWIPC, "CLONE_NEWIPC", "--ipc"),
    (CloneFlags::CLONE_NEWNET, "CLONE_NEWNET", "--net"),
    (CloneFlags::CLONE_NEWCGROUP, "CLONE_NEWCGROUP", "--cgroup"),
    (CloneFlags::CLONE_NEWUSER, "CLONE_NEWUSER", "--user"),
];

/// Unshare the given namespaces: unlike a PID namespace, the caller itself
/// moves into new mount, UTS, IPC, network and cgroup namespaces.
pub fn enter_namespaces(flags: CloneFlags) -> Result<()> {
    let (names, options): (Vec<_>, Vec<_>) = NAMESPACES
        .iter()
        .filter(|(flag, _, _)| flags.contains(*flag))
        .map(|(_, name, option)| (*name, *option))
        .unzip();
    let call = format!("unshare({})", names.join(" | "));
    explain::step(&call, &format!("unshare {}", options.join(" ")));
    unshare(flags).with_context(|| call.clone())
}

// ANCHOR: set_up_process
/// The process's own settings, last, in this order. Every mount is done
/// by now: mounting needs privileges the user will not have.
fn set_up_process(exec: &Exec) -> Result<()> {
    if let (Some(dir), true) = (&exec.cwd, exec.make_cwd) {
        // As root, like docker: the user may not write where it goes.
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    if let Some(user) = exec.user {
        become_user(user, &exec.groups)?;
    }
    match &exec.cwd {
        Some(dir) => enter_workdir(dir),
        None => Ok(()),
    }
}

/// Drop root for `user`: groups first, then the group, then the user, as
/// changing groups takes a privilege that setuid gives away for good.
fn become_user(user: User, groups: &[u32]) -> Result<()> {
    // Our supplementary groups are root's: keep only the user's.
    let groups: Vec<u32> = [&[user.gid], groups].concat();
    let shown = groups.iter().map(u32::to_string).collect::<Vec<_>>();
    explain::step(
        &format!("setgroups([{}])", shown.join(", ")),
        &format!("setpriv --groups {}", shown.join(",")),
    );
    let groups: Vec<Gid> = groups.into_iter().map(Gid::from_raw).collect();
    setgroups(&groups).context("setgroups")?;
    explain::step(
        &format!("setgid({})", user.gid),
        &format!("setpriv --regid {}", user.gid),
    );
    setgid(Gid::from_raw(user.gid)).context("setgid")?;
    explain::step(
        &format!("setuid({})", user.uid),
        &format!("setpriv --reuid {}", user.uid),
    );
    setuid(Uid::from_raw(user.uid)).context("setuid")
}

/// Go to the working directory as the user, so that the kernel checks
/// the user's permissions on it, not root's (as docker does).
fn enter_workdir(dir: &Path) -> Result<()> {
    explain::step(&format!("chdir({dir:?})"), &format!("cd {}", dir.display()));
    chdir(dir).with_context(|| format!("cannot enter working directory {}", dir.display()))
}

/// Replace this process with the command, with exactly its environment.
/// Returns only if `execve` failed.
fn exec_command(exec: &Exec) -> Errno {
    let words: Vec<_> = exec.argv.iter().map(|a| a.to_string_lossy()).collect();
    // execve takes a file, not a name: look it up in the *container's* PATH.
    let Some(program) = find_program(&exec.argv[0], &exec.path) else {
        return Errno::ENOENT;
    };
    explain::step(
        &format!("execve({program:?}, {words:?}, env)"),
        &format!("exec env -i ENV... {}", explain::shell_words(&words)),
    );
    match execve(&program, &exec.argv, &exec.env) {
        Err(errno) => errno,
        Ok(never) => match never {},
    }
}
// ANCHOR_END: set_up_process

/// A name with a `/` is a path; another is looked up in `path`'s
/// directories, as a shell does.
fn find_program(name: &CStr, path: &str) -> Option<CString> {
    if name.to_bytes().contains(&b'/') {
        return Some(name.to_owned());
    }
    let name = OsStr::from_bytes(name.to_bytes());
    let is_executable = |file: &PathBuf| {
        let meta = file.metadata();
        meta.is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0)
    };
    let file = path
        .split(':')
        .map(|dir| Path::new(dir).join(name))
        .find(is_executable)?;
    CString::new(file.into_os_string().into_vec()).ok()
}

/// A [`Process`] as `execve` takes it, made before the fork.
struct Exec {
    argv: Vec<CString>,
    env: Vec<CString>,
    /// The container's PATH, to find the program in.
    path: String,
    cwd: Option<PathBuf>,
    make_cwd: bool,
    user: Option<User>,
    groups: Vec<u32>,
}

impl Exec {
    fn new(process: &Process) -> Result<Exec> {
        let env_var = |name: &str| {
            let prefix = format!("{name}=");
            let entry = process.env.iter().find(|e| e.starts_with(&prefix));
            entry.map(|e| e[prefix.len()..].to_string())
        };
        Ok(Exec {
            argv: command_line(&process.args)?,
            env: c_strings(&process.env).context("the environment contains a NUL byte")?,
            path: env_var("PATH").unwrap_or_default(),
            cwd: process.cwd.clone(),
            make_cwd: process.make_cwd,
            user: process.user,
            groups: process.groups.clone(),
        })
    }
}

/// Turn the command words into the C strings `execve` takes.
fn command_line(command: &[String]) -> Result<Vec<CString>> {
    if command.is_empty() {
        bail!(
            "missing command: put it after `--`, e.g. `{} run -- sh`",
            program_name()
        );
    }
    c_strings(command).context("the command contains a NUL byte")
}

fn c_strings(words: &[String]) -> Result<Vec<CString>, std::ffi::NulError> {
    words
        .iter()
        .map(|word| CString::new(word.as_str()))
        .collect()
}

// ANCHOR: signals
static CHILD: AtomicI32 = AtomicI32::new(0);
static SIGNALS_SEEN: AtomicUsize = AtomicUsize::new(0);
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Pass SIGINT, SIGTERM and SIGHUP on to the child. PID 1 ignores every
/// signal it has no handler for (`sleep` has none), so a second signal
/// becomes SIGKILL, which PID 1 cannot ignore when it comes from outside.
extern "C" fn on_signal(signal: nix::libc::c_int) {
    let child = CHILD.load(Ordering::SeqCst);
    if child == 0 {
        INTERRUPTED.store(true, Ordering::SeqCst);
        return;
    }
    let signal = if SIGNALS_SEEN.fetch_add(1, Ordering::SeqCst) == 0 {
        signal
    } else {
        nix::libc::SIGKILL
    };
    // SAFETY: kill(2) is async-signal-safe.
    unsafe { nix::libc::kill(child, signal) };
}

fn forward_signals_to_child() -> Result<()> {
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only touches atomics and calls kill(2).
        unsafe { sigaction(signal, &action) }.context("sigaction")?;
    }
    Ok(())
}
// ANCHOR_END: signals

// ANCHOR: wait_for_exit
/// Wait for the child and turn its end into an exit status, the shell's
/// way: its exit code, or 128+N when signal N killed it.
pub fn wait_for_exit(child: Pid) -> Result<i32> {
    loop {
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, signal, _)) => return Ok(128 + signal as i32),
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(e) => return Err(e).context("waitpid"),
        }
    }
}
// ANCHOR_END: wait_for_exit

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_command_is_refused() {
        let err = command_line(&[]).unwrap_err().to_string();
        assert!(err.starts_with("missing command"), "{err}");
    }

    #[test]
    fn a_nul_byte_is_refused() {
        assert!(command_line(&["a\0b".into()]).is_err());
    }

    #[test]
    fn command_words_become_c_strings() {
        let argv = command_line(&["sh".into(), "-c".into(), "echo $$".into()]).unwrap();
        assert_eq!(argv[2].to_str().unwrap(), "echo $$");
    }
}
