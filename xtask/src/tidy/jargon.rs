//! No internal jargon reaches users: the README, docs/ and every Rust source (whose
//! strings become `--help` and messages) speak of `ledger` only, never of the
//! documents or tickets it grew from ("seed 001", "the seed layout", "issue 9").
//!
//! A word-level scan, deliberately blunt: `seed` followed by a number, `layout`,
//! `key(s)` or `rules`, `shared/seeds`, and `issue` followed by a number. A cryptographic
//! seed ("a key from a 32-byte seed") is not jargon and passes.

use std::path::Path;

/// Files and folders checked, relative to the workspace root.
const PLACES: &[&str] = &[
    "README.md",
    "ARCHITECTURE.md",
    "docs",
    "crates",
    "xtask",
    "examples",
    "tests",
];

/// The I/O wrapper: every `.md` and `.rs` file under [`PLACES`].
pub fn run(root: &Path) -> Result<Vec<String>, String> {
    let mut problems = Vec::new();
    for place in PLACES {
        let path = root.join(place);
        let files = if path.is_file() {
            vec![path]
        } else {
            super::files_with(&path, &["md", "rs"])
        };
        for file in files {
            let shown = super::shown(root, &file);
            if shown == "xtask/src/tidy/jargon.rs" {
                continue;
            }
            problems.extend(check(&shown, &super::read(&file)?));
        }
    }
    Ok(problems)
}

/// One message per line of `text` that carries jargon.
pub fn check(path: &str, text: &str) -> Vec<String> {
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            jargon(line).map(|found| {
                format!(
                    "{path}:{}: `{found}` is internal jargon; say what it means for a user of ledger",
                    i + 1
                )
            })
        })
        .collect()
}

/// The first jargon phrase on `line`, if any.
fn jargon(line: &str) -> Option<String> {
    let lower = line.to_ascii_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '/' || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    if lower.contains("shared/seeds") {
        return Some("shared/seeds".into());
    }
    words.windows(2).find_map(|pair| {
        let [first, next] = pair else { return None };
        let numbered = next.chars().all(|c| c.is_ascii_digit());
        let flagged = match *first {
            "seed" => numbered || matches!(*next, "layout" | "key" | "keys" | "rules"),
            "issue" | "issues" => numbered,
            _ => first.starts_with("seed-") || first.starts_with("seed/"),
        };
        flagged.then(|| format!("{first} {next}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_ticket_and_document_names() {
        for bad in [
            "the status update of seed 001",
            "Issue 9's 15 ms per stage",
            "keeps the seed keys above",
            "(the seed layout)",
            "see ../shared/seeds/ for",
            "a seed-001 status update",
        ] {
            assert_eq!(check("a.md", bad).len(), 1, "{bad}");
        }
    }

    #[test]
    fn a_cryptographic_seed_or_an_issue_tracker_is_fine() {
        for good in [
            "A key from a 32-byte seed; for tests only.",
            "pub fn from_seed(seed: &[u8; 32]) -> Self {",
            "open an issue on the tracker",
            "fuzz/seeds/json/ holds the fuzzer's starting inputs",
        ] {
            assert!(check("a.rs", good).is_empty(), "{good}");
        }
    }
}
