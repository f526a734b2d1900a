//! A bundle: a directory with `config.json` (the OCI runtime spec's
//! configuration, read with oci-spec's types) and a root filesystem.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use oci_spec::runtime::Spec;

/// A bundle, read and checked.
#[derive(Debug)]
pub struct Bundle {
    /// The bundle's directory, absolute.
    pub dir: PathBuf,
    pub spec: Spec,
    /// `root.path`, absolute (it may be given relative to the bundle).
    pub rootfs: PathBuf,
}

/// Read `dir/config.json`.
pub fn load(dir: &Path) -> Result<Bundle> {
    let dir = std::path::absolute(dir).with_context(|| format!("bundle {}", dir.display()))?;
    let file = dir.join("config.json");
    if !file.is_file() {
        bail!(
            "no config.json in bundle {}: pass the bundle's directory with --bundle",
            dir.display()
        );
    }
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    crate::validate::check(&text)?; // before anything is created
    let spec = Spec::load(&file).with_context(|| format!("cannot read {}", file.display()))?;
    let Some(root) = spec.root() else {
        bail!("{}: root.path is missing", file.display());
    };
    let rootfs = dir.join(root.path());
    if !rootfs.is_dir() {
        bail!(
            "{}: root.path {} is not a directory",
            file.display(),
            rootfs.display()
        );
    }
    Ok(Bundle { dir, spec, rootfs })
}

/// Read `exec --process FILE`: a `process` object as in config.json.
pub fn load_process(file: &Path) -> Result<oci_spec::runtime::Process> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a process (as config.json's)", file.display()))
}

/// What `create` cannot do, refused before anything is made.
pub fn check_for_create(spec: &Spec, socket: Option<&Path>) -> Result<()> {
    console_socket(spec, socket)?;
    match spec.hooks() {
        Some(hooks) => crate::hooks::check_supported(hooks),
        None => Ok(()),
    }
}

/// Where to send the terminal: `--console-socket` when the process asks
/// for a terminal (`process.terminal`), which it needs.
pub fn console_socket<'a>(
    spec: &Spec,
    console_socket: Option<&'a Path>,
) -> Result<Option<&'a Path>> {
    let terminal = spec.process().as_ref().and_then(|p| p.terminal());
    match (terminal, console_socket) {
        (Some(true), None) => bail!("process.terminal needs --console-socket"),
        (Some(true), socket) => Ok(socket),
        _ => Ok(None),
    }
}

/// The spec `exec` runs: the container's, with its process replaced by
/// `process_file` (`--process`), or by the command words with the
/// container's environment, working directory and user.
pub fn exec_spec(bundle: &Path, args: &crate::cli::ExecArgs) -> Result<Spec> {
    let (process_file, command) = (args.process.as_deref(), &args.command);
    let mut spec = load(bundle)?.spec;
    let process = match process_file {
        Some(file) => load_process(file)?,
        None if command.is_empty() => bail!("exec: give a command, or --process FILE"),
        None => {
            let mut process = spec.process().clone().unwrap_or_default();
            process.set_args(Some(command.to_vec()));
            process
        }
    };
    let mut process = process;
    if args.tty {
        process.set_terminal(Some(true)); // runc's --tty
    }
    console_socket(&spec, args.console_socket.as_deref())?; // checked before anything is made
    spec.set_process(Some(process));
    Ok(spec)
}
