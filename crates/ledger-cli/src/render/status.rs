//! The status update a release manager posts to the team (Status, Changes, Tests,
//! Deploy, Issues / Failures, Escalations), filled from the verified chain. Its
//! `Status:` word is [`Standing`]'s, like every report's banner. Escalations are
//! raised where the evidence can show them: health checks failed and the previous release
//! was not restored; a production release failing its checks; evidence that does not
//! verify. (An engine that is unreachable or a secret that is missing stops a stage
//! before it writes anything, so no evidence can show those: `ledger doctor` does.)

use super::{latest_per_env, typed, Standing};
use ledger_core::predicate::{
    CommandPredicate, DecisionPredicate, DeploymentPredicate, Outcome, SmokePredicate,
};
use ledger_pipeline::observe::metrics::Report;
use ledger_verify::show::{ShowReport, ShownArtifact};
use std::fmt::Write as _;

/// What went wrong in a chain, what recovers it, and what must go to a person.
#[derive(Default)]
struct Findings {
    issues: Vec<String>,
    recovery: Vec<String>,
    escalations: Vec<String>,
}

/// The status update of `r`; `location` is the store, for the metadata links.
pub fn status_update(r: &Report, location: &str) -> String {
    let c = &r.chain;
    let latest = latest_per_env(c);
    let findings = findings(c, &latest);
    let mut out = String::new();
    let _ = writeln!(out, "Status: {}\n", Standing::of(c).status_word());
    let _ = writeln!(out, "Changes");
    let _ = writeln!(out, "- Commits: {}", c.sha);
    let _ = writeln!(
        out,
        "- Files: not recorded in evidence (git show --stat {})",
        c.sha
    );
    tests_section(&mut out, &latest);
    deploy_section(&mut out, &latest, location);
    problems_section(&mut out, &findings);
    out
}

/// The findings of a chain: unverified evidence, then each failed latest attempt.
fn findings(c: &ShowReport, latest: &[&ShownArtifact]) -> Findings {
    let mut f = Findings::default();
    for a in c.artifacts.iter().filter(|a| !a.ok) {
        f.issues.push(format!(
            "{} does not verify: {}",
            a.key,
            a.problems.join("; ")
        ));
        f.escalations.push(format!(
            "evidence {} fails verification: integrity of the record is in doubt",
            a.key
        ));
    }
    for a in latest {
        if a.predicate.is_none() || a.result != Some(Outcome::Fail) {
            continue;
        }
        match a.kind.as_str() {
            "deployment" => failed_deploy(&mut f, a),
            "smoke" => failed_smoke(&mut f, a, c),
            "decision" => rejected(&mut f, a),
            _ => f.issues.push(format!("{} failed ({})", a.stage, a.key)),
        }
    }
    f
}

fn failed_deploy(f: &mut Findings, a: &ShownArtifact) {
    let p = typed::<DeploymentPredicate>(a);
    let env = p.as_ref().map_or("-", |p| p.environment.as_str());
    let failure = p.as_ref().and_then(|p| p.failure.as_ref());
    let why = failure.map_or("deploy failed", |f| f.message.as_str());
    f.issues.push(format!("deploy to {env} failed: {why}"));
    if failure.is_some_and(|f| f.restored) {
        let previous = p
            .as_ref()
            .and_then(|p| p.previous_release.as_ref())
            .map_or("the previous release".to_owned(), |s| s.to_string());
        f.recovery
            .push(format!("{env}: {previous} restored automatically"));
    } else {
        f.recovery
            .push(format!("{env}: the previous release was NOT restored"));
        f.escalations.push(format!(
            "health checks failed in {env} and rollback was not successful"
        ));
    }
}

fn failed_smoke(f: &mut Findings, a: &ShownArtifact, c: &ShowReport) {
    let p = typed::<SmokePredicate>(a);
    let env = p.as_ref().map_or("-", |p| p.environment.as_str());
    let failed: Vec<String> = p
        .iter()
        .flat_map(|p| &p.checks)
        .filter(|k| !k.ok)
        .map(|k| {
            let status = k.status.map_or("null".to_owned(), |s| s.to_string());
            format!("{} ({status})", k.name)
        })
        .collect();
    f.issues
        .push(format!("smoke in {env} failed: {}", failed.join(", ")));
    f.recovery.push(format!(
        "{env}: roll back with `ledger rollback --to <last promoted SHA> --env {env}`"
    ));
    if env == ledger_core::DEFAULT_ENV {
        f.escalations.push(format!(
            "production checks fail for {}: production-impacting until rolled back",
            c.sha
        ));
    }
}

fn rejected(f: &mut Findings, a: &ShownArtifact) {
    let p = typed::<DecisionPredicate>(a);
    for reason in p.iter().flat_map(|p| &p.reasons) {
        f.issues
            .push(format!("release rule {}: {}", reason.rule, reason.message));
    }
}

/// The wrapped commands (commit, integration), their results and test counts.
fn tests_section(out: &mut String, latest: &[&ShownArtifact]) {
    let _ = writeln!(out, "\nTests");
    let tests: Vec<&&ShownArtifact> = latest
        .iter()
        .filter(|a| matches!(a.kind.as_str(), "commit" | "integration"))
        .collect();
    if tests.is_empty() {
        let _ = writeln!(out, "- none recorded");
    }
    for a in tests {
        let p = typed::<CommandPredicate>(a);
        let command = p.as_ref().map_or_else(
            || "-".into(),
            |p| ledger_verify::show::shell_line(&p.command.argv),
        );
        let counts = p
            .as_ref()
            .and_then(|p| p.tests)
            .map(|t| format!(" ({} passed, {} failed)", t.passed, t.failed))
            .unwrap_or_default();
        let result = a.result.map_or("unverified", |r| r.as_str());
        let _ = writeln!(out, "- {}: `{command}`: {result}{counts}", a.stage);
    }
}

/// Each environment's latest deployment: where, by which run, with what result.
fn deploy_section(out: &mut String, latest: &[&ShownArtifact], location: &str) {
    let _ = writeln!(out, "\nDeploy");
    let deploys: Vec<&&ShownArtifact> = latest.iter().filter(|a| a.kind == "deployment").collect();
    if deploys.is_empty() {
        let _ = writeln!(out, "- not deployed yet");
    }
    for a in deploys {
        let p = typed::<DeploymentPredicate>(a);
        let env = p.as_ref().map_or("-", |p| p.environment.as_str());
        let runner = a.runner.as_ref();
        let run = runner
            .and_then(|r| r.run_url.clone().or(r.run_id.clone()))
            .unwrap_or_else(|| "local run".into());
        let result = match a.result {
            Some(Outcome::Pass) => "success",
            Some(Outcome::Fail) => "failed",
            None => "unverified",
        };
        let how = p
            .as_ref()
            .and_then(|p| p.promotion.as_ref())
            .map(|pr| format!(", promoted from {}", pr.from))
            .unwrap_or_default();
        let _ = writeln!(out, "- Environment: {env}{how}");
        let _ = writeln!(out, "  - Host: {}", runner.map_or("-", |r| r.host.as_str()));
        let _ = writeln!(out, "  - Workflow/run: {run}");
        let _ = writeln!(out, "  - Result: {result}");
        let _ = writeln!(out, "  - Metadata: {location}/{}", a.key);
    }
}

/// Issues with their recovery, then escalations.
fn problems_section(out: &mut String, f: &Findings) {
    let _ = writeln!(out, "\nIssues / Failures");
    if f.issues.is_empty() {
        let _ = writeln!(out, "- none");
    }
    for i in &f.issues {
        let _ = writeln!(out, "- {i}");
    }
    for r in &f.recovery {
        let _ = writeln!(out, "- Recovery: {r}");
    }
    let _ = writeln!(out, "\nEscalations");
    if f.escalations.is_empty() {
        let _ = writeln!(out, "- none");
    }
    for e in &f.escalations {
        let _ = writeln!(out, "- {e}");
    }
}
