//! Tampering with stored evidence must make `ledger verify` fail (exit 4): every byte
//! of an envelope, the captured log, the stored policy, truncation and oversize.

use crate::{assert_code, text, Repo, SHA};

fn repo_with_evidence() -> Repo {
    let repo = Repo::new();
    assert_code(
        &repo.ledger(&[
            "stage",
            "commit",
            "--sha",
            SHA,
            "--",
            "sh",
            "-c",
            "echo 1 passed, 0 failed",
        ]),
        0,
    );
    assert_code(&repo.ledger(&["verify", SHA]), 0);
    repo
}

fn envelope_path(repo: &Repo) -> std::path::PathBuf {
    repo.object(&format!("commit/{SHA}/commit.json"))
}

#[test]
fn flipping_any_byte_of_an_envelope_fails_verification() {
    let repo = repo_with_evidence();
    let path = envelope_path(&repo);
    let original = std::fs::read(&path).unwrap();
    let verifier = repo.in_process();
    // Every position, every bit: the library verifier, in process.
    for i in 0..original.len() {
        for bit in [0x01u8, 0x80] {
            let mut bytes = original.clone();
            bytes[i] ^= bit;
            std::fs::write(&path, &bytes).unwrap();
            let ok = verifier.chain_ok(SHA);
            assert!(
                !ok,
                "flipping bit {bit:#x} of byte {i} ({:?}) went unnoticed",
                original[i] as char
            );
        }
    }
    // A sample through the real binary: exit code 4.
    for i in (0..original.len()).step_by(original.len() / 12 + 1) {
        let mut bytes = original.clone();
        bytes[i] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        assert_code(&repo.ledger(&["verify", SHA]), 4);
    }
    std::fs::write(&path, &original).unwrap();
    assert_code(&repo.ledger(&["verify", SHA]), 0);
}

#[test]
fn truncated_and_oversized_envelopes_fail() {
    let repo = repo_with_evidence();
    let path = envelope_path(&repo);
    let original = std::fs::read(&path).unwrap();
    std::fs::write(&path, &original[..original.len() / 2]).unwrap();
    let out = repo.ledger(&["verify", SHA]);
    assert_code(&out, 4);
    assert!(text(&out).contains("not valid DSSE JSON"), "{}", text(&out));
    std::fs::write(&path, vec![b' '; ledger_core::MAX_JSON_BYTES + 1]).unwrap();
    let out = repo.ledger(&["verify", SHA]);
    assert_code(&out, 4);
    assert!(text(&out).contains("limit"), "{}", text(&out));
}

#[test]
fn an_altered_log_fails() {
    let repo = repo_with_evidence();
    let log = repo.object(&format!("commit/{SHA}/commit.log"));
    std::fs::write(&log, b"1 passed, 0 failed\nand something added later\n").unwrap();
    let out = repo.ledger(&["verify", SHA]);
    assert_code(&out, 4);
    assert!(text(&out).contains("captured output"), "{}", text(&out));
}

#[test]
fn an_altered_stored_policy_fails() {
    let repo = repo_with_evidence();
    let stored = repo.stored();
    let policy = stored.iter().find(|f| f.starts_with("policies/")).unwrap();
    let path = repo.object(policy);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(b" ");
    std::fs::write(&path, bytes).unwrap();
    repo.assert_verify_fails_with("altered after the fact");
}

#[test]
fn an_envelope_of_another_sha_copied_into_place_fails() {
    let repo = repo_with_evidence();
    let other = "f".repeat(40);
    assert_code(
        &repo.ledger(&["stage", "commit", "--sha", &other, "--", "true"]),
        0,
    );
    let from = repo.object(&format!("commit/{other}/commit.json"));
    std::fs::copy(from, envelope_path(&repo)).unwrap();
    let out = repo.ledger(&["verify", SHA]);
    assert_code(&out, 4);
    assert!(
        text(&out).contains("another git commit") || text(&out).contains("no subject names"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_stray_object_among_the_evidence_fails() {
    let repo = repo_with_evidence();
    std::fs::write(repo.object(&format!("commit/{SHA}/extra.json")), b"{}").unwrap();
    let out = repo.ledger(&["verify", SHA]);
    assert_code(&out, 4);
    assert!(text(&out).contains("not ledger evidence"), "{}", text(&out));
}

#[test]
fn deploy_evidence_of_one_environment_cannot_stand_for_another() {
    let repo = Repo::new();
    // A canary deployment stored under production's key: signed, schema-valid, and
    // still refused, since the key says which environment it is evidence of.
    let key = repo.record(ledger_core::ArtifactKind::Deployment, SHA, |p| {
        p["environment"] = "canary".into();
    });
    let out = repo.ledger(&["verify", SHA]);
    assert_code(&out, 4);
    assert!(
        text(&out).contains(
            "predicate environment is `canary`, but it is stored as evidence of `production`"
        ),
        "{key}: {}",
        text(&out)
    );
}

/// Signed evidence whose `result` contradicts its own fields is refused by `verify`
/// (exit 4, naming the contradiction) and by the next gate (exit 3): a key holder
/// cannot turn a command that exited 1, a failed smoke check or a recorded deploy
/// failure into a pass by editing one word.
#[test]
fn a_result_that_contradicts_its_own_fields_does_not_verify() {
    use ledger_core::ArtifactKind;
    type Edit = fn(&mut serde_json::Value);
    let cases: [(ArtifactKind, &str, Edit); 6] = [
        (
            ArtifactKind::Commit,
            "its command exited with code 1",
            |p| {
                p["command"]["exit_code"] = 1.into();
            },
        ),
        (
            ArtifactKind::Commit,
            "its command was ended by a signal",
            |p| {
                p["command"]["exit_code"] = serde_json::Value::Null;
            },
        ),
        (ArtifactKind::Smoke, "1 of its 2 check(s) failed", |p| {
            p["checks"][1]["ok"] = false.into();
        }),
        (ArtifactKind::Smoke, "it ran no checks", |p| {
            p["checks"] = serde_json::json!([]);
        }),
        (ArtifactKind::Build, "it records a build failure", |p| {
            p["failure"] = serde_json::json!({"image": "api", "message": "push refused"});
        }),
        (
            ArtifactKind::Deployment,
            "it records a deploy failure",
            |p| {
                p["failure"] = serde_json::json!({"message": "unhealthy", "restored": true});
            },
        ),
    ];
    for (kind, why, edit) in cases {
        let repo = Repo::new();
        let key = repo.record(kind, SHA, edit);
        let out = repo.ledger(&["verify", SHA]);
        assert_code(&out, 4);
        let shown = text(&out);
        assert!(
            shown.contains(&format!("predicate result is `pass`, but {why}")),
            "{key}: {shown}"
        );
        // The auditor's independent verifier reaches the same verdict.
        if let Some(audit) = crate::interop::audit_chain(&repo, SHA) {
            assert_eq!(audit.status.code(), Some(1), "{key}: {}", text(&audit));
            assert!(
                text(&audit).contains("but its own fields make it 'fail'"),
                "{key}: {}",
                text(&audit)
            );
        }
    }
    // The next gate refuses it too: integration needs commit.
    let repo = Repo::new();
    repo.record(ArtifactKind::Commit, SHA, |p| {
        p["command"]["exit_code"] = 1.into();
    });
    let out = repo.ledger(&["gate", "integration", "--sha", SHA]);
    assert_code(&out, 3);
    assert!(text(&out).contains("exited with code 1"), "{}", text(&out));
}
