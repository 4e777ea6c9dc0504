//! The gate in front of every stage: gather evidence, verify it, apply the policy.
//!
//! For each stage a gate requires, the latest attempt of that stage's primary
//! artifact for the SHA is fully verified ([`Evidence::check`]); the pure evaluator in
//! `ledger-policy` then applies conditions and ages. What the gate relied on becomes
//! the `inputs` hash links of whatever runs next, so the evidence forms a DAG.

use crate::error::Error;
use crate::evidence::{Artifact, Evidence};
use ledger_core::predicate::{Input, Outcome};
use ledger_core::{ArtifactKind, ArtifactRef, GitSha, Stage};
use ledger_policy::{evaluate, Found, Gate, Reason, Verdict};
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;
use time::OffsetDateTime;

mod reads;

/// A gate's verdict and the evidence it used.
#[derive(Debug, Clone, Serialize)]
pub struct GateReport {
    /// What the gate guards: a stage name, `release`, `replay` …
    pub subject: String,
    pub sha: GitSha,
    /// JSON path of the gate in the policy.
    pub rule: String,
    #[serde(flatten)]
    pub verdict: Verdict,
    /// Hash links to record in the next predicate.
    pub inputs: Vec<Input>,
    #[serde(skip)]
    pub artifacts: BTreeMap<Stage, Artifact>,
}

impl GateReport {
    /// A denial by a rule outside the stage gates (promotion, rollback, runner, …).
    pub fn denial(subject: String, sha: GitSha, rule: String, reasons: Vec<Reason>) -> GateReport {
        GateReport {
            subject,
            sha,
            rule,
            verdict: Verdict {
                allowed: false,
                reasons,
                used: Vec::new(),
            },
            inputs: Vec::new(),
            artifacts: BTreeMap::new(),
        }
    }

    /// Whether the gate lets the stage run.
    pub fn allowed(&self) -> bool {
        self.verdict.allowed
    }
}

/// Finds and verifies the latest attempt of every stage in `stages`.
pub async fn gather(
    evidence: &mut Evidence<'_>,
    sha: &GitSha,
    stages: impl IntoIterator<Item = Stage>,
) -> Result<Gathered, Error> {
    gather_reading(evidence, sha, stages, false).await
}

/// [`gather`], reading the newest checkpoint beside the log when `checkpoint` (for
/// [`Evidence::log_head_problems`], which a stage's gate asks next).
async fn gather_reading(
    evidence: &mut Evidence<'_>,
    sha: &GitSha,
    stages: impl IntoIterator<Item = Stage>,
    checkpoint: bool,
) -> Result<Gathered, Error> {
    let mut wanted: Vec<Stage> = Vec::new();
    for stage in stages {
        if !wanted.contains(&stage) {
            wanted.push(stage);
        }
    }
    // Every stage's attempts at once (one listing each, concurrently), then the
    // newest of each in one bulk read: on a bucket, one round trip after another was
    // most of a gate's time. The latest attempt is the latest the log names, so
    // deleting or hiding it does not promote an earlier one. The log is read from the
    // oldest head those newest attempts recorded (every later attempt is named after
    // it), once for all of them; a store without a log is listed (and then fails
    // verification for having none).
    let (store, env) = (evidence.store(), evidence.env());
    let env_of = |kind: ArtifactKind| env.filter(|_| kind.per_environment());
    let listed: Vec<Vec<u32>> = futures::future::try_join_all(wanted.iter().map(|stage| {
        let kind = stage.primary_artifact();
        store.attempts_in(kind, sha, env_of(kind))
    }))
    .await?;
    let newest: Vec<ArtifactRef> = wanted
        .iter()
        .zip(&listed)
        .filter_map(|(stage, attempts)| {
            let kind = stage.primary_artifact();
            let attempt = attempts.last()?;
            Some(ArtifactRef::new(kind, *sha, *attempt).in_env(env_of(kind)))
        })
        .collect();
    evidence.read_ahead_refs(&newest).await?;
    evidence.read_for_gate(&newest, checkpoint).await?;
    let mut latest: Vec<Option<ArtifactRef>> = Vec::with_capacity(wanted.len());
    for (stage, attempts) in wanted.iter().zip(&listed) {
        let kind = stage.primary_artifact();
        latest.push(
            evidence
                .latest_logged(kind, sha, env_of(kind), attempts)
                .await?,
        );
    }
    let found: Vec<ArtifactRef> = latest
        .iter()
        .flatten()
        .filter(|r| !newest.contains(r))
        .copied()
        .collect();
    if !found.is_empty() {
        evidence.read_ahead_refs(&found).await?;
    }
    let mut verified = BTreeMap::new();
    let mut invalid = BTreeMap::new();
    for (stage, r) in wanted.into_iter().zip(latest) {
        let Some(r) = r else {
            continue;
        };
        match evidence.check(&r).await?.into_result() {
            Ok(a) => {
                verified.insert(stage, a);
            }
            Err(problems) => {
                invalid.insert(stage, (r.key(), problems));
            }
        }
    }
    Ok((verified, invalid))
}

/// The verified latest attempt of each stage [`gather`] asked for, and the key and
/// problems of each latest attempt that does not verify.
pub type Gathered = (
    BTreeMap<Stage, Artifact>,
    BTreeMap<Stage, (String, Vec<String>)>,
);

/// Evaluates `gate` (at JSON path `rule` in the policy) for `sha` at `now`.
pub async fn check(
    evidence: &mut Evidence<'_>,
    subject: &str,
    rule: &str,
    gate: &Gate,
    sha: &GitSha,
    now: OffsetDateTime,
) -> Result<GateReport, Error> {
    let gathered = gather(evidence, sha, gate.requires.iter().map(|r| r.stage)).await?;
    Ok(judge(subject, rule, gate, sha, &gathered, now))
}

/// Evaluates `gate` over evidence already gathered, which must hold every stage the
/// gate requires (one that is absent counts as missing): for a caller that needs the
/// same stages' evidence for more than the verdict.
pub fn judge(
    subject: &str,
    rule: &str,
    gate: &Gate,
    sha: &GitSha,
    (verified, invalid): &Gathered,
    now: OffsetDateTime,
) -> GateReport {
    let required: Vec<Stage> = gate.requires.iter().map(|r| r.stage).collect();
    let mut found: BTreeMap<Stage, Found<'_>> = BTreeMap::new();
    for (stage, (key, problems)) in invalid.iter().filter(|(s, _)| required.contains(s)) {
        found.insert(
            *stage,
            Found::Invalid {
                key: key.clone(),
                problems: problems.clone(),
            },
        );
    }
    for (stage, a) in verified.iter().filter(|(s, _)| required.contains(s)) {
        found.insert(
            *stage,
            Found::Verified {
                key: a.key(),
                attempt: a.r().attempt,
                finished_at: a.header().finished_at,
                predicate: a.predicate(),
            },
        );
    }
    let verdict = evaluate(gate, rule, &found, now);
    let inputs = verdict
        .used
        .iter()
        .filter_map(|u| verified.get(&u.stage))
        .map(Artifact::input)
        .collect();
    GateReport {
        subject: subject.to_owned(),
        sha: *sha,
        rule: rule.to_owned(),
        verdict,
        inputs,
        artifacts: verified
            .iter()
            .filter(|(s, _)| required.contains(s))
            .map(|(s, a)| (*s, a.clone()))
            .collect(),
    }
}

/// The gate in front of `stage` under the evidence's policy.
pub async fn check_stage(
    evidence: &mut Evidence<'_>,
    stage: Stage,
    sha: &GitSha,
    now: OffsetDateTime,
) -> Result<GateReport, Error> {
    Ok(check_stage_gathering(evidence, stage, sha, now, [])
        .await?
        .0)
}

/// [`check_stage`], gathering the latest attempts of the stages in `also` in the
/// same reads as those the gate requires, and returning everything gathered: for a
/// stage whose work reads more evidence than its gate does (`decide` judges the
/// release over every other stage), so that it works from exactly what its gate saw
/// and no store is read twice for it.
#[tracing::instrument(level = "debug", skip_all, fields(%stage, %sha))]
pub async fn check_stage_gathering(
    evidence: &mut Evidence<'_>,
    stage: Stage,
    sha: &GitSha,
    now: OffsetDateTime,
    also: impl IntoIterator<Item = Stage>,
) -> Result<(GateReport, Gathered), Error> {
    let gate = evidence.policy().gate(stage);
    let rule = format!("/stages/{stage}");
    let stages = gate.requires.iter().map(|r| r.stage).chain(also);
    let gathered = gather_reading(evidence, sha, stages, true).await?;
    let mut report = judge(stage.as_str(), &rule, &gate, sha, &gathered, now);
    // A log with a hole, or cut below a checkpoint a trusted key signed, cannot say
    // which attempt is the latest: no stage runs on it.
    for message in evidence.log_head_problems().await? {
        report.verdict.allowed = false;
        report.verdict.reasons.push(Reason {
            rule: "log".into(),
            artifact: None,
            found: None,
            required: None,
            message,
        });
    }
    if stage == Stage::Build {
        if let Some(reason) = already_built(evidence, sha).await? {
            report.verdict.allowed = false;
            report.verdict.reasons.push(reason);
        }
    }
    Ok((report, gathered))
}

/// The build-once rule: a denial reason when passing build evidence already exists
/// for `sha` (images are built once; a rebuild would change their digests).
pub async fn already_built(
    evidence: &mut Evidence<'_>,
    sha: &GitSha,
) -> Result<Option<Reason>, Error> {
    let listed = evidence.store().attempts(ArtifactKind::Build, sha).await?;
    let latest = evidence
        .latest_logged(ArtifactKind::Build, sha, None, &listed)
        .await?;
    let Some(r) = latest else {
        return Ok(None);
    };
    let Some(a) = evidence.check(&r).await?.verified() else {
        return Ok(None);
    };
    if a.header().result != Outcome::Pass {
        return Ok(None);
    }
    Ok(Some(Reason {
        rule: "build-once".into(),
        artifact: Some(r.key()),
        found: Some(json!("pass")),
        required: Some(json!("no passing build for this SHA")),
        message: format!(
            "images for {sha} were already built and passed (attempt {}); images are built once per SHA: use `ledger replay {sha}` to deploy them again",
            r.attempt
        ),
    }))
}
