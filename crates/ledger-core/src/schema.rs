//! JSON Schema validation of predicates and policies.
//!
//! The schemas in `schemas/` are the published contract, hand-written and versioned;
//! they are compiled into the binary so that validation needs no file system and no
//! network (remote `$ref`s are impossible: `jsonschema` is built without its HTTP
//! retriever, and shared definitions come from `common.v1.schema.json` registered
//! locally). Predicates are validated before they are signed and again on verify.

use crate::stage::ArtifactKind;
use jsonschema::{PatternCache, Registry, Resource, Validator};
use serde_json::Value;
use std::sync::OnceLock;

/// The base URI of every schema `$id`.
pub const SCHEMA_BASE: &str = "https://ledger.dev/schemas/";

/// Every schema shipped, by file name, with its text.
pub const SOURCES: &[(&str, &str)] = &[
    (
        "common.v1.schema.json",
        include_str!("../../../schemas/common.v1.schema.json"),
    ),
    (
        "commit.v1.schema.json",
        include_str!("../../../schemas/commit.v1.schema.json"),
    ),
    (
        "integration.v1.schema.json",
        include_str!("../../../schemas/integration.v1.schema.json"),
    ),
    (
        "build.v1.schema.json",
        include_str!("../../../schemas/build.v1.schema.json"),
    ),
    (
        "manifest.v1.schema.json",
        include_str!("../../../schemas/manifest.v1.schema.json"),
    ),
    (
        "deployment.v1.schema.json",
        include_str!("../../../schemas/deployment.v1.schema.json"),
    ),
    (
        "smoke.v1.schema.json",
        include_str!("../../../schemas/smoke.v1.schema.json"),
    ),
    (
        "decision.v1.schema.json",
        include_str!("../../../schemas/decision.v1.schema.json"),
    ),
    (
        "timing.v1.schema.json",
        include_str!("../../../schemas/timing.v1.schema.json"),
    ),
    (
        "policy.v1.schema.json",
        include_str!("../../../schemas/policy.v1.schema.json"),
    ),
    (
        "config.v1.schema.json",
        include_str!("../../../schemas/config.v1.schema.json"),
    ),
    (
        "prune.v1.schema.json",
        include_str!("../../../schemas/prune.v1.schema.json"),
    ),
];

/// Which document a schema describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Document {
    Predicate(ArtifactKind),
    Policy,
    /// `ledger.toml`, read as JSON.
    Config,
    /// The record of a `ledger prune --apply` run.
    Prune,
}

impl Document {
    /// The schema file name for this document.
    pub fn file_name(self) -> String {
        match self {
            Document::Predicate(kind) => format!("{}.v1.schema.json", kind.as_str()),
            Document::Policy => "policy.v1.schema.json".to_owned(),
            Document::Config => "config.v1.schema.json".to_owned(),
            Document::Prune => "prune.v1.schema.json".to_owned(),
        }
    }

    /// Every document with a schema.
    pub fn all() -> impl Iterator<Item = Document> {
        ArtifactKind::ALL
            .into_iter()
            .map(Document::Predicate)
            .chain([Document::Policy, Document::Config, Document::Prune])
    }
}

/// One way a document breaks its schema: where (JSON pointer) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub path: String,
    pub message: String,
}

/// A document that does not match its schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error("{schema}: {}", render(.violations))]
    Invalid {
        schema: String,
        violations: Vec<Violation>,
    },
    /// A shipped schema does not compile: a bug in `ledger`, caught by its tests.
    #[error("internal error: schema {0} does not compile: {1}")]
    Broken(String, String),
}

fn render(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|v| {
            let at = if v.path.is_empty() { "(root)" } else { &v.path };
            format!("at {at}: {}", v.message)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

type Compiled = Result<Validator, (String, String)>;

fn parse_source(name: &str, text: &str) -> Result<Value, (String, String)> {
    serde_json::from_str(text).map_err(|e| (name.to_owned(), e.to_string()))
}

/// The registry holding the shared definitions (`common.v1.schema.json`), built once.
fn registry() -> &'static Result<Registry<'static>, (String, String)> {
    static CELL: OnceLock<Result<Registry<'static>, (String, String)>> = OnceLock::new();
    CELL.get_or_init(|| {
        let (common_name, common_text) = SOURCES[0];
        let common = parse_source(common_name, common_text)?;
        Registry::new()
            .add(
                format!("{SCHEMA_BASE}{common_name}"),
                Resource::from_contents(common),
            )
            .and_then(|b| b.prepare())
            .map_err(|e| (common_name.to_owned(), e.to_string()))
    })
}

/// Compiled `pattern`s shared by every schema: the shared definitions of
/// `common.v1.schema.json` (SHAs, digests, names) are `$ref`ed from every predicate
/// schema, and without the cache each schema compiled their regexes again.
fn patterns() -> &'static PatternCache {
    static CELL: OnceLock<PatternCache> = OnceLock::new();
    CELL.get_or_init(PatternCache::new)
}

/// The validator of the schema at `index` in [`SOURCES`], compiled on first use:
/// a command pays only for the schemas it validates against (compiling all of them
/// was most of a short command's start-up time).
fn compiled(index: usize) -> &'static Compiled {
    static CELLS: [OnceLock<Compiled>; SOURCES.len()] = [const { OnceLock::new() }; SOURCES.len()];
    CELLS[index].get_or_init(|| {
        let (name, text) = SOURCES[index];
        let registry = registry().as_ref().map_err(Clone::clone)?;
        let schema = parse_source(name, text)?;
        jsonschema::options()
            .with_registry(registry)
            .with_pattern_cache(patterns().clone())
            .should_validate_formats(true)
            .build(&schema)
            .map_err(|e| (name.to_owned(), e.to_string()))
    })
}

/// The compiled validator of `doc`'s schema.
fn validator(doc: Document) -> Result<&'static Validator, SchemaError> {
    let name = doc.file_name();
    let Some(index) = SOURCES.iter().position(|(n, _)| *n == name) else {
        return Err(SchemaError::Broken(name, "not shipped".to_owned()));
    };
    compiled(index)
        .as_ref()
        .map_err(|(n, e)| SchemaError::Broken(n.clone(), e.clone()))
}

/// The documents a command that reads evidence validates, in the order it meets
/// them: the policy, `ledger.toml`, then the predicates stage by stage.
pub fn evidence_documents() -> Vec<Document> {
    [Document::Policy, Document::Config]
        .into_iter()
        .chain(ArtifactKind::ALL.into_iter().map(Document::Predicate))
        .collect()
}

/// Compiles the validators of `docs` now. Each is compiled at most once per
/// process, and a validation that needs one being compiled here waits for it rather
/// than compiling it again. A command that knows what it will validate runs this on
/// a spare thread as it starts, so that compiling the schemas (most of a short
/// command's CPU time) overlaps its reading and parsing instead of following them.
pub fn prepare(docs: &[Document]) {
    for doc in docs {
        let _ = validator(*doc);
    }
}

/// A violation as a person fixes it: an `enum` lists every allowed value (the
/// validator's own text names two and counts the rest).
fn message(e: &jsonschema::ValidationError<'_>) -> String {
    match e.kind() {
        jsonschema::error::ValidationErrorKind::Enum { options } => match options.as_array() {
            Some(allowed) => {
                let allowed: Vec<String> = allowed.iter().map(Value::to_string).collect();
                format!("{} is not one of {}", e.instance(), allowed.join(", "))
            }
            None => e.to_string(),
        },
        _ => e.to_string(),
    }
}

/// Validates `instance` against the schema of `doc`, reporting every violation.
pub fn validate(doc: Document, instance: &Value) -> Result<(), SchemaError> {
    let name = doc.file_name();
    let validator = validator(doc)?;
    // The common case, a valid document, needs no error reports: `is_valid` stops at
    // nothing and builds nothing, several times faster than collecting violations.
    if validator.is_valid(instance) {
        return Ok(());
    }
    let violations: Vec<Violation> = validator
        .iter_errors(instance)
        .take(20)
        .map(|e| Violation {
            path: e.instance_path().to_string(),
            message: message(&e),
        })
        .collect();
    if violations.is_empty() {
        Ok(())
    } else {
        Err(SchemaError::Invalid {
            schema: name,
            violations,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_schema_compiles() {
        for index in 1..SOURCES.len() {
            if let Err((name, e)) = compiled(index) {
                panic!("{name}: {e}");
            }
        }
    }

    #[test]
    fn every_document_has_a_schema() {
        for doc in Document::all() {
            assert!(
                SOURCES.iter().any(|(n, _)| *n == doc.file_name()),
                "{doc:?}"
            );
        }
    }

    #[test]
    fn an_enum_violation_lists_every_allowed_value() {
        let deployment = serde_json::json!({"stage": "deplyo"});
        let err = validate(Document::Predicate(ArtifactKind::Deployment), &deployment)
            .unwrap_err()
            .to_string();
        let all = r#""deplyo" is not one of "commit", "integration", "build", "publish", "deploy", "smoke", "decide""#;
        assert!(err.contains(all), "{err}");
        assert!(!err.contains("other candidates"), "{err}");
    }

    #[test]
    fn violations_name_the_path() {
        let e = validate(Document::Policy, &serde_json::json!({"version": "one"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("policy.v1.schema.json"), "{e}");
    }
}
