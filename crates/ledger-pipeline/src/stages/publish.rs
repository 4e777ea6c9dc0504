//! The `publish` stage: the release-candidate manifest, image name → immutable digest.
//!
//! Everything after this stage deploys from the manifest only, never from tags: with a
//! registry each entry is `repo@sha256:<manifest digest>`, which any engine can pull;
//! without one it is the engine's content-addressed image id, marked `engine_local`
//! because it is valid on that engine only. Each digest is also a Statement subject.

use crate::error::Error;
use crate::record::Recorded;
use crate::record::{Draft, Recorder};
use crate::run::Passed;
use ledger_core::predicate::{
    BuildPredicate, BuiltImage, ManifestPredicate, Outcome, PinnedImage, Runner,
};
use ledger_core::{ArtifactKind, GitSha, Stage, Subject};
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// Runs `publish` for `sha` from its verified build evidence.
#[tracing::instrument(level = "debug", skip_all, fields(stage = "publish", %sha))]
pub async fn run_publish(
    rec: &Recorder<'_>,
    passed: Passed,
    sha: GitSha,
    runner: &Runner,
) -> Result<Recorded, Error> {
    let build = passed
        .relied_on(Stage::Build, "there is nothing to publish")?
        .predicate_as::<BuildPredicate>()?
        .clone();
    let gate = passed.expect(Stage::Publish, &sha)?;
    let draft = Draft::new(rec, Stage::Publish, sha, runner, gate.inputs.clone());
    let mut images = BTreeMap::new();
    let mut subjects = vec![Subject::git(&sha)];
    for image in &build.images {
        let pinned = pin(image);
        subjects.push(Subject::image(&image.name, &pinned.digest));
        images.insert(image.name.clone(), pinned);
    }
    let finished = OffsetDateTime::now_utc();
    let count = images.len();
    let (r, _) = rec
        .write_next(ArtifactKind::Manifest, &sha, subjects, |attempt| {
            ManifestPredicate {
                header: draft.header(attempt, finished, Outcome::Pass),
                images: images.clone(),
                registry: build.registry.clone(),
            }
        })
        .await?;
    Ok(Recorded {
        r,
        result: Outcome::Pass,
        summary: format!("manifest of {count} image(s)"),
    })
}

/// The manifest entry of a built image: its registry digest reference when pushed,
/// else the engine's image id (valid on that engine only).
fn pin(image: &BuiltImage) -> PinnedImage {
    match &image.repo_digest {
        Some(rd) => PinnedImage {
            reference: rd.clone(),
            digest: rd
                .rsplit_once('@')
                .map(|(_, d)| d)
                .unwrap_or_default()
                .to_owned(),
            engine_local: false,
        },
        None => PinnedImage {
            reference: image.image_id.clone(),
            digest: image.image_id.clone(),
            engine_local: true,
        },
    }
}
