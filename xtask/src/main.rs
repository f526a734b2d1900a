//! The project's developer commands, run as `cargo xtask ...` (an alias in
//! .cargo/config.toml). Tooling, not a lesson:
//!
//! - `cargo xtask workshop ...`: the workshop engine (book: "Workshop"). An
//!   exercise is one function of a chapter, between its mdBook markers
//!   `// ANCHOR: NAME` and `// ANCHOR_END: NAME` (workshop/exercises.txt
//!   lists them). The attendee's version lives in workshop/work/ID.rs, which
//!   git ignores; it starts as the chapter's function with its body replaced
//!   by todo!(). `check` copies the workspace's sources to
//!   target/workshop/tree, puts the attendee's function there in place of
//!   the chapter's, and runs that chapter's real integration tests.
//! - `cargo xtask code-map`: the table of the book's "Map of the code".
//! - `cargo xtask book-width`: no line of the book's commands and outputs is
//!   wider than its column.

mod book_width;
mod check;
mod code_map;
mod exercises;
mod report;
mod sandbox;
mod splice;
mod tree;
mod verify;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};
use nix::fcntl::{Flock, FlockArg};
use std::ffi::OsString;
use std::fs::{self, File};
use std::path::Path;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "Developer commands of Pods from Scratch"
)]
enum Xtask {
    /// Write a chapter's key step yourself; the chapter's own tests check it.
    #[command(subcommand)]
    Workshop(Workshop),
    /// Write the book's map of the code (book/src/code-map-table.md).
    CodeMap {
        /// Write nothing: fail if the committed table is stale or a chapter
        /// is over 500 lines.
        #[arg(long)]
        check: bool,
    },
    /// Fail if a line of the book's commands, outputs or diagrams is wider
    /// than its column (87 characters).
    BookWidth,
}

/// ID is an exercise (01, 02a, ...) or a chapter (02: all of its exercises).
#[derive(Subcommand)]
enum Workshop {
    /// The exercises, and how far you are.
    List,
    /// Build your version, run the chapter's tests (as root).
    Check { id: String },
    /// A hint.
    Hint { id: String },
    /// The difference between yours and the chapter's.
    Solution { id: String },
    /// Start again (yours is kept as workshop/work/ID.rs.old).
    Reset { id: String },
    /// For maintainers and CI: every exercise fails unsolved and passes
    /// with the chapter's code, both clean for rustfmt and clippy.
    Verify {
        /// Run the other cgroup version's exercises in the cgroup v2 VM.
        #[arg(long)]
        vm: bool,
        id: Option<String>,
    },
    /// Cargo's runner for the test programs of a check (see sandbox.rs).
    #[command(hide = true)]
    Sandbox {
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        program: Vec<OsString>,
    },
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(error) => {
            eprintln!("xtask: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<ExitCode> {
    let command = Xtask::parse();
    if let Xtask::Workshop(Workshop::Sandbox { program }) = &command {
        return sandbox::run(program); // in the copy: stay where cargo put us
    }
    // Everything else works from the repository's root.
    std::env::set_current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))?;
    let workshop = match command {
        Xtask::CodeMap { check } => return code_map::run(check),
        Xtask::BookWidth => return book_width::run(),
        Xtask::Workshop(workshop) => workshop,
    };
    if let Workshop::List = workshop {
        check::list()?;
        return Ok(ExitCode::SUCCESS);
    }
    if std::env::current_dir()?
        .display()
        .to_string()
        .contains(char::is_whitespace)
    {
        bail!("the repository's path must not contain spaces (cargo's runner setting cannot hold them)");
    }
    // One command at a time: they share target/workshop.
    fs::create_dir_all(tree::WS)?;
    let lock = File::create(Path::new(tree::WS).join("lock"))?;
    let Ok(_lock) = Flock::lock(lock, FlockArg::LockExclusiveNonblock) else {
        bail!("another cargo xtask workshop is running");
    };
    match workshop {
        Workshop::Check { id } => check::check(&id),
        Workshop::Hint { id } => check::hint(&id).map(|()| ExitCode::SUCCESS),
        Workshop::Solution { id } => check::solution(&id).map(|()| ExitCode::SUCCESS),
        Workshop::Reset { id } => check::reset(&id).map(|()| ExitCode::SUCCESS),
        Workshop::Verify { vm, id } => verify::verify(vm, id.as_deref().unwrap_or("all")),
        Workshop::List | Workshop::Sandbox { .. } => unreachable!("handled above"),
    }
}
