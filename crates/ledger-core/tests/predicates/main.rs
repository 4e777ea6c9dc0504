//! The typed predicates against the published schemas, both ways: every `valid/`
//! fixture reads into its type and writes back unchanged (no field dropped, renamed
//! or added by the type), and a fully populated value of every type passes its
//! schema (no field the schema lacks) and carries every property the schema declares
//! (no field the type lacks). Adding a field on one side only fails one of these.

mod full;

use full::{full_deployment, full_manifest, fully_populated};
use ledger_core::predicate::{
    from_value, BuildPredicate, CommandPredicate, DecisionPredicate, DeploymentPredicate,
    ManifestPredicate, Predicate, ProvenancePredicate, PrunePredicate, SmokePredicate,
    TimingPredicate, VsaPredicate,
};
use ledger_core::schema::{validate, Document, SCHEMA_BASE, SOURCES};
use ledger_core::ArtifactKind;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------- fixtures → types

fn fixture_dir(doc: Document) -> PathBuf {
    let name = doc.name();
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../schemas/fixtures")
        .join(name)
        .join("valid")
}

fn valid_fixtures(doc: Document) -> Vec<(PathBuf, Value)> {
    let dir = fixture_dir(doc);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let v = serde_json::from_slice(&std::fs::read(&p).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, v)
        })
        .collect()
}

/// Where `got` differs from `want`, if anywhere. Numbers compare by value: `500` and
/// `500.0` are one number to JSON Schema and to every reader, and an `f64` field
/// writes `500.0` for a fixture's `500`.
fn difference(got: &Value, want: &Value, at: &str) -> Option<String> {
    match (got, want) {
        (Value::Number(g), Value::Number(w)) if g.is_f64() || w.is_f64() => {
            (g.as_f64() != w.as_f64()).then(|| format!("{at}: {g} != {w}"))
        }
        (Value::Object(g), Value::Object(w)) => {
            let keys: BTreeSet<&String> = g.keys().chain(w.keys()).collect();
            keys.into_iter().find_map(|k| match (g.get(k), w.get(k)) {
                (Some(g), Some(w)) => difference(g, w, &format!("{at}/{k}")),
                (Some(_), None) => Some(format!("{at}/{k}: added by the type")),
                _ => Some(format!("{at}/{k}: dropped by the type")),
            })
        }
        (Value::Array(g), Value::Array(w)) if g.len() == w.len() => g
            .iter()
            .zip(w)
            .enumerate()
            .find_map(|(i, (g, w))| difference(g, w, &format!("{at}/{i}"))),
        _ => (got != want).then(|| format!("{at}: {got} != {want}")),
    }
}

/// Reads every valid fixture of every document of `P` into `P` and writes it back.
fn round_trips<P: Predicate>() -> usize {
    let mut count = 0;
    for doc in P::DOCUMENTS {
        for (path, fixture) in valid_fixtures(*doc) {
            let typed: P = from_value(&fixture)
                .unwrap_or_else(|e| panic!("{} does not read: {e}", path.display()));
            let back = serde_json::to_value(&typed).unwrap();
            if let Some(d) = difference(&back, &fixture, "") {
                panic!("{} does not round-trip: {d}", path.display());
            }
            count += 1;
        }
    }
    count
}

#[test]
fn every_valid_fixture_round_trips_through_its_type() {
    let counts = [
        ("command", round_trips::<CommandPredicate>()),
        ("build", round_trips::<BuildPredicate>()),
        ("manifest", round_trips::<ManifestPredicate>()),
        ("deployment", round_trips::<DeploymentPredicate>()),
        ("smoke", round_trips::<SmokePredicate>()),
        ("decision", round_trips::<DecisionPredicate>()),
        ("timing", round_trips::<TimingPredicate>()),
        ("prune", round_trips::<PrunePredicate>()),
        ("slsa-provenance", round_trips::<ProvenancePredicate>()),
        ("slsa-vsa", round_trips::<VsaPredicate>()),
    ];
    for (name, n) in counts {
        assert!(n >= 2, "{name}: only {n} fixtures read");
    }
}

#[test]
fn every_predicate_document_has_exactly_one_type() {
    let mut typed: Vec<Document> = [
        CommandPredicate::DOCUMENTS,
        BuildPredicate::DOCUMENTS,
        ManifestPredicate::DOCUMENTS,
        DeploymentPredicate::DOCUMENTS,
        SmokePredicate::DOCUMENTS,
        DecisionPredicate::DOCUMENTS,
        TimingPredicate::DOCUMENTS,
        PrunePredicate::DOCUMENTS,
        ProvenancePredicate::DOCUMENTS,
        VsaPredicate::DOCUMENTS,
    ]
    .concat();
    typed.sort();
    let mut all: Vec<Document> = Document::all()
        .filter(|d| !matches!(d, Document::Policy | Document::Config))
        .collect();
    all.sort();
    assert_eq!(typed, all);
}

#[test]
fn a_recorded_null_is_kept_apart_from_an_absent_field() {
    let (_, mut v) = valid_fixtures(Document::Predicate(ArtifactKind::Decision))
        .into_iter()
        .next()
        .unwrap();
    v["rollback_from"] = Value::Null;
    v["reasons"] = json!([{ "rule": "/r", "message": "m", "found": null }]);
    let typed: DecisionPredicate = from_value(&v).unwrap();
    assert_eq!(typed.rollback_from, Some(None));
    assert_eq!(typed.reasons[0].found, Some(Value::Null));
    assert_eq!(typed.reasons[0].required, None);
    assert_eq!(serde_json::to_value(&typed).unwrap(), v);
}

// ------------------------------------------------------------ types → schemas

/// The parsed schema file called `name`.
fn schema_file(name: &str) -> Value {
    let (_, text) = SOURCES
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("{name} is not shipped"));
    serde_json::from_str(text).unwrap()
}

/// Follows a `$ref` from inside `root`: returns the referenced file and node.
fn resolve(root: &Value, reference: &str) -> (Value, Value) {
    let (file, pointer) = reference.split_once('#').unwrap_or((reference, ""));
    let target = if file.is_empty() {
        root.clone()
    } else {
        let name = file
            .strip_prefix(SCHEMA_BASE)
            .unwrap_or_else(|| panic!("$ref outside the shipped schemas: {reference}"));
        schema_file(name)
    };
    let node = target
        .pointer(pointer)
        .unwrap_or_else(|| panic!("dangling $ref {reference}"))
        .clone();
    (target, node)
}

/// Records in `missing` every property `schema` declares (through `$ref`s, nested
/// objects, array items, map values and `anyOf`/`oneOf`/`allOf` branches) that
/// `value` lacks, and every array or map left empty (whose items then go unchecked).
fn undeclared_in(root: &Value, schema: &Value, value: &Value, at: &str, missing: &mut Vec<String>) {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let (root, node) = resolve(root, reference);
        undeclared_in(&root, &node, value, at, missing);
    }
    for combinator in ["anyOf", "oneOf", "allOf"] {
        for branch in schema
            .get(combinator)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            undeclared_in(root, branch, value, at, missing);
        }
    }
    let declared = schema.get("properties").and_then(Value::as_object);
    if let (Some(declared), Some(object)) = (declared, value.as_object()) {
        for (name, sub) in declared {
            match object.get(name) {
                Some(v) => undeclared_in(root, sub, v, &format!("{at}/{name}"), missing),
                None => missing.push(format!("{at}/{name}")),
            }
        }
    }
    let values = schema.get("additionalProperties").filter(|s| s.is_object());
    if let (Some(values), Some(object)) = (values, value.as_object()) {
        let extra: Vec<_> = object
            .iter()
            .filter(|(k, _)| declared.is_none_or(|d| !d.contains_key(*k)))
            .collect();
        if extra.is_empty() {
            missing.push(format!("{at}/* (no entries: their shape goes unchecked)"));
        }
        for (k, v) in extra {
            undeclared_in(root, values, v, &format!("{at}/{k}"), missing);
        }
    }
    let Some(array) = value.as_array() else {
        return;
    };
    // Draft 2020-12: `prefixItems` describe the first items, `items` the rest.
    let prefix = schema.get("prefixItems").and_then(Value::as_array);
    let items = schema.get("items");
    if (prefix.is_some() || items.is_some()) && array.is_empty() {
        missing.push(format!("{at}/0 (empty: its items go unchecked)"));
    }
    for (i, v) in array.iter().enumerate() {
        let item = prefix.and_then(|p| p.get(i)).or(items);
        if let Some(item) = item {
            undeclared_in(root, item, v, &format!("{at}/{i}"), missing);
        }
    }
}

/// The schema properties `value` lacks, as JSON pointers.
fn missing_properties(doc: Document, value: &Value) -> Vec<String> {
    let root = schema_file(&doc.file_name());
    let mut missing = Vec::new();
    undeclared_in(&root, &root, value, "", &mut missing);
    missing
}

#[test]
fn every_field_of_every_type_is_in_its_schema() {
    for (doc, value) in fully_populated() {
        if let Err(e) = validate(doc, &value) {
            panic!("{doc:?}: the fully populated type breaks its schema: {e}");
        }
    }
}

#[test]
fn every_property_of_every_schema_is_in_its_type() {
    let mut seen = BTreeSet::new();
    for (doc, value) in fully_populated() {
        seen.insert(doc);
        let missing = missing_properties(doc, &value);
        assert!(
            missing.is_empty(),
            "{doc:?}: the schema declares what the fully populated type does not write: {missing:?}"
        );
    }
    let expected: BTreeSet<Document> = Document::all()
        .filter(|d| !matches!(d, Document::Policy | Document::Config))
        .collect();
    assert_eq!(
        seen, expected,
        "a predicate document has no fully populated value"
    );
}

#[test]
fn the_property_walk_notices_a_missing_field_at_any_depth() {
    for (doc, value) in fully_populated() {
        let object = value.as_object().unwrap();
        for key in object.keys() {
            let mut v = value.clone();
            v.as_object_mut().unwrap().remove(key);
            assert!(
                missing_properties(doc, &v).contains(&format!("/{key}")),
                "{doc:?}: removing {key} went unnoticed"
            );
        }
        if value.get("runner").is_some() {
            let mut v = value.clone();
            v["runner"].as_object_mut().unwrap().remove("run_url");
            assert!(missing_properties(doc, &v).contains(&"/runner/run_url".to_owned()));
        }
    }
    let mut v = serde_json::to_value(full_deployment()).unwrap();
    let doc = Document::Predicate(ArtifactKind::Deployment);
    v["containers"][0]["ports"][0]
        .as_object_mut()
        .unwrap()
        .remove("host");
    v["promotion"]["smoke"]
        .as_object_mut()
        .unwrap()
        .remove("sha256");
    let missing = missing_properties(doc, &v);
    assert!(
        missing.contains(&"/containers/0/ports/0/host".to_owned()),
        "{missing:?}"
    );
    assert!(
        missing.contains(&"/promotion/smoke/sha256".to_owned()),
        "{missing:?}"
    );
    let mut v = serde_json::to_value(full_manifest()).unwrap();
    v["images"]["api"]
        .as_object_mut()
        .unwrap()
        .remove("engine_local");
    let missing = missing_properties(Document::Predicate(ArtifactKind::Manifest), &v);
    assert_eq!(missing, ["/images/api/engine_local"]);
}

#[test]
fn a_field_the_schema_lacks_breaks_validation() {
    for (doc, mut value) in fully_populated() {
        value["unexpected"] = json!(1);
        assert!(
            validate(doc, &value).is_err(),
            "{doc:?}: unknown field accepted"
        );
    }
}
