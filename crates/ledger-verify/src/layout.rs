//! The checks that tie a statement to the key it is stored under: predicate type,
//! subjects, and the header's stage, SHA, environment and attempt. Pure functions of
//! the key and the statement; the signature, hash-link and log checks that need the
//! store are in `evidence`.

use crate::typed::AnyPredicate;
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
