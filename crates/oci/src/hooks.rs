//! The bundle's hooks (`hooks` in config.json): programs the runtime runs
//! at points of the container's life, each with the container's state
//! JSON on its stdin. A hook that fails, or outlives its `timeout`, is an
//! error.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{Hook, Hooks, Spec};
use serde_json::Value;

/// The hooks of one kind (`prestart`, `poststop`, ...) in `spec`.
pub fn of_kind<'a>(spec: &'a Spec, kind: &str) -> &'a [Hook] {
    let Some(hooks) = spec.hooks() else {
        return &[];
    };
    let list = match kind {
        "prestart" => hooks.prestart(),
        "createRuntime" => hooks.create_runtime(),
        "poststart" => hooks.poststart(),
        "poststop" => hooks.poststop(),
        _ => &None,
    };
    list.as_deref().unwrap_or_default()
}

/// Hooks that run inside the container are not supported: say so.
pub fn check_supported(hooks: &Hooks) -> Result<()> {
    let inside = [
        ("createContainer", hooks.create_container()),
        ("startContainer", hooks.start_container()),
    ];
    for (kind, list) in inside {
        if list.as_ref().is_some_and(|l| !l.is_empty()) {
            bail!(
                "hooks.{kind}: not supported (only prestart, createRuntime, poststart, poststop)"
            );
        }
    }
    Ok(())
}

/// `prestart` and `createRuntime` hooks as a layer of chapter 01: in the
/// parent, once the child exists (its namespaces can be seen in /proc)
/// and before it is released. A failing hook fails `create`, and chapter
/// 01 undoes everything.
pub struct RuntimeHooks {
    spec: Spec,
    state: Value,
}

impl RuntimeHooks {
    pub fn new(spec: &Spec, state: Value) -> Self {
        RuntimeHooks {
            spec: spec.clone(),
            state,
        }
    }
}

impl ch01::Layer for RuntimeHooks {
    fn setup_from_parent(&mut self, child: nix::unistd::Pid) -> Result<()> {
        self.state["pid"] = child.as_raw().into();
        run_all(&self.spec, "prestart", &self.state)?;
        run_all(&self.spec, "createRuntime", &self.state)
    }
}

/// Run every hook of `kind`, in order; the first failure stops them.
pub fn run_all(spec: &Spec, kind: &str, state: &Value) -> Result<()> {
    for hook in of_kind(spec, kind) {
        run(hook, state).with_context(|| format!("hooks.{kind}: {}", hook.path().display()))?;
    }
    Ok(())
}

/// `poststop`, from `delete`: a failure is only a warning (runc), the
/// `start`'s hooks, once the process runs: a failing one fails `start`.
pub fn run_poststart(bundle: &Path, state: &Value) -> Result<()> {
    run_all(&crate::config::load(bundle)?.spec, "poststart", state)
}

/// container is gone already.
pub fn run_poststop(bundle: &Path, state: &Value) {
    let ran = crate::config::load(bundle).and_then(|b| run_all(&b.spec, "poststop", state));
    if let Err(e) = ran {
        eprintln!("{}: warning: {e:#}", pfs_cli::program_name());
    }
}

/// Run one hook: `path` with `args` (`args[0]` is its `argv[0]`) and exactly
/// `env`, the state on its stdin; kill it after `timeout` seconds.
pub fn run(hook: &Hook, state: &Value) -> Result<()> {
    let mut command = Command::new(hook.path());
    let args = hook.args().clone().unwrap_or_default();
    if let Some((argv0, rest)) = args.split_first() {
        std::os::unix::process::CommandExt::arg0(&mut command, argv0);
        command.args(rest);
    }
    command.env_clear();
    for pair in hook.env().as_deref().unwrap_or_default() {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        command.env(name, value);
    }
    let mut child = command
        .stdin(Stdio::piped())
        .spawn()
        .context("cannot run it")?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine.
        let _ = stdin.write_all(state.to_string().as_bytes());
    }
    let timeout = hook.timeout().map(|s| Duration::from_secs(s.max(1) as u64));
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().context("wait for it")? {
            if !status.success() {
                bail!("failed ({status})");
            }
            return Ok(());
        }
        if timeout.is_some_and(|t| started.elapsed() > t) {
            let _ = child.kill();
            let _ = child.wait();
            bail!("timed out after {}s", timeout.unwrap_or_default().as_secs());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
