//! `cargo xtask book-width`: no line of a command, an output or a diagram
//! is wider than the book's column. About 87 monospace characters fit in it
//! at desktop width; a wider line is cut (the reader must scroll sideways,
//! or on a printed page never sees its end).
//!
//! It reads book/src/**/*.md, and in their ```console, ```sh and ```text
//! blocks every line, and every line of the files these blocks
//! `{{#include}}` (the recorded outputs of book/src/outputs/). The ```rust
//! listings are left out: they come from the crates, which rustfmt wraps at
//! 100 columns, and the book wraps their longer lines with a hanging indent
//! (book/book-scroll.js). It also fails on a Rust listing included outside
//! a code block: the page would show the code as a paragraph of text.

use anyhow::{Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The widest line that fits in the book's column at desktop width.
pub const WIDTH: usize = 87;
const CHECKED: &[&str] = &["console", "sh", "text"];

pub fn run() -> Result<ExitCode> {
    let mut pages = Vec::new();
    markdown_files(Path::new("book/src"), &mut pages)?;
    pages.sort();
    let (mut wide, mut loose) = (0, 0);
    for page in &pages {
        let text = fs::read_to_string(page).with_context(|| page.display().to_string())?;
        let mut checked = None; // in a fenced block: is it one we check?
        for (number, line) in text.lines().enumerate() {
            if let Some(info) = line.trim_start().strip_prefix("```") {
                checked = match checked {
                    None => Some(CHECKED.contains(&info.trim())),
                    Some(_) => None,
                };
                continue;
            }
            if checked.is_none() && included(line).is_some_and(|file| file.contains(".rs")) {
                let page = page.display();
                println!("{page}:{}: a Rust listing outside a code block", number + 1);
                loose += 1;
            }
            if checked != Some(true) {
                continue;
            }
            if let Some(include) = included(line) {
                let (file, anchor) = match include.split_once(':') {
                    Some((file, anchor)) => (file, Some(anchor)),
                    None => (include, None),
                };
                let path = page.parent().unwrap_or(Path::new(".")).join(file);
                let body = fs::read_to_string(&path)
                    .with_context(|| format!("{}:{}: {}", page.display(), number + 1, file))?;
                let mut inside = anchor.is_none();
                for (number, line) in body.lines().enumerate() {
                    if let Some(anchor) = anchor {
                        if line.contains(&format!("ANCHOR: {anchor}")) {
                            inside = true;
                            continue;
                        }
                        if line.contains(&format!("ANCHOR_END: {anchor}")) {
                            inside = false;
                        }
                    }
                    if inside {
                        wide += report(&path, number, line);
                    }
                }
            } else {
                wide += report(page, number, line);
            }
        }
    }
    if wide > 0 || loose > 0 {
        eprintln!("{wide} lines are wider than the book's column ({WIDTH} characters)");
        eprintln!("{loose} Rust listings are outside a code block (put them in ```rust)");
        return Ok(ExitCode::FAILURE);
    }
    println!("no line of the book's commands, outputs and diagrams is over {WIDTH} characters");
    Ok(ExitCode::SUCCESS)
}

/// `{{#include PATH}}` or `{{#include PATH:ANCHOR}}`: PATH[:ANCHOR].
fn included(line: &str) -> Option<&str> {
    let rest = line.trim().strip_prefix("{{#include ")?;
    Some(rest.strip_suffix("}}")?.trim())
}

fn report(file: &Path, number: usize, line: &str) -> usize {
    let width = line.chars().count();
    if width <= WIDTH {
        return 0;
    }
    println!("{}:{}: {width} characters", file.display(), number + 1);
    1
}

fn markdown_files(folder: &Path, found: &mut Vec<PathBuf>) -> Result<()> {
    for entry in fs::read_dir(folder).with_context(|| folder.display().to_string())? {
        let path = entry?.path();
        if path.is_dir() {
            markdown_files(&path, found)?;
        } else if path.extension().is_some_and(|extension| extension == "md") {
            found.push(path);
        }
    }
    Ok(())
}
