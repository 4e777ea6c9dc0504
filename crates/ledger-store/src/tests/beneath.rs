//! Reads opened beneath the store's folder (`openat2`) against reads that check
//! each folder first: the same refusals for every planted problem, and no window
//! for a folder swapped for a link while reading.

use super::*;
use crate::local::{self, Root};
use std::os::unix::fs::symlink;
use std::path::Path;

const LIMIT: usize = 64;

/// A store folder with one planted problem per key, and a copy of real evidence
/// outside it that every link points at.
fn planted(tmp: &Path) -> (std::path::PathBuf, Vec<ObjectKey>) {
    let root = tmp.join("store");
    let outside = tmp.join("outside");
    for (folder, text) in [(&root, "evidence"), (&outside, "OUTSIDE")] {
        std::fs::create_dir_all(folder.join("a/b")).unwrap();
        std::fs::write(folder.join("a/b/real.json"), text).unwrap();
    }
    std::fs::write(root.join("a/b/big.json"), [b'x'; LIMIT + 1]).unwrap();
    std::fs::write(root.join("a/b/limit.json"), [b'x'; LIMIT]).unwrap();
    // A linked folder at each depth, a linked file, a loop and a dangling link.
    symlink(&outside, root.join("top")).unwrap();
    symlink(outside.join("a"), root.join("a/mid")).unwrap();
    symlink(outside.join("a/b/real.json"), root.join("a/b/link.json")).unwrap();
    symlink("loop.json", root.join("a/b/loop.json")).unwrap();
    symlink(tmp.join("nowhere"), root.join("a/b/dangling.json")).unwrap();
    // Links that stay inside the store: to a real folder beside, and to a real file.
    symlink("b", root.join("a/alias")).unwrap();
    symlink("real.json", root.join("a/b/inside.json")).unwrap();
    // Files where folders belong, at two depths; a FIFO; a folder where a file is.
    std::fs::write(root.join("file"), "not a folder").unwrap();
    std::fs::write(root.join("a/file"), "not a folder").unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        root.join("a/b/fifo.json"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    std::fs::create_dir(root.join("a/b/folder.json")).unwrap();
    let keys = [
        "a/b/real.json",
        "a/b/big.json",
        "a/b/limit.json",
        "top/b/real.json",
        "top/a/b/real.json",
        "a/mid/b/real.json",
        "a/b/link.json",
        "a/b/loop.json",
        "a/b/dangling.json",
        "a/alias/real.json",
        "a/b/inside.json",
        "file/b/real.json",
        "a/file/real.json",
        "a/b/fifo.json",
        "a/b/folder.json",
        "a/b/absent.json",
        "absent/b/real.json",
    ];
    let keys = keys.iter().map(|k| ObjectKey::parse(k).unwrap()).collect();
    (root, keys)
}

/// What a read came to, comparable across both ways of reading.
fn outcome(read: &Result<Option<Bytes>, StoreError>) -> String {
    match read {
        Ok(Some(bytes)) => format!("read {:?}", String::from_utf8_lossy(bytes)),
        Ok(None) => "absent".to_owned(),
        Err(StoreError::NotRegular { key, what }) => format!("refused {key}: {what}"),
        Err(StoreError::TooLarge { key, .. }) => format!("too large {key}"),
        Err(e) => format!("failed: {e}"),
    }
}

/// Every planted problem is refused alike by a read opened beneath the folder and
/// by one that checks the folders first, single and in bulk, naming the same part;
/// nothing outside the folder is ever read.
#[test]
fn both_ways_of_reading_refuse_the_same_things() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, keys) = planted(tmp.path());
    let beneath = Root::new(&root);
    let checking = Root::checking_folders(&root);
    assert!(
        beneath.opens_beneath(),
        "openat2 is refused on this machine: the race it closes stays open"
    );
    assert!(!checking.opens_beneath());
    let bulk = |root: &Root| -> Vec<String> {
        let read = local::map_many(root, "loc", &keys, LIMIT, &|b| b).unwrap();
        read.into_iter()
            .map(|r| outcome(&r.map_or(Ok(None), |r| r.map(Some))))
            .collect()
    };
    let single = |root: &Root| -> Vec<String> {
        keys.iter()
            .map(|k| outcome(&local::read(root, "loc", k, LIMIT)))
            .collect()
    };
    let expected = single(&checking);
    for (k, got) in keys.iter().zip(&expected) {
        assert!(!got.contains("OUTSIDE"), "{k}: {got}");
    }
    let of = |key: &str| &expected[keys.iter().position(|k| k.as_str() == key).unwrap()];
    assert_eq!(of("a/b/real.json"), r#"read "evidence""#);
    assert_eq!(of("top/b/real.json"), "refused top: a symbolic link");
    assert_eq!(of("a/mid/b/real.json"), "refused a/mid: a symbolic link");
    assert_eq!(of("a/alias/real.json"), "refused a/alias: a symbolic link");
    assert_eq!(
        of("a/b/inside.json"),
        "refused a/b/inside.json: a symbolic link"
    );
    let under_file = "refused a/file: a file where a folder belongs";
    assert_eq!(of("a/file/real.json"), under_file);
    assert_eq!(of("a/b/absent.json"), "absent");
    assert_eq!(single(&beneath), expected);
    assert_eq!(bulk(&beneath), expected);
    assert_eq!(bulk(&checking), expected);
}

/// A SHA's folder swapped with a link to a copy elsewhere in the store, atomically
/// and over and over (`renameat2` with `RENAME_EXCHANGE`), while the same key is
/// read alone and in bulk: every read gives the real evidence or a refusal, never
/// the copy, and the swaps did land between reads (some were refused), so the race
/// was run.
#[test]
fn a_folder_swapped_for_a_link_while_reading_is_never_read_through() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, outside) = sha_folder_and_copy(tmp.path());
    std::fs::write(root.join("commit/sha/x/1.json"), "evidence").unwrap();
    std::fs::write(outside.join("commit/sha/x/1.json"), "OUTSIDE").unwrap();
    let key = ObjectKey::parse("commit/sha/x/1.json").unwrap();
    let keys = vec![key.clone(); 8];
    let (mut real, mut refused) = (0, 0);
    while_swapping(&root, 4000, |store, _, round| {
        let reader = store.local_root.as_deref().unwrap();
        let reads: Vec<_> = if round % 2 == 0 {
            vec![local::read(reader, "loc", &key, LIMIT)]
        } else {
            local::map_many(reader, "loc", &keys, LIMIT, &|b| b)
                .unwrap()
                .into_iter()
                .map(|r| r.map_or(Ok(None), |r| r.map(Some)))
                .collect()
        };
        for read in &reads {
            match outcome(read).as_str() {
                r#"read "evidence""# => real += 1,
                r if r.starts_with("refused commit/sha") => refused += 1,
                other => panic!("round {round}: {other}"),
            }
        }
    });
    assert!(real > 0 && refused > 0, "{real} real, {refused} refused");
}

/// A store folder under `tmp` with an empty `commit/sha/x/`, and a copy of that
/// layout elsewhere in the store (`copies/`) that `commit/link` leads to by a
/// relative path; returns both roots. A link that stays beneath the store's folder
/// is refused only by `RESOLVE_NO_SYMLINKS`, not by `RESOLVE_BENEATH`.
fn sha_folder_and_copy(tmp: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let root = tmp.join("store");
    let copy = root.join("copies");
    for folder in [&root, &copy] {
        std::fs::create_dir_all(folder.join("commit/sha/x")).unwrap();
    }
    symlink("../copies/commit/sha", root.join("commit/link")).unwrap();
    (root, copy)
}

/// Runs `round` `rounds` times against the local store at `root` (read and written
/// beneath its folder), while another thread exchanges its `commit/sha` and
/// `commit/link` with `renameat2(RENAME_EXCHANGE)` over and over; the swapping ends
/// however the rounds end, a failed assertion among them.
fn while_swapping(
    root: &Path,
    rounds: u32,
    mut round: impl FnMut(&Store, &tokio::runtime::Runtime, u32),
) {
    use std::sync::atomic::{AtomicBool, Ordering};
    struct StopOnDrop<'a>(&'a AtomicBool);
    impl Drop for StopOnDrop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let store = runtime.block_on(Store::open(StoreLocation::Local(root.to_owned())));
    let store = store.unwrap();
    let opens_beneath = store.local_root.as_ref().unwrap().opens_beneath();
    assert!(opens_beneath, "openat2 is refused on this machine");
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let folder = root.join("commit");
            while !stop.load(Ordering::Relaxed) {
                rustix::fs::renameat_with(
                    rustix::fs::CWD,
                    folder.join("sha"),
                    rustix::fs::CWD,
                    folder.join("link"),
                    rustix::fs::RenameFlags::EXCHANGE,
                )
                .unwrap();
            }
        });
        let _stop = StopOnDrop(&stop);
        for n in 0..rounds {
            round(&store, &runtime, n);
        }
    });
}

/// A local store over `root` whose reads and writes check the folders first, as
/// where `openat2` is refused.
pub(super) fn checking_store(root: &Path) -> Store {
    let fs = object_store::local::LocalFileSystem::new_with_prefix(root)
        .unwrap()
        .with_fsync(true);
    Store {
        local_root: Some(Arc::new(Root::checking_folders(root))),
        ..Store::from_object_store(Arc::new(fs), "loc")
    }
}

/// Every file under `dir`, with its bytes.
fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else {
                let name = path.strip_prefix(dir).unwrap().display().to_string();
                out.push((name, std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// A write beneath the folder refuses a linked folder at every depth and a file
/// where a folder belongs, naming the part as the folder-checking store does,
/// writes nothing outside, makes missing folders as real ones and never
/// overwrites.
#[tokio::test]
async fn writes_beneath_refuse_what_the_folder_checks_refuse() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, _) = planted(tmp.path());
    let outside = tmp.path().join("outside");
    let before = files_under(&outside);
    let beneath = Root::new(&root);
    let checking = checking_store(&root);
    for key in [
        "top/b/new.json",
        "top/new.json",
        "a/mid/b/new.json",
        "a/mid/new.json",
        "file/new.json",
        "a/file/new.json",
        "a/b/link.json",
        "a/b/dangling.json",
    ] {
        let key = ObjectKey::parse(key).unwrap();
        let direct = local::create(&beneath, "loc", &key, b"new").unwrap();
        let through_store = checking.put_create(&key, &b"new"[..]).await;
        match (&direct, &through_store) {
            (Ok(false), Err(StoreError::NotRegular { .. })) => {} // the name is a link
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{key}"),
            other => panic!("{key}: {other:?}"),
        }
    }
    assert_eq!(files_under(&outside), before);
    let deep = ObjectKey::parse("new/x/y/z.json").unwrap();
    assert!(local::create(&beneath, "loc", &deep, b"deep")
        .unwrap()
        .unwrap());
    assert!(!local::create(&beneath, "loc", &deep, b"other")
        .unwrap()
        .unwrap());
    assert_eq!(std::fs::read(root.join("new/x/y/z.json")).unwrap(), b"deep");
    for folder in ["new", "new/x", "new/x/y"] {
        assert!(std::fs::symlink_metadata(root.join(folder))
            .unwrap()
            .is_dir());
    }
    let left: Vec<_> = files_under(&root.join("new"));
    assert_eq!(left, [("x/y/z.json".to_owned(), b"deep".to_vec())]);
}

/// A SHA's folder swapped with a link to another folder of the store, over and
/// over, while new objects are written into it through the store: each write lands
/// in the SHA's folder or is refused, and nothing ever appears in the other.
#[test]
fn a_folder_swapped_for_a_link_while_writing_is_never_written_through() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, outside) = sha_folder_and_copy(tmp.path());
    let (mut created, mut refused) = (0, 0);
    while_swapping(&root, 1500, |store, runtime, round| {
        let key = ObjectKey::parse(&format!("commit/sha/x/{round}.json")).unwrap();
        match runtime.block_on(store.put_create(&key, format!("{round}"))) {
            Ok(PutOutcome::Created) => created += 1,
            Err(StoreError::NotRegular { key, .. }) if key.starts_with("commit/sha") => {
                refused += 1
            }
            other => panic!("round {round}: {other:?}"),
        }
    });
    assert_eq!(files_under(&outside), []);
    assert!(
        created > 0 && refused > 0,
        "{created} created, {refused} refused"
    );
}

/// A SHA's folder swapped with a link to another folder of the store, over and
/// over, while the store lists it (as the listed folder, on the way to it, and
/// inside a listing of its parent): no listing names what only the other folder
/// holds; the folder is listed whole or as one object (the link), and both
/// happened, so the race was run.
#[test]
fn a_folder_swapped_for_a_link_while_listing_is_never_listed_through() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, outside) = sha_folder_and_copy(tmp.path());
    std::fs::write(root.join("commit/sha/x/1.json"), "x").unwrap();
    std::fs::write(outside.join("commit/sha/x/outside.json"), "x").unwrap();
    let (mut whole, mut as_object) = (0, 0);
    while_swapping(&root, 3000, |store, runtime, round| {
        // The link as the listed folder's last part, as a part on its way, and as
        // an entry of it.
        let prefix = ["commit/sha/", "commit/sha/x/", "commit/"][round as usize % 3];
        let listed = runtime.block_on(store.list(prefix)).unwrap();
        assert!(!listed.iter().any(|k| k.contains("outside")), "{listed:?}");
        if listed.iter().any(|k| k.ends_with("/x/1.json")) {
            whole += 1;
        }
        if listed
            .iter()
            .any(|k| k == "commit/sha" || k == "commit/link")
        {
            as_object += 1;
        }
    });
    assert!(
        whole > 0 && as_object > 0,
        "{whole} whole, {as_object} as one object"
    );
}
