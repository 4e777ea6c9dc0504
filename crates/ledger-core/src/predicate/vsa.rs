//! SLSA Verification Summary Attestation v1 as `decide` writes it
//! (`slsa-vsa.v1.schema.json`): that `ledger` verified the release's whole chain
//! against the policy, and what it concluded, for admission checks that read VSAs.
//!
//! `verifiedLevels` is `SLSA_BUILD_LEVEL_1` for a promotion and `FAILED` for a
//! rejection; docs/security.md says why Build L1 is the level claimed.

use super::provenance::ResourceDescriptor;
use super::Predicate;
use crate::attestation::Attestation;
use crate::schema::Document;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// The verifier id of every VSA `ledger` writes.
pub const VERIFIER_ID: &str = "https://ledger.dev/verifier/v1";

/// The SLSA level a promotion supports (docs/security.md).
pub const BUILD_LEVEL: &str = "SLSA_BUILD_LEVEL_1";

/// The predicate of a SLSA VSA v1 statement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VsaPredicate {
    pub verifier: Verifier,
    #[serde(with = "time::serde::rfc3339")]
    pub time_verified: OffsetDateTime,
    /// `git+<source>@<sha>`: the release verified.
    pub resource_uri: String,
    /// The stored policy (`policies/<sha256>.json`) and its digest.
    pub policy: ResourceDescriptor,
    /// The evidence the decision rests on (key and envelope SHA-256), then the build's
    /// provenance.
    pub input_attestations: Vec<ResourceDescriptor>,
    pub verification_result: VerificationResult,
    /// [`BUILD_LEVEL`] when passed, `FAILED` otherwise.
    pub verified_levels: Vec<String>,
    /// `1.0`.
    pub slsa_version: String,
}

/// Who verified: [`VERIFIER_ID`] and the `ledger` version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verifier {
    pub id: String,
    pub version: BTreeMap<String, String>,
}

/// The verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VerificationResult {
    Passed,
    Failed,
}

impl VerificationResult {
    /// `PASSED` or `FAILED`.
    pub fn as_str(self) -> &'static str {
        match self {
            VerificationResult::Passed => "PASSED",
            VerificationResult::Failed => "FAILED",
        }
    }
}

impl Predicate for VsaPredicate {
    const DOCUMENTS: &'static [Document] = &[Document::Attestation(Attestation::Vsa)];
}
