//! Pre-flight checks of a deploy: everything that must hold before any container is
//! touched, and before the environment's lease is taken.
//!
//! The runner is approved for the environment and its contract met (replay and
//! promote run these first too, so a refusal happens before any evidence is read);
//! the manifest names digests only; every image is on the engine (pulled by digest
//! when needed) and carries the SHA as its revision label; every running container
//! of the environment carries a commit SHA label. None of these changes anything but
//! the engine's image cache.

use crate::config::Environment;
use crate::error::Error;
use ledger_core::predicate::{ManifestPredicate, Runner};
use ledger_core::GitSha;
use ledger_docker::labels::{REVISION as REVISION_LABEL, SHA as SHA_LABEL};
use ledger_docker::{ContainerInfo, Engine, ImageInfo};
use ledger_verify::evidence::Artifact;
use std::collections::BTreeMap;

/// One image of a manifest: its name, the reference to run (digest form only) and
/// the digest recorded for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestImage {
    pub name: String,
    pub reference: String,
    pub digest: String,
}

/// The manifest's entries, validated: digest references only.
pub fn manifest_images(manifest: &Artifact) -> Result<Vec<ManifestImage>, Error> {
    let images = &manifest.predicate_as::<ManifestPredicate>()?.images;
    let mut out = Vec::new();
    for (name, entry) in images {
        let reference = entry.reference.clone();
        let by_digest = reference.contains("@sha256:") || reference.starts_with("sha256:");
        if !by_digest {
            return Err(Error::ManifestByTag {
                manifest: manifest.r().key(),
                image: name.clone(),
                reference,
            });
        }
        out.push(ManifestImage {
            name: name.clone(),
            reference,
            digest: entry.digest.clone(),
        });
    }
    Ok(out)
}

/// Makes sure every image is on the engine, pulling by digest from the registry when
/// needed; returns what the engine knows of each. A missing image is exit 5 naming
/// the digest (pruned, or the registry is down).
pub async fn ensure_present(
    engine: &Engine,
    images: &[ManifestImage],
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Vec<ImageInfo>, Error> {
    let mut infos = Vec::new();
    for image in images {
        let reference = &image.reference;
        let mut info = engine.inspect_image(reference).await?;
        if info.is_none() && reference.contains('@') {
            progress(&format!("pulling {reference}"));
            engine.pull(reference).await?;
            info = engine.inspect_image(reference).await?;
        }
        let Some(info) = info else {
            return Err(ledger_docker::DockerError::Missing {
                reference: reference.clone(),
                message: "the engine does not have it and it has no registry to pull from".into(),
            }
            .into());
        };
        infos.push(info);
    }
    Ok(infos)
}

/// Refuses any image whose revision label is not `sha`: an image built from another
/// commit must never run under this commit's evidence.
pub fn check_revisions(
    sha: &GitSha,
    images: &[ManifestImage],
    infos: &[ImageInfo],
) -> Result<(), Error> {
    for (image, info) in images.iter().zip(infos) {
        match info.labels.get(REVISION_LABEL) {
            Some(rev) if rev == sha.as_str() => {}
            other => {
                return Err(Error::RevisionMismatch {
                    image: image.name.clone(),
                    reference: image.reference.clone(),
                    sha: *sha,
                    found: other.cloned(),
                })
            }
        }
    }
    Ok(())
}

/// The environment contract: every variable the environment requires and every
/// secret its services need is set (names only; values are never looked at beyond
/// "non-empty"). All missing names are reported at once.
pub fn check_contract(
    env_config: &Environment,
    env: &BTreeMap<String, String>,
) -> Result<(), Error> {
    let wanted = env_config
        .required_env
        .iter()
        .chain(env_config.services.iter().flat_map(|s| &s.secrets));
    let mut missing: Vec<String> = wanted
        .filter(|name| env.get(*name).is_none_or(|v| v.is_empty()))
        .cloned()
        .collect();
    missing.sort();
    missing.dedup();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::MissingVariable {
            environment: env_config.name.clone(),
            names: missing,
        })
    }
}

/// The policy's runner approval for `environment`: the runner's host or one of its
/// labels must be listed, when the policy lists any.
pub fn check_runner(
    policy: &ledger_policy::Policy,
    environment: &str,
    runner: &Runner,
) -> Result<(), Error> {
    let Some(approved) = policy.approved_runners(environment) else {
        return Ok(());
    };
    let ids = std::iter::once(&runner.host).chain(&runner.labels);
    if ids.clone().any(|id| approved.contains(id)) {
        return Ok(());
    }
    let mut shown = runner.host.clone();
    if !runner.labels.is_empty() {
        shown.push_str(&format!(" (labels {})", runner.labels.join(", ")));
    }
    Err(Error::RunnerNotApproved {
        runner: shown,
        environment: environment.to_owned(),
        approved: approved.to_vec(),
    })
}

/// The release the running containers of an environment carry, from their
/// `dev.ledger.sha` labels. Every label must be a commit SHA: anything else (a
/// container ledger did not start, or one whose label was altered) is refused before
/// anything is stopped, and the label is shown escaped and cut short, never sliced.
pub fn running_release(
    running: &[ContainerInfo],
    environment: &str,
) -> Result<Option<GitSha>, Error> {
    labelled_release(
        running.iter().map(|c| (c.name.as_str(), &c.labels)),
        environment,
    )
}

/// [`running_release`] over anything labelled: `(name, labels)` pairs (containers,
/// or Swarm services named as such).
pub fn labelled_release<'a>(
    labelled: impl IntoIterator<Item = (&'a str, &'a BTreeMap<String, String>)>,
    environment: &str,
) -> Result<Option<GitSha>, Error> {
    let mut release = None;
    for (name, labels) in labelled {
        let Some(label) = labels.get(SHA_LABEL) else {
            continue;
        };
        let sha = GitSha::parse(label).map_err(|_not_a_sha| Error::ForeignContainer {
            container: name.chars().take(128).collect(),
            environment: environment.to_owned(),
            label: label.chars().take(64).collect(),
        })?;
        release.get_or_insert(sha);
    }
    Ok(release)
}
