//! The command line of an OCI runtime, as podman's conmon and containerd's
//! runc shim call it: runc's commands and flags.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Where container state lives unless `--root` says otherwise (runc's is
/// `/run/runc`).
pub const DEFAULT_ROOT: &str = "/run/pods-from-scratch/oci";

/// What `--version` prints after `ch08 `, in runc's shape: our version,
/// then the runtime spec's (oci-spec's, checked by a test).
pub const VERSION: &str = concat!("version ", env!("CARGO_PKG_VERSION"), "\nspec: 1.1.0");

/// `ch08 [GLOBAL OPTIONS] COMMAND`: runc's global options come first.
#[derive(Parser, Debug)]
#[command(name = "ch08", version = VERSION)]
pub struct Cli {
    /// Directory of the containers' state (runc: --root)
    #[arg(long, global = true, value_name = "DIR", default_value = DEFAULT_ROOT)]
    pub root: PathBuf,
    /// Also write errors (and with --debug, more) to this file
    #[arg(long, global = true, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Format of the --log file: text, or json as conmon and containerd read it
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log more
    #[arg(long, global = true)]
    pub debug: bool,
    /// Place cgroups through systemd (cgroupsPath is slice:prefix:name)
    #[arg(long, global = true)]
    pub systemd_cgroup: bool,
    /// Print each kernel step as it happens, with its shell equivalent
    #[arg(long, global = true)]
    pub explain: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// Formats of the `--log` file.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The commands of the OCI runtime command line.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a container from a bundle; its process waits for `start`
    Create(CreateArgs),
    /// Let a created container's process run its program
    Start(IdArgs),
    /// Create, start and wait for a container (runc run)
    Run(CreateArgs),
    /// Print a container's state, as JSON (the runtime spec's)
    State(IdArgs),
    /// Send a signal to a container's process (default SIGTERM)
    Kill(KillArgs),
    /// Remove a stopped container (--force: stop it first)
    Delete(DeleteArgs),
    /// Run another process in a running container
    Exec(ExecArgs),
    /// List the processes of a container
    Ps(PsArgs),
    /// Print what this runtime supports, as JSON (the runtime spec's features)
    Features,
}

/// A container's id.
#[derive(Args, Debug)]
pub struct IdArgs {
    /// The container's id
    pub id: String,
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// The bundle: a directory holding config.json and the root filesystem
    #[arg(long, short, value_name = "DIR", default_value = ".")]
    pub bundle: PathBuf,
    /// Write the container process's PID (on the host) to this file
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket to send the terminal's master end to (process.terminal)
    #[arg(long, value_name = "SOCKET")]
    pub console_socket: Option<PathBuf>,
    /// Use chroot-like MS_MOVE instead of pivot_root (accepted, not needed)
    #[arg(long)]
    pub no_pivot: bool,
    /// Do not create a new session keyring (accepted: none is made)
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Pass this many file descriptors after stdio on to the process
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub preserve_fds: u32,
    /// (run only) Return once the container runs, without waiting
    #[arg(long, short)]
    pub detach: bool,
    /// The new container's id
    pub id: String,
}

#[derive(Args, Debug)]
pub struct KillArgs {
    /// Send the signal to every process of the container
    #[arg(long, short)]
    pub all: bool,
    /// The container's id
    pub id: String,
    /// The signal: a name (TERM, SIGKILL) or a number
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// Kill the container first if it runs; no error if it is gone
    #[arg(long, short)]
    pub force: bool,
    /// The container's id
    pub id: String,
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// The process to run, as process.json (the `process` of config.json)
    #[arg(long, short, value_name = "FILE")]
    pub process: Option<PathBuf>,
    /// Return once the process runs, without waiting
    #[arg(long, short)]
    pub detach: bool,
    /// Write the new process's PID to this file
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Allocate a terminal (process.terminal)
    #[arg(long, short)]
    pub tty: bool,
    /// Unix socket to send the terminal's master end to
    #[arg(long, value_name = "SOCKET")]
    pub console_socket: Option<PathBuf>,
    /// Pass this many file descriptors after stdio on to the process
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub preserve_fds: u32,
    /// The container's id
    pub id: String,
    /// The command, when there is no --process
    #[arg(trailing_var_arg = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PsArgs {
    /// table, or json (an array of PIDs, as containerd asks)
    #[arg(long, short, default_value = "table")]
    pub format: String,
    /// The container's id
    pub id: String,
}

impl Cli {
    /// `--systemd-cgroup` asks for cgroups placed by systemd (over D-Bus):
    /// ch08 places them itself, as chapter 05 does, so it refuses to make a
    /// container under that flag rather than place its cgroups elsewhere.
    pub fn check_cgroup_manager(&self) -> anyhow::Result<()> {
        let creates = matches!(self.command, Command::Create(_) | Command::Run(_));
        if self.systemd_cgroup && creates {
            anyhow::bail!(
                "--systemd-cgroup: ch08 manages cgroups itself (cgroupfs); configure the caller \
                 for cgroupfs: podman: cgroup_manager = \"cgroupfs\" in containers.conf \
                 (or --cgroup-manager=cgroupfs); containerd: SystemdCgroup = false"
            );
        }
        Ok(())
    }
}

/// Parse the command line; a mistake is one line and exit status 2, as in
/// the other chapters.
pub fn parse() -> Cli {
    Cli::try_parse().unwrap_or_else(|error| pfs_cli::exit_on_usage_error(error))
}

/// A signal as `kill` takes it: a name with or without `SIG` (`TERM`,
/// `SIGKILL`, any case) or a number.
pub fn parse_signal(text: &str) -> anyhow::Result<nix::sys::signal::Signal> {
    use nix::sys::signal::Signal;
    let parsed = match text.parse::<i32>() {
        Ok(number) => Signal::try_from(number).ok(),
        Err(_) => {
            let name = text.to_uppercase();
            let name = if name.starts_with("SIG") {
                name
            } else {
                format!("SIG{name}")
            };
            name.parse::<Signal>().ok()
        }
    };
    parsed.ok_or_else(|| {
        anyhow::anyhow!("unknown signal {text:?}: use a name (TERM, SIGKILL) or a number")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal;

    #[test]
    fn signals_are_names_with_or_without_sig_or_numbers() {
        assert_eq!(parse_signal("TERM").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("sigkill").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("99").is_err());
    }

    #[test]
    fn the_version_names_the_spec_we_read() {
        let spec = format!("spec: {}", oci_spec::runtime::VERSION);
        assert!(VERSION.ends_with(&spec), "{VERSION}");
    }
}
