//! The Swarm target: one service per image of the environment, created on the first
//! deploy and updated in place after that, so that the swarm itself does the rolling
//! update (replicas, order and parallelism from `ledger.toml`) and, when a new task
//! fails within the monitor period, its own rollback to the spec before.
//!
//! `ledger` only watches: it waits until every replica runs the new digest, or the
//! swarm reports the rollback, or the time allowed (the services' health timeout
//! plus the monitor period per replica) runs out; then it rolls back itself (an
//! update) or removes the service (a first deploy). Services already updated in this
//! deploy are rolled back too, so an environment never ends half on the new release.
//! A service is found again by its labels (project, environment, image), never by
//! name alone.

use super::{evidence_labels, service_env, DeployRequest, Kept, Plan, Rolled};
use crate::config::{ConfigError, Service, UpdateOrder, CONFIG_FILE};
use crate::error::Error;
use ledger_core::predicate::{Container, Port, SwarmService, SwarmTask};
use ledger_core::ArtifactRef;
use ledger_docker::labels;
use ledger_docker::{Engine, Rollout, ServiceInfo, ServicePlan};
use std::time::Duration;

/// A service this deploy created or updated: its plan, what it was before (`None`:
/// created), its id.
struct Touched {
    plan: ServicePlan,
    image: String,
    digest: String,
    before: Option<ServiceInfo>,
    id: String,
}

/// Rolls the environment's services out to the manifest's digests.
pub(super) async fn roll_out(
    engine: &Engine,
    req: &DeployRequest,
    plan: &Plan<'_>,
    r: &ArtifactRef,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Rolled, Error> {
    if !engine.is_swarm_manager().await? {
        return Err(Error::Config(ConfigError::Invalid {
            path: CONFIG_FILE.into(),
            message: format!(
                "environment `{}` has target = \"swarm\", but its engine {} is not a manager of an active swarm; run `docker swarm init` there (or join it as a manager), or set target = \"containers\"",
                req.environment,
                engine.endpoint()
            ),
        }));
    }
    let project = plan.config.repository.as_str();
    let existing = engine
        .services(&[
            (labels::PROJECT, project),
            (labels::ENV, req.environment.as_str()),
        ])
        .await?;
    let previous_release = previous_release(&existing, &req.environment)?;
    let mut touched: Vec<Touched> = Vec::new();
    let mut failure = None;
    for service in &plan.env_config.services {
        let (done, why) = roll_one(engine, req, plan, r, service, &existing, progress).await?;
        touched.extend(done);
        if why.is_some() {
            failure = why;
            break;
        }
    }
    match failure {
        None => converged(engine, &touched, previous_release).await,
        Some(why) => {
            progress(&format!("deploy failed ({why}); undoing it"));
            let restored = undo(engine, &touched, progress).await?;
            Ok(Rolled {
                previous_release,
                containers: Vec::new(),
                services: Vec::new(),
                failure: Some(why),
                restored,
                kept: Kept::default(),
            })
        }
    }
}

/// Creates or updates the service of one configured `service` and waits for it:
/// what was touched (to undo on a later failure) and, when it failed, why.
async fn roll_one(
    engine: &Engine,
    req: &DeployRequest,
    plan: &Plan<'_>,
    r: &ArtifactRef,
    service: &Service,
    existing: &[ServiceInfo],
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(Option<Touched>, Option<String>), Error> {
    let Some(image) = plan.ready.iter().find(|i| i.name == service.image) else {
        let why = format!(
            "the manifest has no image {} for this environment's service",
            service.image
        );
        return Ok((None, Some(why)));
    };
    let project = plan.config.repository.as_str();
    let before = existing
        .iter()
        .find(|s| s.labels.get(labels::IMAGE) == Some(&image.name))
        .cloned();
    let swarm = &plan.env_config.swarm;
    let service_plan = ServicePlan {
        name: service_name(project, &req.environment, &image.name),
        image: image.reference.clone(),
        labels: evidence_labels(req, plan.config, image, r),
        env: service_env(req, service),
        ports: service
            .ports
            .iter()
            .map(|p| (p.container, p.host))
            .collect(),
        replicas: service.replicas,
        start_first: swarm.update_order == UpdateOrder::StartFirst,
        parallelism: swarm.update_parallelism,
        monitor: Duration::from_secs(swarm.monitor_seconds),
    };
    progress(&format!(
        "{} service {} to {} ({} replica(s))",
        if before.is_some() {
            "updating"
        } else {
            "creating"
        },
        service_plan.name,
        image.reference,
        service.replicas
    ));
    let id = match engine.deploy_service(&service_plan, before.as_ref()).await {
        Ok(id) => id,
        Err(e @ ledger_docker::DockerError::Unreachable { .. }) => return Err(e.into()),
        Err(e) => return Ok((None, Some(e.to_string()))),
    };
    let allowed = Duration::from_secs(
        service.health_timeout_seconds + swarm.monitor_seconds * (service.replicas + 1),
    );
    let stale = before.as_ref().and_then(|b| b.update_started.clone());
    let rollout = engine
        .wait_service(&id, &service_plan, allowed, stale.as_deref())
        .await?;
    let why = match rollout {
        Rollout::Converged => None,
        Rollout::RolledBack(why) => Some(format!("the swarm rolled the update back: {why}")),
        Rollout::Failed(why) => Some(why),
    };
    let done = Touched {
        plan: service_plan,
        image: image.name.clone(),
        digest: image.digest.clone(),
        before,
        id,
    };
    Ok((Some(done), why))
}

/// Every service converged: what runs now, task by task.
async fn converged(
    engine: &Engine,
    touched: &[Touched],
    previous_release: Option<ledger_core::GitSha>,
) -> Result<Rolled, Error> {
    let mut services = Vec::new();
    let mut containers = Vec::new();
    for t in touched {
        let info = engine.inspect_service(&t.id).await?;
        let tasks = engine.service_tasks(&t.id).await?;
        for task in &tasks {
            if let Some(container_id) = &task.container_id {
                containers.push(Container {
                    name: format!(
                        "{}.{}.{}",
                        t.plan.name,
                        task.slot.map_or_else(|| "-".to_owned(), |s| s.to_string()),
                        task.id
                    ),
                    image: t.image.clone(),
                    reference: t.plan.image.clone(),
                    digest: t.digest.clone(),
                    container_id: container_id.clone(),
                    ports: t
                        .plan
                        .ports
                        .iter()
                        .map(|&(container, host)| Port {
                            container,
                            host,
                            address: None,
                        })
                        .collect(),
                });
            }
        }
        services.push(SwarmService {
            name: t.plan.name.clone(),
            image: t.image.clone(),
            service_id: t.id.clone(),
            version: info.version,
            replicas: t.plan.replicas,
            tasks: tasks
                .into_iter()
                .map(|task| SwarmTask {
                    task_id: task.id,
                    slot: task.slot,
                    node_id: task.node_id,
                    container_id: task.container_id,
                    state: task.state,
                })
                .collect(),
        });
    }
    Ok(Rolled {
        previous_release,
        containers,
        services,
        failure: None,
        restored: false,
        kept: Kept::default(),
    })
}

/// Puts every touched service back: an updated one rolled back to its spec before
/// (unless the swarm did so already) and waited for, a created one removed. Returns
/// whether a release that ran before runs again, on every service it had.
async fn undo(
    engine: &Engine,
    touched: &[Touched],
    progress: &(dyn Fn(&str) + Sync),
) -> Result<bool, Error> {
    let mut restored = touched.iter().any(|t| t.before.is_some());
    for t in touched.iter().rev() {
        match &t.before {
            None => {
                progress(&format!("removing service {}", t.plan.name));
                engine.remove_service(&t.id).await?;
            }
            Some(before) => {
                let now = engine.inspect_service(&t.id).await?;
                let image = before.image.clone().unwrap_or_default();
                if now.image.as_deref() != Some(image.as_str()) {
                    progress(&format!("rolling service {} back", t.plan.name));
                    engine.rollback_service(&t.id).await?;
                }
                // The previous spec's replicas, as the service had them.
                let replicas = before.replicas.unwrap_or(t.plan.replicas);
                let allowed = t.plan.monitor * 4 + Duration::from_secs(60);
                if !engine.wait_tasks(&t.id, &image, replicas, allowed).await? {
                    progress(&format!(
                        "service {} did not run its previous release again within {} s",
                        t.plan.name,
                        allowed.as_secs()
                    ));
                    restored = false;
                }
            }
        }
    }
    Ok(restored)
}

/// `project-environment-image`, cut to the 63 characters a service name may have.
fn service_name(project: &str, environment: &str, image: &str) -> String {
    let mut name = format!("{project}-{environment}-{image}");
    name.truncate(63);
    name.trim_end_matches(['-', '.', '_']).to_owned()
}

/// The release the services carry, by the containers' rule
/// ([`super::labelled_release`]), each named `service NAME` in a refusal.
fn previous_release(
    services: &[ServiceInfo],
    environment: &str,
) -> Result<Option<ledger_core::GitSha>, Error> {
    let named: Vec<(String, &ServiceInfo)> = services
        .iter()
        .map(|s| (format!("service {}", s.name), s))
        .collect();
    super::labelled_release(
        named.iter().map(|(name, s)| (name.as_str(), &s.labels)),
        environment,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_fit_the_swarm_limit_and_end_cleanly() {
        assert_eq!(
            service_name("shop", "production", "api"),
            "shop-production-api"
        );
        let long = service_name(&"p".repeat(60), "canary", "api");
        assert_eq!(long, format!("{}-ca", "p".repeat(60)));
        // Cut right after a dash: the dash goes too.
        let cut = service_name(&"p".repeat(62), "canary", "api");
        assert_eq!(cut, "p".repeat(62));
    }

    #[test]
    fn a_service_with_a_foreign_sha_label_is_refused_by_the_running_release_rule() {
        let service = ServiceInfo {
            id: "s1".into(),
            name: "shop-production-api".into(),
            version: 3,
            labels: [(labels::SHA.to_owned(), "not-a-sha".to_owned())].into(),
            image: None,
            replicas: Some(1),
            update_started: None,
        };
        let e = previous_release(&[service], "production").unwrap_err();
        assert!(e.to_string().contains("service shop-production-api"), "{e}");
    }
}
