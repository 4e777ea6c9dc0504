//! How many requests a [`Store`](crate::Store) made, by kind: what `cargo xtask bench`
//! reports per stage (docs/performance.md). Counted, not timed, so the numbers are
//! the same on any machine and a change that adds a round trip shows up as a number.
//!
//! One count per request the store would make to a bucket: a local folder's reads
//! are counted the same way (one `get` per object of a bulk read), so the two
//! backends' counts compare. A read of an object the process had already read is
//! counted again as `repeated`: what a stage reads once it can keep, so a repeat is
//! a request (on a bucket, a round trip) that need not have been made.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// The running counts of one opened store (shared by its clones).
#[derive(Debug, Default)]
pub(crate) struct Counter {
    get: AtomicU64,
    head: AtomicU64,
    put: AtomicU64,
    list: AtomicU64,
    repeated: AtomicU64,
    /// Every key read so far, to count the repeats.
    read: Mutex<HashSet<String>>,
}

/// Which kind of request.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    /// Asking whether an object exists, or when it was written.
    Head,
    /// A create-only write.
    Put,
    /// A listing (one per listing call, however many pages a bucket returns).
    List,
}

impl Counter {
    pub(crate) fn add(&self, kind: Kind, n: u64) {
        let counter = match kind {
            Kind::Head => &self.head,
            Kind::Put => &self.put,
            Kind::List => &self.list,
        };
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// One get of each of `keys` (also in a bulk read), and a repeat for each key
    /// this process had read before.
    pub(crate) fn read<'a>(&self, keys: impl IntoIterator<Item = &'a str>) {
        let mut seen = self.read.lock().unwrap_or_else(PoisonError::into_inner);
        let (mut gets, mut repeats) = (0, 0);
        for key in keys {
            gets += 1;
            if !seen.insert(key.to_owned()) {
                tracing::debug!(key, "read again");
                repeats += 1;
            }
        }
        self.get.fetch_add(gets, Ordering::Relaxed);
        self.repeated.fetch_add(repeats, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Requests {
        Requests {
            get: self.get.load(Ordering::Relaxed),
            head: self.head.load(Ordering::Relaxed),
            put: self.put.load(Ordering::Relaxed),
            list: self.list.load(Ordering::Relaxed),
            repeated: self.repeated.load(Ordering::Relaxed),
        }
    }
}

/// Requests made so far, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Requests {
    pub get: u64,
    pub head: u64,
    pub put: u64,
    pub list: u64,
    /// Of the gets, those of an object already read (not a kind of request of its
    /// own: [`Requests::total`] leaves it out).
    #[serde(default)]
    pub repeated: u64,
}

impl Requests {
    /// Every request, whatever its kind.
    pub fn total(&self) -> u64 {
        self.get + self.head + self.put + self.list
    }
}

impl std::ops::Add for Requests {
    type Output = Requests;
    fn add(self, o: Requests) -> Requests {
        Requests {
            get: self.get + o.get,
            head: self.head + o.head,
            put: self.put + o.put,
            list: self.list + o.list,
            repeated: self.repeated + o.repeated,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Requests;
    use crate::{testing, ObjectKey, PutOutcome};
    use ledger_core::{ArtifactKind, ArtifactRef, GitSha};

    /// Every request is counted once, by kind, the same way on a local folder and on a
    /// bucket: a bulk read of three objects is three gets, a retried identical put is a
    /// put and the get that compares it, clones share one count, and a get of an
    /// object read before is also a repeat.
    #[tokio::test]
    async fn requests_are_counted_alike_on_every_backend() {
        let sha = GitSha::parse("0123456789abcdef0123456789abcdef01234567").unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let stores = testing::backends(&tmp.path().join("store"), "requests").await;
        for (_, store) in stores {
            // Opening a bucket lists it once to prove it is reachable.
            let start = store.requests();
            assert!(start.total() <= 1, "{}: {start:?}", store.location());
            let keys: Vec<ObjectKey> = (1..=3)
                .map(|a| ObjectKey::from_artifact(&ArtifactRef::new(ArtifactKind::Commit, sha, a)))
                .collect();
            for k in &keys {
                store.put_create(k, "x").await.unwrap();
            }
            assert_eq!(
                store.put_create(&keys[0], "x").await.unwrap(),
                PutOutcome::AlreadyPresent
            );
            let clone = store.clone();
            clone.get(&keys[1]).await.unwrap();
            store.modified(&keys[2]).await.unwrap();
            let read = store.map_many(keys.clone(), 16, |b| b.len()).await.unwrap();
            assert_eq!(read.len(), 3);
            store.list("commit/").await.unwrap();
            let got = store.requests();
            assert_eq!(
                got,
                start
                    + Requests {
                        get: 1 + 1 + 3,
                        head: 1,
                        put: 4,
                        list: 1,
                        // The bulk read's first two objects had been read before.
                        repeated: 2,
                    },
                "{}",
                store.location()
            );
            assert_eq!(got.total(), start.total() + 11);
            assert_eq!(clone.requests(), got);
        }
    }
}
