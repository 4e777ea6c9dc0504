//! Which engine each environment runs on, and connecting to it.
//!
//! Images are built on the runner's own engine (`DOCKER_HOST`, else the local
//! socket); each environment deploys to the engine its `engine` in `ledger.toml`
//! names, or that same default. Commands that look at several environments at once
//! (`status --drift`) connect to each distinct engine once ([`Placement`]).

use crate::config::Config;
use crate::error::Error;
use ledger_docker::{Engine, EngineTarget};

/// Connects to the container engine images are built on: `DOCKER_HOST`, else the
/// local socket.
pub async fn connect_engine() -> Result<Engine, Error> {
    Ok(Engine::connect().await?)
}

/// Connects to the engine environment `env` deploys to: its `engine` in
/// `ledger.toml`, else the one [`connect_engine`] finds.
pub async fn connect_environment_engine(config: &Config, env: &str) -> Result<Engine, Error> {
    let target = config.environment(env)?.engine_target();
    Ok(Engine::connect_to(&target).await?)
}

/// The engines of several environments, each distinct engine connected once.
#[derive(Debug)]
pub struct Placement {
    /// `(target, engine)`, in first-use order.
    engines: Vec<(EngineTarget, Engine)>,
    /// Environment name → index into `engines`.
    by_env: Vec<(String, usize)>,
}

impl Placement {
    /// Connects to the engine of each of `envs`: the configured environment's own,
    /// the default one for an environment `config` does not name (evidence of an
    /// environment removed from `ledger.toml` since).
    pub async fn connect<'a>(
        config: &Config,
        envs: impl IntoIterator<Item = &'a str>,
    ) -> Result<Placement, Error> {
        let mut placement = Placement {
            engines: Vec::new(),
            by_env: Vec::new(),
        };
        placement.add(config, envs).await?;
        Ok(placement)
    }

    /// The engine images are built on and every configured environment's engine
    /// (what `prune` looks at: copies are built on the one and pulled by the others).
    pub async fn connect_all(config: &Config) -> Result<Placement, Error> {
        let builder = EngineTarget::default();
        let engine = Engine::connect_to(&builder).await?;
        let mut placement = Placement {
            engines: vec![(builder, engine)],
            by_env: Vec::new(),
        };
        let envs: Vec<&str> = config
            .environments
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        placement.add(config, envs).await?;
        Ok(placement)
    }

    async fn add<'a>(
        &mut self,
        config: &Config,
        envs: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), Error> {
        for env in envs {
            if self.by_env.iter().any(|(e, _)| e == env) {
                continue;
            }
            let target = config
                .environments
                .iter()
                .find(|e| e.name == env)
                .map(crate::config::Environment::engine_target)
                .unwrap_or_default();
            let index = match self.engines.iter().position(|(t, _)| *t == target) {
                Some(i) => i,
                None => {
                    let engine = Engine::connect_to(&target).await?;
                    self.engines.push((target, engine));
                    self.engines.len() - 1
                }
            };
            self.by_env.push((env.to_owned(), index));
        }
        Ok(())
    }

    /// Every distinct engine, each once.
    pub fn engines(&self) -> impl Iterator<Item = &Engine> {
        self.engines.iter().map(|(_, e)| e)
    }

    /// The engine `env` runs on, when it was connected.
    pub fn engine_of(&self, env: &str) -> Option<&Engine> {
        self.by_env
            .iter()
            .find(|(e, _)| e == env)
            .map(|&(_, i)| &self.engines[i].1)
    }
}
