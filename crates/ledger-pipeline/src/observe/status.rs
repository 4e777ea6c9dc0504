//! What runs where, according to the evidence: `ledger status`.
//!
//! The store is the record: for each environment, the newest passing deployment
//! (failed deploys restored what ran before, so they change nothing); the last
//! promoted release is the SHA whose latest decision is `promote`, newest first.
//! Only evidence that verifies counts; anything else is listed as ignored, never
//! silently trusted. The freshness alarm fires when an environment runs something
//! older than the newest promoted release, or has run one release longer than the
//! policy's `freshness.max_running_age_seconds`. The rejected-release alarm fires
//! when an environment runs a release whose latest decision (a replay's included) is
//! `reject`: whatever let it keep running, nobody should have to notice it alone.
//!
//! Cost: one listing per artifact folder and one verification per deployment and per
//! SHA's latest decision, linear in the store.

use crate::error::Error;
use ledger_core::predicate::{DecisionPredicate, DeploymentPredicate, Outcome};
use ledger_core::{ArtifactKind, GitSha};
use ledger_verify::evidence::Evidence;
use ledger_verify::history::{last_promoted, latest_known, refs_of, Promoted};
use serde::Serialize;
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// What one environment runs.
#[derive(Debug, Clone, Serialize)]
pub struct EnvironmentStatus {
    pub environment: String,
    /// `None` when no passing deployment to the environment is recorded.
    pub running: Option<Running>,
    /// Why this environment needs attention; empty when it is fresh. In JSON each
    /// alarm is its message.
    pub alarms: Vec<Alarm>,
}

/// One reason an environment needs attention.
#[derive(Debug, Clone, Serialize)]
#[serde(into = "String")]
pub struct Alarm {
    pub kind: AlarmKind,
    pub message: String,
}

/// What an alarm is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmKind {
    /// Older than the newest promoted release, or running longer than the policy allows.
    Freshness,
    /// The release running was rejected by its latest decision.
    Rejected,
}

impl From<Alarm> for String {
    fn from(a: Alarm) -> String {
        a.message
    }
}

/// The release an environment runs and the deployment that started it.
#[derive(Debug, Clone, Serialize)]
pub struct Running {
    pub sha: GitSha,
    pub deployment: String,
    pub attempt: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    /// Image name → digest.
    pub images: BTreeMap<String, String>,
    pub replay: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback_from: Option<String>,
}

/// The whole answer of `ledger status`.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    #[serde(with = "time::serde::rfc3339")]
    pub generated_at: OffsetDateTime,
    pub environments: Vec<EnvironmentStatus>,
    pub last_promoted: Option<Promoted>,
    /// Evidence that did not verify and was left out, with why.
    pub ignored: Vec<String>,
}

impl StatusReport {
    /// Whether any environment raised an alarm.
    pub fn alarmed(&self) -> bool {
        self.environments.iter().any(|e| !e.alarms.is_empty())
    }
}

/// What runs in each environment; `configured` lists environments to show even when
/// nothing was deployed there; `only` restricts the answer to one environment.
pub async fn status(
    evidence: &mut Evidence<'_>,
    configured: &[String],
    only: Option<&str>,
    now: OffsetDateTime,
) -> Result<StatusReport, Error> {
    let mut ignored = Vec::new();
    let mut running = recorded_running(evidence, &mut ignored).await?;
    let last = last_promoted(evidence, &mut ignored).await?;
    let max_age = evidence.policy().max_running_age();
    let mut rejected = BTreeMap::new();
    for (env, r) in &running {
        let back_to = last.as_ref().map(|l| l.sha).filter(|l| *l != r.sha);
        if let Some(alarm) = rejected_alarm(evidence, env, r, back_to, &mut ignored).await? {
            rejected.insert(env.clone(), alarm);
        }
    }

    let environments = shown(configured, &running, only)
        .into_iter()
        .map(|environment| {
            let running = running.remove(&environment);
            let mut alarms: Vec<Alarm> = rejected.remove(&environment).into_iter().collect();
            alarms.extend(
                running
                    .as_ref()
                    .map(|r| freshness(r, last.as_ref(), max_age, now))
                    .unwrap_or_default()
                    .into_iter()
                    .map(|message| Alarm {
                        kind: AlarmKind::Freshness,
                        message,
                    }),
            );
            EnvironmentStatus {
                environment,
                running,
                alarms,
            }
        })
        .collect();
    Ok(StatusReport {
        generated_at: now,
        environments,
        last_promoted: last,
        ignored,
    })
}

/// The newest passing, verified deployment per environment. A failed deploy restored
/// what ran before, so it changes nothing; evidence that does not verify is added to
/// `ignored` rather than trusted.
async fn recorded_running(
    evidence: &mut Evidence<'_>,
    ignored: &mut Vec<String>,
) -> Result<BTreeMap<String, Running>, Error> {
    let mut running: BTreeMap<String, Running> = BTreeMap::new();
    for r in refs_of(evidence, ArtifactKind::Deployment).await? {
        let a = match evidence.check(&r).await?.into_result() {
            Ok(a) => a,
            Err(problems) => {
                ignored.push(format!("{}: {}", r.key(), problems.join("; ")));
                continue;
            }
        };
        if a.header().result != Outcome::Pass {
            continue;
        }
        let p = a.predicate_as::<DeploymentPredicate>()?;
        let env = p.environment.clone();
        let since = a.header().finished_at;
        if running.get(&env).is_some_and(|cur| cur.since >= since) {
            continue;
        }
        let images = p
            .containers
            .iter()
            .map(|c| (c.image.clone(), c.digest.clone()))
            .collect();
        running.insert(
            env,
            Running {
                sha: r.sha,
                deployment: r.key(),
                attempt: r.attempt,
                since,
                images,
                replay: p.replay,
                rollback_from: p.rollback_from.flatten().map(|s| s.to_string()),
            },
        );
    }
    Ok(running)
}

/// The environments to show, in order: the configured ones, then any other the
/// evidence deployed to; with `only`, just that one (shown even if unknown, so the
/// answer says nothing runs there rather than staying silent).
fn shown(
    configured: &[String],
    running: &BTreeMap<String, Running>,
    only: Option<&str>,
) -> Vec<String> {
    let mut names: Vec<String> = configured.to_vec();
    for env in running.keys() {
        if !names.contains(env) {
            names.push(env.clone());
        }
    }
    if let Some(only) = only {
        names.retain(|n| n == only);
        if names.is_empty() {
            names.push(only.to_owned());
        }
    }
    names
}

/// The rejected-release alarm for what an environment runs: its SHA's latest decision
/// verifies and is `reject`. A latest decision that does not verify is listed in
/// `ignored` (and raises nothing: only verified evidence counts).
async fn rejected_alarm(
    evidence: &mut Evidence<'_>,
    environment: &str,
    running: &Running,
    back_to: Option<GitSha>,
    ignored: &mut Vec<String>,
) -> Result<Option<Alarm>, Error> {
    let Some(r) = latest_known(evidence, ArtifactKind::Decision, &running.sha).await? else {
        return Ok(None);
    };
    let decision = match evidence.check(&r).await?.into_result() {
        Ok(a) => a,
        Err(problems) => {
            ignored.push(format!("{}: {}", r.key(), problems.join("; ")));
            return Ok(None);
        }
    };
    if decision.predicate_as::<DecisionPredicate>()?.promotes() {
        return Ok(None);
    }
    let back_to = back_to.map_or("<last promoted SHA>".to_owned(), |s| s.to_string());
    Ok(Some(Alarm {
        kind: AlarmKind::Rejected,
        message: format!(
            "runs {}, whose latest decision ({}) is reject; roll back with `ledger rollback --to {back_to} --env {environment}`, or release a fix",
            running.sha,
            r.key()
        ),
    }))
}

/// The freshness alarms for one environment.
fn freshness(
    running: &Running,
    last: Option<&Promoted>,
    max_age: Option<std::time::Duration>,
    now: OffsetDateTime,
) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(last) = last {
        if last.sha != running.sha && running.since < last.decided_at {
            out.push(format!(
                "runs {} (deployed {}), older than the newest promoted release {} (promoted {}); deploy it with `ledger replay {}`",
                running.sha.short(),
                rfc3339(running.since),
                last.sha,
                rfc3339(last.decided_at),
                last.sha
            ));
        }
    }
    if let Some(max) = max_age {
        let age = now - running.since;
        if age > max {
            out.push(format!(
                "has run {} for {} days, longer than the policy's freshness limit of {} days (/freshness/max_running_age_seconds)",
                running.sha.short(),
                age.whole_days(),
                max.as_secs() / 86_400
            ));
        }
    }
    out
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    fn sha(n: u8) -> GitSha {
        GitSha::parse(&format!("{n:040x}")).unwrap()
    }

    fn running(n: u8, since: OffsetDateTime) -> Running {
        Running {
            sha: sha(n),
            deployment: format!("infra/{}/deployment.json", sha(n)),
            attempt: 1,
            since,
            images: BTreeMap::new(),
            replay: false,
            rollback_from: None,
        }
    }

    #[test]
    fn an_environment_behind_the_newest_promotion_raises_the_alarm() {
        let now = OffsetDateTime::now_utc();
        let last = Promoted {
            sha: sha(2),
            decision: "release/x/decision.json".into(),
            decided_at: now - Duration::hours(1),
        };
        let stale = freshness(
            &running(1, now - Duration::hours(2)),
            Some(&last),
            None,
            now,
        );
        assert_eq!(stale.len(), 1);
        assert!(
            stale[0].contains(&format!("ledger replay {}", sha(2))),
            "{stale:?}"
        );
        // The promoted release itself, or something deployed after it, is fresh.
        assert!(freshness(
            &running(2, now - Duration::hours(2)),
            Some(&last),
            None,
            now
        )
        .is_empty());
        assert!(freshness(&running(3, now), Some(&last), None, now).is_empty());
    }

    #[test]
    fn a_release_running_longer_than_the_policy_allows_raises_the_alarm() {
        let now = OffsetDateTime::now_utc();
        let max = Some(std::time::Duration::from_secs(7 * 86_400));
        let old = freshness(&running(1, now - Duration::days(8)), None, max, now);
        assert_eq!(old.len(), 1);
        assert!(old[0].contains("8 days"), "{old:?}");
        assert!(freshness(&running(1, now - Duration::days(6)), None, max, now).is_empty());
    }
}
