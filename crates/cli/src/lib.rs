//! # pfs-cli: the command-line skeleton of every chapter
//!
//! Machinery, not a lesson. Each chapter's binary (`ch01` … `ch06`) does
//! the same few things around its own commands: parse the command line
//! with clap, turn `--explain` on, and end with the right exit status, a
//! mistake said in one line. They live here once, so that a chapter's
//! `main.rs` is only the list of its commands:
//!
//! ```ignore
//! fn main() {
//!     pfs_cli::main(ABOUT, |command| match command {
//!         Command::Run(args) => ch02::run(&args),
//!     })
//! }
//! ```
//!
//! [`explain`] prints the kernel steps the chapters take; the steps
//! themselves, and the root check's reason, are the chapters' lessons.
//! [`volume`] parses and checks `-v` and `--tmpfs`; mounting them is
//! chapter 04's lesson. [`process`] reads `-e`, `--env-file`, `-w` and
//! `-u` (and an image's defaults) into the [`Process`] chapter 01 executes.
//! [`fault`] is the reliability suite's test-only hook: `PFS_FAULT_AT=STEP`
//! kills the runtime with SIGKILL at that step of a run.

pub mod explain;
pub mod fault;
pub mod process;
pub mod volume;

use anyhow::{bail, Result};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

pub use process::{ImageDefaults, Process, ProcessArgs, User};

/// Exit status when the runtime itself fails (bad input, a failed step),
/// as `docker run` does; 126 and 127 keep the shell's meaning.
pub const EXIT_RUNTIME_FAILED: i32 = 125;
/// Exit status for a command line clap cannot parse.
const EXIT_USAGE: i32 = 2;

/// The options every chapter's binary takes, around its own commands `C`.
#[derive(Parser)]
#[command(version)]
struct Cli<C: Subcommand> {
    /// Print each kernel step as it happens, with its shell equivalent
    #[arg(long, global = true)]
    explain: bool,
    #[command(subcommand)]
    command: C,
}

/// The commands of a chapter that only runs containers: `run`, and
/// `cleanup` for what runs killed with SIGKILL left (chapters 05 and 07;
/// `R` and `C` are the chapter's options of each).
#[derive(clap::Subcommand)]
pub enum RunOrCleanup<R: clap::Args, C: clap::Args> {
    /// Run CMD in a container (see `run --help` for this chapter's options)
    Run(Box<R>),
    /// Remove what killed runs left (cgroups, containers' directories, leases, veths)
    Cleanup(C),
}

/// A chapter's `main`: parse the command line into one of the chapter's
/// commands `C` (described by `about` in `--help`), turn `--explain` on if
/// asked, run the command with `run`, and exit with its status.
pub fn main<C: Subcommand>(about: &'static str, run: impl FnOnce(C) -> Result<i32>) -> ! {
    let cli: Cli<C> = parse_args(about);
    fault::arm();
    if cli.explain {
        explain::enable();
    }
    exit_with(run(cli.command))
}

/// Parse the command line; a mistake is reported as one line (clap's
/// first) and exit status 2, help and version are printed as usual.
fn parse_args<C: Subcommand>(about: &'static str) -> Cli<C> {
    let command = Cli::<C>::command().name(program_name()).about(about);
    let parsed = command
        .try_get_matches()
        .and_then(|matches| Cli::<C>::from_arg_matches(&matches));
    parsed.unwrap_or_else(|error| exit_on_usage_error(error))
}

/// Report a command line clap could not parse in one line (clap's first)
/// with exit status 2; `--help` and `--version` print as usual. Chapter 08,
/// whose command line is runc's, uses it too.
pub fn exit_on_usage_error(error: clap::Error) -> ! {
    if !error.use_stderr() {
        error.exit(); // --help or --version
    }
    let rendered = error.to_string();
    let first = rendered.lines().next().unwrap_or_default();
    let what = first.trim_start_matches("error: ");
    eprintln!("{}: {what} (see --help)", program_name());
    std::process::exit(EXIT_USAGE)
}

/// Exit with the command's status, or print the error as one line.
pub fn exit_with(result: Result<i32>) -> ! {
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("{}: {e:#}", program_name());
            std::process::exit(EXIT_RUNTIME_FAILED)
        }
    }
}

/// The name this program was started as (`ch01`, `ch02`, ...), for messages.
pub fn program_name() -> String {
    std::env::args_os()
        .next()
        .map(std::path::PathBuf::from)
        .and_then(|path| path.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "container".into())
}

/// Creating namespaces takes CAP_SYS_ADMIN: say so before doing anything.
pub fn require_root() -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        let name = program_name();
        bail!("needs root to create namespaces: run it as root, e.g. `sudo {name} run -- sh`");
    }
    Ok(())
}
