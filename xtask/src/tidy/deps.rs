//! The crate dependency rules, checked on `cargo metadata --no-deps`.
//!
//! Only normal and build dependencies count: dev-dependencies are exempt, so tests
//! may use `ledger-store` with its `testing` feature and the like.

use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Which workspace crates each workspace crate may depend on: the arrows of the
/// "Code map" in ARCHITECTURE.md (cli → pipeline → verify → store/policy → core;
/// pipeline → docker). Change both together; a crate missing here is an error.
pub const ALLOWED: &[(&str, &[&str])] = &[
    ("ledger-core", &[]),
    ("ledger-policy", &["ledger-core"]),
    ("ledger-store", &["ledger-core"]),
    // The engine crate knows images and containers, never evidence.
    ("ledger-docker", &[]),
    (
        "ledger-verify",
        &["ledger-core", "ledger-policy", "ledger-store"],
    ),
    (
        "ledger-pipeline",
        &[
            "ledger-core",
            "ledger-policy",
            "ledger-store",
            "ledger-verify",
            "ledger-docker",
        ],
    ),
    // The CLI reaches the store, policy and engine only through verify and pipeline.
    (
        "ledger-cli",
        &["ledger-core", "ledger-verify", "ledger-pipeline"],
    ),
    ("xtask", &[]),
    ("ledger-example-service", &[]),
];

/// External crates only one workspace crate may use.
const OWNED: &[(&str, &str)] = &[
    ("object_store", "ledger-store"),
    ("clap", "ledger-cli"),
    ("bollard", "ledger-docker"),
    // Registry credentials are read in one place, and only the engine crate holds them.
    ("docker_credential", "ledger-docker"),
];

/// The pure crates (no I/O, no async) and the crates they must not depend on.
const PURE: &[&str] = &["ledger-core", "ledger-policy"];
const IMPURE: &[&str] = &[
    "tokio",
    "object_store",
    "bollard",
    "reqwest",
    "hyper",
    "futures",
];

/// The part of `cargo metadata --format-version 1` the checks read.
#[derive(Debug, Deserialize)]
pub struct Metadata {
    pub packages: Vec<Package>,
}

#[derive(Debug, Deserialize)]
pub struct Package {
    pub name: String,
    pub manifest_path: PathBuf,
    pub dependencies: Vec<Dependency>,
}

#[derive(Debug, Deserialize)]
pub struct Dependency {
    /// The package name (even when renamed in the manifest).
    pub name: String,
    /// `None` for normal dependencies, `Some("dev")` or `Some("build")`.
    pub kind: Option<String>,
}

impl Package {
    /// Names of the normal and build dependencies, deduplicated.
    fn linked(&self) -> BTreeSet<&str> {
        self.dependencies
            .iter()
            .filter(|d| d.kind.as_deref() != Some("dev"))
            .map(|d| d.name.as_str())
            .collect()
    }
}

/// The I/O wrapper: reads the metadata and checks it.
pub fn run(root: &Path) -> Result<Vec<String>, String> {
    Ok(check(&super::metadata(root)?, root))
}

/// Every broken dependency rule in `meta`, one message each.
pub fn check(meta: &Metadata, root: &Path) -> Vec<String> {
    let workspace: BTreeSet<&str> = meta.packages.iter().map(|p| p.name.as_str()).collect();
    let mut problems = Vec::new();
    for p in &meta.packages {
        let manifest = super::shown(root, &p.manifest_path);
        let linked = p.linked();
        match ALLOWED.iter().find(|(n, _)| *n == p.name) {
            None => problems.push(format!(
                "{manifest}: workspace crate `{}` is not in tidy's ALLOWED table \
                 (xtask/src/tidy/deps.rs); add it to the table and to ARCHITECTURE.md \
                 with the workspace crates it may depend on",
                p.name
            )),
            Some((_, allowed)) => {
                for d in linked.iter().filter(|d| workspace.contains(*d)) {
                    if !allowed.contains(d) {
                        problems.push(format!(
                            "{manifest}: `{}` depends on `{d}`, which ARCHITECTURE.md does \
                             not allow (allowed: {}); reach it through an allowed crate or \
                             move the code (dev-dependencies are exempt)",
                            p.name,
                            list(allowed)
                        ));
                    }
                }
            }
        }
        for (ext, owner) in OWNED {
            if linked.contains(ext) && p.name != *owner {
                problems.push(format!(
                    "{manifest}: `{}` depends on `{ext}`; only `{owner}` may, go through it",
                    p.name
                ));
            }
        }
        if PURE.contains(&p.name.as_str()) {
            for d in linked.iter().filter(|d| IMPURE.contains(*d)) {
                problems.push(format!(
                    "{manifest}: `{}` depends on `{d}`; it must stay pure (no I/O, no \
                     async), move that code to a crate that may do I/O",
                    p.name
                ));
            }
        }
    }
    problems
}

fn list(names: &[&str]) -> String {
    if names.is_empty() {
        "no workspace crate".into()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(name: &str, deps: &[(&str, Option<&str>)]) -> Package {
        Package {
            name: name.into(),
            manifest_path: PathBuf::from(format!("/ws/crates/{name}/Cargo.toml")),
            dependencies: deps
                .iter()
                .map(|(n, k)| Dependency {
                    name: (*n).into(),
                    kind: k.map(Into::into),
                })
                .collect(),
        }
    }

    fn problems(packages: Vec<Package>) -> Vec<String> {
        check(&Metadata { packages }, Path::new("/ws"))
    }

    #[test]
    fn the_target_architecture_passes() {
        let found = problems(vec![
            package("ledger-core", &[("serde", None)]),
            package("ledger-policy", &[("ledger-core", None)]),
            package(
                "ledger-store",
                &[("ledger-core", None), ("object_store", None)],
            ),
            package(
                "ledger-verify",
                &[("ledger-store", None), ("ledger-policy", None)],
            ),
            package(
                "ledger-pipeline",
                &[("ledger-verify", None), ("ledger-docker", None)],
            ),
            package("ledger-cli", &[("ledger-pipeline", None), ("clap", None)]),
            package("xtask", &[("serde_json", None)]),
        ]);
        assert_eq!(found, Vec::<String>::new());
    }

    #[test]
    fn a_forbidden_arrow_names_the_manifest_and_the_allowed_crates() {
        let found = problems(vec![
            package("ledger-store", &[]),
            package("ledger-cli", &[("ledger-store", None)]),
        ]);
        assert_eq!(found.len(), 1);
        assert!(found[0]
            .starts_with("crates/ledger-cli/Cargo.toml: `ledger-cli` depends on `ledger-store`"));
        assert!(found[0].contains("ledger-core, ledger-verify, ledger-pipeline"));
    }

    #[test]
    fn dev_dependencies_are_exempt_but_build_dependencies_are_not() {
        let found = problems(vec![
            package("ledger-store", &[]),
            package("ledger-core", &[("ledger-store", Some("dev"))]),
            package("ledger-policy", &[("ledger-store", Some("build"))]),
        ]);
        assert_eq!(found.len(), 1);
        assert!(found[0].contains("`ledger-policy` depends on `ledger-store`"));
    }

    #[test]
    fn arrows_to_crates_outside_the_workspace_are_not_workspace_arrows() {
        // `ledger-verify` is allowed by name only once it is a workspace crate.
        let found = problems(vec![package("ledger-core", &[("ledger-verify", None)])]);
        assert_eq!(found, Vec::<String>::new());
    }

    #[test]
    fn a_crate_missing_from_the_table_is_an_error() {
        let found = problems(vec![package("ledger-testkit", &[])]);
        assert_eq!(found.len(), 1);
        assert!(found[0].contains("add it to the table and to ARCHITECTURE.md"));
    }

    #[test]
    fn owned_and_pure_rules_hold() {
        let found = problems(vec![
            package("ledger-core", &[("tokio", None)]),
            package("ledger-pipeline", &[("bollard", None)]),
        ]);
        assert_eq!(found.len(), 2);
        assert!(found[0].contains("must stay pure"));
        assert!(found[1].contains("only `ledger-docker` may"));
    }

    #[test]
    fn parses_cargo_metadata_output() {
        let json = r#"{"packages":[{"name":"a","version":"0.1.0",
            "manifest_path":"/ws/a/Cargo.toml","dependencies":[
            {"name":"b","kind":null,"req":"*"},{"name":"c","kind":"dev"}]}],
            "workspace_root":"/ws"}"#;
        let meta: Metadata = serde_json::from_str(json).unwrap();
        assert_eq!(meta.packages[0].linked(), BTreeSet::from(["b"]));
    }
}
