//! The table of exercises (workshop/exercises.txt), the attendee's files
//! (workshop/work/ID.rs) and how far the attendee is.

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::fs;
use std::path::{Path, PathBuf};

use crate::splice;

pub const TABLE: &str = "workshop/exercises.txt";
pub const WORK: &str = "workshop/work";

/// One line of the table: one function of a chapter to write.
#[derive(Debug, Clone)]
pub struct Exercise {
    pub id: String,
    /// The chapter's crate (`ch02`), whose integration test `test` checks it.
    pub krate: String,
    /// The chapter's source file that holds the function.
    pub file: String,
    /// The mdBook anchor around the function.
    pub anchor: String,
    pub test: String,
    /// The test that shows the step most directly: `check` runs it first.
    pub focus: String,
    /// Test names to skip (substrings); `--explain` tests are always skipped.
    pub skip: Vec<String>,
    /// `cgroup1` or `cgroup2` when only that cgroup version runs the code.
    pub needs: Option<String>,
    pub title: String,
}

impl Exercise {
    /// The chapter's number, `02` for `ch02`.
    pub fn chapter(&self) -> &str {
        self.krate.trim_start_matches("ch")
    }

    /// Whether the chapter's tests run this exercise's code on this machine.
    pub fn runs_here(&self) -> bool {
        self.needs
            .as_deref()
            .map_or(true, |needs| needs == host_cgroup())
    }

    /// The attendee's version: workshop/work/ID.rs.
    pub fn work_file(&self) -> PathBuf {
        Path::new(WORK).join(format!("{}.rs", self.id))
    }

    /// The folder of the exercise's texts: task.md, hint.md, expect.md.
    pub fn texts(&self) -> PathBuf {
        Path::new("workshop/exercises").join(&self.id)
    }

    /// The directory of the function's crate when that crate is a workspace
    /// of its own, which the workspace's cargo commands do not reach
    /// (chapter 06's pause program, built by ch06's build script).
    pub fn own_workspace(&self) -> Option<String> {
        let dir = &self.file[..self.file.find("/src/")?];
        let manifest = fs::read_to_string(Path::new(dir).join("Cargo.toml")).ok()?;
        manifest
            .lines()
            .any(|line| line == "[workspace]")
            .then(|| dir.to_string())
    }

    /// The exercise as given: the chapter's function with its body replaced
    /// by the task and todo!().
    pub fn skeleton(&self) -> Result<String> {
        let task = fs::read_to_string(self.texts().join("task.md"))
            .with_context(|| format!("exercise {}: no task.md", self.id))?;
        Ok(splice::skeleton(self, &self.reference()?, &task))
    }

    /// The chapter's own function: the reference solution.
    pub fn reference(&self) -> Result<String> {
        let source =
            fs::read_to_string(&self.file).with_context(|| format!("reading {}", self.file))?;
        splice::region(&source, &self.anchor)
            .with_context(|| format!("no `// ANCHOR: {}` in {}", self.anchor, self.file))
    }
}

/// Every exercise of the table, in its order.
pub fn all() -> Result<Vec<Exercise>> {
    let table = fs::read_to_string(TABLE).with_context(|| format!("reading {TABLE}"))?;
    let mut exercises = Vec::new();
    for line in table.lines().filter(|line| !line.starts_with('#')) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 9 {
            continue; // blank
        }
        let listed = |field: &str| (field != "-").then(|| field.to_string());
        exercises.push(Exercise {
            id: fields[0].into(),
            krate: fields[1].into(),
            file: fields[2].into(),
            anchor: fields[3].into(),
            test: fields[4].into(),
            focus: fields[5].into(),
            skip: listed(fields[6]).map_or(vec![], |s| s.split(',').map(String::from).collect()),
            needs: listed(fields[7]),
            title: fields[8..].join(" "),
        });
    }
    Ok(exercises)
}

/// The exercises that `want` names: one exercise, a chapter (`02`: 02a,
/// 02b ...), or `all`.
pub fn select(want: &str) -> Result<Vec<Exercise>> {
    let chosen: Vec<Exercise> = all()?
        .into_iter()
        .filter(|ex| {
            want == "all"
                || ex.id == want
                || ex.id.strip_prefix(want).is_some_and(|letter| {
                    letter.len() == 1 && letter.chars().all(|c| c.is_ascii_lowercase())
                })
        })
        .collect();
    if chosen.is_empty() {
        bail!("no exercise {want} (see cargo xtask workshop list)");
    }
    Ok(chosen)
}

/// This machine's cgroup version, as the table's `needs` column names it.
pub fn host_cgroup() -> &'static str {
    use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC};
    match statfs("/sys/fs/cgroup") {
        Ok(fs) if fs.filesystem_type() == CGROUP2_SUPER_MAGIC => "cgroup2",
        _ => "cgroup1",
    }
}

/// Create the attendee's files that do not exist yet.
pub fn ensure_work_files() -> Result<()> {
    fs::create_dir_all(WORK)?;
    for ex in all()? {
        if !ex.work_file().exists() {
            fs::write(ex.work_file(), ex.skeleton()?)?;
        }
    }
    Ok(())
}

// Passes are recorded in workshop/work/.solved as "ID SHA256" of the file
// that passed: editing the file after a pass makes it `todo` again.
const SOLVED: &str = "workshop/work/.solved";

fn sha256(path: &Path) -> Result<String> {
    let digest = Sha256::digest(fs::read(path)?);
    Ok(digest.iter().map(|byte| format!("{byte:02x}")).collect())
}

pub fn record_pass(ex: &Exercise) -> Result<()> {
    let old = fs::read_to_string(SOLVED).unwrap_or_default();
    let mut lines: Vec<String> = old
        .lines()
        .filter(|line| !line.starts_with(&format!("{} ", ex.id)))
        .map(String::from)
        .collect();
    lines.push(format!("{} {}", ex.id, sha256(&ex.work_file())?));
    fs::write(SOLVED, lines.join("\n") + "\n")?;
    Ok(())
}

/// `not started` (the file is the exercise as given), `solved` (this very
/// file passed its check), or `todo`.
pub fn state(ex: &Exercise) -> Result<&'static str> {
    let work = ex.work_file();
    if fs::read_to_string(&work)? == ex.skeleton()? {
        return Ok("not started");
    }
    let passed = format!("{} {}", ex.id, sha256(&work)?);
    let solved = fs::read_to_string(SOLVED).unwrap_or_default();
    Ok(if solved.lines().any(|line| line == passed) {
        "solved"
    } else {
        "todo"
    })
}

/// Whether the attendee's function still reaches a todo!() (outside comments).
pub fn still_todo(ex: &Exercise) -> bool {
    fs::read_to_string(ex.work_file()).is_ok_and(|text| {
        text.lines()
            .any(|line| line.trim_start().starts_with("todo!("))
    })
}
