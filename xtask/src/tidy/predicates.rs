//! No untyped predicate reads: `value["field"]` outside `ledger_core::predicate`.
//!
//! Predicates are read through the typed module `ledger_core::predicate`, so a field
//! renamed in the schema breaks the build instead of reading `null` at run time. Any
//! `["name"]` string index in the crates that consume evidence is reported; code in
//! `#[cfg(test)]` modules (which inspects JSON output on purpose) and comments are not.

use super::lexer;
use std::path::Path;

/// The folders that consume evidence; a missing one (not created yet) is skipped.
const DIRS: &[&str] = &[
    "crates/ledger-pipeline/src",
    "crates/ledger-verify/src",
    "crates/ledger-cli/src",
];

/// The I/O wrapper: every file under [`DIRS`].
pub fn run(root: &Path) -> Result<Vec<String>, String> {
    let mut problems = Vec::new();
    for dir in DIRS {
        for path in super::rust_files(&root.join(dir)) {
            problems.extend(check(&super::shown(root, &path), &super::read(&path)?));
        }
    }
    Ok(problems)
}

/// One message per `["name"]` index in `text` outside comments and test modules.
pub fn check(path: &str, text: &str) -> Vec<String> {
    let tests = lexer::test_lines(&lexer::strip(text));
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if tests.get(n).copied().unwrap_or(false) || line.trim_start().starts_with("//") {
            continue;
        }
        for index in string_indexes(line) {
            out.push(format!(
                "{path}:{}: untyped read `{index}`; read predicates through the typed \
                 `ledger_core::predicate` module (add the field there if it is missing)",
                n + 1
            ));
        }
    }
    out
}

/// Every match of `\["[A-Za-z_]+"\]` in `line`.
fn string_indexes(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = line[from..].find("[\"") {
        let start = from + at;
        let name_len = line[start + 2..]
            .find(|c: char| !(c.is_ascii_alphabetic() || c == '_'))
            .unwrap_or(line.len() - start - 2);
        let end = start + 2 + name_len;
        if name_len > 0 && line[end..].starts_with("\"]") {
            out.push(&line[start..end + 2]);
        }
        from = start + 2;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_string_indexes() {
        assert_eq!(
            string_indexes(r#"let d = v["predicate"]["digest_2"]["a_b"]; x["A"] y["a b"] z[""]"#),
            [r#"["predicate"]"#, r#"["a_b"]"#, r#"["A"]"#]
        );
    }

    #[test]
    fn reports_each_hit_with_its_line_but_not_tests_or_comments() {
        let text = "//! doc\nlet a = v[\"sha\"];\n// v[\"no\"]\n#[cfg(test)]\nmod tests {\n    v[\"no\"];\n}\n";
        let found = check("src/a.rs", text);
        assert_eq!(found.len(), 1);
        assert!(found[0].starts_with("src/a.rs:2: untyped read `[\"sha\"]`"));
    }
}
