//! A chain as people read it (`ledger show`) and a store as a history (`ledger log`).
//!
//! Everything shown comes from verified evidence: an artifact that fails verification
//! is listed with its problems and nothing from its predicate, because an unverified
//! predicate's claims are exactly what must not be repeated to a reader.

use crate::error::Error;
use crate::evidence::{AnyPredicate, Evidence};
use crate::read::classify;
use crate::walk::StoreIndex;
use ledger_core::predicate::{
    CommandPredicate, DecisionPredicate, DeploymentPredicate, Input, Outcome, Runner,
    SmokePredicate,
};
use ledger_core::{ArtifactKind, GitSha};
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

/// One fact worth reading from a predicate, e.g. `("api", "sha256:ab…")`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fact {
    pub name: String,
    pub value: String,
}

fn fact(name: impl Into<String>, value: impl Into<String>) -> Fact {
    Fact {
        name: name.into(),
        value: value.into(),
    }
}

/// One artifact of a chain.
#[derive(Debug, Clone, Serialize)]
pub struct ShownArtifact {
    pub key: String,
    pub stage: String,
    pub kind: String,
    pub attempt: u32,
    pub ok: bool,
    pub problems: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Outcome>,
    pub signers: Vec<String>,
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub started_at: Option<OffsetDateTime>,
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub finished_at: Option<OffsetDateTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runner: Option<Runner>,
    pub facts: Vec<Fact>,
    pub inputs: Vec<Input>,
    /// The whole verified predicate, for machines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicate: Option<Value>,
}

/// A SHA's chain.
#[derive(Debug, Clone, Serialize)]
pub struct ShowReport {
    pub sha: GitSha,
    pub ok: bool,
    pub artifacts: Vec<ShownArtifact>,
    pub unexpected: Vec<String>,
}

/// The chain of `sha`, every artifact verified.
pub async fn show(evidence: &mut Evidence<'_>, sha: &GitSha) -> Result<ShowReport, Error> {
    let mut keys = Vec::new();
    for kind in ArtifactKind::ALL {
        keys.extend(evidence.store().list(&kind.prefix(sha)).await?);
    }
    let (refs, unexpected) = classify(sha, &keys);
    let mut artifacts = Vec::new();
    for r in refs {
        let base = ShownArtifact {
            key: r.key(),
            stage: r.kind.stage().as_str().to_owned(),
            kind: r.kind.as_str().to_owned(),
            attempt: r.attempt,
            ok: false,
            problems: Vec::new(),
            result: None,
            signers: Vec::new(),
            started_at: None,
            finished_at: None,
            duration_ms: None,
            runner: None,
            facts: Vec::new(),
            inputs: Vec::new(),
            predicate: None,
        };
        artifacts.push(match evidence.check(&r).await?.into_result() {
            Ok(a) => ShownArtifact {
                ok: true,
                result: Some(a.header().result),
                signers: a.signers().iter().map(|k| k.to_string()).collect(),
                started_at: Some(a.header().started_at),
                finished_at: Some(a.header().finished_at),
                duration_ms: Some(a.header().duration_ms()),
                runner: Some(a.header().runner.clone()),
                facts: facts(a.typed()),
                inputs: a.header().inputs.clone(),
                predicate: Some(a.predicate().clone()),
                ..base
            },
            Err(problems) => ShownArtifact { problems, ..base },
        });
    }
    let ok = !artifacts.is_empty() && artifacts.iter().all(|a| a.ok) && unexpected.is_empty();
    Ok(ShowReport {
        sha: *sha,
        ok,
        artifacts,
        unexpected,
    })
}

/// A recorded number as JSON writes it (`12.5`, `12.0`).
fn number(x: f64) -> String {
    serde_json::Number::from_f64(x).map_or_else(|| "-".into(), |n| n.to_string())
}

/// An optional value, `-` when absent (`null`).
fn or_dash<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

/// The facts of a predicate a reader looks for first, by kind.
pub fn facts(p: &AnyPredicate) -> Vec<Fact> {
    match p {
        AnyPredicate::Command(p) => command_facts(p),
        AnyPredicate::Build(p) => p
            .images
            .iter()
            .map(|image| {
                let id = image.repo_digest.as_ref().unwrap_or(&image.image_id);
                fact(image.name.clone(), id.clone())
            })
            .collect(),
        AnyPredicate::Manifest(p) => p
            .images
            .iter()
            .map(|(name, image)| fact(name.clone(), image.reference.clone()))
            .collect(),
        AnyPredicate::Deployment(p) => deployment_facts(p),
        AnyPredicate::Smoke(p) => smoke_facts(p),
        AnyPredicate::Decision(p) => {
            let mut out = vec![fact("decision", p.decision.as_str())];
            for reason in &p.reasons {
                out.push(fact(
                    format!("reason {}", reason.rule),
                    reason.message.clone(),
                ));
            }
            out
        }
        AnyPredicate::Timing(p) => vec![fact("lead time", human_ms(p.lead_time_ms))],
    }
}

fn command_facts(p: &CommandPredicate) -> Vec<Fact> {
    let mut out = vec![
        fact("command", shell_line(&p.command.argv)),
        fact("exit code", or_dash(p.command.exit_code)),
    ];
    if let Some(tests) = &p.tests {
        out.push(fact(
            "tests",
            format!("{} passed, {} failed", tests.passed, tests.failed),
        ));
    }
    out
}

fn deployment_facts(p: &DeploymentPredicate) -> Vec<Fact> {
    let mut out = vec![
        fact("environment", p.environment.clone()),
        fact("previous release", or_dash(p.previous_release)),
    ];
    if p.replay {
        out.push(fact("replay", "yes"));
    }
    if p.lease.as_ref().is_some_and(|l| l.takeover) {
        out.push(fact("lease", "taken over from an expired holder"));
    }
    if let Some(failure) = &p.failure {
        let restored = if failure.restored {
            "previous release restored"
        } else {
            "previous release NOT restored"
        };
        out.push(fact("failure", format!("{} ({restored})", failure.message)));
    }
    out
}

fn smoke_facts(p: &SmokePredicate) -> Vec<Fact> {
    let mut out = vec![fact("environment", p.environment.clone())];
    for check in &p.checks {
        let verdict = if check.ok { "ok" } else { "FAILED" };
        out.push(fact(
            check.name.clone(),
            format!(
                "{verdict}: {} {} -> {} in {} ms",
                check.method.as_str(),
                check.url,
                or_dash(check.status),
                number(check.latency_ms)
            ),
        ));
    }
    out
}

/// One SHA in `ledger log`.
#[derive(Debug, Clone, Serialize)]
pub struct LogEntry {
    pub sha: GitSha,
    /// The last stage in pipeline order with evidence, and its latest attempt's result.
    pub furthest_stage: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub furthest_result: Option<Outcome>,
    /// The latest decision, if any: `promote` or `reject`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    /// Environments its deployments went to.
    pub environments: Vec<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_activity: Option<OffsetDateTime>,
    /// Problems found verifying what this entry reports (then nothing is claimed).
    pub problems: Vec<String>,
}

/// SHAs newest first (by the store's write times), at most `limit`, those deployed to
/// `env` only when given; each with its furthest stage and decision, verified.
pub async fn log(
    evidence: &mut Evidence<'_>,
    env: Option<&str>,
    limit: usize,
) -> Result<Vec<LogEntry>, Error> {
    let index = StoreIndex::build(evidence.store()).await?;
    let mut out = Vec::new();
    for sha in index.newest_first() {
        if out.len() >= limit {
            break;
        }
        let refs = index.shas[&sha].refs(&sha);
        let mut problems = Vec::new();
        let mut environments = Vec::new();
        for r in refs.iter().filter(|r| r.kind == ArtifactKind::Deployment) {
            match evidence.check(r).await?.into_result() {
                Ok(a) => {
                    let e = a.typed().environment().unwrap_or("-").to_owned();
                    if !environments.contains(&e) {
                        environments.push(e);
                    }
                }
                Err(p) => problems.extend(p.into_iter().map(|p| format!("{}: {p}", r.key()))),
            }
        }
        if env.is_some_and(|e| !environments.iter().any(|x| x == e)) {
            continue;
        }
        // Latest attempt of the furthest kind (stage order), and of the decision.
        let furthest = refs
            .iter()
            .filter(|r| r.kind != ArtifactKind::Timing)
            .max_by_key(|r| {
                let k = ArtifactKind::ALL.iter().position(|k| *k == r.kind);
                (k, r.attempt)
            });
        let mut entry = LogEntry {
            sha,
            furthest_stage: furthest.map_or("-".into(), |r| r.kind.stage().as_str().to_owned()),
            furthest_result: None,
            decision: None,
            environments,
            last_activity: None,
            problems,
        };
        if let Some(r) = furthest {
            match evidence.check(r).await?.into_result() {
                Ok(a) => {
                    entry.furthest_result = Some(a.header().result);
                    entry.last_activity = Some(a.header().finished_at);
                    if r.kind == ArtifactKind::Decision {
                        let decision = a.predicate_as::<DecisionPredicate>()?.decision;
                        entry.decision = Some(decision.as_str().to_owned());
                    }
                }
                Err(p) => entry
                    .problems
                    .extend(p.into_iter().map(|p| format!("{}: {p}", r.key()))),
            }
        }
        out.push(entry);
    }
    Ok(out)
}

/// `1.2 s`, `3 min 4 s`, `850 ms`.
pub fn human_ms(ms: u64) -> String {
    match ms {
        0..=999 => format!("{ms} ms"),
        1000..=59_999 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

/// A wrapped command as a shell line people can read and paste: each argument quoted
/// where the shell would split or expand it (`sh -c 'echo a; echo b'`), not joined
/// with spaces into something that reads like another command.
pub fn shell_line(argv: &[String]) -> String {
    shlex::try_join(argv.iter().map(String::as_str)).unwrap_or_else(|_| format!("{argv:?}"))
}

#[cfg(test)]
mod shell_line_tests {
    use super::shell_line;

    #[test]
    fn arguments_with_spaces_and_shell_syntax_are_quoted() {
        let argv = ["sh", "-c", "echo running unit tests; ./t.sh"].map(String::from);
        assert_eq!(shell_line(&argv), "sh -c 'echo running unit tests; ./t.sh'");
        assert_eq!(shell_line(&["cargo".into(), "test".into()]), "cargo test");
    }
}
