//! The wrapped-command stages, `commit` and `integration`.
//!
//! Order matters for the guarantees: the signing key is checked against the policy
//! before anything runs (an untrusted key must not produce evidence no one can
//! verify); the attempt is reserved by storing the captured log create-only; the
//! envelope, signed over the log's digest, is written last, so a crash in between
//! leaves an orphan log but never an envelope that points at nothing.
//!
//! Once the command has run its result must not be lost: reserving an attempt goes
//! on until it succeeds (a lost race moves to the next number, after a short random
//! pause), a failing store is retried with backoff for
//! [`crate::record::STORE_RETRY_BUDGET`], and when it is still down the log and the
//! predicate go to the local spool ([`crate::spool`]) for [`record_spooled`] to
//! record later, with the run's own times.

use crate::error::Error;
use crate::record::{transient, Backoff, Draft, Recorder, MAX_ATTEMPT};
use crate::redact::Redactor;
use crate::run::Passed;
use crate::spool::{Spool, SpooledRun};
use crate::stages::exec::{self, CommandRun, Launch};
use bytes::Bytes;
use ledger_core::predicate::{Command, CommandPredicate, Input, Outcome, Output, Runner, Source};
use ledger_core::{ArtifactRef, GitSha, Sha256Digest, SigningKey, Stage, Subject};
use ledger_store::{PutOutcome, StoreError};
use ledger_verify::read::log_object_key;
use std::collections::BTreeMap;

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
    /// Isolated or not (recorded as `command.isolation`).
    pub launch: Launch,
    /// Where the code that runs came from ([`crate::source::check`]); recorded as is.
    pub source: Option<Source>,
    /// Where the result goes when the store cannot take it (`None`: nowhere).
    pub spool: Option<Spool>,
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

/// Runs a `commit` or `integration` stage and records its evidence.
#[tracing::instrument(level = "debug", skip_all, fields(stage = %req.stage, sha = %req.sha))]
pub async fn run_command_stage(
    rec: &Recorder<'_>,
    passed: Passed,
    req: CommandStage,
) -> Result<StageOutcome, Error> {
    if !req.stage.wraps_command() {
        return Err(Error::NotAWrapperStage(req.stage));
    }
    let gate = passed.expect(req.stage, &req.sha)?;
    // The key in use is masked however it was given: a key file is in no variable.
    let mut redactor = Redactor::from_env(&req.env, &req.redact_env);
    if let Ok(pem) = rec.key.to_pkcs8_pem() {
        redactor = redactor.with_secret_text(pem.expose());
    }
    let run = exec::run(&req.argv, &redactor, req.echo, &req.launch).await?;
    let predicate = predicate(&req, &run, &redactor, rec, gate.inputs);
    let log = Bytes::from(run.output.bytes);
    match record(rec, predicate.clone(), log.clone()).await {
        Ok(Recording::Done(outcome)) => Ok(outcome),
        Ok(Recording::Failed(e)) => Err(keep(&req, predicate, &log, rec.key, e)),
        Err(e) => Err(e),
    }
}

/// Keeps a run the store could not take in the spool, and says so.
fn keep(
    req: &CommandStage,
    predicate: CommandPredicate,
    log: &[u8],
    key: &SigningKey,
    e: Error,
) -> Error {
    let Some(spool) = &req.spool else {
        return e;
    };
    let run = SpooledRun {
        stage: req.stage,
        sha: req.sha,
        predicate,
    };
    match spool.keep(&run, log, key) {
        Ok(dir) => Error::Spooled {
            stage: req.stage,
            sha: req.sha,
            spooled: dir.display().to_string(),
            source: Box::new(e),
        },
        Err(io) => Error::SpoolFailed {
            stage: req.stage,
            sha: req.sha,
            spool_error: io.to_string(),
            source: Box::new(e),
        },
    }
}

/// How recording a finished run went.
enum Recording {
    Done(StageOutcome),
    /// Nothing of the run's evidence is in the store: it is the spool's to keep.
    Failed(Error),
}

/// Records a finished run: reserves the next free attempt with its log, then writes
/// the envelope and the log entry. `Recording::Failed` when the store failed before
/// the envelope was stored; an error after that (the log entry) leaves evidence the
/// next run's entry adopts, so it is only reported.
async fn record(
    rec: &Recorder<'_>,
    mut predicate: CommandPredicate,
    log: Bytes,
) -> Result<Recording, Error> {
    let stage = predicate.header.stage;
    let sha = predicate.header.sha;
    let r = match reserve(rec, stage, &sha, log).await {
        Ok(r) => r,
        Err(e) => return Ok(Recording::Failed(e)),
    };
    predicate.header.attempt = r.attempt;
    predicate.output.key = r.log_key();
    let mut backoff = Backoff::default();
    let envelope_sha256 = loop {
        match rec
            .write_unlogged(&r, vec![Subject::git(&sha)], &predicate)
            .await
        {
            Ok(d) => break d,
            Err(Error::Store(e)) if transient(&e) && backoff.failed().await => {}
            Err(e) => return Ok(Recording::Failed(e)),
        }
    };
    let mut backoff = Backoff::default();
    loop {
        match rec.log_and_checkpoint().await {
            Ok(()) => break,
            Err(Error::Store(e)) if transient(&e) && backoff.failed().await => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Recording::Done(StageOutcome {
        r,
        result: predicate.header.result,
        exit_code: predicate.command.exit_code,
        log_key: r.log_key(),
        envelope_sha256,
    }))
}

/// Reserves the next free attempt of `stage` for `sha` by storing `log` create-only
/// under it: a lost race moves on to the next number after a short random pause, as
/// long as numbers are left; a failing store is retried within its budget.
async fn reserve(
    rec: &Recorder<'_>,
    stage: Stage,
    sha: &GitSha,
    log: Bytes,
) -> Result<ArtifactRef, Error> {
    let kind = stage.primary_artifact();
    let mut backoff = Backoff::default();
    let mut attempt = loop {
        match rec.store.next_attempt(kind, sha).await {
            Ok(a) => break a,
            Err(e) if transient(&e) && backoff.failed().await => {}
            Err(e) => return Err(e.into()),
        }
    };
    while attempt <= MAX_ATTEMPT {
        let r = ArtifactRef::new(kind, *sha, attempt);
        match rec.store.put_create(&log_object_key(&r), log.clone()).await {
            Ok(PutOutcome::Created) => return Ok(r),
            // Identical bytes at that attempt, or a different log: another run's.
            Ok(PutOutcome::AlreadyPresent) | Err(StoreError::AlreadyExists { .. }) => {
                attempt += 1;
                backoff.contended().await;
            }
            Err(e) if transient(&e) && backoff.failed().await => {}
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::AttemptContention {
        stage,
        tries: MAX_ATTEMPT,
    })
}

/// Records the runs of `stage` for `sha` waiting in `spool`, oldest first, each as
/// the next free attempt with the times, result and output it had when it ran.
/// Stops at the first that cannot be recorded (it stays in the spool).
pub async fn record_spooled(
    rec: &Recorder<'_>,
    spool: &Spool,
    stage: Stage,
    sha: &GitSha,
) -> Result<Vec<StageOutcome>, Error> {
    let mut done = Vec::new();
    for path in spool.pending(stage, sha) {
        let Some(mut claim) = spool.claim(&path, rec.key.public())? else {
            continue;
        };
        if claim.run.stage != stage || claim.run.sha != *sha {
            let e = Error::SpoolDamaged {
                path: claim.path(),
                why: format!(
                    "it holds a run of {} for {}, not of {stage} for {sha}",
                    claim.run.stage, claim.run.sha
                ),
            };
            claim.release();
            return Err(e);
        }
        let log = Bytes::from(std::mem::take(&mut claim.log));
        match record(rec, claim.run.predicate.clone(), log).await {
            Ok(Recording::Done(outcome)) => {
                // Recorded: a folder that cannot be removed would be recorded again.
                claim.done().map_err(|e| Error::SpoolDamaged {
                    path: path.display().to_string(),
                    why: format!(
                        "recorded as {}, but cannot be removed: {e}",
                        outcome.r.key()
                    ),
                })?;
                done.push(outcome);
            }
            Ok(Recording::Failed(e)) | Err(e) => {
                claim.release();
                return Err(e);
            }
        }
    }
    Ok(done)
}

/// The run's predicate, for attempt 0 until [`record`] reserves its attempt.
fn predicate(
    req: &CommandStage,
    run: &CommandRun,
    redactor: &Redactor,
    rec: &Recorder<'_>,
    inputs: Vec<Input>,
) -> CommandPredicate {
    let result = if run.exit_code == Some(0) {
        Outcome::Pass
    } else {
        Outcome::Fail
    };
    let draft = Draft {
        stage: req.stage,
        sha: req.sha,
        runner: req.runner.clone(),
        inputs,
        started_at: run.started_at,
        policy_sha256: rec.policy.digest(),
        log_head: rec.store.seen_log_head(),
    };
    CommandPredicate {
        header: draft.header(0, run.finished_at, result),
        command: Command {
            argv: req.argv.iter().map(|a| redactor.redact(a)).collect(),
            exit_code: run.exit_code,
            duration_ms: run.duration_ms,
            isolation: Some(run.isolation),
        },
        output: Output {
            key: String::new(),
            sha256: Sha256Digest::of(&run.output.bytes),
            bytes: run.output.bytes.len() as u64,
            redacted: redactor.names().to_vec(),
            truncated: run.output.truncated,
            total_bytes: run.output.truncated.then_some(run.output.total_bytes),
        },
        tests: run.output.tests,
        source: req.source.clone(),
    }
}
