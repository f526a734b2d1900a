//! A chapter's function is the lines between its mdBook markers
//! `// ANCHOR: NAME` and `// ANCHOR_END: NAME`. Here: read it, make the
//! exercise version of it, and put another version in its place.

use crate::exercises::Exercise;

fn is_start(line: &str, anchor: &str) -> bool {
    line.trim_end_matches('\n')
        .ends_with(&format!("// ANCHOR: {anchor}"))
}

fn is_end(line: &str, anchor: &str) -> bool {
    line.trim_end_matches('\n')
        .ends_with(&format!("// ANCHOR_END: {anchor}"))
}

/// The lines between the markers (not the markers), or None without them.
pub fn region(source: &str, anchor: &str) -> Option<String> {
    let mut lines = source.split_inclusive('\n');
    lines.by_ref().find(|line| is_start(line, anchor))?;
    let mut inside = String::new();
    for line in lines {
        if is_end(line, anchor) {
            return Some(inside);
        }
        inside.push_str(line);
    }
    None
}

/// `source` with `content` in place of the lines between the markers.
pub fn splice(source: &str, anchor: &str, content: &str) -> Option<String> {
    region(source, anchor)?;
    let mut out = String::new();
    let mut inside = false;
    for line in source.split_inclusive('\n') {
        if is_end(line, anchor) {
            inside = false;
        }
        if !inside {
            out.push_str(line);
        }
        if is_start(line, anchor) {
            inside = true;
            out.push_str(content);
        }
    }
    Some(out)
}

/// Whether a line starts a function: `fn`, after `pub`, `pub(crate)`,
/// `const`, `unsafe`, `extern "C"`.
fn starts_fn(line: &str) -> bool {
    let mut rest = line.trim_start();
    if rest.starts_with("pub") {
        rest = rest.split_once(' ').map_or("", |(_, after)| after);
    }
    for qualifier in ["const ", "unsafe "] {
        rest = rest.strip_prefix(qualifier).unwrap_or(rest);
    }
    if let Some(after) = rest.strip_prefix("extern \"") {
        rest = after.split_once("\" ").map_or("", |(_, after)| after);
    }
    rest.starts_with("fn ")
}

/// The exercise version of the chapter's function: its doc comment and
/// signature, then a body made of the task (as comments) and todo!(), then
/// its closing brace. Nothing of the chapter's body is kept.
pub fn skeleton(ex: &Exercise, function: &str, task: &str) -> String {
    let lines: Vec<&str> = function.lines().collect();
    let signature_start = lines
        .iter()
        .position(|line| starts_fn(line))
        .unwrap_or(lines.len());
    let body_start = lines[signature_start..]
        .iter()
        .position(|line| line.ends_with('{'))
        .map_or(lines.len(), |at| signature_start + at + 1);
    let closing = lines.last().copied().unwrap_or("}");
    let indent = format!(
        "{}    ",
        &closing[..closing.len() - closing.trim_start().len()]
    );

    let mut out: Vec<String> = lines[..body_start.min(lines.len())]
        .iter()
        .map(|l| l.to_string())
        .collect();
    let (id, title) = (&ex.id, &ex.title);
    out.push(format!("{indent}// EXERCISE {id}: {title}."));
    out.extend(task.lines().map(|line| format!("{indent}// {line}")));
    out.push(format!(
        "{indent}// Then run: cargo xtask workshop check {id}   (stuck? cargo xtask workshop hint {id})"
    ));
    out.push(format!("{indent}todo!(\"exercise {id}: {title}\")"));
    out.push(closing.to_string());
    out.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = "use x;\n// ANCHOR: step\n/// Does it.\npub(crate) fn step(\n    a: u8,\n) -> u8 {\n    a + 1\n}\n// ANCHOR_END: step\nfn other() {}\n";

    fn exercise() -> Exercise {
        Exercise {
            id: "09z".into(),
            krate: "ch09".into(),
            file: "chapters/09/src/lib.rs".into(),
            anchor: "step".into(),
            test: "t".into(),
            focus: "f".into(),
            skip: vec![],
            needs: None,
            title: "take a step".into(),
        }
    }

    #[test]
    fn the_region_is_the_lines_between_the_markers() {
        assert_eq!(
            region(SOURCE, "step").unwrap(),
            "/// Does it.\npub(crate) fn step(\n    a: u8,\n) -> u8 {\n    a + 1\n}\n"
        );
        assert_eq!(region(SOURCE, "ste"), None);
    }

    #[test]
    fn splicing_the_region_back_gives_the_same_file() {
        let function = region(SOURCE, "step").unwrap();
        assert_eq!(splice(SOURCE, "step", &function).unwrap(), SOURCE);
        let other = splice(SOURCE, "step", "fn step() {}\n").unwrap();
        assert_eq!(
            other,
            "use x;\n// ANCHOR: step\nfn step() {}\n// ANCHOR_END: step\nfn other() {}\n"
        );
    }

    #[test]
    fn the_skeleton_keeps_doc_and_signature_and_replaces_the_body() {
        let skeleton = skeleton(&exercise(), &region(SOURCE, "step").unwrap(), "Add one.\n");
        assert_eq!(
            skeleton,
            "/// Does it.\npub(crate) fn step(\n    a: u8,\n) -> u8 {\n    // EXERCISE 09z: take a step.\n    // Add one.\n    // Then run: cargo xtask workshop check 09z   (stuck? cargo xtask workshop hint 09z)\n    todo!(\"exercise 09z: take a step\")\n}\n"
        );
    }
}
