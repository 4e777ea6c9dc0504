//! `ledger show SHA` (a commit's chain as people read it) and `ledger log` (commits
//! newest first). Never write; text for people or `--json`.

use super::{print_json, resolve_commit};
use crate::args::{Global, LogArgs, ShowArgs};
use crate::context::{self, Reader};
use crate::exit::{Code, Result};
use ledger_verify::show::{ShowReport, ShownArtifact};

/// `ledger show`.
pub async fn show(global: &Global, args: ShowArgs) -> Result<Code> {
    let root = context::repo_root()?;
    let sha = resolve_commit(args.sha.as_deref(), &root)?;
    let reader = Reader::open(global, root).await?;
    let report = ledger_verify::show::show(&mut reader.evidence(), &sha).await?;
    if args.json {
        print_json(&report)?;
    } else {
        print_show(&report, reader.store.location());
    }
    Ok(if report.ok {
        Code::Success
    } else {
        Code::VerificationFailed
    })
}

fn time_of(t: Option<time::OffsetDateTime>) -> String {
    t.and_then(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
    .unwrap_or_else(|| "-".into())
}

fn print_artifact(a: &ShownArtifact) {
    if !a.ok {
        println!(
            "{:<11} #{:<2} FAILED VERIFICATION  {}",
            a.stage, a.attempt, a.key
        );
        for p in &a.problems {
            println!("    x {p}");
        }
        return;
    }
    let result = a.result.map_or("-", |r| r.as_str());
    let signer = a.signers.first().map_or("-", |s| &s[..12.min(s.len())]);
    println!(
        "{:<11} #{:<2} {result:<4} {} ({} ms) signed by {signer}  {}",
        a.stage,
        a.attempt,
        time_of(a.finished_at),
        a.duration_ms.unwrap_or(0),
        a.key
    );
    if let Some(r) = &a.runner {
        let run = r.run_url.as_deref().or(r.run_id.as_deref()).unwrap_or("-");
        println!("    runner       {} ({}, run {run})", r.host, r.ci_provider);
    }
    for f in &a.facts {
        println!("    {:<12} {}", f.name, f.value);
    }
    for i in &a.inputs {
        println!(
            "    input        {} sha256:{}",
            i.key,
            &i.sha256.to_hex()[..16]
        );
    }
}

fn print_show(report: &ShowReport, location: &str) {
    println!("commit {} in {location}", report.sha);
    if report.artifacts.is_empty() {
        println!("no evidence stored");
    }
    for a in &report.artifacts {
        print_artifact(a);
    }
    for u in &report.unexpected {
        println!("unexpected   {u} (not ledger evidence)");
    }
    println!(
        "{}",
        if report.ok {
            "chain verified"
        } else {
            "chain FAILED verification"
        }
    );
}

/// `ledger log`.
pub async fn log(global: &Global, args: LogArgs) -> Result<Code> {
    let reader = Reader::load(global).await?;
    let entries = ledger_verify::show::log(
        &mut reader.evidence(),
        args.environment.as_deref(),
        args.limit,
    )
    .await?;
    if args.json {
        print_json(&entries)?;
        return Ok(Code::Success);
    }
    if entries.is_empty() {
        println!("no commits with evidence in {}", reader.store.location());
    } else {
        println!(
            "{:<40}  {:<11} {:<6} {:<16} {:<16} LAST ACTIVITY",
            "COMMIT", "FURTHEST", "RESULT", "DECISION", "ENVIRONMENTS"
        );
    }
    for e in &entries {
        let result = e.furthest_result.map_or("-", |r| r.as_str());
        let decision = e.decision.as_deref().unwrap_or("-");
        let envs = if e.environments.is_empty() {
            "-".to_owned()
        } else {
            e.environments.join(",")
        };
        println!(
            "{}  {:<11} {result:<6} {decision:<16} {envs:<16} {}",
            e.sha,
            e.furthest_stage,
            time_of(e.last_activity)
        );
        for p in &e.problems {
            println!("    x {p}");
        }
    }
    Ok(Code::Success)
}
