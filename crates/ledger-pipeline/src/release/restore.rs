//! After a replay or rollback: keep its release, or restore the one before it.
//!
//! A replay's deploy keeps the previous release's containers stopped instead of
//! removing them ([`deploy::run_deploy_with`]). When the replay's smoke passes they
//! are removed, as a deploy removes them; when it fails, the replayed containers are
//! removed and the previous ones started again, as a deploy does when a health check
//! fails, so a failed replay never leaves a rejected release running in place of one
//! that worked.
//!
//! The restore is evidence too, or `ledger status` (which reads the store) would say
//! the rejected release runs: a new deployment attempt of the restored release,
//! copied from the deployment that first started those very containers (its manifest,
//! inputs and containers), marked `replay: true` and `rollback_from` the replayed SHA,
//! since that is what happened: the environment went back from it. The restored
//! release's own deployment must verify before anything is touched; when it does not,
//! nothing is restored and the error says so. When nothing ran before the replay,
//! there is nothing to restore: the replayed release stays, and `ledger status`
//! raises the rejected-release alarm until someone acts. The restore takes the
//! environment's lease again and restores only if the replayed containers are still
//! what runs: a deploy that replaced them meanwhile wins, and the kept ones go.

use super::lease;
use crate::config::Config;
use crate::error::Error;
use crate::record::{Draft, Recorded, Recorder};
use crate::stages::deploy::{self, Kept};
use ledger_core::predicate::{DeploymentPredicate, Outcome, Runner};
use ledger_core::{ArtifactKind, ArtifactRef, EnvName, GitSha, Stage, Subject};
use ledger_docker::{labels, Engine};
use ledger_verify::evidence::Evidence;
use std::time::Duration;
use time::OffsetDateTime;

/// Who restores, where, after replaying what.
#[derive(Debug)]
pub struct Restore<'a> {
    pub environment: &'a str,
    /// The replayed SHA, whose smoke failed.
    pub replayed: GitSha,
    pub runner: &'a Runner,
    pub lease_wait: Duration,
}

/// Removes the kept previous containers when the replay `passed`; otherwise
/// restores them and records it. Returns the restore's deployment, if one happened.
pub async fn settle(
    rec: &Recorder<'_>,
    engine: &Engine,
    config: &Config,
    how: &Restore<'_>,
    kept: Kept,
    passed: bool,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Option<Recorded>, Error> {
    if passed || kept.previous.is_empty() {
        for c in &kept.previous {
            engine.remove(&c.id).await?;
        }
        return Ok(None);
    }
    let (r, original) = previous_deployment(rec, &kept).await?;
    let env_config = config.environment(how.environment)?;
    let held = lease::acquire(
        rec.store,
        how.environment,
        &deploy::holder(how.runner),
        r.sha.as_str(),
        Duration::from_secs(env_config.lease_ttl_seconds),
        how.lease_wait,
    )
    .await?;
    let result = async {
        if !still_replayed(engine, config, how.environment, &kept).await? {
            progress("another deploy replaced the replayed release meanwhile; nothing to restore");
            for c in &kept.previous {
                engine.remove(&c.id).await?;
            }
            return Ok(None);
        }
        restore_holding_lease(rec, engine, how, &kept, (r, original), &held, progress)
            .await
            .map(Some)
    }
    .await;
    let released = lease::release(rec.store, &held).await;
    let recorded = result?;
    released?;
    Ok(recorded)
}

/// Whether the environment still runs exactly the containers the replay started (no
/// other deploy replaced them between the replay's lease and the restore's).
async fn still_replayed(
    engine: &Engine,
    config: &Config,
    environment: &str,
    kept: &Kept,
) -> Result<bool, Error> {
    let mut running: Vec<String> = engine
        .containers(&[
            (labels::PROJECT, config.repository.as_str()),
            (labels::ENV, environment),
        ])
        .await?
        .into_iter()
        .filter(|c| c.running)
        .map(|c| c.id)
        .collect();
    let mut started = kept.started.clone();
    running.sort();
    started.sort();
    Ok(running == started)
}

/// The verified deployment that started the kept containers, named by their
/// `dev.ledger.evidence` label.
async fn previous_deployment(
    rec: &Recorder<'_>,
    kept: &Kept,
) -> Result<(ArtifactRef, DeploymentPredicate), Error> {
    let unknown = |why: &str| Error::EvidenceInvalid {
        key: kept
            .previous
            .first()
            .map_or("(no container)".to_owned(), |c| c.name.clone()),
        problems: vec![format!(
            "the release that ran before cannot be restored with evidence: {why}"
        )],
    };
    let key = kept
        .previous
        .iter()
        .find_map(|c| c.labels.get(labels::EVIDENCE))
        .ok_or_else(|| unknown("its containers name no deployment evidence"))?;
    let r = ArtifactRef::parse_key(key)
        .filter(|r| r.kind == ArtifactKind::Deployment)
        .ok_or_else(|| unknown("its containers name no deployment evidence"))?;
    let mut evidence = Evidence::new(rec.store, rec.policy);
    let a = evidence.check(&r).await?.require(&r.key())?;
    Ok((r, a.predicate_as::<DeploymentPredicate>()?.clone()))
}

/// Removes the replayed containers, starts the kept ones and records the restore.
async fn restore_holding_lease(
    rec: &Recorder<'_>,
    engine: &Engine,
    how: &Restore<'_>,
    kept: &Kept,
    (r, original): (ArtifactRef, DeploymentPredicate),
    held: &lease::Lease,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Recorded, Error> {
    let clock = std::time::Instant::now();
    progress(&format!(
        "smoke of the replay failed; restoring {} as it ran before",
        r.sha
    ));
    for id in &kept.started {
        engine.remove(id).await?;
    }
    for c in &kept.previous {
        engine.start(&c.id).await?;
    }
    let ids: Vec<&str> = kept.previous.iter().map(|c| c.id.as_str()).collect();
    let containers: Vec<_> = original
        .containers
        .iter()
        .filter(|c| ids.contains(&c.container_id.as_str()))
        .cloned()
        .collect();
    let mut subjects = vec![Subject::git(&r.sha)];
    subjects.extend(
        containers
            .iter()
            .map(|c| Subject::image(&c.image, &c.digest)),
    );
    let draft = Draft::new(
        rec,
        Stage::Deploy,
        r.sha,
        how.runner,
        original.header.inputs.clone(),
    );
    let env = EnvName::parse(how.environment)?;
    let finished = OffsetDateTime::now_utc();
    let duration_ms = u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);
    let count = containers.len();
    let (restored, _) = rec
        .write_next_in(
            ArtifactKind::Deployment,
            &r.sha,
            Some(env),
            subjects,
            |attempt| DeploymentPredicate {
                header: draft.header(attempt, finished, Outcome::Pass),
                environment: how.environment.to_owned(),
                engine: Some(engine.endpoint().to_owned()),
                manifest: original.manifest.clone(),
                services: Vec::new(),
                containers: containers.clone(),
                previous_release: Some(how.replayed),
                duration_ms,
                replay: true,
                rollback_from: Some(Some(how.replayed)),
                promotion: None,
                lease: Some(deploy::recorded_lease(held)),
                failure: None,
            },
        )
        .await?;
    Ok(Recorded {
        r: restored,
        result: Outcome::Pass,
        summary: format!(
            "restored {} ({count} container(s)) in {}",
            r.sha, how.environment
        ),
    })
}
