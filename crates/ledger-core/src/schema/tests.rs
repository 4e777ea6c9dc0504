//! The schema module's own tests, and the generated validators held to validators
//! compiled from the same schema texts at run time over every fixture, so the two cannot drift.

use super::*;
use std::path::{Path, PathBuf};

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
    assert!(e.contains("at /version: "), "{e}");
}

#[test]
fn a_reference_into_the_shared_definitions_is_enforced() {
    // `sha` is defined once, in common.v1.schema.json: the generated validator must
    // have followed the `$ref` across files to refuse this.
    let path = fixtures()
        .join("commit")
        .join("invalid")
        .join("uppercase-sha.json");
    let e = validate(Document::Predicate(ArtifactKind::Commit), &load(&path)).unwrap_err();
    let SchemaError::Invalid { violations, .. } = e else {
        panic!("{e}")
    };
    assert!(
        violations.iter().any(|v| v.path == "/sha"),
        "{violations:?}"
    );
}

// ------------------------------------------- generated against runtime-compiled

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/fixtures")
}

fn fixture_dir(doc: Document) -> PathBuf {
    let name = doc.name();
    fixtures().join(name)
}

fn load(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn fixture_files(doc: Document) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for verdict in ["valid", "invalid"] {
        let dir = fixture_dir(doc).join(verdict);
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The schema of `doc` compiled at run time by `jsonschema`, with the same options
/// the generated validators are built with.
fn runtime_validator(doc: Document) -> jsonschema::Validator {
    let text = |name: &str| -> Value {
        let (_, text) = SOURCES.iter().find(|(n, _)| *n == name).unwrap();
        serde_json::from_str(text).unwrap()
    };
    let common = "common.v1.schema.json";
    let registry = jsonschema::Registry::new()
        .add(
            format!("{SCHEMA_BASE}{common}"),
            jsonschema::Resource::from_contents(text(common)),
        )
        .and_then(|b| b.prepare())
        .unwrap();
    jsonschema::options()
        .with_registry(&registry)
        .should_validate_formats(true)
        .build(&text(&doc.file_name()))
        .unwrap_or_else(|e| panic!("{doc:?}: {e}"))
}

/// What the runtime validator says of `instance`, in the form [`validate`] reports.
fn runtime_verdict(validator: &jsonschema::Validator, instance: &Value) -> Vec<Violation> {
    let mut out: Vec<Violation> = validator
        .iter_errors(instance)
        .take(MAX_VIOLATIONS)
        .map(|e| violation(&e, ""))
        .collect();
    out.sort_by(|a, b| (&a.path, &a.message).cmp(&(&b.path, &b.message)));
    out
}

fn generated_verdict(doc: Document, instance: &Value) -> Vec<Violation> {
    let mut out = match validate(doc, instance) {
        Ok(()) => Vec::new(),
        Err(SchemaError::Invalid { violations, .. }) => violations,
        Err(e) => panic!("{e}"),
    };
    out.sort_by(|a, b| (&a.path, &a.message).cmp(&(&b.path, &b.message)));
    out
}

/// Every fixture as it is, and every valid one with each top-level member taken out
/// and with a member it does not know added: more cases than the fixtures alone,
/// each near the schema's edge.
fn cases(doc: Document) -> Vec<(String, Value)> {
    let mut cases = Vec::new();
    for path in fixture_files(doc) {
        let value = load(&path);
        let name = path.display().to_string();
        if let (true, Some(object)) = (name.contains("/valid/"), value.as_object()) {
            for key in object.keys() {
                let mut without = object.clone();
                without.remove(key);
                cases.push((format!("{name} without {key}"), Value::Object(without)));
            }
            let mut extra = object.clone();
            extra.insert("zz_unknown".into(), Value::Bool(true));
            cases.push((format!("{name} with zz_unknown"), Value::Object(extra)));
        }
        cases.push((name, value));
    }
    cases
}

#[test]
fn the_generated_validators_agree_with_runtime_compiled_ones() {
    let mut compared = 0;
    for doc in Document::all() {
        let runtime = runtime_validator(doc);
        for (name, instance) in cases(doc) {
            let expected = runtime_verdict(&runtime, &instance);
            assert_eq!(
                generated_verdict(doc, &instance),
                expected,
                "{name}: the generated validator of {} disagrees with the runtime one",
                doc.file_name()
            );
            assert_eq!(
                runtime.is_valid(&instance),
                expected.is_empty(),
                "{name}: runtime is_valid and iter_errors disagree"
            );
            compared += 1;
        }
    }
    // Every document has at least 6 fixtures (tests/fixtures.rs) and most valid ones
    // several members: a comparison over far fewer cases compared next to nothing.
    assert!(compared > 300, "only {compared} cases compared");
}

#[test]
fn an_enum_over_property_names_lists_every_allowed_value() {
    let path = fixtures()
        .join("policy")
        .join("invalid")
        .join("unknown-stage.json");
    let e = validate(Document::Policy, &load(&path))
        .unwrap_err()
        .to_string();
    let all = r#"at /stages: "comit" is not one of "commit", "integration", "build", "publish", "deploy", "smoke", "decide""#;
    assert!(e.contains(all), "{e}");
}

/// The schemas spell fixed and bounded lengths with `minLength`/`maxLength` beside an
/// unbounded pattern (`^[0-9a-f]*$` with both 64, not `^[0-9a-f]{64}$`): each
/// bounded repetition compiled into its own run of automaton states, which every
/// process paid for (docs/performance.md). Both spellings accept the same strings:
/// the patterns admit ASCII only, so a length in characters is a length in bytes.
/// Held here over the lengths around each bound and the characters on each side of
/// each class, the old spelling against the one in `schemas/`.
#[test]
fn lengths_beside_patterns_accept_what_bounded_patterns_accepted() {
    let rewritten: &[(&str, &str)] = &[
        (
            "^[0-9a-f]{40}$",
            r#""pattern": "^[0-9a-f]*$", "minLength": 40, "maxLength": 40"#,
        ),
        (
            "^[0-9a-f]{64}$",
            r#""pattern": "^[0-9a-f]*$", "minLength": 64, "maxLength": 64"#,
        ),
        (
            "^sha256:[0-9a-f]{64}$",
            r#""pattern": "^sha256:[0-9a-f]*$", "minLength": 71, "maxLength": 71"#,
        ),
        (
            "^[a-z0-9][a-z0-9._-]{0,63}$",
            r#""pattern": "^[a-z0-9][a-z0-9._-]*$", "maxLength": 64"#,
        ),
        (
            "^[a-z0-9][a-z0-9_-]{0,31}$",
            r#""pattern": "^[a-z0-9][a-z0-9_-]*$", "maxLength": 32"#,
        ),
        (
            r"^policies/[0-9a-f]{64}\.json$",
            r#""pattern": "^policies/[0-9a-f]*\\.json$", "minLength": 78, "maxLength": 78"#,
        ),
    ];
    let every_schema: String = SOURCES.iter().map(|(_, text)| *text).collect();
    let mut candidates: Vec<String> = Vec::new();
    for n in 0..=80 {
        for fill in ["0", "a", "f", "g", "A", "_", ".", "-", "é", " "] {
            let run = fill.repeat(n);
            candidates.push(run.clone());
            candidates.push(format!("a{run}"));
            candidates.push(format!("sha256:{run}"));
            candidates.push(format!("policies/{run}.json"));
            candidates.push(format!("{run}\n"));
        }
        candidates.push(format!("{}é", "0".repeat(n)));
        candidates.push(format!("sha256:{}", "0".repeat(n.saturating_sub(1)) + "é"));
    }
    for (old, new) in rewritten {
        assert!(every_schema.contains(new), "{new} is no longer in schemas/");
        let old_schema = serde_json::json!({ "type": "string", "pattern": old });
        let new_schema: Value =
            serde_json::from_str(&format!(r#"{{"type": "string", {new}}}"#)).unwrap();
        let (old_v, new_v) = (
            jsonschema::validator_for(&old_schema).unwrap(),
            jsonschema::validator_for(&new_schema).unwrap(),
        );
        let mut accepted = 0;
        for s in &candidates {
            let value = Value::String(s.clone());
            let verdict = old_v.is_valid(&value);
            assert_eq!(
                verdict,
                new_v.is_valid(&value),
                "{old} against {new}: {s:?}"
            );
            accepted += usize::from(verdict);
        }
        assert!(
            accepted > 0,
            "{old}: no candidate is valid, so nothing was compared"
        );
    }
}
