//! The suite's figures, failures and leftovers, printed as one table.

use std::fmt::Display;
use std::time::Duration;

#[derive(Default)]
pub struct Report {
    /// (part, what, figure), in the order they were given.
    figures: Vec<(String, String, String)>,
    /// (part, what went wrong)
    failures: Vec<(String, String)>,
    /// (part, what a part left on the host)
    leftovers: Vec<(String, String)>,
}

impl Report {
    /// A figure of `part`, e.g. ("load", "container runs", 200).
    pub fn figure(&mut self, part: &str, what: &str, value: impl Display) {
        self.figures
            .push((part.into(), what.into(), value.to_string()));
    }

    /// Something that did not hold (the suite goes on, and fails at the end).
    pub fn failure(&mut self, part: &str, what: impl Into<String>) {
        let what = what.into();
        eprintln!("pfs-stress: {part}: FAILED: {what}");
        self.failures.push((part.into(), what));
    }

    /// Something the host kept that it did not have before.
    pub fn leftover(&mut self, part: &str, what: impl Into<String>) {
        let what = what.into();
        eprintln!("pfs-stress: {part}: LEFT ON THE HOST: {what}");
        self.leftovers.push((part.into(), what));
    }

    pub fn time(&mut self, part: &str, took: Duration) {
        self.figure(part, "time (s)", format!("{:.1}", took.as_secs_f64()));
    }

    pub fn passed(&self) -> bool {
        self.failures.is_empty() && self.leftovers.is_empty()
    }

    /// One table: every figure, then the failures and leftovers (0 each
    /// on a good run), per part.
    pub fn print(&self) {
        let mut parts: Vec<&str> = Vec::new();
        for (part, _, _) in &self.figures {
            if !parts.contains(&part.as_str()) {
                parts.push(part);
            }
        }
        println!("\n{:<8} {:<50} {:>10}", "part", "figure", "value");
        for part in parts {
            for (p, what, value) in self.figures.iter().filter(|f| f.0 == part) {
                println!("{p:<8} {what:<50} {value:>10}");
            }
            let count = |list: &[(String, String)]| list.iter().filter(|e| e.0 == part).count();
            println!("{part:<8} {:<50} {:>10}", "failures", count(&self.failures));
            println!(
                "{part:<8} {:<50} {:>10}",
                "leftovers",
                count(&self.leftovers)
            );
        }
        let verdict = if self.passed() { "PASSED" } else { "FAILED" };
        println!(
            "\npfs-stress: {verdict}: {} failures, {} leftovers",
            self.failures.len(),
            self.leftovers.len()
        );
    }
}
