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
    assert_eq!(expected[0], r#"read "evidence""#);
    assert_eq!(expected[3], "refused top: a symbolic link");
    assert_eq!(expected[5], "refused a/mid: a symbolic link");
    assert_eq!(
        expected[10],
        "refused a/file: a file where a folder belongs"
    );
    assert_eq!(expected[13], "absent");
    assert_eq!(single(&beneath), expected);
    assert_eq!(bulk(&beneath), expected);
    assert_eq!(bulk(&checking), expected);
}

/// A SHA's folder swapped with a link to a copy outside, atomically and over and
/// over (`renameat2` with `RENAME_EXCHANGE`), while the same key is read alone and in
/// bulk: every read gives the real evidence or a refusal, never the copy, and the
/// swaps did land between reads (some were refused), so the race was run.
#[test]
fn a_folder_swapped_for_a_link_while_reading_is_never_read_through() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let outside = tmp.path().join("outside");
    for (folder, text) in [(&root, "evidence"), (&outside, "OUTSIDE")] {
        std::fs::create_dir_all(folder.join("commit/sha/x")).unwrap();
        std::fs::write(folder.join("commit/sha/x/1.json"), text).unwrap();
    }
    symlink(outside.join("commit/sha"), root.join("commit/link")).unwrap();
    let key = ObjectKey::parse("commit/sha/x/1.json").unwrap();
    let keys = vec![key.clone(); 8];
    let reader = Root::new(&root);
    assert!(reader.opens_beneath(), "openat2 is refused on this machine");
    let stop = AtomicBool::new(false);
    let (mut real, mut refused) = (0, 0);
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
        // Ends the swapping however the reads end, a failed assertion among them.
        let _stop = StopOnDrop(&stop);
        for round in 0..4000 {
            let reads: Vec<_> = if round % 2 == 0 {
                vec![local::read(&reader, "loc", &key, LIMIT)]
            } else {
                local::map_many(&reader, "loc", &keys, LIMIT, &|b| b)
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
        }
    });
    assert!(real > 0 && refused > 0, "{real} real, {refused} refused");
}

struct StopOnDrop<'a>(&'a std::sync::atomic::AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}
