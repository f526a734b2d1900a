//! The attendee's commands: list, hint, reset, solution, and check (build
//! the copy with their function, run the chapter's own integration tests).

use anyhow::{Context, Result};
use std::fs::{self, File};
use std::io::IsTerminal;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::exercises::{self, host_cgroup, Exercise};
use crate::report;
use crate::tree::{self, Spliced, Version, WS};

pub fn list() -> Result<()> {
    exercises::ensure_work_files()?;
    println!(
        "{:<4}  {:<11}  {:<6}  WHAT YOU WRITE (in workshop/work/ID.rs)",
        "ID", "STATE", "CRATE"
    );
    for ex in exercises::all()? {
        let elsewhere = match &ex.needs {
            Some(needs) if !ex.runs_here() => {
                format!(
                    "  [{needs} only: not on this machine, which has {}]",
                    host_cgroup()
                )
            }
            _ => String::new(),
        };
        let state = exercises::state(&ex)?;
        println!(
            "{:<4}  {state:<11}  {:<6}  {}: {}{elsewhere}",
            ex.id, ex.krate, ex.anchor, ex.title
        );
    }
    println!("\nThen: cargo xtask workshop check ID (hint ID, solution ID, reset ID).");
    Ok(())
}

pub fn hint(want: &str) -> Result<()> {
    for ex in exercises::select(want)? {
        println!(
            "Hint for exercise {} ({}, in {}):",
            ex.id, ex.title, ex.file
        );
        for line in fs::read_to_string(ex.texts().join("hint.md"))?.lines() {
            println!("  {line}");
        }
    }
    Ok(())
}

pub fn reset(want: &str) -> Result<()> {
    exercises::ensure_work_files()?;
    for ex in exercises::select(want)? {
        let work = ex.work_file();
        let skeleton = ex.skeleton()?;
        if fs::read_to_string(&work)? != skeleton {
            fs::copy(&work, work.with_extension("rs.old"))?;
            println!("kept your version of {} as {}.old", ex.id, work.display());
        }
        fs::write(&work, skeleton)?;
        println!("reset {}", work.display());
    }
    Ok(())
}

/// The difference between the attendee's function and the chapter's.
pub fn solution(want: &str) -> Result<()> {
    exercises::ensure_work_files()?;
    for ex in exercises::select(want)? {
        let reference = Path::new(WS).join(format!("solution-{}.rs", ex.id));
        fs::write(&reference, ex.reference()?)?;
        Command::new("diff")
            .arg("-u")
            .args(["--label", &format!("yours: {}", ex.work_file().display())])
            .args([
                "--label",
                &format!("the chapter's: {} ({})", ex.file, ex.anchor),
            ])
            .arg(ex.work_file())
            .arg(&reference)
            .status()
            .context("running diff")?;
        fs::remove_file(reference)?;
    }
    Ok(())
}

/// Why a test run did not pass.
#[derive(PartialEq)]
pub enum Failed {
    /// The copy does not compile.
    Build,
    /// A test failed.
    Tests,
}

/// cargo, in the copy, with a target directory of its own (the copy's
/// binaries must not replace the chapters' in target/debug). The test
/// programs run through the sandbox runner (see sandbox.rs).
pub fn cargo_in_copy(args: &[&str]) -> Result<Command> {
    let repo = std::env::current_dir()?;
    let runner = format!("{} workshop sandbox", std::env::current_exe()?.display());
    let mut cargo = Command::new("cargo");
    cargo
        .args(args)
        .current_dir(tree::TREE)
        .env("CARGO_TARGET_DIR", repo.join(WS).join("target"))
        .env("RUST_BACKTRACE", "0")
        .env(
            format!(
                "CARGO_TARGET_{}_RUNNER",
                host_triple()?.to_uppercase().replace('-', "_")
            ),
            runner,
        );
    Ok(cargo)
}

fn host_triple() -> Result<String> {
    let version = Command::new("rustc")
        .arg("-vV")
        .output()
        .context("running rustc -vV")?;
    let version = String::from_utf8(version.stdout)?;
    let host = version
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .context("rustc -vV: no host")?;
    Ok(host.to_string())
}

/// Run `command`, its output appended to `log`; whether it succeeded.
pub fn logged(mut command: Command, log: &Path) -> Result<bool> {
    let out = File::options().create(true).append(true).open(log)?;
    let status = command
        .stdout(out.try_clone()?)
        .stderr(out)
        .stdin(Stdio::null())
        .status()?;
    Ok(status.success())
}

/// `logged`, and meanwhile, when stderr is a terminal, a line there with
/// the seconds elapsed: the copy's first build takes minutes in silence.
fn logged_ticking(command: Command, log: &Path, what: &str) -> Result<bool> {
    if !std::io::stderr().is_terminal() {
        return logged(command, log);
    }
    let done = AtomicBool::new(false);
    let started = Instant::now();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                eprint!("\r\x1b[K{what}: {}s", started.elapsed().as_secs());
                std::thread::sleep(Duration::from_millis(250));
            }
            eprint!("\r\x1b[K");
        });
        let built = logged(command, log);
        done.store(true, Ordering::Relaxed);
        built
    })
}

/// Build and run the integration test of `ex`'s chapter in the copy (only
/// `focus`, if given); the output goes to `log`.
pub fn run_tests(ex: &Exercise, focus: &[&str], log: &Path) -> Result<Result<(), Failed>> {
    let (krate, test) = (ex.krate.as_str(), ex.test.as_str());
    let mut filter: Vec<&str> = vec!["--skip", "explain"];
    for skip in &ex.skip {
        filter.extend(["--skip", skip]);
    }
    if !focus.is_empty() {
        filter = [&["--exact"], focus].concat();
    }
    File::create(log)?;
    if !logged_ticking(
        cargo_in_copy(&["test", "--quiet", "--no-run", "-p", krate, "--test", test])?,
        log,
        &format!("building {krate}'s tests (the first time takes a few minutes)"),
    )? {
        return Ok(Err(Failed::Build));
    }
    tidy();
    let passed = logged(
        cargo_in_copy(&[&["test", "-p", krate, "--test", test, "--"], &filter[..]].concat())?,
        log,
    )?;
    if !passed {
        tidy();
        return Ok(Err(Failed::Tests));
    }
    Ok(Ok(()))
}

/// An attendee's step that goes wrong half-way (a group made, then a bad
/// write) may leave behind what the next tests count as leftovers:
/// containers' directories in the tests' data, cgroups of chapter 05.
/// Remove those whose process is gone, as the chapters' `cleanup` does.
fn tidy() {
    let data = std::env::var("PFS_TEST_DATA_DIR")
        .unwrap_or("/var/cache/pods-from-scratch/test-data".into());
    let mut parents = vec![
        format!("{data}/containers"),
        "/sys/fs/cgroup/pods-from-scratch".into(),
    ];
    for hierarchy in fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        parents.push(format!("{}/pods-from-scratch", hierarchy.path().display()));
    }
    for parent in parents {
        for dir in fs::read_dir(&parent).into_iter().flatten().flatten() {
            let (path, pid) = (dir.path(), dir.file_name());
            if !path.is_dir() || Path::new("/proc").join(&pid).exists() {
                continue;
            }
            // A cgroup goes only if empty (rmdir); a container's folder, whole.
            let remove = if parent.starts_with("/sys/") {
                "rmdir"
            } else {
                "rm"
            };
            let mut command = as_root(remove);
            if remove == "rm" {
                command.arg("-rf");
            }
            let _ = command.arg(&path).stderr(Stdio::null()).status();
        }
    }
}

/// A command run as root: directly when we are root, through sudo otherwise.
pub fn as_root(program: &str) -> Command {
    if nix::unistd::geteuid().is_root() {
        Command::new(program)
    } else {
        let mut sudo = Command::new("sudo");
        sudo.arg(program);
        sudo
    }
}

pub fn step(what: &str) {
    println!("\n==> {what}");
}

pub fn check(want: &str) -> Result<ExitCode> {
    exercises::ensure_work_files()?;
    let chosen = exercises::select(want)?;
    let (here, elsewhere): (Vec<&Exercise>, Vec<&Exercise>) =
        chosen.iter().partition(|ex| ex.runs_here());
    for ex in &elsewhere {
        println!(
            "note: {} is for {} machines (like the VM); this one has {}, so chapter {}'s tests never run it here: check it in the VM.",
            ex.id,
            ex.needs.as_deref().unwrap_or_default(),
            host_cgroup(),
            ex.chapter()
        );
    }
    let Some(first) = here.first() else {
        return Ok(ExitCode::from(2));
    };
    let versions: Vec<(Exercise, Version)> = chosen
        .iter()
        .map(|ex| (ex.clone(), Version::File(ex.work_file())))
        .collect();
    let spliced = tree::prepare(&versions)?;
    let log = Path::new(WS).join(format!("check-{want}.log"));
    if !Path::new(WS).join("target").exists() {
        println!("(the first check also builds the dependencies: a minute or two)");
    }
    let ids: Vec<&str> = here.iter().map(|ex| ex.id.as_str()).collect();
    let mut focus: Vec<&str> = here.iter().map(|ex| ex.focus.as_str()).collect();
    focus.dedup();
    let chapter = first.chapter();
    // The test that shows the step most directly first: a wrong step fails
    // fast, with the message that matters. Then all of the chapter's tests.
    step(&format!(
        "exercise {}: building your version, running chapter {chapter}'s {} (as root)",
        ids.join(" "),
        focus.join(" ")
    ));
    let mut result = run_tests(first, &focus, &log)?;
    if result.is_ok() {
        step(&format!(
            "and now all of chapter {chapter}'s tests: cargo test -p {} --test {} (as root)",
            first.krate, first.test
        ));
        result = run_tests(first, &[], &log)?;
    }
    let output = fs::read_to_string(&log).unwrap_or_default();
    match result {
        Ok(()) => {
            for ex in &here {
                exercises::record_pass(ex)?;
            }
            if let Some(summary) = output
                .lines()
                .rev()
                .find(|line| line.starts_with("test result:"))
            {
                println!("{summary}");
            }
            println!(
                "PASSED: chapter {chapter}'s tests pass with your {}. Well done.",
                ids.join(" ")
            );
            return Ok(ExitCode::SUCCESS);
        }
        Err(Failed::Build) => {
            println!("FAILED: your version does not compile:");
            let named = tree::name_lines(&output, &spliced);
            named
                .lines()
                .filter(|line| !line.trim_start().starts_with("Compiling "))
                .for_each(|l| println!("{l}"));
        }
        Err(Failed::Tests) => explain_failure(&here, &output, &spliced),
    }
    println!("\nFull output: {}", log.display());
    println!("Stuck? cargo xtask workshop hint {want}");
    Ok(ExitCode::FAILURE)
}

/// Which tests failed, in words, and what they expected; whether the
/// attendee's function is still unsolved.
fn explain_failure(here: &[&Exercise], output: &str, spliced: &[Spliced]) {
    let ids: Vec<&str> = here.iter().map(|ex| ex.id.as_str()).collect();
    println!(
        "FAILED: chapter {}'s tests fail with your {}.",
        here[0].chapter(),
        ids.join(" ")
    );
    for ex in here.iter().filter(|ex| exercises::still_todo(ex)) {
        println!(
            "Your function still has todo!(): {} panics as soon as the chapter calls it. Write its body.",
            ex.work_file().display()
        );
    }
    for ex in here {
        if let Ok(expect) = fs::read_to_string(ex.texts().join("expect.md")) {
            println!(
                "What the check expects of {}: {}",
                ex.id,
                expect.split_whitespace().collect::<Vec<_>>().join(" ")
            );
        }
    }
    let failures = report::failures(output);
    println!("\n{} test(s) failed:", failures.len());
    for failure in &failures {
        println!("  - {}", report::in_words(&failure.test));
        for line in &failure.message {
            print!("      {}", tree::name_lines(line, spliced));
        }
    }
    let said = report::program_messages(output);
    if !said.is_empty() {
        println!("What the chapter's program said:");
        for line in said {
            print!("    {}", tree::name_lines(&line, spliced));
        }
    }
}
