//! `verify`, for maintainers and CI: every exercise, unsolved, fails its
//! check; every chapter's own code (the reference solution) passes it; both
//! versions are clean for rustfmt and clippy. The tests of an exercise for
//! the other cgroup version than this machine's are skipped, or with --vm
//! run in the cgroup v2 VM of scripts/vm-test.sh (unsolved: it must fail
//! there; the chapter's own code is what vm-test.sh tests anyway).

use anyhow::Result;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use crate::check::{cargo_in_copy, logged, run_tests, Failed};
use crate::exercises::{self, host_cgroup, Exercise};
use crate::tree::{self, Version, TREE, WS};

/// What the tests of a step must do.
#[derive(Clone, Copy, PartialEq)]
enum Expect {
    Pass,
    Fail,
    /// fmt and clippy only.
    NoTests,
}

/// One step: splice `versions`, check fmt and clippy, then run the tests of
/// `ex`'s chapter (only its focus test if `focus`), which must `expect`.
fn step(
    what: &str,
    expect: Expect,
    ex: &Exercise,
    focus: bool,
    vm: bool,
    versions: &[(Exercise, Version)],
) -> Result<bool> {
    let started = Instant::now();
    let log = Path::new(WS).join(format!("verify-{}.log", what.replace(' ', "-")));
    fs::write(&log, "")?;
    tree::prepare(versions)?;
    let failed = |why: &str| -> Result<bool> {
        print!("{}", fs::read_to_string(&log)?);
        println!("verify: FAILED: {what}: {why}");
        Ok(false)
    };
    if !logged(cargo_in_copy(&["fmt", "-p", &ex.krate, "--check"])?, &log)? {
        return failed("not rustfmt-clean");
    }
    // (In the copy's own target directory: the copy's crates have the same
    // names and relative paths as the real ones, so cargo would take what
    // clippy built from the copy as up to date for the real sources.)
    let clippy = [
        "clippy",
        "--quiet",
        "-p",
        &ex.krate,
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ];
    if !logged(cargo_in_copy(&clippy)?, &log)? {
        return failed("clippy warnings");
    }
    // A crate of the versions that is a workspace of its own: the same, there.
    let mut own: Vec<String> = versions
        .iter()
        .filter_map(|(ex, _)| ex.own_workspace())
        .collect();
    own.sort();
    own.dedup();
    for dir in own {
        let in_dir = |args: &[&str]| -> Result<Command> {
            let mut cargo = cargo_in_copy(args)?;
            let name = Path::new(&dir)
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let target = std::env::current_dir()?
                .join(WS)
                .join(format!("{name}-target"));
            cargo
                .current_dir(Path::new(TREE).join(&dir))
                .env("CARGO_TARGET_DIR", target);
            Ok(cargo)
        };
        if !logged(in_dir(&["fmt", "--check"])?, &log)? {
            return failed(&format!("{dir} is not rustfmt-clean"));
        }
        if !logged(
            in_dir(&["clippy", "--quiet", "--", "-D", "warnings"])?,
            &log,
        )? {
            return failed(&format!("clippy warnings in {dir}"));
        }
    }
    let focus_tests: Vec<&str> = if focus {
        vec![ex.focus.as_str()]
    } else {
        vec![]
    };
    let outcome = if expect == Expect::NoTests {
        None
    } else if ex.runs_here() {
        Some(run_tests(ex, &focus_tests, &log)?)
    } else if vm {
        Some(run_in_vm(ex, &log)?)
    } else {
        let needs = ex.needs.as_deref().unwrap_or_default();
        let secs = started.elapsed().as_secs();
        println!(
            "verify: ok: {what}: fmt and clippy clean; tests SKIPPED: they need {needs}, this machine has {} (--vm: run them in the VM) ({secs} s)",
            host_cgroup()
        );
        return Ok(true);
    };
    let result = match (outcome, expect) {
        (None, _) => "fmt and clippy clean".to_string(),
        (Some(Err(Failed::Build)), _) => return failed("the tests do not build"),
        (Some(outcome), expect) => {
            let (did, should) = (
                if outcome.is_ok() { "pass" } else { "fail" },
                if expect == Expect::Pass {
                    "pass"
                } else {
                    "fail"
                },
            );
            if did != should {
                let output = fs::read_to_string(&log)?;
                let tail: Vec<&str> = output.lines().rev().take(40).collect();
                tail.iter().rev().for_each(|line| println!("{line}"));
                println!(
                    "verify: FAILED: {what}: the tests should {should}, they {did}ed (log {})",
                    log.display()
                );
                return Ok(false);
            }
            let output = fs::read_to_string(&log)?;
            let summary = output
                .lines()
                .rev()
                .find_map(|l| l.strip_prefix("test result: "))
                .unwrap_or_default();
            let summary = summary.split("; 0 ignored").next().unwrap_or_default();
            let tests = if focus && ex.runs_here() {
                format!("{} {}", ex.test, ex.focus)
            } else {
                ex.test.clone()
            };
            format!(
                "{} --test {tests} {did}ed as it should ({summary}), fmt and clippy clean",
                ex.krate
            )
        }
    };
    println!(
        "verify: ok: {what}: {result} ({} s)",
        started.elapsed().as_secs()
    );
    Ok(true)
}

/// The VM harness builds the test programs of the copy and runs them in a
/// cgroup v2 VM (it shares the repository, target/ included). A test that
/// fails inside is a failure; any other trouble (no VM) is an error.
fn run_in_vm(ex: &Exercise, log: &Path) -> Result<Result<(), Failed>> {
    let manifest = Path::new(TREE).join("Cargo.toml");
    let mut vm = Command::new("scripts/vm-test.sh");
    vm.arg("--manifest-path")
        .arg(&manifest)
        .args(["-p", &ex.krate, "--test", &ex.test]);
    vm.env(
        "CARGO_TARGET_DIR",
        std::env::current_dir()?.join(WS).join("target"),
    );
    if logged(vm, log)? {
        return Ok(Ok(()));
    }
    let output = fs::read_to_string(log)?;
    Ok(Err(if output.contains("vm-test: FAILED inside") {
        Failed::Tests
    } else {
        Failed::Build
    }))
}

pub fn verify(vm: bool, want: &str) -> Result<ExitCode> {
    let started = Instant::now();
    let all = exercises::select(want)?;
    let verify_dir = PathBuf::from(WS).join("verify");
    fs::create_dir_all(&verify_dir)?;
    let mut ok = true;
    let mut chapters: Vec<&str> = all.iter().map(|ex| ex.krate.as_str()).collect();
    chapters.dedup();
    for chapter in chapters {
        let mut unsolved = Vec::new();
        let mut reference = Vec::new();
        let exercises: Vec<&Exercise> = all.iter().filter(|ex| ex.krate == chapter).collect();
        for ex in &exercises {
            // The function must end with its closing brace, alone on its line.
            if ex.reference()?.lines().last().map(str::trim) != Some("}") {
                println!(
                    "verify: FAILED: the anchor {} in {} does not end with the function's brace",
                    ex.anchor, ex.file
                );
                ok = false;
            }
            let skeleton = verify_dir.join(format!("{}.rs", ex.id));
            fs::write(&skeleton, ex.skeleton()?)?;
            unsolved.push(((*ex).clone(), Version::File(skeleton.clone())));
            reference.push(((*ex).clone(), Version::Reference));
            // Unsolved, `check` fails at its first test, the focus: run that.
            let versions = [((*ex).clone(), Version::File(skeleton))];
            ok &= step(
                &format!("{} unsolved", ex.id),
                Expect::Fail,
                ex,
                true,
                vm,
                &versions,
            )?;
        }
        let last = exercises[exercises.len() - 1];
        // With every exercise of the chapter unsolved at once, as attendees
        // start: fmt and clippy only (the tests fail, as shown above).
        ok &= step(
            &format!("{chapter} all unsolved"),
            Expect::NoTests,
            last,
            false,
            false,
            &unsolved,
        )?;
        // The chapter's own functions, put back by the same splice (which
        // must give the chapter, byte for byte): all the tests pass. (This is
        // the chapter as it is, which scripts/vm-test.sh also tests on
        // cgroup v2: no need for the VM here, so the cgroup-free runner.)
        let mut any_version = last.clone();
        any_version.needs = None;
        ok &= step(
            &format!("{chapter} reference"),
            Expect::Pass,
            &any_version,
            false,
            false,
            &reference,
        )?;
    }
    println!("verify: {} s in all", started.elapsed().as_secs());
    if !ok {
        println!("verify: FAILED (see above)");
        return Ok(ExitCode::FAILURE);
    }
    println!("verify: all good");
    Ok(ExitCode::SUCCESS)
}
