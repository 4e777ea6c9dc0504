//! The containers target: one container per service on the environment's engine,
//! swapped by `ledger` itself. What runs is stopped (kept), the new containers are
//! started one by one and must become healthy; then the old ones are removed or, on
//! failure, the new ones removed and the old ones started again.

use super::{
    evidence_labels, running_release, service_env, DeployRequest, Kept, ManifestImage, Plan, Rolled,
};
use crate::config::{Config, Environment, Service};
use crate::error::Error;
use ledger_core::predicate::{Container, Port};
use ledger_core::{ArtifactRef, GitSha};
use ledger_docker::labels;
use ledger_docker::{ContainerInfo, Engine, RunSpec};
use std::time::Duration;
use time::OffsetDateTime;

/// A container this deploy started.
struct Started<'a> {
    id: String,
    name: String,
    image: &'a ManifestImage,
    ports: Vec<(u16, u16)>,
    /// The host address its ports are bound to.
    address: Option<std::net::IpAddr>,
}

/// The container target: stop what runs, start the new containers, then remove
/// the old ones or, on failure, remove the new ones and start the old ones again.
pub(super) async fn swap(
    engine: &Engine,
    req: &DeployRequest,
    plan: &Plan<'_>,
    r: &ArtifactRef,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Rolled, Error> {
    let (previous, previous_release) = stop_previous(engine, plan.config, req, progress).await?;
    let (started, failure) = start_services(engine, req, plan, r).await?;
    let restored = settle(
        engine,
        &started,
        &previous,
        failure.as_deref(),
        plan.keep_previous,
        progress,
    )
    .await?;
    Ok(Rolled {
        previous_release,
        containers: if failure.is_some() {
            vec![]
        } else {
            started.iter().map(Started::container).collect()
        },
        services: Vec::new(),
        kept: kept(plan.keep_previous && failure.is_none(), previous, &started),
        failure,
        restored,
    })
}

/// What a passing deploy kept of the release before, when asked to keep it.
fn kept(keep: bool, previous: Vec<ContainerInfo>, started: &[Started<'_>]) -> Kept {
    if !keep {
        return Kept::default();
    }
    Kept {
        previous,
        started: started.iter().map(|s| s.id.clone()).collect(),
    }
}

/// Stops (but keeps) what runs in the environment; returns it and the SHA it ran.
async fn stop_previous(
    engine: &Engine,
    config: &Config,
    req: &DeployRequest,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(Vec<ContainerInfo>, Option<GitSha>), Error> {
    let previous = engine
        .containers(&[
            (labels::PROJECT, config.repository.as_str()),
            (labels::ENV, req.environment.as_str()),
        ])
        .await?;
    let previous: Vec<ContainerInfo> = previous.into_iter().filter(|c| c.running).collect();
    let previous_release = running_release(&previous, &req.environment)?;
    for c in &previous {
        progress(&format!(
            "stopping {} ({})",
            c.name,
            previous_release.as_ref().map_or("?", GitSha::short)
        ));
        engine.stop(&c.id).await?;
    }
    Ok((previous, previous_release))
}

/// Starts every service of the environment until one fails to start or become
/// healthy; returns what started and, if one failed, why.
async fn start_services<'a>(
    engine: &Engine,
    req: &DeployRequest,
    plan: &Plan<'a>,
    r: &ArtifactRef,
) -> Result<(Vec<Started<'a>>, Option<String>), Error> {
    let mut started: Vec<Started<'a>> = Vec::new();
    let nonce = OffsetDateTime::now_utc().unix_timestamp_nanos() % 1_000_000;
    for service in &plan.env_config.services {
        let Some(image) = plan.ready.iter().find(|i| i.name == service.image) else {
            let why = format!(
                "the manifest has no image {} for this environment's service",
                service.image
            );
            return Ok((started, Some(why)));
        };
        let name = format!(
            "ledger-{}-{}-{}-{}-{nonce}",
            req.environment,
            image.name,
            req.sha.short(),
            r.attempt
        );
        let spec = run_spec(req, plan.config, plan.env_config, service, image, &name, r);
        let ports = spec.ports.clone();
        (plan.progress)(&format!("starting {name} from {}", image.reference));
        let id = match engine.run(&spec).await {
            Ok(id) => id,
            Err(e @ ledger_docker::DockerError::Unreachable { .. }) => return Err(e.into()),
            Err(e) => return Ok((started, Some(e.to_string()))),
        };
        started.push(Started {
            id: id.clone(),
            name: name.clone(),
            image,
            ports,
            address: plan.env_config.publish_address.parse().ok(),
        });
        let timeout = Duration::from_secs(service.health_timeout_seconds);
        if let Err(e) = engine.wait_healthy(&id, &name, timeout).await {
            return Ok((started, Some(e.to_string())));
        }
    }
    Ok((started, None))
}

/// The container to start for `service`: its image by digest, labels that tie it to
/// this evidence, its ports, its variables and its secrets' values.
fn run_spec(
    req: &DeployRequest,
    config: &Config,
    env_config: &Environment,
    service: &Service,
    image: &ManifestImage,
    name: &str,
    r: &ArtifactRef,
) -> RunSpec {
    RunSpec {
        name: name.to_owned(),
        image: image.reference.clone(),
        labels: evidence_labels(req, config, image, r),
        ports: service
            .ports
            .iter()
            .map(|p| (p.container, p.host))
            .collect(),
        host_address: env_config.publish_address.clone(),
        env: service_env(req, service),
    }
}

/// After a failure, removes what started and starts the previous release again
/// (returns `true`: restored); after success, removes the previous containers unless
/// asked to keep them.
async fn settle(
    engine: &Engine,
    started: &[Started<'_>],
    previous: &[ContainerInfo],
    failure: Option<&str>,
    keep_previous: bool,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<bool, Error> {
    let Some(why) = failure else {
        if !keep_previous {
            for c in previous {
                engine.remove(&c.id).await?;
            }
        }
        return Ok(false);
    };
    progress(&format!(
        "deploy failed ({why}); restoring the previous release"
    ));
    for s in started {
        engine.remove(&s.id).await?;
    }
    for c in previous {
        engine.start(&c.id).await?;
    }
    Ok(true)
}

impl Started<'_> {
    fn container(&self) -> Container {
        Container {
            name: self.name.clone(),
            image: self.image.name.clone(),
            reference: self.image.reference.clone(),
            digest: self.image.digest.clone(),
            container_id: self.id.clone(),
            ports: self
                .ports
                .iter()
                .map(|&(container, host)| Port {
                    container,
                    host,
                    address: self.address,
                })
                .collect(),
        }
    }
}
