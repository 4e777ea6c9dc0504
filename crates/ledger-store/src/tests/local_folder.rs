//! The local folder's own reads and listings against the single reads and the
//! backend's listing they stand in for.

use super::beneath;
use super::*;

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
    // Listed by descriptor, and by path as where `openat2` is refused.
    for store in [store, checking(tmp.path())] {
        listing_matches_the_backends_own(&store).await;
    }
}

async fn listing_matches_the_backends_own(store: &Store) {
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
    for store in [store, checking(tmp.path())] {
        listing_after_is_the_listing_past(&store).await;
    }
}

/// The folder-checking store over `local`'s folder.
fn checking(dir: &std::path::Path) -> Store {
    beneath::checking_store(&dir.join("store"))
}

async fn listing_after_is_the_listing_past(store: &Store) {
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
