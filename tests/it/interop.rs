//! Interop both ways with Python securesystemslib, the reference implementation of
//! DSSE and key ids: envelopes ledger writes verify there, envelopes it signs verify
//! here, and both compute the same key id. `bash .ci/run` installs securesystemslib;
//! set `LEDGER_SKIP_INTEROP=1` to skip on a machine without Python.

use crate::{assert_code, text, Repo, SHA};
use std::path::{Path, PathBuf};
use std::process::Command;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/sslib_interop.py")
}

/// Runs the script; `None` when interop is skipped on purpose.
fn sslib(args: &[&Path]) -> Option<std::process::Output> {
    if std::env::var_os("LEDGER_SKIP_INTEROP").is_some() {
        eprintln!("LEDGER_SKIP_INTEROP is set: skipping securesystemslib interop");
        return None;
    }
    let out = Command::new("python3")
        .arg(script())
        .args(args)
        .output()
        .expect(
        "python3 is needed for the interop tests: run `bash .ci/run`, or set LEDGER_SKIP_INTEROP=1",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("ModuleNotFoundError"),
        "securesystemslib is not installed: run `bash .ci/run` or `pip install 'securesystemslib[crypto]'`\n{stderr}"
    );
    Some(out)
}

#[test]
fn key_ids_agree() {
    let repo = Repo::new();
    let public = repo.path().join(".ledger/test.pub");
    let Some(out) = sslib(&[Path::new("keyid"), &public]) else {
        return;
    };
    assert!(out.status.success(), "{}", text(&out));
    let ours = repo.ledger(&["keys", "id", ".ledger/test.pub"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        String::from_utf8_lossy(&ours.stdout).trim()
    );
}

#[test]
fn ledger_envelopes_verify_with_securesystemslib() {
    let repo = Repo::new();
    assert_code(
        &repo.ledger(&["stage", "commit", "--sha", SHA, "--", "true"]),
        0,
    );
    let envelope = repo.object(&format!("commit/{SHA}/commit.json"));
    let public = repo.path().join(".ledger/test.pub");
    let Some(out) = sslib(&[Path::new("verify"), &envelope, &public]) else {
        return;
    };
    assert!(out.status.success(), "{}", text(&out));
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        printed["payload"]["_type"],
        "https://in-toto.io/Statement/v1"
    );
    assert_eq!(printed["payload"]["subject"][0]["digest"]["gitCommit"], SHA);

    // securesystemslib refuses a tampered ledger envelope too.
    let mut env: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&envelope).unwrap()).unwrap();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut payload = b64.decode(env["payload"].as_str().unwrap()).unwrap();
    let last = payload.len() - 2;
    payload[last] ^= 1;
    env["payload"] = b64.encode(payload).into();
    let tampered = repo.path().join("tampered.json");
    std::fs::write(&tampered, serde_json::to_vec(&env).unwrap()).unwrap();
    let out = sslib(&[Path::new("verify"), &tampered, &public]).unwrap();
    assert!(
        !out.status.success(),
        "securesystemslib accepted a tampered envelope"
    );
}

#[test]
fn securesystemslib_envelopes_verify_with_ledger() {
    let repo = Repo::new();
    // ledger writes real evidence, then securesystemslib re-signs the same statement
    // with the same key; the re-signed envelope must verify in ledger.
    assert_code(
        &repo.ledger(&["stage", "commit", "--sha", SHA, "--", "true"]),
        0,
    );
    let envelope_path = repo.object(&format!("commit/{SHA}/commit.json"));
    let env: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&envelope_path).unwrap()).unwrap();
    use base64::Engine as _;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(env["payload"].as_str().unwrap())
        .unwrap();
    let payload_path = repo.path().join("payload.json");
    std::fs::write(&payload_path, &payload).unwrap();
    let signed = repo.path().join("sslib-envelope.json");
    let key = repo.path().join(".ledger/test.key");
    let Some(out) = sslib(&[Path::new("sign"), &key, &payload_path, &signed]) else {
        return;
    };
    assert!(out.status.success(), "{}", text(&out));
    // Put the securesystemslib envelope in place of ledger's (the store is write-once
    // through ledger; an auditor's copy is just files).
    // Its log, which named ledger's envelope, is started afresh over the copy.
    std::fs::remove_file(&envelope_path).unwrap();
    std::fs::copy(&signed, &envelope_path).unwrap();
    std::fs::remove_dir_all(repo.store().join("log")).unwrap();
    std::fs::remove_dir_all(repo.store().join("checkpoints")).unwrap();
    assert_code(&repo.ledger(&["checkpoint", "--genesis"]), 0);
    let out = repo.ledger(&["verify", SHA]);
    assert_code(&out, 0);
}

/// Runs the auditor's verifier from `docs/audit/verify_chain.py` on `repo`'s store;
/// `None` when interop is skipped on purpose.
pub fn audit_chain(repo: &Repo, sha: &str) -> Option<std::process::Output> {
    if std::env::var_os("LEDGER_SKIP_INTEROP").is_some() {
        return None;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/audit/verify_chain.py");
    Some(
        Command::new("python3")
            .arg(script)
            .arg(repo.store())
            .arg(repo.path().join("policy/pipeline-policy.json"))
            .arg(sha)
            .output()
            .expect("python3"),
    )
}

/// `ledger verify` and the auditor's verifier both refuse `SHA`'s chain, the latter
/// naming the envelope at `commit`; `what` says which tampering, in messages.
fn assert_both_refuse(repo: &Repo, commit: &str, what: &str) {
    assert_code(&repo.ledger(&["verify", SHA]), 4);
    let out = audit_chain(repo, SHA).unwrap();
    assert_eq!(out.status.code(), Some(1), "{what}: {}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("FAIL  {commit}")),
        "{what}: {}",
        text(&out)
    );
}

#[test]
fn the_auditors_independent_verifier_agrees_with_ledger() {
    let repo = Repo::new();
    assert_code(
        &repo.ledger(&["stage", "commit", "--sha", SHA, "--", "true"]),
        0,
    );
    assert_code(
        &repo.ledger(&["stage", "integration", "--sha", SHA, "--", "true"]),
        0,
    );
    let Some(out) = audit_chain(&repo, SHA) else {
        return;
    };
    assert_code(&out, 0);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("2 of 2 artifact(s) verified"),
        "{}",
        text(&out)
    );

    // Each tampering ledger refuses, the independent verifier refuses too.
    let other = "f".repeat(40);
    repo.record(ledger_core::ArtifactKind::Commit, &other, |_| {});
    let commit = format!("commit/{SHA}/commit.json");
    let original = repo.read_object(&commit);
    // Single bytes flipped across the envelope (braces, keys, base64 of the payload
    // and of the signature): both refuse every one, and neither crashes on it.
    let step = (original.len() / 12).max(1);
    for i in (1..original.len() - 1).step_by(step) {
        let mut b = original.clone();
        b[i] ^= 0x01;
        repo.tamper_object(&commit, b);
        assert_both_refuse(&repo, &commit, &format!("byte {i}"));
    }
    type Tamper<'a> = Box<dyn Fn() + 'a>;
    let tamperings: Vec<(&str, Tamper)> = vec![
        (
            "a byte of the payload flipped",
            Box::new(|| {
                let mut b = original.clone();
                let i = b.len() / 2;
                b[i] ^= 1;
                repo.tamper_object(&commit, b);
            }),
        ),
        (
            "another commit's envelope copied in",
            Box::new(|| {
                repo.tamper_object(
                    &commit,
                    repo.read_object(&format!("commit/{other}/commit.json")),
                );
            }),
        ),
        (
            "the captured log altered",
            Box::new(|| {
                repo.tamper_object(&commit, original.clone());
                repo.tamper_object(&format!("commit/{SHA}/commit.log"), b"edited\n".to_vec());
            }),
        ),
    ];
    for (what, tamper) in tamperings {
        tamper();
        assert_both_refuse(&repo, &commit, what);
    }
}
