//! Store tests on the real local file system: write-once, idempotent retries,
//! attempt discovery, key validation, and real OS processes racing one key.

use super::*;
use ledger_core::{ArtifactKind, ArtifactRef, GitSha};

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

fn sha() -> GitSha {
    GitSha::parse(SHA).unwrap()
}

async fn local(dir: &std::path::Path) -> Store {
    Store::open(StoreLocation::Local(dir.join("store")))
        .await
        .unwrap()
}

fn key(kind: ArtifactKind, attempt: u32) -> ObjectKey {
    ObjectKey::from_artifact(&ArtifactRef::new(kind, sha(), attempt))
}

#[tokio::test]
async fn creates_the_folder_and_never_overwrites() {
    let tmp = tempfile::tempdir().unwrap();
    let store = local(tmp.path()).await;
    assert!(tmp.path().join("store").is_dir());
    let k = key(ArtifactKind::Commit, 1);
    assert_eq!(
        store.put_create(&k, b"first".to_vec()).await.unwrap(),
        PutOutcome::Created
    );
    let e = store.put_create(&k, b"second".to_vec()).await.unwrap_err();
    assert!(matches!(e, StoreError::AlreadyExists { .. }), "{e}");
    assert!(e.to_string().contains("not overwritten"), "{e}");
    assert_eq!(store.get(&k).await.unwrap().unwrap(), &b"first"[..]);
    let on_disk = std::fs::read(tmp.path().join("store").join(k.as_str())).unwrap();
    assert_eq!(on_disk, b"first");
    // A retried request with the same bytes is not an error.
    assert_eq!(
        store.put_create(&k, b"first".to_vec()).await.unwrap(),
        PutOutcome::AlreadyPresent
    );
}

#[tokio::test]
async fn absent_and_oversized_objects() {
    let tmp = tempfile::tempdir().unwrap();
    let store = local(tmp.path()).await;
    let k = key(ArtifactKind::Build, 1);
    assert!(store.get(&k).await.unwrap().is_none());
    store.put_create(&k, vec![b'x'; 100]).await.unwrap();
    let e = store.get_limited(&k, 10).await.unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::TooLarge {
                size: 100,
                limit: 10,
                ..
            }
        ),
        "{e}"
    );
}

#[tokio::test]
async fn attempts_are_found_by_listing() {
    let tmp = tempfile::tempdir().unwrap();
    let store = local(tmp.path()).await;
    assert_eq!(
        store
            .next_attempt(ArtifactKind::Commit, &sha())
            .await
            .unwrap(),
        1
    );
    for a in [1, 3, 2] {
        store
            .put_create(&key(ArtifactKind::Commit, a), b"x".to_vec())
            .await
            .unwrap();
    }
    // Foreign and auxiliary objects under the prefix are not attempts.
    let dir = tmp.path().join("store/commit").join(SHA);
    std::fs::write(dir.join("commit.attempt-x.json"), b"?").unwrap();
    std::fs::write(dir.join("commit.log"), b"log").unwrap();
    store
        .put_create(&key(ArtifactKind::Integration, 1), b"x".to_vec())
        .await
        .unwrap();
    assert_eq!(
        store.attempts(ArtifactKind::Commit, &sha()).await.unwrap(),
        [1, 2, 3]
    );
    assert_eq!(
        store
            .next_attempt(ArtifactKind::Commit, &sha())
            .await
            .unwrap(),
        4
    );
    assert_eq!(
        store
            .latest(ArtifactKind::Commit, &sha())
            .await
            .unwrap()
            .unwrap()
            .attempt,
        3
    );
    let other = GitSha::parse(&"f".repeat(40)).unwrap();
    store
        .put_create(
            &ObjectKey::from_artifact(&ArtifactRef::new(ArtifactKind::Timing, other, 1)),
            b"t".to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(store.shas().await.unwrap(), [sha(), other]);
}

#[test]
fn keys_admit_only_the_layout_alphabet() {
    for good in [
        "commit/abc/commit.json",
        "policies/ab12.json",
        "leases/production.lease",
    ] {
        assert!(ObjectKey::parse(good).is_ok(), "{good}");
    }
    let long = "a".repeat(MAX_KEY_LEN_TEST);
    for bad in [
        "",
        "../x",
        "a/../b",
        "a//b",
        "/a",
        "a/",
        "a/./b",
        "A/b",
        "a b",
        "a\\b",
        long.as_str(),
    ] {
        assert!(ObjectKey::parse(bad).is_err(), "{bad:?}");
    }
    assert!(ObjectKey::parse_prefix("commit/").is_ok());
    assert!(ObjectKey::parse_prefix("commit").is_err());
    assert!(ObjectKey::parse_prefix("../").is_err());
}

const MAX_KEY_LEN_TEST: usize = key::MAX_KEY_LEN + 1;

#[test]
fn locations() {
    assert_eq!(
        StoreLocation::parse("file:///tmp/x").unwrap(),
        StoreLocation::Local("/tmp/x".into())
    );
    assert!(matches!(
        StoreLocation::parse("ftp://x"),
        Err(StoreError::Unsupported { .. })
    ));
    assert!(StoreLocation::parse("").is_err());
}

/// Set in the environment of a racer process: the store folder to write into.
const RACE_DIR: &str = "LEDGER_STORE_RACE_DIR";
const RACE_ID: &str = "LEDGER_STORE_RACE_ID";

/// Not a test on its own: the body each racing process runs (see below).
#[tokio::test]
async fn race_helper_process() {
    let (Ok(dir), Ok(id)) = (std::env::var(RACE_DIR), std::env::var(RACE_ID)) else {
        return;
    };
    let store = Store::open(StoreLocation::Local(dir.into())).await.unwrap();
    let outcome = store
        .put_create(
            &key(ArtifactKind::Decision, 1),
            format!("racer {id}").into_bytes(),
        )
        .await;
    match outcome {
        Ok(PutOutcome::Created) => println!("RACE-RESULT won {id}"),
        Ok(PutOutcome::AlreadyPresent) => println!("RACE-RESULT same {id}"),
        Err(StoreError::AlreadyExists { .. }) => println!("RACE-RESULT lost {id}"),
        Err(e) => println!("RACE-RESULT error {id} {e}"),
    }
}

#[test]
fn processes_racing_one_key_have_exactly_one_winner() {
    let exe = std::env::current_exe().unwrap();
    const ROUNDS: usize = 12;
    const RACERS: usize = 6;
    for round in 0..ROUNDS {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("store");
        let children: Vec<_> = (0..RACERS)
            .map(|id| {
                std::process::Command::new(&exe)
                    .args([
                        "--exact",
                        "tests::race_helper_process",
                        "--nocapture",
                        "--test-threads=1",
                    ])
                    .env(RACE_DIR, &dir)
                    .env(RACE_ID, id.to_string())
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut winners = Vec::new();
        let mut losers = 0;
        for child in children {
            let out = child.wait_with_output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            let line = text
                .lines()
                .find_map(|l| l.find("RACE-RESULT").map(|i| &l[i..]))
                .unwrap_or_else(|| panic!("no result from racer: {text}"));
            let words: Vec<&str> = line.split_whitespace().collect();
            match words[1] {
                "won" => winners.push(words[2].to_owned()),
                "lost" => losers += 1,
                other => panic!("round {round}: unexpected outcome {other}: {line}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        assert_eq!(losers, RACERS - 1);
        let stored = std::fs::read(dir.join(key(ArtifactKind::Decision, 1).as_str())).unwrap();
        assert_eq!(stored, format!("racer {}", winners[0]).into_bytes());
    }
}
