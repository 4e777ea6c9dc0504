//! The policy `ledger init` writes: the seven-stage chain, with one key for the stages
//! that run project code (commit, integration) and another for the release stages.
//!
//! commit → integration → build → publish → deploy → smoke → decide, each stage
//! requiring a passing previous stage; the release decision requires every stage to
//! have passed, every smoke check to be ok and the smoke p95 latency and deploy time
//! to stay within bounds (the ten-minute deploy goal `ledger report` measures).

use crate::model::{Condition, Freshness, Gate, KeyDoc, Op, PolicyDoc, Requirement};
use ledger_core::{PublicKey, Stage};
use serde_json::json;
use std::collections::BTreeMap;

/// The `$schema` reference written into policy files.
pub const POLICY_SCHEMA_ID: &str = "https://ledger.dev/schemas/policy.v1.schema.json";

fn passed(stage: Stage) -> Requirement {
    Requirement {
        stage,
        conditions: vec![Condition {
            path: "/result".into(),
            op: Op::Eq,
            value: Some(json!("pass")),
            description: None,
        }],
        max_age_seconds: None,
        description: None,
    }
}

fn cond(path: &str, op: Op, value: serde_json::Value, description: &str) -> Condition {
    Condition {
        path: path.into(),
        op,
        value: Some(value),
        description: Some(description.into()),
    }
}

/// The test zone: the stages that run project code, whose key a pull request's tests
/// could reach if isolation failed; it must never be able to sign a release stage.
pub const TEST_ZONE: [Stage; 2] = [Stage::Commit, Stage::Integration];

/// The release zone: every other stage.
pub const RELEASE_ZONE: [Stage; 5] = [
    Stage::Build,
    Stage::Publish,
    Stage::Deploy,
    Stage::Smoke,
    Stage::Decide,
];

/// A trusted-key entry for `key`, trusted for `stages`.
pub fn key_doc(
    key: &PublicKey,
    stages: &[Stage],
    comment: &str,
) -> Result<KeyDoc, ledger_core::keys::KeyError> {
    Ok(KeyDoc {
        keyid: key.key_id().to_string(),
        public_key: key.to_pem()?,
        stages: stages.to_vec(),
        revoked_at: None,
        comment: Some(comment.to_owned()),
    })
}

/// The default policy document trusting `keys`.
pub fn default_policy(keys: Vec<KeyDoc>) -> PolicyDoc {
    PolicyDoc {
        schema: Some(POLICY_SCHEMA_ID.into()),
        description: Some(
            "ledger pipeline policy: trusted keys and the gate of every stage".into(),
        ),
        version: 1,
        keys,
        stages: default_stage_gates(),
        release: Some(default_release_gate()),
        replay: Some(default_replay_gate()),
        rollback: Some(json!({"require_decision": "promote"})),
        freshness: Some(Freshness {
            max_running_age_seconds: 30 * 24 * 3600,
        }),
        environments: BTreeMap::new(),
    }
}

/// The gate of every stage after `commit`: a passing previous stage, except for the
/// decision, which needs only fresh smoke evidence.
fn default_stage_gates() -> BTreeMap<Stage, Gate> {
    let chain = [
        (Stage::Integration, Stage::Commit),
        (Stage::Build, Stage::Integration),
        (Stage::Publish, Stage::Build),
        (Stage::Deploy, Stage::Publish),
        (Stage::Smoke, Stage::Deploy),
    ];
    let mut stages: BTreeMap<Stage, Gate> = chain
        .into_iter()
        .map(|(s, dep)| {
            (
                s,
                Gate {
                    requires: vec![passed(dep)],
                    min_signatures: None,
                },
            )
        })
        .collect();
    // The decision runs whatever smoke found: a failed smoke must yield a recorded
    // reject, so the gate asks only that smoke evidence exists and verifies.
    stages.insert(
        Stage::Decide,
        Gate {
            requires: vec![Requirement {
                stage: Stage::Smoke,
                conditions: vec![],
                max_age_seconds: Some(24 * 3600),
                description: Some("a fresh smoke run of the deployed release".into()),
            }],
            min_signatures: None,
        },
    );
    stages
}

/// The release decision's gate: every stage passed, the deploy within the 10-minute
/// goal, every smoke check ok and the smoke p95 latency at most 1 s.
fn default_release_gate() -> Gate {
    let mut release: Vec<Requirement> = [
        Stage::Commit,
        Stage::Integration,
        Stage::Build,
        Stage::Publish,
        Stage::Deploy,
    ]
    .into_iter()
    .map(passed)
    .collect();
    if let Some(deploy) = release.last_mut() {
        deploy.conditions.push(cond(
            "/duration_ms",
            Op::Le,
            json!(600_000),
            "deploy finished within the 10-minute goal",
        ));
    }
    let mut smoke = passed(Stage::Smoke);
    smoke.conditions.extend([
        cond("/checks/*/ok", Op::Eq, json!(true), "every smoke check ok"),
        cond(
            "/latency_ms/p95",
            Op::Le,
            json!(1000),
            "smoke p95 latency at most 1 s",
        ),
    ]);
    release.push(smoke);
    Gate {
        requires: release,
        min_signatures: None,
    }
}

/// Replay and rollback need the chain up to `publish` to have passed: the manifest
/// and the tested, built commit it names. No age limit: an old release stays
/// replayable as long as its evidence verifies.
pub fn default_replay_gate() -> Gate {
    Gate {
        requires: [
            Stage::Commit,
            Stage::Integration,
            Stage::Build,
            Stage::Publish,
        ]
        .into_iter()
        .map(passed)
        .collect(),
        min_signatures: None,
    }
}

/// The default policy as the pretty JSON text written to disk.
pub fn default_policy_json(key: &PublicKey) -> Result<String, ledger_core::keys::KeyError> {
    Ok(policy_json(vec![key_doc(
        key,
        &Stage::ALL,
        "trusted for every stage",
    )?]))
}

/// The policy `ledger init` writes: `test` signs the test zone, `release` the rest.
pub fn zoned_policy_json(
    test: &PublicKey,
    release: &PublicKey,
) -> Result<String, ledger_core::keys::KeyError> {
    Ok(policy_json(vec![
        key_doc(test, &TEST_ZONE, "test zone: stages that run project code")?,
        key_doc(release, &RELEASE_ZONE, "release zone: build to decide")?,
    ]))
}

fn policy_json(keys: Vec<KeyDoc>) -> String {
    let doc = default_policy(keys);
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    text
}
