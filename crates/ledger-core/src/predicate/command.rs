//! The predicate of the wrapped-command stages, `commit` and `integration`
//! (`commit.v1.schema.json`, `integration.v1.schema.json`).

use super::header::Header;
use super::source::Source;
use super::Predicate;
use crate::digest::Sha256Digest;
use crate::schema::Document;
use crate::stage::ArtifactKind;
use serde::{Deserialize, Serialize};

/// The wrapped command of a `commit` or `integration` stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    pub argv: Vec<String>,
    /// `None` when the process was ended by a signal.
    pub exit_code: Option<i32>,
    pub duration_ms: u64,
    /// Whether the command ran where the signing key cannot be reached. Absent in
    /// evidence recorded before `ledger` isolated commands (it still verifies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<Isolation>,
}

/// How a wrapped command was kept away from the signing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    /// Its own user, mount and PID namespaces: no ancestor process visible, the key
    /// files masked (docs/security.md).
    Namespaces,
    /// It ran as a plain child of `ledger`: unavailable here, or `--no-isolation`.
    None,
}

/// The captured output of a wrapped command, stored as its own object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Output {
    pub key: String,
    /// The SHA-256 of the stored log.
    pub sha256: Sha256Digest,
    /// The stored log's length.
    pub bytes: u64,
    pub redacted: Vec<String>,
    /// The output was larger than ledger keeps: the stored log is its head, a marker
    /// line and its tail. Absent (false) when the log is the whole output.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// How many bytes the command printed in all; recorded when `truncated`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_bytes: Option<u64>,
}

/// Test counts recognised in a wrapped command's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestCounts {
    pub passed: u64,
    pub failed: u64,
    pub ignored: u64,
}

/// The predicate of `commit` and `integration`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandPredicate {
    #[serde(flatten)]
    pub header: Header,
    pub command: Command,
    pub output: Output,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests: Option<TestCounts>,
    /// Where the code that ran came from; absent only in evidence written before
    /// ledger recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
}

impl Predicate for CommandPredicate {
    const DOCUMENTS: &'static [Document] = &[
        Document::Predicate(ArtifactKind::Commit),
        Document::Predicate(ArtifactKind::Integration),
    ];
}
