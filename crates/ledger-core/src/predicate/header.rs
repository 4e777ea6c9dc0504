//! The fields every stage predicate shares (`common.v1.schema.json#/$defs/header`).
//!
//! Gates, reports and the history read only these fields of any predicate, so they
//! have their own type that every stage's predicate flattens into itself.

use crate::digest::Sha256Digest;
use crate::sha::GitSha;
use crate::stage::Stage;
use crate::tlog::LogHead;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The outcome of a stage's own work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
}

impl Outcome {
    /// `pass` or `fail`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
        }
    }
}

/// Where a stage ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Runner {
    pub host: String,
    /// `github-actions`, `gitlab-ci` or `local`.
    pub ci_provider: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_url: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
}

/// A hash link: an envelope the stage's gate consumed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Input {
    pub key: String,
    pub sha256: Sha256Digest,
}

/// The fields every predicate carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub stage: Stage,
    pub sha: GitSha,
    pub attempt: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub finished_at: OffsetDateTime,
    pub result: Outcome,
    pub runner: Runner,
    pub inputs: Vec<Input>,
    pub policy_sha256: Sha256Digest,
    pub ledger_version: String,
    /// The store's log as the gate read it (absent: the log was empty, or the
    /// evidence predates the field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_head: Option<LogHead>,
}

impl Header {
    /// Reads the shared fields out of a (schema-valid) predicate.
    pub fn from_predicate(predicate: &serde_json::Value) -> Result<Header, serde_json::Error> {
        Header::deserialize(predicate)
    }

    /// Wall time of the stage's own work, in milliseconds (0 if the clock went back).
    pub fn duration_ms(&self) -> u64 {
        let d = self.finished_at - self.started_at;
        u64::try_from(d.whole_milliseconds()).unwrap_or(0)
    }
}
