//! `ledger-docker`: the Docker Engine, through `bollard`, and nothing else.
//!
//! The only crate that talks to an engine or a registry. It knows images, digests, labels and
//! containers, never evidence or policy: the pipeline decides *what* to build or run,
//! this crate does it against the real engine (the local socket or `DOCKER_HOST`) and
//! reports facts back. Engine behaviour this code relies on, measured:
//! creating a container does not pull, so images are pulled by digest first; a push
//! reply carries no digest, so `RepoDigests` is read from an inspect after the push;
//! API versions differ between engines, and bollard's requests name none, so each
//! engine answers in its own (a test holds bollard to that: `Engine::connect_to`);
//! servers in `FROM scratch` images ignore SIGTERM unless the container runs with
//! `init`.

mod context;
pub mod credentials;
mod engine;
pub mod labels;
pub mod registry;

pub use context::{normalize_tar, tar_context};
pub use credentials::{Credential, Secret};
pub use engine::{
    BuildSpec, BuiltImage, ContainerInfo, Engine, EngineTarget, ImageInfo, Rollout, RunSpec,
    ServiceInfo, ServicePlan, TaskInfo,
};
pub use registry::attach::{Attached, AttachedEnvelope, Attestation};
pub use registry::{DigestRef, Registry};

/// Why an engine operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error("Docker engine at {endpoint} is unreachable: {source}")]
    Unreachable {
        endpoint: String,
        #[source]
        source: bollard::errors::Error,
    },
    /// An engine endpoint (an environment's `engine` in `ledger.toml`) that cannot
    /// be used as written: checked before any connection.
    #[error("engine {endpoint}: {message}")]
    Endpoint { endpoint: String, message: String },
    #[error("Docker engine at {endpoint} failed to {op}: {source}")]
    Engine {
        endpoint: String,
        op: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error("building image {image} failed: {message}")]
    Build { image: String, message: String },
    #[error("pushing {reference} failed: {message}")]
    Push { reference: String, message: String },
    #[error("image {reference} is not available: {message}")]
    Missing { reference: String, message: String },
    /// An image reference that cannot be used as written (`registry::Registry::resolve`,
    /// `attach`): checked before any request.
    #[error("image reference {reference}: {message}")]
    Reference { reference: String, message: String },
    #[error("cannot read build context {path}: {message}")]
    Context { path: String, message: String },
    #[error("cannot create an HTTP client for the registry: {0}")]
    HttpClient(String),
    /// The registry wants credentials that were not found, or refused the ones
    /// given. `what`: the operation (`push 127.0.0.1:5000/shop/api:…`).
    #[error("registry {host} refused to {what}: {message}")]
    Unauthorized {
        host: String,
        what: String,
        message: String,
    },
    /// The Docker configuration holding the registry's credentials could not be read
    /// (a malformed `config.json`, a credential helper that failed).
    #[error("cannot read the credentials for registry {host}: {message}")]
    Credentials { host: String, message: String },
    /// The registry's API could not be used: no answer, a TLS certificate that does
    /// not verify, an unexpected status.
    #[error("registry {host}: {message}")]
    Registry { host: String, message: String },
    /// The registry (or something between it and this machine) served bytes that are
    /// not what their digest names: a blob or a manifest asked for by digest. They
    /// are not used.
    #[error("registry {host}: {message}")]
    Integrity { host: String, message: String },
    /// `after`: when it was given up on; `timeout`: the health timeout allowed. A
    /// container can fail (exit, report unhealthy) long before its timeout.
    #[error(
        "container {name} was not healthy after {after} s (health timeout {timeout} s): {state}"
    )]
    Unhealthy {
        name: String,
        after: u64,
        timeout: u64,
        state: String,
    },
}

impl DockerError {
    /// What to do about it, shown apart from the message; `None` when the message
    /// says all there is.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            DockerError::Unreachable { endpoint, .. } => format!(
                "start the engine at {endpoint}, or name the one to use: an environment's `engine` in ledger.toml, else DOCKER_HOST; over TLS, engine_certs must hold a client certificate it accepts and the CA its own certificate verifies against"
            ),
            DockerError::Endpoint { .. } => {
                "fix the environment's `engine` / `engine_certs` in ledger.toml (docs/configuration.md, \"Engines\")".into()
            }
            DockerError::Reference { .. } => {
                "name the image as host[:port]/name:tag or host[:port]/name@sha256:<digest>".into()
            }
            DockerError::Push { .. } => "check that the registry is running and reachable".into(),
            DockerError::Missing { .. } => {
                "it may have been pruned, or the registry is down".into()
            }
            DockerError::Unauthorized { host, .. } => format!(
                "log in with `docker login {host}` (in CI: docker/login-action, or `docker login` with the CI's registry variables) as an account allowed to do this, then run again"
            ),
            DockerError::Credentials { host, .. } => format!(
                "check the Docker configuration ($DOCKER_CONFIG/config.json, else ~/.docker/config.json) and its credential helper, or log in again with `docker login {host}`"
            ),
            DockerError::Registry { host, .. } => format!(
                "check that the registry is running and reachable; a registry with its own CA needs it in {}/{host}/ca.crt",
                registry::tls::certs_base().display()
            ),
            DockerError::Integrity { host, .. } => format!(
                "the bytes were not used; find out what changed them: the registry's storage, or a proxy or mirror on the way to {host}"
            ),
            _ => return None,
        })
    }

    /// Whether the failure is the work's own (a build that fails, a container that
    /// never gets healthy) rather than the engine or registry being unavailable.
    pub fn is_work_failure(&self) -> bool {
        matches!(
            self,
            DockerError::Build { .. } | DockerError::Unhealthy { .. }
        )
    }
}
