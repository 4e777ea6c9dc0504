//! The verify path links no container engine and no HTTP client.
//!
//! `cargo tree -p <crate> -e normal --prefix none --target all` lists every package a
//! crate links (on any platform, with its default features); none may be one of
//! [`FORBIDDEN`]. This is what lets an auditor verify evidence without a network
//! stack: a direct dependency check would miss one pulled in by a feature. Each crate
//! is resolved as if built alone (`-p`), so a feature that another member turns on
//! for a shared dependency (the CLI wanting `ledger-store/s3`) does not count against
//! it. `ledger-store`'s `s3` feature links `reqwest` and `hyper`, so the workspace
//! takes `ledger-store` with default features off and only `ledger-pipeline` asks for
//! `s3`.

use std::collections::BTreeSet;
use std::path::Path;

/// The crates checked, and whether they must exist (a crate that may be absent is
/// skipped with a note; every crate of the verify path is required).
const CHECKED: &[(&str, bool)] = &[
    ("ledger-core", true),
    ("ledger-policy", true),
    ("ledger-verify", true),
];

/// Packages the verify path must not link: the engine client and HTTP stacks.
const FORBIDDEN: &[&str] = &["bollard", "reqwest", "hyper", "oci-client"];

/// The I/O wrapper: one `cargo tree` per crate that exists.
pub fn run(root: &Path) -> Result<Vec<String>, String> {
    let meta = super::metadata(root)?;
    let mut problems = Vec::new();
    for (name, required) in CHECKED {
        if !meta.packages.iter().any(|p| p.name == *name) {
            if *required {
                problems.push(format!(
                    "no `{name}` crate in the workspace; the verify path is built on it \
                     (ARCHITECTURE.md), restore it or update tidy's verify_path.rs"
                ));
            } else {
                println!("tidy verify-path: skipped: no {name} crate");
            }
            continue;
        }
        let out = crate::cargo()
            .current_dir(root)
            .args(["tree", "-p", name, "-e", "normal", "--prefix", "none"])
            .args(["--target", "all"])
            .output()
            .map_err(|e| format!("could not run cargo tree: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "cargo tree -p {name} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        problems.extend(check(name, &String::from_utf8_lossy(&out.stdout)));
    }
    Ok(problems)
}

/// One problem per forbidden package in `tree` (`cargo tree --prefix none` output).
pub fn check(name: &str, tree: &str) -> Vec<String> {
    let found: BTreeSet<&str> = tree
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let package = words.next()?;
            let version = words.next().unwrap_or("");
            FORBIDDEN.contains(&package).then_some(version)?;
            Some(line.split(" (").next().unwrap_or(line).trim())
        })
        .collect();
    found
        .into_iter()
        .map(|package| {
            format!(
                "`{name}` links `{package}` (see `cargo tree -p {name} -e normal -i {}`); \
                 the verify path must link no engine or HTTP client, so depend on the \
                 crate that pulls it in without that feature, or move the code to \
                 ledger-pipeline",
                package.split(' ').next().unwrap_or(package)
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_tree_passes() {
        let tree =
            "ledger-core v0.1.0 (/ws/crates/ledger-core)\nserde v1.0.0\nhyperlocal-ish v1.0.0\n";
        assert_eq!(check("ledger-core", tree), Vec::<String>::new());
    }

    #[test]
    fn each_forbidden_package_is_named_once() {
        let tree = "ledger-verify v0.1.0 (/ws)\nobject_store v0.14.0\nreqwest v0.12.1\n\
                    hyper v1.6.0\nhyper-util v0.1.0\nhyper v1.6.0 (*)\n";
        let found = check("ledger-verify", tree);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].starts_with("`ledger-verify` links `hyper v1.6.0`"));
        assert!(found[0].contains("cargo tree -p ledger-verify -e normal -i hyper`"));
        assert!(found[1].starts_with("`ledger-verify` links `reqwest v0.12.1`"));
    }
}
