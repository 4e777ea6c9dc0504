//! The standard statements `build` and `decide` write beside their own evidence
//! (`ledger_core::attestation`): what goes into them, and attaching them to the
//! images in their registry, where admission checks and `cosign` look for them.
//!
//! Attaching happens after the evidence is recorded and does not change the stage's
//! result: the store stays the record, and an image that carries no attestation is
//! refused by any check that requires one (`ledger verify --image`), so a failed
//! attach fails closed where it matters. It is reported (a progress line for
//! `build`, the outcome of `decide`) so the release engineer sees it.

use crate::error::Error;
use crate::record::{Companion, Draft, Written};
use ledger_core::attestation::PROVENANCE_PREDICATE_TYPE;
use ledger_core::predicate::{
    provenance_subjects, BuildDefinition, BuildMetadata, Builder, BuiltImage, ExternalParameters,
    ImageParameters, Input, InternalParameters, ManifestPredicate, ProvenancePredicate,
    ResourceDescriptor, RunDetails, VerificationResult, Verifier, VsaPredicate, BUILD_LEVEL,
    BUILD_TYPE, VERIFIER_ID,
};
use ledger_core::{Attestation, GitSha, Sha256Digest, Subject, LEDGER_VERSION};
use ledger_docker::{DigestRef, Registry};
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// `git+<source>@<sha>`: the commit as a SLSA resource URI.
pub fn commit_uri(source: &str, sha: &GitSha) -> String {
    format!("git+{source}@{sha}")
}

fn versions() -> BTreeMap<String, String> {
    BTreeMap::from([("ledger".to_owned(), LEDGER_VERSION.to_owned())])
}

/// What `build` knows about one build, for its provenance.
#[derive(Debug)]
pub struct BuildFacts<'a> {
    pub draft: &'a Draft,
    pub finished: OffsetDateTime,
    pub source: &'a str,
    pub registry: Option<&'a str>,
    /// Per image: its parameters and the SHA-256 of its exported context.
    pub images: Vec<(ImageParameters, Sha256Digest)>,
}

/// The SLSA Provenance of a passing build of `built`.
pub fn provenance(facts: &BuildFacts<'_>, built: &[BuiltImage]) -> Result<Companion, Error> {
    let draft = facts.draft;
    let runner = &draft.runner;
    let mut dependencies = vec![ResourceDescriptor::uri(
        commit_uri(facts.source, &draft.sha),
        "gitCommit",
        draft.sha.to_string(),
    )];
    dependencies.extend(facts.images.iter().map(|(p, digest)| ResourceDescriptor {
        name: Some(format!("{}.context", p.name)),
        uri: None,
        digest: BTreeMap::from([("sha256".to_owned(), digest.to_hex())]),
    }));
    let predicate = ProvenancePredicate {
        build_definition: BuildDefinition {
            build_type: BUILD_TYPE.to_owned(),
            external_parameters: ExternalParameters {
                source: facts.source.to_owned(),
                revision: draft.sha,
                images: facts.images.iter().map(|(p, _)| p.clone()).collect(),
            },
            internal_parameters: InternalParameters {
                ledger_version: LEDGER_VERSION.to_owned(),
                policy_sha256: draft.policy_sha256,
                registry: facts.registry.map(str::to_owned),
            },
            resolved_dependencies: dependencies,
        },
        run_details: RunDetails {
            builder: Builder {
                id: format!("https://ledger.dev/builder/{}", runner.ci_provider),
                version: versions(),
            },
            metadata: BuildMetadata {
                invocation_id: runner
                    .run_url
                    .clone()
                    .or_else(|| runner.run_id.clone())
                    .unwrap_or_else(|| runner.host.clone()),
                started_on: draft.started_at,
                finished_on: facts.finished,
            },
        },
    };
    Companion::new(
        Attestation::Provenance,
        provenance_subjects(built),
        &predicate,
    )
}

/// The release a VSA is about: the manifest's images, the source they were built
/// from, and the build's provenance (if it wrote one).
#[derive(Debug)]
pub struct Release {
    pub subjects: Vec<Subject>,
    /// The registry references of the images (engine-local ones have none).
    pub pushed: Vec<String>,
    pub resource_uri: String,
    pub provenance: Option<Input>,
}

impl Release {
    /// The release of a verified manifest and the build's source URL and provenance.
    pub fn new(
        sha: &GitSha,
        manifest: &ManifestPredicate,
        source: &str,
        provenance: Option<Input>,
    ) -> Release {
        let mut subjects = Vec::new();
        let mut pushed = Vec::new();
        for (name, image) in &manifest.images {
            let repo = match image.reference.split_once('@') {
                Some((repo, _)) if !image.engine_local => {
                    pushed.push(image.reference.clone());
                    repo
                }
                _ => name.as_str(),
            };
            subjects.push(Subject::image(repo, &image.digest));
        }
        Release {
            subjects,
            pushed,
            resource_uri: commit_uri(source, sha),
            provenance,
        }
    }
}

/// The VSA of a decision over `release` that rested on `inputs`.
pub fn vsa(
    release: &Release,
    inputs: &[Input],
    policy: &Sha256Digest,
    verified_at: OffsetDateTime,
    passed: bool,
) -> Result<Companion, Error> {
    let descriptor =
        |i: &Input| ResourceDescriptor::uri(i.key.clone(), "sha256", i.sha256.to_hex());
    let (result, level) = if passed {
        (VerificationResult::Passed, BUILD_LEVEL)
    } else {
        (VerificationResult::Failed, "FAILED")
    };
    let predicate = VsaPredicate {
        verifier: Verifier {
            id: VERIFIER_ID.to_owned(),
            version: versions(),
        },
        time_verified: verified_at,
        resource_uri: release.resource_uri.clone(),
        policy: ResourceDescriptor::uri(
            format!("policies/{}.json", policy.to_hex()),
            "sha256",
            policy.to_hex(),
        ),
        input_attestations: inputs
            .iter()
            .chain(release.provenance.as_ref())
            .map(descriptor)
            .collect(),
        verification_result: result,
        verified_levels: vec![level.to_owned()],
        slsa_version: "1.0".to_owned(),
    };
    Companion::new(Attestation::Vsa, release.subjects.clone(), &predicate)
}

/// What attaching did: the images that carry the statements now, and one line per
/// image it failed for.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Attachment {
    pub attached: Vec<String>,
    pub failed: Vec<String>,
}

/// Attaches `envelopes` (bytes and predicate type) to each image of `references`
/// (`host/name@sha256:…`) in its registry.
pub async fn attach(references: &[String], envelopes: &[(&[u8], &str)]) -> Attachment {
    let registry = Registry::new();
    let attestations: Vec<ledger_docker::Attestation<'_>> = envelopes
        .iter()
        .map(|(envelope, predicate_type)| ledger_docker::Attestation {
            envelope,
            predicate_type,
        })
        .collect();
    let mut out = Attachment::default();
    for reference in references {
        let Some(image) = DigestRef::parse(reference) else {
            out.failed
                .push(format!("{reference}: not a registry reference by digest"));
            continue;
        };
        match registry.attach(&image, &attestations).await {
            Ok(_) => out.attached.push(reference.clone()),
            Err(e) => out.failed.push(format!("{reference}: {e}")),
        }
    }
    out
}

/// Attaches a build's provenance to every image it pushed, saying on `progress`
/// where it went and where it could not.
pub async fn attach_provenance(
    sha: &GitSha,
    images: &[BuiltImage],
    written: &Written,
    progress: &(dyn Fn(&str) + Sync),
) {
    let pushed: Vec<String> = images
        .iter()
        .filter_map(|i| i.repo_digest.clone())
        .collect();
    let envelopes = [(written.bytes.as_slice(), PROVENANCE_PREDICATE_TYPE)];
    let attachment = attach(&pushed, &envelopes).await;
    for image in &attachment.attached {
        progress(&format!("provenance attached to {image}"));
    }
    for problem in &attachment.failed {
        progress(&format!(
            "warning: provenance NOT attached to {problem} (the evidence is recorded; attach it again with `ledger attest {sha}`)"
        ));
    }
}

/// A companion's bytes from the store, held to the link its artifact records (the
/// artifact was verified a moment ago; the object must not have changed since).
pub async fn read_linked(store: &ledger_store::Store, link: &Input) -> Result<Vec<u8>, Error> {
    let key = ledger_store::ObjectKey::parse(&link.key).map_err(ledger_store::StoreError::from)?;
    match store.get(&key).await? {
        Some(b) if Sha256Digest::of(&b) == link.sha256 => Ok(b.to_vec()),
        _ => Err(Error::EvidenceInvalid {
            key: link.key.clone(),
            problems: vec!["changed or removed since it was verified a moment ago".to_owned()],
        }),
    }
}
