//! The `decide` stage: the release decision over the whole chain, and its timing.
//!
//! After its own gate, `decide` evaluates the policy's `release` rules against the
//! latest verified attempt of every stage and records `promote` or `reject` with one
//! reason per failed rule, then the timing of the chain (per stage start, end,
//! duration and attempt; the sum of stage times; the lead time from the commit stage
//! to the decision). Both artifacts are written either way: a reject is evidence too.

use crate::error::Error;
use crate::record::{Draft, Recorder};
use crate::run::Passed;
use ledger_core::predicate::{
    self, DecisionPredicate, Input, Outcome, Runner, StageTime, TimingPredicate,
};
use ledger_core::{ArtifactKind, ArtifactRef, GitSha, Sha256Digest, Stage, Subject};
use ledger_policy::Reason;
use ledger_verify::evidence::Evidence;
use ledger_verify::gate;
use serde::Serialize;
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
    /// The environment whose deploy and smoke evidence the decision rests on (`None`:
    /// the default environment).
    pub env: Option<ledger_core::EnvName>,
}

/// What `decide` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct DecideOutcome {
    pub decision: Decision,
    pub reasons: Vec<Reason>,
    pub decision_key: String,
    pub timing_key: String,
    pub lead_time_ms: u64,
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
    let gate_report = passed.expect(Stage::Decide, &req.sha)?;

    let mut evidence = Evidence::new(rec.store, rec.policy).in_env(req.env);
    let release = gate::check(
        &mut evidence,
        "release",
        "/release",
        &rec.policy.release(),
        &req.sha,
        started_at,
    )
    .await?;
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
    };
    let finished_at = OffsetDateTime::now_utc();
    let reasons = release.verdict.reasons;
    let decision_ref = write_decision(rec, &req, &draft, finished_at, decision, &reasons).await?;
    let (timing_key, lead_time_ms) =
        write_timing(rec, &mut evidence, &draft, finished_at, decision_ref).await?;
    Ok(DecideOutcome {
        decision,
        reasons,
        decision_key: decision_ref.0.key(),
        timing_key,
        lead_time_ms,
    })
}

/// Records the decision, with one reason per failed rule.
async fn write_decision(
    rec: &Recorder<'_>,
    req: &DecideRequest,
    draft: &Draft,
    finished_at: OffsetDateTime,
    decision: Decision,
    reasons: &[Reason],
) -> Result<(ArtifactRef, Sha256Digest), Error> {
    let result = match decision {
        Decision::Promote => Outcome::Pass,
        Decision::Reject => Outcome::Fail,
    };
    let reasons: Vec<predicate::Reason> = reasons.iter().map(recorded_reason).collect();
    rec.write_next(
        ArtifactKind::Decision,
        &req.sha,
        vec![Subject::git(&req.sha)],
        |attempt| {
            let mut p = DecisionPredicate {
                header: draft.header(attempt, finished_at, result),
                decision,
                reasons: reasons.clone(),
                replay: None,
                rollback_from: None,
                manifest: None,
            };
            if let Some(replay) = &req.replay {
                replay.mark_decision(&mut p);
            }
            p
        },
    )
    .await
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
    evidence: &mut Evidence<'_>,
    draft: &Draft,
    finished_at: OffsetDateTime,
    (decision_ref, decision_digest): (ArtifactRef, Sha256Digest),
) -> Result<(String, u64), Error> {
    let started_at = draft.started_at;
    let stages = Stage::ALL.into_iter().filter(|s| *s != Stage::Decide);
    let (verified, _) = gate::gather(evidence, &draft.sha, stages).await?;
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
    let (timing_ref, _) = rec
        .write_next(
            ArtifactKind::Timing,
            &draft.sha,
            vec![Subject::git(&draft.sha)],
            |attempt| TimingPredicate {
                header: timing.header(attempt, finished_at, Outcome::Pass),
                stages: times.clone(),
                lead_time_ms,
                total_stage_ms,
            },
        )
        .await?;
    Ok((timing_ref.key(), lead_time_ms))
}
