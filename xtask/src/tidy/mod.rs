//! `cargo xtask tidy`: the rules of ARCHITECTURE.md, enforced on the source tree.
//!
//! Each check is a pure function over data (metadata, file texts) with unit tests,
//! plus a thin wrapper here that gathers the data. Every problem names the file,
//! crate or line and what to do; `tidy` prints them all and fails if there is one.
//!
//! * `deps`: workspace dependency arrows point one way ([`deps`]); single-owner
//!   external crates; `ledger-core` and `ledger-policy` stay pure.
//! * `verify-path`: the verify path links no engine and no HTTP client ([`verify_path`]).
//! * `cycles`: no module cycles inside a crate ([`cycles`]).
//! * `size`: files under 500 lines, functions under 80 ([`size`]).
//! * `predicates`: no untyped `["field"]` reads outside `ledger_core::predicate`
//!   ([`predicates`]).
//! * `docs`: every Rust file opens with a `//!` comment ([`docs`]).
//! * `jargon`: no internal document or ticket names in anything a user reads
//!   ([`jargon`]).
//!
//! `cargo xtask tidy cycles size` runs only the named checks.

mod cycles;
mod deps;
mod docs;
mod jargon;
mod lexer;
mod predicates;
mod size;
mod verify_path;

use crate::root;
use std::fs;
use std::path::{Path, PathBuf};

/// A check's name and the function that runs it.
type Check = (&'static str, fn(&Path) -> Result<Vec<String>, String>);

/// Every check, in the order they run and report.
const CHECKS: &[Check] = &[
    ("deps", deps::run),
    ("verify-path", verify_path::run),
    ("cycles", cycles::run),
    ("size", size::run),
    ("predicates", predicates::run),
    ("docs", docs::run),
    ("jargon", jargon::run),
];

/// Runs the checks named in `args` (all of them when empty), printing every problem.
pub fn run(args: &[String]) -> Result<(), String> {
    for a in args {
        if !CHECKS.iter().any(|(name, _)| name == a) {
            let names: Vec<&str> = CHECKS.iter().map(|(n, _)| *n).collect();
            return Err(format!(
                "tidy: unknown check `{a}`; the checks are: {}",
                names.join(", ")
            ));
        }
    }
    let root = root();
    let mut summary = Vec::new();
    let mut total = 0;
    for (name, check) in CHECKS {
        if !args.is_empty() && !args.iter().any(|a| a == name) {
            continue;
        }
        // A check that cannot run (cargo missing, unreadable tree) is one problem.
        let problems = check(&root).unwrap_or_else(|e| vec![format!("could not run: {e}")]);
        for p in &problems {
            println!("tidy {name}: {p}");
        }
        total += problems.len();
        summary.push(format!("{name} {}", problems.len()));
    }
    let summary = summary.join(", ");
    if total == 0 {
        println!("tidy: ok ({summary})");
        Ok(())
    } else {
        Err(format!("tidy: {total} problem(s): {summary}"))
    }
}

/// Every `.rs` file under `dir` (recursively, skipping `target`), sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    files_with(dir, &["rs"])
}

/// Every file under `dir` whose extension is one of `extensions` (recursively,
/// skipping `target`), sorted.
fn files_with(dir: &Path, extensions: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    collect(dir, extensions, &mut out);
    out.sort();
    out
}

fn collect(dir: &Path, extensions: &[&str], out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "target") {
                collect(&path, extensions, out);
            }
        } else if path
            .extension()
            .is_some_and(|e| extensions.iter().any(|x| e == *x))
        {
            out.push(path);
        }
    }
}

/// Reads a file, naming it in the error.
fn read(path: &Path) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// `path` relative to the workspace root, with `/` separators, for messages.
fn shown(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// The workspace's packages, from `cargo metadata --no-deps`.
fn metadata(root: &Path) -> Result<deps::Metadata, String> {
    let out = crate::cargo()
        .current_dir(root)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .map_err(|e| format!("could not run cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata output: {e}"))
}
