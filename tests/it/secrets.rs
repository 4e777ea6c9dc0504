//! The signing key never leaves `ledger` by another door: a key that reaches the
//! wrapped command's arguments is masked in the recorded command line as in its
//! output, and `ledger`'s own debug log (`RUST_LOG=debug`, every target) names keys by
//! id only, whether the key came as PEM text in the environment or as a file.

use crate::isolation::{assert_no_key, body, everything_stored};
use crate::{assert_code, text, Repo, SHA};
use ledger_core::SigningKey;

fn test_key(repo: &Repo) -> (SigningKey, String) {
    let pem = std::fs::read_to_string(repo.path().join(".ledger/test.key")).unwrap();
    (SigningKey::from_pem(&pem).unwrap(), pem)
}

#[test]
fn a_key_in_the_commands_arguments_is_masked_where_it_is_recorded() {
    let repo = Repo::new();
    let (key, pem) = test_key(&repo);
    let one_line = body(&pem);
    let first_line = pem.lines().nth(1).unwrap().to_owned();
    let args = [
        "stage",
        "commit",
        "--sha",
        SHA,
        "--no-isolation",
        "--",
        "sh",
        "-c",
        "true",
        &pem,
        &one_line,
        &first_line,
    ];
    let out = repo.ledger_env(&args, &[("RUST_LOG", "debug")]);
    assert_code(&out, 0);
    let p = repo.predicate(&format!("commit/{SHA}/commit.json"));
    let argv = p["command"]["argv"].to_string();
    assert!(argv.contains("***"), "{argv}");
    assert_no_key(&argv, &key, &pem, "the recorded command line");
    assert_no_key(&everything_stored(&repo), &key, &pem, "the store");
    assert_no_key(&text(&out), &key, &pem, "the terminal and the debug log");
}

#[test]
fn the_debug_log_never_holds_the_key() {
    let repo = Repo::new();
    let (key, pem) = test_key(&repo);
    let commit = ["stage", "commit", "--sha", SHA, "--", "true"];
    let debug = [("RUST_LOG", "trace")];
    // The key as a file (the default), then as PEM text in the environment.
    let out = repo.ledger_env(&commit, &debug);
    assert_code(&out, 0);
    assert!(
        text(&out).contains("DEBUG"),
        "nothing logged: {}",
        text(&out)
    );
    assert_no_key(&text(&out), &key, &pem, "the debug log (key file)");
    let out = repo.ledger_env(&commit, &[debug[0], ("LEDGER_SIGNING_KEY", &pem)]);
    assert_code(&out, 0);
    assert_no_key(
        &text(&out),
        &key,
        &pem,
        "the debug log (key in the environment)",
    );
    for args in [&["verify", SHA][..], &["gate", "integration", "--sha", SHA]] {
        let out = repo.ledger_env(args, &debug);
        assert_no_key(&text(&out), &key, &pem, &format!("{args:?}"));
    }
}
