//! `ledger.toml`: what to build, where to deploy, what to smoke-test.
//!
//! Kept apart from the policy on purpose: the policy is what auditors read (rules and
//! keys); this file is operational detail. It is read as TOML, checked against
//! `schemas/config.v1.schema.json` (so every mistake names its path), then checked for
//! references a schema cannot follow (a service naming an unknown image).

mod environment;

pub use environment::{Check, Environment, Port, Service, SwarmConfig, Target, UpdateOrder};

use environment::{default_publish_address, resolve_path};
use ledger_core::schema::{self, Document, SchemaError};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The file name, at the repository root.
pub const CONFIG_FILE: &str = "ledger.toml";

/// The environment a deploy goes to when none is named.
pub const DEFAULT_ENV: &str = "production";

/// Why `ledger.toml` was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}; create it (see docs/configuration.md)")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not valid TOML: {message}")]
    Toml { path: String, message: String },
    #[error("{path} does not match its schema: {source}")]
    Schema { path: String, source: SchemaError },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub repository: String,
    pub source: String,
    #[serde(default)]
    pub registry: Option<String>,
    pub images: Vec<ImageConfig>,
    pub environments: Vec<Environment>,
    #[serde(default)]
    pub prune: PruneConfig,
    /// The folder the file was read from; build contexts are folders of the commit's
    /// tree relative to it (exported from git objects, never read from this folder).
    #[serde(skip)]
    pub root: PathBuf,
}

/// Limits of `ledger prune`.
#[derive(Debug, Clone, Deserialize)]
pub struct PruneConfig {
    /// Refuse to delete more images than this in one run unless forced.
    #[serde(default = "default_prune_threshold")]
    pub threshold: usize,
    /// Only images of SHAs built at least this many days ago are candidates.
    #[serde(default = "default_prune_min_age_days")]
    pub min_age_days: u64,
}

impl Default for PruneConfig {
    fn default() -> Self {
        PruneConfig {
            threshold: default_prune_threshold(),
            min_age_days: default_prune_min_age_days(),
        }
    }
}

fn default_prune_threshold() -> usize {
    50
}

fn default_prune_min_age_days() -> u64 {
    14
}

/// An image to build.
#[derive(Debug, Clone, Deserialize)]
pub struct ImageConfig {
    pub name: String,
    pub context: String,
    #[serde(default = "default_dockerfile")]
    pub dockerfile: String,
}

fn default_dockerfile() -> String {
    "Dockerfile".into()
}

impl Config {
    /// Reads `ledger.toml` from `root`.
    pub fn load(root: &Path) -> Result<Config, ConfigError> {
        let path = root.join(CONFIG_FILE);
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        Config::parse(&text, root, &shown)
    }

    /// Parses configuration text; `root` anchors relative paths, `shown` names it.
    pub fn parse(text: &str, root: &Path, shown: &str) -> Result<Config, ConfigError> {
        if text.len() > ledger_core::MAX_JSON_BYTES {
            return Err(ConfigError::Invalid {
                path: shown.into(),
                message: "the file is over the 4 MiB limit".into(),
            });
        }
        let value: serde_json::Value = toml::from_str(text).map_err(|e| ConfigError::Toml {
            path: shown.into(),
            message: e.to_string(),
        })?;
        schema::validate(Document::Config, &value).map_err(|source| ConfigError::Schema {
            path: shown.into(),
            source,
        })?;
        let mut config: Config =
            serde_json::from_value(value).map_err(|e| ConfigError::Invalid {
                path: shown.into(),
                message: e.to_string(),
            })?;
        config.root = root.to_path_buf();
        for env in &mut config.environments {
            for path in [&mut env.engine_certs, &mut env.checks_ca]
                .into_iter()
                .flatten()
            {
                *path = resolve_path(root, path);
            }
        }
        config.check(shown)?;
        Ok(config)
    }

    fn check(&self, shown: &str) -> Result<(), ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: shown.into(),
            message,
        };
        let mut seen = std::collections::BTreeSet::new();
        for (i, image) in self.images.iter().enumerate() {
            if !seen.insert(&image.name) {
                return Err(invalid(format!(
                    "/images/{i}/name: image {:?} is listed twice",
                    image.name
                )));
            }
            if Path::new(&image.context)
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
            {
                return Err(invalid(format!(
                    "/images/{i}/context: {:?} leaves the repository",
                    image.context
                )));
            }
        }
        let mut envs = std::collections::BTreeSet::new();
        for (e, env) in self.environments.iter().enumerate() {
            if !envs.insert(&env.name) {
                return Err(invalid(format!(
                    "/environments/{e}/name: environment {:?} is listed twice",
                    env.name
                )));
            }
            if env.publish_address.parse::<std::net::IpAddr>().is_err() {
                return Err(invalid(format!(
                    "/environments/{e}/publish_address: {:?} is not an IP address (for example 127.0.0.1, 0.0.0.0 or ::)",
                    env.publish_address
                )));
            }
            self.check_target(e, env).map_err(invalid)?;
            for (s, service) in env.services.iter().enumerate() {
                if !self.images.iter().any(|i| i.name == service.image) {
                    return Err(invalid(format!(
                        "/environments/{e}/services/{s}/image: no image named {:?} in [[images]]",
                        service.image
                    )));
                }
            }
        }
        Ok(())
    }

    /// What a Swarm environment needs and a container environment cannot have.
    fn check_target(&self, e: usize, env: &Environment) -> Result<(), String> {
        if env.target == Target::Containers {
            if let Some(s) = env.services.iter().position(|s| s.replicas != 1) {
                return Err(format!(
                    "/environments/{e}/services/{s}/replicas: more than one replica needs target = \"swarm\"; a container environment runs one container per service"
                ));
            }
            return Ok(());
        }
        if self.registry.is_none() {
            return Err(format!(
                "/environments/{e}/target: a Swarm environment needs a `registry`: its nodes pull each image by digest"
            ));
        }
        if env.publish_address != default_publish_address() {
            return Err(format!(
                "/environments/{e}/publish_address: a Swarm publishes ports in host mode on every address of the node running the task; publish_address applies to target = \"containers\" only"
            ));
        }
        Ok(())
    }

    /// The environment called `name`.
    pub fn environment(&self, name: &str) -> Result<&Environment, ConfigError> {
        self.environments
            .iter()
            .find(|e| e.name == name)
            .ok_or_else(|| ConfigError::Invalid {
                path: CONFIG_FILE.into(),
                message: format!(
                    "no environment {name:?}; configured: {}",
                    self.environments
                        .iter()
                        .map(|e| e.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
    }

    /// The repository (without tag) an image is built and pushed as.
    pub fn image_repo(&self, image: &str) -> String {
        match &self.registry {
            Some(r) => format!("{r}/{}/{image}", self.repository),
            None => format!("{}/{image}", self.repository),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::environment::resolve_path;
    use super::*;

    const GOOD: &str = r#"
repository = "shop"
source = "https://github.com/acme/shop"
registry = "127.0.0.1:5000"

[[images]]
name = "api"
context = "service"

[[environments]]
name = "production"
  [[environments.services]]
  image = "api"
  ports = [{ container = 8080, host = 18080 }]
  [[environments.checks]]
  name = "health"
  url = "http://127.0.0.1:18080/health"
"#;

    #[test]
    fn parses_with_defaults() {
        let c = Config::parse(GOOD, Path::new("/repo"), "ledger.toml").unwrap();
        assert_eq!(c.images[0].dockerfile, "Dockerfile");
        assert_eq!(c.image_repo("api"), "127.0.0.1:5000/shop/api");
        let env = c.environment("production").unwrap();
        assert_eq!(env.checks[0].method, "GET");
        assert_eq!(env.checks[0].expect_status, 200);
        assert_eq!(env.services[0].health_timeout_seconds, 60);
        assert_eq!(env.publish_address, "127.0.0.1");
        assert_eq!(env.engine_target(), Default::default());
        assert!(c
            .environment("staging")
            .unwrap_err()
            .to_string()
            .contains("configured: production"));
    }

    #[test]
    fn engine_files_resolve_against_the_repository_or_home() {
        let text = GOOD.replace(
            "name = \"production\"",
            "name = \"production\"\nengine = \"tcp://10.0.0.5:2376\"\nengine_certs = \"certs/prod\"\nchecks_ca = \"/etc/ca.pem\"\npublish_address = \"::\"",
        );
        let c = Config::parse(&text, Path::new("/repo"), "ledger.toml").unwrap();
        let env = c.environment("production").unwrap();
        let target = env.engine_target();
        assert_eq!(target.endpoint.as_deref(), Some("tcp://10.0.0.5:2376"));
        assert_eq!(target.certs.as_deref(), Some(Path::new("/repo/certs/prod")));
        assert_eq!(env.checks_ca.as_deref(), Some(Path::new("/etc/ca.pem")));
        assert_eq!(env.publish_address, "::");
        let home = resolve_path(Path::new("/repo"), Path::new("~/.docker/prod"));
        assert!(
            home.ends_with(".docker/prod") && !home.starts_with("/repo"),
            "{}",
            home.display()
        );
    }

    #[test]
    fn swarm_environments_need_a_registry_and_only_they_have_replicas() {
        let swarm = GOOD.replace(
            "name = \"production\"",
            "name = \"production\"\ntarget = \"swarm\"\nswarm = { update_order = \"start-first\", update_parallelism = 2 }",
        );
        let c = Config::parse(&swarm, Path::new("/r"), "ledger.toml").unwrap();
        let env = c.environment("production").unwrap();
        assert_eq!(env.target, Target::Swarm);
        assert_eq!(env.swarm.update_order, UpdateOrder::StartFirst);
        assert_eq!(SwarmConfig::default().update_order, UpdateOrder::StopFirst);
        assert_eq!(env.swarm.update_parallelism, 2);
        assert_eq!(env.swarm.monitor_seconds, 5);
        assert_eq!(env.services[0].replicas, 1);
        let cases = [
            (
                swarm.replace("registry = \"127.0.0.1:5000\"", ""),
                "needs a `registry`",
            ),
            (
                swarm.replace(
                    "target = \"swarm\"",
                    "target = \"swarm\"\npublish_address = \"0.0.0.0\"",
                ),
                "host mode on every address",
            ),
            (
                GOOD.replace("image = \"api\"", "image = \"api\"\n  replicas = 3"),
                "/environments/0/services/0/replicas: more than one replica needs target",
            ),
            (swarm.replace("start-first", "sideways"), "update_order"),
        ];
        for (text, needle) in cases {
            let e = Config::parse(&text, Path::new("/r"), "ledger.toml")
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{needle}: {e}");
        }
    }

    #[test]
    fn errors_name_the_place() {
        let cases = [
            (
                GOOD.replace("name = \"api\"", "name = \"API\""),
                "/images/0/name",
            ),
            (
                GOOD.replace("http://127", "ftp://127"),
                "/environments/0/checks/0/url",
            ),
            (
                GOOD.replace(
                    "name = \"production\"",
                    "name = \"production\"\npublish_address = \"0.0.0\"",
                ),
                "publish_address",
            ),
            (
                GOOD.replace("image = \"api\"", "image = \"web\""),
                "no image named \"web\"",
            ),
            (
                GOOD.replace("context = \"service\"", "context = \"../outside\""),
                "leaves the repository",
            ),
            (format!("{GOOD}\nunknown = 1\n"), "unknown"),
            ("repository = ".to_string(), "not valid TOML"),
        ];
        for (text, needle) in cases {
            let e = Config::parse(&text, Path::new("/r"), "ledger.toml")
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{needle}: {e}");
        }
    }
}
