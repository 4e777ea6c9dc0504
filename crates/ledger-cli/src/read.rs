//! The read commands: `verify` (one SHA or `--all`), `show` and `log`. They never
//! write to the store; each prints text for people or `--json` for machines (the
//! JSON shapes are published in `schemas/output/`).

use crate::args::{Global, LogArgs, ReportArgs, ReportFormat, ShowArgs, VerifyArgs};
use crate::context;
use crate::exit::{Code, Failure, Result};
use ledger_core::GitSha;
use ledger_verify::evidence::{ChainReport, Evidence};
use ledger_verify::show::{ShowReport, ShownArtifact};
use ledger_verify::walk::AllReport;
use std::io::IsTerminal;

/// Prints `value` as pretty JSON on stdout.
pub fn print_json(value: &impl serde::Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::new(Code::Infrastructure, format!("cannot encode JSON: {e}")))?;
    println!("{text}");
    Ok(())
}

fn parse_sha(s: &str) -> Result<GitSha> {
    GitSha::parse(s).map_err(|e| Failure::input(e).hint("give the full 40-character commit SHA"))
}

pub async fn verify(global: &Global, args: VerifyArgs) -> Result<Code> {
    if args.all {
        return verify_all(global, &args).await;
    }
    let root = context::repo_root()?;
    let sha = parse_sha(args.sha.as_deref().unwrap_or_default())?;
    let (policy, _) = context::load_policy(global, &root)?;
    let store = context::open_store(global, &root).await?;
    let report = Evidence::new(&store, &policy).check_sha(&sha).await?;
    if args.json {
        print_json(&report)?;
    } else {
        print_chain(&report, store.location());
    }
    Ok(if report.ok {
        Code::Success
    } else {
        Code::VerificationFailed
    })
}

/// A progress bar on a terminal; on anything else, a plain line every tenth.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    quiet: bool,
}

impl Progress {
    fn new(quiet: bool) -> Progress {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(0);
            let style = indicatif::ProgressStyle::with_template(
                "{prefix} [{bar:40}] {pos}/{len} SHAs {elapsed}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix("verifying");
            bar
        });
        Progress { bar, quiet }
    }

    fn update(&self, done: usize, total: usize) {
        match &self.bar {
            Some(bar) => {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            }
            None if !self.quiet => {
                let step = (total / 10).max(1);
                if done % step == 0 || done == total {
                    eprintln!("ledger: verified {done}/{total} SHAs");
                }
            }
            None => {}
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

async fn verify_all(global: &Global, args: &VerifyArgs) -> Result<Code> {
    let root = context::repo_root()?;
    let (policy, _) = context::load_policy(global, &root)?;
    let store = context::open_store(global, &root).await?;
    let threads = args.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let progress = Progress::new(args.json);
    let report =
        ledger_verify::walk::verify_all(&store, &policy, threads, &|d, t| progress.update(d, t))
            .await?;
    progress.finish();
    if args.json {
        print_json(&report)?;
    } else {
        print_summary(&report, store.location());
    }
    Ok(if report.ok {
        Code::Success
    } else {
        Code::VerificationFailed
    })
}

fn print_summary(report: &AllReport, location: &str) {
    for chain in &report.failed {
        for a in chain.artifacts.iter().filter(|a| !a.ok) {
            println!("FAIL  {}", a.key);
            for p in &a.problems {
                println!("      {p}");
            }
        }
        if chain.artifacts.is_empty() {
            println!(
                "FAIL  {}: no evidence envelopes, only other objects",
                chain.sha
            );
        }
    }
    for u in &report.unexpected {
        println!("FAIL  {u}\n      not ledger evidence: no stage writes this object");
    }
    println!();
    println!("store      {location}");
    println!("{:<10} {:>8} {:>8} {:>8}", "", "total", "ok", "failed");
    println!(
        "{:<10} {:>8} {:>8} {:>8}",
        "SHAs",
        report.shas,
        report.shas - report.shas_failed,
        report.shas_failed
    );
    println!(
        "{:<10} {:>8} {:>8} {:>8}",
        "artifacts", report.artifacts, report.artifacts_ok, report.artifacts_failed
    );
    if !report.unexpected.is_empty() {
        println!("{:<10} {:>8}", "foreign", report.unexpected.len());
    }
    if report.ok {
        println!("verified: every artifact of every SHA");
    } else {
        println!("verification FAILED: see the FAIL lines above");
    }
}

pub fn print_chain(report: &ChainReport, location: &str) {
    if report.artifacts.is_empty() {
        println!("no evidence stored for {} in {location}", report.sha);
        println!("verification FAILED: nothing to verify");
        return;
    }
    for a in &report.artifacts {
        if a.ok {
            let result = a.result.map(|r| r.as_str()).unwrap_or("-");
            let signer = a
                .signers
                .first()
                .map(|s| &s[..12.min(s.len())])
                .unwrap_or("-");
            println!("ok    {:<64} {result:<4} signed by {signer}", a.key);
            for n in &a.notes {
                println!("      note: {n}");
            }
        } else {
            println!("FAIL  {}", a.key);
            for p in &a.problems {
                println!("      {p}");
            }
        }
    }
    for u in &report.unexpected {
        println!("FAIL  {u}\n      not ledger evidence: an object that no stage writes sits among this commit's evidence");
    }
    let failed = report.artifacts.iter().filter(|a| !a.ok).count() + report.unexpected.len();
    if report.ok {
        println!(
            "verified: {} artifact(s) for {}",
            report.artifacts.len(),
            report.sha
        );
    } else {
        println!(
            "verification FAILED: {failed} problem artifact(s) for {}",
            report.sha
        );
    }
}

pub async fn show(global: &Global, args: ShowArgs) -> Result<Code> {
    let root = context::repo_root()?;
    let sha = parse_sha(&args.sha)?;
    let (policy, _) = context::load_policy(global, &root)?;
    let store = context::open_store(global, &root).await?;
    let report = ledger_verify::show::show(&mut Evidence::new(&store, &policy), &sha).await?;
    if args.json {
        print_json(&report)?;
    } else {
        print_show(&report, store.location());
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

pub async fn log(global: &Global, args: LogArgs) -> Result<Code> {
    let root = context::repo_root()?;
    let (policy, _) = context::load_policy(global, &root)?;
    let store = context::open_store(global, &root).await?;
    let mut evidence = Evidence::new(&store, &policy);
    let entries =
        ledger_verify::show::log(&mut evidence, args.environment.as_deref(), args.limit).await?;
    if args.json {
        print_json(&entries)?;
        return Ok(Code::Success);
    }
    if entries.is_empty() {
        println!("no commits with evidence in {}", store.location());
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
            "{}  {:<11} {result:<4} decision {decision:<7} env {envs:<12} {}",
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

pub async fn report(global: &Global, args: ReportArgs) -> Result<Code> {
    let root = context::repo_root()?;
    let sha = parse_sha(&args.sha)?;
    let (policy, _) = context::load_policy(global, &root)?;
    let store = context::open_store(global, &root).await?;
    let mut evidence = Evidence::new(&store, &policy);
    let report = ledger_pipeline::observe::metrics::report(&mut evidence, &sha).await?;
    let text = match args.format {
        ReportFormat::Markdown => ledger_pipeline::observe::metrics::markdown(&report),
        ReportFormat::Html => ledger_pipeline::observe::metrics::html(&report),
        ReportFormat::Status => {
            ledger_pipeline::observe::metrics::status_update(&report, store.location())
        }
    };
    match &args.out {
        None => print!("{text}"),
        Some(path) => {
            crate::commands::create_new(path, text.as_bytes(), false)?;
            eprintln!("ledger: wrote {}", path.display());
        }
    }
    Ok(if report.chain.ok {
        Code::Success
    } else {
        Code::VerificationFailed
    })
}
