//! Drift in a Swarm environment: the services the manager reports against the
//! release the evidence says runs there. The manager knows every node's tasks, so
//! this holds on a cluster of any size (the containers on the manager's own node
//! would not). A finding: a service of another SHA, updated by another deployment,
//! running another digest or an image the release does not have; fewer running
//! replicas than its spec asks for, or none asked for; a recorded image no service
//! runs; services where no deployment is recorded.

use super::Observed;
use crate::error::Error;
use crate::observe::status::Running;
use ledger_docker::labels;
use ledger_docker::{Engine, ServiceInfo};

/// What runs and every difference, for environment `env` of `project`.
pub(super) async fn compare(
    engine: &Engine,
    project: &str,
    env: &str,
    running: Option<&Running>,
) -> Result<(Vec<Observed>, Vec<String>), Error> {
    let services = engine
        .services(&[(labels::PROJECT, project), (labels::ENV, env)])
        .await?;
    let mut observed = Vec::new();
    let mut findings = Vec::new();
    for s in &services {
        let label = |k: &str| s.labels.get(k).cloned();
        observed.push(Observed {
            name: s.name.clone(),
            sha: label(labels::SHA),
            image: label(labels::IMAGE),
            image_id: s.image.clone().unwrap_or_default(),
            evidence: label(labels::EVIDENCE),
        });
        replica_findings(engine, s, &mut findings).await?;
        if let Some(r) = running {
            service_findings(s, r, &mut findings);
        }
    }
    match running {
        None if !services.is_empty() => findings.push(format!(
            "{} service(s) of {project} run in `{env}`, but no passing deployment to it is recorded",
            services.len()
        )),
        None => {}
        Some(r) if services.is_empty() => findings.push(format!(
            "the evidence records {} running in `{env}` ({}), but the swarm runs no service of {project} there",
            r.sha, r.deployment
        )),
        Some(r) => {
            for image in r.images.keys() {
                if !services
                    .iter()
                    .any(|s| s.labels.get(labels::IMAGE) == Some(image))
                {
                    findings.push(format!(
                        "image {image} of {} is recorded as running in `{env}`, but no service runs it",
                        r.sha
                    ));
                }
            }
        }
    }
    Ok((observed, findings))
}

/// Whether the service runs as many replicas of its spec's image as the spec asks
/// for, and asks for any.
async fn replica_findings(
    engine: &Engine,
    s: &ServiceInfo,
    findings: &mut Vec<String>,
) -> Result<(), Error> {
    let wanted = s.replicas.unwrap_or(0);
    if wanted == 0 {
        findings.push(format!("service {} is scaled to 0 replicas", s.name));
        return Ok(());
    }
    let tasks = engine.service_tasks(&s.id).await?;
    let up = tasks
        .iter()
        .filter(|t| t.state == "running" && t.image == s.image)
        .count() as u64;
    if up < wanted {
        findings.push(format!(
            "service {} runs {up} of {wanted} replica(s)",
            s.name
        ));
    }
    Ok(())
}

/// How one service differs from the recorded release `r`.
fn service_findings(s: &ServiceInfo, r: &Running, findings: &mut Vec<String>) {
    let label = |k: &str| s.labels.get(k).map(String::as_str);
    if label(labels::SHA) != Some(r.sha.as_str()) {
        findings.push(format!(
            "service {} runs SHA {}, the evidence records {}",
            s.name,
            label(labels::SHA).unwrap_or("(unlabelled)"),
            r.sha
        ));
    }
    if label(labels::EVIDENCE) != Some(r.deployment.as_str()) {
        findings.push(format!(
            "service {} was last set by {}, not by the latest passing deployment {}",
            s.name,
            label(labels::EVIDENCE).unwrap_or("(no evidence label)"),
            r.deployment
        ));
    }
    let image = label(labels::IMAGE).unwrap_or("(unlabelled)");
    match r.images.get(image) {
        None => findings.push(format!(
            "service {} runs image {image}, which the recorded release does not have",
            s.name
        )),
        Some(digest) => {
            let runs = s.image.as_deref().unwrap_or_default();
            if !runs.ends_with(&format!("@{digest}")) {
                findings.push(format!(
                    "service {} runs {runs} as image {image}, but the recorded digest is {digest}",
                    s.name
                ));
            }
        }
    }
}
