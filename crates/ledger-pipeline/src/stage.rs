//! The wrapped-command stages, `commit` and `integration`.
//!
//! Order matters for the guarantees: the signing key is checked against the policy
//! before anything runs (an untrusted key must not produce evidence no one can
//! verify); the attempt is reserved by storing the captured log create-only; the
//! envelope, signed over the log's digest, is written last, so a crash in between
//! leaves an orphan log but never an envelope that points at nothing.

use crate::command::{self, CommandRun};
use crate::error::Error;
use crate::evidence::{log_object_key, Evidence};
use crate::gate::{self, GateReport};
use crate::record::{Recorder, MAX_ATTEMPT_RACES};
use crate::redact::Redactor;
use ledger_core::predicate::{Command, CommandPredicate, Header, Input, Outcome, Output, Runner};
use ledger_core::EnvName;
use ledger_core::{ArtifactRef, GitSha, Sha256Digest, Stage, Subject, LEDGER_VERSION};
use ledger_store::{PutOutcome, StoreError};
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// A request to run a wrapped-command stage.
#[derive(Debug, Clone)]
pub struct CommandStage {
    pub stage: Stage,
    pub sha: GitSha,
    pub argv: Vec<String>,
    /// Extra variable names whose values must never be stored.
    pub redact_env: Vec<String>,
    /// The environment secrets are looked for in (normally the process environment).
    pub env: BTreeMap<String, String>,
    pub runner: Runner,
    /// Echo the command's output to the terminal.
    pub echo: bool,
}

/// What a stage wrote.
#[derive(Debug, Clone)]
pub struct StageOutcome {
    pub r: ArtifactRef,
    pub result: Outcome,
    pub exit_code: Option<i32>,
    pub log_key: String,
    pub envelope_sha256: Sha256Digest,
}

/// Checks that the recorder's key may sign `stage` now.
pub fn check_signer(rec: &Recorder<'_>, stage: Stage) -> Result<(), Error> {
    let now = OffsetDateTime::now_utc();
    if rec.policy.may_sign(rec.key, stage, now) {
        return Ok(());
    }
    let revoked = rec
        .policy
        .revoked_for(rec.key.key_id(), now)
        .map(|t| format!(" (it was revoked at {t})"))
        .unwrap_or_default();
    Err(Error::KeyNotTrusted {
        keyid: rec.key.key_id().to_string(),
        stage,
        revoked,
    })
}

/// Proof that a stage's gate passed: only [`pass_gate`] makes one, and the stages
/// that need infrastructure take it as an argument, so the gate is always evaluated
/// before any engine, registry or config is touched.
#[derive(Debug, Clone)]
pub struct Passed {
    report: GateReport,
    stage: Stage,
}

impl Passed {
    /// The gate's report: the evidence it used and the hash links to record.
    pub fn report(&self) -> &GateReport {
        &self.report
    }

    /// Checks the token was issued for `stage` and `sha`.
    pub(crate) fn expect(self, stage: Stage, sha: &GitSha) -> Result<GateReport, Error> {
        if self.stage != stage || self.report.sha != *sha {
            return Err(Error::Refused(format!(
                "internal error: a gate passed for {} {} was presented to {stage} {sha}",
                self.stage, self.report.sha
            )));
        }
        Ok(self.report)
    }
}

/// Evaluates the policy's gate for `stage` (and, for `build`, the build-once rule);
/// a denial is [`Error::Denied`] and nothing has run or been written.
pub async fn pass_gate(rec: &Recorder<'_>, stage: Stage, sha: &GitSha) -> Result<Passed, Error> {
    pass_gate_in(rec, stage, sha, None).await
}

/// [`pass_gate`] for a stage that runs in environment `env`: the deploy and smoke
/// evidence its gate requires is that environment's.
pub async fn pass_gate_in(
    rec: &Recorder<'_>,
    stage: Stage,
    sha: &GitSha,
    env: Option<EnvName>,
) -> Result<Passed, Error> {
    let mut evidence = Evidence::new(rec.store, rec.policy).in_env(env);
    let report = gate::check_stage(&mut evidence, stage, sha, OffsetDateTime::now_utc()).await?;
    if report.allowed() {
        Ok(Passed { report, stage })
    } else {
        Err(Error::Denied(Box::new(report)))
    }
}

/// Runs a `commit` or `integration` stage and records its evidence.
pub async fn run_command_stage(
    rec: &Recorder<'_>,
    req: CommandStage,
) -> Result<StageOutcome, Error> {
    if !matches!(req.stage, Stage::Commit | Stage::Integration) {
        return Err(Error::NotAWrapperStage(req.stage));
    }
    check_signer(rec, req.stage)?;
    let gate = pass_gate(rec, req.stage, &req.sha)
        .await?
        .expect(req.stage, &req.sha)?;
    rec.store_policy().await?;
    let redactor = Redactor::from_env(&req.env, &req.redact_env);
    let run = command::run(&req.argv, &redactor, req.echo).await?;
    let kind = req.stage.primary_artifact();

    // Reserve an attempt by storing the log create-only.
    let mut attempt = rec.store.next_attempt(kind, &req.sha).await?;
    let mut reserved = None;
    for _ in 0..MAX_ATTEMPT_RACES {
        let r = ArtifactRef::new(kind, req.sha, attempt);
        match rec
            .store
            .put_create(&log_object_key(&r), run.output.clone())
            .await
        {
            Ok(PutOutcome::Created) => {
                reserved = Some(r);
                break;
            }
            // Identical bytes at that attempt, or a different log: another run's.
            Ok(PutOutcome::AlreadyPresent) | Err(StoreError::AlreadyExists { .. }) => attempt += 1,
            Err(e) => return Err(e.into()),
        }
    }
    let r = reserved.ok_or(Error::AttemptContention {
        stage: req.stage,
        tries: MAX_ATTEMPT_RACES,
    })?;

    let predicate = predicate(&req, &r, &run, &redactor, rec.policy.digest(), gate.inputs);
    let value = serde_json::to_value(&predicate).map_err(|e| Error::OwnSchema {
        what: "predicate".into(),
        source: ledger_core::schema::SchemaError::Broken("serialize".into(), e.to_string()),
    })?;
    let envelope_sha256 = rec.write(&r, vec![Subject::git(&req.sha)], value).await?;
    Ok(StageOutcome {
        r,
        result: predicate.header.result,
        exit_code: run.exit_code,
        log_key: r.log_key(),
        envelope_sha256,
    })
}

fn predicate(
    req: &CommandStage,
    r: &ArtifactRef,
    run: &CommandRun,
    redactor: &Redactor,
    policy_sha256: Sha256Digest,
    inputs: Vec<Input>,
) -> CommandPredicate {
    let result = if run.exit_code == Some(0) {
        Outcome::Pass
    } else {
        Outcome::Fail
    };
    CommandPredicate {
        header: Header {
            stage: req.stage,
            sha: req.sha,
            attempt: r.attempt,
            started_at: run.started_at,
            finished_at: run.finished_at,
            result,
            runner: req.runner.clone(),
            inputs,
            policy_sha256,
            ledger_version: LEDGER_VERSION.to_owned(),
        },
        command: Command {
            argv: req.argv.iter().map(|a| redactor.redact(a)).collect(),
            exit_code: run.exit_code,
            duration_ms: run.duration_ms,
        },
        output: Output {
            key: r.log_key(),
            sha256: Sha256Digest::of(&run.output),
            bytes: run.output.len() as u64,
            redacted: redactor.names().to_vec(),
        },
        tests: command::test_counts(&run.output),
    }
}
