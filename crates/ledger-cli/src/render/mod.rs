//! Reports for people, rendered from the values `ledger-pipeline` computes: one
//! release's chain with the store's delivery metrics, as Markdown ([`markdown`]), a
//! self-contained HTML page ([`html`]) or a status update for a team channel
//! ([`status`]).
//! Predicates are read through the typed models in `ledger_core::predicate`.

pub mod html;
pub mod markdown;
pub mod status;

use ledger_core::predicate::{from_value, Decision, DecisionPredicate, Predicate};
use ledger_core::{ArtifactKind, ArtifactRef};
use ledger_pipeline::observe::metrics::Metrics;
use ledger_verify::show::{human_ms, ShowReport, ShownArtifact};
use std::collections::BTreeMap;

/// The metrics as (element id, name, value) rows, for every report format.
pub fn metric_rows(m: &Metrics) -> Vec<(&'static str, &'static str, String)> {
    let target = match m.deploy_p95_ms {
        Some(_) if m.over_target() => " (over the 10 min target)",
        Some(_) => " (within the 10 min target)",
        None => "",
    };
    vec![
        (
            "m-deploys",
            "deploys",
            format!("{} ({} failed)", m.deploys, m.deploys_failed),
        ),
        (
            "m-deploy",
            "deploy duration p50 / p95",
            format!(
                "{} / {}{target}",
                opt_ms(m.deploy_p50_ms),
                opt_ms(m.deploy_p95_ms)
            ),
        ),
        (
            "m-lead",
            "lead time p50 / p95",
            format!(
                "{} / {} ({} releases)",
                opt_ms(m.lead_time_p50_ms),
                opt_ms(m.lead_time_p95_ms),
                m.lead_times
            ),
        ),
        (
            "m-cfr",
            "change-failure rate",
            format!(
                "{} ({} of {} releases rejected)",
                rate(m.change_failure_rate),
                m.releases_rejected,
                m.releases_decided
            ),
        ),
        (
            "m-replays",
            "replays / rollbacks",
            format!("{} / {}", m.replays, m.rollbacks),
        ),
    ]
}

fn opt_ms(v: Option<u64>) -> String {
    v.map_or("-".into(), human_ms)
}

fn rate(v: Option<f64>) -> String {
    v.map_or("-".into(), |r| format!("{:.0} %", r * 100.0))
}

/// The shown artifact's predicate as the typed model `P`; `None` when it was not
/// verified (no predicate is shown) or does not have that shape.
pub fn typed<P: Predicate>(a: &ShownArtifact) -> Option<P> {
    a.predicate.as_ref().and_then(|p| from_value(p).ok())
}

/// A release decision as the evidence spells it.
pub fn decision_word(d: Decision) -> &'static str {
    match d {
        Decision::Promote => "promote",
        Decision::Reject => "reject",
    }
}

/// The decision recorded by `a`, when it is a verified decision artifact.
pub fn decision_of(a: &ShownArtifact) -> Option<&'static str> {
    typed::<DecisionPredicate>(a).map(|p| decision_word(p.decision))
}

/// Where a release stands, in the words every report format uses: the HTML banner,
/// the Markdown headline and the status update's `Status:` line all come from here,
/// so a blocked release never reads as fine in one format and blocked in another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Nothing is stored for the SHA: not tampering, just no run yet.
    NoEvidence,
    /// Some evidence does not verify: the record itself is in doubt.
    Unverified,
    /// A stage's latest attempt failed (named), so the release cannot go on.
    Blocked(String),
    /// The decision was reject.
    Rejected,
    /// The decision was promote.
    Promoted,
    /// Every latest attempt passed so far; the last stage that ran.
    InProgress(String),
}

impl Standing {
    /// The standing of `chain`.
    pub fn of(chain: &ShowReport) -> Self {
        if chain.artifacts.is_empty() && chain.unexpected.is_empty() {
            return Self::NoEvidence;
        }
        if !chain.ok {
            return Self::Unverified;
        }
        let decision = chain
            .artifacts
            .iter()
            .rev()
            .find(|a| a.kind == "decision")
            .and_then(decision_of);
        match decision {
            Some("promote") => return Self::Promoted,
            Some(_) => return Self::Rejected,
            None => {}
        }
        let latest = latest_per_env(chain);
        if let Some(failed) = latest
            .iter()
            .find(|a| a.result == Some(ledger_core::predicate::Outcome::Fail))
        {
            return Self::Blocked(label(failed));
        }
        latest
            .last()
            .map_or(Self::NoEvidence, |a| Self::InProgress(label(a)))
    }

    /// The status update's word: `done`, `blocked`, `in_progress` or `no_evidence`.
    pub fn status_word(&self) -> &'static str {
        match self {
            Self::NoEvidence => "no_evidence",
            Self::Unverified | Self::Blocked(_) | Self::Rejected => "blocked",
            Self::Promoted => "done",
            Self::InProgress(_) => "in_progress",
        }
    }

    /// The one-line banner: the status word first, then why.
    pub fn banner(&self, sha: &str) -> String {
        let why = match self {
            Self::NoEvidence => format!("no evidence stored for {sha}"),
            Self::Unverified => "evidence FAILED verification: the record is in doubt".into(),
            Self::Blocked(stage) => format!("{stage} failed"),
            Self::Rejected => "release rejected by the decision".into(),
            Self::Promoted => "release promoted".into(),
            Self::InProgress(stage) => format!("last stage {stage} passed"),
        };
        format!("Status: {} ({why})", self.status_word())
    }

    /// Whether the banner is good news.
    pub fn is_good(&self) -> bool {
        matches!(self, Self::Promoted | Self::InProgress(_))
    }
}

/// How an artifact is labelled in a report: its stage (with the environment for
/// deploy and smoke outside the default one), or `timing` for the decide stage's
/// timing record.
pub fn label(a: &ShownArtifact) -> String {
    if a.kind == "timing" {
        return "timing".into();
    }
    match ArtifactRef::parse_key(&a.key).and_then(|r| r.env) {
        Some(env) => format!("{} ({env})", a.stage),
        None => a.stage.clone(),
    }
}

/// The first signer's key id, shortened to 12 characters; `-` when none.
pub fn short_signer(a: &ShownArtifact) -> &str {
    a.signers.first().map_or("-", |s| &s[..12.min(s.len())])
}

/// The lines a report shows for an artifact: its facts when it verified, else its
/// problems (an unverified predicate's claims are not repeated).
pub fn fact_lines(a: &ShownArtifact) -> Vec<String> {
    if a.ok {
        a.facts
            .iter()
            .map(|f| format!("{}: {}", f.name, f.value))
            .collect()
    } else {
        a.problems.clone()
    }
}

/// Text escaped for HTML (and for Markdown, which renders inline HTML).
pub fn esc(s: &str) -> String {
    html_escape::encode_text(s).into_owned()
}

/// The latest attempt of each kind, deploy and smoke per environment, in pipeline
/// order.
pub fn latest_per_env(chain: &ShowReport) -> Vec<&ShownArtifact> {
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
    fn durations_read_like_people_say_them() {
        assert_eq!(human_ms(850), "850 ms");
        assert_eq!(human_ms(1_250), "1.2 s");
        assert_eq!(human_ms(184_000), "3 min 4 s");
    }

    #[test]
    fn empty_metrics_show_dashes_and_no_target() {
        let rows = metric_rows(&Metrics::default());
        assert_eq!(rows[1].2, "- / -");
        assert_eq!(rows[3].2, "- (0 of 0 releases rejected)");
    }
}
