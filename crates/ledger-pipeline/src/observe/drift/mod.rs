//! Drift: what the evidence says runs in each environment against what the Docker
//! engine actually runs (`ledger status --drift`).
//!
//! The ledger's answer comes from [`crate::observe::status`] (the newest passing, verified
//! deployment per environment). The engine's comes from the containers carrying this
//! project's labels. A difference is a finding: a recorded release not running, a
//! container of another SHA or started by another deployment, an image whose content
//! is not the recorded digest, a container of an image the release does not have, or
//! containers in an environment with no deployment evidence at all. In a Swarm
//! environment the services are compared instead (the `swarm` module).

mod swarm;

use crate::engines::Placement;
use crate::error::Error;
use crate::observe::status::{Running, StatusReport};
use ledger_docker::labels;
use ledger_docker::{ContainerInfo, Engine};
use serde::Serialize;
use std::collections::BTreeSet;

/// One environment's comparison.
#[derive(Debug, Clone, Serialize)]
pub struct EnvironmentDrift {
    pub environment: String,
    /// The SHA the evidence says runs, if any.
    pub recorded_sha: Option<String>,
    /// Running containers of this project in the environment: name, SHA label, image.
    pub observed: Vec<Observed>,
    /// Every difference; empty when the engine matches the evidence.
    pub findings: Vec<String>,
}

/// A running container as the engine reports it.
#[derive(Debug, Clone, Serialize)]
pub struct Observed {
    pub name: String,
    pub sha: Option<String>,
    pub image: Option<String>,
    pub image_id: String,
    pub evidence: Option<String>,
}

/// Whether `image_id` (what a container runs) is the content `digest` names: the same
/// image id for engine-local images, or an image whose repository digests include it.
async fn same_image(engine: &Engine, image_id: &str, digest: &str) -> Result<bool, Error> {
    if image_id == digest {
        return Ok(true);
    }
    Ok(engine.inspect_image(image_id).await?.is_some_and(|info| {
        info.repo_digests
            .iter()
            .any(|d| d.ends_with(&format!("@{digest}")))
    }))
}

/// The environments `status --drift` looks at: every one `status` knows or
/// `configured` names (or only `only`). Connect a [`Placement`] for these; the
/// environments only containers' labels name are then compared on those engines.
pub fn environments_to_compare(
    status: &StatusReport,
    configured: &[String],
    only: Option<&str>,
) -> Vec<String> {
    let mut envs: BTreeSet<String> = configured.iter().cloned().collect();
    envs.extend(status.environments.iter().map(|e| e.environment.clone()));
    envs.into_iter()
        .filter(|e| only.is_none_or(|o| o == e))
        .collect()
}

/// The running containers of `project` on every engine of `placement`, each with
/// its engine.
async fn running_containers<'a>(
    placement: &'a Placement,
    project: &str,
) -> Result<Vec<(&'a Engine, ContainerInfo)>, Error> {
    let mut containers = Vec::new();
    for engine in placement.engines() {
        containers.extend(
            engine
                .containers(&[(labels::PROJECT, project)])
                .await?
                .into_iter()
                .filter(|c| c.running)
                .map(|c| (engine, c)),
        );
    }
    Ok(containers)
}

/// Compares `status` (from the evidence) with the running containers of `project`
/// on every engine of `placement`, for every environment either side knows (or
/// only `only`). Each environment is compared on its own engine; a container
/// labelled with an environment on another engine is a finding of its own.
pub async fn drift(
    placement: &Placement,
    project: &str,
    status: &StatusReport,
    only: Option<&str>,
    swarm: &BTreeSet<String>,
) -> Result<Vec<EnvironmentDrift>, Error> {
    let containers = running_containers(placement, project).await?;
    let mut out = Vec::new();
    for env in known_environments(status, &containers)
        .into_iter()
        .filter(|e| only.is_none_or(|o| o == e))
    {
        let labelled = |c: &&(&Engine, ContainerInfo)| c.1.labels.get(labels::ENV) == Some(&env);
        // An environment only labels name is compared where its containers are.
        let engine = match placement.engine_of(&env) {
            Some(e) => e,
            None => match containers.iter().find(labelled) {
                Some((e, _)) => *e,
                None => continue,
            },
        };
        let here: Vec<&ContainerInfo> = containers
            .iter()
            .filter(labelled)
            .filter(|(e, _)| e.endpoint() == engine.endpoint())
            .map(|(_, c)| c)
            .collect();
        let elsewhere: Vec<String> = containers
            .iter()
            .filter(labelled)
            .filter(|(e, _)| e.endpoint() != engine.endpoint())
            .map(|(e, c)| format!(
                "container {} of {project} labelled `{env}` runs on engine {}, which is not the environment's engine {}",
                c.name,
                e.endpoint(),
                engine.endpoint()
            ))
            .collect();
        let running = status
            .environments
            .iter()
            .find(|e| e.environment == env)
            .and_then(|e| e.running.as_ref());
        if swarm.contains(&env) {
            // A swarm's manager answers for every node: its services, not the
            // containers on its own node, are what runs there.
            let (observed, findings) = swarm::compare(engine, project, &env, running).await?;
            out.push(EnvironmentDrift {
                environment: env,
                recorded_sha: running.map(|r| r.sha.to_string()),
                observed,
                findings: findings.into_iter().chain(elsewhere).collect(),
            });
            continue;
        }
        let findings = match running {
            None if !here.is_empty() => vec![format!(
                "{} container(s) of {project} run in `{env}`, but no passing deployment to it is recorded",
                here.len()
            )],
            None => Vec::new(),
            Some(r) => compare(engine, project, &env, &here, r).await?,
        };
        let findings = findings.into_iter().chain(elsewhere).collect();
        out.push(EnvironmentDrift {
            environment: env,
            recorded_sha: running.map(|r| r.sha.to_string()),
            observed: here.iter().map(|c| observed(c)).collect(),
            findings,
        });
    }
    Ok(out)
}

/// Every environment either side knows: those with status from the evidence, then
/// those the engine's containers are labelled with, so drift in an environment the
/// ledger never deployed to still shows.
fn known_environments(
    status: &StatusReport,
    containers: &[(&Engine, ContainerInfo)],
) -> BTreeSet<String> {
    let mut envs: BTreeSet<String> = status
        .environments
        .iter()
        .map(|e| e.environment.clone())
        .collect();
    envs.extend(
        containers
            .iter()
            .filter_map(|(_, c)| c.labels.get(labels::ENV).cloned()),
    );
    envs
}

/// The findings for an environment with a recorded release `r`: nothing running at
/// all, each container's differences, then each recorded image no container runs.
async fn compare(
    engine: &Engine,
    project: &str,
    env: &str,
    here: &[&ContainerInfo],
    r: &Running,
) -> Result<Vec<String>, Error> {
    let mut findings = Vec::new();
    if here.is_empty() {
        findings.push(format!(
            "the evidence records {} running in `{env}` ({}), but the engine runs no container of {project} there",
            r.sha, r.deployment
        ));
    }
    for c in here {
        container_findings(engine, c, r, &mut findings).await?;
    }
    for image in r.images.keys() {
        let runs = here
            .iter()
            .any(|c| c.labels.get(labels::IMAGE) == Some(image));
        if !here.is_empty() && !runs {
            findings.push(format!(
                "image {image} of {} is recorded as running in `{env}`, but no container runs it",
                r.sha
            ));
        }
    }
    Ok(findings)
}

/// How one container differs from the recorded release: its SHA label, the
/// deployment that started it, and whether its image is one the release has, with
/// the recorded content.
async fn container_findings(
    engine: &Engine,
    c: &ContainerInfo,
    r: &Running,
    findings: &mut Vec<String>,
) -> Result<(), Error> {
    let label = |k: &str| c.labels.get(k).map(String::as_str);
    if label(labels::SHA) != Some(r.sha.as_str()) {
        findings.push(format!(
            "container {} runs SHA {}, the evidence records {}",
            c.name,
            label(labels::SHA).unwrap_or("(unlabelled)"),
            r.sha
        ));
    }
    if label(labels::EVIDENCE) != Some(r.deployment.as_str()) {
        findings.push(format!(
            "container {} was started by {}, not by the latest passing deployment {}",
            c.name,
            label(labels::EVIDENCE).unwrap_or("(no evidence label)"),
            r.deployment
        ));
    }
    match label(labels::IMAGE).and_then(|i| r.images.get(i).map(|d| (i, d))) {
        None => findings.push(format!(
            "container {} runs image {}, which the recorded release does not have",
            c.name,
            label(labels::IMAGE).unwrap_or("(unlabelled)")
        )),
        Some((image, digest)) => {
            if !same_image(engine, &c.image_id, digest).await? {
                findings.push(format!(
                    "container {} runs {} as image {image}, but the recorded digest is {digest}",
                    c.name, c.image_id
                ));
            }
        }
    }
    Ok(())
}

/// A running container as the drift report shows it, from its labels.
fn observed(c: &ContainerInfo) -> Observed {
    Observed {
        name: c.name.clone(),
        sha: c.labels.get(labels::SHA).cloned(),
        image: c.labels.get(labels::IMAGE).cloned(),
        image_id: c.image_id.clone(),
        evidence: c.labels.get(labels::EVIDENCE).cloned(),
    }
}
