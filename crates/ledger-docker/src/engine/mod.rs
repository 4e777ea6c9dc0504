//! The engine operations `ledger` needs, each returning plain facts: connecting and
//! the engine's version here, where it is in [`endpoint`], image operations in
//! [`images`], container operations in [`containers`], Swarm services in
//! [`services`]. Every operation runs in a debug span and logs its outcome by
//! kind only (an error's text names the endpoint, which may carry credentials).

mod containers;
mod endpoint;
mod images;
mod services;

pub use containers::{ContainerInfo, RunSpec};
pub use endpoint::EngineTarget;
use endpoint::Route;
pub use images::{BuildSpec, BuiltImage, ImageInfo};
pub use services::{Rollout, ServiceInfo, ServicePlan, TaskInfo};

use crate::DockerError;
use bollard::Docker;

/// bollard's read/write timeout for each request to a configured engine, the same
/// as its default for `DOCKER_HOST` (builds and pulls stream, so it bounds silence,
/// not the whole operation).
const TIMEOUT_SECONDS: u64 = 120;

/// A connected engine.
#[derive(Clone, Debug)]
pub struct Engine {
    docker: Docker,
    endpoint: String,
}

impl Engine {
    /// Connects to `DOCKER_HOST` or the local socket and negotiates the API version.
    pub async fn connect() -> Result<Engine, DockerError> {
        Engine::connect_to(&EngineTarget::default_engine()).await
    }

    /// Connects to `target` (checked first: see [`EngineTarget`]), negotiates the API
    /// version and pings it.
    #[tracing::instrument(level = "debug", name = "engine.connect", skip_all, fields(endpoint))]
    pub async fn connect_to(target: &EngineTarget) -> Result<Engine, DockerError> {
        let endpoint = target.shown();
        tracing::Span::current().record("endpoint", &endpoint);
        let unreachable = |source| DockerError::Unreachable {
            endpoint: endpoint.clone(),
            source,
        };
        logged(
            async {
                let docker = match target.route()? {
                    Route::Default => Docker::connect_with_defaults(),
                    Route::Unix(path) => Docker::connect_with_unix(
                        &path,
                        TIMEOUT_SECONDS,
                        bollard::API_DEFAULT_VERSION,
                    ),
                    Route::Http(address) => Docker::connect_with_http(
                        &address,
                        TIMEOUT_SECONDS,
                        bollard::API_DEFAULT_VERSION,
                    ),
                    Route::Ssh(address) => Docker::connect_with_ssh(
                        &address,
                        TIMEOUT_SECONDS,
                        bollard::API_DEFAULT_VERSION,
                        None,
                    ),
                    Route::Tls { address, files } => Docker::connect_with_ssl(
                        &address,
                        &files.key,
                        &files.cert,
                        &files.ca,
                        TIMEOUT_SECONDS,
                        bollard::API_DEFAULT_VERSION,
                    ),
                }
                .map_err(unreachable)?;
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
                DockerError::Unauthorized { .. } => "unauthorized",
                DockerError::Credentials { .. } => "credentials unreadable",
                DockerError::Registry { .. } => "registry error",
                DockerError::Endpoint { .. } => "engine endpoint refused",
                DockerError::Reference { .. } => "bad image reference",
                DockerError::Integrity { .. } => "registry served other bytes",
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
