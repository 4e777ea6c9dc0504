//! The checks that tie a statement to the key it is stored under: predicate type,
//! subjects, and the header's stage, SHA, environment and attempt. Pure functions of
//! the key and the statement; the signature, hash-link and log checks that need the
//! store are in `evidence`.

use crate::typed::AnyPredicate;
use ledger_core::predicate::Outcome;
use ledger_core::schema::{self, Document};
use ledger_core::{ArtifactKind, ArtifactRef, EnvName, Statement};
use ledger_store::ObjectKey;

/// What is wrong with a statement's type and subjects for the key it is stored under.
pub fn statement_problems(r: &ArtifactRef, key: &ObjectKey, statement: &Statement) -> Vec<String> {
    let mut problems = Vec::new();
    if statement.kind() != Some(r.kind) {
        problems.push(format!(
            "predicateType is {:?}, but {key} must hold {:?}",
            statement.predicate_type,
            r.kind.predicate_type()
        ));
    }
    if !statement.is_about(&r.sha) {
        problems.push(format!("no subject names git commit {}", r.sha));
    }
    if let Some(other) = statement.git_commits().find(|c| *c != r.sha.as_str()) {
        problems.push(format!("a subject names another git commit, {other}"));
    }
    problems
}

/// The predicate checked against its schema, then read into its kind's type.
pub fn read_predicate(
    kind: ArtifactKind,
    predicate: &serde_json::Value,
) -> Result<AnyPredicate, String> {
    if let Err(e) = schema::validate(Document::Predicate(kind), predicate) {
        return Err(format!("predicate does not match its schema: {e}"));
    }
    AnyPredicate::read(kind, predicate).map_err(|e| format!("predicate unreadable: {e}"))
}

/// What in the predicate's header disagrees with the key it is stored under.
pub fn header_problems(r: &ArtifactRef, typed: &AnyPredicate) -> Vec<String> {
    let stage = r.kind.stage();
    let header = typed.header();
    let mut problems = Vec::new();
    if header.stage != stage {
        problems.push(format!(
            "predicate stage is `{}`, expected `{stage}`",
            header.stage
        ));
    }
    if header.sha != r.sha {
        problems.push(format!(
            "predicate sha is {}, but it is stored under {}",
            header.sha, r.sha
        ));
    }
    if r.kind.per_environment() {
        let stored_as = r
            .env
            .as_ref()
            .map_or(ledger_core::DEFAULT_ENV, EnvName::as_str);
        let recorded = typed.environment().unwrap_or("-");
        if recorded != stored_as {
            problems.push(format!(
                "predicate environment is `{recorded}`, but it is stored as evidence of `{stored_as}`"
            ));
        }
    }
    if header.attempt != r.attempt {
        problems.push(format!(
            "predicate attempt is {}, but it is stored as attempt {}",
            header.attempt, r.attempt
        ));
    }
    problems
}

/// What the predicate's own fields say its result must be, and why: a wrapped command
/// passes only with exit code 0, a smoke only when it ran checks and every one was
/// ok, a build or deployment only without a recorded failure. `None` for kinds whose
/// result is not derived from their fields.
fn derived_result(typed: &AnyPredicate) -> Option<(Outcome, String)> {
    let pass_if =
        |ok: bool, why: String| Some((if ok { Outcome::Pass } else { Outcome::Fail }, why));
    match typed {
        AnyPredicate::Command(p) => pass_if(
            p.command.exit_code == Some(0),
            match p.command.exit_code {
                Some(code) => format!("its command exited with code {code}"),
                None => "its command was ended by a signal".to_owned(),
            },
        ),
        AnyPredicate::Smoke(p) => {
            let failed = p.checks.iter().filter(|c| !c.ok).count();
            let why = if p.checks.is_empty() {
                "it ran no checks".to_owned()
            } else {
                format!("{failed} of its {} check(s) failed", p.checks.len())
            };
            pass_if(!p.checks.is_empty() && failed == 0, why)
        }
        AnyPredicate::Build(p) => pass_if(
            p.failure.is_none(),
            if p.failure.is_some() {
                "it records a build failure"
            } else {
                "it records no failure"
            }
            .to_owned(),
        ),
        AnyPredicate::Deployment(p) => pass_if(
            p.failure.is_none(),
            if p.failure.is_some() {
                "it records a deploy failure"
            } else {
                "it records no failure"
            }
            .to_owned(),
        ),
        _ => None,
    }
}

/// A `result` that contradicts the predicate's own fields: signed evidence that says
/// `pass` for a command that exited 1 must not open a gate.
pub fn result_problems(typed: &AnyPredicate) -> Vec<String> {
    let recorded = typed.header().result;
    match derived_result(typed) {
        Some((derived, why)) if derived != recorded => vec![format!(
            "predicate result is `{}`, but {why}, so it must be `{}`",
            recorded.as_str(),
            derived.as_str()
        )],
        _ => Vec::new(),
    }
}
