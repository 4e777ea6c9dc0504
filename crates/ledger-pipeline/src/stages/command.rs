//! The wrapped-command stages, `commit` and `integration`.
//!
//! Order matters for the guarantees: the signing key is checked against the policy
//! before anything runs (an untrusted key must not produce evidence no one can
//! verify); the attempt is reserved by storing the captured log create-only; the
//! envelope, signed over the log's digest, is written last, so a crash in between
//! leaves an orphan log but never an envelope that points at nothing.

use crate::error::Error;
use crate::record::{Draft, Recorder, MAX_ATTEMPT_RACES};
use crate::redact::Redactor;
use crate::run::Passed;
use crate::stages::exec::{self, CommandRun, Launch};
use ledger_core::predicate::{Command, CommandPredicate, Input, Outcome, Output, Runner, Source};
use ledger_core::{ArtifactRef, GitSha, Sha256Digest, Stage, Subject};
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
    if !matches!(req.stage, Stage::Commit | Stage::Integration) {
        return Err(Error::NotAWrapperStage(req.stage));
    }
    let gate = passed.expect(req.stage, &req.sha)?;
    // The key in use is masked however it was given: a key file is in no variable.
    let mut redactor = Redactor::from_env(&req.env, &req.redact_env);
    if let Ok(pem) = rec.key.to_pkcs8_pem() {
        redactor = redactor.with_secret_text(pem.expose());
    }
    let run = exec::run(&req.argv, &redactor, req.echo, &req.launch).await?;
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
    let envelope_sha256 = rec
        .write(&r, vec![Subject::git(&req.sha)], &predicate)
        .await?;
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
    let draft = Draft {
        stage: req.stage,
        sha: req.sha,
        runner: req.runner.clone(),
        inputs,
        started_at: run.started_at,
        policy_sha256,
    };
    CommandPredicate {
        header: draft.header(r.attempt, run.finished_at, result),
        command: Command {
            argv: req.argv.iter().map(|a| redactor.redact(a)).collect(),
            exit_code: run.exit_code,
            duration_ms: run.duration_ms,
            isolation: Some(run.isolation),
        },
        output: Output {
            key: r.log_key(),
            sha256: Sha256Digest::of(&run.output),
            bytes: run.output.len() as u64,
            redacted: redactor.names().to_vec(),
        },
        tests: exec::test_counts(&run.output),
        source: req.source.clone(),
    }
}
