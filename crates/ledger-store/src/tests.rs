//! Store tests on both real backends: the local file system always, and the S3 server
//! `.ci/run` starts on loopback (see [`crate::testing`]). Write-once, idempotent
//! retries, attempt discovery, key validation, and real OS processes racing for the
//! same keys over hundreds of rounds. Opening a location (unreachable and refused
//! servers among it) is tested in `location/tests.rs`.

use super::*;
use crate::testing::{self, Race, Racer};
use ledger_core::{ArtifactKind, ArtifactRef, GitSha};

mod beneath;
mod local_folder;
mod overwriting;

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

/// The stores every case runs against: a fresh local folder, another read and
/// written the way a kernel without `openat2` has it done (folders checked first,
/// the backend's own writes), and a fresh prefix on the S3 server when one is
/// configured. The temp dir lives as long as the stores.
async fn backends(label: &str) -> (tempfile::TempDir, Vec<Store>) {
    let tmp = tempfile::tempdir().unwrap();
    let stores = testing::backends(&tmp.path().join("store"), label).await;
    let checked = tmp.path().join("checked");
    std::fs::create_dir(&checked).unwrap();
    let checked = beneath::checking_store(&checked);
    let stores = stores.into_iter().map(|(_, s)| s).chain([checked]);
    (tmp, stores.collect())
}

#[tokio::test]
async fn creates_the_folder() {
    let tmp = tempfile::tempdir().unwrap();
    local(tmp.path()).await;
    assert!(tmp.path().join("store").is_dir());
}

#[tokio::test]
async fn never_overwrites() {
    let (_tmp, stores) = backends("never-overwrites").await;
    for store in stores {
        never_overwrites_on(&store).await;
    }
}

async fn never_overwrites_on(store: &Store) {
    let k = key(ArtifactKind::Commit, 1);
    assert_eq!(
        store.put_create(&k, b"first".to_vec()).await.unwrap(),
        PutOutcome::Created
    );
    let e = store.put_create(&k, b"second".to_vec()).await.unwrap_err();
    assert!(matches!(e, StoreError::AlreadyExists { .. }), "{e}");
    assert!(e.to_string().contains("not overwritten"), "{e}");
    assert_eq!(store.get(&k).await.unwrap().unwrap(), &b"first"[..]);
    let raw = store.raw_get(k.as_str()).await.unwrap().unwrap();
    assert_eq!(raw, &b"first"[..], "{store:?}");
    // A retried request with the same bytes is not an error.
    let puts = store.requests().put;
    assert_eq!(
        store.put_create(&k, b"first".to_vec()).await.unwrap(),
        PutOutcome::AlreadyPresent
    );
    // A local folder compares what is there without writing a staged copy first;
    // a bucket can only tell by the conditional write.
    let written = store.requests().put - puts;
    assert_eq!(written, u64::from(store.local_root.is_none()), "{store:?}");
}

#[tokio::test]
async fn absent_and_oversized_objects() {
    let (_tmp, stores) = backends("absent-oversized").await;
    for store in stores {
        absent_and_oversized_on(&store).await;
    }
}

async fn absent_and_oversized_on(store: &Store) {
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
async fn bulk_reads_agree_with_single_reads() {
    let (_tmp, stores) = backends("bulk-reads").await;
    for store in stores {
        bulk_reads_on(&store).await;
    }
}

async fn bulk_reads_on(store: &Store) {
    let keys: Vec<ObjectKey> = (1..=40).map(|a| key(ArtifactKind::Smoke, a)).collect();
    // Every third key stays absent; the others hold their attempt number.
    for (i, k) in keys.iter().enumerate() {
        if i % 3 != 2 {
            store
                .put_create(k, format!("attempt {}", i + 1))
                .await
                .unwrap();
        }
    }
    // A few keys are read on the calling thread, many on several: both agree.
    for n in [1, 2, 3, 7, 8, 12, 40] {
        let keys = &keys[..n];
        let lengths: Vec<Option<usize>> = store
            .map_many(keys.to_vec(), 64, |b| b.len())
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.map(Result::unwrap))
            .collect();
        assert_eq!(lengths.len(), keys.len(), "{n} on {store:?}");
        for (k, len) in keys.iter().zip(&lengths) {
            let single = store.get(k).await.unwrap().map(|b| b.len());
            assert_eq!(*len, single, "{k} of {n} on {store:?}");
        }
        assert_eq!(lengths[0], Some("attempt 1".len()));
        // An object over the limit fails that object, naming its key; the rest read.
        let read = store.map_many(keys.to_vec(), 9, |b| b.len()).await.unwrap();
        assert!(matches!(read[0], Some(Ok(9))), "{:?}", read[0]);
        if n > 2 {
            assert!(read[2].is_none(), "{n}");
        }
        if let Some(tenth) = read.get(9) {
            assert!(
                matches!(tenth, Some(Err(StoreError::TooLarge { key, limit: 9, .. })) if *key == keys[9].as_str()),
                "{tenth:?}"
            );
        }
    }
    // The same on the calling thread: the oversized object first, then one that fits.
    let read = store
        .map_many(vec![keys[9].clone(), keys[0].clone()], 9, |b| b.len())
        .await
        .unwrap();
    assert!(
        matches!(&read[0], Some(Err(StoreError::TooLarge { key, limit: 9, .. })) if *key == keys[9].as_str()),
        "{:?}",
        read[0]
    );
    assert!(matches!(read[1], Some(Ok(9))), "{:?}", read[1]);
    assert!(store
        .map_many(Vec::new(), 9, |b| b)
        .await
        .unwrap()
        .is_empty());
}

/// A listing kept by `list_for_attempts` numbers the next attempt once, without a
/// request, however stale it is by then; the next asks the store again.
#[tokio::test]
async fn a_kept_listing_numbers_one_attempt() {
    let (_tmp, stores) = backends("kept-listing").await;
    for store in stores {
        let prefix = ArtifactKind::Commit.prefix(&sha());
        assert!(store.list_for_attempts(&prefix).await.unwrap().is_empty());
        store
            .put_create(&key(ArtifactKind::Commit, 1), b"x".to_vec())
            .await
            .unwrap();
        let lists = store.requests().list;
        let next = store.next_attempt(ArtifactKind::Commit, &sha()).await;
        assert_eq!(next.unwrap(), 1, "{store:?}: the kept listing, stale");
        assert_eq!(store.requests().list, lists, "{store:?}: no listing");
        let next = store.next_attempt(ArtifactKind::Commit, &sha()).await;
        assert_eq!(next.unwrap(), 2, "{store:?}: listed again");
        assert_eq!(store.requests().list, lists + 1, "{store:?}");
    }
}

#[tokio::test]
async fn attempts_are_found_by_listing() {
    let (_tmp, stores) = backends("attempts").await;
    for store in stores {
        attempts_on(&store).await;
    }
}

async fn attempts_on(store: &Store) {
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
    let dir = format!("commit/{SHA}");
    store
        .tamper(&format!("{dir}/commit.attempt-x.json"), &b"?"[..])
        .await
        .unwrap();
    store
        .tamper(&format!("{dir}/commit.log"), &b"log"[..])
        .await
        .unwrap();
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

#[tokio::test]
async fn the_probe_proves_create_only_writes() {
    let (_tmp, stores) = backends("probe").await;
    for store in stores {
        let key = store.probe("tests").await.unwrap();
        assert!(key.as_str().starts_with("probes/"), "{key}");
        let stored = store.get(&key).await.unwrap().unwrap();
        assert_eq!(stored, &b"write-once probe by tests\n"[..]);
    }
}

// --- Races between real OS processes (see `testing::Race`) ---------------------------

const RACE: Race = Race {
    helper: "tests::race_helper_process",
    racers: 6,
    rounds: 200,
    round_ms: 15,
};

fn round_key(round: u32) -> ObjectKey {
    ObjectKey::from_artifact(&ArtifactRef::new(ArtifactKind::Decision, sha(), round + 1))
}

/// Not a test on its own: the body each racing process runs.
#[tokio::test]
async fn race_helper_process() {
    let Some(racer) = Racer::from_env().await else {
        return;
    };
    for round in 0..RACE.rounds {
        racer.wait_for(round).await;
        let outcome = racer
            .store
            .put_create(
                &round_key(round),
                format!("racer {}", racer.id).into_bytes(),
            )
            .await;
        let word = match outcome {
            Ok(PutOutcome::Created) => "won".to_owned(),
            Ok(PutOutcome::AlreadyPresent) => "same".to_owned(),
            Err(StoreError::AlreadyExists { .. }) => "lost".to_owned(),
            Err(e) => format!("error {e}"),
        };
        racer.report(round, &word);
    }
}

/// Every round had exactly one winner, every other racer lost with
/// `AlreadyExists`, and the object holds the winner's bytes afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_racing_for_keys_have_exactly_one_winner_each_round() {
    let tmp = tempfile::tempdir().unwrap();
    for (spec, store) in testing::backends(tmp.path(), "race").await {
        let rounds = RACE.run(&spec);
        for (round, outcomes) in (0..RACE.rounds).zip(rounds) {
            let winners: Vec<&String> = outcomes
                .iter()
                .filter(|(_, o)| o == "won")
                .map(|(id, _)| id)
                .collect();
            let losers = outcomes.iter().filter(|(_, o)| o == "lost").count();
            assert_eq!(winners.len(), 1, "{spec} round {round}: {outcomes:?}");
            assert_eq!(
                losers,
                RACE.racers - 1,
                "{spec} round {round}: {outcomes:?}"
            );
            let stored = store.get(&round_key(round)).await.unwrap().unwrap();
            assert_eq!(
                stored,
                format!("racer {}", winners[0]).into_bytes(),
                "{spec}"
            );
        }
    }
}
