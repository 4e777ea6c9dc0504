//! The typed predicates against the published schemas, both ways: every `valid/`
//! fixture reads into its type and writes back unchanged (no field dropped, renamed
//! or added by the type), and a fully populated value of every type passes its
//! schema (no field the schema lacks) and carries every property the schema declares
//! (no field the type lacks). Adding a field on one side only fails one of these.

use ledger_core::predicate::{
    from_value, BuildFailure, BuildPredicate, BuiltImage, Command, CommandPredicate, Container,
    Decision, DecisionPredicate, Deleted, DeployFailure, DeploymentPredicate, Header, ImageLabels,
    Input, Latency, Lease, ManifestPredicate, Method, Outcome, Output, PinnedImage, Place, Port,
    Predicate, Promotion, PrunePredicate, Reason, Runner, SmokeCheck, SmokePredicate, StageTime,
    TestCounts, TimingPredicate,
};
use ledger_core::schema::{validate, Document, SCHEMA_BASE, SOURCES};
use ledger_core::{ArtifactKind, EnvName, GitSha, Sha256Digest, Stage};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use time::macros::datetime;
use time::OffsetDateTime;

// ---------------------------------------------------------------- fixtures → types

fn fixture_dir(doc: Document) -> PathBuf {
    let name = match doc {
        Document::Predicate(k) => k.as_str(),
        Document::Prune => "prune",
        Document::Policy => "policy",
        Document::Config => "config",
    };
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

fn sha() -> GitSha {
    GitSha::parse("0123456789abcdef0123456789abcdef01234567").unwrap()
}

fn other_sha() -> GitSha {
    GitSha::parse("89abcdef0123456789abcdef0123456789abcdef").unwrap()
}

fn t0() -> OffsetDateTime {
    datetime!(2026-11-24 10:00 UTC)
}

fn image_digest() -> String {
    format!("sha256:{}", Sha256Digest::of(b"image"))
}

fn input(key: &str) -> Input {
    Input {
        key: key.to_owned(),
        sha256: Sha256Digest::of(key.as_bytes()),
    }
}

fn runner() -> Runner {
    Runner {
        host: "ci-runner-7".into(),
        ci_provider: "github-actions".into(),
        run_id: Some("4242".into()),
        run_url: Some("https://ci.example/runs/4242".into()),
        labels: vec!["ubuntu-24.04".into()],
    }
}

fn header(stage: Stage) -> Header {
    Header {
        stage,
        sha: sha(),
        attempt: 2,
        started_at: t0(),
        finished_at: t0() + time::Duration::milliseconds(42_125),
        result: Outcome::Fail,
        runner: runner(),
        inputs: vec![input(&format!("commit/{}/commit.json", sha()))],
        policy_sha256: Sha256Digest::of(b"policy"),
        ledger_version: "0.1.0".into(),
    }
}

fn replay_manifest() -> Input {
    input(&format!("release-candidate/{}/manifest.json", sha()))
}

fn full_command(stage: Stage) -> CommandPredicate {
    CommandPredicate {
        header: header(stage),
        command: Command {
            argv: vec!["cargo".into(), "test".into()],
            exit_code: Some(1),
            duration_ms: 3,
        },
        output: Output {
            key: format!("{stage}/{}/{stage}.attempt-2.log", sha()),
            sha256: Sha256Digest::of(b"log"),
            bytes: 3,
            redacted: vec!["API_TOKEN".into()],
        },
        tests: Some(TestCounts {
            passed: 1,
            failed: 1,
            ignored: 1,
        }),
    }
}

fn full_build() -> BuildPredicate {
    BuildPredicate {
        header: header(Stage::Build),
        images: vec![BuiltImage {
            name: "api".into(),
            reference: format!("ledger-demo/api:{}", sha()),
            image_id: image_digest(),
            repo_digest: Some(format!("127.0.0.1:5000/ledger-demo/api@{}", image_digest())),
            labels: ImageLabels {
                revision: sha(),
                created: "2026-11-24T10:00:00Z".into(),
                source: "https://example.com/shop".into(),
                other: BTreeMap::from([("team".to_owned(), "shop".to_owned())]),
            },
            duration_ms: 5120,
        }],
        registry: Some("127.0.0.1:5000".into()),
        failure: Some(BuildFailure {
            image: "worker".into(),
            message: "COPY failed".into(),
        }),
    }
}

fn full_manifest() -> ManifestPredicate {
    ManifestPredicate {
        header: header(Stage::Publish),
        images: BTreeMap::from([(
            "api".to_owned(),
            PinnedImage {
                reference: format!("127.0.0.1:5000/ledger-demo/api@{}", image_digest()),
                digest: image_digest(),
                engine_local: false,
            },
        )]),
        registry: Some("127.0.0.1:5000".into()),
    }
}

fn full_deployment() -> DeploymentPredicate {
    DeploymentPredicate {
        header: header(Stage::Deploy),
        environment: "canary".into(),
        manifest: replay_manifest(),
        containers: vec![Container {
            name: "ledger-canary-api".into(),
            image: "api".into(),
            reference: image_digest(),
            digest: image_digest(),
            container_id: "f".repeat(64),
            ports: vec![Port {
                container: 8080,
                host: 18080,
            }],
        }],
        previous_release: Some(other_sha()),
        duration_ms: 2311,
        replay: true,
        rollback_from: Some(Some(other_sha())),
        promotion: Some(Promotion {
            from: EnvName::parse("staging").unwrap(),
            deployment: input(&format!("infra/{}/deployment.staging.json", sha())),
            smoke: input(&format!("deploy/{}/api-smoke.staging.json", sha())),
        }),
        lease: Some(Lease {
            holder: "ci-runner-7/4242".into(),
            acquired_at: t0(),
            expires_at: t0() + time::Duration::minutes(15),
            takeover: true,
        }),
        failure: Some(DeployFailure {
            message: "container api did not become healthy".into(),
            restored: true,
        }),
    }
}

fn full_smoke() -> SmokePredicate {
    SmokePredicate {
        header: header(Stage::Smoke),
        environment: "canary".into(),
        checks: vec![SmokeCheck {
            name: "health".into(),
            method: Method::Get,
            url: "http://127.0.0.1:18080/health".into(),
            expected_status: 200,
            status: Some(503),
            latency_ms: 3.2,
            ok: false,
            attempts: 2,
            max_latency_ms: Some(500.0),
            error: Some("status 503".into()),
        }],
        latency_ms: Latency {
            p50: 3.2,
            p95: 3.2,
            max: 3.2,
        },
        replay: Some(true),
        manifest: Some(replay_manifest()),
        rollback_from: Some(Some(other_sha())),
    }
}

fn full_decision() -> DecisionPredicate {
    DecisionPredicate {
        header: header(Stage::Decide),
        decision: Decision::Reject,
        reasons: vec![Reason {
            rule: "/release/requires/5".into(),
            message: "smoke check health failed".into(),
            artifact: Some(format!("deploy/{}/api-smoke.json", sha())),
            found: Some(json!(false)),
            required: Some(json!(true)),
        }],
        replay: Some(true),
        rollback_from: Some(Some(other_sha())),
        manifest: Some(replay_manifest()),
    }
}

fn full_timing() -> TimingPredicate {
    TimingPredicate {
        header: header(Stage::Decide),
        stages: vec![StageTime {
            stage: Stage::Commit,
            attempt: 1,
            key: format!("commit/{}/commit.json", sha()),
            started_at: t0(),
            finished_at: t0() + time::Duration::seconds(42),
            duration_ms: 42_000,
        }],
        lead_time_ms: 303_000,
        total_stage_ms: 42_000,
    }
}

fn full_prune() -> PrunePredicate {
    PrunePredicate {
        pruned_at: t0(),
        runner: runner(),
        policy_sha256: Sha256Digest::of(b"policy"),
        ledger_version: "0.1.0".into(),
        threshold: 50,
        forced: true,
        min_age_days: 14,
        protected: 3,
        deleted: vec![Deleted {
            sha: sha(),
            image: "api".into(),
            place: Place::Registry,
            reference: format!("127.0.0.1:5000/shop/api@{}", image_digest()),
            digest: image_digest(),
            size: Some(Some(1234)),
            ok: false,
            error: Some("registry answered 404".into()),
        }],
    }
}

/// Serializes `p` as the predicate of each of its documents.
fn documents_of<P: Predicate>(p: &P) -> Vec<(Document, Value)> {
    P::DOCUMENTS
        .iter()
        .map(|d| (*d, serde_json::to_value(p).unwrap()))
        .collect()
}

/// A fully populated value of every type, as the JSON of every document it models.
fn fully_populated() -> Vec<(Document, Value)> {
    let mut out = vec![
        (
            Document::Predicate(ArtifactKind::Commit),
            serde_json::to_value(full_command(Stage::Commit)).unwrap(),
        ),
        (
            Document::Predicate(ArtifactKind::Integration),
            serde_json::to_value(full_command(Stage::Integration)).unwrap(),
        ),
    ];
    out.extend(documents_of(&full_build()));
    out.extend(documents_of(&full_manifest()));
    out.extend(documents_of(&full_deployment()));
    out.extend(documents_of(&full_smoke()));
    out.extend(documents_of(&full_decision()));
    out.extend(documents_of(&full_timing()));
    out.extend(documents_of(&full_prune()));
    out
}

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
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        if array.is_empty() {
            missing.push(format!("{at}/0 (empty: its items go unchecked)"));
        }
        for (i, v) in array.iter().enumerate() {
            undeclared_in(root, items, v, &format!("{at}/{i}"), missing);
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
        let mut v = value.clone();
        v["runner"].as_object_mut().unwrap().remove("run_url");
        assert!(missing_properties(doc, &v).contains(&"/runner/run_url".to_owned()));
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
