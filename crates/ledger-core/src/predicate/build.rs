//! The predicate of the `build` stage (`build.v1.schema.json`): every image built
//! once for the commit, and the failure that stopped the build, if one did.

use super::header::{Header, Input};
use super::source::Source;
use super::Predicate;
use crate::schema::Document;
use crate::sha::GitSha;
use crate::stage::ArtifactKind;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What `build` records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildPredicate {
    /// The shared fields; `stage` is `build`.
    #[serde(flatten)]
    pub header: Header,
    /// The images built, in configuration order (on failure: those built before it).
    pub images: Vec<BuiltImage>,
    /// The registry pushed to; `None` (`null`) when images stayed in the engine.
    pub registry: Option<String>,
    /// Set when an image failed to build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<BuildFailure>,
    /// Where the built code came from (`exported`: the commit's own git objects);
    /// absent only in evidence written before ledger recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// The SLSA Provenance written beside this artifact (its key and envelope
    /// SHA-256); set on every passing build with images, absent before ledger wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation: Option<Input>,
}

/// One image built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuiltImage {
    /// The image's name in `ledger.toml`.
    pub name: String,
    /// The tag it was built under, `<repo>:<sha>`.
    pub reference: String,
    /// The engine's image id, `sha256:<hex>`.
    pub image_id: String,
    /// `<repo>@sha256:<hex>` once pushed; `None` (`null`) without a registry.
    pub repo_digest: Option<String>,
    /// The OCI labels set on the image.
    pub labels: ImageLabels,
    /// Wall time of building (and pushing) this image.
    pub duration_ms: u64,
}

/// The labels of a built image: the three OCI labels `ledger` always sets, and any
/// others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageLabels {
    /// `org.opencontainers.image.revision`: the commit built (checked before deploy).
    #[serde(rename = "org.opencontainers.image.revision")]
    pub revision: GitSha,
    /// `org.opencontainers.image.created`: when the build stage started (RFC 3339).
    #[serde(rename = "org.opencontainers.image.created")]
    pub created: String,
    /// `org.opencontainers.image.source`: the configured source URL.
    #[serde(rename = "org.opencontainers.image.source")]
    pub source: String,
    /// Any other label, by name.
    #[serde(flatten)]
    pub other: BTreeMap<String, String>,
}

/// The image whose build failed, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildFailure {
    /// The image's name in `ledger.toml`.
    pub image: String,
    /// The engine's error.
    pub message: String,
}

impl Predicate for BuildPredicate {
    const DOCUMENTS: &'static [Document] = &[Document::Predicate(ArtifactKind::Build)];
}
