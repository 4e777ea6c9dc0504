//! JSON Schema validation of predicates, policies, `ledger.toml` and prune records.
//!
//! The schemas in `schemas/` are the published contract, hand-written and versioned.
//! Each is turned into Rust code when `ledger-core` is compiled
//! (`#[jsonschema::validator]`, the `macros` feature): a process validates without
//! parsing a schema, without checking it against the draft 2020-12 meta-schema and
//! without compiling it, which had been most of a short command's start-up time
//! (docs/performance.md). It also means validation needs no file system and no
//! network: the shared definitions of `common.v1.schema.json` are handed to the macro
//! as a resource under their `$id`, so every `$ref` into that file is resolved at
//! build time, and a `$ref` that resolves nowhere is a build error, not a run-time one.
//! Predicates are validated before they are signed and again on verify.
//!
//! [`SOURCES`] keeps the schema texts for the tests that read them (the Rust types
//! are checked against them, and the generated validators against validators compiled
//! from them at run time, so the two cannot drift).

use crate::attestation::Attestation;
use crate::stage::ArtifactKind;
use serde_json::Value;

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
        "slsa-provenance.v1.schema.json",
        include_str!("../../../schemas/slsa-provenance.v1.schema.json"),
    ),
    (
        "slsa-vsa.v1.schema.json",
        include_str!("../../../schemas/slsa-vsa.v1.schema.json"),
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
    /// The predicate of a standard statement written beside an artifact.
    Attestation(Attestation),
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
            doc => format!("{}.v1.schema.json", doc.name()),
        }
    }

    /// The document's short name: its schema's and its fixtures' folder name.
    pub fn name(self) -> &'static str {
        match self {
            Document::Predicate(kind) => kind.as_str(),
            Document::Attestation(Attestation::Provenance) => "slsa-provenance",
            Document::Attestation(Attestation::Vsa) => "slsa-vsa",
            Document::Policy => "policy",
            Document::Config => "config",
            Document::Prune => "prune",
        }
    }

    /// Every document with a schema.
    pub fn all() -> impl Iterator<Item = Document> {
        ArtifactKind::ALL
            .into_iter()
            .map(Document::Predicate)
            .chain(Attestation::ALL.into_iter().map(Document::Attestation))
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
    /// A document could not even be put into the form its schema checks (a bug in
    /// `ledger`, caught by its tests).
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

/// At most this many violations are reported for one document.
const MAX_VIOLATIONS: usize = 20;

/// Every schema in one generated validator: the document goes in as the only member
/// of an object, under its [`Document::name`], and that member's schema is the
/// document's (`additionalProperties: false`, so a name with no schema fails).
///
/// One validator rather than one per schema because the generated code compiles
/// each `pattern` once per process *per validator*: the patterns of
/// `common.v1.schema.json` (SHAs, digests, names) were compiled again by every
/// predicate's validator a command reached, and compiling them was over a third of
/// a cold `ledger verify` (docs/performance.md). Patterns use the `regex` engine:
/// none needs look-around or back-references, which a build error would show, and
/// it skips `fancy-regex`'s own parse of each pattern. Their lazy DFA gets no cache
/// (`dfa_size_limit = 0`), so `regex` matches with its one-pass DFA, bounded
/// backtracker or PikeVM instead: the same matches, in linear time still, without
/// allocating a cache and building states for the few short strings (keys, digests,
/// names) a command checks with each pattern; `ledger policy show` took 15 % less
/// time. `common.v1.schema.json` and
/// every document's schema are registered under their `$id`s, so all `$ref`s
/// resolve at build time; `format` is asserted (as the runtime validators are told
/// to). Paths are relative to this crate's manifest.
#[jsonschema::validator(
    schema = r#"{
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "minProperties": 1,
        "maxProperties": 1,
        "additionalProperties": false,
        "properties": {
            "commit": { "$ref": "https://ledger.dev/schemas/commit.v1.schema.json" },
            "integration": { "$ref": "https://ledger.dev/schemas/integration.v1.schema.json" },
            "build": { "$ref": "https://ledger.dev/schemas/build.v1.schema.json" },
            "manifest": { "$ref": "https://ledger.dev/schemas/manifest.v1.schema.json" },
            "deployment": { "$ref": "https://ledger.dev/schemas/deployment.v1.schema.json" },
            "smoke": { "$ref": "https://ledger.dev/schemas/smoke.v1.schema.json" },
            "decision": { "$ref": "https://ledger.dev/schemas/decision.v1.schema.json" },
            "timing": { "$ref": "https://ledger.dev/schemas/timing.v1.schema.json" },
            "slsa-provenance": { "$ref": "https://ledger.dev/schemas/slsa-provenance.v1.schema.json" },
            "slsa-vsa": { "$ref": "https://ledger.dev/schemas/slsa-vsa.v1.schema.json" },
            "policy": { "$ref": "https://ledger.dev/schemas/policy.v1.schema.json" },
            "config": { "$ref": "https://ledger.dev/schemas/config.v1.schema.json" },
            "prune": { "$ref": "https://ledger.dev/schemas/prune.v1.schema.json" }
        }
    }"#,
    resources = {
        "https://ledger.dev/schemas/common.v1.schema.json" => { path = "../../schemas/common.v1.schema.json" },
        "https://ledger.dev/schemas/commit.v1.schema.json" => { path = "../../schemas/commit.v1.schema.json" },
        "https://ledger.dev/schemas/integration.v1.schema.json" => { path = "../../schemas/integration.v1.schema.json" },
        "https://ledger.dev/schemas/build.v1.schema.json" => { path = "../../schemas/build.v1.schema.json" },
        "https://ledger.dev/schemas/manifest.v1.schema.json" => { path = "../../schemas/manifest.v1.schema.json" },
        "https://ledger.dev/schemas/deployment.v1.schema.json" => { path = "../../schemas/deployment.v1.schema.json" },
        "https://ledger.dev/schemas/smoke.v1.schema.json" => { path = "../../schemas/smoke.v1.schema.json" },
        "https://ledger.dev/schemas/decision.v1.schema.json" => { path = "../../schemas/decision.v1.schema.json" },
        "https://ledger.dev/schemas/timing.v1.schema.json" => { path = "../../schemas/timing.v1.schema.json" },
        "https://ledger.dev/schemas/slsa-provenance.v1.schema.json" => { path = "../../schemas/slsa-provenance.v1.schema.json" },
        "https://ledger.dev/schemas/slsa-vsa.v1.schema.json" => { path = "../../schemas/slsa-vsa.v1.schema.json" },
        "https://ledger.dev/schemas/policy.v1.schema.json" => { path = "../../schemas/policy.v1.schema.json" },
        "https://ledger.dev/schemas/config.v1.schema.json" => { path = "../../schemas/config.v1.schema.json" },
        "https://ledger.dev/schemas/prune.v1.schema.json" => { path = "../../schemas/prune.v1.schema.json" }
    },
    validate_formats = true,
    pattern_options = { engine = regex, dfa_size_limit = 0 },
    methods = { is_valid = true, validate = false, iter_errors = true }
)]
struct Documents;

/// A violation as a person fixes it: where (under `prefix`, the member the document
/// was handed in as, which is taken off), and what.
fn violation(e: &jsonschema::ValidationError<'_>, prefix: &str) -> Violation {
    let path = e.instance_path().to_string();
    Violation {
        path: path.strip_prefix(prefix).unwrap_or(&path).to_owned(),
        message: message(e),
    }
}

/// What is wrong: an `enum` lists every allowed value (the validator's own text
/// names two and counts the rest), also when it constrains property names.
fn message(e: &jsonschema::ValidationError<'_>) -> String {
    use jsonschema::error::ValidationErrorKind;
    match e.kind() {
        ValidationErrorKind::Enum { options } => match options.as_array() {
            Some(allowed) => {
                let allowed: Vec<String> = allowed.iter().map(Value::to_string).collect();
                format!("{} is not one of {}", e.instance(), allowed.join(", "))
            }
            None => e.to_string(),
        },
        ValidationErrorKind::PropertyNames { error } => message(error),
        _ => e.to_string(),
    }
}

/// Validates `instance` against the schema of `doc`, reporting every violation (up
/// to twenty).
pub fn validate(doc: Document, instance: &Value) -> Result<(), SchemaError> {
    let name = doc.name();
    let wrapped = Value::Object(serde_json::Map::from_iter([(
        name.to_owned(),
        instance.clone(),
    )]));
    // The common case, a valid document, needs no error reports: `is_valid` stops at
    // the first failure and builds nothing.
    if Documents::is_valid(&wrapped) {
        return Ok(());
    }
    let prefix = format!("/{name}");
    let mut violations: Vec<Violation> = Documents::iter_errors(&wrapped)
        .take(MAX_VIOLATIONS)
        .map(|e| violation(&e, &prefix))
        .collect();
    if violations.is_empty() {
        // `is_valid` and `iter_errors` disagreeing would be a bug in the generated
        // code; the document is refused rather than let through.
        violations.push(Violation {
            path: String::new(),
            message: "does not match its schema".to_owned(),
        });
    }
    Err(SchemaError::Invalid {
        schema: doc.file_name(),
        violations,
    })
}

#[cfg(test)]
mod tests;
