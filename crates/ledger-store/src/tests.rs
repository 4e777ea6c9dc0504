//! Store tests on both real backends: the local file system always, and the S3 server
//! `.ci/run` starts on loopback (see [`crate::testing`]). Write-once, idempotent
//! retries, attempt discovery, key validation, and real OS processes racing for the
//! same keys over hundreds of rounds. Opening a location (unreachable and refused
//! servers among it) is tested in `location/tests.rs`.

use super::*;
use crate::testing::{self, Race, Racer};
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

/// The stores every case runs against: a fresh local folder, and a fresh prefix on
/// the S3 server when one is configured. The temp dir lives as long as the stores.
async fn backends(label: &str) -> (tempfile::TempDir, Vec<Store>) {
    let tmp = tempfile::tempdir().unwrap();
    let stores = testing::backends(&tmp.path().join("store"), label).await;
    (tmp, stores.into_iter().map(|(_, s)| s).collect())
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

/// A local bulk read checks each folder once; a file under a linked folder, or
/// under a file where a folder belongs, is still refused on its own, as a single
/// read refuses it, and the batch's other files are read.
#[cfg(unix)]
#[tokio::test]
async fn a_bulk_read_refuses_what_a_single_read_refuses_folder_by_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let store = local(tmp.path()).await;
    let root = tmp.path().join("store");
    let outside = tmp.path().join("outside");
    let mut keys = Vec::new();
    for n in 0..6 {
        let k = ObjectKey::parse(&format!("log/{n:016}.json")).unwrap();
        store.put_create(&k, format!("entry {n}")).await.unwrap();
        keys.push(k);
    }
    // `commit/<sha>/` is a link to a folder outside holding a copy of a real file.
    let linked = key(ArtifactKind::Commit, 1);
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("commit.json"), "copied").unwrap();
    std::fs::create_dir_all(root.join("commit")).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("commit").join(sha().as_str())).unwrap();
    // The build's folder is a file where a folder belongs; `deploy/…` is not there.
    let under_file = key(ArtifactKind::Build, 1);
    let build_prefix = format!("build/{}", sha());
    std::fs::create_dir_all(root.join("build")).unwrap();
    std::fs::write(root.join(&build_prefix), "not a folder").unwrap();
    let absent = ObjectKey::parse("deploy/none.json").unwrap();
    let batch: Vec<ObjectKey> = [linked.clone(), under_file.clone(), absent.clone()]
        .into_iter()
        .chain(keys.iter().cloned())
        .chain([key(ArtifactKind::Commit, 2)])
        .collect();
    let read = store.map_many(batch.clone(), 64, |b| b).await.unwrap();
    assert_eq!(read.len(), batch.len());
    for (k, got) in batch.iter().zip(&read) {
        let single = store.get(k).await;
        match got {
            Some(Err(StoreError::NotRegular { key, what })) => {
                let Err(StoreError::NotRegular { key: k1, what: w1 }) = single else {
                    panic!("{k}: the bulk read refused it, a single read gave {single:?}");
                };
                assert_eq!((key, what), (&k1, &w1), "{k}");
            }
            Some(Ok(bytes)) => assert_eq!(Some(bytes.clone()), single.unwrap(), "{k}"),
            None => assert_eq!(single.unwrap(), None, "{k}"),
            Some(Err(e)) => panic!("{k}: {e}"),
        }
    }
    let linked_prefix = format!("commit/{}", sha());
    for i in [0, batch.len() - 1] {
        assert!(
            matches!(&read[i], Some(Err(StoreError::NotRegular { key, what })) if *key == linked_prefix && what == "a symbolic link"),
            "{}: {:?}",
            batch[i],
            read[i]
        );
    }
    assert!(
        matches!(&read[1], Some(Err(StoreError::NotRegular { key, .. })) if *key == build_prefix),
        "{:?}",
        read[1]
    );
    assert!(read[2].is_none());
    for (n, got) in read[3..3 + keys.len()].iter().enumerate() {
        assert!(
            matches!(got, Some(Ok(b)) if *b == format!("entry {n}")),
            "{got:?}"
        );
    }
}

#[tokio::test]
async fn the_local_listing_matches_the_backends_own() {
    let tmp = tempfile::tempdir().unwrap();
    let store = local(tmp.path()).await;
    for attempt in 1..=3 {
        store
            .put_create(&key(ArtifactKind::Commit, attempt), "x")
            .await
            .unwrap();
    }
    let dir = tmp.path().join("store").join("commit").join(SHA);
    // What the backend lists too: a stray file of any name, a nested folder, a link
    // (listed as itself, with its own size: it is never followed); what it leaves
    // out: its own in-progress writes.
    std::fs::write(dir.join("EVIL.json"), "stray").unwrap();
    std::fs::create_dir_all(dir.join("nested")).unwrap();
    std::fs::write(dir.join("nested").join("deep.json"), "deep").unwrap();
    std::fs::write(dir.join("commit.json#7"), "half-written").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(dir.join("commit.json"), dir.join("link.json")).unwrap();
    let ours = store.list_meta("commit/").await.unwrap();
    let theirs: Vec<object_store::ObjectMeta> = store
        .inner
        .list(Some(&Path::from("commit")))
        .try_collect()
        .await
        .unwrap();
    let mut theirs: Vec<(String, u64)> = theirs
        .into_iter()
        .map(|m| (m.location.to_string(), m.size))
        .collect();
    theirs.sort();
    let link = |k: &str| k.ends_with("/link.json");
    let ours: Vec<(String, u64)> = ours
        .into_iter()
        .map(|l| (l.key.clone(), if link(&l.key) { 1 } else { l.size }))
        .collect();
    assert_eq!(ours, theirs);
    assert!(
        ours.iter().any(|(k, _)| k.ends_with("/EVIL.json")),
        "{ours:?}"
    );
    assert!(!ours.iter().any(|(k, _)| k.contains('#')), "{ours:?}");
    assert!(store.list_meta("build/").await.unwrap().is_empty());
}

/// A local folder listed after a key lists exactly the keys past it, whatever the
/// key names (a file of the folder, a folder, a key inside a nested folder, no key
/// at all): the files it skips without building their keys are the ones a whole
/// listing would have filtered out. Both take each entry's kind from the directory
/// read, without an `lstat`; the listing with sizes and times is the reference.
#[tokio::test]
async fn a_local_listing_after_a_key_is_the_listing_past_it() {
    let tmp = tempfile::tempdir().unwrap();
    let store = local(tmp.path()).await;
    let log = tmp.path().join("store").join("log");
    std::fs::create_dir_all(log.join("0005")).unwrap();
    for n in 1..=9 {
        std::fs::write(log.join(format!("{n:04}.json")), "entry").unwrap();
    }
    // `/` sorts after `.`: the nested folder's keys come after `log/0005.json`.
    std::fs::write(log.join("0005").join("inner.json"), "nested").unwrap();
    std::fs::write(log.join("EVIL.json"), "stray").unwrap();
    // `log/-stray.json` sorts after `log.json` (`/` after `.`), its name before `.json`.
    std::fs::write(log.join("-stray.json"), "stray").unwrap();
    std::fs::write(log.join("0007.json#3"), "half-written").unwrap();
    // Listed as themselves, whatever they point to: a link, and a link named like
    // an in-progress write (only regular files are ever the backend's own).
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(log.join("0001.json"), log.join("0002.link")).unwrap();
        std::os::unix::fs::symlink(log.join("0005"), log.join("0003.json#4")).unwrap();
    }
    // The keys-only listing (no `lstat`) names what the statted one does.
    let all: Vec<String> = store
        .list_meta("log/")
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.key)
        .collect();
    assert_eq!(store.list("log/").await.unwrap(), all);
    assert_eq!(all.len(), if cfg!(unix) { 14 } else { 12 }, "{all:?}");
    #[cfg(unix)]
    assert!(
        all.iter().any(|k| k == "log/0003.json#4")
            && !all.iter().any(|k| k.starts_with("log/0003.json#4/")),
        "the link to a folder is an object, not a folder: {all:?}"
    );
    for after in [
        "log/0004.json",
        "log/0004.jsom",
        "log/0005",
        "log/0005.json",
        "log/0005/",
        "log/0005/a",
        "log/0005/inner.json",
        "log/0009.json",
        "log/EVIL.json",
        "log/",
        "log",
        "log.json",
        "log-",
        "a",
        "z",
    ] {
        let past: Vec<String> = all.iter().filter(|k| k.as_str() > after).cloned().collect();
        assert_eq!(
            store.list_after("log/", after).await.unwrap(),
            past,
            "after {after:?}"
        );
    }
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
