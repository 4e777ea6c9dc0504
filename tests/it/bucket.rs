//! The store as a bucket: `LEDGER_STORE=s3://…` against the loopback S3 server. What
//! only a shared, remote store has to get right: stages racing from several machines
//! (processes here) for the same SHA, and a server that is down or refuses the
//! credentials (exit 5 naming the endpoint, nothing half-written).

use crate::{assert_code, text, Backend, Repo, SHA};
use ledger_store::testing::S3Server;

fn server() -> Option<S3Server> {
    S3Server::from_env()
}

#[test]
fn stages_racing_for_one_sha_each_get_their_own_attempt() {
    let Some(server) = server() else { return };
    let repo = Repo::on(&Backend::S3(server));
    const RACERS: usize = 6;
    let children: Vec<_> = (0..RACERS)
        .map(|i| {
            let mut cmd = repo.command(&["stage", "commit", "--sha", SHA, "--", "true"]);
            cmd.env("RACER", i.to_string());
            cmd.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_code(&out, 0);
    }
    let envelopes: Vec<String> = repo
        .stored()
        .into_iter()
        .filter(|k| k.starts_with("commit/") && k.ends_with(".json"))
        .collect();
    assert_eq!(envelopes.len(), RACERS, "{envelopes:?}");
    let out = repo.ledger(&["verify", SHA, "--json"]);
    assert_code(&out, 0);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut attempts: Vec<u64> = report["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["attempt"].as_u64().unwrap())
        .collect();
    attempts.sort_unstable();
    assert_eq!(attempts, (1..=RACERS as u64).collect::<Vec<_>>());
}

#[test]
fn a_dead_endpoint_is_exit_5_naming_it_and_writes_nothing() {
    let Some(server) = server() else { return };
    let repo = Repo::on(&Backend::S3(server));
    let port = crate::dead_port();
    let dead = format!("http://127.0.0.1:{port}");
    let out = repo.ledger_env(
        &["stage", "commit", "--sha", SHA, "--", "touch", "ran"],
        &[("AWS_ENDPOINT_URL", &dead)],
    );
    assert_code(&out, 5);
    let msg = text(&out);
    assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
    assert!(msg.contains("unreachable"), "{msg}");
    assert!(
        !repo.path().join("ran").exists(),
        "the stage ran without a store"
    );
    assert!(repo.stored().is_empty(), "{:?}", repo.stored());
}

/// An S3 store configured without conditional writes (`AWS_CONDITIONAL_PUT=disabled`)
/// could overwrite evidence: refused at once (exit 5, naming the setting), before
/// the command runs, also where the stage's first write would only come after it (the
/// root and policy are pinned already).
#[test]
fn a_bucket_without_create_only_writes_is_refused_before_anything_runs() {
    let Some(server) = server() else { return };
    let repo = Repo::on(&Backend::S3(server));
    let without = [("AWS_CONDITIONAL_PUT", "disabled")];
    let refused = |args: &[&str]| {
        let out = repo.ledger_env(args, &without);
        assert_code(&out, 5);
        let msg = text(&out);
        assert!(
            msg.contains("cannot create objects only-if-absent"),
            "{msg}"
        );
        assert!(msg.contains("aws_conditional_put"), "{msg}");
    };
    refused(&["stage", "commit", "--sha", SHA, "--", "touch", "ran"]);
    assert!(repo.stored().is_empty(), "{:?}", repo.stored());
    assert_code(
        &repo.ledger(&["stage", "commit", "--sha", SHA, "--", "true"]),
        0,
    );
    let before = repo.stored();
    refused(&["stage", "integration", "--sha", SHA, "--", "touch", "ran"]);
    assert!(!repo.path().join("ran").exists(), "the command ran");
    assert_eq!(repo.stored(), before);
}

/// A bucket that does not exist: the reachability listing's error (exit 5, naming
/// the store), for a stage and for a read command alike, although the policy's
/// trust state is read at the same time and fails too; nothing runs.
#[test]
fn a_missing_bucket_is_exit_5_naming_the_store() {
    let Some(server) = server() else { return };
    let repo = Repo::on(&Backend::S3(server));
    let missing = format!("s3://no-such-bucket-{}/p", std::process::id());
    for args in [
        &["stage", "commit", "--sha", SHA, "--", "touch", "ran"][..],
        &["verify", SHA],
    ] {
        let out = repo.ledger_env(args, &[("LEDGER_STORE", &missing)]);
        assert_code(&out, 5);
        let msg = text(&out);
        assert!(msg.contains(&missing), "{msg}");
        assert!(msg.contains("unreachable or failing"), "{msg}");
        assert!(msg.contains("check that it exists"), "{msg}");
    }
    assert!(!repo.path().join("ran").exists(), "the stage ran");
}

#[test]
fn refused_credentials_are_exit_5_naming_the_endpoint_and_never_the_secret() {
    let Some(server) = server() else { return };
    let repo = Repo::on(&Backend::S3(server.clone()));
    let out = repo.ledger_env(
        &["stage", "commit", "--sha", SHA, "--", "touch", "ran"],
        &[
            ("AWS_ENDPOINT_URL", &server.strict_endpoint),
            ("AWS_SECRET_ACCESS_KEY", "wrong-secret-value"),
        ],
    );
    assert_code(&out, 5);
    let msg = text(&out);
    assert!(msg.contains(&server.strict_endpoint), "{msg}");
    assert!(msg.contains("refused the credentials"), "{msg}");
    assert!(!msg.contains("wrong-secret-value"), "{msg}");
    assert!(!repo.path().join("ran").exists());
    assert!(repo.stored().is_empty(), "{:?}", repo.stored());
}

#[test]
fn a_bucket_url_with_credentials_in_it_is_refused_as_bad_input() {
    let repo = Repo::new();
    let out = repo.ledger_env(
        &["verify", SHA],
        &[("LEDGER_STORE", "s3://AKIA:secret@bucket/p")],
    );
    assert_code(&out, 2);
    assert!(text(&out).contains("in the environment"), "{}", text(&out));
}
