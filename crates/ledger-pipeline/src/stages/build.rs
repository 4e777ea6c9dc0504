//! The `build` stage: every configured image built once for the SHA, labelled, pushed.
//!
//! "Once" is enforced: if passing build evidence exists for the SHA, the stage is
//! denied and points at replay, because a rebuild of the same source yields new
//! digests (timestamps) and would silently replace what was tested. Images carry the
//! OCI labels `revision` (the SHA, checked again at deploy), `created` and `source`.
//!
//! Each build context is exported from the commit's own git objects before anything
//! is built ([`crate::source`]): files that are not committed cannot reach an image
//! labelled with the SHA, and the predicate's `source` says so (`exported`).
//!
//! A passing build also writes SLSA Provenance beside its evidence ([`slsa`]) and,
//! with a registry, attaches it to every image pushed.

use crate::config::{Config, ImageConfig};
use crate::error::Error;
use crate::record::Recorded;
use crate::record::{Draft, Recorder};
use crate::run::Passed;
use crate::stages::slsa::{self, BuildFacts};
use ledger_core::predicate::{
    BuildFailure, BuildPredicate, BuiltImage, ImageLabels, ImageParameters, Outcome, Runner, Source,
};
use ledger_core::{ArtifactKind, GitSha, Sha256Digest, Stage, Subject};
use ledger_docker::labels::REVISION as REVISION_LABEL;
use ledger_docker::{BuildSpec, DockerError, Engine};
use std::collections::BTreeMap;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Runs `build` for `sha` from its `exported` contexts ([`export_contexts`]) and the
/// `source` [`crate::source::check`] found them in; `progress` gets build and push
/// output lines.
#[tracing::instrument(level = "debug", skip_all, fields(stage = "build", %sha))]
#[allow(
    clippy::too_many_arguments,
    reason = "the stage's inputs, each of its own kind; a struct would only rename them"
)]
pub async fn run_build(
    rec: &Recorder<'_>,
    engine: &Engine,
    config: &Config,
    sha: GitSha,
    runner: &Runner,
    passed: Passed,
    source: Option<Source>,
    exported: Exported,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Recorded, Error> {
    let gate = passed.expect(Stage::Build, &sha)?;
    let draft = Draft::new(rec, Stage::Build, sha, runner, gate.inputs);
    let Exported { contexts } = exported;
    let context_digests: Vec<Sha256Digest> = contexts.iter().map(|c| Sha256Digest::of(c)).collect();
    let created = draft.started_at.format(&Rfc3339).unwrap_or_default();
    let labels = ImageLabels {
        revision: sha,
        created,
        source: config.source.clone(),
        other: BTreeMap::new(),
    };
    let mut images = Vec::new();
    let mut subjects = vec![Subject::git(&sha)];
    let mut failure = None;
    for (image, context) in config.images.iter().zip(contexts) {
        match build_one(engine, config, image, context, &labels, progress).await? {
            Ok(built) => {
                subjects.push(Subject::image(&image.name, &built.image_id));
                images.push(built);
            }
            Err(f) => {
                failure = Some(f);
                break;
            }
        }
    }
    let result = if failure.is_some() {
        Outcome::Fail
    } else {
        Outcome::Pass
    };
    let finished = OffsetDateTime::now_utc();
    let count = images.len();
    let predicate = |attempt, attestation| BuildPredicate {
        header: draft.header(attempt, finished, result),
        images: images.clone(),
        registry: config.registry.clone(),
        failure: failure.clone(),
        source: source.clone(),
        attestation,
    };
    let companion = if result == Outcome::Pass {
        provenance(config, &draft, finished, &context_digests, &images)?
    } else {
        None
    };
    let (r, _, written) = rec
        .write_next_with(ArtifactKind::Build, &sha, subjects, companion, predicate)
        .await?;
    match (written, &config.registry) {
        (Some(written), Some(_)) => {
            slsa::attach_provenance(&sha, &images, &written, progress).await
        }
        (Some(_), None) => {
            progress("no registry: the provenance is in the store only, attached to no image")
        }
        (None, _) => {}
    }
    // A failed build says why here too, not only in its evidence.
    let summary = match &failure {
        Some(f) => format!("{count} image(s) built; {} failed: {}", f.image, f.message),
        None => format!("{count} image(s) built"),
    };
    Ok(Recorded { r, result, summary })
}

/// The provenance of a passing build of `images`; `None` when it built none.
/// Provenance describes what a build made: a failed one made nothing to attest.
fn provenance(
    config: &Config,
    draft: &Draft,
    finished: OffsetDateTime,
    context_digests: &[Sha256Digest],
    images: &[BuiltImage],
) -> Result<Option<crate::record::Companion>, Error> {
    if images.is_empty() {
        return Ok(None);
    }
    let facts = BuildFacts {
        draft,
        finished,
        source: &config.source,
        registry: config.registry.as_deref(),
        images: parameters(config, &draft.sha, context_digests),
    };
    slsa::provenance(&facts, images).map(Some)
}

/// The provenance's parameters of every image, with its exported context's digest.
fn parameters(
    config: &Config,
    sha: &GitSha,
    digests: &[Sha256Digest],
) -> Vec<(ImageParameters, Sha256Digest)> {
    config
        .images
        .iter()
        .zip(digests)
        .map(|(image, digest)| {
            let parameters = ImageParameters {
                name: image.name.clone(),
                context: image.context.clone(),
                dockerfile: image.dockerfile.clone(),
                tag: format!("{}:{sha}", config.image_repo(&image.name)),
            };
            (parameters, *digest)
        })
        .collect()
}

/// Every image's build context as exported from the commit.
#[derive(Debug)]
pub struct Exported {
    /// Normalised tar archives, in the order of the configured images.
    contexts: Vec<Vec<u8>>,
}

/// Exports every image's build context from commit `sha` of the repository at
/// `config.root` (git objects only; blocking: a `git archive` per image). It writes
/// nothing and does not find the working tree itself: `ledger stage build` runs it
/// while [`crate::source::check`] finds the tree and the gate runs, and builds from
/// it only once both have passed, recording the `Source` that check returned. A
/// context missing from the commit stops the stage before the engine is used.
#[tracing::instrument(level = "debug", skip_all, fields(%sha))]
pub fn export_contexts(config: &Config, sha: &GitSha) -> Result<Exported, Error> {
    let mut contexts = Vec::new();
    for image in &config.images {
        let archive = crate::source::export(&config.root, sha, &image.context)?;
        let name = format!("{sha}:{}", image.context);
        contexts.push(ledger_docker::normalize_tar(&archive, &name)?);
    }
    tracing::debug!(contexts = contexts.len(), "exported");
    Ok(Exported { contexts })
}

/// Builds (and, with a registry, pushes) one image from its exported `context`.
/// `Ok(Err(_))` is the image's own build failing, which is recorded; `Err` stops
/// the stage.
async fn build_one(
    engine: &Engine,
    config: &Config,
    image: &ImageConfig,
    context: Vec<u8>,
    labels: &ImageLabels,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Result<BuiltImage, BuildFailure>, Error> {
    let repo = config.image_repo(&image.name);
    let sha = &labels.revision;
    let spec = BuildSpec {
        context: context.into(),
        context_name: format!("{sha}:{}", image.context),
        dockerfile: image.dockerfile.clone(),
        tag: format!("{repo}:{sha}"),
        labels: BTreeMap::from([
            (REVISION_LABEL.to_owned(), labels.revision.to_string()),
            (
                "org.opencontainers.image.created".to_owned(),
                labels.created.clone(),
            ),
            (
                "org.opencontainers.image.source".to_owned(),
                labels.source.clone(),
            ),
        ]),
    };
    let clock = std::time::Instant::now();
    progress(&format!("building {} from {}", spec.tag, spec.context_name));
    let built = match engine
        .build(&spec, |l| progress(&format!("  {}: {l}", image.name)))
        .await
    {
        Ok(b) => b,
        Err(e) if e.is_work_failure() => {
            return Ok(Err(BuildFailure {
                image: image.name.clone(),
                message: e.to_string(),
            }))
        }
        Err(e) => return Err(e.into()),
    };
    let repo_digest = match &config.registry {
        Some(_) => {
            progress(&format!("pushing {}", spec.tag));
            Some(engine.push(&repo, sha.as_str(), |_| {}).await?)
        }
        None => None,
    };
    Ok(Ok(BuiltImage {
        name: image.name.clone(),
        reference: spec.tag,
        image_id: built.image_id,
        repo_digest,
        labels: labels.clone(),
        duration_ms: u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX),
    }))
}

/// Whether a Docker error means the image is gone (pruned or registry down).
pub fn is_missing(e: &DockerError) -> bool {
    matches!(e, DockerError::Missing { .. })
}
