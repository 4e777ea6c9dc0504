//! `ledger verify SHA` and `ledger verify --all`: every stored artifact checked
//! offline against the policy; `ledger verify --image REF`: an image's attestations
//! checked against the policy alone. Never writes; text for people or `--json`.

use super::print_json;
use crate::args::{Global, VerifyArgs};
use crate::context::Reader;
use crate::exit::{Code, Result};
use ledger_verify::chain::ShaReads;
use ledger_verify::evidence::ChainReport;
use ledger_verify::walk::AllReport;
use std::io::IsTerminal;

/// `ledger verify`.
pub async fn verify(global: &Global, args: VerifyArgs) -> Result<Code> {
    if args.all {
        return verify_all(global, &args).await;
    }
    if let Some(reference) = &args.image {
        return verify_image(global, reference, args.json).await;
    }
    let root = crate::context::repo_root()?;
    let sha = super::resolve_commit(args.sha.as_deref(), &root)?;
    // The chain's first reads go out beside the policy's trust check.
    let (reader, reads) = Reader::open_reading(global, root, async |store, policy| {
        Ok(ShaReads::read(store, &sha, &policy).await?)
    })
    .await?;
    let mut evidence = reader.evidence();
    let mut report = evidence.check_sha_read(reads).await?;
    if let Some(file) = &args.checkpoint {
        let bytes = crate::context::read_limited(file, "checkpoint")?;
        let index = evidence.log_index().await?;
        let keys: Vec<&ledger_core::PublicKey> =
            reader.policy.keys().iter().map(|k| &k.key).collect();
        if let Err(problem) = ledger_verify::tlog::check_checkpoint(&bytes, &index, &keys) {
            report.ok = false;
            report.log.push(format!("{}: {problem}", file.display()));
        }
    }
    if args.json {
        print_json(&report)?;
    } else {
        print_chain(&report, reader.store.location());
    }
    Ok(verified(report.ok))
}

/// `ledger verify --image REF`: the image's attestations against the policy, with
/// no store (the policy's owners are checked against the checkout's root).
async fn verify_image(global: &Global, reference: &str, json: bool) -> Result<Code> {
    let root = crate::context::repo_root()?;
    let (policy, bytes) = crate::context::load_policy(global, &root)?;
    let no_store = ledger_verify::Store::empty("(none: --image reads no store)");
    let policy = crate::context::load_signed_policy(
        global,
        &root,
        &no_store,
        (policy, &bytes),
        Code::VerificationFailed,
    )
    .await?;
    let report = ledger_pipeline::observe::image::verify_image(&policy, reference).await?;
    if json {
        print_json(&report)?;
        return Ok(verified(report.ok));
    }
    print_image(&report);
    Ok(verified(report.ok))
}

/// An image's verdict for people: each valid attestation, then notes and problems.
fn print_image(report: &ledger_verify::image::ImageReport) {
    println!("image {}", report.image);
    for line in &report.verified {
        println!("  ok {line}");
    }
    if report.other > 0 {
        println!(
            "  ({} attestation(s) of other types not checked)",
            report.other
        );
    }
    for note in &report.notes {
        println!("  note: {note}");
    }
    for problem in &report.problems {
        println!("  x {problem}");
    }
    match (&report.commit, &report.verdict) {
        (Some(commit), Some(verdict)) if report.ok => {
            println!("verified: commit {commit}, verification summary {verdict}");
        }
        _ => println!("NOT VERIFIED: {} problem(s)", report.problems.len()),
    }
}

fn verified(ok: bool) -> Code {
    if ok {
        Code::Success
    } else {
        Code::VerificationFailed
    }
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
                    say!("ledger: verified {done}/{total} SHAs");
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
    let reader = Reader::load(global).await?;
    let threads = args.jobs.unwrap_or_else(ledger_verify::parallel::cores);
    let progress = Progress::new(args.json);
    let report =
        ledger_verify::walk::verify_all(&reader.store, &reader.policy, threads, &|d, t| {
            progress.update(d, t)
        })
        .await?;
    progress.finish();
    if args.json {
        print_json(&report)?;
    } else {
        print_summary(&report, reader.store.location());
    }
    Ok(verified(report.ok))
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
    for problem in &report.log {
        println!("FAIL  log\n      {problem}");
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

fn print_chain(report: &ChainReport, location: &str) {
    if report.artifacts.is_empty() {
        println!("no evidence stored for {} in {location}", report.sha);
        println!("verification FAILED: nothing to verify");
        return;
    }
    // Keys of other environments and later attempts are longer than attempt 1's:
    // the column is as wide as the longest, so results and signers line up.
    let width = report
        .artifacts
        .iter()
        .map(|a| a.key.len())
        .max()
        .unwrap_or(0);
    for a in &report.artifacts {
        if a.ok {
            let result = a.result.map(|r| r.as_str()).unwrap_or("-");
            let signer = a
                .signers
                .first()
                .map(|s| &s[..12.min(s.len())])
                .unwrap_or("-");
            println!("ok    {:<width$} {result:<4} signed by {signer}", a.key);
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
    for problem in &report.log {
        println!("FAIL  log\n      {problem}");
    }
    let failed = report.artifacts.iter().filter(|a| !a.ok).count()
        + report.unexpected.len()
        + report.log.len();
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
