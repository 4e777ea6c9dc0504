//! What a release report is made of: one release's chain, with the delivery metrics
//! of the whole store beside it. The command line renders it (Markdown, HTML, a
//! status update); this module only computes.
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

use crate::error::Error;
use ledger_core::predicate::{Decision, DecisionPredicate, DeploymentPredicate, TimingPredicate};
use ledger_core::{ArtifactKind, ArtifactRef, GitSha};
use ledger_verify::evidence::Evidence;
use ledger_verify::show::ShowReport;
use ledger_verify::walk::StoreIndex;
use serde::Serialize;

/// The delivery goal: p95 production deployment duration at most 10 minutes.
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
}

/// The nearest-rank percentile of `values` (sorted here); `None` when empty.
pub fn percentile(values: &mut [u64], percent: usize) -> Option<u64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    Some(values[crate::stats::nearest_rank(values.len(), percent) - 1])
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
    m.deploy_p50_ms = percentile(&mut durations, 50);
    m.deploy_p95_ms = percentile(&mut durations, 95);
    m.lead_times = lead_times.len();
    m.lead_time_p50_ms = percentile(&mut lead_times, 50);
    m.lead_time_p95_ms = percentile(&mut lead_times, 95);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        assert_eq!(percentile(&mut [], 95), None);
        assert_eq!(percentile(&mut [7], 95), Some(7));
        let mut v: Vec<u64> = (1..=100).rev().collect();
        assert_eq!(percentile(&mut v, 95), Some(95));
        assert_eq!(percentile(&mut v, 50), Some(50));
        assert_eq!(percentile(&mut [1, 2, 3], 50), Some(2));
    }
}
