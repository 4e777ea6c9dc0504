//! The `build` stage: every configured image built once for the SHA, labelled, pushed.
//!
//! "Once" is enforced: if passing build evidence exists for the SHA, the stage is
//! denied and points at replay, because a rebuild of the same source yields new
//! digests (timestamps) and would silently replace what was tested. Images carry the
//! OCI labels `revision` (the SHA, checked again at deploy), `created` and `source`.

use crate::config::Config;
use crate::error::Error;
use crate::record::Recorded;
use crate::record::{Draft, Recorder};
use crate::run::Passed;
use ledger_core::predicate::{Outcome, Runner};
use ledger_core::{ArtifactKind, GitSha, Stage, Subject};
use ledger_docker::labels::REVISION as REVISION_LABEL;
use ledger_docker::{BuildSpec, DockerError, Engine};
use serde_json::json;
use std::collections::BTreeMap;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Runs `build` for `sha`; `progress` gets build and push output lines.
pub async fn run_build(
    rec: &Recorder<'_>,
    engine: &Engine,
    config: &Config,
    sha: GitSha,
    runner: &Runner,
    passed: Passed,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Recorded, Error> {
    let gate = passed.expect(Stage::Build, &sha)?;
    let draft = Draft::new(rec, Stage::Build, sha, runner, gate.inputs);
    let created = draft.started_at.format(&Rfc3339).unwrap_or_default();

    let mut images = Vec::new();
    let mut subjects = vec![Subject::git(&sha)];
    let mut failure = None;
    for image in &config.images {
        let repo = config.image_repo(&image.name);
        let labels = BTreeMap::from([
            (REVISION_LABEL.to_owned(), sha.to_string()),
            (
                "org.opencontainers.image.created".to_owned(),
                created.clone(),
            ),
            (
                "org.opencontainers.image.source".to_owned(),
                config.source.clone(),
            ),
        ]);
        let spec = BuildSpec {
            context_dir: config.context_dir(image),
            dockerfile: image.dockerfile.clone(),
            tag: format!("{repo}:{sha}"),
            labels: labels.clone(),
        };
        let clock = std::time::Instant::now();
        progress(&format!("building {} from {}", spec.tag, image.context));
        let built = match engine
            .build(&spec, |l| progress(&format!("  {}: {l}", image.name)))
            .await
        {
            Ok(b) => b,
            Err(e) if e.is_work_failure() => {
                failure = Some(json!({ "image": image.name, "message": e.to_string() }));
                break;
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
        subjects.push(Subject::image(&image.name, &built.image_id));
        images.push(json!({
            "name": image.name,
            "reference": spec.tag,
            "image_id": built.image_id,
            "repo_digest": repo_digest,
            "labels": labels,
            "duration_ms": u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX),
        }));
    }
    let result = if failure.is_some() {
        Outcome::Fail
    } else {
        Outcome::Pass
    };
    let mut fields = json!({ "images": images, "registry": config.registry });
    if let Some(f) = failure {
        fields["failure"] = f;
    }
    let finished = OffsetDateTime::now_utc();
    let (r, _) = rec
        .write_next(ArtifactKind::Build, &sha, subjects, |attempt| {
            draft.finish(attempt, finished, result, fields.clone())
        })
        .await?;
    Ok(Recorded {
        r,
        result,
        summary: format!("{} image(s) built", images.len()),
    })
}

/// Whether a Docker error means the image is gone (pruned or registry down).
pub fn is_missing(e: &DockerError) -> bool {
    matches!(e, DockerError::Missing { .. })
}
