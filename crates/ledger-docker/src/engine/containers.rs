//! Containers: run with `init` and ports on one host address, start, stop, remove, list by
//! label, and wait until a health check passes.

use super::{logged, Engine};
use crate::DockerError;
use bollard::models::{ContainerCreateBody, HealthStatusEnum, HostConfig, PortBinding};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
    StopContainerOptionsBuilder,
};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// What to run.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub name: String,
    /// An image id or `repo@sha256:…`; never a tag.
    pub image: String,
    pub labels: BTreeMap<String, String>,
    /// `(container port, host port)`; host ports bind to `host_address` only.
    pub ports: Vec<(u16, u16)>,
    /// The host address published ports bind to (`127.0.0.1` unless configured).
    pub host_address: String,
    pub env: Vec<(String, String)>,
}

/// Facts about a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    pub id: String,
    pub name: String,
    pub image_id: String,
    pub labels: BTreeMap<String, String>,
    pub running: bool,
}

impl Engine {
    /// Creates and starts a container; returns its id. Logs the name, image and
    /// ports, never the environment (it may carry secrets).
    #[tracing::instrument(
        level = "debug",
        name = "engine.run",
        skip_all,
        fields(name = %spec.name, image = %spec.image, ports = ?spec.ports)
    )]
    pub async fn run(&self, spec: &RunSpec) -> Result<String, DockerError> {
        logged(
            self.run_unlogged(spec).await,
            |id| tracing::debug!(id = %id, "created and started"),
        )
    }

    async fn run_unlogged(&self, spec: &RunSpec) -> Result<String, DockerError> {
        let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
        for (container, host) in &spec.ports {
            bindings.insert(
                format!("{container}/tcp"),
                Some(vec![PortBinding {
                    host_ip: Some(spec.host_address.clone()),
                    host_port: Some(host.to_string()),
                }]),
            );
        }
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            labels: Some(spec.labels.clone().into_iter().collect()),
            env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            exposed_ports: Some(spec.ports.iter().map(|(c, _)| format!("{c}/tcp")).collect()),
            host_config: Some(HostConfig {
                port_bindings: Some(bindings),
                init: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::default()
            .name(&spec.name)
            .build();
        let created = self
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(self.failed(format!("create container {}", spec.name)))?;
        self.start(&created.id).await?;
        Ok(created.id)
    }

    /// Starts an existing container.
    #[tracing::instrument(level = "debug", name = "engine.start", skip_all, fields(id = id))]
    pub async fn start(&self, id: &str) -> Result<(), DockerError> {
        logged(
            self.docker
                .start_container(id, None::<bollard::query_parameters::StartContainerOptions>)
                .await
                .map_err(self.failed(format!("start container {id}"))),
            |_| tracing::debug!("started"),
        )
    }

    /// Stops a container (10 s grace), keeping it for a possible restore.
    #[tracing::instrument(level = "debug", name = "engine.stop", skip_all, fields(id = id))]
    pub async fn stop(&self, id: &str) -> Result<(), DockerError> {
        let options = StopContainerOptionsBuilder::default().t(10).build();
        let result = match self.docker.stop_container(id, Some(options)).await {
            Ok(()) => Ok("stopped"),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok("stopped already"),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok("absent"),
            Err(e) => Err(self.failed(format!("stop container {id}"))(e)),
        };
        logged(result, |outcome| tracing::debug!("{outcome}")).map(|_| ())
    }

    /// Removes a container, stopping it first if needed.
    #[tracing::instrument(level = "debug", name = "engine.remove", skip_all, fields(id = id))]
    pub async fn remove(&self, id: &str) -> Result<(), DockerError> {
        let options = RemoveContainerOptionsBuilder::default().force(true).build();
        let result = match self.docker.remove_container(id, Some(options)).await {
            Ok(()) => Ok("removed"),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok("absent already"),
            Err(e) => Err(self.failed(format!("remove container {id}"))(e)),
        };
        logged(result, |outcome| tracing::debug!("{outcome}")).map(|_| ())
    }

    /// Containers (running or not) carrying every label in `labels`.
    #[tracing::instrument(level = "debug", name = "engine.containers", skip_all, fields(labels = ?labels))]
    pub async fn containers(
        &self,
        labels: &[(&str, &str)],
    ) -> Result<Vec<ContainerInfo>, DockerError> {
        logged(self.containers_unlogged(labels).await, |list| {
            let running = list.iter().filter(|c| c.running).count();
            tracing::debug!(containers = list.len(), running, "listed")
        })
    }

    async fn containers_unlogged(
        &self,
        labels: &[(&str, &str)],
    ) -> Result<Vec<ContainerInfo>, DockerError> {
        let filters: HashMap<&str, Vec<String>> = HashMap::from([(
            "label",
            labels.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        )]);
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let list = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(self.failed("list containers"))?;
        Ok(list
            .into_iter()
            .map(|c| ContainerInfo {
                id: c.id.unwrap_or_default(),
                name: c
                    .names
                    .and_then(|n| n.into_iter().next())
                    .map(|n| n.trim_start_matches('/').to_owned())
                    .unwrap_or_default(),
                image_id: c.image_id.unwrap_or_default(),
                labels: c.labels.unwrap_or_default().into_iter().collect(),
                running: c.state.map(|s| s.to_string() == "running").unwrap_or(false),
            })
            .collect())
    }

    /// Waits until the container is healthy (when its image has a health check) or
    /// has stayed running for a moment (when it has none).
    #[tracing::instrument(
        level = "debug",
        name = "engine.wait_healthy",
        skip_all,
        fields(name = name, timeout_s = timeout.as_secs())
    )]
    pub async fn wait_healthy(
        &self,
        id: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<(), DockerError> {
        logged(self.wait_healthy_unlogged(id, name, timeout).await, |_| {
            tracing::debug!("healthy")
        })
    }

    async fn wait_healthy_unlogged(
        &self,
        id: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<(), DockerError> {
        let start = std::time::Instant::now();
        let mut running_since: Option<std::time::Instant> = None;
        loop {
            let info = self
                .docker
                .inspect_container(
                    id,
                    None::<bollard::query_parameters::InspectContainerOptions>,
                )
                .await
                .map_err(self.failed(format!("inspect container {name}")))?;
            let state = info.state.unwrap_or_default();
            let running = state.running.unwrap_or(false);
            let health = state.health.and_then(|h| h.status);
            let describe = || {
                format!(
                    "status {}, health {}, exit code {}",
                    state
                        .status
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| "unknown".into()),
                    health
                        .map(|h| h.to_string())
                        .unwrap_or_else(|| "none".into()),
                    state.exit_code.unwrap_or_default()
                )
            };
            match health {
                Some(HealthStatusEnum::HEALTHY) if running => return Ok(()),
                Some(HealthStatusEnum::UNHEALTHY) => {
                    return Err(DockerError::Unhealthy {
                        name: name.to_owned(),
                        after: start.elapsed().as_secs(),
                        timeout: timeout.as_secs(),
                        state: describe(),
                    })
                }
                Some(HealthStatusEnum::STARTING) => {}
                _ if running => {
                    let since = *running_since.get_or_insert_with(std::time::Instant::now);
                    if since.elapsed() >= Duration::from_millis(500) {
                        return Ok(());
                    }
                }
                _ => {
                    if !running && state.status.map(|s| s.to_string()) == Some("exited".into()) {
                        return Err(DockerError::Unhealthy {
                            name: name.to_owned(),
                            after: start.elapsed().as_secs(),
                            timeout: timeout.as_secs(),
                            state: describe(),
                        });
                    }
                }
            }
            if start.elapsed() >= timeout {
                return Err(DockerError::Unhealthy {
                    name: name.to_owned(),
                    after: timeout.as_secs(),
                    timeout: timeout.as_secs(),
                    state: describe(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
