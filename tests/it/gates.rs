//! Policy gates in front of every stage: allowed with complete passing evidence, and
//! denied (exit 3, nothing written) for missing, failing, stale, wrongly signed,
//! foreign or broken-linked evidence; the decision and its timing. Every case runs on
//! the local folder and on the S3 server.

use crate::{assert_code, text, Backend, Repo, SHA};
use ledger_core::{ArtifactKind, Stage};
use serde_json::{json, Value};

/// Stages with a gate in the default policy, and the stage each requires.
const GATED: [(Stage, Stage); 6] = [
    (Stage::Integration, Stage::Commit),
    (Stage::Build, Stage::Integration),
    (Stage::Publish, Stage::Build),
    (Stage::Deploy, Stage::Publish),
    (Stage::Smoke, Stage::Deploy),
    (Stage::Decide, Stage::Smoke),
];

fn gate(repo: &Repo, stage: Stage) -> (i32, Value) {
    let out = repo.ledger(&["gate", stage.as_str(), "--sha", SHA, "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", text(&out)));
    crate::read::assert_output_schema("gate", &v);
    (out.status.code().unwrap(), v)
}

fn reasons(v: &Value) -> String {
    v["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r["rule"].as_str().unwrap(),
                r["message"].as_str().unwrap()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn every_gate_allows_complete_passing_evidence(backend: Backend) {
    for (stage, _) in GATED {
        let repo = Repo::on(&backend);
        repo.chain_before(stage, SHA);
        let (code, v) = gate(&repo, stage);
        assert_eq!(code, 0, "{stage}: {v}");
        assert_eq!(v["allowed"], true);
    }
}

fn every_gate_denies_missing_evidence_and_the_stage_writes_nothing(backend: Backend) {
    for (stage, required) in GATED {
        let repo = Repo::on(&backend);
        let (code, v) = gate(&repo, stage);
        assert_eq!(code, 3, "{stage}");
        assert!(
            reasons(&v).contains(&format!("`{required}` is missing")),
            "{stage}: {}",
            reasons(&v)
        );
        // A build needs a real repository and a commit of it (`source.rs`).
        let head = (stage == Stage::Build).then(|| crate::source::git_init(&repo));
        let sha = head.as_deref().unwrap_or(SHA);
        let args: Vec<&str> = match stage {
            Stage::Integration => vec!["stage", "integration", "--sha", SHA, "--", "true"],
            _ => vec!["stage", stage.as_str(), "--sha", sha],
        };
        let out = repo.ledger(&args);
        assert_code(&out, 3);
        assert!(
            text(&out).contains("nothing ran, nothing was written"),
            "{}",
            text(&out)
        );
        assert!(repo.stored().is_empty(), "{stage}: {:?}", repo.stored());
    }
}

fn every_gate_with_a_result_condition_denies_failing_evidence(backend: Backend) {
    for (stage, required) in GATED.into_iter().filter(|(s, _)| *s != Stage::Decide) {
        let repo = Repo::on(&backend);
        repo.chain_before(required, SHA);
        repo.record(required.primary_artifact(), SHA, |p| {
            p["result"] = "fail".into()
        });
        let (code, v) = gate(&repo, stage);
        assert_eq!(code, 3, "{stage}");
        assert_eq!(
            v["reasons"][0]["rule"],
            format!("/stages/{stage}/requires/0/conditions/0")
        );
        assert_eq!(v["reasons"][0]["found"], "fail");
    }
}

fn stale_evidence_is_denied(backend: Backend) {
    let repo = Repo::on(&backend);
    repo.chain_before(Stage::Smoke, SHA);
    repo.record(ArtifactKind::Smoke, SHA, |p| {
        p["started_at"] = "2026-01-01T00:00:00Z".into();
        p["finished_at"] = "2026-01-01T00:00:05Z".into();
    });
    let (code, v) = gate(&repo, Stage::Decide);
    assert_eq!(code, 3);
    assert_eq!(
        v["reasons"][0]["rule"],
        "/stages/decide/requires/0/max_age_seconds"
    );
    assert_eq!(v["reasons"][0]["required"], 86400);
}

fn evidence_signed_by_a_key_not_trusted_for_its_stage_is_denied(backend: Backend) {
    let repo = Repo::on(&backend);
    let id = repo.generate_key("ci");
    repo.trust_key("ci", &id, &["commit"]);

    repo.chain_before(Stage::Build, SHA);
    // The commit-only key signs build evidence.
    repo.record_with(ArtifactKind::Build, SHA, "ci.key", |_| {});
    let (code, v) = gate(&repo, Stage::Publish);
    assert_eq!(code, 3);
    assert!(
        reasons(&v).contains("no signature by a trusted key for stage `build`"),
        "{}",
        reasons(&v)
    );
    // And the key cannot be used to run a stage it may not sign.
    let out = repo.ledger(&[
        "stage",
        "integration",
        "--sha",
        SHA,
        "--key",
        "ci.key",
        "--",
        "true",
    ]);
    assert_code(&out, 2);
}

fn evidence_of_another_sha_does_not_satisfy_a_gate(backend: Backend) {
    let repo = Repo::on(&backend);
    let other = "f".repeat(40);
    let key = repo.record(ArtifactKind::Commit, &other, |_| {});
    repo.write_logged(&key.replace(&other, SHA), repo.read_object(&key));
    let (code, v) = gate(&repo, Stage::Integration);
    assert_eq!(code, 3);
    assert!(
        reasons(&v).contains("another git commit"),
        "{}",
        reasons(&v)
    );
}

fn a_broken_inputs_link_is_denied(backend: Backend) {
    let repo = Repo::on(&backend);
    repo.chain_before(Stage::Integration, SHA);
    repo.record(ArtifactKind::Integration, SHA, |p| {
        p["inputs"] =
            json!([{ "key": format!("commit/{SHA}/commit.json"), "sha256": "0".repeat(64) }]);
    });
    let (code, v) = gate(&repo, Stage::Build);
    assert_eq!(code, 3);
    assert!(reasons(&v).contains("hash link broken"), "{}", reasons(&v));
}

fn the_latest_attempt_counts_and_the_gate_says_which(backend: Backend) {
    let repo = Repo::on(&backend);
    repo.record(ArtifactKind::Commit, SHA, |_| {});
    repo.record(ArtifactKind::Commit, SHA, |p| p["result"] = "fail".into());
    let (code, v) = gate(&repo, Stage::Integration);
    assert_eq!(code, 3);
    assert!(reasons(&v).contains("attempt 2"), "{}", reasons(&v));
    repo.record(ArtifactKind::Commit, SHA, |_| {});
    let (code, v) = gate(&repo, Stage::Integration);
    assert_eq!(code, 0);
    assert_eq!(v["used"][0]["attempt"], 3);
    assert_eq!(
        v["inputs"][0]["key"],
        format!("commit/{SHA}/commit.attempt-3.json")
    );
}

fn stages_record_the_hash_links_their_gate_consumed(backend: Backend) {
    let repo = Repo::on(&backend);
    assert_code(
        &repo.ledger(&["stage", "commit", "--sha", SHA, "--", "true"]),
        0,
    );
    assert_code(
        &repo.ledger(&["stage", "integration", "--sha", SHA, "--", "true"]),
        0,
    );
    let p = repo.predicate(&format!("integration/{SHA}/integration.json"));
    let commit_key = format!("commit/{SHA}/commit.json");
    let digest = ledger_core::Sha256Digest::of(&repo.read_object(&commit_key));
    assert_eq!(
        p["inputs"],
        json!([{ "key": commit_key, "sha256": digest.to_hex() }])
    );
    // Altering the upstream envelope breaks verification downstream as well.
    let mut bytes = repo.read_object(&commit_key);
    bytes.extend_from_slice(b"\n");
    repo.tamper_object(&commit_key, bytes);
    let out = repo.ledger(&["verify", SHA]);
    assert_code(&out, 4);
    assert!(text(&out).contains("hash link broken"), "{}", text(&out));
}

fn denial_output_is_pinned(backend: Backend) {
    let repo = Repo::on(&backend);
    repo.record(ArtifactKind::Commit, SHA, |p| p["result"] = "fail".into());
    let out = repo.ledger(&["stage", "integration", "--sha", SHA, "--", "true"]);
    assert_code(&out, 3);
    insta::assert_snapshot!("integration_denied", String::from_utf8_lossy(&out.stderr));
    let out = repo.ledger(&["gate", "decide", "--sha", SHA]);
    assert_code(&out, 3);
    insta::assert_snapshot!("decide_gate_text", String::from_utf8_lossy(&out.stdout));
}

fn decide_promotes_a_passing_chain_and_times_it(backend: Backend) {
    let repo = Repo::on(&backend);
    repo.chain_before(Stage::Decide, SHA);
    let out = repo.ledger(&["stage", "decide", "--sha", SHA]);
    assert_code(&out, 0);
    let d = repo.predicate(&format!("release/{SHA}/decision.json"));
    assert_eq!(d["decision"], "promote");
    assert_eq!(d["reasons"], json!([]));
    assert_eq!(d["result"], "pass");
    let t = repo.predicate(&format!("pipeline/{SHA}/timing.json"));
    let stages = t["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 7, "{t}");
    let sum: u64 = stages
        .iter()
        .map(|s| s["duration_ms"].as_u64().unwrap())
        .sum();
    assert_eq!(t["total_stage_ms"].as_u64().unwrap(), sum);
    assert_eq!(
        t["inputs"][0]["key"],
        format!("release/{SHA}/decision.json")
    );
    assert_code(&repo.ledger(&["verify", SHA]), 0);
}

fn decide_rejects_when_smoke_failed_and_records_why(backend: Backend) {
    let repo = Repo::on(&backend);
    repo.chain_before(Stage::Smoke, SHA);
    repo.record(ArtifactKind::Smoke, SHA, |p| {
        p["result"] = "fail".into();
        p["checks"][1]["ok"] = false.into();
    });
    let out = repo.ledger(&["stage", "decide", "--sha", SHA]);
    assert_code(&out, 1);
    let d = repo.predicate(&format!("release/{SHA}/decision.json"));
    assert_eq!(d["decision"], "reject");
    assert_eq!(d["result"], "fail");
    let rules: Vec<&str> = d["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rule"].as_str().unwrap())
        .collect();
    assert_eq!(
        rules,
        [
            "/release/requires/5/conditions/0",
            "/release/requires/5/conditions/1"
        ]
    );
    assert!(repo.has_object(&format!("pipeline/{SHA}/timing.json")));
    assert_code(&repo.ledger(&["verify", SHA]), 0);
}

fn a_circular_policy_is_bad_input_with_its_path(backend: Backend) {
    let repo = Repo::on(&backend);
    repo.edit_policy_unsigned(|p| {
        p["stages"]["commit"] = json!({"requires": [{"stage": "decide"}]})
    });
    let out = repo.ledger(&["gate", "integration", "--sha", SHA]);
    assert_code(&out, 2);
    assert!(
        text(&out)
            .contains("/stages/commit/requires: circular requirement commit -> decide -> smoke"),
        "{}",
        text(&out)
    );
}

/// A policy whose publish gate does not require build evidence leaves publish with
/// nothing to publish: that is the policy's shape, so bad input (2), not a
/// verification failure, and nothing is written.
fn a_gate_that_lacks_the_evidence_its_stage_works_from_is_bad_input(backend: Backend) {
    let repo = Repo::on(&backend);
    repo.edit_policy(|p| {
        p["stages"]["publish"] = json!({"requires": [{"stage": "integration"}]});
    });
    repo.chain_before(Stage::Publish, SHA);
    let before = repo.stored();
    let out = repo.ledger(&["stage", "publish", "--sha", SHA]);
    assert_code(&out, 2);
    let t = text(&out);
    assert!(
        t.contains("the policy's gate for publish does not require build evidence"),
        "{t}"
    );
    assert!(
        t.contains("hint: add a build requirement to /stages/publish in the policy"),
        "{t}"
    );
    let written: Vec<String> = repo
        .stored()
        .into_iter()
        .filter(|k| !before.contains(k) && !k.starts_with("policies/"))
        .collect();
    assert!(
        written.is_empty(),
        "nothing but the policy copy is written: {written:?}"
    );
}

fn key_rotation_keeps_old_evidence_valid_and_refuses_the_revoked_key(backend: Backend) {
    let repo = Repo::on(&backend);
    let old_id = repo.key_id(".ledger/test.pub");
    assert_code(
        &repo.ledger(&["stage", "commit", "--sha", SHA, "--", "true"]),
        0,
    );

    // Rotate: trust a new key for every stage, revoke the old one from now on.
    let new_id = repo.generate_key("new");
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    repo.edit_policy(|p| p["keys"][0]["revoked_at"] = now.into());
    let all: Vec<&str> = Stage::ALL.iter().map(|s| s.as_str()).collect();
    repo.trust_key("new", &new_id, &all);

    // The revoked key can no longer sign.
    let out = repo.ledger(&["stage", "integration", "--sha", SHA, "--", "true"]);
    assert_code(&out, 2);
    assert!(text(&out).contains("revoked"), "{}", text(&out));
    // The new key can, and its gate accepts the commit evidence signed before revocation.
    assert_code(
        &repo.ledger(&[
            "stage",
            "integration",
            "--sha",
            SHA,
            "--key",
            "new.key",
            "--",
            "true",
        ]),
        0,
    );
    // verify says which key signed what; old evidence notes the earlier policy.
    let out = repo.ledger(&["verify", SHA]);
    assert_code(&out, 0);
    let shown = text(&out);
    assert!(
        shown.contains(&old_id[..12]) && shown.contains(&new_id[..12]),
        "{shown}"
    );
}

fn the_build_gate_refuses_a_second_build_and_points_at_replay(backend: Backend) {
    let repo = Repo::on(&backend);
    repo.chain_before(Stage::Build, SHA);
    assert_eq!(gate(&repo, Stage::Build).0, 0);
    repo.record(ArtifactKind::Build, SHA, |_| {});
    let (code, v) = gate(&repo, Stage::Build);
    assert_eq!(code, 3);
    assert_eq!(v["reasons"][0]["rule"], "build-once");
    assert!(
        reasons(&v).contains(&format!("ledger replay {SHA}")),
        "{}",
        reasons(&v)
    );
    // A failed build does not count: the SHA may be built again.
    let repo = Repo::on(&backend);
    repo.chain_before(Stage::Build, SHA);
    repo.record(ArtifactKind::Build, SHA, |p| p["result"] = "fail".into());
    assert_eq!(gate(&repo, Stage::Build).0, 0);
}

on_both_backends!(
    every_gate_allows_complete_passing_evidence,
    every_gate_denies_missing_evidence_and_the_stage_writes_nothing,
    every_gate_with_a_result_condition_denies_failing_evidence,
    stale_evidence_is_denied,
    evidence_signed_by_a_key_not_trusted_for_its_stage_is_denied,
    evidence_of_another_sha_does_not_satisfy_a_gate,
    a_broken_inputs_link_is_denied,
    the_latest_attempt_counts_and_the_gate_says_which,
    stages_record_the_hash_links_their_gate_consumed,
    denial_output_is_pinned,
    decide_promotes_a_passing_chain_and_times_it,
    decide_rejects_when_smoke_failed_and_records_why,
    a_circular_policy_is_bad_input_with_its_path,
    a_gate_that_lacks_the_evidence_its_stage_works_from_is_bad_input,
    key_rotation_keeps_old_evidence_valid_and_refuses_the_revoked_key,
    the_build_gate_refuses_a_second_build_and_points_at_replay,
);
