//! The `decide` stage: the release decision over the whole chain, and its timing.
//!
//! After its own gate, `decide` evaluates the policy's `release` rules against the
//! latest verified attempt of every stage and records `promote` or `reject` with one
//! reason per failed rule, then the timing of the chain (per stage start, end,
//! duration and attempt; the sum of stage times; the lead time from the commit stage
//! to the decision). Both artifacts are written either way: a reject is evidence too.

use crate::error::Error;
use crate::record::Recorder;
use crate::run::Passed;
use ledger_core::predicate::{Header, Input, Outcome, Runner};
use ledger_core::{ArtifactKind, GitSha, Stage, Subject, LEDGER_VERSION};
use ledger_policy::Reason;
use ledger_verify::evidence::Evidence;
use ledger_verify::gate;
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;

/// Promote or reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Promote,
    Reject,
}

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

/// One stage's line in the timing record.
#[derive(Debug, Clone, Serialize)]
struct StageTime {
    stage: Stage,
    attempt: u32,
    key: String,
    #[serde(with = "time::serde::rfc3339")]
    started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    finished_at: OffsetDateTime,
    duration_ms: u64,
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

/// The header every `decide` artifact shares; `attempt` is set per write.
fn header(
    rec: &Recorder<'_>,
    req: &DecideRequest,
    (started_at, finished_at): (OffsetDateTime, OffsetDateTime),
    result: Outcome,
    inputs: Vec<Input>,
) -> Header {
    Header {
        stage: Stage::Decide,
        sha: req.sha,
        attempt: 1,
        started_at,
        finished_at,
        result,
        runner: req.runner.clone(),
        inputs,
        policy_sha256: rec.policy.digest(),
        ledger_version: LEDGER_VERSION.to_owned(),
    }
}

fn with_header(header: &Header, attempt: u32, fields: serde_json::Value) -> serde_json::Value {
    let mut h = header.clone();
    h.attempt = attempt;
    let mut v = serde_json::to_value(h).unwrap_or_default();
    if let (Some(obj), Some(extra)) = (v.as_object_mut(), fields.as_object()) {
        obj.extend(extra.clone());
    }
    v
}

/// Runs `decide` for `req.sha`.
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
    let reasons = release.verdict.reasons.clone();
    let inputs = merge(gate_report.inputs.clone(), release.inputs.clone());
    let result = match decision {
        Decision::Promote => Outcome::Pass,
        Decision::Reject => Outcome::Fail,
    };
    let finished_at = OffsetDateTime::now_utc();
    let subjects = vec![Subject::git(&req.sha)];
    let span = (started_at, finished_at);
    let decision_header = header(rec, &req, span, result, inputs);
    let (decision_ref, decision_digest) = rec
        .write_next(
            ArtifactKind::Decision,
            &req.sha,
            subjects.clone(),
            |attempt| {
                let mut fields = json!({ "decision": decision, "reasons": reasons });
                if let Some(replay) = &req.replay {
                    replay.annotate(&mut fields);
                }
                with_header(&decision_header, attempt, fields)
            },
        )
        .await?;

    // Timing of every stage's latest verified attempt, then of the decision itself.
    let stages = Stage::ALL.into_iter().filter(|s| *s != Stage::Decide);
    let (verified, _) = gate::gather(&mut evidence, &req.sha, stages).await?;
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
    let timing_inputs = merge(
        vec![Input {
            key: decision_ref.key(),
            sha256: decision_digest,
        }],
        verified
            .values()
            .map(|a| Input {
                key: a.r().key(),
                sha256: a.digest(),
            })
            .collect(),
    );
    let timing_header = header(rec, &req, span, Outcome::Pass, timing_inputs);
    let (timing_ref, _) = rec
        .write_next(ArtifactKind::Timing, &req.sha, subjects, |attempt| {
            with_header(
                &timing_header,
                attempt,
                json!({ "stages": times, "lead_time_ms": lead_time_ms, "total_stage_ms": total_stage_ms }),
            )
        })
        .await?;
    Ok(DecideOutcome {
        decision,
        reasons: release.verdict.reasons,
        decision_key: decision_ref.key(),
        timing_key: timing_ref.key(),
        lead_time_ms,
    })
}
