//! Reading the log from a recorded head: the same answers as the whole log for what
//! the tail holds, the start entry held to the signed digest (also when it is entry
//! 1), and nothing claimed about the part not read.

use super::{LogIndex, Start};
use ledger_core::tlog::{self, Checkpoint, LogHead, LoggedObject};
use ledger_core::Sha256Digest;
use ledger_store::{ObjectKey, Store, StoreLocation};

async fn store_with(entries: u64) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreLocation::Local(dir.path().join("store")))
        .await
        .unwrap();
    for n in 1..=entries {
        let objects = vec![LoggedObject {
            key: format!("leases/test/{n}.json"),
            sha256: Sha256Digest::of(&n.to_be_bytes()),
        }];
        store.log_append(objects).await.unwrap();
    }
    (dir, store)
}

async fn head(store: &Store, size: u64) -> LogHead {
    let key = ObjectKey::parse(&tlog::entry_key(size)).unwrap();
    let bytes = store
        .get_limited(&key, tlog::MAX_ENTRY_BYTES)
        .await
        .unwrap();
    LogHead {
        size,
        sha256: Sha256Digest::of(&bytes.unwrap()),
    }
}

#[tokio::test]
async fn a_tail_from_a_recorded_head_answers_like_the_whole_log_for_what_it_holds() {
    let (_dir, store) = store_with(6).await;
    let whole = LogIndex::read(&store).await.unwrap();
    for size in 1..=6 {
        let tail = LogIndex::read_from(&store, Start::At(head(&store, size).await))
            .await
            .unwrap();
        assert!(tail.problems.is_empty(), "{size}: {:?}", tail.problems);
        assert_eq!(tail.size(), 6);
        for n in 1..=6u64 {
            let key = format!("leases/test/{n}.json");
            let want = whole.get(&key).filter(|_| n >= size);
            assert_eq!(tail.get(&key), want, "from {size}, {key}");
            let cp = Checkpoint {
                size: n,
                head: head(&store, n).await.sha256,
            };
            assert!(whole.extends(&cp).is_ok());
            assert!(tail.extends(&cp).is_ok(), "from {size}, checkpoint {n}");
            assert_eq!(tail.covers(n), n + 1 >= size, "from {size}, covers {n}");
        }
        // A head the part read shows, signed as something else, is a rewrite.
        let forged = Checkpoint {
            size: 6,
            head: Sha256Digest::of(b"other"),
        };
        assert!(tail.extends(&forged).is_err());
    }
}

#[tokio::test]
async fn the_start_entry_must_hash_to_the_recorded_head_even_entry_1() {
    let (_dir, store) = store_with(3).await;
    for size in [1, 2, 3] {
        let recorded = LogHead {
            size,
            sha256: Sha256Digest::of(b"not this entry"),
        };
        let tail = LogIndex::read_from(&store, Start::At(recorded))
            .await
            .unwrap();
        let problems = tail.problems.join("; ");
        assert!(
            problems.contains("is not the entry recorded evidence names"),
            "{size}: {problems}"
        );
        assert_eq!(tail.get("leases/test/3.json"), None, "nothing vouched for");
    }
}

#[tokio::test]
async fn a_recorded_head_past_the_log_is_a_removed_tail() {
    let (_dir, store) = store_with(2).await;
    let recorded = LogHead {
        size: 5,
        sha256: Sha256Digest::of(b"gone"),
    };
    let tail = LogIndex::read_from(&store, Start::At(recorded))
        .await
        .unwrap();
    assert!(!tail.is_empty());
    assert!(
        tail.problems.join(" ").contains("its tail was removed"),
        "{:?}",
        tail.problems
    );
}

#[tokio::test]
async fn the_last_entry_alone_is_the_head_and_links_to_the_one_before() {
    let (_dir, store) = store_with(4).await;
    let last = LogIndex::read_from(&store, Start::Last).await.unwrap();
    assert!(last.problems.is_empty(), "{:?}", last.problems);
    assert_eq!(last.size(), 4);
    assert!(last.get("leases/test/4.json").is_some());
    assert!(last.get("leases/test/3.json").is_none());
    let at_3 = Checkpoint {
        size: 3,
        head: head(&store, 3).await.sha256,
    };
    assert!(last.extends(&at_3).is_ok());
    let wrong_3 = Checkpoint {
        size: 3,
        head: Sha256Digest::of(b"other"),
    };
    assert!(
        last.extends(&wrong_3).is_err(),
        "entry 4's prev says otherwise"
    );
    assert_eq!(store.seen_log_head(), Some(head(&store, 4).await));
    let (_empty_dir, empty) = store_with(0).await;
    let none = LogIndex::read_from(&empty, Start::Last).await.unwrap();
    assert!(none.is_empty() && none.problems.is_empty() && none.size() == 0);
}
