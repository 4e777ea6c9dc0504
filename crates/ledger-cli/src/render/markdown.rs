//! The report as Markdown, for `$GITHUB_STEP_SUMMARY` or a merge-request comment.

use super::{esc, fact_lines, label, latest_per_env, metric_rows, Standing};
use ledger_pipeline::observe::metrics::{Metrics, Report};
use ledger_verify::show::{human_ms, ShownArtifact};
use std::fmt::Write as _;

/// Text for a Markdown table cell: HTML-escaped (Markdown renders inline HTML, and
/// evidence text such as a command line is not ours to trust), pipes and newlines
/// neutralised.
fn md_cell(s: &str) -> String {
    esc(s).replace('|', "\\|").replace('\n', " ")
}

/// The report as Markdown.
pub fn markdown(r: &Report) -> String {
    let c = &r.chain;
    let mut out = String::new();
    let _ = writeln!(out, "## ledger: release evidence for `{}`\n", c.sha);
    let _ = writeln!(out, "**{}**\n", Standing::of(c).banner(&c.sha.to_string()));
    let _ = writeln!(
        out,
        "| stage | attempt | result | finished | took | signer | facts |"
    );
    let _ = writeln!(out, "|---|---:|---|---|---:|---|---|");
    for a in latest_per_env(c) {
        chain_row(&mut out, a);
    }
    metrics_table(&mut out, &r.metrics);
    let _ = writeln!(
        out,
        "\n<sub>Verify offline: `ledger verify {}` with the policy and public keys.</sub>",
        c.sha
    );
    out
}

/// One artifact's row of the evidence table.
fn chain_row(out: &mut String, a: &ShownArtifact) {
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
    let facts: Vec<String> = fact_lines(a).iter().map(|l| md_cell(l)).collect();
    let _ = writeln!(
        out,
        "| {} | {} | {result} | {finished} | {took} | {signer} | {} |",
        label(a),
        a.attempt,
        facts.join("<br>")
    );
}

/// The store's delivery metrics, and how many artifacts they leave out.
fn metrics_table(out: &mut String, m: &Metrics) {
    let _ = writeln!(out, "\n### Delivery metrics (whole store)\n");
    let _ = writeln!(out, "| metric | value |");
    let _ = writeln!(out, "|---|---|");
    for (_, name, value) in metric_rows(m) {
        let _ = writeln!(out, "| {name} | {} |", md_cell(&value));
    }
    if m.unverified > 0 {
        let _ = writeln!(
            out,
            "\n{} artifact(s) failed verification and are not counted.",
            m.unverified
        );
    }
}
