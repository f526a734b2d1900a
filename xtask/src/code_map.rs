//! `cargo xtask code-map`: the table of the book's "Map of the code" page.
//! For every crate of the workspace: lesson, machinery or tooling, what it
//! holds (its Cargo.toml description), and its lines of code, counted as a
//! reader meets them. `--check` fails when the committed table is stale, or
//! when a chapter is over its 500 lines.

use anyhow::{Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub const OUTPUT: &str = "book/src/code-map-table.md";
/// A chapter is a lesson a reader finds in one sitting.
const CHAPTER_LIMIT: usize = 500;

/// The workspace's members, from the root Cargo.toml (`dir/*` expanded).
pub fn workspace_members() -> Result<Vec<String>> {
    let manifest = fs::read_to_string("Cargo.toml").context("reading Cargo.toml")?;
    let list = manifest
        .split_once("members = [")
        .and_then(|(_, after)| after.split_once(']'))
        .map_or("", |(list, _)| list);
    let mut members = Vec::new();
    for member in list
        .split(',')
        .map(|m| m.trim().trim_matches('"'))
        .filter(|m| !m.is_empty())
    {
        match member.strip_suffix("/*") {
            Some(parent) => {
                let mut dirs: Vec<String> = fs::read_dir(parent)?
                    .filter_map(|entry| Some(entry.ok()?.path()))
                    .filter(|dir| dir.join("Cargo.toml").exists())
                    .map(|dir| dir.display().to_string())
                    .collect();
                dirs.sort();
                members.extend(dirs);
            }
            None => members.push(member.to_string()),
        }
    }
    Ok(members)
}

/// Lines a reader meets in one file: non-blank, non-comment lines before
/// the first `#[cfg(test)]` (as /work/shared/tools/lesson-lines.py counts).
pub fn count_lines(source: &str) -> usize {
    let mut count = 0;
    let mut in_block_comment = false;
    for line in source.lines().map(str::trim) {
        if line.starts_with("#[cfg(test)]") {
            break;
        }
        // A block comment runs from a line that starts with /* to one with */.
        if in_block_comment || line.starts_with("/*") {
            in_block_comment = !line.contains("*/");
        } else if !line.is_empty() && !line.starts_with("//") {
            count += 1;
        }
    }
    count
}

/// The Rust files a reader meets in a crate: not tests/, benches/,
/// examples/, target/, nor build.rs.
fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)?
        .map(|e| Ok(e?.path()))
        .collect::<Result<_>>()?;
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if path.is_dir() {
            if !["tests", "target", "benches", "examples"].contains(&name.as_ref()) {
                rust_files(&path, found)?;
            }
        } else if name.ends_with(".rs") && name != "build.rs" {
            found.push(path);
        }
    }
    Ok(())
}

struct Crate {
    dir: String,
    name: String,
    description: String,
    role: String,
    /// Each file (relative to `dir`) and its lines.
    files: Vec<(String, usize)>,
}

impl Crate {
    fn read(dir: &str, inside: Option<&str>) -> Result<Crate> {
        let manifest = fs::read_to_string(Path::new(dir).join("Cargo.toml"))?;
        let field = |key: &str| {
            manifest
                .lines()
                .find_map(|line| line.strip_prefix(key)?.trim_start().strip_prefix('='))
                .map_or(String::new(), |value| {
                    value.trim().trim_matches('"').to_string()
                })
        };
        // The role comes from where the crate lives.
        let role = match (dir.split('/').next(), inside) {
            (_, Some(parent)) => format!("lesson (counted in {parent})"),
            (Some("chapters"), _) => "lesson".into(),
            (Some("crates"), _) => "machinery".into(),
            _ => "tooling".into(),
        };
        let mut paths = Vec::new();
        rust_files(Path::new(dir), &mut paths)?;
        let mut files = Vec::new();
        for path in paths {
            let lines = count_lines(&fs::read_to_string(&path)?);
            files.push((path.strip_prefix(dir)?.display().to_string(), lines));
        }
        Ok(Crate {
            dir: dir.into(),
            name: field("name"),
            description: field("description"),
            role,
            files,
        })
    }

    fn lines(&self) -> usize {
        self.files.iter().map(|(_, lines)| lines).sum()
    }

    fn is_chapter(&self) -> bool {
        self.role == "lesson"
    }
}

/// Every crate of the workspace, and the crates that live inside one of
/// them as workspaces of their own (chapter 06's pause program).
fn crates() -> Result<Vec<Crate>> {
    let mut crates = Vec::new();
    for member in workspace_members()? {
        let parent = Crate::read(&member, None)?;
        let nested: Vec<String> = parent
            .files
            .iter()
            .filter_map(|(file, _)| Some(file.split_once("/src/")?.0.to_string()))
            .filter(|dir| Path::new(&member).join(dir).join("Cargo.toml").exists())
            .collect();
        let mut nested_crates = Vec::new();
        for dir in dedup(nested) {
            nested_crates.push(Crate::read(&format!("{member}/{dir}"), Some(&parent.name))?);
        }
        crates.push(parent);
        crates.extend(nested_crates);
    }
    let rank = |c: &Crate| {
        ["lesson", "machinery", "tooling"]
            .iter()
            .position(|r| c.role.starts_with(r))
    };
    crates.sort_by_key(rank);
    Ok(crates)
}

fn dedup(mut items: Vec<String>) -> Vec<String> {
    items.dedup();
    items
}

/// The markdown table, and the totals under it.
fn table(crates: &[Crate]) -> String {
    let mut out = String::from(
        "<!-- Written by `cargo xtask code-map`; CI runs `cargo xtask code-map --check`. -->\n\n\
         | Crate | Folder | Role | What it holds | Lines | Files (lines) |\n\
         |---|---|---|---|--:|---|\n",
    );
    for c in crates {
        let files: Vec<String> = c
            .files
            .iter()
            .map(|(file, lines)| format!("`{file}` {lines}"))
            .collect();
        out.push_str(&format!(
            "| `{}` | `{}/` | {} | {} | {} | {} |\n",
            c.name,
            c.dir,
            c.role,
            c.description,
            c.lines(),
            files.join(", ")
        ));
    }
    let total = |role: &str| -> usize {
        crates
            .iter()
            .filter(|c| c.role == role)
            .map(Crate::lines)
            .sum()
    };
    out.push_str(&format!(
        "\nLines: non-blank, non-comment lines before the first `#[cfg(test)]`, without tests/ and build.rs.\n\
         In all: {} lines of lessons, {} of machinery, {} of tooling.\n",
        total("lesson"),
        total("machinery"),
        total("tooling")
    ));
    out
}

pub fn run(check: bool) -> Result<ExitCode> {
    let crates = crates()?;
    let table = table(&crates);
    let mut ok = true;
    for chapter in crates
        .iter()
        .filter(|c| c.is_chapter() && c.lines() > CHAPTER_LIMIT)
    {
        eprintln!(
            "code-map: {} has {} lines of lesson code, more than a chapter's {CHAPTER_LIMIT}: \
             move what it does not teach to a support crate",
            chapter.name,
            chapter.lines()
        );
        ok = false;
    }
    if check {
        if fs::read_to_string(OUTPUT).ok().as_deref() != Some(table.as_str()) {
            eprintln!("code-map: {OUTPUT} is stale: run `cargo xtask code-map` and commit it");
            ok = false;
        }
        return Ok(if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    fs::write(OUTPUT, &table)?;
    println!("wrote {OUTPUT}");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::count_lines;

    #[test]
    fn counts_code_lines_before_the_tests_only() {
        let source = "//! Doc.\n\nuse x;\n/* a\n b */\n/* one line */\nfn f() {} // trailing\n    // indented\n#[cfg(test)]\nmod tests {}\n";
        assert_eq!(count_lines(source), 2);
    }
}
