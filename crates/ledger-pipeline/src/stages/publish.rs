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
use ledger_core::predicate::{Outcome, Runner};
use ledger_core::{ArtifactKind, GitSha, Stage, Subject};
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

/// Runs `publish` for `sha` from its verified build evidence.
pub async fn run_publish(
    rec: &Recorder<'_>,
    passed: Passed,
    sha: GitSha,
    runner: &Runner,
) -> Result<Recorded, Error> {
    let gate = passed.expect(Stage::Publish, &sha)?;
    let Some(build) = gate.artifacts.get(&Stage::Build) else {
        return Err(Error::Refused(
            "the policy's gate for publish does not require build evidence, so there is nothing to publish; add a build requirement to /stages/publish".into(),
        ));
    };
    let draft = Draft::new(rec, Stage::Publish, sha, runner, gate.inputs.clone());
    let mut images = Map::new();
    let mut subjects = vec![Subject::git(&sha)];
    let built = build.predicate()["images"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for image in &built {
        let name = image["name"].as_str().unwrap_or_default();
        let (reference, digest, engine_local) = match image["repo_digest"].as_str() {
            Some(rd) => {
                let digest = rd.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
                (rd.to_owned(), digest.to_owned(), false)
            }
            None => {
                let id = image["image_id"].as_str().unwrap_or_default();
                (id.to_owned(), id.to_owned(), true)
            }
        };
        subjects.push(Subject::image(name, &digest));
        images.insert(
            name.to_owned(),
            json!({ "ref": reference, "digest": digest, "engine_local": engine_local }),
        );
    }
    let registry = build
        .predicate()
        .get("registry")
        .cloned()
        .unwrap_or(Value::Null);
    let finished = OffsetDateTime::now_utc();
    let count = images.len();
    let fields = json!({ "images": images, "registry": registry });
    let (r, _) = rec
        .write_next(ArtifactKind::Manifest, &sha, subjects, |attempt| {
            draft.finish(attempt, finished, Outcome::Pass, fields.clone())
        })
        .await?;
    Ok(Recorded {
        r,
        result: Outcome::Pass,
        summary: format!("manifest of {count} image(s)"),
    })
}
