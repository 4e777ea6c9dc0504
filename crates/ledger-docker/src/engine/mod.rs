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
    /// Connects to `DOCKER_HOST` or the local socket and pings it.
    pub async fn connect() -> Result<Engine, DockerError> {
        Engine::connect_to(&EngineTarget::default_engine()).await
    }

    /// Connects to `target` (checked first: see [`EngineTarget`]) and pings it: one
    /// request, so that an engine that cannot be reached is said at once.
    ///
    /// The API version is not negotiated. bollard 0.21 sends every request without a
    /// version prefix (its URL join drops the `/v1.xx` it builds), so each engine
    /// answers in its own current version, old (20.10) and new (28.x) alike, and a
    /// negotiated version would change nothing it is asked. Negotiating costs an
    /// engine's `/version` (about 6 ms on Docker 28, which asks containerd and runs
    /// `runc` and `docker-init` for their versions), on the critical path of every
    /// `deploy`, against about 0.5 ms for `/_ping`. A test holds bollard to
    /// unversioned paths (`requests_carry_no_api_version`): if an upgrade starts
    /// sending one, that test fails and negotiation must come back.
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
    use super::{without_userinfo, Engine, EngineTarget};
    use std::io::{BufRead, BufReader, Write};
    use std::sync::{Arc, Mutex};

    /// An HTTP listener on loopback that notes the path of every request and answers
    /// each with `body`: what bollard actually sends, without an engine.
    fn recording_listener(body: &'static str) -> (u16, Arc<Mutex<Vec<String>>>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let paths = Arc::new(Mutex::new(Vec::new()));
        let seen = paths.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let seen = seen.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut writer = stream;
                    loop {
                        let mut request_line = String::new();
                        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                            return;
                        }
                        // Headers up to the blank line; these requests have no body.
                        let mut line = String::new();
                        while reader.read_line(&mut line).unwrap_or(0) > 2 {
                            line.clear();
                        }
                        let path = request_line.split(' ').nth(1).unwrap_or("").to_owned();
                        seen.lock().unwrap().push(path);
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nApi-Version: 1.41\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if writer.write_all(answer.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (port, paths)
    }

    /// Connecting is one ping, and no request names an API version: the engine
    /// answers in its own, which is why [`Engine::connect_to`] negotiates none. An
    /// upgrade of bollard that puts `/v1.xx` back in its paths fails this test.
    #[tokio::test]
    async fn requests_carry_no_api_version() {
        let (port, paths) = recording_listener(r#"{"Version":"20.10.24","ApiVersion":"1.41"}"#);
        let target = EngineTarget {
            endpoint: Some(format!("tcp://127.0.0.1:{port}")),
            certs: None,
        };
        let engine = Engine::connect_to(&target).await.unwrap();
        assert_eq!(*paths.lock().unwrap(), ["/_ping"], "connecting is one ping");
        assert_eq!(engine.version().await.unwrap(), "20.10.24 (API 1.41)");
        let paths = paths.lock().unwrap().clone();
        assert_eq!(paths, ["/_ping", "/version"]);
    }

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
