//! The predicate of the `publish` stage (`manifest.v1.schema.json`): the
//! release-candidate manifest, each image name pinned to an immutable reference.

use super::header::Header;
use super::Predicate;
use crate::schema::Document;
use crate::stage::ArtifactKind;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What `publish` records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestPredicate {
    /// The shared fields; `stage` is `publish`.
    #[serde(flatten)]
    pub header: Header,
    /// Image name → its pinned reference (at least one).
    pub images: BTreeMap<String, PinnedImage>,
    /// The registry the images are in; `None` (`null`) for engine-local images.
    pub registry: Option<String>,
}

/// One image of the manifest: what `deploy` runs, by digest only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinnedImage {
    /// `<repo>@sha256:<hex>`, or the bare `sha256:<hex>` image id when engine-local.
    #[serde(rename = "ref")]
    pub reference: String,
    /// `sha256:<hex>`.
    pub digest: String,
    /// Whether the image exists only in the engine that built it.
    pub engine_local: bool,
}

impl Predicate for ManifestPredicate {
    const DOCUMENTS: &'static [Document] = &[Document::Predicate(ArtifactKind::Manifest)];
}
