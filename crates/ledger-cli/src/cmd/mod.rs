//! One file per command group: each resolves its inputs, calls the library, prints,
//! and picks the exit code. This module dispatches and holds what several share.

mod checkpoint;
mod doctor;
mod init;
mod policy;
mod prune;
mod release;
mod report;
mod show;
mod stage;
mod status;
mod verify;

use crate::args::{Cli, Command, KeysCommand};
use crate::exit::{Code, Failure, Result};
use ledger_core::predicate::Outcome;
use ledger_core::{GitSha, Stage};
use ledger_pipeline::release::replay::Mode;
use ledger_pipeline::stages::decide::{DecideOutcome, Decision};
use std::io::Write;
use std::path::Path;

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Result<Code> {
    let global = &cli.global;
    match cli.command {
        Command::Init => init::init(),
        Command::Keys(KeysCommand::Generate {
            private_key,
            public_key,
        }) => init::keys_generate(&private_key, &public_key),
        Command::Keys(KeysCommand::Id { file }) => init::keys_id(&file),
        Command::Policy(cmd) => policy::policy(global, cmd).await,
        Command::Stage(args) => stage::stage(global, args).await,
        Command::Verify(args) => verify::verify(global, args).await,
        Command::Checkpoint(args) => checkpoint::checkpoint(global, args).await,
        Command::Show(args) => show::show(global, args).await,
        Command::Log(args) => show::log(global, args).await,
        Command::Report(args) => report::report(global, args).await,
        Command::Doctor(args) => doctor::doctor(global, args).await,
        Command::Gate(args) => stage::gate(global, args).await,
        Command::Replay(args) => release::replay(global, &args.sha, &args.run, Mode::Replay).await,
        Command::Rollback(args) => {
            release::replay(global, &args.to, &args.run, Mode::Rollback).await
        }
        Command::Promote(args) => release::promote(global, args).await,
        Command::Status(args) => status::status(global, args).await,
        Command::Prune(args) => prune::prune(global, args).await,
        Command::Attest(args) => release::attest(global, args).await,
    }
}

/// Prints `value` as pretty JSON on stdout.
pub fn print_json(value: &impl serde::Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::new(Code::Infrastructure, format!("cannot encode JSON: {e}")))?;
    println!("{text}");
    Ok(())
}

/// A commit SHA given on the command line.
/// The commit a read command is about: a full SHA as given, else a revision git
/// resolves in the repository at `root` (`HEAD` when none is given), so `ledger show
/// 0b0679f` and `ledger report HEAD` work as `git log` users expect.
pub fn resolve_commit(revision: Option<&str>, root: &Path) -> Result<GitSha> {
    let revision = revision.unwrap_or("HEAD");
    if let Ok(sha) = GitSha::parse(revision) {
        return Ok(sha);
    }
    ledger_pipeline::source::resolve(root, revision)
        .map_err(|e| ledger_pipeline::Error::from(e).into())
}

/// A progress line from a long stage, on stderr.
pub fn progress(line: &str) {
    say!("ledger: {line}");
}

/// Exit code 0 for a pass, 1 for a recorded failure.
pub fn outcome_code(result: Outcome) -> Code {
    match result {
        Outcome::Pass => Code::Success,
        Outcome::Fail => Code::StageFailed,
    }
}

/// The time as RFC 3339 text (empty if it cannot be formatted).
pub fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Creates `path` with `contents`, failing if it exists; `private` sets mode 0600
/// from the start, so the secret is never readable by others, not even briefly.
pub fn create_new(path: &Path, contents: &[u8], private: bool) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| Failure::input(format!("cannot create {}: {e}", parent.display())))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Failure::input(format!(
                "{} already exists; refusing to overwrite it",
                path.display()
            ))
            .hint("move it away first if you really mean to replace it")
        } else {
            Failure::input(format!("cannot create {}: {e}", path.display()))
        }
    })?;
    file.write_all(contents)
        .and_then(|_| file.sync_all())
        .map_err(|e| Failure::input(format!("cannot write {}: {e}", path.display())))
}

/// Turns a gate denial into exit code 3 with its reasons; other errors pass through.
pub fn denied(e: ledger_pipeline::Error) -> Failure {
    match e {
        ledger_pipeline::Error::At { step, source } => {
            say!("  x {step}");
            denied(*source)
        }
        ledger_pipeline::Error::Denied(report) => {
            let mut message = format!(
                "gate denied `{}` for {}: nothing ran, nothing was written",
                report.subject, report.sha
            );
            for r in &report.verdict.reasons {
                message.push_str(&format!("\n  x {}: {}", r.rule, r.message));
            }
            let failure = Failure::new(Code::Denied, message);
            match report.subject.parse::<Stage>() {
                Ok(_) => failure.hint(format!(
                    "`ledger gate {} --sha {} --json` shows the verdict as JSON",
                    report.subject, report.sha
                )),
                Err(_) => failure,
            }
        }
        other => other.into(),
    }
}

/// The release decision and its reasons, on stderr.
pub fn print_decision(outcome: &DecideOutcome) {
    match outcome.decision {
        Decision::Promote => say!("ledger: decision PROMOTE; every release rule holds"),
        Decision::Reject => {
            say!(
                "ledger: decision REJECT; {} release rule(s) failed:",
                outcome.reasons.len()
            );
            for r in &outcome.reasons {
                say!("  x {}: {}", r.rule, r.message);
            }
        }
    }
    say!(
        "ledger: evidence {} and {} (lead time {} ms)",
        outcome.decision_key,
        outcome.timing_key,
        outcome.lead_time_ms
    );
    let Some(attestations) = &outcome.attestations else {
        return;
    };
    say!("ledger: SLSA verification summary {}", attestations.vsa_key);
    let Some(attachment) = &attestations.attachment else {
        say!("ledger: no image of the release is in a registry: its attestations are in the store only");
        return;
    };
    for image in &attachment.attached {
        say!("ledger: VSA and provenance attached to {image}");
    }
    for problem in &attachment.failed {
        say!("ledger: warning: attestations NOT attached to {problem}; attach them again with `ledger attest {}`", outcome.sha);
    }
}
