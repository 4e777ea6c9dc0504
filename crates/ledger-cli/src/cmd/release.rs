//! Operations on stored releases: `ledger replay`, `ledger rollback`, `ledger
//! promote` and `ledger attest`. None builds an image; each deploys (or attests)
//! digests the evidence already holds.

use super::{denied, outcome_code, print_decision, progress};
use crate::args::{AttestArgs, Global, PromoteArgs, ReleaseRunArgs};
use crate::context::{self, Reader, Writer};
use crate::exit::{Code, Failure, Result};
use ledger_core::predicate::Outcome;
use ledger_core::GitSha;
use ledger_pipeline::release::released_config::released;
use ledger_pipeline::release::replay::{Mode, ReplayOutcome, ReplayRequest, Step};

/// `ledger replay SHA` and `ledger rollback --to SHA`: the validation chain step by
/// step, then deploy, smoke and decide as new attempts.
pub async fn replay(global: &Global, sha: &str, args: &ReleaseRunArgs, mode: Mode) -> Result<Code> {
    let root = context::repo_root()?;
    let sha = GitSha::parse(sha).map_err(|e| {
        Failure::input(e).hint(match mode {
            Mode::Replay => "give the full 40-character commit SHA: ledger replay <sha>",
            Mode::Rollback => "give the full 40-character commit SHA: ledger rollback --to <sha>",
        })
    })?;
    let writer = Writer::load(global, &root, args.key.as_deref(), None).await?;
    let what = match mode {
        Mode::Replay => "replay",
        Mode::Rollback => "rollback",
    };
    say!(
        "ledger: {what} of {sha} to `{}`; checking each step first",
        args.environment
    );
    say!("  ok SHA is a full commit SHA: {sha}");
    let config = released_config(&root, &sha, args)?;
    let engine = ledger_pipeline::connect_environment_engine(&config, &args.environment).await?;
    let req = ReplayRequest {
        mode,
        sha,
        environment: args.environment.clone(),
        runner: writer.runner.clone(),
        lease_wait: std::time::Duration::from_secs(args.lease_wait),
        env: writer.env.clone(),
    };
    let step = |s: Step, detail: &str| say!("  ok {s}: {detail}");
    let outcome = ledger_pipeline::release::replay::run(
        &writer.recorder(),
        &engine,
        &config,
        &req,
        &step,
        &progress,
    )
    .await
    .map_err(denied)?;
    print_replay(&outcome, mode);
    Ok(if outcome.promoted() {
        say!(
            "ledger: {what} of {sha} done: the same digests run in `{}`; no image was built",
            args.environment
        );
        Code::Success
    } else {
        Code::StageFailed
    })
}

/// The configuration the release runs under: the environment as `ledger.toml` of
/// its own tree has it, or, with `--current-config`, today's file (said so).
fn released_config(
    root: &std::path::Path,
    sha: &GitSha,
    args: &ReleaseRunArgs,
) -> Result<ledger_pipeline::config::Config> {
    let today = context::load_config(root)?;
    if args.current_config {
        say!(
            "  ! configuration: today's ledger.toml (--current-config), not the one {} was released with",
            sha.short()
        );
        return Ok(today);
    }
    let config = released(&today, sha, &args.environment).map_err(|e| {
        say!("  x configuration");
        Failure::from(e)
    })?;
    say!(
        "  ok configuration: environment `{}` as ledger.toml of {} has it",
        args.environment,
        sha.short()
    );
    Ok(config)
}

/// What failed in a replay or rollback, its decision, and what it rolled back from.
fn print_replay(outcome: &ReplayOutcome, mode: Mode) {
    if outcome.deploy.result != Outcome::Pass {
        say!("  x deploy: {}", outcome.deploy.summary);
    }
    if let Some(smoke) = outcome.smoke.as_ref().filter(|s| s.result != Outcome::Pass) {
        say!("  x smoke: {}", smoke.summary);
    }
    if let Some(decision) = &outcome.decision {
        print_decision(decision);
    }
    if let Some(restored) = &outcome.restored {
        say!(
            "ledger: {}; recorded as {}",
            restored.summary,
            restored.r.key()
        );
    }
    if mode == Mode::Rollback {
        say!(
            "ledger: rolled back from {}",
            outcome
                .rollback_from
                .map_or("(nothing running)".to_owned(), |s| s.to_string())
        );
    }
}

/// `ledger promote SHA --to ENV`: the promotion rule, then the same digests deployed.
pub async fn promote(global: &Global, args: PromoteArgs) -> Result<Code> {
    let root = context::repo_root()?;
    let sha = GitSha::parse(&args.sha).map_err(|e| {
        Failure::input(e)
            .hint("give the full 40-character commit SHA: ledger promote <sha> --to <env>")
    })?;
    let writer = Writer::load(global, &root, args.key.as_deref(), None).await?;
    let config = context::load_config(&root)?;
    let engine = ledger_pipeline::connect_environment_engine(&config, &args.to).await?;
    let req = ledger_pipeline::release::promote::PromoteRequest {
        sha,
        to: args.to.clone(),
        runner: writer.runner.clone(),
        lease_wait: std::time::Duration::from_secs(args.lease_wait),
        env: writer.env.clone(),
    };
    let recorded = ledger_pipeline::release::promote::run_promote(
        &writer.recorder(),
        &engine,
        &config,
        &req,
        &progress,
    )
    .await
    .map_err(denied)?;
    say!(
        "ledger: promote {} to `{}`: deploy {} ({}); evidence {} in {}",
        sha,
        args.to,
        recorded.result.as_str(),
        recorded.summary,
        recorded.r.key(),
        writer.store.location()
    );
    Ok(outcome_code(recorded.result))
}

/// `ledger attest [COMMIT]`: the release's SLSA statements attached to its images
/// again (exit 5 if any image could not take them).
pub async fn attest(global: &Global, args: AttestArgs) -> Result<Code> {
    let root = context::repo_root()?;
    let sha = super::resolve_commit(args.sha.as_deref(), &root)?;
    let reader = Reader::open(global, root).await?;
    let attested =
        ledger_pipeline::release::attest::attest(&reader.store, &reader.policy, &sha).await?;
    let statements = attested.statements.join(" and ");
    for image in &attested.attachment.attached {
        say!("ledger: {statements} attached to {image}");
    }
    for problem in &attested.attachment.failed {
        say!("ledger: NOT attached to {problem}");
    }
    Ok(if attested.attachment.failed.is_empty() {
        Code::Success
    } else {
        Code::Infrastructure
    })
}
