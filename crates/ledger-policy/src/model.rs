//! The policy document as serde types, mirroring `schemas/policy.v1.schema.json`.
//!
//! These types are only ever built from JSON that already passed the schema, so they
//! stay plain data; the meaning lives in [`crate::Policy`] and the evaluator.

use ledger_core::Stage;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The whole policy file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDoc {
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub version: u32,
    pub keys: Vec<KeyDoc>,
    #[serde(default)]
    pub stages: BTreeMap<Stage, Gate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<Gate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<Gate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freshness: Option<Freshness>,
    /// Per-environment rules: who may run stages there, how releases get promoted in.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environments: BTreeMap<String, EnvironmentRules>,
}

/// Rules for one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentRules {
    /// Runners allowed to run deploy and smoke (and promote) here: a runner matches by
    /// host name or by any of its labels (CI runner name, tags, LEDGER_RUNNER_LABELS).
    /// Absent: any runner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_runners: Option<Vec<String>>,
    /// How releases reach this environment with `ledger promote`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion: Option<Promotion>,
}

/// The rules `ledger promote SHA --to <env>` checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Promotion {
    /// The environment the release must have passed first.
    pub from: String,
    /// How long the release must have run in `from` since its passing smoke.
    #[serde(default)]
    pub min_soak_seconds: u64,
}

/// When `ledger status` raises its freshness alarm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Freshness {
    /// An environment running one release longer than this is stale.
    pub max_running_age_seconds: u64,
}

/// A trusted public key and the stages it may sign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyDoc {
    pub keyid: String,
    pub public_key: String,
    pub stages: Vec<Stage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// What must hold before something may run.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gate {
    #[serde(default)]
    pub requires: Vec<Requirement>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_signatures: Option<u32>,
}

/// Evidence of `stage` must exist, verify, be fresh enough and meet `conditions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    pub stage: Stage,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A comparison on one field of a predicate, addressed by JSON pointer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub path: String,
    pub op: Op,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Comparison operators of a [`Condition`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Exists,
}
