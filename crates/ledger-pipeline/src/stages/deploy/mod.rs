//! The `deploy` stage: run the manifest's digests in an environment, or restore.
//!
//! Order of operations, each a guarantee:
//! 1. the gate passes and the manifest verified (it is the only source of images);
//! 2. every reference is a digest, never a tag; every image is present (pulled by
//!    digest from the registry when needed) and its revision label equals the SHA;
//!    all of this before any container is touched;
//! 3. the environment's lease is held, so deploys to one environment never overlap;
//! 4. what ran before is stopped but kept; the new containers must become healthy;
//!    on failure they are removed and the previous ones started again;
//! 5. the outcome, pass or fail, is recorded, and the lease released.

use crate::config::{Config, Environment, Service, Target};
use crate::error::Error;
use crate::record::Recorded;
use crate::record::{Draft, Recorder};
use crate::release::lease::{self, Lease};
use crate::run::Passed;
use crate::trigger::ReplayOf;
use ledger_core::predicate::{
    self, Container, DeployFailure, DeploymentPredicate, Input, Outcome, Runner, SwarmService,
};
use ledger_core::EnvName;
use ledger_core::{ArtifactKind, ArtifactRef, GitSha, Stage, Subject};
use ledger_docker::labels;
use ledger_docker::{ContainerInfo, Engine};
use ledger_verify::evidence::Artifact;
use std::collections::BTreeMap;
use std::time::Duration;
use time::OffsetDateTime;

mod containers;
mod preflight;
mod swarm;

pub use preflight::{
    check_contract, check_revisions, check_runner, ensure_present, labelled_release,
    manifest_images, running_release, ManifestImage,
};

/// How a deploy runs.
#[derive(Debug, Clone)]
pub struct DeployRequest {
    pub sha: GitSha,
    pub environment: String,
    pub runner: Runner,
    /// How long to wait for another deploy's lease.
    pub lease_wait: Duration,
    /// Set when this deploy runs a stored release again (replay, rollback).
    pub replay: Option<ReplayOf>,
    /// Set when this deploy promotes a release from the environment before.
    pub promotion: Option<crate::trigger::PromotionOf>,
    /// The process environment, for secret values (never recorded).
    pub env: BTreeMap<String, String>,
}

/// What a replay's deploy kept of the release that ran before it: its containers,
/// stopped but not removed, so that a failed smoke can start them again
/// ([`crate::release::restore`]).
#[derive(Debug, Default)]
pub struct Kept {
    /// The previous release's containers (stopped); empty when nothing ran.
    pub previous: Vec<ContainerInfo>,
    /// The containers this deploy started (ids), when it passed.
    pub started: Vec<String>,
}

/// Runs `deploy` for `req.sha` into `req.environment`; what ran before is removed
/// once the new containers are healthy.
pub async fn run_deploy(
    rec: &Recorder<'_>,
    engine: &Engine,
    config: &Config,
    req: &DeployRequest,
    passed: Passed,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Recorded, Error> {
    run_deploy_with(rec, engine, config, req, passed, false, progress)
        .await
        .map(|(recorded, _)| recorded)
}

/// [`run_deploy`], keeping what ran before (stopped) after a passing deploy when
/// `keep_previous`: a replay restores it if its smoke fails, or removes it.
#[tracing::instrument(level = "debug", skip_all, fields(stage = "deploy", sha = %req.sha, env = %req.environment))]
pub async fn run_deploy_with(
    rec: &Recorder<'_>,
    engine: &Engine,
    config: &Config,
    req: &DeployRequest,
    passed: Passed,
    keep_previous: bool,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(Recorded, Kept), Error> {
    let gate = passed.expect(Stage::Deploy, &req.sha)?;
    let env_config = config.environment(&req.environment)?;
    check_runner(rec.policy, &req.environment, &req.runner)?;
    if let Some(rule) = rec.policy.promotion(&req.environment) {
        if req.promotion.is_none() && req.replay.is_none() {
            let at = format!("/environments/{}/promotion", req.environment);
            let reason = ledger_policy::Reason {
                rule: at.clone(),
                artifact: None,
                found: None,
                required: None,
                message: format!(
                    "releases enter `{}` only by promotion from `{}`: run `ledger promote {} --to {}`",
                    req.environment, rule.from, req.sha, req.environment
                ),
            };
            return Err(Error::denied("deploy".into(), req.sha, at, vec![reason]));
        }
    }
    check_contract(env_config, &req.env)?;
    let Some(manifest) = gate.artifacts.get(&Stage::Publish) else {
        return Err(Error::GateLacksEvidence {
            gate: Stage::Deploy,
            needs: Stage::Publish,
            consequence: "there is no manifest to deploy",
        });
    };
    let ready = manifest_images(manifest)?;
    let infos = ensure_present(engine, &ready, progress).await?;
    check_revisions(&req.sha, &ready, &infos)?;
    let held = lease::acquire(
        rec.store,
        &req.environment,
        &holder(&req.runner),
        req.sha.as_str(),
        Duration::from_secs(env_config.lease_ttl_seconds),
        req.lease_wait,
    )
    .await?;
    // A promotion links the evidence it relied on in the environment before.
    let mut inputs = gate.inputs.clone();
    if let Some(p) = &req.promotion {
        inputs.extend([p.deployment.clone(), p.smoke.clone()]);
    }
    let plan = Plan {
        config,
        env_config,
        inputs: &inputs,
        manifest,
        ready: &ready,
        lease: &held,
        keep_previous,
        progress,
    };
    let result = deploy_holding_lease(rec, engine, req, &plan, progress).await;
    let released = lease::release(rec.store, &held).await;
    let recorded = result?;
    released?;
    Ok(recorded)
}

/// What a deploy works from once its checks have passed and its lease is held.
struct Plan<'a> {
    config: &'a Config,
    env_config: &'a Environment,
    inputs: &'a [Input],
    manifest: &'a Artifact,
    ready: &'a [ManifestImage],
    lease: &'a Lease,
    /// Keep what ran before (stopped) after a passing deploy.
    keep_previous: bool,
    progress: &'a (dyn Fn(&str) + Sync),
}

async fn deploy_holding_lease(
    rec: &Recorder<'_>,
    engine: &Engine,
    req: &DeployRequest,
    plan: &Plan<'_>,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(Recorded, Kept), Error> {
    let draft = Draft::new(
        rec,
        Stage::Deploy,
        req.sha,
        &req.runner,
        plan.inputs.to_vec(),
    );
    let env_name = EnvName::parse(&req.environment)?;
    let clock = std::time::Instant::now();
    let attempt = rec
        .store
        .next_attempt_in(ArtifactKind::Deployment, &req.sha, Some(env_name))
        .await?;
    let r = ArtifactRef::new(ArtifactKind::Deployment, req.sha, attempt).in_env(Some(env_name));

    let rolled = match plan.env_config.target {
        Target::Containers => containers::swap(engine, req, plan, &r, progress).await?,
        Target::Swarm => swarm::roll_out(engine, req, plan, &r, progress).await?,
    };
    let Rolled {
        previous_release,
        containers,
        services,
        failure,
        restored,
        kept,
    } = rolled;
    let result = if failure.is_some() {
        Outcome::Fail
    } else {
        Outcome::Pass
    };
    let mut predicate = DeploymentPredicate {
        header: draft.header(attempt, OffsetDateTime::now_utc(), result),
        environment: req.environment.clone(),
        engine: Some(engine.endpoint().to_owned()),
        manifest: plan.manifest.input(),
        services,
        containers,
        previous_release,
        duration_ms: u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX),
        replay: req.replay.is_some(),
        rollback_from: None,
        promotion: None,
        lease: Some(recorded_lease(plan.lease)),
        failure: failure.as_ref().map(|why| DeployFailure {
            message: why.clone(),
            restored,
        }),
    };
    let predicate_containers = predicate.containers.len();
    mark(req, &mut predicate)?;
    let mut subjects = vec![Subject::git(&req.sha)];
    subjects.extend(
        plan.ready
            .iter()
            .map(|i| Subject::image(&i.name, &i.digest)),
    );
    let r = record(rec, r, subjects, predicate).await?;
    let summary = match (&failure, restored) {
        (None, _) => format!(
            "{} container(s) running in {}",
            predicate_containers, req.environment
        ),
        (Some(why), true) => format!("failed and restored the previous release: {why}"),
        (Some(why), false) => format!("failed: {why}"),
    };
    Ok((Recorded { r, result, summary }, kept))
}

/// What a deploy did on the engine, whichever its target.
struct Rolled {
    /// The SHA that ran before.
    previous_release: Option<GitSha>,
    /// What runs now (empty when it failed).
    containers: Vec<Container>,
    /// Swarm services created or updated (empty for containers, and on failure).
    services: Vec<SwarmService>,
    failure: Option<String>,
    /// Whether what ran before runs again after a failure.
    restored: bool,
    kept: Kept,
}

/// The labels that tie what a deploy starts to its evidence: SHA, environment,
/// image, attempt, evidence key, project.
fn evidence_labels(
    req: &DeployRequest,
    config: &Config,
    image: &ManifestImage,
    r: &ArtifactRef,
) -> BTreeMap<String, String> {
    BTreeMap::from([
        (labels::SHA.to_owned(), req.sha.to_string()),
        (labels::ENV.to_owned(), req.environment.clone()),
        (labels::IMAGE.to_owned(), image.name.clone()),
        (labels::ATTEMPT.to_owned(), r.attempt.to_string()),
        (labels::EVIDENCE.to_owned(), r.key()),
        (labels::MANAGED.to_owned(), "true".to_owned()),
        (labels::PROJECT.to_owned(), config.repository.clone()),
    ])
}

/// A service's variables, its secrets' values from the deploy's own environment.
fn service_env(req: &DeployRequest, service: &Service) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = service
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for secret in &service.secrets {
        env.push((
            secret.clone(),
            req.env.get(secret).cloned().unwrap_or_default(),
        ));
    }
    env
}

/// Who holds an environment's lease: the runner's host and its run id (or process).
pub(crate) fn holder(runner: &Runner) -> String {
    format!(
        "{}/{}",
        runner.host,
        runner
            .run_id
            .clone()
            .unwrap_or_else(|| std::process::id().to_string())
    )
}

pub(crate) fn recorded_lease(held: &Lease) -> predicate::Lease {
    predicate::Lease {
        holder: held.holder.clone(),
        acquired_at: held.acquired_at,
        expires_at: held.expires_at,
        takeover: held.takeover_of.is_some(),
    }
}

/// Marks the predicate as part of a replay, rollback or promotion.
fn mark(req: &DeployRequest, p: &mut DeploymentPredicate) -> Result<(), Error> {
    if let Some(replay) = &req.replay {
        replay.mark_deployment(p);
    }
    if let Some(promotion) = &req.promotion {
        p.promotion = Some(promotion.promotion()?);
    }
    Ok(())
}

/// Writes the deployment at `r`, or at the next free attempt when another deploy of
/// this SHA (to another environment) took the number.
async fn record(
    rec: &Recorder<'_>,
    r: ArtifactRef,
    subjects: Vec<Subject>,
    predicate: DeploymentPredicate,
) -> Result<ArtifactRef, Error> {
    match rec.write(&r, subjects.clone(), &predicate).await {
        Ok(_) => Ok(r),
        Err(Error::Store(ledger_store::StoreError::AlreadyExists { .. })) => {
            let (r, _) = rec
                .write_next_in(r.kind, &r.sha, r.env, subjects, |attempt| {
                    let mut p = predicate.clone();
                    p.header.attempt = attempt;
                    p
                })
                .await?;
            Ok(r)
        }
        Err(e) => Err(e),
    }
}
