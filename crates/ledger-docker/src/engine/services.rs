//! Swarm services: one per image of an environment, created or updated in place to a
//! new digest, with the swarm's own rolling update and its automatic rollback.
//!
//! What the engine does and this code relies on (Docker 20.10 to 28, measured on a
//! single-node swarm): a task of an image with a health check is `running` only once
//! healthy; an update whose new task fails within the monitor period is rolled back
//! by the swarm itself when `failure_action` is `rollback`, ending in
//! `rollback_completed`; ports published in `host` mode bind on every address of the
//! node running the task (the routing mesh is not used: it needs more of the
//! network than a locked-down host allows, and hides which task answered).

use super::{logged, Engine};
use crate::DockerError;
use bollard::models::{
    EndpointPortConfig, EndpointPortConfigProtocolEnum, EndpointPortConfigPublishModeEnum,
    EndpointSpec, ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated,
    ServiceSpecRollbackConfig, ServiceSpecRollbackConfigFailureActionEnum,
    ServiceSpecRollbackConfigOrderEnum, ServiceSpecUpdateConfig,
    ServiceSpecUpdateConfigFailureActionEnum, ServiceSpecUpdateConfigOrderEnum,
    ServiceUpdateStatusStateEnum, TaskSpec, TaskSpecContainerSpec, TaskState,
};
use bollard::query_parameters::{
    ListServicesOptionsBuilder, ListTasksOptionsBuilder, UpdateServiceOptionsBuilder,
};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// A service as `ledger` wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePlan {
    pub name: String,
    /// `repo@sha256:…`; never a tag.
    pub image: String,
    /// On the service and on every task's container.
    pub labels: BTreeMap<String, String>,
    pub env: Vec<(String, String)>,
    /// `(container port, published port)`, published in host mode.
    pub ports: Vec<(u16, u16)>,
    pub replicas: u64,
    /// New tasks start before old ones stop (`start-first`), or the other way round.
    pub start_first: bool,
    /// Tasks updated at once (0: all).
    pub parallelism: u64,
    /// How long a new task is watched for failure before the next one is updated.
    pub monitor: Duration,
}

/// A service that exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceInfo {
    pub id: String,
    pub name: String,
    /// The swarm's version of its spec: every update raises it.
    pub version: u64,
    pub labels: BTreeMap<String, String>,
    /// The image its spec runs now.
    pub image: Option<String>,
    /// The replicas its spec asks for (`None`: not a replicated service).
    pub replicas: Option<u64>,
    /// When its latest update (or rollback) began, as the engine wrote it: tells a
    /// new update's status from the one before.
    pub update_started: Option<String>,
}

/// A task of a service that runs (or should).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskInfo {
    pub id: String,
    pub slot: Option<u64>,
    pub node_id: String,
    pub state: String,
    pub container_id: Option<String>,
    pub image: Option<String>,
    pub error: Option<String>,
}

/// How a create or update ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollout {
    /// Every replica runs the new spec (healthy where the image has a health check).
    Converged,
    /// The update failed and the swarm rolled the service back to its previous spec.
    RolledBack(String),
    /// It did not converge: paused, or not within the time allowed.
    Failed(String),
}

impl Engine {
    /// Whether this engine is a manager of an active swarm (where services can be
    /// created); `Err` only when the engine cannot be asked.
    pub async fn is_swarm_manager(&self) -> Result<bool, DockerError> {
        let info = self
            .docker
            .info()
            .await
            .map_err(self.failed("report its swarm state"))?;
        let swarm = info.swarm.unwrap_or_default();
        let active = swarm
            .local_node_state
            .is_some_and(|s| s.to_string() == "active");
        Ok(active && swarm.control_available.unwrap_or(false))
    }

    /// The services carrying every label of `labels`.
    pub async fn services(&self, labels: &[(&str, &str)]) -> Result<Vec<ServiceInfo>, DockerError> {
        let filter: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let options = ListServicesOptionsBuilder::default()
            .filters(&HashMap::from([("label", filter)]))
            .build();
        let list = self
            .docker
            .list_services(Some(options))
            .await
            .map_err(self.failed("list services"))?;
        Ok(list.into_iter().map(service_info).collect())
    }

    /// Creates the service `plan` describes, or updates `existing` to it; the
    /// registry credential for the image's host goes along, so that every node can
    /// pull it. Returns the service's id.
    #[tracing::instrument(level = "debug", name = "engine.deploy_service", skip_all, fields(name = %plan.name, image = %plan.image))]
    pub async fn deploy_service(
        &self,
        plan: &ServicePlan,
        existing: Option<&ServiceInfo>,
    ) -> Result<String, DockerError> {
        let host = crate::credentials::host_of(&plan.image);
        let credentials = crate::credentials::lookup(host)?.map(|c| c.engine(host));
        let spec = service_spec(plan);
        let result = match existing {
            None => self
                .docker
                .create_service(spec, credentials)
                .await
                .map(|r| r.id.unwrap_or_default())
                .map_err(self.failed(format!("create service {}", plan.name))),
            Some(service) => {
                let version = i32::try_from(service.version).unwrap_or(i32::MAX);
                let options = UpdateServiceOptionsBuilder::default()
                    .version(version)
                    .build();
                self.docker
                    .update_service(&service.id, spec, options, credentials)
                    .await
                    .map(|_| service.id.clone())
                    .map_err(self.failed(format!("update service {}", plan.name)))
            }
        };
        logged(result, |id| tracing::debug!(id = %id, "submitted"))
    }

    /// The service `id` as it is now.
    pub async fn inspect_service(&self, id: &str) -> Result<ServiceInfo, DockerError> {
        self.docker
            .inspect_service(id, None)
            .await
            .map(service_info)
            .map_err(self.failed(format!("inspect service {id}")))
    }

    /// The tasks of service `id` that should run now.
    pub async fn service_tasks(&self, id: &str) -> Result<Vec<TaskInfo>, DockerError> {
        let options = ListTasksOptionsBuilder::default()
            .filters(&HashMap::from([
                ("service", vec![id.to_owned()]),
                ("desired-state", vec!["running".to_owned()]),
            ]))
            .build();
        let tasks = self
            .docker
            .list_tasks(Some(options))
            .await
            .map_err(self.failed(format!("list the tasks of service {id}")))?;
        let mut out: Vec<TaskInfo> = tasks
            .into_iter()
            .map(|t| {
                let status = t.status.unwrap_or_default();
                TaskInfo {
                    id: t.id.unwrap_or_default(),
                    slot: t.slot.and_then(|s| u64::try_from(s).ok()),
                    node_id: t.node_id.unwrap_or_default(),
                    state: status
                        .state
                        .map_or_else(|| "unknown".to_owned(), |s| s.to_string()),
                    container_id: status.container_status.and_then(|c| c.container_id),
                    image: t.spec.and_then(|s| s.container_spec).and_then(|c| c.image),
                    error: status.err,
                }
            })
            .collect();
        out.sort_by(|a, b| (a.slot, &a.id).cmp(&(b.slot, &b.id)));
        Ok(out)
    }

    /// Waits until the service `id` runs `plan` on every replica, the swarm rolls it
    /// back, its update pauses, or `timeout` passes. `stale`: when the update before
    /// this one began (its status is the service's until the swarm starts this one,
    /// and must not be taken for this update's end).
    #[tracing::instrument(level = "debug", name = "engine.wait_service", skip_all, fields(name = %plan.name))]
    pub async fn wait_service(
        &self,
        id: &str,
        plan: &ServicePlan,
        timeout: Duration,
        stale: Option<&str>,
    ) -> Result<Rollout, DockerError> {
        let start = Instant::now();
        loop {
            let service = self
                .docker
                .inspect_service(id, None)
                .await
                .map_err(self.failed(format!("inspect service {}", plan.name)))?;
            let update = service.update_status.clone().unwrap_or_default();
            let message = update.message.clone().unwrap_or_default();
            let started = update.started_at.as_ref().map(|d| format!("{d:?}"));
            let state = if started.is_some() && started.as_deref() == stale {
                None
            } else {
                update.state
            };
            match state {
                Some(ServiceUpdateStatusStateEnum::ROLLBACK_COMPLETED) => {
                    return Ok(Rollout::RolledBack(message));
                }
                Some(
                    ServiceUpdateStatusStateEnum::PAUSED
                    | ServiceUpdateStatusStateEnum::ROLLBACK_PAUSED,
                ) => return Ok(Rollout::Failed(message)),
                Some(
                    ServiceUpdateStatusStateEnum::UPDATING
                    | ServiceUpdateStatusStateEnum::ROLLBACK_STARTED,
                ) => {}
                _ => {
                    if self.runs(id, &plan.image, plan.replicas).await? {
                        return Ok(Rollout::Converged);
                    }
                }
            }
            if start.elapsed() >= timeout {
                let tasks = self.service_tasks(id).await?;
                let states: Vec<String> = tasks
                    .iter()
                    .map(|t| match &t.error {
                        Some(e) => format!("{} ({e})", t.state),
                        None => t.state.clone(),
                    })
                    .collect();
                return Ok(Rollout::Failed(format!(
                    "service {} did not run {} healthy replica(s) of {} within {} s (tasks: {})",
                    plan.name,
                    plan.replicas,
                    plan.image,
                    timeout.as_secs(),
                    if states.is_empty() {
                        "none".to_owned()
                    } else {
                        states.join(", ")
                    }
                )));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Whether exactly `replicas` tasks of service `id` should run, and all of them
    /// run `image`.
    async fn runs(&self, id: &str, image: &str, replicas: u64) -> Result<bool, DockerError> {
        let tasks = self.service_tasks(id).await?;
        let running = TaskState::RUNNING.to_string();
        Ok(tasks.len() as u64 == replicas
            && tasks
                .iter()
                .all(|t| t.state == running && t.image.as_deref() == Some(image)))
    }

    /// Waits until every one of `replicas` tasks of service `id` runs `image` (after
    /// a rollback, whoever started it); `false` when `timeout` passes first.
    pub async fn wait_tasks(
        &self,
        id: &str,
        image: &str,
        replicas: u64,
        timeout: Duration,
    ) -> Result<bool, DockerError> {
        let start = Instant::now();
        loop {
            if self.runs(id, image, replicas).await? {
                return Ok(true);
            }
            if start.elapsed() >= timeout {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Asks the swarm to roll service `id` back to its previous spec.
    pub async fn rollback_service(&self, id: &str) -> Result<(), DockerError> {
        let current = self
            .docker
            .inspect_service(id, None)
            .await
            .map_err(self.failed(format!("inspect service {id}")))?;
        let version = current.version.and_then(|v| v.index).unwrap_or_default();
        let spec = current.spec.unwrap_or_default();
        let options = UpdateServiceOptionsBuilder::default()
            .version(i32::try_from(version).unwrap_or(i32::MAX))
            .rollback("previous")
            .build();
        self.docker
            .update_service(id, spec, options, None)
            .await
            .map(|_| ())
            .map_err(self.failed(format!("roll back service {id}")))
    }

    /// Removes service `id` (its tasks stop).
    pub async fn remove_service(&self, id: &str) -> Result<(), DockerError> {
        match self.docker.delete_service(id).await {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(self.failed(format!("remove service {id}"))(e)),
        }
    }
}

fn service_info(s: bollard::models::Service) -> ServiceInfo {
    let spec = s.spec.unwrap_or_default();
    let update_started = s
        .update_status
        .and_then(|u| u.started_at)
        .map(|d| format!("{d:?}"));
    let replicas = spec
        .mode
        .as_ref()
        .and_then(|m| m.replicated.as_ref())
        .and_then(|r| r.replicas)
        .and_then(|r| u64::try_from(r).ok());
    ServiceInfo {
        update_started,
        replicas,
        id: s.id.unwrap_or_default(),
        name: spec.name.clone().unwrap_or_default(),
        version: s.version.and_then(|v| v.index).unwrap_or_default(),
        labels: spec
            .labels
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        image: spec
            .task_template
            .and_then(|t| t.container_spec)
            .and_then(|c| c.image),
    }
}

/// The engine's form of `plan`: replicated, host-mode ports, `init`, the update and
/// rollback orders and parallelism, and rollback on a failed update.
fn service_spec(plan: &ServicePlan) -> ServiceSpec {
    let labels: HashMap<String, String> = plan.labels.clone().into_iter().collect();
    let parallelism = i64::try_from(plan.parallelism).unwrap_or(i64::MAX);
    let monitor = i64::try_from(plan.monitor.as_nanos()).unwrap_or(i64::MAX);
    ServiceSpec {
        name: Some(plan.name.clone()),
        labels: Some(labels.clone()),
        task_template: Some(TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some(plan.image.clone()),
                labels: Some(labels),
                env: Some(plan.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
                init: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        }),
        mode: Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated {
                replicas: Some(i64::try_from(plan.replicas).unwrap_or(i64::MAX)),
            }),
            ..Default::default()
        }),
        update_config: Some(ServiceSpecUpdateConfig {
            parallelism: Some(parallelism),
            failure_action: Some(ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK),
            monitor: Some(monitor),
            max_failure_ratio: Some(0.0),
            order: Some(if plan.start_first {
                ServiceSpecUpdateConfigOrderEnum::START_FIRST
            } else {
                ServiceSpecUpdateConfigOrderEnum::STOP_FIRST
            }),
            ..Default::default()
        }),
        rollback_config: Some(ServiceSpecRollbackConfig {
            parallelism: Some(parallelism),
            failure_action: Some(ServiceSpecRollbackConfigFailureActionEnum::PAUSE),
            monitor: Some(monitor),
            order: Some(if plan.start_first {
                ServiceSpecRollbackConfigOrderEnum::START_FIRST
            } else {
                ServiceSpecRollbackConfigOrderEnum::STOP_FIRST
            }),
            ..Default::default()
        }),
        endpoint_spec: Some(EndpointSpec {
            ports: Some(
                plan.ports
                    .iter()
                    .map(|&(target, published)| EndpointPortConfig {
                        protocol: Some(EndpointPortConfigProtocolEnum::TCP),
                        target_port: Some(i64::from(target)),
                        published_port: Some(i64::from(published)),
                        publish_mode: Some(EndpointPortConfigPublishModeEnum::HOST),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_carries_replicas_order_parallelism_rollback_and_host_ports() {
        let plan = ServicePlan {
            name: "shop-production-api".into(),
            image: format!("127.0.0.1:5000/shop/api@sha256:{}", "a".repeat(64)),
            labels: BTreeMap::from([("dev.ledger.sha".into(), "b".repeat(40))]),
            env: vec![("APP_VERSION".into(), "7".into())],
            ports: vec![(8080, 18080)],
            replicas: 3,
            start_first: true,
            parallelism: 2,
            monitor: Duration::from_secs(5),
        };
        let spec = service_spec(&plan);
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(json["Mode"]["Replicated"]["Replicas"], 3);
        assert_eq!(json["UpdateConfig"]["Order"], "start-first");
        assert_eq!(json["UpdateConfig"]["Parallelism"], 2);
        assert_eq!(json["UpdateConfig"]["FailureAction"], "rollback");
        assert_eq!(json["UpdateConfig"]["Monitor"], 5_000_000_000_i64);
        assert_eq!(json["RollbackConfig"]["Order"], "start-first");
        assert_eq!(json["EndpointSpec"]["Ports"][0]["PublishMode"], "host");
        assert_eq!(json["EndpointSpec"]["Ports"][0]["PublishedPort"], 18080);
        let container = &json["TaskTemplate"]["ContainerSpec"];
        assert_eq!(container["Image"], plan.image.as_str());
        assert_eq!(container["Init"], true);
        assert_eq!(container["Env"][0], "APP_VERSION=7");
        assert_eq!(container["Labels"]["dev.ledger.sha"], "b".repeat(40));
        let stop_first = service_spec(&ServicePlan {
            start_first: false,
            ..plan
        });
        let json = serde_json::to_value(&stop_first).unwrap();
        assert_eq!(json["UpdateConfig"]["Order"], "stop-first");
    }
}
