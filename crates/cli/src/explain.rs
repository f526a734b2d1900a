//! `--explain`: print each kernel step as it happens, next to the shell
//! command that does the same thing, so a learner can map our code onto
//! tools they already know (`unshare`, `mount`, `hostname`, ...).
//!
//! Lines go to stderr, so the command's own output (stdout) stays clean.

use std::sync::atomic::{AtomicBool, Ordering};

static ENABLED: AtomicBool = AtomicBool::new(false);
static IN_CHILD: AtomicBool = AtomicBool::new(false);

/// Turn explanations on (the `--explain` flag).
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Whether `--explain` is on: for a step that shows more than one line.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Called right after `fork()` in the child: from now on our lines say
/// "child", so the learner sees which process performs which step.
pub fn now_in_child() {
    IN_CHILD.store(true, Ordering::Relaxed);
}

/// Print one step: the system call we make and its shell equivalent.
pub fn step(call: &str, shell: &str) {
    if !ENABLED.load(Ordering::Relaxed) {
        return;
    }
    let who = if IN_CHILD.load(Ordering::Relaxed) {
        "child "
    } else {
        "parent"
    };
    eprintln!("[{who}] {call:<52} ~ {shell}");
}

/// Print what the next steps do together, and the field of an OCI
/// runtime's `config.json` that asks runc or crun for them (chapter 07).
pub fn oci(what: &str, field: &str) {
    step(&format!("# {what}"), &format!("runc: {field}"));
}

/// Quote words the way a shell would need them, for the "~ shell" column.
pub fn shell_words<S: AsRef<str>>(words: &[S]) -> String {
    let quote = |word: &str| {
        let plain = !word.is_empty()
            && word
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
        if plain {
            word.to_string()
        } else {
            format!("'{}'", word.replace('\'', "'\\''"))
        }
    };
    let quoted: Vec<String> = words.iter().map(|w| quote(w.as_ref())).collect();
    quoted.join(" ")
}

#[cfg(test)]
mod tests {
    use super::shell_words;

    #[test]
    fn words_are_quoted_only_when_needed() {
        assert_eq!(shell_words(&["sh", "-c", "echo $$"]), "sh -c 'echo $$'");
        assert_eq!(shell_words(&["echo", "it's"]), "echo 'it'\\''s'");
        assert_eq!(shell_words(&["printf", ""]), "printf ''");
    }
}
