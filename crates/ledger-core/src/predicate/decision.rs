//! The decision predicate of the `decide` stage (`decision.v1.schema.json`): the
//! release decision over the whole chain, with a reason for every failed rule.

use super::header::{Header, Input};
use super::{present, Predicate};
use crate::schema::Document;
use crate::sha::GitSha;
use crate::stage::ArtifactKind;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What `decide` records as its decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionPredicate {
    /// The shared fields; `stage` is `decide`.
    #[serde(flatten)]
    pub header: Header,
    /// Promote or reject.
    pub decision: Decision,
    /// Every failed rule (empty for `promote`).
    pub reasons: Vec<Reason>,
    /// Set (`true`) when this run is part of `ledger replay` or `ledger rollback`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<bool>,
    /// For a rollback only: `Some(Some(sha))` the SHA running when it began,
    /// `Some(None)` (`null`) when nothing ran; `None` (absent) otherwise.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub rollback_from: Option<Option<GitSha>>,
    /// For a replay or rollback: the manifest run again (key and envelope SHA-256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<Input>,
    /// The SLSA VSA written beside this decision (its key and envelope SHA-256);
    /// absent when no release-candidate manifest named images to be its subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation: Option<Input>,
}

/// The release decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Every release rule held.
    Promote,
    /// At least one did not.
    Reject,
}

/// Why a rule failed, as recorded (the shape of `ledger_policy::Reason`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    /// JSON pointer of the rule in the policy file.
    pub rule: String,
    /// What is wrong, for a person.
    pub message: String,
    /// The artifact key the rule looked at, if one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<String>,
    /// What was found (any JSON; a recorded `null` stays `Some(Value::Null)`).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub found: Option<Value>,
    /// What the rule required (any JSON; a recorded `null` stays `Some(Value::Null)`).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub required: Option<Value>,
}

impl Decision {
    /// `promote` or `reject`, as recorded.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Promote => "promote",
            Decision::Reject => "reject",
        }
    }
}

impl DecisionPredicate {
    /// Whether the decision is `promote`.
    pub fn promotes(&self) -> bool {
        self.decision == Decision::Promote
    }

    /// Whether this decision was made by `ledger replay` or `ledger rollback`.
    pub fn is_replay(&self) -> bool {
        self.replay == Some(true)
    }
}

impl Predicate for DecisionPredicate {
    const DOCUMENTS: &'static [Document] = &[Document::Predicate(ArtifactKind::Decision)];
}
