//! The last keys of a numbered folder ([`Store::list_tail`]) on both real backends:
//! always the folder's last key, everything after the window's first, and on a
//! bucket past its first page a few probes instead of a page per thousand keys.

use crate::testing;
use crate::Store;
use bytes::Bytes;
use futures::StreamExt as _;
use ledger_core::tlog;
use object_store::path::Path;
use object_store::ObjectStoreExt as _;

/// Stores entries `from..=to` of the log's numbering (their bytes do not matter
/// here), many at once, straight through `object_store`.
async fn fill(store: &Store, from: u64, to: u64) {
    futures::stream::iter(from..=to)
        .for_each_concurrent(32, |n| async move {
            store
                .inner
                .put(
                    &Path::from(tlog::entry_key(n)),
                    Bytes::from_static(b"x").into(),
                )
                .await
                .unwrap();
        })
        .await;
}

/// What `log_keys_tail` lists once the folder holds `size` entries, and how many
/// list requests it made.
async fn tail(store: &Store, size: u64) -> (Vec<String>, u64) {
    let before = store.requests().list;
    let keys = store.log_keys_tail().await.unwrap();
    let lists = store.requests().list - before;
    assert_eq!(keys.last(), Some(&tlog::entry_key(size)), "{size} entries");
    // A run of the last keys, none missing: the whole listing's end.
    let first = tlog::entry_seq(&keys[0]).unwrap();
    let expected: Vec<String> = (first..=size).map(tlog::entry_key).collect();
    assert_eq!(keys, expected, "{size} entries");
    (keys, lists)
}

#[tokio::test]
async fn the_tail_of_a_numbered_folder_ends_with_its_last_key_in_a_few_requests() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, store) in testing::backends(&tmp.path().join("store"), "tail").await {
        let local = name.starts_with("local:");
        assert!(store.log_keys_tail().await.unwrap().is_empty(), "{name}");
        fill(&store, 1, 900).await;
        let (keys, lists) = tail(&store, 900).await;
        // Within a page: the whole folder, one request.
        assert_eq!((keys.len(), lists), (900, 1), "{name}");
        // Past the first page the end is found by probing: 1,500 entries overshoot
        // the gallop (probes after 2,000, 1,500, then 1,250) and 2,600 end within it
        // (after 2,000); a whole listing would read every key.
        fill(&store, 901, 1500).await;
        let (keys, lists) = tail(&store, 1500).await;
        if !local {
            assert_eq!((keys.len(), lists), (250, 4), "{name}");
        }
        fill(&store, 1501, 2600).await;
        let (keys, lists) = tail(&store, 2600).await;
        if local {
            // A local folder is read whole, one directory read.
            assert_eq!((keys.len(), lists), (2600, 1), "{name}");
        } else {
            assert_eq!((keys.len(), lists), (600, 2), "{name}");
        }
        // A key no number reads, sorting after every entry, is not the end.
        store
            .inner
            .put(&Path::from("log/zz-stray"), Bytes::from_static(b"x").into())
            .await
            .unwrap();
        let keys = store.log_keys_tail().await.unwrap();
        let entries: Vec<&String> = keys
            .iter()
            .filter(|k| tlog::entry_seq(k).is_some())
            .collect();
        assert_eq!(entries.last(), Some(&&tlog::entry_key(2600)), "{name}");
    }
}
