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
    #[tracing::instrument(level = "debug", name = "engine.connect", skip_all, fields(endpoint))]
    pub async fn connect() -> Result<Engine, DockerError> {
        let endpoint =
            std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
        tracing::Span::current().record("endpoint", without_userinfo(&endpoint));
        let unreachable = |source| DockerError::Unreachable {
            endpoint: endpoint.clone(),
            source,
        };
        logged(
            async {
                let docker = Docker::connect_with_defaults().map_err(unreachable)?;
                let docker = docker.negotiate_version().await.map_err(unreachable)?;
                docker.ping().await.map_err(unreachable)?;
                Ok(Engine {
                    docker,
                    endpoint: endpoint.clone(),
                })
            }
            .await,
            |_| tracing::debug!("connected"),
        )
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
    #[tracing::instrument(level = "debug", name = "engine.version", skip_all)]
    pub async fn version(&self) -> Result<String, DockerError> {
        logged(
            self.docker
                .version()
                .await
                .map_err(self.failed("report its version"))
                .map(|v| {
                    format!(
                        "{} (API {})",
                        v.version.unwrap_or_default(),
                        v.api_version.unwrap_or_default()
                    )
                }),
            |v| tracing::debug!(version = %v, "answered"),
        )
    }

    /// Builds `spec`, calling `progress` with each line of build output.
    #[tracing::instrument(
        level = "debug",
        name = "engine.build",
        skip_all,
        fields(tag = %spec.tag, context = %spec.context_dir.display(), dockerfile = %spec.dockerfile)
    )]
    pub async fn build(
        &self,
        spec: &BuildSpec,
        progress: impl FnMut(&str),
    ) -> Result<BuiltImage, DockerError> {
        logged(
            self.build_unlogged(spec, progress).await,
            |b| tracing::debug!(image_id = %b.image_id, "built"),
        )
    }

    async fn build_unlogged(
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
    #[tracing::instrument(level = "debug", name = "engine.push", skip_all, fields(repo = repo, tag = tag))]
    pub async fn push(
        &self,
        repo: &str,
        tag: &str,
        progress: impl FnMut(&str),
    ) -> Result<String, DockerError> {
        logged(
            self.push_unlogged(repo, tag, progress).await,
            |d| tracing::debug!(digest = %d, "pushed"),
        )
    }

    async fn push_unlogged(
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
    #[tracing::instrument(level = "debug", name = "engine.inspect_image", skip_all, fields(reference = reference))]
    pub async fn inspect_image(&self, reference: &str) -> Result<Option<ImageInfo>, DockerError> {
        logged(self.inspect_image_unlogged(reference).await, |i| match i {
            Some(i) => tracing::debug!(id = %i.id, "found"),
            None => tracing::debug!("absent"),
        })
    }

    async fn inspect_image_unlogged(
        &self,
        reference: &str,
    ) -> Result<Option<ImageInfo>, DockerError> {
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
    #[tracing::instrument(level = "debug", name = "engine.pull", skip_all, fields(reference = reference))]
    pub async fn pull(&self, reference: &str) -> Result<(), DockerError> {
        logged(self.pull_unlogged(reference).await, |_| {
            tracing::debug!("pulled")
        })
    }

    async fn pull_unlogged(&self, reference: &str) -> Result<(), DockerError> {
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
    #[tracing::instrument(level = "debug", name = "engine.remove_image", skip_all, fields(reference = reference))]
    pub async fn remove_image(&self, reference: &str) -> Result<(), DockerError> {
        let options = bollard::query_parameters::RemoveImageOptionsBuilder::default()
            .force(true)
            .build();
        let result = match self
            .docker
            .remove_image(reference, Some(options), None)
            .await
        {
            Ok(_) => Ok("removed"),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok("absent already"),
            Err(e) => Err(self.failed(format!("remove image {reference}"))(e)),
        };
        logged(result, |outcome| tracing::debug!("{outcome}")).map(|_| ())
    }

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

    /// Images carrying every label in `labels` (e.g. a revision), as the engine lists
    /// them: id, repository digests, labels and size.
    #[tracing::instrument(level = "debug", name = "engine.images", skip_all, fields(labels = ?labels))]
    pub async fn images(&self, labels: &[(&str, &str)]) -> Result<Vec<ImageInfo>, DockerError> {
        logged(self.images_unlogged(labels).await, |list| {
            tracing::debug!(images = list.len(), "listed")
        })
    }

    async fn images_unlogged(
        &self,
        labels: &[(&str, &str)],
    ) -> Result<Vec<ImageInfo>, DockerError> {
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

/// Logs (at debug) the outcome of the current span's operation: `ok` describes a
/// success; a failure is logged by kind only, since its message names the endpoint.
fn logged<T>(result: Result<T, DockerError>, ok: impl FnOnce(&T)) -> Result<T, DockerError> {
    match &result {
        Ok(value) => ok(value),
        Err(e) => {
            let kind = match e {
                DockerError::Unreachable { .. } => "unreachable",
                DockerError::Engine { .. } => "engine error",
                DockerError::Build { .. } => "build failed",
                DockerError::Push { .. } => "push failed",
                DockerError::Missing { .. } => "image missing",
                DockerError::Context { .. } => "bad build context",
                DockerError::Unhealthy { .. } => "unhealthy",
                DockerError::HttpClient(_) => "no HTTP client",
            };
            tracing::debug!(error = kind, "failed");
        }
    }
    result
}

/// `endpoint` without any `user:password@` part, for logs.
fn without_userinfo(endpoint: &str) -> String {
    match endpoint.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            format!("{scheme}://{host}{path}")
        }
        None => endpoint.to_owned(),
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

#[cfg(test)]
mod tests {
    use super::without_userinfo;

    #[test]
    fn logged_endpoints_lose_their_credentials_only() {
        assert_eq!(
            without_userinfo("tcp://ci:s3cret@docker.internal:2376/v1"),
            "tcp://docker.internal:2376/v1"
        );
        assert_eq!(
            without_userinfo("ssh://deploy@build-host"),
            "ssh://build-host"
        );
        assert_eq!(
            without_userinfo("unix:///var/run/docker.sock"),
            "unix:///var/run/docker.sock"
        );
        assert_eq!(without_userinfo("npipe"), "npipe");
    }
}
