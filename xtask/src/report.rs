//! What a failed check says: which tests failed, in words, and what each
//! expected, read from cargo test's output (the full output stays in the
//! log for whoever wants it).

/// One failed test: its name and the first lines of its panic message.
#[derive(Debug, PartialEq)]
pub struct Failure {
    pub test: String,
    pub message: Vec<String>,
}

/// The failed tests of a cargo test output, in order.
pub fn failures(output: &str) -> Vec<Failure> {
    let failed = output
        .lines()
        .filter_map(|line| line.strip_prefix("test ")?.strip_suffix(" ... FAILED"));
    failed
        .map(|test| Failure {
            test: test.to_string(),
            message: panic_message(output, test),
        })
        .collect()
}

/// The meaningful lines of the panic message in the `---- TEST stdout ----`
/// section: the test's own words, not `assertion ... failed` nor the note
/// about backtraces.
fn panic_message(output: &str, test: &str) -> Vec<String> {
    let header = format!("---- {test} stdout ----");
    let Some((_, section)) = output.split_once(&header) else {
        return vec![];
    };
    let mut lines = section
        .lines()
        .skip_while(|line| !line.contains("panicked at"))
        .skip(1);
    let mut message = Vec::new();
    let mut is_assert_eq = false;
    for line in lines.by_ref() {
        if line.starts_with("note: ")
            || line.starts_with("---- ")
            || line.starts_with("stack backtrace")
        {
            break;
        }
        // assert_eq!(got, expected)'s "assertion `left == right` failed:
        // WHY", then "  left: ..." and " right: ...": keep WHY, in words.
        is_assert_eq |= line.starts_with("assertion `left == right` failed");
        let line = match (is_assert_eq, line.trim_start().split_once(": ")) {
            (true, Some(("left", got))) => &format!("got:      {got}"),
            (true, Some(("right", expected))) => &format!("expected: {expected}"),
            _ => line,
        };
        let line = match line.split_once("failed: ") {
            Some((assertion, why)) if assertion.starts_with("assertion") => why,
            _ => line,
        };
        if !line.trim().is_empty() && !line.starts_with("assertion") {
            message.push(shorten(line.trim_end()));
        }
        if message.len() == 3 {
            break;
        }
    }
    message
}

fn shorten(line: &str) -> String {
    const WIDTH: usize = 200;
    match line.char_indices().nth(WIDTH) {
        Some((at, _)) => format!("{} ...", &line[..at]),
        None => line.to_string(),
    }
}

/// A test's name as a sentence: `ps_sees_only_the_containers_processes`
/// -> "ps sees only the containers processes".
pub fn in_words(test: &str) -> String {
    let name = test.rsplit("::").next().unwrap_or(test);
    name.replace('_', " ")
}

/// What the chapter's programs said on the way (`ch03: <what failed>`),
/// once each: often the clearest line of all.
pub fn program_messages(output: &str) -> Vec<String> {
    let mut said: Vec<String> = Vec::new();
    for line in output.lines() {
        let is_chapter = line.len() > 5
            && line.starts_with("ch")
            && line[2..4].bytes().all(|b| b.is_ascii_digit());
        if is_chapter && line[4..].starts_with(": ") && !said.iter().any(|s| s == line) {
            said.push(shorten(line));
        }
    }
    said.truncate(4);
    said
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "\
running 2 tests
test ok_test ... ok
test ps_sees_only_the_containers_processes ... FAILED

failures:

---- ps_sees_only_the_containers_processes stdout ----

thread 'ps_sees_only_the_containers_processes' (10995) panicked at chapters/02-mount-proc/tests/mount_proc.rs:23:5:
assertion `left == right` failed: expected sh, sleep and ps
  left: 4
 right: 3
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace
ch02: mount /proc: Operation not permitted

failures:
    ps_sees_only_the_containers_processes

test result: FAILED. 1 passed; 1 failed; 0 ignored
";

    #[test]
    fn a_failure_is_its_test_and_what_it_expected() {
        assert_eq!(
            failures(OUTPUT),
            vec![Failure {
                test: "ps_sees_only_the_containers_processes".into(),
                message: vec![
                    "expected sh, sleep and ps".into(),
                    "got:      4".into(),
                    "expected: 3".into()
                ],
            }]
        );
    }

    #[test]
    fn names_read_as_sentences_and_programs_speak_once() {
        assert_eq!(
            in_words("tests::the_command_is_pid_1"),
            "the command is pid 1"
        );
        assert_eq!(
            program_messages(OUTPUT),
            vec!["ch02: mount /proc: Operation not permitted".to_string()]
        );
    }
}
