//! The published schemas, checked both ways against their fixtures, and against the
//! Rust types that write predicates (the drift test): every `valid/` file must pass,
//! every `invalid/` file must fail, and a schema without enough fixtures fails too,
//! so coverage cannot shrink silently.

use ledger_core::predicate::{
    Command, CommandPredicate, Header, Input, Outcome, Output, Runner, Source, TestCounts, Tree,
};
use ledger_core::schema::{validate, Document};
use ledger_core::{ArtifactKind, GitSha, Sha256Digest, Stage};
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/fixtures")
}

fn name(doc: Document) -> &'static str {
    doc.name()
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    out.sort();
    out
}

fn load(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_schema_accepts_its_valid_fixtures_and_rejects_its_invalid_ones() {
    for doc in Document::all() {
        let dir = fixtures().join(name(doc));
        let valid = files(&dir.join("valid"));
        let invalid = files(&dir.join("invalid"));
        assert!(
            valid.len() >= 2,
            "{}: at least 2 valid fixtures needed",
            dir.display()
        );
        assert!(
            invalid.len() >= 4,
            "{}: at least 4 invalid fixtures needed",
            dir.display()
        );
        for f in valid {
            if let Err(e) = validate(doc, &load(&f)) {
                panic!("{} should be valid: {e}", f.display());
            }
        }
        for f in invalid {
            assert!(
                validate(doc, &load(&f)).is_err(),
                "{} should be invalid",
                f.display()
            );
        }
    }
}

fn command_predicate(stage: Stage) -> CommandPredicate {
    let sha = GitSha::parse("0123456789abcdef0123456789abcdef01234567").unwrap();
    let t = time::macros::datetime!(2026-11-24 10:00 UTC);
    CommandPredicate {
        header: Header {
            stage,
            sha,
            attempt: 2,
            started_at: t,
            finished_at: t + time::Duration::seconds(3),
            result: Outcome::Pass,
            runner: Runner {
                host: "h".into(),
                ci_provider: "local".into(),
                run_id: None,
                run_url: None,
                labels: vec![],
            },
            inputs: vec![Input {
                key: format!("commit/{sha}/commit.json"),
                sha256: Sha256Digest::of(b"x"),
            }],
            policy_sha256: Sha256Digest::of(b"p"),
            ledger_version: "0.1.0".into(),
            log_head: None,
        },
        command: Command {
            argv: vec!["true".into()],
            exit_code: Some(0),
            duration_ms: 3,
            isolation: None,
        },
        output: Output {
            key: format!("{stage}/{sha}/{stage}.attempt-2.log"),
            sha256: Sha256Digest::of(b"log"),
            bytes: 3,
            redacted: vec![],
            truncated: false,
            total_bytes: None,
        },
        tests: Some(TestCounts {
            passed: 1,
            failed: 0,
            ignored: 0,
        }),
        source: Some(Source {
            head: Some(sha),
            tree: Tree::Clean,
            diff_sha256: None,
        }),
    }
}

#[test]
fn the_rust_types_match_the_schemas() {
    for (stage, kind) in [
        (Stage::Commit, ArtifactKind::Commit),
        (Stage::Integration, ArtifactKind::Integration),
    ] {
        let doc = Document::Predicate(kind);
        let value = serde_json::to_value(command_predicate(stage)).unwrap();
        validate(doc, &value).unwrap();
        for field in [
            "stage",
            "sha",
            "attempt",
            "started_at",
            "finished_at",
            "result",
            "runner",
            "inputs",
            "policy_sha256",
            "ledger_version",
            "command",
            "output",
        ] {
            let mut v = value.clone();
            v.as_object_mut().unwrap().remove(field);
            assert!(
                validate(doc, &v).is_err(),
                "{kind}: {field} must be required"
            );
        }
        let mut v = value.clone();
        v["unexpected"] = 1.into();
        assert!(
            validate(doc, &v).is_err(),
            "{kind}: unknown fields must be refused"
        );
        // Optional fields stay optional.
        let mut v = value;
        v.as_object_mut().unwrap().remove("tests");
        validate(doc, &v).unwrap();
    }
}
