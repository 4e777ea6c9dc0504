//! Bulk reads and listings of a local folder store with plain file system calls.
//!
//! Writes and single reads of a local store go through `object_store`'s
//! `LocalFileSystem` like every other backend, so the write-once rule has one home.
//! Whole-store walks read tens of thousands of small files; there, the backend's two
//! hops through tokio's blocking pool per read cost more than the read, so this module
//! reads the same files directly. The key → path mapping is the backend's own for the
//! only keys that exist ([`ObjectKey`] segments are `[a-z0-9._-]`, which it stores
//! unescaped), and a missing file is `None` exactly as `get` says.

use crate::{Listed, ObjectKey, StoreError};
use bytes::Bytes;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Reads `keys` under `root` on every core, mapping each file's bytes as it is read.
pub(crate) fn map_many<T: Send>(
    root: &Path,
    location: &str,
    keys: &[ObjectKey],
    limit: usize,
    map: &(dyn Fn(Bytes) -> T + Sync),
) -> Result<Vec<Option<T>>, StoreError> {
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .min(keys.len().max(1));
    tracing::debug!(
        keys = keys.len(),
        threads,
        "reading the local folder directly"
    );
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Option<T>)>> = Mutex::new(Vec::with_capacity(keys.len()));
    let failure: Mutex<Option<StoreError>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let mut mine = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(key) = keys.get(i) else { break };
                    match read(root, location, key, limit) {
                        Ok(bytes) => mine.push((i, bytes.map(map))),
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
            });
        }
    });
    if let Some(e) = failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    let mut results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    results.sort_unstable_by_key(|(i, _)| *i);
    Ok(results.into_iter().map(|(_, v)| v).collect())
}

/// One file, at most `limit` bytes; `None` when absent.
fn read(
    root: &Path,
    location: &str,
    key: &ObjectKey,
    limit: usize,
) -> Result<Option<Bytes>, StoreError> {
    let failed = |e| io_failure(location, format!("reading {key}"), e);
    let too_large = |size: u64| StoreError::TooLarge {
        key: key.as_str().to_owned(),
        size,
        limit,
    };
    let mut file = match std::fs::File::open(root.join(key.as_str())) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(failed(e)),
    };
    let size = file.metadata().map_err(failed)?.len();
    if size > limit as u64 {
        return Err(too_large(size));
    }
    let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(limit));
    // One byte past the limit tells a file that grew since its size was read.
    (&mut file)
        .take(limit as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(failed)?;
    if buf.len() > limit {
        return Err(too_large(buf.len() as u64));
    }
    Ok(Some(Bytes::from(buf)))
}

/// Every object under `root/prefix` (`prefix` without its trailing `/`), as
/// `object_store`'s local listing reports them: every file, symbolic links followed,
/// without its in-progress writes (`NAME#DIGITS`), with size and write time. One
/// `stat` per file and none of the backend's path-to-URL conversions, which made its
/// listing cost more than reading the same files.
pub(crate) fn list(root: &Path, location: &str, prefix: &str) -> Result<Vec<Listed>, StoreError> {
    let failed = |path: &Path, e| io_failure(location, format!("listing {}", path.display()), e);
    let mut out = Vec::new();
    let mut folders = vec![(root.join(prefix), prefix.to_owned())];
    while let Some((dir, key)) = folders.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(failed(&dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| failed(&dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let child = if key.is_empty() {
                name.clone()
            } else {
                format!("{key}/{name}")
            };
            let meta = match std::fs::metadata(entry.path()) {
                Ok(m) => m,
                // Gone since the folder was read (or a dangling link): not an object.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(failed(&entry.path(), e)),
            };
            if meta.is_dir() {
                folders.push((entry.path(), child));
            } else if meta.is_file() && !in_progress(&name) {
                out.push(Listed {
                    key: child,
                    size: meta.len(),
                    modified: meta.modified().map_err(|e| failed(&entry.path(), e))?,
                });
            }
        }
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    tracing::debug!(prefix, files = out.len(), "listed the local folder");
    Ok(out)
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

/// Whether `name` is one of the backend's in-progress writes: `NAME#DIGITS`.
fn in_progress(name: &str) -> bool {
    name.split_once('#')
        .is_some_and(|(_, suffix)| !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_digit()))
}
