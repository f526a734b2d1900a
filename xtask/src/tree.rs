//! The workshop's copy of the workspace, target/workshop/tree: the sources
//! with some chapter functions replaced (by the attendee's, or by the
//! chapter's own, put back by the same splice). Compiler messages and
//! panics name lines of the copy; `name_lines` names the attendee's file.

use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::exercises::Exercise;
use crate::splice;

pub const WS: &str = "target/workshop"; // everything the checks make
pub const TREE: &str = "target/workshop/tree";

/// What goes between an exercise's markers in the copy.
pub enum Version {
    /// A file of the attendee's (or verify's unsolved skeleton).
    File(PathBuf),
    /// The chapter's own function, which must splice back byte for byte.
    Reference,
}

/// Where a replaced function sits in the copy: lines `first..=last` of `file`.
pub struct Spliced {
    pub exercise: Exercise,
    first: usize,
    last: usize,
}

/// Make target/workshop/tree the workspace's sources with the given
/// functions replaced. Only files whose content changed are rewritten, so
/// that cargo rebuilds exactly what changed.
pub fn prepare(versions: &[(Exercise, Version)]) -> Result<Vec<Spliced>> {
    let mut files = BTreeMap::new();
    for source in sources()? {
        read_into(&mut files, &source)?;
    }
    for (ex, version) in versions {
        let path = PathBuf::from(&ex.file);
        let original = String::from_utf8(
            files
                .get(&path)
                .with_context(|| format!("no {}", ex.file))?
                .clone(),
        )?;
        let content = match version {
            Version::File(file) => {
                fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?
            }
            Version::Reference => splice::region(&original, &ex.anchor).unwrap_or_default(),
        };
        let spliced = splice::splice(&original, &ex.anchor, &content)
            .with_context(|| format!("no `// ANCHOR: {}` in {}", ex.anchor, ex.file))?;
        if matches!(version, Version::Reference) && spliced != original {
            bail!(
                "splicing {} back into {} did not give the same file",
                ex.anchor,
                ex.file
            );
        }
        files.insert(path, spliced.into_bytes());
        if let Version::File(_) = version {
            allow_unused(&mut files, ex)?;
        }
    }
    // Where each function ended up, once all are in (each splice moves the
    // lines of the others in the same file).
    let mut spliced = Vec::new();
    for (ex, _) in versions {
        let text = String::from_utf8_lossy(&files[Path::new(&ex.file)]).into_owned();
        let line_of = |marker: String| {
            text.lines()
                .position(|line| line.ends_with(&marker))
                .unwrap_or(0)
                + 1
        };
        let first = line_of(format!("// ANCHOR: {}", ex.anchor)) + 1;
        let last = line_of(format!("// ANCHOR_END: {}", ex.anchor)) - 1;
        spliced.push(Spliced {
            exercise: ex.clone(),
            first,
            last,
        });
    }
    write_changed(Path::new(TREE), &files)?;
    Ok(spliced)
}

/// An unsolved step leaves imports, variables and functions unused: their
/// warnings would give away what it needs. Allow them in its crate (only
/// there: the other crates build as they are).
fn allow_unused(files: &mut BTreeMap<PathBuf, Vec<u8>>, ex: &Exercise) -> Result<()> {
    let manifest = Path::new(&ex.file[..ex.file.find("/src/").unwrap_or(0)]).join("Cargo.toml");
    let text = String::from_utf8(files.get(&manifest).cloned().unwrap_or_default())?;
    if !text.lines().any(|line| line.starts_with("[lints")) {
        let text = text + "\n[lints.rust]\nunused = \"allow\" # added by cargo xtask workshop\n";
        files.insert(manifest, text.into_bytes());
    }
    Ok(())
}

/// What the copy holds: the workspace's manifest, lock and settings, and
/// the folders of its members (chapters/, crates/, testkit/, xtask/ ...).
fn sources() -> Result<Vec<PathBuf>> {
    let mut sources: Vec<PathBuf> = [
        "Cargo.toml",
        "Cargo.lock",
        "rust-toolchain.toml",
        "rustfmt.toml",
        ".rustfmt.toml",
        "clippy.toml",
        ".cargo",
    ]
    .iter()
    .map(PathBuf::from)
    .filter(|path| path.exists())
    .collect();
    for member in crate::code_map::workspace_members()? {
        let top = PathBuf::from(member.split('/').next().unwrap_or_default());
        if !sources.contains(&top) {
            sources.push(top);
        }
    }
    Ok(sources)
}

/// Every file under `path` (or `path` itself), without target/ folders.
fn read_into(files: &mut BTreeMap<PathBuf, Vec<u8>>, path: &Path) -> Result<()> {
    if path.is_dir() {
        for entry in fs::read_dir(path)? {
            let entry = entry?;
            if entry.file_name() != "target" {
                read_into(files, &entry.path())?;
            }
        }
    } else {
        files.insert(
            path.to_path_buf(),
            fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        );
    }
    Ok(())
}

/// Make the folder `root` hold exactly `files`, touching only what differs.
fn write_changed(root: &Path, files: &BTreeMap<PathBuf, Vec<u8>>) -> Result<()> {
    for (path, content) in files {
        let target = root.join(path);
        if fs::read(&target).ok().as_ref() != Some(content) {
            fs::create_dir_all(target.parent().unwrap_or(root))?;
            fs::write(&target, content)?;
        }
    }
    let mut present = BTreeMap::new();
    if root.exists() {
        read_into(&mut present, root)?;
    }
    for path in present.keys() {
        if !files.contains_key(path.strip_prefix(root)?) {
            fs::remove_file(path)?;
        }
    }
    Ok(())
}

/// Compiler messages and panics name lines of the copy: name the lines of
/// the attendee's file instead (`workshop/work/02b.rs:3`), and the rest of a
/// file that holds one by its path in the copy (its lines moved). Other
/// files are as in the workspace.
pub fn name_lines(text: &str, spliced: &[Spliced]) -> String {
    let mut text = text.to_string();
    // Cargo in a workspace of its own names its files from there
    // (src/main.rs): give them their path in the copy first.
    for s in spliced {
        if let Some(dir) = s.exercise.own_workspace() {
            let relative = &s.exercise.file[dir.len() + 1..];
            for before in [" ", ">"] {
                text = text.replace(
                    &format!("{before}{relative}:"),
                    &format!("{before}{dir}/{relative}:"),
                );
            }
        }
    }
    text.lines()
        .map(|line| name_lines_in(line, spliced) + "\n")
        .collect()
}

fn name_lines_in(line: &str, spliced: &[Spliced]) -> String {
    let is_path_char = |c: char| c.is_ascii_alphanumeric() || "_./-".contains(c);
    let mut out = String::new();
    let mut rest = line;
    // The earliest mention `FILE:LINE` of a spliced file, repeatedly.
    while let Some((at, s)) = spliced
        .iter()
        .filter_map(|s| {
            rest.find(&format!("{}:", s.exercise.file))
                .map(|at| (at, s))
        })
        .min_by_key(|(at, _)| *at)
    {
        let file = &s.exercise.file;
        let start = rest[..at]
            .char_indices()
            .rev()
            .find(|(_, c)| !is_path_char(*c))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let after = &rest[at + file.len() + 1..];
        let digits = after
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(after.len());
        let Ok(number) = after[..digits].parse::<usize>() else {
            out.push_str(&rest[..at + file.len() + 1]);
            rest = after;
            continue;
        };
        out.push_str(&rest[..start]);
        let ours = spliced
            .iter()
            .find(|o| o.exercise.file == *file && (o.first..=o.last).contains(&number));
        match ours {
            Some(o) => out.push_str(&format!(
                "workshop/work/{}.rs:{}",
                o.exercise.id,
                number - o.first + 1
            )),
            None if start == at => out.push_str(&format!("{TREE}/{file}:{number}")),
            None => out.push_str(&format!("{}:{number}", &rest[start..at + file.len()])),
        }
        rest = &after[digits..];
    }
    out + rest
}
