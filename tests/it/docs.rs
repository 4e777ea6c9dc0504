//! The CI pipelines in `docs/ci/` are documentation people copy: they must be valid
//! YAML, run all seven stages, and take signing keys from the CI's secret store only,
//! one key per trust zone.

use crate::text;
use std::path::Path;

#[test]
fn ci_examples_run_the_seven_stages_with_keys_from_secrets() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/ci");
    for file in ["github-actions.yml", "gitlab-ci.yml"] {
        let path = dir.join(file);
        let body = std::fs::read_to_string(&path).unwrap();
        for stage in ledger_core::Stage::ALL {
            assert!(
                body.contains(&format!("ledger stage {stage}")),
                "{file}: no {stage} stage"
            );
        }
        assert!(body.contains("ledger doctor"), "{file}: no preflight");
        assert!(body.contains("ledger report"), "{file}: no report");
        assert!(
            !body.contains("BEGIN"),
            "{file}: key material in a pipeline file"
        );
        for line in body.lines().filter(|l| l.contains("LEDGER_SIGNING_KEY:")) {
            let value = line.split_once(':').unwrap().1.trim();
            assert!(
                value.starts_with("${{ secrets.") || value.starts_with("$LEDGER_"),
                "{file}: signing key not from the secret store: {line}"
            );
        }
        assert_zones(file, &body);
        if std::env::var_os("LEDGER_SKIP_INTEROP").is_some() {
            continue;
        }
        let out = std::process::Command::new("python3")
            .args(["-c", "import sys, yaml; yaml.safe_load(open(sys.argv[1]))"])
            .arg(&path)
            .output()
            .expect("python3");
        assert!(
            out.status.success(),
            "{file} is not valid YAML: {}",
            text(&out)
        );
    }
}

/// Each stage runs with its trust zone's key (the nearest `LEDGER_SIGNING_KEY` set
/// before it), the owners are pinned from the CI's settings, and no job sees the
/// policy owner's key.
fn assert_zones(file: &str, body: &str) {
    assert!(
        body.contains("LEDGER_POLICY_OWNERS"),
        "{file}: owners not pinned"
    );
    let lower = body.to_lowercase();
    assert!(
        !lower.contains("owner_key") && !lower.contains("policy-owner.key"),
        "{file}: the owner key must not reach CI"
    );
    let mut key = "";
    for line in body.lines() {
        if let Some((_, value)) = line.split_once("LEDGER_SIGNING_KEY:") {
            key = value.trim();
        }
        let Some((_, rest)) = line.split_once("ledger stage ") else {
            continue;
        };
        let stage = rest.split_whitespace().next().unwrap_or_default();
        let zone = if matches!(stage, "commit" | "integration") {
            "TEST"
        } else {
            "RELEASE"
        };
        assert!(
            key.contains(&format!("LEDGER_{zone}_KEY")),
            "{file}: `ledger stage {stage}` runs with {key:?}, not the {zone} zone key"
        );
    }
}
