//! Reads, listings and create-only writes of a local folder store with plain file
//! system calls, made on the caller's thread (a bulk read on every core).
//!
//! `object_store`'s `LocalFileSystem` hands each call to tokio's blocking pool
//! twice, which costs more than the call (a whole-store walk reads tens of
//! thousands of small files; a cold `verify` of a ten-artifact chain started 26
//! threads, a blocking thread per concurrent read, 8 now: docs/performance.md), and
//! it reaches files by path, through whatever the folders on the way have become
//! since they were checked. So this module reads the same files directly, on the
//! thread that asks; the runtime's other workers keep running spawned tasks. Where
//! the kernel can, keys are opened and written beneath the root in calls that
//! follow no link ([`beneath`]: its writes are the backend's own staged-file and
//! hard-link writes, made relative to the folder's descriptor); where it cannot,
//! each folder on the way is checked first and writes go to the backend. The key →
//! path mapping is the backend's own for the only keys that exist ([`ObjectKey`]
//! segments are `[a-z0-9._-]`, which it stores unescaped), and a missing file is
//! `None` exactly as `get` says.
//!
//! Nothing below the root is followed if it is a symbolic link, read if it is not a
//! regular file, or read past its limit ([`crate::file`]): a link inside the store
//! could point anywhere on the machine, and a FIFO would block a reader forever.
//! [`check_path`] is also what `Store::put_create` runs before every local write:
//! it names what is wrong, and an object already there is compared, not written.

mod beneath;
mod list;

pub(crate) use beneath::Root;
pub(crate) use list::list;

use crate::file::{describe, read_opened, read_regular, FileError, Links};
use crate::{BulkRead, ObjectKey, StoreError};
use beneath::{Opened, Written};
use bytes::Bytes;
use std::collections::hash_map::{Entry, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Below this many files a reading thread costs more than it saves: starting one
/// takes tens of microseconds, about what reading a small file takes, and a stage's
/// gate makes many reads of one or two files.
const MIN_PER_THREAD: usize = 4;

/// Reads `keys` under `root` on every core (on this thread alone for a few),
/// mapping each file's bytes as it is read.
pub(crate) fn map_many<T: Send>(
    root: &Root,
    location: &str,
    keys: &[ObjectKey],
    limit: usize,
    map: &(dyn Fn(Bytes) -> T + Sync),
) -> Result<Vec<BulkRead<T>>, StoreError> {
    let threads = cores().min(keys.len() / MIN_PER_THREAD).max(1);
    tracing::debug!(
        keys = keys.len(),
        threads,
        "reading the local folder directly"
    );
    // Where each key is opened beneath the root, nothing is checked first. Else each
    // folder on the way is checked once for the batch, not once per file in it (a
    // log of a few hundred entries in one folder); a file in a folder that is not a
    // real one is read as before, so that its error is its own.
    let checked = match root.opens_beneath() {
        true => HashMap::new(),
        false => check_folders(root.path(), location, keys)?,
    };
    let one = |key: &ObjectKey| match read_from(root, location, key, limit, &checked) {
        Ok(bytes) => Ok(bytes.map(|b| Ok(map(b)))),
        // This object cannot be evidence; the others still can.
        Err(e) if e.is_object_problem() => Ok(Some(Err(e))),
        Err(e) => Err(e),
    };
    if threads == 1 {
        return keys.iter().map(one).collect();
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, BulkRead<T>)>> = Mutex::new(Vec::with_capacity(keys.len()));
    let failure: Mutex<Option<StoreError>> = Mutex::new(None);
    let work = || {
        let mut mine = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(key) = keys.get(i) else { break };
            match one(key) {
                Ok(got) => mine.push((i, got)),
                Err(e) => {
                    tracing::debug!(key = key.as_str(), "reading the file failed");
                    *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                    // Stop every thread: the read as a whole has failed.
                    next.store(keys.len(), Ordering::Relaxed);
                    break;
                }
            }
        }
        results
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .append(&mut mine);
    };
    // The calling thread reads too: one thread fewer to start.
    std::thread::scope(|scope| {
        for _ in 1..threads {
            scope.spawn(work);
        }
        work();
    });
    if let Some(e) = failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    let mut results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    results.sort_unstable_by_key(|(i, _)| *i);
    Ok(results.into_iter().map(|(_, v)| v).collect())
}

/// The cores this process may use, asked once: `available_parallelism` reads the
/// cgroup's CPU quota from `/proc` and `/sys` on every call, which a short command
/// that splits several small batches of reads and checks paid each time
/// (docs/performance.md). Also what `ledger-verify` spreads its checks over.
pub fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES
        .get_or_init(|| std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get))
}

/// The folders holding `keys` (each as its key's part before the last `/`), each
/// checked once with [`check_path`]: `true` when sound (real folders all the way,
/// or not there at all), `false` for a link or a file on the way; a failure to look
/// is the batch's.
fn check_folders<'k>(
    root: &Path,
    location: &str,
    keys: &'k [ObjectKey],
) -> Result<HashMap<&'k str, bool>, StoreError> {
    let mut checked = HashMap::new();
    for key in keys {
        let Some((folder, _)) = key.as_str().rsplit_once('/') else {
            continue;
        };
        if let Entry::Vacant(slot) = checked.entry(folder) {
            slot.insert(match check_path(root, location, folder, Last::Folder) {
                Ok(_) => true,
                Err(e) if e.is_object_problem() => false,
                Err(e) => return Err(e),
            });
        }
    }
    Ok(checked)
}

/// [`read`], skipping the folder check for a key whose folder `checked` found sound
/// (where keys are not opened beneath the root).
fn read_from(
    root: &Root,
    location: &str,
    key: &ObjectKey,
    limit: usize,
    checked: &HashMap<&str, bool>,
) -> Result<Option<Bytes>, StoreError> {
    let sound = |folder| checked.get(folder) == Some(&true);
    match key.as_str().rsplit_once('/') {
        Some((folder, _)) if !root.opens_beneath() && sound(folder) => {
            read_file(root.path(), location, key, limit)
        }
        _ => read(root, location, key, limit),
    }
}

/// One file, at most `limit` bytes; `None` when absent. A symbolic link, a FIFO or
/// any other special file at `key` or on the way to it is refused, not read.
pub(crate) fn read(
    root: &Root,
    location: &str,
    key: &ObjectKey,
    limit: usize,
) -> Result<Option<Bytes>, StoreError> {
    let file = match root.open(key.as_str()) {
        Opened::File(file) => file,
        Opened::Absent => return Ok(None),
        Opened::Refused(e) => return Err(refusal(root.path(), location, key, &e)),
        Opened::Failed(e) => return Err(io_failure(location, format!("reading {key}"), e)),
        Opened::Unsupported => {
            check_path(root.path(), location, key.as_str(), Last::Unchecked)?;
            return read_file(root.path(), location, key, limit);
        }
    };
    read_result(location, key, read_opened(file, limit))
}

/// Creates `key` with `bytes` beneath the root (write-once: `Ok(false)` when
/// something is there already); `None` where `openat2` is refused, for the backend's
/// own write after the folder checks. Made on the caller's thread, as reads are.
pub(crate) fn create(
    root: &Root,
    location: &str,
    key: &ObjectKey,
    bytes: &[u8],
) -> Option<Result<bool, StoreError>> {
    Some(match root.create(key.as_str(), bytes) {
        Written::Created => Ok(true),
        Written::Exists => Ok(false),
        Written::Refused(e) => Err(refusal(root.path(), location, key, &e)),
        Written::Failed(e) => Err(io_failure(location, format!("writing {key}"), e)),
        Written::Unsupported => return None,
    })
}

/// Why opening `key` beneath the root was refused (`e`: a link or a file on the
/// way), as the folder checks name it: the part that is wrong and what it is. When
/// they find nothing (put back since), the key itself is named.
fn refusal(root: &Path, location: &str, key: &ObjectKey, e: &std::io::Error) -> StoreError {
    if let Err(named) = check_path(root, location, key.as_str(), Last::File) {
        return named;
    }
    StoreError::NotRegular {
        key: key.as_str().to_owned(),
        what: match e.raw_os_error() {
            Some(libc::ENOTDIR) => "under a file where a folder belongs when it was opened",
            _ => "under a symbolic link when it was opened",
        }
        .to_owned(),
    }
}

/// [`read`] of a key whose folders have been checked: the file itself is opened
/// without following a link and read only if it is a regular file.
fn read_file(
    root: &Path,
    location: &str,
    key: &ObjectKey,
    limit: usize,
) -> Result<Option<Bytes>, StoreError> {
    read_result(
        location,
        key,
        read_regular(&root.join(key.as_str()), limit, Links::Refuse),
    )
}

/// A file's read as the store reports it.
fn read_result(
    location: &str,
    key: &ObjectKey,
    read: Result<Vec<u8>, FileError>,
) -> Result<Option<Bytes>, StoreError> {
    let refused = |what: &str| StoreError::NotRegular {
        key: key.as_str().to_owned(),
        what: what.to_owned(),
    };
    match read {
        Ok(bytes) => Ok(Some(Bytes::from(bytes))),
        Err(FileError::NotFound) => Ok(None),
        Err(FileError::NotRegular(what)) => Err(refused(what)),
        Err(FileError::TooLarge { size, limit }) => Err(StoreError::TooLarge {
            key: key.as_str().to_owned(),
            size,
            limit,
        }),
        Err(FileError::Io(e)) => Err(io_failure(location, format!("reading {key}"), e)),
    }
}

/// What the last part of a path checked by [`check_path`] must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Last {
    /// Not checked (the read that follows refuses a link itself).
    Unchecked,
    /// A regular file, if it exists.
    File,
    /// A folder, if it exists.
    Folder,
}

/// Checks the folders on the way from `root` to `key` (and `key` itself, as `last`
/// says): each must be a real folder (the file a regular file), never a symbolic
/// link, so nothing is read or written outside the store. A missing part ends the
/// check: what does not exist yet is created by the write as a real folder.
/// Returns whether every part checked exists (with [`Last::File`]: the file is
/// there).
pub(crate) fn check_path(
    root: &Path,
    location: &str,
    key: &str,
    last_is: Last,
) -> Result<bool, StoreError> {
    let segments: Vec<&str> = key.split('/').collect();
    let upto = if last_is == Last::Unchecked {
        segments.len().saturating_sub(1)
    } else {
        segments.len()
    };
    let mut path = root.to_path_buf();
    for (i, segment) in segments.iter().enumerate().take(upto) {
        path.push(segment);
        let kind = match std::fs::symlink_metadata(&path) {
            Ok(meta) => meta.file_type(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => {
                return Err(io_failure(
                    location,
                    format!("checking {}", path.display()),
                    e,
                ))
            }
        };
        let file = i + 1 == segments.len() && last_is == Last::File;
        let what = match (file, kind.is_symlink(), kind.is_dir(), kind.is_file()) {
            (_, true, _, _) => "a symbolic link",
            (false, _, true, _) | (true, _, _, true) => continue,
            (false, _, _, _) => "a file where a folder belongs",
            (true, _, _, _) => describe(kind),
        };
        return Err(StoreError::NotRegular {
            key: segments[..=i].join("/"),
            what: what.to_owned(),
        });
    }
    Ok(true)
}

/// A file system call under the store that failed: the store is failing (exit 5),
/// reported as the backend reports its own I/O errors.
fn io_failure(location: &str, doing: String, e: std::io::Error) -> StoreError {
    StoreError::Unreachable {
        location: location.to_owned(),
        source: object_store::Error::Generic {
            store: "LocalFileSystem",
            source: format!("{doing}: {e}").into(),
        },
    }
}
