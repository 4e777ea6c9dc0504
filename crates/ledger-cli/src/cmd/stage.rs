//! `ledger stage` (run a stage and record its evidence) and `ledger gate` (evaluate
//! a stage's gate without running anything).

use super::{denied, outcome_code, print_decision, progress};
use crate::args::{GateArgs, Global, StageArgs};
use crate::context::{self, Reader, Writer};
use crate::exit::{Code, Failure, Result};
use ledger_core::predicate::Source;
use ledger_core::{GitSha, Stage};
use ledger_pipeline::record::{Recorded, Recorder};
use ledger_pipeline::run::{self, Passed};
use ledger_pipeline::source;
use ledger_pipeline::spool::Spool;
use ledger_pipeline::stages::command::{
    record_spooled, run_command_stage, CommandStage, StageOutcome,
};
use ledger_pipeline::stages::decide::{run_decide, DecideRequest, Decision};
use ledger_pipeline::stages::exec::Launch;
use ledger_pipeline::stages::isolate::Isolate;
use std::path::Path;

mod ahead;

/// `ledger stage STAGE`.
pub async fn stage(global: &Global, args: StageArgs) -> Result<Code> {
    let root = context::repo_root()?;
    if args.resume {
        let sha = context::resolve_sha(args.sha.as_deref(), &root)?;
        return resume(global, &root, &args, sha).await;
    }
    let explicit = explicit_sha(&args)?;
    check_wrapped_command(&args)?;
    // git (one to four processes, the larger share of a small stage's own time) runs
    // beside the loading of policy, key and store, which writes no evidence. Its
    // answer is taken before the gate's verdict, which stores the policy, and before
    // a failure to load: a refusal here writes nothing and is reported as before.
    let checked = start_checks(&root, &args, explicit);
    let writer = Writer::load(global, &root, args.key.as_deref(), Some(args.stage)).await;
    // A denial must not depend on config or infrastructure, so this comes first.
    let env_name = matches!(args.stage, Stage::Deploy | Stage::Smoke)
        .then(|| ledger_core::EnvName::parse(&args.environment))
        .transpose()
        .map_err(ledger_pipeline::Error::from);
    // With `--sha` a stage that wraps no command gates while git still checks that
    // SHA (git's refusal, if any, is reported instead of the gate's verdict, as if it
    // had come first). Without `--sha` the SHA to gate is git's answer; a wrapped
    // stage's check is two `git` processes, which keep both cores of a small runner
    // busy, and its gate is small: gating beside them measured slower.
    let recorder = writer.as_ref().ok().map(Writer::recorder);
    let early = explicit.filter(|_| !args.stage.wraps_command());
    let early_gate = async {
        match (&recorder, early, &env_name) {
            (Some(rec), Some(sha), Ok(env)) => Some(run::gate(rec, args.stage, &sha, *env).await),
            _ => None,
        }
    };
    let (checked, gated) = tokio::join!(checked, early_gate);
    let (checked, ahead) = checked.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    let (sha, source) = checked.map_err(|e| refused(explicit, e))?;
    // Borrowed by the early gate, so a failure to load is reported as a copy.
    let writer = writer.as_ref().map_err(Failure::clone)?;
    let env_name = env_name?;
    let rec = writer.recorder();
    // The one place a stage's run begins: signer, then gate, then the stored policy.
    let gated = match gated {
        Some(gated) => gated,
        None => run::gate(&rec, args.stage, &sha, env_name).await,
    };
    let passed = gated.map_err(denied)?.pass().await.map_err(denied)?;
    let recorded = match args.stage {
        Stage::Commit | Stage::Integration => {
            return command_stage(writer, &root, args, sha, source, passed).await;
        }
        Stage::Decide => return decide(writer, sha, passed).await,
        Stage::Publish => {
            ledger_pipeline::stages::publish::run_publish(&rec, passed, sha, &writer.runner).await
        }
        Stage::Build | Stage::Deploy | Stage::Smoke => {
            let prepared = match ahead {
                Some(ahead) => ahead.take().await,
                None => unreachable!("engine stages are prepared ahead"),
            };
            engine_stage(writer, &args, sha, source, passed, prepared).await?
        }
    };
    let recorded = recorded.map_err(denied)?;
    say!(
        "ledger: {} {} (attempt {}): {}; evidence {} in {}",
        args.stage,
        recorded.result.as_str(),
        recorded.r.attempt,
        recorded.summary,
        recorded.r.key(),
        writer.store.location()
    );
    Ok(outcome_code(recorded.result))
}

/// The source check's answer (the SHA the stage runs for and the `source` it
/// records) and an engine stage's preparation.
type Checked = (
    std::result::Result<(GitSha, Option<Source>), source::SourceError>,
    Option<ahead::Ahead>,
);

/// Starts the source check of `args.stage` and, for an engine stage, its preparation
/// ([`ahead`]). A task of its own, so git's answer is awaited (and `build` without
/// `--sha` prepared once git named HEAD) while the caller loads and gates.
fn start_checks(
    root: &Path,
    args: &StageArgs,
    explicit: Option<GitSha>,
) -> tokio::task::JoinHandle<Checked> {
    let allow = source::Allow {
        dirty: args.allow_dirty,
        other_sha: args.allow_other_sha,
    };
    let checking = {
        let (root, stage) = (root.to_path_buf(), args.stage);
        tokio::task::spawn_blocking(move || source::check(&root, stage, explicit.as_ref(), allow))
    };
    // An engine stage's config, engine and (for `build`) exported contexts are
    // prepared beside all of that and the gate, and looked at only once it passed;
    // `build` without `--sha` starts once the check has read HEAD.
    let prepare = {
        let (root, stage, environment) = (root.to_path_buf(), args.stage, args.environment.clone());
        move |sha| ahead::Ahead::start(root.clone(), stage, sha, &environment)
    };
    let ahead = prepare(explicit);
    tokio::spawn(async move {
        let checked = checking
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        let ahead = match (&checked, ahead) {
            (Ok((sha, _)), None) => prepare(Some(*sha)),
            (_, ahead) => ahead,
        };
        (checked, ahead)
    })
}

/// The SHA `--sha` names; without it the stage runs for HEAD, which the source check
/// reads with the working tree, beside the loading (one `git` process, not two in
/// turn).
fn explicit_sha(args: &StageArgs) -> Result<Option<GitSha>> {
    let sha = args.sha.as_deref().map(GitSha::parse).transpose();
    sha.map_err(Failure::input)
}

/// A source check's refusal; without `--sha`, one that leaves no HEAD to run for is
/// said as such.
fn refused(explicit: Option<GitSha>, e: source::SourceError) -> Failure {
    match (explicit, &e) {
        (
            None,
            source::SourceError::NotARepository { .. } | source::SourceError::NoCommits { .. },
        ) => context::no_head(e),
        _ => ledger_pipeline::Error::from(e).into(),
    }
}

/// Where runs the store could not take wait: `.ledger/spool/` in the repository.
fn spool(root: &Path) -> Spool {
    Spool::new(root.join(SPOOL_DIR))
}

/// The spool folder, relative to the repository root (inside `.ledger/`, which is
/// git-ignored and masked from wrapped commands).
pub const SPOOL_DIR: &str = ".ledger/spool";

/// `ledger stage commit|integration --resume`: records the spooled runs of the stage
/// for the SHA, runs nothing. The signer must still be trusted for the stage; the gate
/// was passed when the command ran, and its inputs are in the spooled predicate.
async fn resume(global: &Global, root: &Path, args: &StageArgs, sha: GitSha) -> Result<Code> {
    if !args.stage.wraps_command() {
        return Err(Failure::input(format!(
            "--resume records spooled runs of a wrapped command; stage `{}` wraps none",
            args.stage
        )));
    }
    let writer = Writer::load(global, root, args.key.as_deref(), Some(args.stage)).await?;
    let rec = writer.recorder();
    run::check_signer(&rec, args.stage).map_err(denied)?;
    let done = record_spooled(&rec, &spool(root), args.stage, &sha)
        .await
        .map_err(denied)?;
    if done.is_empty() {
        return Err(Failure::input(format!(
            "no run of {} for {sha} is waiting in {SPOOL_DIR}: nothing to record",
            args.stage
        )));
    }
    let mut code = Code::Success;
    for outcome in &done {
        print_spooled(&writer, args.stage, outcome);
        if outcome_code(outcome.result) != Code::Success {
            code = outcome_code(outcome.result);
        }
    }
    Ok(code)
}

fn print_spooled(writer: &Writer, stage: Stage, outcome: &StageOutcome) {
    say!(
        "ledger: recorded the spooled run of {stage}: {} (attempt {}); evidence {} in {}",
        outcome.result.as_str(),
        outcome.r.attempt,
        outcome.r.key(),
        writer.store.location()
    );
}

/// `commit` and `integration` wrap a command; the other stages take none.
fn check_wrapped_command(args: &StageArgs) -> Result<()> {
    let wraps = args.stage.wraps_command();
    if wraps && args.command.is_empty() {
        return Err(Failure::input(format!(
            "stage `{}` wraps a command, and none was given",
            args.stage
        ))
        .hint(format!("ledger stage {} -- cargo test", args.stage)));
    }
    if !wraps && !args.command.is_empty() {
        return Err(Failure::input(format!(
            "stage `{}` does not wrap a command; drop everything after `--`",
            args.stage
        )));
    }
    Ok(())
}

/// `commit` or `integration`: run the wrapped command and record how it ended.
async fn command_stage(
    writer: &Writer,
    root: &Path,
    args: StageArgs,
    sha: GitSha,
    source: Option<Source>,
    passed: Passed,
) -> Result<Code> {
    let stage = args.stage;
    let launch = Launch {
        isolate: (!args.no_isolation).then(|| Isolate {
            helper: std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into()),
            mask: context::key_paths_to_mask(args.key.as_deref(), root),
        }),
        notice: progress,
    };
    // A run kept while the store was down is recorded before this one runs.
    let rec = writer.recorder();
    for outcome in record_spooled(&rec, &spool(root), stage, &sha)
        .await
        .map_err(denied)?
    {
        print_spooled(writer, stage, &outcome);
    }
    let outcome = run_command_stage(
        &writer.recorder(),
        passed,
        CommandStage {
            stage,
            sha,
            argv: args.command,
            redact_env: args.redact_env,
            env: writer.env.clone(),
            runner: writer.runner.clone(),
            echo: true,
            launch,
            source,
            spool: Some(spool(root)),
        },
    )
    .await
    .map_err(denied)?;
    let exit = outcome
        .exit_code
        .map_or("a signal".to_owned(), |c| format!("exit code {c}"));
    say!(
        "ledger: {} {} (attempt {}, {exit}); evidence {} in {}",
        stage,
        outcome.result.as_str(),
        outcome.r.attempt,
        outcome.r.key(),
        writer.store.location()
    );
    Ok(outcome_code(outcome.result))
}

/// `decide`: the release decision over the whole chain.
async fn decide(writer: &Writer, sha: GitSha, passed: Passed) -> Result<Code> {
    let outcome = run_decide(
        &writer.recorder(),
        passed,
        DecideRequest {
            sha,
            runner: writer.runner.clone(),
            replay: None,
        },
    )
    .await
    .map_err(denied)?;
    print_decision(&outcome);
    Ok(match outcome.decision {
        Decision::Promote => Code::Success,
        Decision::Reject => Code::StageFailed,
    })
}

/// `build`, `deploy` and `smoke`: the stages configured by `ledger.toml`, with what
/// was prepared for them while their gate ran ([`ahead`]); its failures are
/// reported here, the config's first. `source` is what the source check found
/// (`build` records it: its contexts were exported from that tree).
async fn engine_stage(
    writer: &Writer,
    args: &StageArgs,
    sha: GitSha,
    source: Option<Source>,
    passed: Passed,
    prepared: std::result::Result<ahead::Prepared, ledger_pipeline::Error>,
) -> Result<std::result::Result<Recorded, ledger_pipeline::Error>> {
    let rec: Recorder<'_> = writer.recorder();
    let runner = &writer.runner;
    Ok(match prepared? {
        ahead::Prepared::Build(config, engine, exported) => {
            ledger_pipeline::stages::build::run_build(
                &rec, &engine, &config, sha, runner, passed, source, exported, &progress,
            )
            .await
        }
        ahead::Prepared::Deploy(config, engine) => {
            let req = ledger_pipeline::stages::deploy::DeployRequest {
                sha,
                environment: args.environment.clone(),
                runner: runner.clone(),
                lease_wait: std::time::Duration::from_secs(args.lease_wait),
                replay: None,
                promotion: None,
                env: writer.env.clone(),
            };
            ledger_pipeline::stages::deploy::run_deploy(
                &rec, &engine, &config, &req, passed, &progress,
            )
            .await
        }
        ahead::Prepared::Smoke(config) => {
            let env_config = config
                .environment(&args.environment)
                .map_err(ledger_pipeline::Error::from)?;
            ledger_pipeline::stages::smoke::run_smoke(
                &rec, env_config, sha, runner, passed, None, &progress,
            )
            .await
        }
    })
}

/// `ledger gate STAGE`: what the gate would decide now.
pub async fn gate(global: &Global, args: GateArgs) -> Result<Code> {
    let root = context::repo_root()?;
    let sha = context::resolve_sha(args.sha.as_deref(), &root)?;
    let reader = Reader::open_or(global, root, Code::Denied).await?;
    let report = ledger_verify::gate::check_stage(
        &mut reader.evidence(),
        args.stage,
        &sha,
        time::OffsetDateTime::now_utc(),
    )
    .await?;
    if args.json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| Failure::new(Code::Infrastructure, e))?;
        println!("{text}");
    } else if report.allowed() {
        println!("gate for `{}` ALLOWS {}", args.stage, sha);
        for u in &report.verdict.used {
            println!("  uses {} (attempt {})", u.key, u.attempt);
        }
    } else {
        println!("gate for `{}` DENIES {}", args.stage, sha);
        for r in &report.verdict.reasons {
            println!("  x {}: {}", r.rule, r.message);
        }
    }
    Ok(if report.allowed() {
        Code::Success
    } else {
        Code::Denied
    })
}
