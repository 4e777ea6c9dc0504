//! Strict JSON on the real binary: evidence signed by the zone's own key but giving a
//! member twice (at any depth), starting with a byte order mark or carrying trailing
//! bytes does not verify (exit 4, the member's JSON pointer named) and does not pass
//! the next gate (exit 3); a policy naming `keys` twice is refused (exit 2); a log
//! entry and the policy's signature are read the same way. The auditor's verifier
//! (`docs/audit/verify_chain.py`) refuses each as well.

use crate::{assert_code, text, Repo, SHA};
use base64::Engine as _;
use ledger_core::dsse::{pae, Envelope, Signature, PAYLOAD_TYPE};
use ledger_core::{ArtifactKind, SigningKey, Statement};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const OTHER: &str = "ffffffffffffffffffffffffffffffffffffffff";

/// An envelope over exactly `payload`, signed by `key`.
pub fn sign_raw(payload: &[u8], key: &SigningKey) -> Envelope {
    Envelope {
        payload: B64.encode(payload),
        payload_type: PAYLOAD_TYPE.to_owned(),
        signatures: vec![Signature {
            keyid: key.key_id().to_string(),
            sig: B64.encode(key.sign(&pae(PAYLOAD_TYPE, payload))),
        }],
    }
}

/// The statement's compact JSON with `from` replaced by `to` (exactly once), signed.
pub fn forged_payload(st: &Statement, key: &SigningKey, from: &str, to: &str) -> Vec<u8> {
    let text = String::from_utf8(st.to_bytes()).unwrap();
    assert_eq!(text.matches(from).count(), 1, "{from} in {text}");
    sign_raw(text.replacen(from, to, 1).as_bytes(), key).to_bytes()
}

/// `ledger verify` exits 4 naming `needle` at `key`, and the auditor's verifier
/// refuses it too, naming `needle`.
#[track_caller]
fn assert_not_verified(repo: &Repo, key: &str, needle: &str) {
    let out = repo.ledger(&["verify", SHA]);
    assert_code(&out, 4);
    let shown = text(&out);
    assert!(shown.contains(&format!("FAIL  {key}")), "{shown}");
    assert!(shown.contains(needle), "{needle}: {shown}");
    if let Some(audit) = crate::interop::audit_chain(repo, SHA) {
        assert_eq!(audit.status.code(), Some(1), "{needle}: {}", text(&audit));
        assert!(text(&audit).contains(needle), "{needle}: {}", text(&audit));
    }
}

#[test]
fn a_member_given_twice_in_a_signed_statement_does_not_verify_or_pass_the_gate() {
    let sha_member = format!("\"sha\":\"{SHA}\"");
    let git = format!("{{\"gitCommit\":\"{SHA}\"}}");
    let cases = [
        (
            "\"result\":\"pass\"",
            "\"result\":\"fail\",\"result\":\"pass\"".to_owned(),
            "/predicate/result",
        ),
        (
            sha_member.as_str(),
            format!("\"sha\":\"{OTHER}\",{sha_member}"),
            "/predicate/sha",
        ),
        (
            git.as_str(),
            format!("{{\"gitCommit\":\"{OTHER}\",\"gitCommit\":\"{SHA}\"}}"),
            "/subject/0/digest/gitCommit",
        ),
    ];
    for (from, to, pointer) in cases {
        let repo = Repo::new();
        let key = repo.record_sealed(ArtifactKind::Commit, SHA, |st, k| {
            forged_payload(st, k, from, &to)
        });
        assert_not_verified(&repo, &key, pointer);
        let out = repo.ledger(&["gate", "integration", "--sha", SHA]);
        assert_code(&out, 3);
        assert!(text(&out).contains(pointer), "{pointer}: {}", text(&out));
    }
}

#[test]
fn an_envelope_giving_payload_or_signatures_twice_does_not_verify() {
    let attacker = SigningKey::from_seed(&[66; 32]);
    type Forge = fn(&Statement, &SigningKey, &SigningKey) -> Vec<u8>;
    let cases: [(&str, Forge); 2] = [
        ("/payload", |st, key, _| {
            // A forged statement first, the signed one last.
            let forged = String::from_utf8(st.to_bytes())
                .unwrap()
                .replace("\"result\":\"pass\"", "\"result\":\"fail\"");
            let text = String::from_utf8(Envelope::sign(st, key).to_bytes()).unwrap();
            let first = format!("{{\n  \"payload\": \"{}\",", B64.encode(forged));
            text.replacen('{', &first, 1).into_bytes()
        }),
        ("/signatures", |st, key, attacker| {
            let forged = Envelope::sign(st, attacker);
            let sigs = serde_json::to_string(&forged.signatures).unwrap();
            let text = String::from_utf8(Envelope::sign(st, key).to_bytes()).unwrap();
            text.replacen('{', &format!("{{\n  \"signatures\": {sigs},"), 1)
                .into_bytes()
        }),
    ];
    for (pointer, forge) in cases {
        let repo = Repo::new();
        let key = repo.record_sealed(ArtifactKind::Commit, SHA, |st, k| forge(st, k, &attacker));
        assert_not_verified(&repo, &key, pointer);
        assert_code(&repo.ledger(&["gate", "integration", "--sha", SHA]), 3);
    }
}

/// How evidence is sealed: the stored bytes for a statement and the zone key.
pub type Seal = fn(&Statement, &SigningKey) -> Vec<u8>;

/// A byte order mark before the envelope or inside its signed payload, and trailing
/// bytes after the envelope, each with the word `ledger verify` names it by.
pub fn framing_forgeries() -> [(&'static str, Seal); 3] {
    [
        ("byte order mark", |st, k| {
            [
                b"\xEF\xBB\xBF".as_slice(),
                &Envelope::sign(st, k).to_bytes(),
            ]
            .concat()
        }),
        ("trailing", |st, k| {
            [Envelope::sign(st, k).to_bytes().as_slice(), b"{}"].concat()
        }),
        // Inside the signed payload: the statement itself starts with one.
        ("byte order mark", |st, k| {
            sign_raw(&[b"\xEF\xBB\xBF".as_slice(), &st.to_bytes()].concat(), k).to_bytes()
        }),
    ]
}

#[test]
fn a_byte_order_mark_or_trailing_bytes_do_not_verify() {
    for (needle, seal) in framing_forgeries() {
        let repo = Repo::new();
        let key = repo.record_sealed(ArtifactKind::Commit, SHA, seal);
        assert_not_verified(&repo, &key, "");
        assert!(
            text(&repo.ledger(&["verify", SHA])).contains(needle),
            "{needle}"
        );
        assert_code(&repo.ledger(&["gate", "integration", "--sha", SHA]), 3);
    }
}

/// A repository whose commit stage ran and passed for `SHA`.
fn committed() -> Repo {
    let repo = Repo::new();
    assert_code(
        &repo.ledger(&["stage", "commit", "--sha", SHA, "--", "true"]),
        0,
    );
    repo
}

#[test]
fn a_policy_naming_keys_twice_is_refused_naming_the_member() {
    let repo = committed();
    let path = repo.path().join("policy/pipeline-policy.json");
    let original = std::fs::read_to_string(&path).unwrap();
    // A decoy first: a reviewer reading top-down sees an empty key list.
    std::fs::write(&path, original.replacen('{', "{\n  \"keys\": [],", 1)).unwrap();
    for args in [
        vec!["verify", SHA],
        vec!["gate", "integration", "--sha", SHA],
        vec!["policy", "sign"],
    ] {
        let out = repo.ledger(&args);
        assert_code(&out, 2);
        assert!(text(&out).contains("/keys"), "{args:?}: {}", text(&out));
    }
    if let Some(audit) = crate::interop::audit_chain(&repo, SHA) {
        assert_eq!(audit.status.code(), Some(1), "{}", text(&audit));
        assert!(text(&audit).contains("/keys"), "{}", text(&audit));
    }
}

#[test]
fn log_entries_and_the_policy_signature_are_read_strictly_too() {
    let repo = committed();
    let entry = repo.store().join("log/0000000000000001.json");
    let original = std::fs::read_to_string(&entry).unwrap();
    let decoy = original.replacen("\"objects\":[{", "\"objects\":[{\"key\":\"decoy\",", 1);
    std::fs::write(&entry, decoy).unwrap();
    let out = repo.ledger(&["verify", SHA]);
    assert_code(&out, 4);
    assert!(
        text(&out).contains("member /objects/0/key appears twice"),
        "{}",
        text(&out)
    );
    std::fs::write(&entry, original).unwrap();
    let signature = repo.path().join("policy/pipeline-policy.sig.json");
    let signed = std::fs::read(&signature).unwrap();
    std::fs::write(&signature, [b"\xEF\xBB\xBF".as_slice(), &signed].concat()).unwrap();
    let out = repo.ledger(&["verify", SHA]);
    assert_code(&out, 4);
    assert!(text(&out).contains("byte order mark"), "{}", text(&out));
    std::fs::write(&signature, signed).unwrap();
    assert_code(&repo.ledger(&["verify", SHA]), 0);
}
