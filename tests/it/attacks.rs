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

/// The build's second attempt, where each forgery is stored.
const FORGED: &str = "build/0123456789abcdef0123456789abcdef01234567/build.attempt-2.json";

/// An envelope over `payload` bytes exactly, signed by `key`.
fn signed_bytes(payload: &[u8], key: &SigningKey) -> Vec<u8> {
    let pae = ledger_core::dsse::pae("application/vnd.in-toto+json", payload);
    let e = json!({
        "payload": B64.encode(payload),
        "payloadType": "application/vnd.in-toto+json",
        "signatures": [{ "keyid": key.key_id().to_string(), "sig": B64.encode(key.sign(&pae)) }],
    });
    serde_json::to_vec(&e).unwrap()
}

/// On a fresh chain, stores the build's second attempt as the bytes `forge` makes of
/// the statement a stage would sign there (this SHA, attempt 2, the current log head)
/// and of the trusted key, and logs it as `ledger` would: the store and its log agree,
/// so only the envelope itself is wrong. Asserts that `verify` refuses it naming
/// `expected` and that the next gate denies.
fn assert_refused(
    what: &str,
    expected: &str,
    forge: impl FnOnce(&Repo, &Statement, &SigningKey) -> Vec<u8>,
) {
    let repo = chain();
    let stored = repo.record_sealed(ArtifactKind::Build, SHA, |st, key| forge(&repo, st, key));
    assert_eq!(stored, FORGED);
    let out = repo.ledger(&["verify", SHA]);
    assert_code(&out, 4);
    let shown = text(&out);
    let problems = problems_of(&shown, FORGED);
    assert!(
        problems.contains(expected),
        "{what}: {expected:?} in {shown}"
    );
    let out = repo.ledger(&["gate", "publish", "--sha", SHA]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{what}: the gate let it through\n{}",
        text(&out)
    );
}

/// The problems `verify` lists under `FAIL  key` (its indented lines); empty when
/// `key` did not fail.
fn problems_of(shown: &str, key: &str) -> String {
    let mut lines = shown
        .lines()
        .skip_while(|l| !l.starts_with(&format!("FAIL  {key}")));
    let Some(_) = lines.next() else {
        return String::new();
    };
    let block: Vec<&str> = lines.take_while(|l| l.starts_with(' ')).collect();
    block.join("\n")
}

/// The harness itself refuses nothing: the second attempt stored and logged the same
/// way but signed as `ledger` signs verifies, and the gate takes it.
#[test]
fn a_second_attempt_stored_the_way_the_attacks_are_verifies() {
    let repo = chain();
    let stored = repo.record_sealed(ArtifactKind::Build, SHA, |st, key| {
        Envelope::sign(st, key).to_bytes()
    });
    assert_eq!(stored, FORGED);
    assert_code(&repo.ledger(&["verify", SHA]), 0);
    assert_code(&repo.ledger(&["gate", "publish", "--sha", SHA]), 0);
}

#[test]
fn forged_signatures_fail_verification_and_the_gate() {
    assert_refused(
        "no signatures",
        "envelope has no signatures",
        |_, st, key| {
            let mut e: Value = serde_json::from_slice(&Envelope::sign(st, key).to_bytes()).unwrap();
            e["signatures"] = json!([]);
            serde_json::to_vec(&e).unwrap()
        },
    );
    let attacker = SigningKey::from_seed(&[66; 32]);
    assert_refused(
        "a key the policy does not trust",
        "no signature by a trusted key",
        |_, st, _| Envelope::sign(st, &attacker).to_bytes(),
    );
    // The commit zone's key: trusted, but not for build.
    assert_refused(
        "a key trusted for another stage",
        "no signature by a trusted key",
        |repo, st, _| Envelope::sign(st, &repo.signing_key(".ledger/test.key")).to_bytes(),
    );
    assert_refused(
        "the trusted key's id over another key's signature",
        "does not verify",
        |_, st, key| {
            let mut forged = Envelope::sign(st, &attacker);
            forged.signatures[0].keyid = key.key_id().to_string();
            forged.to_bytes()
        },
    );
    assert_refused(
        "payloadType changed",
        "payloadType is \"application/json\"",
        |_, st, key| {
            let mut e: Value = serde_json::from_slice(&Envelope::sign(st, key).to_bytes()).unwrap();
            e["payloadType"] = json!("application/json");
            serde_json::to_vec(&e).unwrap()
        },
    );
    // The payload type is covered by the signature (PAE): signed as another type,
    // presented as in-toto.
    assert_refused(
        "signed over another payloadType",
        "does not verify",
        |_, st, key| {
            let payload = st.to_bytes();
            let pae = ledger_core::dsse::pae("application/json", &payload);
            let e = json!({
                "payload": B64.encode(&payload),
                "payloadType": "application/vnd.in-toto+json",
                "signatures": [{ "keyid": key.key_id().to_string(), "sig": B64.encode(key.sign(&pae)) }],
            });
            serde_json::to_vec(&e).unwrap()
        },
    );
}

/// A holder of the trusted key mislabelling evidence: every statement below is signed
/// by the key the policy trusts for `build`.
#[test]
fn mislabelled_statements_signed_by_the_trusted_key_are_refused() {
    for predicate_type in [
        "https://ledger.dev/predicate/commit/v1",
        "https://ledger.dev/predicate/build/v0",
        "https://slsa.dev/provenance/v1",
    ] {
        assert_refused(predicate_type, "predicateType is", |_, st, key| {
            let mut st = st.clone();
            st.predicate_type = predicate_type.into();
            Envelope::sign(&st, key).to_bytes()
        });
    }
    // A valid envelope of another stage copied into place: signed by that stage's
    // key, which the policy does not trust for build (re-signed by the trusted key it
    // is the commit statement above).
    assert_refused(
        "another stage's envelope",
        "no signature by a trusted key",
        |repo, _, _| repo.read_object(&format!("integration/{SHA}/integration.json")),
    );
    // Attempt 1's statement re-signed as attempt 2 (a replay of a passing attempt).
    assert_refused(
        "the predicate's attempt",
        "predicate attempt is 1, but it is stored as attempt 2",
        |_, st, key| {
            let mut st = st.clone();
            st.predicate["attempt"] = json!(1);
            Envelope::sign(&st, key).to_bytes()
        },
    );
    // A payload with a member given twice, or trailing data.
    assert_refused(
        "a duplicated member",
        "member /predicateType appears twice",
        |_, st, key| {
            let payload = String::from_utf8(st.to_bytes()).unwrap();
            let bad = payload.replacen('{', "{\"predicateType\":\"x\",", 1);
            signed_bytes(bad.as_bytes(), key)
        },
    );
    assert_refused("trailing data", "trailing", |_, st, key| {
        let payload = String::from_utf8(st.to_bytes()).unwrap();
        signed_bytes(format!("{payload} {{}}").as_bytes(), key)
    });
}

#[test]
fn two_signatures_required_means_two_distinct_trusted_keys() {
    let require_two = |repo: &Repo| {
        repo.edit_policy(|p| p["stages"]["build"]["min_signatures"] = json!(2));
    };
    assert_refused("one signature twice", "repeats key id", |repo, st, key| {
        require_two(repo);
        let mut e: Value = serde_json::from_slice(&Envelope::sign(st, key).to_bytes()).unwrap();
        let sig = e["signatures"][0].clone();
        e["signatures"] = json!([sig.clone(), sig]);
        serde_json::to_vec(&e).unwrap()
    });
    assert_refused(
        "one signature",
        "1 distinct trusted signature(s), the policy requires 2",
        |repo, st, key| {
            require_two(repo);
            Envelope::sign(st, key).to_bytes()
        },
    );
}

#[test]
fn evidence_signed_after_its_key_was_revoked_is_refused() {
    assert_refused(
        "signed by a revoked key",
        "which the policy revoked at",
        |repo, st, key| {
            // Revoked from this very attempt's time on: attempt 1 still counts.
            let id = key.key_id().to_string();
            let from = st.predicate["finished_at"].clone();
            let new_id = repo.generate_key("new");
            repo.trust_key("new", &new_id, &["build"]);
            repo.edit_policy(|p| {
                for k in p["keys"].as_array_mut().unwrap() {
                    if k["keyid"] == id.as_str() {
                        k["revoked_at"] = from.clone();
                    }
                }
            });
            Envelope::sign(st, key).to_bytes()
        },
    );
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
        format!("build/{SHA}/build.json"),
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
