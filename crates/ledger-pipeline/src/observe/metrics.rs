//! Reports for people: one release's chain as Markdown (a CI step summary) or as a
//! self-contained HTML page, with the delivery metrics of the whole store beside it.
//!
//! Metrics follow seeds 003/004, computed from verified evidence only:
//! - **deploy duration**: p50/p95 of every deployment's recorded `duration_ms`, against
//!   the 10-minute target;
//! - **lead time**: p50/p95 of `lead_time_ms` (first commit stage to decision) of the
//!   first, non-replay decision of each SHA; replays and rollbacks would count an old
//!   commit's age, so they are counted apart;
//! - **change-failure rate**: of the SHAs whose first non-replay decision exists, the
//!   share it rejected;
//! - **replays and rollbacks**: decisions made by `ledger replay` / `ledger rollback`.
//!
//! The HTML page has no script and loads nothing: inline CSS, bars sized by inline
//! widths, every string escaped.

use crate::error::Error;
use ledger_core::predicate::{Decision, DecisionPredicate, DeploymentPredicate, TimingPredicate};
use ledger_core::{ArtifactKind, ArtifactRef, GitSha};
use ledger_verify::evidence::Evidence;
use ledger_verify::show::{human_ms, ShowReport, ShownArtifact};
use ledger_verify::walk::StoreIndex;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Seed 004's goal: p95 production deployment duration at most 10 minutes.
pub const DEPLOY_TARGET_MS: u64 = 10 * 60 * 1000;

/// Delivery metrics over every verified artifact in the store.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Metrics {
    pub deploys: usize,
    pub deploys_failed: usize,
    pub deploy_p50_ms: Option<u64>,
    pub deploy_p95_ms: Option<u64>,
    pub deploy_target_ms: u64,
    pub lead_times: usize,
    pub lead_time_p50_ms: Option<u64>,
    pub lead_time_p95_ms: Option<u64>,
    pub releases_decided: usize,
    pub releases_rejected: usize,
    /// `releases_rejected / releases_decided`, when any release was decided.
    pub change_failure_rate: Option<f64>,
    pub replays: usize,
    pub rollbacks: usize,
    /// Artifacts left out because they did not verify.
    pub unverified: usize,
}

impl Metrics {
    /// Whether the p95 deploy duration is over the target.
    pub fn over_target(&self) -> bool {
        self.deploy_p95_ms
            .is_some_and(|p| p > self.deploy_target_ms)
    }

    /// The metrics as (element id, name, value) rows, for every report format.
    pub fn rows(&self) -> Vec<(&'static str, &'static str, String)> {
        let target = match self.deploy_p95_ms {
            Some(_) if self.over_target() => " (over the 10 min target)",
            Some(_) => " (within the 10 min target)",
            None => "",
        };
        vec![
            (
                "m-deploys",
                "deploys",
                format!("{} ({} failed)", self.deploys, self.deploys_failed),
            ),
            (
                "m-deploy",
                "deploy duration p50 / p95",
                format!(
                    "{} / {}{target}",
                    opt_ms(self.deploy_p50_ms),
                    opt_ms(self.deploy_p95_ms)
                ),
            ),
            (
                "m-lead",
                "lead time p50 / p95",
                format!(
                    "{} / {} ({} releases)",
                    opt_ms(self.lead_time_p50_ms),
                    opt_ms(self.lead_time_p95_ms),
                    self.lead_times
                ),
            ),
            (
                "m-cfr",
                "change-failure rate",
                format!(
                    "{} ({} of {} releases rejected)",
                    rate(self.change_failure_rate),
                    self.releases_rejected,
                    self.releases_decided
                ),
            ),
            (
                "m-replays",
                "replays / rollbacks",
                format!("{} / {}", self.replays, self.rollbacks),
            ),
        ]
    }
}

/// The nearest-rank percentile of `values` (sorted here); `None` when empty.
pub fn percentile(values: &mut [u64], p: f64) -> Option<u64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    Some(values[rank.clamp(1, values.len()) - 1])
}

/// Computes [`Metrics`] over every SHA in the store.
pub async fn metrics(evidence: &mut Evidence<'_>) -> Result<Metrics, Error> {
    let store = evidence.store();
    let index = StoreIndex::build(store).await?;
    let mut m = Metrics {
        deploy_target_ms: DEPLOY_TARGET_MS,
        ..Metrics::default()
    };
    let mut durations = Vec::new();
    let mut lead_times = Vec::new();
    for (sha, objects) in &index.shas {
        let refs = objects.refs(sha);
        for r in refs.iter().filter(|r| r.kind == ArtifactKind::Deployment) {
            match evidence.check(r).await?.into_result() {
                Ok(a) => {
                    m.deploys += 1;
                    if a.header().result == ledger_core::predicate::Outcome::Fail {
                        m.deploys_failed += 1;
                    }
                    durations.push(a.predicate_as::<DeploymentPredicate>()?.duration_ms);
                }
                Err(_) => m.unverified += 1,
            }
        }
        // Decisions in attempt order; the first that is not a replay is the release's.
        let mut first_release: Option<(ArtifactRef, DecisionPredicate)> = None;
        for r in refs.iter().filter(|r| r.kind == ArtifactKind::Decision) {
            match evidence.check(r).await?.into_result() {
                Ok(a) => {
                    let p = a.predicate_as::<DecisionPredicate>()?;
                    if p.is_replay() {
                        if matches!(p.rollback_from, Some(Some(_))) {
                            m.rollbacks += 1;
                        } else {
                            m.replays += 1;
                        }
                    } else if first_release.is_none() {
                        first_release = Some((*r, p.clone()));
                    }
                }
                Err(_) => m.unverified += 1,
            }
        }
        if let Some((decision, p)) = first_release {
            m.releases_decided += 1;
            if p.decision == Decision::Reject {
                m.releases_rejected += 1;
            }
            let timing = ArtifactRef::new(ArtifactKind::Timing, *sha, decision.attempt);
            if refs.contains(&timing) {
                match evidence.check(&timing).await?.into_result() {
                    Ok(a) => {
                        lead_times.push(a.predicate_as::<TimingPredicate>()?.lead_time_ms);
                    }
                    Err(_) => m.unverified += 1,
                }
            }
        }
    }
    m.deploy_p50_ms = percentile(&mut durations, 50.0);
    m.deploy_p95_ms = percentile(&mut durations, 95.0);
    m.lead_times = lead_times.len();
    m.lead_time_p50_ms = percentile(&mut lead_times, 50.0);
    m.lead_time_p95_ms = percentile(&mut lead_times, 95.0);
    m.change_failure_rate =
        (m.releases_decided > 0).then(|| m.releases_rejected as f64 / m.releases_decided as f64);
    Ok(m)
}

/// A release's report: its chain and the store's metrics.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub chain: ShowReport,
    pub metrics: Metrics,
}

/// Builds the report of `sha`.
pub async fn report(evidence: &mut Evidence<'_>, sha: &GitSha) -> Result<Report, Error> {
    let chain = ledger_verify::show::show(evidence, sha).await?;
    let metrics = metrics(evidence).await?;
    Ok(Report { chain, metrics })
}

fn opt_ms(v: Option<u64>) -> String {
    v.map_or("-".into(), human_ms)
}

fn rate(v: Option<f64>) -> String {
    v.map_or("-".into(), |r| format!("{:.0} %", r * 100.0))
}

/// The verdict line: decision if any, else how far the chain got.
fn headline(chain: &ShowReport) -> String {
    if !chain.ok {
        return "evidence FAILED verification".into();
    }
    let decision = chain
        .artifacts
        .iter()
        .rev()
        .find(|a| a.kind == "decision")
        .and_then(|a| a.predicate.as_ref())
        .and_then(|p| p["decision"].as_str().map(str::to_owned));
    match decision {
        Some(d) => format!("decision: {d}"),
        None => match latest_per_env(chain).last() {
            Some(a) => format!("in progress: last stage `{}`", a.stage),
            None => "no evidence".into(),
        },
    }
}

/// How an artifact is labelled in a report: its stage (with the environment for
/// deploy and smoke outside the default one), or `timing` for the decide stage's
/// timing record.
fn label(a: &ShownArtifact) -> String {
    if a.kind == "timing" {
        return "timing".into();
    }
    match ArtifactRef::parse_key(&a.key).and_then(|r| r.env) {
        Some(env) => format!("{} ({env})", a.stage),
        None => a.stage.clone(),
    }
}

/// Text for a Markdown table cell: HTML-escaped (Markdown renders inline HTML, and
/// evidence text such as a command line is not ours to trust), pipes and newlines
/// neutralised.
fn md_cell(s: &str) -> String {
    esc(s).replace('|', "\\|").replace('\n', " ")
}

/// The report as Markdown, for `$GITHUB_STEP_SUMMARY` or a merge-request comment.
pub fn markdown(r: &Report) -> String {
    let c = &r.chain;
    let mut out = String::new();
    let _ = writeln!(out, "## ledger: release evidence for `{}`\n", c.sha);
    let _ = writeln!(out, "**{}**\n", headline(c));
    let _ = writeln!(
        out,
        "| stage | attempt | result | finished | took | signer | facts |"
    );
    let _ = writeln!(out, "|---|---:|---|---|---:|---|---|");
    for a in latest_per_env(c) {
        let facts: Vec<String> = a
            .facts
            .iter()
            .map(|f| format!("{}: {}", f.name, f.value))
            .collect();
        let (result, finished, took, signer) = if a.ok {
            (
                a.result.map_or("-", |r| r.as_str()).to_owned(),
                a.finished_at
                    .and_then(|t| {
                        t.format(&time::format_description::well_known::Rfc3339)
                            .ok()
                    })
                    .unwrap_or_default(),
                a.duration_ms.map_or("-".into(), human_ms),
                a.signers
                    .first()
                    .map_or("-".into(), |s| format!("`{}`", &s[..12.min(s.len())])),
            )
        } else {
            ("**unverified**".into(), "-".into(), "-".into(), "-".into())
        };
        let lines = if a.ok { &facts } else { &a.problems };
        let facts: Vec<String> = lines.iter().map(|l| md_cell(l)).collect();
        let _ = writeln!(
            out,
            "| {} | {} | {result} | {finished} | {took} | {signer} | {} |",
            label(a),
            a.attempt,
            facts.join("<br>")
        );
    }
    let m = &r.metrics;
    let _ = writeln!(out, "\n### Delivery metrics (whole store)\n");
    let _ = writeln!(out, "| metric | value |");
    let _ = writeln!(out, "|---|---|");
    for (_, name, value) in m.rows() {
        let _ = writeln!(out, "| {name} | {} |", md_cell(&value));
    }
    if m.unverified > 0 {
        let _ = writeln!(
            out,
            "\n{} artifact(s) failed verification and are not counted.",
            m.unverified
        );
    }
    let _ = writeln!(
        out,
        "\n<sub>Verify offline: `ledger verify {}` with the policy and public keys.</sub>",
        c.sha
    );
    out
}

fn esc(s: &str) -> String {
    html_escape::encode_text(s).into_owned()
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem;color:#1b1f24;max-width:72rem}\
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}code{font-family:ui-monospace,monospace}\
.verdict{font-size:1.1rem;font-weight:600;padding:.4rem .8rem;border-radius:.3rem;display:inline-block}\
.ok{background:#dafbe1}.bad{background:#ffebe9}\
table{border-collapse:collapse;margin-top:.5rem}td code{word-break:break-all}td,th{border:1px solid #d0d7de;padding:.3rem .6rem;text-align:left;vertical-align:top}\
.timeline{position:relative;border-left:1px solid #d0d7de}.row{display:flex;align-items:center;height:1.6rem}\
.label{width:9rem;flex:none}.track{position:relative;flex:1;height:1rem;background:#f6f8fa}\
.bar{position:absolute;height:100%;background:#0969da;min-width:2px}.bar.fail{background:#cf222e}\
.lat{height:.8rem;background:#8250df;min-width:2px}.lat.fail{background:#cf222e}";

/// The report as a self-contained HTML page (no script, nothing loaded).
pub fn html(r: &Report) -> String {
    let c = &r.chain;
    let shown = latest_per_env(c);
    let mut out = String::new();
    let verdict_class = if c.ok && !headline(c).contains("reject") {
        "ok"
    } else {
        "bad"
    };
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>ledger report {sha}</title><style>{STYLE}</style></head><body>\
<h1>Release evidence for <code id=\"sha\">{sha}</code></h1><p class=\"verdict {verdict_class}\" id=\"verdict\">{verdict}</p>",
        sha = c.sha,
        verdict = esc(&headline(c))
    );
    // Timeline: each stage's bar from its start to its finish on the chain's span.
    let times: Vec<(i128, i128)> = shown
        .iter()
        .filter_map(|a| {
            Some((
                a.started_at?.unix_timestamp_nanos(),
                a.finished_at?.unix_timestamp_nanos(),
            ))
        })
        .collect();
    let start = times.iter().map(|t| t.0).min().unwrap_or(0);
    let end = times.iter().map(|t| t.1).max().unwrap_or(1);
    let span = (end - start).max(1) as f64;
    let _ = write!(
        out,
        "<h2>Stage timeline</h2><div class=\"timeline\" id=\"timeline\">"
    );
    for a in &shown {
        let (left, width) = match (a.started_at, a.finished_at) {
            (Some(s), Some(f)) => (
                (s.unix_timestamp_nanos() - start) as f64 / span * 100.0,
                (f - s).whole_nanoseconds() as f64 / span * 100.0,
            ),
            _ => (0.0, 0.0),
        };
        let fail = if a.ok && a.result == Some(ledger_core::predicate::Outcome::Pass) {
            ""
        } else {
            " fail"
        };
        let took = a.duration_ms.map_or("unverified".into(), human_ms);
        let _ = write!(
            out,
            "<div class=\"row\" data-stage=\"{stage}\"><span class=\"label\">{stage} #{attempt}</span><span class=\"track\"><span class=\"bar{fail}\" style=\"left:{left:.2}%;width:{width:.2}%\" title=\"{took}\"></span></span><span class=\"took\">&nbsp;{took}</span></div>",
            stage = esc(&label(a)),
            attempt = a.attempt,
            took = esc(&took)
        );
    }
    let _ = write!(out, "</div>");

    // Evidence table.
    let _ = write!(out, "<h2>Evidence</h2><table id=\"evidence\"><tr><th>stage</th><th>attempt</th><th>result</th><th>signer</th><th>facts</th><th>key</th></tr>");
    for a in &shown {
        let result = if a.ok {
            a.result.map_or("-", |r| r.as_str()).to_owned()
        } else {
            "UNVERIFIED".into()
        };
        let lines: Vec<String> = if a.ok {
            a.facts
                .iter()
                .map(|f| format!("{}: {}", f.name, f.value))
                .collect()
        } else {
            a.problems.clone()
        };
        let facts: Vec<String> = lines.iter().map(|l| esc(l)).collect();
        let signer = a.signers.first().map_or("-", |s| &s[..12.min(s.len())]);
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td><code>{}</code></td></tr>",
            esc(&label(a)),
            a.attempt,
            esc(&result),
            esc(signer),
            facts.join("<br>"),
            esc(&a.key)
        );
    }
    let _ = write!(out, "</table>");

    // Smoke latencies of the latest smoke run, scaled to the slowest limit.
    if let Some(p) = shown
        .iter()
        .find(|a| a.kind == "smoke")
        .and_then(|a| a.predicate.as_ref())
    {
        let checks = p["checks"].as_array().cloned().unwrap_or_default();
        let scale = checks
            .iter()
            .flat_map(|c| [c["latency_ms"].as_f64(), c["max_latency_ms"].as_f64()])
            .flatten()
            .fold(1.0_f64, f64::max);
        let _ = write!(out, "<h2>Smoke checks</h2><table id=\"smoke\"><tr><th>check</th><th>status</th><th>latency</th><th></th></tr>");
        for check in &checks {
            let latency = check["latency_ms"].as_f64().unwrap_or(0.0);
            let ok = check["ok"] == true;
            let _ = write!(
                out,
                "<tr data-check=\"{name}\"><td>{name}</td><td>{status}</td><td>{latency:.1} ms{limit}</td><td style=\"width:20rem\"><div class=\"lat{fail}\" style=\"width:{w:.1}%\"></div></td></tr>",
                name = esc(check["name"].as_str().unwrap_or("-")),
                status = esc(&check["status"].to_string()),
                fail = if ok { "" } else { " fail" },
                limit = check["max_latency_ms"]
                    .as_f64()
                    .map_or(String::new(), |l| format!(" (limit {l:.0} ms)")),
                w = latency / scale * 100.0
            );
        }
        let _ = write!(out, "</table>");
    }

    let m = &r.metrics;
    let _ = write!(
        out,
        "<h2>Delivery metrics (whole store)</h2><table id=\"metrics\">"
    );
    for (id, name, value) in m.rows() {
        let class = if id == "m-deploy" && m.over_target() {
            " class=\"bad\""
        } else {
            ""
        };
        let _ = write!(
            out,
            "<tr><th>{name}</th><td id=\"{id}\"{class}>{}</td></tr>",
            esc(&value)
        );
    }
    let _ = write!(out, "</table>");
    let _ = write!(
        out,
        "<p><small>Generated by ledger from verified evidence. Verify offline with <code>ledger verify {}</code>.</small></p></body></html>",
        c.sha
    );
    out.push('\n');
    out
}

/// The seed-001 status update (Status, Changes, Tests, Deploy, Issues / Failures,
/// Escalations), filled from the verified chain. Escalations follow seed 001's rules
/// where the evidence can show them: health checks failed and the previous release
/// was not restored; a production release failing its checks; evidence that does not
/// verify. (An engine that is unreachable or a secret that is missing stops a stage
/// before it writes anything, so no evidence can show those: `ledger doctor` does.)
pub fn status_update(r: &Report, location: &str) -> String {
    let c = &r.chain;
    let mut issues: Vec<String> = Vec::new();
    let mut recovery: Vec<String> = Vec::new();
    let mut escalations: Vec<String> = Vec::new();
    let latest = latest_per_env(c);
    for a in c.artifacts.iter().filter(|a| !a.ok) {
        issues.push(format!(
            "{} does not verify: {}",
            a.key,
            a.problems.join("; ")
        ));
        escalations.push(format!(
            "evidence {} fails verification: integrity of the record is in doubt",
            a.key
        ));
    }
    for a in &latest {
        let Some(p) = a.predicate.as_ref() else {
            continue;
        };
        if a.result != Some(ledger_core::predicate::Outcome::Fail) {
            continue;
        }
        let env = p["environment"].as_str().unwrap_or("-");
        match a.kind.as_str() {
            "deployment" => {
                let why = p["failure"]["message"].as_str().unwrap_or("deploy failed");
                issues.push(format!("deploy to {env} failed: {why}"));
                if p["failure"]["restored"] == true {
                    let previous = p["previous_release"]
                        .as_str()
                        .unwrap_or("the previous release");
                    recovery.push(format!("{env}: {previous} restored automatically"));
                } else {
                    recovery.push(format!("{env}: the previous release was NOT restored"));
                    escalations.push(format!(
                        "health checks failed in {env} and rollback was not successful"
                    ));
                }
            }
            "smoke" => {
                let failed: Vec<String> = p["checks"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|k| k["ok"] != true)
                    .map(|k| format!("{} ({})", k["name"].as_str().unwrap_or("-"), k["status"]))
                    .collect();
                issues.push(format!("smoke in {env} failed: {}", failed.join(", ")));
                recovery.push(format!(
                    "{env}: roll back with `ledger rollback --to <last promoted SHA> --env {env}`"
                ));
                if env == ledger_core::DEFAULT_ENV {
                    escalations.push(format!(
                        "production checks fail for {}: production-impacting until rolled back",
                        c.sha
                    ));
                }
            }
            "decision" => {
                for reason in p["reasons"].as_array().into_iter().flatten() {
                    issues.push(format!(
                        "release rule {}: {}",
                        reason["rule"].as_str().unwrap_or("-"),
                        reason["message"].as_str().unwrap_or("-")
                    ));
                }
            }
            _ => issues.push(format!("{} failed ({})", a.stage, a.key)),
        }
    }
    let decision = c
        .artifacts
        .iter()
        .rev()
        .find(|a| a.kind == "decision" && a.ok)
        .and_then(|a| a.predicate.as_ref())
        .and_then(|p| p["decision"].as_str());
    let status = if !escalations.is_empty() || !issues.is_empty() || decision == Some("reject") {
        "blocked"
    } else if decision == Some("promote") {
        "done"
    } else {
        "in_progress"
    };

    let mut out = String::new();
    let _ = writeln!(out, "Status: {status}\n");
    let _ = writeln!(out, "Changes");
    let _ = writeln!(out, "- Commits: {}", c.sha);
    let _ = writeln!(
        out,
        "- Files: not recorded in evidence (git show --stat {})",
        c.sha
    );
    let _ = writeln!(out, "\nTests");
    let tests: Vec<&&ShownArtifact> = latest
        .iter()
        .filter(|a| matches!(a.kind.as_str(), "commit" | "integration"))
        .collect();
    if tests.is_empty() {
        let _ = writeln!(out, "- none recorded");
    }
    for a in tests {
        let p = a.predicate.as_ref();
        let command = p
            .and_then(|p| p["command"]["argv"].as_array())
            .map(|v| {
                v.iter()
                    .filter_map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_else(|| "-".into());
        let counts = p
            .filter(|p| p["tests"].is_object())
            .map(|p| {
                format!(
                    " ({} passed, {} failed)",
                    p["tests"]["passed"], p["tests"]["failed"]
                )
            })
            .unwrap_or_default();
        let result = a.result.map_or("unverified", |r| r.as_str());
        let _ = writeln!(out, "- {}: `{command}`: {result}{counts}", a.stage);
    }
    let _ = writeln!(out, "\nDeploy");
    let deploys: Vec<&&ShownArtifact> = latest.iter().filter(|a| a.kind == "deployment").collect();
    if deploys.is_empty() {
        let _ = writeln!(out, "- not deployed yet");
    }
    for a in deploys {
        let p = a.predicate.as_ref();
        let env = p.and_then(|p| p["environment"].as_str()).unwrap_or("-");
        let runner = a.runner.as_ref();
        let run = runner
            .and_then(|r| r.run_url.clone().or(r.run_id.clone()))
            .unwrap_or_else(|| "local run".into());
        let result = match a.result {
            Some(ledger_core::predicate::Outcome::Pass) => "success",
            Some(ledger_core::predicate::Outcome::Fail) => "failed",
            None => "unverified",
        };
        let how = p
            .and_then(|p| p["promotion"]["from"].as_str())
            .map(|f| format!(", promoted from {f}"))
            .unwrap_or_default();
        let _ = writeln!(out, "- Environment: {env}{how}");
        let _ = writeln!(out, "  - Host: {}", runner.map_or("-", |r| r.host.as_str()));
        let _ = writeln!(out, "  - Workflow/run: {run}");
        let _ = writeln!(out, "  - Result: {result}");
        let _ = writeln!(out, "  - Metadata: {location}/{}", a.key);
    }
    let _ = writeln!(out, "\nIssues / Failures");
    if issues.is_empty() {
        let _ = writeln!(out, "- none");
    }
    for i in &issues {
        let _ = writeln!(out, "- {i}");
    }
    for r in &recovery {
        let _ = writeln!(out, "- Recovery: {r}");
    }
    let _ = writeln!(out, "\nEscalations");
    if escalations.is_empty() {
        let _ = writeln!(out, "- none");
    }
    for e in &escalations {
        let _ = writeln!(out, "- {e}");
    }
    out
}

/// The latest attempt of each kind, deploy and smoke per environment, in pipeline
/// order.
fn latest_per_env(chain: &ShowReport) -> Vec<&ShownArtifact> {
    let mut by: BTreeMap<(usize, String), &ShownArtifact> = BTreeMap::new();
    for a in &chain.artifacts {
        let order = ArtifactKind::ALL
            .iter()
            .position(|k| k.as_str() == a.kind)
            .unwrap_or(usize::MAX);
        let env = ArtifactRef::parse_key(&a.key)
            .and_then(|r| r.env)
            .map_or(String::new(), |e| e.to_string());
        by.insert((order, env), a);
    }
    by.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        assert_eq!(percentile(&mut [], 95.0), None);
        assert_eq!(percentile(&mut [7], 95.0), Some(7));
        let mut v: Vec<u64> = (1..=100).rev().collect();
        assert_eq!(percentile(&mut v, 95.0), Some(95));
        assert_eq!(percentile(&mut v, 50.0), Some(50));
        assert_eq!(percentile(&mut [1, 2, 3], 50.0), Some(2));
    }

    #[test]
    fn durations_read_like_people_say_them() {
        assert_eq!(human_ms(850), "850 ms");
        assert_eq!(human_ms(1_250), "1.2 s");
        assert_eq!(human_ms(184_000), "3 min 4 s");
    }
}
