//! The SLSA companions read by the in-toto project's own models: `ledger`'s provenance
//! and VSA statements pass `tests/interop/slsa_check.py` (securesystemslib for the
//! DSSE signature, in-toto-attestation's Statement, Provenance v1 and VSA v1 messages
//! parsed with unknown fields refused), and the checker refuses what it must, so it
//! can fail. `bash .ci/run` installs both Python packages; `LEDGER_SKIP_INTEROP=1`
//! skips on a machine without them (`LEDGER_REQUIRE_INTEROP=1` makes that a failure).

use crate::strict::sign_raw;
use crate::text;
use ledger_core::SigningKey;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const PROVENANCE: &str = "https://slsa.dev/provenance/v1";
const VSA: &str = "https://slsa.dev/verification_summary/v1";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Whether Python with securesystemslib and in-toto-attestation is here.
pub(crate) fn slsa_ready() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| {
        crate::audit_trust::python_imports(
            "securesystemslib.dsse, in_toto_attestation.v1.statement, in_toto_attestation.predicates.vsa.v1.vsa_pb2",
            "in-toto-attestation",
            "`bash .ci/run`",
        )
    })
}

/// Runs `slsa_check.py --key KEY ENVELOPE...`.
pub(crate) fn slsa_check(key: &Path, envelopes: &[PathBuf]) -> Output {
    Command::new("python3")
        .arg(root().join("tests/interop/slsa_check.py"))
        .arg("--key")
        .arg(key)
        .args(envelopes)
        .output()
        .expect("python3")
}

/// The JSON lines the checker printed, one per envelope.
pub(crate) fn checked(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn fixtures() -> PathBuf {
    root().join("schemas/fixtures")
}

fn fixture(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `valid/` fixtures of `folder`, sorted.
fn valid_fixtures(folder: &str) -> Vec<PathBuf> {
    let dir = fixtures().join(folder).join("valid");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

fn statement(predicate_type: &str, predicate: &Value) -> Value {
    json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{ "name": "ledger-demo/api", "digest": { "sha256": "a1".repeat(32) } }],
        "predicateType": predicate_type,
        "predicate": predicate,
    })
}

/// Signs `statement` (as compact JSON) with `key` into `dir/name.json`.
fn envelope(dir: &Path, name: &str, statement: &Value, key: &SigningKey) -> PathBuf {
    let path = dir.join(format!("{name}.json"));
    let payload = serde_json::to_vec(statement).unwrap();
    std::fs::write(&path, sign_raw(&payload, key).to_bytes()).unwrap();
    path
}

/// Forgeries of the fixtures' statements the checker must refuse, by name.
fn forgeries(provenance: &Value, vsa: &Value) -> Vec<(&'static str, Value)> {
    let edit = |st: &Value, f: &dyn Fn(&mut Value)| {
        let mut st = st.clone();
        f(&mut st);
        st
    };
    let (p, v) = (statement(PROVENANCE, provenance), statement(VSA, vsa));
    vec![
        ("statement field", edit(&p, &|s| s["extra"] = 1.into())),
        (
            "provenance field",
            edit(&p, &|s| s["predicate"]["buildDefinition"]["x"] = 1.into()),
        ),
        (
            "no builder id",
            edit(&p, &|s| {
                s["predicate"]["runDetails"]["builder"]["id"] = "".into()
            }),
        ),
        (
            "short gitCommit",
            edit(&p, &|s| {
                s["predicate"]["buildDefinition"]["resolvedDependencies"][0]["digest"]
                    ["gitCommit"] = "abc".into();
            }),
        ),
        ("no subject", edit(&p, &|s| s["subject"] = json!([]))),
        (
            "statement v0.1",
            edit(&p, &|s| {
                s["_type"] = "https://in-toto.io/Statement/v0.1".into()
            }),
        ),
        (
            "provenance as a VSA",
            edit(&p, &|s| s["predicateType"] = VSA.into()),
        ),
        (
            "unknown predicate type",
            edit(&v, &|s| s["predicateType"] = "https://example.com/x".into()),
        ),
        (
            "verifier field",
            edit(&v, &|s| s["predicate"]["verifier"]["x"] = 1.into()),
        ),
        (
            "levels as one string",
            edit(&v, &|s| s["predicate"]["verifiedLevels"] = "FAILED".into()),
        ),
        (
            "result MAYBE",
            edit(&v, &|s| {
                s["predicate"]["verificationResult"] = "MAYBE".into()
            }),
        ),
        (
            "bad timeVerified",
            edit(&v, &|s| s["predicate"]["timeVerified"] = "today".into()),
        ),
    ]
}

#[test]
fn in_toto_attestation_reads_every_fixture_and_the_checker_refuses_forgeries() {
    if !slsa_ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::from_seed(&[7; 32]);
    let public = dir.path().join("key.pub");
    std::fs::write(&public, key.public().to_pem().unwrap()).unwrap();
    // Every valid fixture, signed as its statement, reads in in-toto-attestation.
    let (mut good, mut types) = (Vec::new(), Vec::new());
    for (folder, predicate_type) in [("slsa-provenance", PROVENANCE), ("slsa-vsa", VSA)] {
        for path in valid_fixtures(folder) {
            let name = format!("{folder}-{}", path.file_stem().unwrap().to_string_lossy());
            let predicate = fixture(&path);
            good.push(envelope(
                dir.path(),
                &name,
                &statement(predicate_type, &predicate),
                &key,
            ));
            types.push(predicate_type);
        }
    }
    assert!(good.len() >= 4, "{good:?}");
    let out = slsa_check(&public, &good);
    assert!(out.status.success(), "{}", text(&out));
    let found: Vec<Value> = checked(&out)
        .iter()
        .map(|c| c["predicateType"].clone())
        .collect();
    assert_eq!(found, types, "{}", text(&out));

    let provenance = fixture(&fixtures().join("slsa-provenance/valid/minimal.json"));
    let vsa = fixture(&fixtures().join("slsa-vsa/valid/passed.json"));
    let other = SigningKey::from_seed(&[8; 32]);
    let foreign = envelope(
        dir.path(),
        "foreign",
        &statement(PROVENANCE, &provenance),
        &other,
    );
    let out = slsa_check(&public, &[foreign]);
    assert!(
        !out.status.success(),
        "another key's signature: {}",
        text(&out)
    );
    for (what, forged) in forgeries(&provenance, &vsa) {
        let path = envelope(dir.path(), "forged", &forged, &key);
        let out = slsa_check(&public, &[path]);
        assert_eq!(out.status.code(), Some(1), "{what}: {}", text(&out));
        assert!(text(&out).contains("FAIL"), "{what}: {}", text(&out));
    }
}

/// The subjects SPEC'd for a build's provenance: each image by its repository and
/// manifest digest when pushed, else by its tag's repository and image id.
fn image_subjects(sha: &str, build: &Value) -> Vec<Value> {
    let images = build["images"].as_array().expect("the build's images");
    images
        .iter()
        .map(|i| {
            let (name, digest) = match i["repo_digest"].as_str() {
                Some(pushed) => pushed.split_once("@sha256:").expect("a repo digest"),
                None => (
                    i["reference"]
                        .as_str()
                        .unwrap()
                        .trim_end_matches(&format!(":{sha}")),
                    i["image_id"]
                        .as_str()
                        .unwrap()
                        .trim_start_matches("sha256:"),
                ),
            };
            json!({ "name": name, "digest": { "sha256": digest } })
        })
        .collect()
}

/// The subjects of a decision's VSA: the release-candidate manifest's images, in key
/// order, by the reference before `@` (an engine-local image by its name) and digest.
fn manifest_subjects(manifest: &Value) -> Vec<Value> {
    let images = manifest["images"]
        .as_object()
        .expect("the manifest's images");
    images
        .iter()
        .map(|(key, i)| {
            let name = match i["engine_local"].as_bool() {
                Some(true) => key.as_str(),
                _ => i["ref"].as_str().unwrap().split('@').next().unwrap(),
            };
            let digest = i["digest"].as_str().unwrap().trim_start_matches("sha256:");
            json!({ "name": name, "digest": { "sha256": digest } })
        })
        .collect()
}

/// Runs `project` through decide, then holds its companions to their artifacts and
/// hands them to the checker; both verifiers must accept the chain.
fn release_and_check(p: &crate::project::Project) {
    let s = p.sha(1);
    p.run_through(&s, "decide");
    let repo = &p.repo;
    let (build, decision) = (
        format!("build/{s}/build.json"),
        format!("release/{s}/decision.json"),
    );
    let companions = [
        format!("build/{s}/build.provenance.json"),
        format!("release/{s}/decision.vsa.json"),
    ];
    for (artifact, companion) in [&build, &decision].into_iter().zip(&companions) {
        assert!(
            repo.has_object(companion),
            "{companion} is missing: {:?}",
            repo.stored()
        );
        let link = &repo.predicate(artifact)["attestation"];
        assert_eq!(link["key"], companion.as_str(), "{artifact}");
        let digest = ledger_core::Sha256Digest::of(&repo.read_object(companion));
        assert_eq!(link["sha256"], digest.to_hex(), "{artifact}");
    }
    let paths: Vec<PathBuf> = companions.iter().map(|k| repo.object(k)).collect();
    let out = slsa_check(&repo.path().join(".ledger/release.pub"), &paths);
    assert!(out.status.success(), "{}", text(&out));
    let found = checked(&out);
    assert_eq!(found.len(), 2, "{}", text(&out));
    assert_eq!(found[0]["predicateType"], PROVENANCE);
    assert_eq!(
        found[0]["subjects"],
        json!(image_subjects(&s, &repo.predicate(&build)))
    );
    let manifest = repo.predicate(&format!("release-candidate/{s}/manifest.json"));
    assert_eq!(found[1]["predicateType"], VSA);
    assert_eq!(found[1]["subjects"], json!(manifest_subjects(&manifest)));
    // Both verifiers accept the chain the companions are part of.
    crate::assert_code(&p.ledger(&["verify", &s]), 0);
    let audit = crate::interop::audit_chain(repo, &s).expect("interop is not skipped here");
    crate::assert_code(&audit, 0);
}

#[test]
fn a_released_commits_slsa_companions_pass_in_toto_attestation() {
    use crate::project::{engine, registry, Project};
    let Some(_) = engine() else { return };
    let Some(registry) = registry() else {
        eprintln!("LEDGER_TEST_REGISTRY not set; skipping");
        return;
    };
    if slsa_ready() {
        release_and_check(&Project::new(Some(registry)));
    }
}

/// Without a registry the subjects are the engine's: the tag's repository and image
/// id for the provenance, the manifest's image name for the VSA.
#[test]
fn an_engine_local_releases_slsa_companions_pass_in_toto_attestation() {
    use crate::project::{engine, Project};
    let Some(_) = engine() else { return };
    if slsa_ready() {
        release_and_check(&Project::new(None));
    }
}
