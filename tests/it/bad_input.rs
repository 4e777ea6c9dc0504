//! Bad input for every command: a clear message, the documented exit code, no panic,
//! and nothing written to the store.

use crate::{assert_code, stderr_of, text, Repo, SHA};

fn assert_clean_refusal(repo: &Repo, out: &std::process::Output, code: i32, needle: &str) {
    assert_code(out, code);
    let shown = text(out);
    assert!(shown.contains(needle), "expected {needle:?} in\n{shown}");
    assert!(!shown.contains("panicked"), "{shown}");
    let evidence: Vec<String> = repo
        .stored()
        .into_iter()
        .filter(|f| {
            !["policies/", "trust/", "log/", "checkpoints/"]
                .iter()
                .any(|p| f.starts_with(p))
        })
        .collect();
    assert!(evidence.is_empty(), "nothing may be written: {evidence:?}");
}

#[test]
fn malformed_shas() {
    let repo = Repo::new();
    for (sha, why) in [
        ("abc", "40 characters"),
        (&SHA[..39], "40 characters"),
        (&SHA.to_uppercase(), "lowercase"),
        (
            "../../../../../../../../../../../../etc/passwd",
            "40 characters",
        ),
        ("0123456789abcdef0123456789abcdef0123456z", "hex digits"),
    ] {
        let out = repo.ledger(&["stage", "commit", "--sha", sha, "--", "true"]);
        assert_clean_refusal(&repo, &out, 2, why);
        let out = repo.ledger(&["verify", sha]);
        assert_clean_refusal(&repo, &out, 2, "neither a full commit SHA nor a revision");
    }
}

#[test]
fn unknown_stage() {
    let repo = Repo::new();
    let out = repo.ledger(&["stage", "deploy2", "--sha", SHA, "--", "true"]);
    assert_clean_refusal(&repo, &out, 2, "invalid value 'deploy2'");
    // A typo gets the nearest stage and the list of every stage.
    let shown = text(&out);
    assert!(
        shown.contains("a similar value exists: 'deploy'"),
        "{shown}"
    );
    assert!(
        shown.contains("commit, integration, build, publish, deploy, smoke, decide"),
        "{shown}"
    );
}

#[test]
fn a_read_command_never_creates_a_mistyped_store() {
    let repo = Repo::new();
    let typo = repo.path().join(".artifcats");
    for args in [
        &["verify", SHA][..],
        &["show", SHA],
        &["log"],
        &["status"],
        &["report", SHA],
    ] {
        let mut with_store = args.to_vec();
        with_store.extend(["--store", typo.to_str().unwrap()]);
        let out = repo.ledger(&with_store);
        assert_clean_refusal(&repo, &out, 2, "no evidence store at");
        assert!(text(&out).contains("typo"), "{}", text(&out));
        assert!(!typo.exists(), "{args:?} created the mistyped store");
    }
}

#[test]
fn a_command_that_cannot_start_says_why() {
    let repo = Repo::new();
    // The whole command line quoted as one word.
    let out = repo.ledger(&["stage", "commit", "--sha", SHA, "--", "true --quiet"]);
    assert_clean_refusal(&repo, &out, 2, "given as one word");
    assert!(
        text(&out).contains("sh -c 'true --quiet'"),
        "{}",
        text(&out)
    );
    // A script with no `#!` line, and one that is not executable.
    let script = repo.path().join("checks.sh");
    std::fs::write(&script, "echo checked\n").unwrap();
    let out = repo.ledger(&["stage", "commit", "--sha", SHA, "--", "./checks.sh"]);
    assert_clean_refusal(&repo, &out, 2, "not executable");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    for isolation in [&[][..], &["--no-isolation"]] {
        let mut args = vec!["stage", "commit", "--sha", SHA];
        args.extend(isolation);
        args.extend(["--", "./checks.sh"]);
        let out = repo.ledger(&args);
        assert_clean_refusal(&repo, &out, 2, "`#!` line");
    }
    // A program that does not exist.
    let out = repo.ledger(&["stage", "commit", "--sha", SHA, "--", "no-such-tool-here"]);
    assert_clean_refusal(&repo, &out, 2, "installed and on PATH");
}

#[test]
fn init_outside_a_git_repository_is_refused_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ledger"))
        .arg("init")
        .current_dir(dir.path())
        .env_remove("LEDGER_STORE")
        .env_remove("LEDGER_POLICY")
        .output()
        .unwrap();
    assert_code(&out, 2);
    assert!(
        text(&out).contains("not in a git repository"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("git init"), "{}", text(&out));
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "init wrote {left:?}");
}

#[test]
fn no_command_to_wrap() {
    let repo = Repo::new();
    let out = repo.ledger(&["stage", "commit", "--sha", SHA]);
    assert_clean_refusal(&repo, &out, 2, "none was given");
}

#[test]
fn a_command_that_cannot_start() {
    let repo = Repo::new();
    let out = repo.ledger(&["stage", "commit", "--sha", SHA, "--", "no-such-program-xyz"]);
    assert_clean_refusal(&repo, &out, 2, "could not start `no-such-program-xyz`");
}

#[test]
fn missing_and_broken_keys() {
    let repo = Repo::new();
    std::fs::remove_file(repo.path().join(".ledger/test.key")).unwrap();
    let out = repo.ledger(&["stage", "commit", "--sha", SHA, "--", "true"]);
    assert_clean_refusal(&repo, &out, 2, "no signing key");
    insta::assert_snapshot!("missing_key", stderr_of(&out, &repo));

    std::fs::write(
        repo.path().join("broken.pem"),
        "-----BEGIN PRIVATE KEY-----\nnot base64!\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let out = repo.ledger(&[
        "stage",
        "commit",
        "--sha",
        SHA,
        "--key",
        "broken.pem",
        "--",
        "true",
    ]);
    assert_clean_refusal(&repo, &out, 2, "not a PKCS#8 PEM Ed25519 private key");

    let out = repo.ledger_env(
        &["stage", "commit", "--sha", SHA, "--", "true"],
        &[(
            "LEDGER_SIGNING_KEY",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )],
    );
    assert_clean_refusal(&repo, &out, 2, "$LEDGER_SIGNING_KEY");
}

/// A refused store URL or key value is named, never echoed with what it holds: a
/// secret pasted into the wrong place must not reach a CI log.
#[test]
fn refusals_never_echo_credentials_or_key_material() {
    let repo = Repo::new();
    for store in [
        "s3://AKIAEXAMPLE:supersecret@bucket/prefix",
        "s3://bucket/prefix?secret_access_key=supersecret",
        "me:supersecret@s3://bucket",
    ] {
        let out = repo.ledger(&["--store", store, "verify", "--all"]);
        assert_code(&out, 2);
        assert!(
            !text(&out).contains("supersecret"),
            "{store}: {}",
            text(&out)
        );
    }
    let out = repo.ledger_env(
        &["stage", "commit", "--sha", SHA, "--", "true"],
        &[("LEDGER_SIGNING_KEY", "not-pem-supersecret-value")],
    );
    assert_clean_refusal(&repo, &out, 2, "its value is not shown");
    assert!(!text(&out).contains("supersecret"), "{}", text(&out));
}

#[test]
fn a_key_the_policy_does_not_trust() {
    let repo = Repo::new();
    assert_code(
        &repo.ledger(&[
            "keys",
            "generate",
            "--private-key",
            "other.pem",
            "--public-key",
            "other.pub",
        ]),
        0,
    );
    let out = repo.ledger(&[
        "stage",
        "commit",
        "--sha",
        SHA,
        "--key",
        "other.pem",
        "--",
        "true",
    ]);
    assert_clean_refusal(
        &repo,
        &out,
        2,
        "is not trusted by the policy to sign stage `commit`",
    );
}

#[test]
fn broken_policies() {
    let repo = Repo::new();
    let path = repo.path().join("policy/pipeline-policy.json");
    let good = std::fs::read_to_string(&path).unwrap();
    let cases = [
        ("{ not json", "not valid JSON"),
        (&good[..good.len() / 2], "not valid JSON"),
        ("{\"version\": 1, \"keys\": []}", "/keys"),
        (
            &good.replace("\"version\": 1", "\"version\": 2"),
            "/version",
        ),
        (&good.replacen("\"commit\"", "\"comit\"", 1), "comit"),
    ];
    for (text_, needle) in cases {
        std::fs::write(&path, text_).unwrap();
        let out = repo.ledger(&["stage", "commit", "--sha", SHA, "--", "true"]);
        assert_clean_refusal(&repo, &out, 2, needle);
    }
    std::fs::write(&path, vec![b' '; ledger_core::MAX_JSON_BYTES + 10]).unwrap();
    let out = repo.ledger(&["stage", "commit", "--sha", SHA, "--", "true"]);
    assert_clean_refusal(&repo, &out, 2, "over the");
    std::fs::remove_file(&path).unwrap();
    let out = repo.ledger(&["verify", SHA]);
    assert_clean_refusal(&repo, &out, 2, "ledger init");
}

#[test]
fn a_policy_whose_key_id_is_wrong() {
    let repo = Repo::new();
    repo.edit_policy_unsigned(|p| p["keys"][0]["keyid"] = "0".repeat(64).into());
    let out = repo.ledger(&["verify", SHA]);
    assert_clean_refusal(&repo, &out, 2, "/keys/0/keyid");
}

#[test]
fn unsupported_store_urls() {
    let repo = Repo::new();
    let out = repo.ledger(&[
        "--store",
        "ftp://example/x",
        "stage",
        "commit",
        "--sha",
        SHA,
        "--",
        "true",
    ]);
    assert_clean_refusal(&repo, &out, 2, "ftp://");
}

#[test]
fn verify_with_no_evidence_fails() {
    let repo = Repo::new();
    let out = repo.ledger(&["verify", SHA]);
    assert_code(&out, 4);
    assert!(text(&out).contains("no evidence stored"), "{}", text(&out));
}

#[test]
fn a_reader_that_goes_away_ends_ledger_quietly() {
    let repo = Repo::new();
    repo.record(ledger_core::ArtifactKind::Commit, SHA, |_| {});
    let mut child = repo
        .command(&["show", SHA])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // `| head -0`: the pipe closes before anything is read
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
