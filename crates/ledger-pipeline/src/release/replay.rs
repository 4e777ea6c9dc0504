//! Replay and rollback: run a stored release again from its digest manifest.
//!
//! Both take a SHA whose images were built and published earlier and run `deploy`,
//! `smoke` and `decide` again as new attempts whose predicates name the manifest they
//! replayed and carry `replay: true`. Rollback adds the promote-history rule (only to
//! a SHA whose latest decision is `promote`) and records the SHA that was running.
//!
//! The order is the release manager's validation chain; each step is reported as it passes and
//! the first that fails explains itself ([`Error::At`]): SHA shape (the caller parsed
//! it) → promoted (rollback only) → the stored chain verifies and passes the policy's
//! `replay` gate → every digest present → revision labels equal the SHA → deploy →
//! smoke → decision. Nothing on this path can build an image: this module never calls
//! the build stage, and the real-engine tests count images and build evidence to prove
//! it stays that way. The caller passes the configuration the release runs under
//! ([`super::released_config`]); a smoke that fails restores what ran before
//! ([`super::restore`]).

use crate::config::{Config, Environment};
use crate::error::Error;
use crate::record::Recorded;
use crate::record::Recorder;
use crate::release::restore;
use crate::run;
use crate::stages::decide::{run_decide, DecideOutcome, DecideRequest, Decision};
use crate::stages::deploy::{
    self, check_revisions, ensure_present, manifest_images, DeployRequest, Kept,
};
use crate::stages::smoke::run_smoke;
use crate::trigger::ReplayOf;
use ledger_core::predicate::{Input, Outcome, Runner};
use ledger_core::EnvName;
use ledger_core::{GitSha, Stage};
use ledger_docker::Engine;
use ledger_verify::evidence::{Artifact, Evidence};
use ledger_verify::gate::{self, GateReport};
use ledger_verify::history::{rollback_target, RollbackTarget};
use std::collections::BTreeMap;
use std::time::Duration;
use time::OffsetDateTime;

/// Replay or rollback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Replay,
    Rollback,
}

pub use crate::release::step::Step;

/// A replay or rollback to run.
#[derive(Debug, Clone)]
pub struct ReplayRequest {
    pub mode: Mode,
    pub sha: GitSha,
    pub environment: String,
    pub runner: Runner,
    pub lease_wait: Duration,
    /// The process environment, for secret values (never recorded).
    pub env: BTreeMap<String, String>,
}

/// What a replay or rollback did.
#[derive(Debug, Clone)]
pub struct ReplayOutcome {
    pub deploy: Recorded,
    /// `None` when the deploy failed (its previous release was restored).
    pub smoke: Option<Recorded>,
    pub decision: Option<DecideOutcome>,
    /// For a rollback: the SHA that was running before.
    pub rollback_from: Option<GitSha>,
    /// When the smoke failed: the deployment that restored the release before.
    pub restored: Option<Recorded>,
}

impl ReplayOutcome {
    /// Whether every stage passed and the decision is promote.
    pub fn promoted(&self) -> bool {
        self.deploy.result == Outcome::Pass
            && self
                .smoke
                .as_ref()
                .is_some_and(|s| s.result == Outcome::Pass)
            && self
                .decision
                .as_ref()
                .is_some_and(|d| d.decision == Decision::Promote)
    }
}

/// Verifies the stored chain against the policy's `replay` gate. Evidence that does
/// not verify is exit 4 (tampering is not a missing prerequisite); a rule that does
/// not hold is a denial.
async fn check_chain(rec: &Recorder<'_>, sha: &GitSha) -> Result<GateReport, Error> {
    let mut evidence = Evidence::new(rec.store, rec.policy);
    let gate = rec.policy.replay();
    let (_, invalid) =
        gate::gather(&mut evidence, sha, gate.requires.iter().map(|r| r.stage)).await?;
    if let Some((_, (key, problems))) = invalid.into_iter().next() {
        return Err(Error::EvidenceInvalid { key, problems });
    }
    let report = gate::check(
        &mut evidence,
        "replay",
        "/replay",
        &gate,
        sha,
        OffsetDateTime::now_utc(),
    )
    .await?;
    if !report.allowed() {
        return Err(Error::Denied(Box::new(report)));
    }
    Ok(report)
}

/// The SHA the engine runs in `environment` for this project, if any.
async fn running_sha(
    engine: &Engine,
    config: &Config,
    environment: &str,
) -> Result<Option<GitSha>, Error> {
    let containers = engine
        .containers(&[
            (ledger_docker::labels::PROJECT, config.repository.as_str()),
            (ledger_docker::labels::ENV, environment),
        ])
        .await?;
    let running: Vec<_> = containers.into_iter().filter(|c| c.running).collect();
    deploy::running_release(&running, environment)
}

/// Runs a replay or rollback of `req.sha`; `step` hears each step that passed.
///
/// The steps run in the module's validation order; each is its own function below so
/// the order reads here and every step's failure names the step it belongs to.
#[tracing::instrument(level = "debug", skip_all, fields(mode = ?req.mode, sha = %req.sha, env = %req.environment))]
pub async fn run(
    rec: &Recorder<'_>,
    engine: &Engine,
    config: &Config,
    req: &ReplayRequest,
    step: &(dyn Fn(Step, &str) + Sync),
    progress: &(dyn Fn(&str) + Sync),
) -> Result<ReplayOutcome, Error> {
    let sha = req.sha;
    let env_config = validate(rec, config, req)?;
    if req.mode == Mode::Rollback {
        check_promoted(rec, &sha, step).await?;
    }
    let (env, manifest) = resolve_manifest(rec, req, step).await?;
    check_images(engine, &sha, &manifest, step, progress).await?;
    let rollback_from = match req.mode {
        Mode::Replay => None,
        Mode::Rollback => Some(running_sha(engine, config, &req.environment).await?),
    };
    let replay = ReplayOf {
        manifest: Input {
            key: manifest.r().key(),
            sha256: manifest.digest(),
        },
        rollback_from,
    };
    let (deployed, kept) = deploy_again(rec, engine, config, req, env, &replay, progress).await?;
    let mut outcome = ReplayOutcome {
        deploy: deployed,
        smoke: None,
        decision: None,
        rollback_from: rollback_from.flatten(),
        restored: None,
    };
    if outcome.deploy.result != Outcome::Pass {
        return Ok(outcome);
    }
    step(Step::Deploy, &outcome.deploy.summary);

    let smoked = smoke_again(rec, env_config, req, env, &replay, progress).await?;
    let passed = smoked.result == Outcome::Pass;
    if passed {
        step(Step::Smoke, &smoked.summary);
    }
    outcome.smoke = Some(smoked);

    // A failed smoke still gets its decision recorded: a reject is evidence too. The
    // release before is restored (or its kept containers removed) whatever the
    // decision's fate, so a store error cannot leave the rejected release running.
    let decided = decide_again(rec, req, env, replay).await;
    let how = restore::Restore {
        environment: &req.environment,
        replayed: sha,
        runner: &req.runner,
        lease_wait: req.lease_wait,
    };
    outcome.restored = restore::settle(rec, engine, config, &how, kept, passed, progress).await?;
    let decided = decided?;
    if decided.decision == Decision::Promote {
        step(Step::Decide, &decided.decision_key);
    }
    outcome.decision = Some(decided);
    Ok(outcome)
}

/// Validates the request before any evidence is read: the environment is configured,
/// the runner may deploy there and the environment's contract (its required
/// variables) holds. Returns the environment's configuration for the smoke step.
fn validate<'c>(
    rec: &Recorder<'_>,
    config: &'c Config,
    req: &ReplayRequest,
) -> Result<&'c Environment, Error> {
    let env_config = config.environment(&req.environment)?;
    deploy::check_runner(rec.policy, &req.environment, &req.runner)?;
    deploy::check_contract(env_config, &req.env)?;
    Ok(env_config)
}

/// Rollback only: the target SHA's latest decision must be `promote`, so a rollback
/// can only return to a release that was once accepted.
async fn check_promoted(
    rec: &Recorder<'_>,
    sha: &GitSha,
    step: &(dyn Fn(Step, &str) + Sync),
) -> Result<(), Error> {
    let mut evidence = Evidence::new(rec.store, rec.policy);
    let target = rollback_target(&mut evidence, sha)
        .await
        .map_err(|e| Error::from(e).at(Step::Promoted))?;
    match target {
        RollbackTarget::Promoted(key) => step(Step::Promoted, &key),
        RollbackTarget::Refused(report) => {
            return Err(Error::Denied(report).at(Step::Promoted));
        }
    }
    Ok(())
}

/// Verifies the stored chain against the `replay` gate, then passes the `deploy` gate
/// to find the verified publish manifest whose digests are replayed: the manifest is
/// the only source of what to run, so replay never needs a build.
async fn resolve_manifest(
    rec: &Recorder<'_>,
    req: &ReplayRequest,
    step: &(dyn Fn(Step, &str) + Sync),
) -> Result<(EnvName, Artifact), Error> {
    let sha = req.sha;
    let chain = check_chain(rec, &sha)
        .await
        .map_err(|e| e.at(Step::Chain))?;
    let env = EnvName::parse(&req.environment)?;
    let manifest = run::begin(rec, Stage::Deploy, &sha, Some(env))
        .await
        .and_then(|passed| {
            passed
                .relied_on(Stage::Publish, "there is no manifest to replay")
                .cloned()
        })
        .map_err(|e| e.at(Step::Chain))?;
    step(
        Step::Chain,
        &format!(
            "{} artifact(s) verified; manifest {}",
            chain.verdict.used.len(),
            manifest.r().key()
        ),
    );
    Ok((env, manifest))
}

/// Makes sure every digest of the manifest is present on the engine (pulling by
/// digest when needed) and that each image's revision label names the SHA, before
/// any container is touched.
async fn check_images(
    engine: &Engine,
    sha: &GitSha,
    manifest: &Artifact,
    step: &(dyn Fn(Step, &str) + Sync),
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(), Error> {
    let images = manifest_images(manifest).map_err(|e| e.at(Step::Digests))?;
    let infos = ensure_present(engine, &images, progress)
        .await
        .map_err(|e| e.at(Step::Digests))?;
    step(
        Step::Digests,
        &images
            .iter()
            .map(|i| format!("{} {}", i.name, i.digest))
            .collect::<Vec<_>>()
            .join(", "),
    );
    check_revisions(sha, &images, &infos).map_err(|e| e.at(Step::Revisions))?;
    step(Step::Revisions, &format!("{} image(s)", images.len()));
    Ok(())
}

/// Deploys the manifest's digests as a new `deploy` attempt marked as a replay,
/// keeping what ran before (stopped) until the smoke has spoken.
async fn deploy_again(
    rec: &Recorder<'_>,
    engine: &Engine,
    config: &Config,
    req: &ReplayRequest,
    env: EnvName,
    replay: &ReplayOf,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(Recorded, Kept), Error> {
    let sha = req.sha;
    let deploy_req = DeployRequest {
        sha,
        environment: req.environment.clone(),
        runner: req.runner.clone(),
        lease_wait: req.lease_wait,
        replay: Some(replay.clone()),
        promotion: None,
        env: req.env.clone(),
    };
    let passed = run::begin(rec, Stage::Deploy, &sha, Some(env))
        .await
        .map_err(|e| e.at(Step::Deploy))?;
    deploy::run_deploy_with(rec, engine, config, &deploy_req, passed, true, progress)
        .await
        .map_err(|e| e.at(Step::Deploy))
}

/// Smoke-tests the replayed deployment as a new `smoke` attempt.
async fn smoke_again(
    rec: &Recorder<'_>,
    env_config: &Environment,
    req: &ReplayRequest,
    env: EnvName,
    replay: &ReplayOf,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Recorded, Error> {
    let sha = req.sha;
    let passed = run::begin(rec, Stage::Smoke, &sha, Some(env))
        .await
        .map_err(|e| e.at(Step::Smoke))?;
    run_smoke(
        rec,
        env_config,
        sha,
        &req.runner,
        passed,
        Some(replay),
        progress,
    )
    .await
    .map_err(|e| e.at(Step::Smoke))
}

/// Records the decision over the replayed chain as a new `decide` attempt.
async fn decide_again(
    rec: &Recorder<'_>,
    req: &ReplayRequest,
    env: EnvName,
    replay: ReplayOf,
) -> Result<DecideOutcome, Error> {
    let sha = req.sha;
    let passed = run::begin(rec, Stage::Decide, &sha, Some(env))
        .await
        .map_err(|e| e.at(Step::Decide))?;
    run_decide(
        rec,
        passed,
        DecideRequest {
            sha,
            runner: req.runner.clone(),
            replay: Some(replay),
        },
    )
    .await
    .map_err(|e| e.at(Step::Decide))
}
