//! The foundation loop: init, keys, wrapped commit/integration stages, verify.

use crate::{assert_code, text, Backend, Repo, SHA};

#[test]
fn init_sets_up_a_repository_and_refuses_to_run_twice() {
    let repo = Repo::new();
    let key = repo.path().join(".ledger/test.key");
    #[cfg(unix)]
    for private in ["test", "release", "policy-owner"] {
        use std::os::unix::fs::PermissionsExt;
        let path = repo.path().join(format!(".ledger/{private}.key"));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{private}");
    }
    let policy = std::fs::read_to_string(repo.path().join("policy/pipeline-policy.json")).unwrap();
    assert!(policy.contains("\"stages\""));
    let gitignore = std::fs::read_to_string(repo.path().join(".gitignore")).unwrap();
    assert!(gitignore.contains(".artifacts/") && gitignore.contains(".ledger/"));

    let before = std::fs::read(&key).unwrap();
    let out = repo.ledger(&["init"]);
    assert_code(&out, 2);
    assert!(text(&out).contains("already exists"), "{}", text(&out));
    assert_eq!(
        std::fs::read(&key).unwrap(),
        before,
        "init must not overwrite the key"
    );
}

#[test]
fn init_keeps_an_existing_gitignore() {
    let repo = Repo::bare();
    std::fs::write(repo.path().join(".gitignore"), "target\n.ledger/\n").unwrap();
    assert_code(&repo.ledger(&["init"]), 0);
    let gitignore = std::fs::read_to_string(repo.path().join(".gitignore")).unwrap();
    assert!(gitignore.starts_with("target\n.ledger/\n"), "{gitignore}");
    assert_eq!(gitignore.matches(".ledger/").count(), 1, "{gitignore}");
    assert!(gitignore.contains(".artifacts/"));
}

#[test]
fn keys_generate_and_id() {
    let repo = Repo::bare();
    let out = repo.ledger(&[
        "keys",
        "generate",
        "--private-key",
        "k.pem",
        "--public-key",
        "k.pub",
    ]);
    assert_code(&out, 0);
    let id_pub = repo.ledger(&["keys", "id", "k.pub"]);
    let id_priv = repo.ledger(&["keys", "id", "k.pem"]);
    assert_code(&id_pub, 0);
    assert_eq!(id_pub.stdout, id_priv.stdout);
    assert_eq!(String::from_utf8_lossy(&id_pub.stdout).trim().len(), 64);
    // The private key is in the PKCS#8 form other tools read.
    if let Ok(out) = std::process::Command::new("openssl")
        .args(["pkey", "-noout", "-in"])
        .arg(repo.path().join("k.pem"))
        .output()
    {
        assert!(
            out.status.success(),
            "openssl cannot read the key: {}",
            text(&out)
        );
    }
    // Refuses to overwrite.
    let again = repo.ledger(&[
        "keys",
        "generate",
        "--private-key",
        "k.pem",
        "--public-key",
        "other.pub",
    ]);
    assert_code(&again, 2);
    assert!(!repo.path().join("other.pub").exists());
}

#[test]
fn an_openssl_key_signs_evidence_that_verifies() {
    let repo = Repo::new();
    let key = repo.path().join("openssl.pem");
    let status = std::process::Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(&key)
        .status();
    let Ok(status) = status else {
        eprintln!("openssl not installed; skipping");
        return;
    };
    assert!(status.success());
    // Trust the openssl key in place of the generated one.
    let pubkey = std::process::Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&key)
        .output()
        .unwrap();
    std::fs::write(repo.path().join("openssl.pub"), &pubkey.stdout).unwrap();
    let id = repo.ledger(&["keys", "id", "openssl.pub"]);
    assert_code(&id, 0);
    let id = String::from_utf8_lossy(&id.stdout).trim().to_owned();
    let policy_path = repo.path().join("policy/pipeline-policy.json");
    let mut policy: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&policy_path).unwrap()).unwrap();
    policy["keys"][0]["keyid"] = id.clone().into();
    policy["keys"][0]["public_key"] = String::from_utf8_lossy(&pubkey.stdout).into_owned().into();
    std::fs::write(&policy_path, serde_json::to_vec_pretty(&policy).unwrap()).unwrap();
    assert_code(&repo.ledger(&["policy", "sign"]), 0);

    let out = repo.ledger(&[
        "stage",
        "commit",
        "--sha",
        SHA,
        "--key",
        "openssl.pem",
        "--",
        "true",
    ]);
    assert_code(&out, 0);
    let out = repo.ledger(&["verify", SHA]);
    assert_code(&out, 0);
    assert!(text(&out).contains(&id[..12]), "{}", text(&out));
}

fn commit_pass_fail_and_verify(backend: Backend) {
    let repo = Repo::on(&backend);
    assert_code(
        &repo.ledger(&["stage", "commit", "--sha", SHA, "--", "true"]),
        0,
    );
    let out = repo.ledger(&["stage", "commit", "--sha", SHA, "--", "false"]);
    assert_code(&out, 1);
    let second = repo.read_object(&format!("commit/{SHA}/commit.attempt-2.json"));
    let envelope: serde_json::Value = serde_json::from_slice(&second).unwrap();
    use base64::Engine as _;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(envelope["payload"].as_str().unwrap())
        .unwrap();
    let statement: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(statement["predicate"]["result"], "fail");
    assert_eq!(statement["predicate"]["attempt"], 2);
    assert_eq!(statement["predicate"]["command"]["exit_code"], 1);
    assert_eq!(statement["subject"][0]["digest"]["gitCommit"], SHA);

    let out = repo.ledger(&["verify", SHA]);
    assert_code(&out, 0);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("verified: 2 artifact(s)"), "{stdout}");

    let out = repo.ledger(&["verify", SHA, "--json"]);
    assert_code(&out, 0);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], true);
    assert_eq!(report["artifacts"].as_array().unwrap().len(), 2);
}

#[test]
fn output_is_captured_redacted_and_hashed() {
    let repo = Repo::new();
    let out = repo.ledger_env(
        &["stage", "commit", "--sha", SHA, "--redact-env", "MY_VALUE", "--", "sh", "-c",
          "echo visible; echo \"db $DB_PASSWORD\"; echo \"v $MY_VALUE\"; echo 4 passed, 1 failed >&2"],
        &[("DB_PASSWORD", "hunter2hunter2"), ("MY_VALUE", "my-custom-value")],
    );
    assert_code(&out, 0);
    let shown = text(&out);
    assert!(shown.contains("visible"), "output is streamed: {shown}");
    assert!(
        !shown.contains("hunter2hunter2") && !shown.contains("my-custom-value"),
        "{shown}"
    );
    let log = std::fs::read_to_string(repo.object(&format!("commit/{SHA}/commit.log"))).unwrap();
    assert!(
        log.contains("visible") && log.contains("db ***") && log.contains("v ***"),
        "{log}"
    );
    for f in repo.stored() {
        let bytes = std::fs::read(repo.object(&f)).unwrap();
        let s = String::from_utf8_lossy(&bytes);
        assert!(
            !s.contains("hunter2hunter2") && !s.contains("my-custom-value"),
            "{f}"
        );
    }
}

#[test]
fn the_signing_key_from_the_environment_is_never_stored_or_printed() {
    let repo = Repo::new();
    let pem = std::fs::read_to_string(repo.path().join(".ledger/test.key")).unwrap();
    std::fs::remove_file(repo.path().join(".ledger/test.key")).unwrap();
    let out = repo.ledger_env(
        &[
            "stage",
            "commit",
            "--sha",
            SHA,
            "--",
            "sh",
            "-c",
            "env; echo done",
        ],
        &[("LEDGER_SIGNING_KEY", &pem)],
    );
    assert_code(&out, 0);
    let body: Vec<&str> = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let shown = text(&out);
    for f in repo.stored() {
        let s = String::from_utf8_lossy(&std::fs::read(repo.object(&f)).unwrap()).into_owned();
        for line in &body {
            assert!(!s.contains(line), "key material in {f}");
            assert!(!shown.contains(line), "key material printed");
        }
    }
    assert_code(&repo.ledger(&["verify", SHA]), 0);
}

#[test]
fn a_store_elsewhere_is_used_when_asked() {
    let repo = Repo::new();
    let other = repo.path().join("elsewhere");
    let other_s = other.display().to_string();
    assert_code(
        &repo.ledger(&[
            "--store", &other_s, "stage", "commit", "--sha", SHA, "--", "true",
        ]),
        0,
    );
    assert!(other.join(format!("commit/{SHA}/commit.json")).exists());
    assert!(!repo.store().join("commit").exists());
    assert_code(
        &repo.ledger_env(&["verify", SHA], &[("LEDGER_STORE", &other_s)]),
        0,
    );
}

on_both_backends!(commit_pass_fail_and_verify);

/// `LEDGER_COUNT_REQUESTS=FILE` appends one line per process with its store requests
/// (what `cargo xtask bench` reads): a stage writes (its envelope, log, log entry and
/// checkpoint at least) and a read command only reads.
#[test]
fn each_process_reports_its_store_requests_when_asked() {
    #[derive(serde::Deserialize)]
    struct Requests {
        get: u64,
        put: u64,
        list: u64,
    }
    let repo = Repo::new();
    let file = repo.path().join("requests.jsonl");
    let file_s = file.to_str().unwrap();
    let env = [("LEDGER_COUNT_REQUESTS", file_s)];
    assert_code(
        &repo.ledger_env(&["stage", "commit", "--sha", SHA, "--", "true"], &env),
        0,
    );
    assert_code(&repo.ledger_env(&["verify", SHA], &env), 0);
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<Requests> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].put >= 4, "{text}");
    assert_eq!(lines[1].put, 0, "{text}");
    assert!(lines[1].get >= 2 && lines[1].list >= 1, "{text}");
    // Without the variable nothing is written anywhere.
    std::fs::remove_file(&file).unwrap();
    assert_code(&repo.ledger(&["verify", SHA]), 0);
    assert!(!file.exists());
}
