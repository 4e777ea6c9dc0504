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
///
/// Each export is a `git archive` whose time is mostly zlib inflating the context's
/// blobs (11 ms for the demo's 1.4 MB context), so several images' contexts are
/// exported side by side, one thread each (the first on the calling thread); the
/// contexts keep the images' order, and the first image's error is the one
/// reported.
#[tracing::instrument(level = "debug", skip_all, fields(%sha))]
pub fn export_contexts(config: &Config, sha: &GitSha) -> Result<Exported, Error> {
    let export = |image: &ImageConfig| -> Result<Vec<u8>, Error> {
        let archive = crate::source::export(&config.root, sha, &image.context)?;
        let name = format!("{sha}:{}", image.context);
        Ok(ledger_docker::normalize_tar(&archive, &name)?)
    };
    let contexts = std::thread::scope(|scope| {
        let mut images = config.images.iter();
        let first = images.next();
        let others: Vec<_> = images
            .map(|image| scope.spawn(move || export(image)))
            .collect();
        let joined = others.into_iter().map(|t| {
            t.join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        });
        first
            .map(export)
            .into_iter()
            .chain(joined)
            .collect::<Result<Vec<_>, _>>()
    })?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::Command;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// Which of the two contexts' own files a tar archive holds (its headers name
    /// them).
    fn holds(archive: &[u8]) -> Vec<&'static str> {
        ["ctx-a.txt", "ctx-b.txt"]
            .into_iter()
            .filter(|name| archive.windows(name.len()).any(|w| w == name.as_bytes()))
            .collect()
    }

    /// A repository whose commit holds `ctx-a` and `ctx-b` (each a Dockerfile and a
    /// file of its own), with a config of `images` (name, context) in that order.
    fn repo(images: &[(&str, &str)]) -> (tempfile::TempDir, Config, GitSha) {
        let dir = tempfile::tempdir().unwrap();
        for ctx in ["ctx-a", "ctx-b"] {
            std::fs::create_dir(dir.path().join(ctx)).unwrap();
            std::fs::write(dir.path().join(ctx).join("Dockerfile"), "FROM scratch\n").unwrap();
            std::fs::write(dir.path().join(ctx).join(format!("{ctx}.txt")), ctx).unwrap();
        }
        git(dir.path(), &["init", "-q"]);
        git(dir.path(), &["add", "."]);
        git(dir.path(), &["commit", "-qm", "contexts"]);
        let sha = GitSha::parse(&git(dir.path(), &["rev-parse", "HEAD"])).unwrap();
        let mut toml = "repository = \"r\"\nsource = \"https://example.invalid/r\"\n".to_owned();
        for (name, context) in images {
            toml.push_str(&format!(
                "[[images]]\nname = \"{name}\"\ncontext = \"{context}\"\n"
            ));
        }
        toml.push_str(&format!(
            "[[environments]]\nname = \"canary\"\n[[environments.services]]\nimage = \"{}\"\n",
            images[0].0
        ));
        let config = Config::parse(&toml, dir.path(), "ledger.toml").unwrap();
        (dir, config, sha)
    }

    #[test]
    fn contexts_exported_side_by_side_keep_the_images_order() {
        let (_dir, config, sha) = repo(&[("b", "ctx-b"), ("a", "ctx-a"), ("a2", "ctx-a")]);
        let exported = export_contexts(&config, &sha).unwrap();
        let held: Vec<Vec<&str>> = exported.contexts.iter().map(|c| holds(c)).collect();
        assert_eq!(held, [["ctx-b.txt"], ["ctx-a.txt"], ["ctx-a.txt"]]);
    }

    #[test]
    fn the_first_missing_context_in_the_images_order_is_reported() {
        for (images, missing) in [
            (
                &[("a", "ctx-a"), ("x", "gone-1"), ("y", "gone-2")][..],
                "gone-1",
            ),
            (
                &[("x", "gone-2"), ("a", "ctx-a"), ("y", "gone-1")][..],
                "gone-2",
            ),
        ] {
            let (_dir, config, sha) = repo(images);
            let e = export_contexts(&config, &sha).unwrap_err().to_string();
            assert!(e.contains(missing), "{e}");
        }
    }
}
