//! Questions about a SHA's past, answered from verified evidence only.
//!
//! "Was it already built?", "was it ever promoted, and when was it released?", "may it
//! be rolled back to?" decide whether stages run and what `status` reports; each is
//! answered here, once, and only evidence that verifies counts (anything else is
//! named, never silently trusted).

use crate::error::Error;
use crate::evidence::Evidence;
use crate::gate::GateReport;
use ledger_core::predicate::DecisionPredicate;
use ledger_core::{ArtifactKind, ArtifactRef, GitSha};
use ledger_policy::Reason;
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// The newest release whose latest decision is `promote`.
#[derive(Debug, Clone, Serialize)]
pub struct Promoted {
    pub sha: GitSha,
    pub decision: String,
    #[serde(with = "time::serde::rfc3339")]
    pub decided_at: OffsetDateTime,
}

/// Every artifact of `kind` the store lists (its folder listed once) or the whole log
/// names: one deleted from the store is still here, and then fails to verify (named
/// among what was ignored) instead of leaving an earlier one to stand as the latest.
pub async fn refs_of(
    evidence: &mut Evidence<'_>,
    kind: ArtifactKind,
) -> Result<Vec<ArtifactRef>, Error> {
    let prefix = format!("{}/", kind.dir());
    let listed = evidence.store().list(&prefix).await?;
    evidence.read_log_covering(None).await?;
    let index = evidence.log_index().await?;
    let mut refs: Vec<ArtifactRef> = listed
        .iter()
        .chain(index.keys_under(&prefix))
        .filter_map(|k| ArtifactRef::parse_key(k))
        .filter(|r| r.kind == kind)
        .collect();
    refs.sort_unstable();
    refs.dedup();
    Ok(refs)
}

/// The latest attempt of `kind` for `sha` (default environment) that the store
/// lists or the whole log names, whichever is newer: a latest attempt deleted from
/// the store is still the latest (and fails to verify).
pub async fn latest_known(
    evidence: &mut Evidence<'_>,
    kind: ArtifactKind,
    sha: &GitSha,
) -> Result<Option<ArtifactRef>, Error> {
    let listed = evidence.store().latest(kind, sha).await?;
    evidence.read_log_covering(None).await?;
    let logged = evidence.log_index().await?.latest(kind, sha, None);
    Ok(listed.into_iter().chain(logged).max_by_key(|r| r.attempt))
}

/// The newest promoted release: among the SHAs whose latest decision says `promote`,
/// the one released last, where a release's time is its first promotion that was not
/// a replay (replaying or rolling back to an old release does not make it newer).
pub async fn last_promoted(
    evidence: &mut Evidence<'_>,
    ignored: &mut Vec<String>,
) -> Result<Option<Promoted>, Error> {
    let mut by_sha: BTreeMap<GitSha, Vec<ArtifactRef>> = BTreeMap::new();
    for r in refs_of(evidence, ArtifactKind::Decision).await? {
        by_sha.entry(r.sha).or_default().push(r);
    }
    let mut best: Option<Promoted> = None;
    for (sha, mut refs) in by_sha {
        refs.sort_by_key(|r| r.attempt);
        let Some(latest) = refs.last().copied() else {
            continue;
        };
        let latest_decision = match evidence.check(&latest).await?.into_result() {
            Ok(a) => a,
            Err(problems) => {
                ignored.push(format!("{}: {}", latest.key(), problems.join("; ")));
                continue;
            }
        };
        if !latest_decision
            .predicate_as::<DecisionPredicate>()?
            .promotes()
        {
            continue;
        }
        let mut released_at = latest_decision.header().finished_at;
        for r in &refs {
            if let Some(a) = evidence.check(r).await?.verified() {
                let p = a.predicate_as::<DecisionPredicate>()?;
                if p.promotes() && !p.is_replay() {
                    released_at = a.header().finished_at;
                    break;
                }
            }
        }
        if best.as_ref().is_none_or(|b| b.decided_at < released_at) {
            best = Some(Promoted {
                sha,
                decision: latest.key(),
                decided_at: released_at,
            });
        }
    }
    Ok(best)
}

/// Whether a SHA may be rolled back to, by the promote-history rule.
#[derive(Debug, Clone)]
pub enum RollbackTarget {
    /// Its latest decision verifies and is `promote`; the key of that decision.
    Promoted(String),
    /// It may not: the denial, with the rule and what was found.
    Refused(Box<GateReport>),
}

/// The promote-history rule: the release's own latest decision, the newest decision
/// for `sha` that is not part of a replay or rollback, must verify and be `promote`.
/// A replay or rollback re-checks a stored release in today's environment; when it
/// fails it restores what ran before, and its reject says the re-run failed, not that
/// the release was never accepted, so it does not take the release's standing away.
/// Every decision on the way back to that one must verify too: one that does not is
/// an error (tampering is not a missing prerequisite, and is never skipped).
pub async fn rollback_target(
    evidence: &mut Evidence<'_>,
    sha: &GitSha,
) -> Result<RollbackTarget, Error> {
    const RULE: &str = "/rollback/require_decision";
    let refuse = |artifact: Option<String>, found: &str, message: String| {
        let reason = Reason {
            rule: RULE.into(),
            artifact,
            found: Some(json!(found)),
            required: Some(json!("promote")),
            message,
        };
        RollbackTarget::Refused(Box::new(GateReport::denial(
            "rollback".into(),
            *sha,
            RULE.into(),
            vec![reason],
        )))
    };
    let Some((r, p)) = own_latest_decision(evidence, sha).await? else {
        return Ok(refuse(
            None,
            "no decision",
            format!("{sha} was never decided outside a replay (no release/{sha}/decision.json of its own run); only a release whose own latest decision is promote can be rolled back to"),
        ));
    };
    let decision = p.decision.as_str();
    if !p.promotes() {
        let failed: Vec<&str> = p.reasons.iter().map(|r| r.rule.as_str()).collect();
        let failed = if failed.is_empty() {
            String::new()
        } else {
            format!(" (failed rules: {})", failed.join(", "))
        };
        return Ok(refuse(
            Some(r.key()),
            decision,
            format!(
                "the latest decision of {sha}'s own run (attempt {}) is {decision}{failed}; only promoted releases can be rolled back to",
                r.attempt
            ),
        ));
    }
    Ok(RollbackTarget::Promoted(r.key()))
}

/// The newest decision for `sha` that is not part of a replay or rollback, with its
/// predicate; every decision newer than it must verify.
///
/// The walk starts at the latest attempt the log names, not the newest listed, and
/// takes every attempt number below it (a writer takes the next number only by
/// writing it), so a newer `reject` deleted from the store is missing evidence, an
/// error, and never lets an earlier `promote` stand for the release.
async fn own_latest_decision(
    evidence: &mut Evidence<'_>,
    sha: &GitSha,
) -> Result<Option<(ArtifactRef, DecisionPredicate)>, Error> {
    let listed = evidence
        .store()
        .attempts(ArtifactKind::Decision, sha)
        .await?;
    let latest = evidence
        .latest_logged(ArtifactKind::Decision, sha, None, &listed)
        .await?;
    for attempt in (1..=latest.map_or(0, |r| r.attempt)).rev() {
        let r = ArtifactRef::new(ArtifactKind::Decision, *sha, attempt);
        let a = evidence.check(&r).await?.require(&r.key())?;
        let p = a.predicate_as::<DecisionPredicate>()?;
        if !p.is_replay() {
            return Ok(Some((r, p.clone())));
        }
    }
    Ok(None)
}
