//! What an engine stage (`build`, `deploy`, `smoke`) prepares while its policy, key
//! and gate load: `ledger.toml`, the engine connection, and `build`'s contexts
//! exported from git.
//!
//! None of it reads or writes evidence, and none of it is looked at before the gate
//! has passed: a denied stage is reported as denied, never as an unreachable engine
//! or a broken `ledger.toml`, and its preparation is stopped (the connection
//! dropped; an export already running ends on the blocking pool, unread). Run after
//! the gate, these were most of an engine stage's own time: reaching the engine
//! asks its version (dockerd asks runc and docker-init theirs, several milliseconds
//! on the local engine) and pings it, and a `git archive` reads every file of a
//! context. Run here, they overlap the gate's reads and checks.

use ledger_core::{GitSha, Stage};
use ledger_pipeline::config::Config;
use ledger_pipeline::stages::build::{export_contexts, Exported};
use ledger_pipeline::{Engine, Error};
use std::path::PathBuf;

/// What a stage prepared, by stage.
pub enum Prepared {
    /// The default engine, and the contexts exported with the same `ledger.toml`
    /// the images are then built from.
    Build(Config, Engine, Exported),
    /// The environment's engine.
    Deploy(Config, Engine),
    /// `ledger.toml` alone: the smoke checks need no engine.
    Smoke(Config),
}

/// A preparation running as a task of its own; dropped before [`Ahead::take`],
/// it is stopped.
pub struct Ahead(Option<tokio::task::JoinHandle<Result<Prepared, Error>>>);

impl Ahead {
    /// Starts preparing `stage` for `sha` in the repository at `root`; `environment`
    /// is `deploy`'s. `None` for a stage that uses neither config nor engine, and for
    /// `build` until its SHA is known.
    pub fn start(
        root: PathBuf,
        stage: Stage,
        sha: Option<GitSha>,
        environment: &str,
    ) -> Option<Ahead> {
        let what = match (stage, sha) {
            (Stage::Build, Some(sha)) => Preparing::Build(sha),
            (Stage::Deploy, _) => Preparing::Deploy(environment.to_owned()),
            (Stage::Smoke, _) => Preparing::Smoke,
            _ => return None,
        };
        Some(Ahead(Some(tokio::spawn(prepare(root, what)))))
    }

    /// What was prepared, once it is; else the first failure in the order the
    /// stage needs them: `ledger.toml`, the engine, the export.
    pub async fn take(mut self) -> Result<Prepared, Error> {
        let task = self.0.take().expect("an Ahead is taken once");
        task.await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }
}

impl Drop for Ahead {
    fn drop(&mut self) {
        if let Some(task) = &self.0 {
            task.abort();
        }
    }
}

/// What a stage prepares, with what it needs for it.
enum Preparing {
    Build(GitSha),
    Deploy(String),
    Smoke,
}

async fn prepare(root: PathBuf, what: Preparing) -> Result<Prepared, Error> {
    let config = Config::load(&root)?;
    Ok(match what {
        Preparing::Build(sha) => {
            let exporting = tokio::task::spawn_blocking(move || {
                let exported = export_contexts(&config, &sha);
                (config, exported)
            });
            let (exported, engine) = tokio::join!(exporting, ledger_pipeline::connect_engine());
            let (config, exported) =
                exported.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
            Prepared::Build(config, engine?, exported?)
        }
        Preparing::Deploy(environment) => {
            let engine = ledger_pipeline::connect_environment_engine(&config, &environment).await?;
            Prepared::Deploy(config, engine)
        }
        Preparing::Smoke => Prepared::Smoke(config),
    })
}
