//! The record of a `ledger prune --apply` run (`prune.v1.schema.json`): which images
//! of never-promoted SHAs were deleted, from where, and what the protection invariant
//! kept. Not a stage predicate: it has no header, only the runner and policy parts.

use super::header::Runner;
use super::{present, Predicate};
use crate::digest::Sha256Digest;
use crate::schema::Document;
use crate::sha::GitSha;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// What `ledger prune --apply` records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrunePredicate {
    /// When the prune ran.
    #[serde(with = "time::serde::rfc3339")]
    pub pruned_at: OffsetDateTime,
    /// Where it ran.
    pub runner: Runner,
    /// SHA-256 of the policy in force.
    pub policy_sha256: Sha256Digest,
    /// The version of `ledger` that pruned.
    pub ledger_version: String,
    /// The most candidates a run may delete without `--force` (at least 1).
    pub threshold: u64,
    /// Whether `--force` lifted the threshold.
    pub forced: bool,
    /// Only SHAs older than this many days were candidates.
    pub min_age_days: u64,
    /// How many digests the protection invariant kept (promoted or running).
    pub protected: u64,
    /// Every deletion tried.
    pub deleted: Vec<Deleted>,
}

/// One image copy whose deletion was tried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deleted {
    /// The commit the image was built from.
    pub sha: GitSha,
    /// The image's name in `ledger.toml`.
    pub image: String,
    /// Where the copy was.
    #[serde(rename = "where")]
    pub place: Place,
    /// The reference deleted.
    #[serde(rename = "ref")]
    pub reference: String,
    /// `sha256:<hex>`.
    pub digest: String,
    /// For an engine copy: the engine it was on (absent in records written before
    /// environments had engines of their own, and for registry copies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    /// Bytes: `Some(Some(n))` when known, `Some(None)` (`null`) when the engine did not
    /// say, `None` (absent) when not recorded.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub size: Option<Option<u64>>,
    /// Whether the deletion succeeded.
    pub ok: bool,
    /// Why it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Where an image copy lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Place {
    /// The local container engine.
    Engine,
    /// The registry.
    Registry,
}

impl Predicate for PrunePredicate {
    const DOCUMENTS: &'static [Document] = &[Document::Prune];
}
