//! One environment of `ledger.toml`: where it deploys (its engine, containers or
//! Swarm services), what runs there and the smoke checks that prove it.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// An environment: the services it runs and the checks that prove them.
#[derive(Debug, Clone, Deserialize)]
pub struct Environment {
    pub name: String,
    /// How long a deploy lease on this environment lasts if its holder dies without
    /// releasing it; another deploy may take it over after that.
    #[serde(default = "default_lease_ttl_seconds")]
    pub lease_ttl_seconds: u64,
    /// The engine this environment deploys to (`unix://…`, `tcp://host:port`);
    /// `None`: `DOCKER_HOST`, else the local socket. See [`Environment::engine_target`].
    #[serde(default)]
    pub engine: Option<String>,
    /// The folder with `ca.pem`, `cert.pem` and `key.pem` for a `tcp://` engine;
    /// absolute once loaded (`~/…` under the home folder, a relative path under the
    /// repository root).
    #[serde(default)]
    pub engine_certs: Option<PathBuf>,
    /// The host address published ports bind to (an IP address, checked on load).
    #[serde(default = "default_publish_address")]
    pub publish_address: String,
    /// CA certificates (PEM) this environment's `https://` checks trust besides the
    /// system roots; absolute once loaded.
    #[serde(default)]
    pub checks_ca: Option<PathBuf>,
    /// What a deploy creates: containers, or Swarm services.
    #[serde(default)]
    pub target: Target,
    /// How Swarm services roll out (`target = "swarm"` only).
    #[serde(default)]
    pub swarm: SwarmConfig,
    /// Variables a deploy here needs in its own environment (the contract), by name;
    /// checked before anything starts, never recorded with their values.
    #[serde(default)]
    pub required_env: Vec<String>,
    #[serde(default)]
    pub services: Vec<Service>,
    #[serde(default)]
    pub checks: Vec<Check>,
}

fn default_lease_ttl_seconds() -> u64 {
    15 * 60
}

/// What a deploy to an environment creates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// One container per service on the engine, swapped by `ledger` itself.
    #[default]
    Containers,
    /// One Swarm service per image, updated in place by the swarm (replicas,
    /// rolling update, the swarm's own rollback on failure).
    Swarm,
}

/// How a Swarm environment's services roll out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct SwarmConfig {
    /// `stop-first` (the default) or `start-first` (a new task healthy before the old
    /// one stops; with host-mode ports, only where another node has the port free).
    #[serde(default = "default_update_order")]
    pub update_order: UpdateOrder,
    /// Tasks updated at once; 0: all.
    #[serde(default = "default_update_parallelism")]
    pub update_parallelism: u64,
    /// How long each new task is watched for failure before the update goes on.
    #[serde(default = "default_monitor_seconds")]
    pub monitor_seconds: u64,
}

impl Default for SwarmConfig {
    fn default() -> Self {
        SwarmConfig {
            update_order: default_update_order(),
            update_parallelism: default_update_parallelism(),
            monitor_seconds: default_monitor_seconds(),
        }
    }
}

/// The order of a Swarm rolling update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateOrder {
    StartFirst,
    StopFirst,
}

/// Docker's own default: a task published in host mode holds its port, so a new
/// task can start first only on another node.
fn default_update_order() -> UpdateOrder {
    UpdateOrder::StopFirst
}

fn default_update_parallelism() -> u64 {
    1
}

fn default_monitor_seconds() -> u64 {
    5
}

pub(super) fn default_publish_address() -> String {
    "127.0.0.1".into()
}

impl Environment {
    /// The engine to connect to. Whether the endpoint and its files are usable is
    /// checked when connecting, on the runner that deploys: a runner that only
    /// builds need not hold production's client key.
    pub fn engine_target(&self) -> ledger_docker::EngineTarget {
        ledger_docker::EngineTarget {
            endpoint: self.engine.clone(),
            certs: self.engine_certs.clone(),
        }
    }
}

/// A path from `ledger.toml`: `~/…` under the home folder, a relative path under
/// the repository root `root`, an absolute one as it is.
pub(super) fn resolve_path(root: &Path, path: &Path) -> PathBuf {
    match path.strip_prefix("~") {
        Ok(rest) => std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default()
            .join(rest),
        Err(_) => root.join(path),
    }
}

/// One image running in an environment.
#[derive(Debug, Clone, Deserialize)]
pub struct Service {
    pub image: String,
    #[serde(default)]
    pub ports: Vec<Port>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub secrets: Vec<String>,
    #[serde(default = "default_health_timeout")]
    pub health_timeout_seconds: u64,
    /// Tasks of the service (`target = "swarm"` only; one container otherwise).
    #[serde(default = "default_replicas")]
    pub replicas: u64,
}

fn default_replicas() -> u64 {
    1
}

fn default_health_timeout() -> u64 {
    60
}

/// A published port (host side bound to the environment's `publish_address`).
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Port {
    pub container: u16,
    pub host: u16,
}

/// An HTTP smoke check.
#[derive(Debug, Clone, Deserialize)]
pub struct Check {
    pub name: String,
    #[serde(default = "default_method")]
    pub method: String,
    pub url: String,
    #[serde(default = "default_status")]
    pub expect_status: u16,
    #[serde(default)]
    pub body_contains: Option<String>,
    #[serde(default)]
    pub max_latency_ms: Option<f64>,
    #[serde(default = "default_retries")]
    pub retries: u32,
    #[serde(default = "default_interval")]
    pub interval_ms: u64,
}

fn default_method() -> String {
    "GET".into()
}
fn default_status() -> u16 {
    200
}
fn default_retries() -> u32 {
    20
}
fn default_interval() -> u64 {
    250
}
