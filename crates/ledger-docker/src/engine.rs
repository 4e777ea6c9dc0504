//! The engine operations `ledger` needs, each returning plain facts.

use crate::DockerError;
use bollard::models::{ContainerCreateBody, HealthStatusEnum, HostConfig, PortBinding};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateContainerOptionsBuilder, CreateImageOptionsBuilder,
    ListContainersOptionsBuilder, ListImagesOptionsBuilder, PushImageOptionsBuilder,
    RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use bollard::Docker;
use futures::StreamExt;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

/// A connected engine.
#[derive(Clone)]
pub struct Engine {
    docker: Docker,
    endpoint: String,
}

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildSpec {
    pub context_dir: PathBuf,
    pub dockerfile: String,
    /// Local tag, e.g. `127.0.0.1:5000/demo/api:<sha>`.
    pub tag: String,
    pub labels: BTreeMap<String, String>,
}

/// A built image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    /// The engine's content-addressed image id, `sha256:…`.
    pub image_id: String,
}

/// Facts about an image on the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    pub id: String,
    pub repo_digests: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub size: i64,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub name: String,
    /// An image id or `repo@sha256:…`; never a tag.
    pub image: String,
    pub labels: BTreeMap<String, String>,
    /// `(container port, host port)`; host ports bind to 127.0.0.1 only.
    pub ports: Vec<(u16, u16)>,
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
    /// Connects to `DOCKER_HOST` or the local socket and negotiates the API version.
    pub async fn connect() -> Result<Engine, DockerError> {
        let endpoint =
            std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
        let unreachable = |source| DockerError::Unreachable {
            endpoint: endpoint.clone(),
            source,
        };
        let docker = Docker::connect_with_defaults().map_err(unreachable)?;
        let docker = docker.negotiate_version().await.map_err(unreachable)?;
        docker.ping().await.map_err(unreachable)?;
        Ok(Engine { docker, endpoint })
    }

    /// Where the engine is.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn failed(
        &self,
        op: impl Into<String>,
    ) -> impl FnOnce(bollard::errors::Error) -> DockerError + '_ {
        let op = op.into();
        move |source| {
            if is_connection_error(&source) {
                DockerError::Unreachable {
                    endpoint: self.endpoint.clone(),
                    source,
                }
            } else {
                DockerError::Engine {
                    endpoint: self.endpoint.clone(),
                    op,
                    source,
                }
            }
        }
    }

    /// The engine's version string, e.g. `28.2.2 (API 1.50)`.
    pub async fn version(&self) -> Result<String, DockerError> {
        let v = self
            .docker
            .version()
            .await
            .map_err(self.failed("report its version"))?;
        Ok(format!(
            "{} (API {})",
            v.version.unwrap_or_default(),
            v.api_version.unwrap_or_default()
        ))
    }

    /// Builds `spec`, calling `progress` with each line of build output.
    pub async fn build(
        &self,
        spec: &BuildSpec,
        mut progress: impl FnMut(&str),
    ) -> Result<BuiltImage, DockerError> {
        let tar = crate::tar_context(&spec.context_dir)?;
        let labels: HashMap<String, String> = spec.labels.clone().into_iter().collect();
        let options = BuildImageOptionsBuilder::default()
            .dockerfile(&spec.dockerfile)
            .t(&spec.tag)
            .labels(&labels)
            .rm(true)
            .forcerm(true)
            .build();
        let mut stream =
            self.docker
                .build_image(options, None, Some(bollard::body_full(tar.into())));
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                        return Err(DockerError::Build {
                            image: spec.tag.clone(),
                            message: detail,
                        });
                    }
                    if let Some(line) = info
                        .stream
                        .as_deref()
                        .map(str::trim_end)
                        .filter(|l| !l.is_empty())
                    {
                        progress(line);
                    }
                }
                Err(e) if is_connection_error(&e) => return Err(self.failed("build")(e)),
                Err(e) => {
                    return Err(DockerError::Build {
                        image: spec.tag.clone(),
                        message: e.to_string(),
                    })
                }
            }
        }
        let info = self
            .inspect_image(&spec.tag)
            .await?
            .ok_or_else(|| DockerError::Build {
                image: spec.tag.clone(),
                message: "the engine reported success but has no such image".into(),
            })?;
        Ok(BuiltImage { image_id: info.id })
    }

    /// Pushes `repo:tag` and returns the `repo@sha256:…` digest the registry assigned
    /// (read from `RepoDigests`, since the push reply carries none).
    pub async fn push(
        &self,
        repo: &str,
        tag: &str,
        mut progress: impl FnMut(&str),
    ) -> Result<String, DockerError> {
        let reference = format!("{repo}:{tag}");
        let push_err = |message: String| DockerError::Push {
            reference: reference.clone(),
            message,
        };
        let options = PushImageOptionsBuilder::default().tag(tag).build();
        let mut stream = self.docker.push_image(repo, Some(options), None);
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(msg) = info.error_detail.and_then(|d| d.message) {
                        return Err(push_err(msg));
                    }
                    if let Some(status) = info.status {
                        progress(&status);
                    }
                }
                Err(e) => return Err(push_err(e.to_string())),
            }
        }
        let info = self
            .inspect_image(&reference)
            .await?
            .ok_or_else(|| push_err("the image vanished after the push".into()))?;
        let prefix = format!("{repo}@");
        info.repo_digests
            .into_iter()
            .find(|d| d.starts_with(&prefix))
            .ok_or_else(|| {
                push_err("the engine recorded no digest for the pushed repository".into())
            })
    }

    /// Facts about an image, or `None` if the engine does not have it.
    pub async fn inspect_image(&self, reference: &str) -> Result<Option<ImageInfo>, DockerError> {
        match self.docker.inspect_image(reference).await {
            Ok(i) => Ok(Some(ImageInfo {
                id: i.id.unwrap_or_default(),
                repo_digests: i.repo_digests.unwrap_or_default(),
                labels: i
                    .config
                    .and_then(|c| c.labels)
                    .unwrap_or_default()
                    .into_iter()
                    .collect(),
                size: i.size.unwrap_or(0),
            })),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(self.failed(format!("inspect image {reference}"))(e)),
        }
    }

    /// Pulls `repo@sha256:…` from its registry.
    pub async fn pull(&self, reference: &str) -> Result<(), DockerError> {
        let options = CreateImageOptionsBuilder::default()
            .from_image(reference)
            .build();
        let mut stream = self.docker.create_image(Some(options), None, None);
        while let Some(item) = stream.next().await {
            let missing = |message: String| DockerError::Missing {
                reference: reference.to_owned(),
                message,
            };
            match item {
                Ok(info) => {
                    if let Some(msg) = info.error_detail.and_then(|d| d.message) {
                        return Err(missing(msg));
                    }
                }
                Err(e) if is_connection_error(&e) => return Err(self.failed("pull")(e)),
                Err(e) => return Err(missing(e.to_string())),
            }
        }
        Ok(())
    }

    /// Removes an image (forcefully, with its tags).
    pub async fn remove_image(&self, reference: &str) -> Result<(), DockerError> {
        let options = bollard::query_parameters::RemoveImageOptionsBuilder::default()
            .force(true)
            .build();
        match self
            .docker
            .remove_image(reference, Some(options), None)
            .await
        {
            Ok(_)
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(self.failed(format!("remove image {reference}"))(e)),
        }
    }

    /// Creates and starts a container; returns its id.
    pub async fn run(&self, spec: &RunSpec) -> Result<String, DockerError> {
        let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
        for (container, host) in &spec.ports {
            bindings.insert(
                format!("{container}/tcp"),
                Some(vec![PortBinding {
                    host_ip: Some("127.0.0.1".into()),
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
    pub async fn start(&self, id: &str) -> Result<(), DockerError> {
        self.docker
            .start_container(id, None::<bollard::query_parameters::StartContainerOptions>)
            .await
            .map_err(self.failed(format!("start container {id}")))
    }

    /// Stops a container (10 s grace), keeping it for a possible restore.
    pub async fn stop(&self, id: &str) -> Result<(), DockerError> {
        let options = StopContainerOptionsBuilder::default().t(10).build();
        match self.docker.stop_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304 | 404,
                ..
            }) => Ok(()),
            Err(e) => Err(self.failed(format!("stop container {id}"))(e)),
        }
    }

    /// Removes a container, stopping it first if needed.
    pub async fn remove(&self, id: &str) -> Result<(), DockerError> {
        let options = RemoveContainerOptionsBuilder::default().force(true).build();
        match self.docker.remove_container(id, Some(options)).await {
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(self.failed(format!("remove container {id}"))(e)),
        }
    }

    /// Containers (running or not) carrying every label in `labels`.
    pub async fn containers(
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

    /// Images carrying every label in `labels` (e.g. a revision), as the engine lists
    /// them: id, repository digests, labels and size.
    pub async fn images(&self, labels: &[(&str, &str)]) -> Result<Vec<ImageInfo>, DockerError> {
        let filters: HashMap<&str, Vec<String>> = HashMap::from([(
            "label",
            labels.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        )]);
        let options = ListImagesOptionsBuilder::default()
            .all(false)
            .filters(&filters)
            .build();
        let list = self
            .docker
            .list_images(Some(options))
            .await
            .map_err(self.failed("list images"))?;
        Ok(list
            .into_iter()
            .map(|i| ImageInfo {
                id: i.id,
                repo_digests: i.repo_digests,
                labels: i.labels.into_iter().collect(),
                size: i.size,
            })
            .collect())
    }

    /// Waits until the container is healthy (when its image has a health check) or
    /// has stayed running for a moment (when it has none).
    pub async fn wait_healthy(
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
                        seconds: start.elapsed().as_secs(),
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
                            seconds: start.elapsed().as_secs(),
                            state: describe(),
                        });
                    }
                }
            }
            if start.elapsed() >= timeout {
                return Err(DockerError::Unhealthy {
                    name: name.to_owned(),
                    seconds: timeout.as_secs(),
                    state: describe(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn is_connection_error(e: &bollard::errors::Error) -> bool {
    use bollard::errors::Error as E;
    matches!(
        e,
        E::HyperResponseError { .. }
            | E::IOError { .. }
            | E::RequestTimeoutError
            | E::HyperLegacyError { .. }
    )
}
