//! The `decide` stage: the release decision over the whole chain, and its timing.
//!
//! After its own gate, `decide` evaluates the policy's `release` rules against the
//! latest verified attempt of every stage and records `promote` or `reject` with one
//! reason per failed rule, then the timing of the chain (per stage start, end,
//! duration and attempt; the sum of stage times; the lead time from the commit stage
//! to the decision). Both artifacts are written either way: a reject is evidence too.
//! Beside the decision goes a SLSA VSA (PASSED or FAILED) about the manifest's images,
//! attached with the build's provenance to every image in a registry ([`slsa`]).

use crate::error::Error;
use crate::record::{Companion, Draft, Recorder, Written};
use crate::run::Passed;
use crate::stages::slsa::{self, Attachment, Release};
use ledger_core::attestation::{PROVENANCE_PREDICATE_TYPE, VSA_PREDICATE_TYPE};
use ledger_core::predicate::{
    self, DecisionPredicate, Input, Outcome, Runner, StageTime, TimingPredicate,
};
use ledger_core::{ArtifactKind, ArtifactRef, GitSha, Sha256Digest, Stage, Subject};
use ledger_policy::Reason;
use ledger_verify::evidence::{AnyPredicate, Artifact};
use ledger_verify::gate;
use serde::Serialize;
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// Promote or reject (the decision predicate's own type).
pub use ledger_core::predicate::Decision;

/// A request to decide.
#[derive(Debug, Clone)]
pub struct DecideRequest {
    pub sha: GitSha,
    pub runner: Runner,
    /// Set when the decision is part of a replay or rollback.
    pub replay: Option<crate::trigger::ReplayOf>,
}

/// What `decide` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct DecideOutcome {
    pub sha: GitSha,
    pub decision: Decision,
    pub reasons: Vec<Reason>,
    pub decision_key: String,
    pub timing_key: String,
    pub lead_time_ms: u64,
    /// The VSA written beside the decision and where it was attached; `None` when the
    /// chain had no release-candidate manifest.
    pub attestations: Option<Attestations>,
}

/// The decision's VSA: its key, and what attaching it (with the build's provenance)
/// to the release's images did; `attachment` is `None` when no image is in a registry.
#[derive(Debug, Clone, Serialize)]
pub struct Attestations {
    pub vsa_key: String,
    pub attachment: Option<Attachment>,
}

fn millis(d: time::Duration) -> u64 {
    u64::try_from(d.whole_milliseconds()).unwrap_or(0)
}

fn merge(mut a: Vec<Input>, b: Vec<Input>) -> Vec<Input> {
    for i in b {
        if !a.iter().any(|x| x.key == i.key) {
            a.push(i);
        }
    }
    a
}

/// Runs `decide` for `req.sha`.
#[tracing::instrument(level = "debug", skip_all, fields(stage = "decide", sha = %req.sha))]
pub async fn run_decide(
    rec: &Recorder<'_>,
    passed: Passed,
    req: DecideRequest,
) -> Result<DecideOutcome, Error> {
    let started_at = OffsetDateTime::now_utc();
    // Every other stage's latest attempt, as the gate gathered it (in the
    // environment it read): the release gate, the VSA's release and the timing
    // all use it, and the store is not read again for it.
    let (gate_report, gathered) = passed.expect_gathered(Stage::Decide, &req.sha)?;
    let release_gate = rec.policy.release();
    let release = gate::judge(
        "release",
        "/release",
        &release_gate,
        &req.sha,
        &gathered,
        started_at,
    );
    let (verified, _) = gathered;
    let decision = if release.allowed() {
        Decision::Promote
    } else {
        Decision::Reject
    };
    let draft = Draft {
        stage: Stage::Decide,
        sha: req.sha,
        runner: req.runner.clone(),
        inputs: merge(gate_report.inputs.clone(), release.inputs.clone()),
        started_at,
        policy_sha256: rec.policy.digest(),
        log_head: rec.store.seen_log_head(),
    };
    let facts = release_of(&verified, &req.sha);
    let finished_at = OffsetDateTime::now_utc();
    let reasons = release.verdict.reasons;
    let companion = facts
        .as_ref()
        .map(|f| {
            let passed = decision == Decision::Promote;
            slsa::vsa(f, &draft.inputs, &draft.policy_sha256, finished_at, passed)
        })
        .transpose()?;
    let (decision_ref, written) = write_decision(
        rec,
        &req,
        &draft,
        finished_at,
        decision,
        &reasons,
        companion,
    )
    .await?;
    let timing = write_timing(rec, &verified, &draft, finished_at, decision_ref).await;
    // One log entry names the decision, its VSA and the timing, all written without
    // one: two round trips fewer than an entry and a checkpoint each. The decision is
    // logged even when the timing could not be written.
    rec.log_and_checkpoint().await?;
    let (timing_key, lead_time_ms) = timing?;
    let attestations = match (facts, written) {
        (Some(release), Some(vsa)) => Some(attach_release(rec, &release, vsa).await),
        _ => None,
    };
    Ok(DecideOutcome {
        sha: req.sha,
        decision,
        reasons,
        decision_key: decision_ref.0.key(),
        timing_key,
        lead_time_ms,
        attestations,
    })
}

/// The release the decision is about, from the latest verified manifest and build;
/// `None` without them (no images to be a VSA's subject).
fn release_of(verified: &BTreeMap<Stage, Artifact>, sha: &GitSha) -> Option<Release> {
    let build = verified.get(&Stage::Build).map(|a| a.typed());
    let manifest = verified.get(&Stage::Publish).map(|a| a.typed());
    let (Some(AnyPredicate::Build(build)), Some(AnyPredicate::Manifest(manifest))) =
        (build, manifest)
    else {
        return None;
    };
    let source = build.images.first()?.labels.source.as_str();
    Some(Release::new(
        sha,
        manifest,
        source,
        build.attestation.clone(),
    ))
}

/// Attaches the VSA and the build's provenance to every pushed image of the release.
/// The decision is recorded by then, so nothing here fails the stage: what could not
/// be attached is reported in the outcome.
async fn attach_release(rec: &Recorder<'_>, release: &Release, vsa: Written) -> Attestations {
    let mut out = Attestations {
        vsa_key: vsa.link.key.clone(),
        attachment: None,
    };
    if release.pushed.is_empty() {
        return out;
    }
    let mut envelopes = vec![(vsa.bytes, VSA_PREDICATE_TYPE)];
    let mut unread = None;
    if let Some(link) = &release.provenance {
        match slsa::read_linked(rec.store, link).await {
            Ok(bytes) => envelopes.push((bytes, PROVENANCE_PREDICATE_TYPE)),
            Err(e) => unread = Some(format!("the build's provenance: {e}")),
        }
    }
    let borrowed: Vec<(&[u8], &str)> = envelopes.iter().map(|(b, t)| (b.as_slice(), *t)).collect();
    let mut attachment = slsa::attach(&release.pushed, &borrowed).await;
    attachment.failed.extend(unread);
    out.attachment = Some(attachment);
    out
}

/// Records the decision, with one reason per failed rule.
async fn write_decision(
    rec: &Recorder<'_>,
    req: &DecideRequest,
    draft: &Draft,
    finished_at: OffsetDateTime,
    decision: Decision,
    reasons: &[Reason],
    companion: Option<Companion>,
) -> Result<((ArtifactRef, Sha256Digest), Option<Written>), Error> {
    let result = match decision {
        Decision::Promote => Outcome::Pass,
        Decision::Reject => Outcome::Fail,
    };
    let reasons: Vec<predicate::Reason> = reasons.iter().map(recorded_reason).collect();
    let predicate = |attempt, attestation| {
        let mut p = DecisionPredicate {
            header: draft.header(attempt, finished_at, result),
            decision,
            reasons: reasons.clone(),
            replay: None,
            rollback_from: None,
            manifest: None,
            attestation,
        };
        if let Some(replay) = &req.replay {
            replay.mark_decision(&mut p);
        }
        p
    };
    let subjects = vec![Subject::git(&req.sha)];
    let (r, digest, written) = rec
        .write_next_with_unlogged(
            ArtifactKind::Decision,
            &req.sha,
            subjects,
            companion,
            predicate,
        )
        .await?;
    Ok(((r, digest), written))
}

fn recorded_reason(r: &Reason) -> predicate::Reason {
    predicate::Reason {
        rule: r.rule.clone(),
        message: r.message.clone(),
        artifact: r.artifact.clone(),
        found: r.found.clone(),
        required: r.required.clone(),
    }
}

/// Records the timing of every stage's latest verified attempt, then of the decision
/// itself; returns its key and the lead time.
async fn write_timing(
    rec: &Recorder<'_>,
    verified: &BTreeMap<Stage, Artifact>,
    draft: &Draft,
    finished_at: OffsetDateTime,
    (decision_ref, decision_digest): (ArtifactRef, Sha256Digest),
) -> Result<(String, u64), Error> {
    let started_at = draft.started_at;
    let mut times: Vec<StageTime> = verified
        .values()
        .map(|a| StageTime {
            stage: a.header().stage,
            attempt: a.r().attempt,
            key: a.r().key(),
            started_at: a.header().started_at,
            finished_at: a.header().finished_at,
            duration_ms: a.header().duration_ms(),
        })
        .collect();
    times.push(StageTime {
        stage: Stage::Decide,
        attempt: decision_ref.attempt,
        key: decision_ref.key(),
        started_at,
        finished_at,
        duration_ms: millis(finished_at - started_at),
    });
    let total_stage_ms: u64 = times.iter().map(|t| t.duration_ms).sum();
    let first_start = verified
        .get(&Stage::Commit)
        .map(|a| a.header().started_at)
        .or_else(|| times.iter().map(|t| t.started_at).min())
        .unwrap_or(started_at);
    let lead_time_ms = millis(finished_at - first_start);
    let timing = Draft {
        inputs: merge(
            vec![Input {
                key: decision_ref.key(),
                sha256: decision_digest,
            }],
            verified.values().map(|a| a.input()).collect(),
        ),
        ..draft.clone()
    };
    let (timing_ref, _, _) = rec
        .write_next_with_unlogged(
            ArtifactKind::Timing,
            &draft.sha,
            vec![Subject::git(&draft.sha)],
            None,
            |attempt, _| TimingPredicate {
                header: timing.header(attempt, finished_at, Outcome::Pass),
                stages: times.clone(),
                lead_time_ms,
                total_stage_ms,
            },
        )
        .await?;
    Ok((timing_ref.key(), lead_time_ms))
}
