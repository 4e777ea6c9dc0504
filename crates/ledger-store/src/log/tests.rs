//! Appending after a reader saw the log's head: no search when the head is current,
//! a few requests (not one per entry) when other writers have moved it on, and the
//! chain intact either way. Both real backends, two `Store`s standing for two
//! processes on one store.

use crate::testing::S3Server;
use crate::{ObjectKey, Store, StoreLocation};
use bytes::Bytes;
use ledger_core::tlog::{self, LogEntry, LoggedObject};
use ledger_core::Sha256Digest;

/// Two independent openings of one fresh store (each its own caches), per backend.
async fn pairs(dir: &std::path::Path, label: &str) -> Vec<(Store, Store)> {
    let open_local = || Store::open(StoreLocation::Local(dir.join("store")));
    let mut out = vec![(open_local().await.unwrap(), open_local().await.unwrap())];
    if let Some(s3) = S3Server::from_env() {
        let prefix = S3Server::unique_prefix(label);
        out.push((
            s3.open(&prefix).await.unwrap(),
            s3.open(&prefix).await.unwrap(),
        ));
    }
    out
}

fn object(n: u64) -> Vec<LoggedObject> {
    vec![LoggedObject {
        key: format!("leases/test-{n}.json"),
        sha256: Sha256Digest::of(&n.to_be_bytes()),
    }]
}

async fn entry(store: &Store, seq: u64) -> Bytes {
    let key = ObjectKey::parse(&tlog::entry_key(seq)).unwrap();
    store
        .get_limited(&key, tlog::MAX_ENTRY_BYTES)
        .await
        .unwrap()
        .unwrap()
}

/// Appends by `writer` until the log has `size` entries.
async fn grow(writer: &Store, from: u64, size: u64) {
    for n in from..=size {
        assert_eq!(writer.log_append(object(n)).await.unwrap().size, n);
    }
}

/// Appends entry `n` by `appender`, after it saw entry `seen`: the new head's size,
/// and the existence checks and all requests (but listings) the append made.
async fn append_after_seeing(appender: &Store, seen: u64, n: u64) -> (u64, u64, u64) {
    appender.saw_log_head(seen, entry(appender, seen).await);
    let before = appender.requests();
    let head = appender.log_append(object(n)).await.unwrap();
    let after = appender.requests();
    let checks = after.head - before.head;
    (
        head.size,
        checks,
        checks + after.get + after.put - before.get - before.put,
    )
}

#[tokio::test]
async fn a_current_head_seen_by_a_reader_needs_no_search() {
    let dir = tempfile::tempdir().unwrap();
    for (writer, appender) in pairs(dir.path(), "log-seen-current").await {
        grow(&writer, 1, 5).await;
        let (size, checks, _) = append_after_seeing(&appender, 5, 6).await;
        assert_eq!(size, 6);
        assert_eq!(checks, 0, "no existence checks");
        let six = LogEntry::parse(&entry(&writer, 6).await).unwrap();
        assert_eq!(six.prev.0, Some(Sha256Digest::of(&entry(&writer, 5).await)));
    }
}

#[tokio::test]
async fn a_stale_head_costs_a_few_requests_and_keeps_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    for (writer, appender) in pairs(dir.path(), "log-seen-stale").await {
        // The appender saw entry 2; other writers moved the log on while it worked.
        grow(&writer, 1, 70).await;
        let (size, _, spent) = append_after_seeing(&appender, 2, 71).await;
        assert_eq!(size, 71);
        // One failed put, galloping and bisecting over 68 entries, one read: far
        // fewer than stepping entry by entry (two requests each).
        assert!(spent <= 20, "{spent} requests to find the head");
        let new = LogEntry::parse(&entry(&writer, 71).await).unwrap();
        assert_eq!(
            new.prev.0,
            Some(Sha256Digest::of(&entry(&writer, 70).await))
        );
        // The writer, whose own head is stale now, moves past it the same way.
        assert_eq!(writer.log_append(object(72)).await.unwrap().size, 72);
    }
}

#[tokio::test]
async fn an_older_head_never_replaces_a_newer_one() {
    let dir = tempfile::tempdir().unwrap();
    for (writer, _) in pairs(dir.path(), "log-seen-older").await {
        grow(&writer, 1, 3).await;
        writer.saw_log_head(1, entry(&writer, 1).await);
        let (seq, bytes) = writer.log_last().await.unwrap().unwrap();
        assert_eq!(seq, 3);
        assert_eq!(bytes, entry(&writer, 3).await);
    }
}

/// The tail past entry `size`: exactly the later entries, in order, in one listing
/// (a bucket is asked only for them; the local folder skips the others unread),
/// with a stray name before the tail and a nested folder not mistaken for entries.
#[tokio::test]
async fn the_keys_after_an_entry_are_the_logs_tail() {
    let dir = tempfile::tempdir().unwrap();
    for (writer, reader) in pairs(dir.path(), "tail").await {
        grow(&writer, 1, 7).await;
        // A stray that sorts just before entry 1, and an object in a folder named
        // like entry 5 without its suffix (which sorts before entry 5, its object
        // after).
        let stray = "log/0000000000000001.bak";
        let nested = "log/0000000000000005/x";
        for key in [stray, nested] {
            let key = ObjectKey::parse(key).unwrap();
            writer
                .put_create(&key, Bytes::from_static(b"x"))
                .await
                .unwrap();
        }
        for size in [0, 1, 4, 5, 7, 9] {
            let before = reader.requests().list;
            let keys = reader.log_keys_after(size).await.unwrap();
            assert_eq!(reader.requests().list - before, 1);
            let mut want: Vec<String> = (size + 1..=7).map(tlog::entry_key).collect();
            want.extend((size == 0).then(|| stray.to_owned()));
            want.extend((size <= 5).then(|| nested.to_owned()));
            want.sort();
            assert_eq!(keys, want, "after {size}");
        }
        assert_eq!(
            reader.seen_log_head(),
            None,
            "listing is not reading a head"
        );
        assert_eq!(
            writer.seen_log_head(),
            Some(tlog::LogHead {
                size: 7,
                sha256: Sha256Digest::of(&entry(&writer, 7).await)
            })
        );
    }
}
