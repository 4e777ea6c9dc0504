//! SLSA Provenance v1 as `build` writes it (`slsa-provenance.v1.schema.json`): how
//! the images of one build were made, for tools that know SLSA and not `ledger`.
//!
//! Field names are SLSA's (camelCase). The build type is `ledger`'s own
//! (`https://ledger.dev/build-type/docker/v1`): its external parameters are what a
//! person configured (the source, the commit, each image's context and Dockerfile),
//! its resolved dependencies what the build actually consumed (the commit, then each
//! exported build context by SHA-256).

use super::build::BuiltImage;
use super::Predicate;
use crate::attestation::Attestation;
use crate::digest::Sha256Digest;
use crate::schema::Document;
use crate::sha::GitSha;
use crate::statement::Subject;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// The `buildType` of every provenance `ledger` writes.
pub const BUILD_TYPE: &str = "https://ledger.dev/build-type/docker/v1";

/// The predicate of a SLSA Provenance v1 statement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvenancePredicate {
    pub build_definition: BuildDefinition,
    pub run_details: RunDetails,
}

/// What was built, from what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildDefinition {
    /// [`BUILD_TYPE`].
    pub build_type: String,
    pub external_parameters: ExternalParameters,
    pub internal_parameters: InternalParameters,
    /// The commit (`git+<source>@<sha>`, digest `gitCommit`) first, then each image's
    /// exported build context (`<image>.context`, digest `sha256`).
    pub resolved_dependencies: Vec<ResourceDescriptor>,
}

/// The parameters a person controls: `ledger.toml`'s source and images, and the commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalParameters {
    /// The configured source URL (`org.opencontainers.image.source`).
    pub source: String,
    /// The commit built.
    pub revision: GitSha,
    pub images: Vec<ImageParameters>,
}

/// One image's build parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageParameters {
    /// The image's name in `ledger.toml`.
    pub name: String,
    /// The context folder, relative to the repository.
    pub context: String,
    /// The Dockerfile, relative to the context.
    pub dockerfile: String,
    /// The tag it was built under, `<repo>:<sha>`.
    pub tag: String,
}

/// Parameters the platform set: the `ledger` version, the policy that gated the
/// build, the registry pushed to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InternalParameters {
    pub ledger_version: String,
    pub policy_sha256: Sha256Digest,
    /// Absent when the images stayed in the engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
}

/// An in-toto ResourceDescriptor: a name or URI and its digests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceDescriptor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Digests by algorithm (`sha256`, `gitCommit`).
    pub digest: BTreeMap<String, String>,
}

impl ResourceDescriptor {
    /// A descriptor of `uri` with one digest.
    pub fn uri(uri: impl Into<String>, algorithm: &str, digest: impl Into<String>) -> Self {
        ResourceDescriptor {
            name: None,
            uri: Some(uri.into()),
            digest: BTreeMap::from([(algorithm.to_owned(), digest.into())]),
        }
    }
}

/// Who ran the build, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunDetails {
    pub builder: Builder,
    pub metadata: BuildMetadata,
}

/// The build platform: `https://ledger.dev/builder/<ci provider>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Builder {
    pub id: String,
    /// Component versions (`ledger`).
    pub version: BTreeMap<String, String>,
}

/// The run: the CI run's URL or id (else the host), start and end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildMetadata {
    pub invocation_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started_on: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub finished_on: OffsetDateTime,
}

/// The subjects of the provenance of `images`: each pushed image's manifest digest
/// under its repository's name, else the engine's image id under the tag's
/// repository (the reference without its `:<sha>` tag). Writers and verifiers both
/// use this one mapping.
pub fn provenance_subjects(images: &[BuiltImage]) -> Vec<Subject> {
    images
        .iter()
        .map(
            |i| match i.repo_digest.as_deref().and_then(|d| d.split_once('@')) {
                Some((repo, digest)) => Subject::image(repo, digest),
                None => {
                    let tag = format!(":{}", i.labels.revision);
                    let repo = i.reference.strip_suffix(&tag).unwrap_or(&i.reference);
                    Subject::image(repo, &i.image_id)
                }
            },
        )
        .collect()
}

impl ProvenancePredicate {
    /// The commit the first resolved dependency names (`gitCommit`), if it names one.
    pub fn commit(&self) -> Option<&str> {
        self.build_definition
            .resolved_dependencies
            .first()?
            .digest
            .get("gitCommit")
            .map(String::as_str)
    }
}

impl Predicate for ProvenancePredicate {
    const DOCUMENTS: &'static [Document] = &[Document::Attestation(Attestation::Provenance)];
}
