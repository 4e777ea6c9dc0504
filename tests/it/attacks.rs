//! The attack suite: forged or altered evidence on a real chain must make `ledger
//! verify` fail (exit 4) and the next stage's gate deny (exit 3), never pass. The
//! classes are those verifiers of peer tools shipped (envelopes accepted with no or
//! unrelated signatures, a trusted key id over another key's signature, replayed
//! evidence, downgraded types): each is one case here, on the stored chain.

use crate::support::Rng;
use crate::{assert_code, text, Repo, SHA};
use base64::Engine as _;
use ledger_core::dsse::Envelope;
use ledger_core::{ArtifactKind, SigningKey, Statement};
use serde_json::{json, Value};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// commit and integration run for real, then build, recorded: the gate of publish
/// consumes the build, whose evidence the attacks replace.
fn chain() -> Repo {
    let repo = Repo::new();
    assert_code(
        &repo.ledger(&["stage", "commit", "--sha", SHA, "--", "true"]),
        0,
    );
    assert_code(
        &repo.ledger(&["stage", "integration", "--sha", SHA, "--", "true"]),
        0,
    );
    repo.record(ArtifactKind::Build, SHA, |_| {});
    assert_code(&repo.ledger(&["verify", SHA]), 0);
    assert_code(&repo.ledger(&["gate", "publish", "--sha", SHA]), 0);
    repo
}

const TARGET: &str = "build/0123456789abcdef0123456789abcdef01234567/build.json";

fn envelope(repo: &Repo, key: &str) -> Value {
    serde_json::from_slice(&repo.read_object(key)).unwrap()
}

fn statement_of(env: &Value) -> Statement {
    Statement::parse(&B64.decode(env["payload"].as_str().unwrap()).unwrap()).unwrap()
}

fn repo_key(repo: &Repo) -> SigningKey {
    SigningKey::from_pem(&std::fs::read_to_string(repo.path().join(".ledger/release.key")).unwrap())
        .unwrap()
}

/// Replaces the target envelope with `bytes` and asserts both refusals.
fn assert_refused(repo: &Repo, what: &str, bytes: Vec<u8>) {
    repo.tamper_object(TARGET, bytes);
    let out = repo.ledger(&["verify", SHA]);
    assert_code(&out, 4);
    assert!(
        text(&out).contains(&format!("FAIL  {TARGET}")),
        "{what}: {}",
        text(&out)
    );
    let out = repo.ledger(&["gate", "publish", "--sha", SHA]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{what}: the gate let it through\n{}",
        text(&out)
    );
}

#[test]
fn forged_envelopes_fail_verification_and_the_gate() {
    let repo = chain();
    let original = envelope(&repo, TARGET);
    let original_bytes = repo.read_object(TARGET);
    let key = repo_key(&repo);
    let attacker = SigningKey::from_seed(&[66; 32]);
    let statement = statement_of(&original);

    // No signatures at all.
    let mut e = original.clone();
    e["signatures"] = json!([]);
    assert_refused(&repo, "empty signatures", serde_json::to_vec(&e).unwrap());

    // Signed by a key the policy does not trust.
    let forged = Envelope::sign(&statement, &attacker);
    assert_refused(&repo, "untrusted key", forged.to_bytes());

    // The trusted key's id over the attacker's signature.
    let mut forged = Envelope::sign(&statement, &attacker);
    forged.signatures[0].keyid = key.key_id().to_string();
    assert_refused(
        &repo,
        "trusted keyid, other key's signature",
        forged.to_bytes(),
    );

    // The payload type changed (the signature covers it through PAE).
    let mut e = original.clone();
    e["payloadType"] = json!("application/json");
    assert_refused(
        &repo,
        "payloadType changed",
        serde_json::to_vec(&e).unwrap(),
    );

    // predicateType swapped to another stage's, or downgraded, and re-signed with the
    // trusted key (an insider mislabelling evidence).
    for predicate_type in [
        "https://ledger.dev/predicate/commit/v1",
        "https://ledger.dev/predicate/build/v0",
        "https://slsa.dev/provenance/v1",
    ] {
        let mut st = statement.clone();
        st.predicate_type = predicate_type.into();
        assert_refused(&repo, predicate_type, Envelope::sign(&st, &key).to_bytes());
    }

    // A valid envelope of another stage copied into place.
    let integration = repo.read_object(&format!("integration/{SHA}/integration.json"));
    assert_refused(&repo, "another stage's envelope", integration);

    // A payload with a duplicated key, or trailing data, signed by the trusted key.
    let payload = String::from_utf8(statement.to_bytes()).unwrap();
    for bad in [
        payload.replacen("{", "{\"predicateType\":\"x\",", 1),
        format!("{payload} {{}}"),
    ] {
        let pae = ledger_core::dsse::pae("application/vnd.in-toto+json", bad.as_bytes());
        let e = json!({
            "payload": B64.encode(bad.as_bytes()),
            "payloadType": "application/vnd.in-toto+json",
            "signatures": [{ "keyid": key.key_id().to_string(), "sig": B64.encode(key.sign(&pae)) }],
        });
        assert_refused(
            &repo,
            "non-strict payload JSON",
            serde_json::to_vec(&e).unwrap(),
        );
    }

    // The original verifies again: the refusals were about the forgeries.
    repo.tamper_object(TARGET, original_bytes);
    assert_code(&repo.ledger(&["verify", SHA]), 0);
}

#[test]
fn a_duplicated_signature_does_not_meet_a_two_signature_threshold() {
    let repo = chain();
    repo.edit_policy(|p| p["stages"]["build"]["min_signatures"] = json!(2));
    let mut e = envelope(&repo, TARGET);
    let sig = e["signatures"][0].clone();
    e["signatures"] = json!([sig.clone(), sig]);
    assert_refused(
        &repo,
        "one signature twice",
        serde_json::to_vec(&e).unwrap(),
    );
    let out = repo.ledger(&["verify", SHA]);
    assert!(text(&out).contains("repeats key id"), "{}", text(&out));
}

#[test]
fn a_hash_link_to_another_attempt_is_broken() {
    let repo = Repo::new();
    assert_code(
        &repo.ledger(&["stage", "commit", "--sha", SHA, "--", "true"]),
        0,
    );
    assert_code(
        &repo.ledger(&["stage", "commit", "--sha", SHA, "--", "true"]),
        0,
    );
    // Integration made from attempt 2, but its link names attempt 1 with attempt 2's
    // digest: signed by the trusted key, and still refused.
    let second = ledger_core::Sha256Digest::of(
        &repo.read_object(&format!("commit/{SHA}/commit.attempt-2.json")),
    );
    repo.record(ArtifactKind::Integration, SHA, |p| {
        p["inputs"] =
            json!([{ "key": format!("commit/{SHA}/commit.json"), "sha256": second.to_hex() }]);
    });
    let out = repo.ledger(&["verify", SHA]);
    assert_code(&out, 4);
    assert!(text(&out).contains("hash link broken"), "{}", text(&out));
    assert_code(&repo.ledger(&["gate", "build", "--sha", SHA]), 3);
}

#[test]
fn thousands_of_random_mutations_of_any_artifact_are_all_refused() {
    let repo = chain();
    let keys = [
        format!("commit/{SHA}/commit.json"),
        format!("integration/{SHA}/integration.json"),
        TARGET.to_owned(),
    ];
    let originals: Vec<Vec<u8>> = keys.iter().map(|k| repo.read_object(k)).collect();
    let verifier = repo.in_process();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    const MUTATIONS: usize = 3000;
    for n in 0..MUTATIONS {
        let which = (rng.next() % keys.len() as u64) as usize;
        let mut bytes = originals[which].clone();
        // One to three bytes, each replaced by a different value.
        for _ in 0..=(rng.next() % 3) {
            let i = (rng.next() % bytes.len() as u64) as usize;
            let delta = 1 + (rng.next() % 255) as u8;
            bytes[i] = bytes[i].wrapping_add(delta);
        }
        let path = repo.object(&keys[which]);
        std::fs::write(&path, &bytes).unwrap();
        assert!(
            !verifier.chain_ok(SHA),
            "mutation {n} of {} verified",
            keys[which]
        );
        std::fs::write(&path, &originals[which]).unwrap();
    }
    assert_code(&repo.ledger(&["verify", SHA]), 0);
}
