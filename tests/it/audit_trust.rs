//! The signed policy, checked from outside: securesystemslib verifies the policy
//! signature and the root of trust `ledger init` writes, and the auditor's verifier
//! (`docs/audit/verify_chain.py`) reaches the same verdict as `ledger verify` on
//! every change to the policy's trust. Needs Python with securesystemslib (`bash
//! .ci/run` installs it); without it these tests skip with a notice, unless
//! `LEDGER_REQUIRE_INTEROP=1`, which makes that a failure. `LEDGER_SKIP_INTEROP=1`
//! skips them on purpose, as it does the other interop tests.

use crate::{assert_code, text, Repo, SHA};
use ledger_core::signed::{SignedDocument, POLICY_PAYLOAD_TYPE};
use ledger_core::{ArtifactKind, Sha256Digest, SigningKey};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

/// Whether Python with securesystemslib is here to run the checks.
pub(crate) fn python_ready() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| {
        python_imports(
            "securesystemslib.dsse, cryptography",
            "securesystemslib",
            "`bash .ci/run` or `pip install 'securesystemslib[crypto]'`",
        )
    })
}

/// Whether `python3 -c 'import MODULES'` works: skipped (false) with a notice when
/// not, or under `LEDGER_SKIP_INTEROP`; a failure under `LEDGER_REQUIRE_INTEROP`.
pub(crate) fn python_imports(modules: &str, what: &str, install: &str) -> bool {
    if std::env::var_os("LEDGER_SKIP_INTEROP").is_some() {
        eprintln!("LEDGER_SKIP_INTEROP is set: skipping the {what} checks");
        return false;
    }
    let probe = Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .output();
    let ready = probe.as_ref().is_ok_and(|o| o.status.success());
    if !ready {
        let why = match &probe {
            Ok(out) => String::from_utf8_lossy(&out.stderr).into_owned(),
            Err(e) => format!("python3 could not be run: {e}"),
        };
        assert!(
            std::env::var_os("LEDGER_REQUIRE_INTEROP").is_none(),
            "LEDGER_REQUIRE_INTEROP is set but {what} is not usable: run {install}\n{why}"
        );
        eprintln!(
            "no Python {what} ({}); skipping (set LEDGER_REQUIRE_INTEROP=1 to fail instead)",
            why.trim()
        );
    }
    ready
}

fn python(script: &str, args: &[&OsStr]) -> Output {
    Command::new("python3")
        .arg(repo_file(script))
        .args(args)
        .output()
        .expect("python3")
}

/// `tests/interop/sslib_interop.py` with `args`, files relative to `repo`.
fn sslib(repo: &Repo, command: &str, files: &[&str]) -> Output {
    let paths: Vec<PathBuf> = files.iter().map(|f| repo.path().join(f)).collect();
    let mut args: Vec<&OsStr> = vec![OsStr::new(command)];
    args.extend(paths.iter().map(|p| p.as_os_str()));
    python("tests/interop/sslib_interop.py", &args)
}

/// The auditor's verifier on `repo`'s store, with the default places for the
/// policy's signature and root (beside the policy).
pub(crate) fn verify_chain(repo: &Repo) -> Output {
    let store = repo.store();
    let policy = repo.path().join("policy/pipeline-policy.json");
    python(
        "docs/audit/verify_chain.py",
        &[store.as_os_str(), policy.as_os_str(), OsStr::new(SHA)],
    )
}

/// A repository with passing commit evidence for `SHA`: the stage pinned the root of
/// trust and the policy's signature in the store.
fn repo_with_evidence() -> Repo {
    let repo = Repo::new();
    assert_code(
        &repo.ledger(&["stage", "commit", "--sha", SHA, "--", "true"]),
        0,
    );
    repo
}

/// `ledger verify SHA` and `verify_chain.py` agree on `repo`, and the verdict is
/// `verified`. Returns both outputs.
#[track_caller]
fn assert_parity(repo: &Repo, case: &str, verified: bool) -> (String, String) {
    let ledger = repo.ledger(&["verify", SHA]);
    let audit = verify_chain(repo);
    let (l, a) = (ledger.status.code(), audit.status.code());
    let both = format!(
        "{case}:\n=== ledger verify (exit {l:?})\n{}\n=== verify_chain.py (exit {a:?})\n{}",
        text(&ledger),
        text(&audit)
    );
    assert!(
        matches!((l, a), (Some(0), Some(0)) | (Some(4), Some(1))),
        "ledger and the auditor's verifier disagree: {both}"
    );
    assert_eq!(l, Some(if verified { 0 } else { 4 }), "{both}");
    (text(&ledger), text(&audit))
}

fn policy_bytes(repo: &Repo) -> Vec<u8> {
    std::fs::read(repo.path().join("policy/pipeline-policy.json")).unwrap()
}

#[test]
fn securesystemslib_verifies_the_policy_signature_and_root() {
    let repo = Repo::new();
    if !python_ready() {
        return;
    }
    let owner = ".ledger/policy-owner.pub";
    let out = sslib(
        &repo,
        "verify-policy",
        &[
            "policy/pipeline-policy.sig.json",
            "policy/pipeline-policy.json",
            owner,
        ],
    );
    assert_code(&out, 0);
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        printed["sha256"],
        Sha256Digest::of(&policy_bytes(&repo)).to_hex()
    );
    assert_eq!(
        printed["keyids"][0].as_str(),
        Some(repo.key_id(owner).as_str())
    );

    let out = sslib(&repo, "verify-root", &["policy/root.json", owner]);
    assert_code(&out, 0);
    let root: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        root["payload"]["_type"],
        "https://ledger.dev/policy-root/v1"
    );
    assert_eq!(root["payload"]["version"], 1);
    assert_eq!(
        root["payload"]["owners"][0]["keyid"].as_str(),
        Some(repo.key_id(owner).as_str())
    );

    // And it refuses what ledger refuses: another key, the other envelope's type,
    // a policy edited after it was signed.
    let release = ".ledger/release.pub";
    let refused: [(&str, &[&str]); 4] = [
        ("verify-root", &["policy/root.json", release]),
        (
            "verify-policy",
            &[
                "policy/pipeline-policy.sig.json",
                "policy/pipeline-policy.json",
                release,
            ],
        ),
        (
            "verify-policy",
            &["policy/root.json", "policy/pipeline-policy.json", owner],
        ),
        ("verify-root", &["policy/pipeline-policy.sig.json", owner]),
    ];
    for (command, files) in refused {
        let out = sslib(&repo, command, files);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{command} {files:?}: {}",
            text(&out)
        );
    }
    repo.edit_policy_unsigned(|p| p["description"] = "edited after signing".into());
    let out = sslib(
        &repo,
        "verify-policy",
        &[
            "policy/pipeline-policy.sig.json",
            "policy/pipeline-policy.json",
            owner,
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

#[test]
fn a_clean_chain_verifies_in_both() {
    let repo = repo_with_evidence();
    if !python_ready() {
        return;
    }
    let (_, audit) = assert_parity(&repo, "a clean chain", true);
    assert!(audit.contains("1 of 1 artifact(s) verified"), "{audit}");
}

#[test]
fn a_policy_edited_without_signature_is_refused_by_both() {
    let repo = repo_with_evidence();
    if !python_ready() {
        return;
    }
    repo.edit_policy_unsigned(|p| p["description"] = "edited in a pull request".into());
    let (ledger, audit) = assert_parity(&repo, "policy edited, not signed", false);
    assert!(ledger.contains("edited after it was signed"), "{ledger}");
    assert!(audit.contains("edited after it was signed"), "{audit}");
}

#[test]
fn a_stored_policy_signature_by_a_non_owner_is_refused_by_both() {
    let repo = repo_with_evidence();
    if !python_ready() {
        return;
    }
    let policy = policy_bytes(&repo);
    let key = repo.path().join(".ledger/test.key");
    let not_an_owner = SigningKey::from_pem(&std::fs::read_to_string(key).unwrap()).unwrap();
    let mut forged = SignedDocument::new(POLICY_PAYLOAD_TYPE, &policy);
    forged.sign(&not_an_owner);
    let stored = format!("trust/policy/{}.json", Sha256Digest::of(&policy).to_hex());
    assert!(repo.has_object(&stored));
    repo.tamper_object(&stored, forged.to_bytes());
    let (_, audit) = assert_parity(&repo, "stored policy signature by a non-owner", false);
    assert!(audit.contains("REFUSED"), "{audit}");
}

#[test]
fn evidence_gated_by_a_policy_never_signed_fails_in_both() {
    let repo = repo_with_evidence();
    if !python_ready() {
        return;
    }
    // A policy stored under policies/ (its name is its hash) that no owner signed.
    let mut other: serde_json::Value = serde_json::from_slice(&policy_bytes(&repo)).unwrap();
    other["description"] = "never signed".into();
    let bytes = serde_json::to_vec_pretty(&other).unwrap();
    let hex = Sha256Digest::of(&bytes).to_hex();
    repo.tamper_object(&format!("policies/{hex}.json"), bytes);
    let key = repo.record(ArtifactKind::Commit, SHA, |p| {
        p["policy_sha256"] = hex.clone().into();
    });
    let (ledger, audit) = assert_parity(&repo, "evidence under an unsigned policy", false);
    let never = format!(
        "gated by policy {}, which the policy owners never signed",
        &hex[..12]
    );
    assert!(ledger.contains(&never), "{ledger}");
    assert!(audit.contains(&never), "{audit}");
    assert!(audit.contains(&format!("FAIL  {key}")), "{audit}");
    assert!(
        audit.contains(&format!("ok    commit/{SHA}/commit.json")),
        "{audit}"
    );
}

/// Writes root version 2, owned by a new key, into the checkout with `ledger policy
/// rotate`, and signs it with each of `signers`. Returns the new owner's key file.
fn rotate(repo: &Repo, signers: &[&str]) -> &'static str {
    repo.generate_key("new-owner");
    assert_code(
        &repo.ledger(&["policy", "rotate", "--owner", "new-owner.pub"]),
        0,
    );
    for key in signers {
        assert_code(&repo.ledger(&["policy", "sign", "--root", "--key", key]), 0);
    }
    "new-owner.key"
}

#[test]
fn a_stored_root_signed_only_by_its_new_owner_is_refused_by_both() {
    let repo = repo_with_evidence();
    if !python_ready() {
        return;
    }
    let root = repo.path().join("policy/root.json");
    let version_1 = std::fs::read(&root).unwrap();
    rotate(&repo, &["new-owner.key"]);
    // Pinned in the store behind ledger's back; the checkout keeps version 1.
    repo.tamper_object("trust/root/2.json", std::fs::read(&root).unwrap());
    std::fs::write(&root, version_1).unwrap();
    let (_, audit) = assert_parity(
        &repo,
        "stored root version 2 signed by its new owner only",
        false,
    );
    assert!(audit.contains("trust/root/2.json"), "{audit}");
}

#[test]
fn after_a_rotation_evidence_under_the_old_owners_policy_verifies_in_both() {
    let repo = repo_with_evidence();
    if !python_ready() {
        return;
    }
    let new_owner = rotate(&repo, &[".ledger/policy-owner.key", "new-owner.key"]);
    // Root version 2 is complete but the policy is signed by the old owner only.
    assert_parity(&repo, "rotated, policy not signed by the new owner", false);
    // The new owner signs a changed policy; integration runs under it and pins
    // version 2. The commit evidence, gated by the old owner's policy, still counts.
    repo.edit_policy_unsigned(|p| p["description"] = "signed by the new owner".into());
    assert_code(&repo.ledger(&["policy", "sign", "--key", new_owner]), 0);
    assert_code(
        &repo.ledger(&["stage", "integration", "--sha", SHA, "--", "true"]),
        0,
    );
    assert!(repo.has_object("trust/root/2.json"));
    let (_, audit) = assert_parity(&repo, "rotated, new policy signed by the new owner", true);
    assert!(audit.contains("root version 2"), "{audit}");
    assert!(audit.contains("2 of 2 artifact(s) verified"), "{audit}");
}

/// Rewrites the JSON object stored at `key` through `edit`.
fn tamper_json(repo: &Repo, key: &str, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut v: serde_json::Value = serde_json::from_slice(&repo.read_object(key)).unwrap();
    edit(&mut v);
    repo.tamper_object(key, serde_json::to_vec_pretty(&v).unwrap());
    if !key.starts_with("trust/") {
        repo.relog();
    }
}

/// The same base64 text with the unused low bits of its last symbol set: the same
/// bytes to a lenient decoder, refused by ledger's.
fn stray_bits(b64: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let trimmed = b64.trim_end_matches('=');
    assert!(trimmed.len() < b64.len(), "needs padding: {b64}");
    let (head, last) = trimmed.split_at(trimmed.len() - 1);
    let i = ALPHABET
        .iter()
        .position(|&c| c == last.as_bytes()[0])
        .unwrap();
    let padding = &b64[trimmed.len()..];
    format!("{head}{}{padding}", ALPHABET[i ^ 1] as char)
}

/// Envelopes are read alike, evidence and trust objects: securesystemslib's own
/// reading differs from ledger's in each of these, so the verifier checks each
/// signature itself (see its docstring).
#[test]
fn envelopes_are_read_alike_by_both() {
    let repo = Repo::new();
    let extra = repo.generate_key("extra");
    repo.trust_key("extra", &extra, &["commit"]);
    assert_code(
        &repo.ledger(&["stage", "commit", "--sha", SHA, "--", "true"]),
        0,
    );
    if !python_ready() {
        return;
    }
    let commit = format!("commit/{SHA}/commit.json");
    let original = repo.read_object(&commit);
    // The same valid signature twice: refused, as securesystemslib's
    // Envelope.from_dict refuses it ("Multiple signatures found for keyid").
    tamper_json(&repo, &commit, |e| {
        let first = e["signatures"][0].clone();
        e["signatures"].as_array_mut().unwrap().push(first);
    });
    assert_parity(&repo, "a signature given twice", false);
    // A URL-safe base64 signature (DSSE allows either alphabet): accepted by both.
    repo.tamper_object(&commit, original.clone());
    repo.relog();
    tamper_json(&repo, &commit, |e| {
        let sig = e["signatures"][0]["sig"]
            .as_str()
            .unwrap()
            .replace('+', "-")
            .replace('/', "_");
        e["signatures"][0]["sig"] = sig.into();
    });
    assert_parity(&repo, "a URL-safe signature", true);
    // A signature claiming another trusted key that does not verify: tampering
    // (Envelope.verify skips it and counts the good one).
    repo.tamper_object(&commit, original.clone());
    repo.relog();
    tamper_json(&repo, &commit, |e| {
        let forged = serde_json::json!({"keyid": extra, "sig": "A".repeat(86) + "=="});
        e["signatures"].as_array_mut().unwrap().push(forged);
    });
    assert_parity(&repo, "a bad signature by a trusted key", false);
    // Non-canonical base64 of a good signature (a lenient decoder reads the same bytes).
    repo.tamper_object(&commit, original.clone());
    repo.relog();
    tamper_json(&repo, &commit, |e| {
        e["signatures"][0]["sig"] = stray_bits(e["signatures"][0]["sig"].as_str().unwrap()).into();
    });
    assert_parity(&repo, "evidence signature in non-canonical base64", false);
    repo.tamper_object(&commit, original);
    repo.relog();
    assert_parity(&repo, "restored", true);
    // The same in a trust object: the stored root.
    tamper_json(&repo, "trust/root/1.json", |e| {
        e["signatures"][0]["sig"] = stray_bits(e["signatures"][0]["sig"].as_str().unwrap()).into();
    });
    assert_parity(&repo, "root signature in non-canonical base64", false);
}

/// A root version stored under a name it does not own (`01.json` for version 1):
/// both verifiers read roots only under their canonical names, so the rename is
/// tampering, not version 1.
#[test]
fn a_root_version_under_a_non_canonical_name_is_refused_by_both() {
    let repo = repo_with_evidence();
    if !python_ready() {
        return;
    }
    let bytes = repo.read_object("trust/root/1.json");
    repo.tamper_object("trust/root/01.json", bytes);
    repo.delete_object("trust/root/1.json");
    let (ledger, audit) = assert_parity(&repo, "root version 1 stored as 01.json", false);
    assert!(ledger.contains("trust/root/01.json"), "{ledger}");
    assert!(audit.contains("trust/root/01.json"), "{audit}");
}
