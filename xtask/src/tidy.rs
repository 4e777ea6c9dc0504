//! Tidy checks: the architecture rules of ARCHITECTURE.md, enforced.
//!
//! * Dependency arrows point one way: cli → pipeline → store/policy → core.
//! * Each external crate with a single owner is used by that crate only
//!   (`object_store` by the store, `clap` by the CLI, `bollard` by the Docker crate).
//! * `ledger-core` and `ledger-policy` stay pure: no async runtime, no I/O crates.
//! * Every Rust file opens with a `//!` comment saying why it exists.

use crate::root;
use std::fs;
use std::path::Path;

/// Which workspace crates each crate may depend on.
const ALLOWED: &[(&str, &[&str])] = &[
    ("ledger-core", &[]),
    ("ledger-policy", &["ledger-core"]),
    ("ledger-store", &["ledger-core"]),
    ("ledger-docker", &["ledger-core"]),
    (
        "ledger-pipeline",
        &[
            "ledger-core",
            "ledger-policy",
            "ledger-store",
            "ledger-docker",
        ],
    ),
    (
        "ledger-cli",
        &[
            "ledger-core",
            "ledger-policy",
            "ledger-store",
            "ledger-pipeline",
            "ledger-docker",
        ],
    ),
    (
        "ledger-testkit",
        &[
            "ledger-core",
            "ledger-policy",
            "ledger-store",
            "ledger-pipeline",
        ],
    ),
];

/// External crates only one workspace crate may use.
const OWNED: &[(&str, &str)] = &[
    ("object_store", "ledger-store"),
    ("clap", "ledger-cli"),
    ("bollard", "ledger-docker"),
];

/// Crates the pure crates must not depend on.
const IMPURE: &[&str] = &[
    "tokio",
    "object_store",
    "bollard",
    "reqwest",
    "hyper",
    "futures",
];
const PURE: &[&str] = &["ledger-core", "ledger-policy"];

pub fn run() -> Result<(), String> {
    let mut problems = Vec::new();
    let crates = root().join("crates");
    let entries = fs::read_dir(&crates).map_err(|e| format!("{}: {e}", crates.display()))?;
    for entry in entries.flatten() {
        let dir = entry.path();
        let manifest = dir.join("Cargo.toml");
        let Ok(text) = fs::read_to_string(&manifest) else {
            continue;
        };
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_owned();
        let deps = dependencies(&text);
        match ALLOWED.iter().find(|(n, _)| *n == name) {
            None => problems.push(format!("{name}: not in tidy's ALLOWED map; add it with the crates it may depend on (and to ARCHITECTURE.md)")),
            Some((_, allowed)) => {
                for d in deps.iter().filter(|d| d.starts_with("ledger-")) {
                    if !allowed.contains(&d.as_str()) {
                        problems.push(format!("{name} depends on {d}: dependency arrows must point cli → pipeline → store/policy/docker → core"));
                    }
                }
            }
        }
        for (ext, owner) in OWNED {
            if deps.iter().any(|d| d == ext) && name != *owner {
                problems.push(format!("{name} depends on {ext}: only {owner} may"));
            }
        }
        if PURE.contains(&name.as_str()) {
            for d in deps.iter().filter(|d| IMPURE.contains(&d.as_str())) {
                problems.push(format!(
                    "{name} depends on {d}: it must stay pure (no I/O, no async)"
                ));
            }
        }
    }
    for dir in ["crates", "xtask", "examples"] {
        check_doc_comments(&root().join(dir), &mut problems);
    }
    if problems.is_empty() {
        println!("tidy: ok");
        Ok(())
    } else {
        for p in &problems {
            eprintln!("tidy: {p}");
        }
        Err(format!("{} tidy problem(s)", problems.len()))
    }
}

/// Names under `[dependencies]` (not dev- or build-dependencies).
fn dependencies(manifest: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_deps = false;
    for line in manifest.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            in_deps = t == "[dependencies]";
            continue;
        }
        if in_deps {
            if let Some((name, _)) = t.split_once('=') {
                let name = name.trim().split('.').next().unwrap_or("").trim();
                if !name.is_empty() && !name.starts_with('#') {
                    out.push(name.to_owned());
                }
            }
        }
    }
    out
}

fn check_doc_comments(dir: &Path, problems: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            check_doc_comments(&path, problems);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = fs::read_to_string(&path).unwrap_or_default();
            let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            if !first.starts_with("//!") {
                let shown = path
                    .strip_prefix(root())
                    .unwrap_or(&path)
                    .display()
                    .to_string();
                problems.push(format!(
                    "{shown}: first line must be a `//!` comment saying why the file exists"
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_only_normal_dependencies() {
        let m = "[package]\nname = \"x\"\n[dependencies]\nledger-core.workspace = true\nserde = \"1\"\n[dev-dependencies]\nclap = \"4\"\n";
        assert_eq!(dependencies(m), ["ledger-core", "serde"]);
    }
}
