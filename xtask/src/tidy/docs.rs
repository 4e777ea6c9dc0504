//! Every Rust file opens with a `//!` comment saying why it exists.

use std::path::Path;

/// Folders checked, relative to the workspace root.
const DIRS: &[&str] = &["crates", "xtask", "examples", "tests"];

/// The I/O wrapper: every `.rs` file under [`DIRS`].
pub fn run(root: &Path) -> Result<Vec<String>, String> {
    let mut problems = Vec::new();
    for dir in DIRS {
        for path in super::rust_files(&root.join(dir)) {
            problems.extend(check(&super::shown(root, &path), &super::read(&path)?));
        }
    }
    Ok(problems)
}

/// A message if the first non-blank line of `text` is not a `//!` comment.
pub fn check(path: &str, text: &str) -> Option<String> {
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    (!first.starts_with("//!")).then(|| {
        format!("{path}:1: the first line must be a `//!` comment saying why the file exists")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wants_a_module_doc_comment_first() {
        assert_eq!(check("a.rs", "\n//! Why.\nfn f() {}\n"), None);
        let found = check("b.rs", "use x;\n//! Late.\n").unwrap_or_default();
        assert!(found.starts_with("b.rs:1: the first line must be a `//!` comment"));
    }
}
