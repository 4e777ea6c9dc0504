//! How many requests a [`Store`](crate::Store) made, by kind: what `cargo xtask bench`
//! reports per stage (docs/performance.md). Counted, not timed, so the numbers are
//! the same on any machine and a change that adds a round trip shows up as a number.
//!
//! One count per request the store would make to a bucket: a local folder's reads
//! are counted the same way (one `get` per object of a bulk read), so the two
//! backends' counts compare. A read of an object the process had already read is
//! counted again as `repeated`: what a stage reads once it can keep, so a repeat is
//! a request (on a bucket, a round trip) that need not have been made.
//!
//! Requests in flight at the same time cost a bucket's latency once, so what a stage
//! waits on is not its requests but its round trips: the longest run of requests
//! each made after the one before had been answered ([`Requests::round_trips`]).
//! That is the one count here read off the clock (when each request began and
//! ended). Requests sent together always overlap; but when answers take different
//! times (a server answering one request at a time, a local folder's threads), a
//! request of one run of reads can end before an independent one begins and the
//! two chain by chance, so the count can exceed what the code waits for. Behind a
//! fixed latency, as a bucket's network adds, that cannot happen: the tests count
//! round trips that way (`tests/it/round_trips.rs`).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

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
    /// When each finished request began and ended.
    intervals: Mutex<Vec<(Instant, Instant)>>,
}

/// A request in flight: when dropped (answered, failed or abandoned), its interval is
/// noted for [`Requests::round_trips`].
#[must_use = "the request's interval ends when this is dropped"]
pub(crate) struct InFlight<'a> {
    counter: &'a Counter,
    began: Instant,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.counter
            .intervals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((self.began, Instant::now()));
    }
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
    /// One request of `kind`, in flight until the result is dropped.
    pub(crate) fn add(&self, kind: Kind) -> InFlight<'_> {
        let counter = match kind {
            Kind::Head => &self.head,
            Kind::Put => &self.put,
            Kind::List => &self.list,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.in_flight()
    }

    fn in_flight(&self) -> InFlight<'_> {
        InFlight {
            counter: self,
            began: Instant::now(),
        }
    }

    /// One get of each of `keys` (also in a bulk read), and a repeat for each key
    /// this process had read before; in flight, as one round trip, until the result
    /// is dropped (a bucket's bulk read calls this per key, so each get is its own).
    pub(crate) fn read<'a>(&self, keys: impl IntoIterator<Item = &'a str>) -> InFlight<'_> {
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
        drop(seen);
        self.in_flight()
    }

    pub(crate) fn snapshot(&self) -> Requests {
        Requests {
            get: self.get.load(Ordering::Relaxed),
            head: self.head.load(Ordering::Relaxed),
            put: self.put.load(Ordering::Relaxed),
            list: self.list.load(Ordering::Relaxed),
            repeated: self.repeated.load(Ordering::Relaxed),
            round_trips: round_trips(
                &self
                    .intervals
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner),
            ),
        }
    }
}

/// The most requests of `intervals` that ran one after another, each beginning after
/// the one before ended: the round trips a caller waited through. Taking, each time,
/// the request that ends first among those beginning after the last one taken gives
/// the longest such run (the classic interval-scheduling argument).
fn round_trips(intervals: &[(Instant, Instant)]) -> u64 {
    let mut by_end: Vec<&(Instant, Instant)> = intervals.iter().collect();
    by_end.sort_by_key(|(_, end)| *end);
    let mut last_end: Option<Instant> = None;
    let mut trips = 0;
    for (began, end) in by_end {
        if last_end.is_none_or(|last| *began >= last) {
            trips += 1;
            last_end = Some(*end);
        }
    }
    trips
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
    /// The longest run of requests made one after another, each after the one
    /// before was answered: what a stage waits on a bucket's latency for (not a kind
    /// of request either).
    #[serde(default)]
    pub round_trips: u64,
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
            // Stores used one after another: their round trips add up.
            round_trips: self.round_trips + o.round_trips,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{round_trips, Requests};
    use crate::{testing, ObjectKey, PutOutcome};
    use ledger_core::{ArtifactKind, ArtifactRef, GitSha};
    use std::time::{Duration, Instant};

    /// Every request is counted once, by kind, the same way on a local folder and on a
    /// bucket: a bulk read of three objects is three gets, a retried identical put is
    /// the get that compares it (on a bucket, after the conditional put that found it
    /// there), clones share one count, and a get of an object read before is also a
    /// repeat.
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
            let bucket = u64::from(store.local_root.is_none());
            assert_eq!(
                got,
                start
                    + Requests {
                        get: 1 + 1 + 3,
                        head: 1,
                        put: 3 + bucket,
                        list: 1,
                        // The bulk read's first two objects had been read before.
                        repeated: 2,
                        // One after another, each put, get, head, list and the
                        // read-back of the second put alike; the bulk read is one.
                        round_trips: 8 + bucket,
                    },
                "{}",
                store.location()
            );
            assert_eq!(got.total(), start.total() + 10 + bucket);
            assert_eq!(clone.requests(), got);
        }
    }

    /// Round trips are the longest run of requests each begun after the one before
    /// ended: overlapping requests are one, touching ones (one begins the instant the
    /// other ends) are two, and a long request does not hide the short ones beside it.
    #[test]
    fn round_trips_are_the_longest_run_of_requests_one_after_another() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let trip = |a: u64, b: u64| (at(a), at(b));
        assert_eq!(round_trips(&[]), 0);
        assert_eq!(round_trips(&[trip(0, 5)]), 1);
        // Sent together: one round trip, however many and in whatever order.
        assert_eq!(round_trips(&[trip(0, 9), trip(1, 5), trip(2, 7)]), 1);
        // One after another, listed in any order.
        assert_eq!(round_trips(&[trip(10, 15), trip(0, 5), trip(5, 10)]), 3);
        // A slow request beside three quick ones in a row: the three count.
        assert_eq!(
            round_trips(&[trip(0, 30), trip(1, 5), trip(6, 10), trip(11, 20)]),
            3
        );
        // Two bulk reads in a row, each of requests sent together.
        let bulk = [trip(0, 4), trip(0, 6), trip(1, 5), trip(7, 9), trip(7, 12)];
        assert_eq!(round_trips(&bulk), 2);
    }

    /// The same on a store: requests awaited one by one are a round trip each;
    /// requests sent together (joined, or a bucket's bulk read) are one on a bucket,
    /// where none can be answered before the others are sent. A local folder's read
    /// can finish on its thread before the next one is sent (a loaded machine, the
    /// sender paused): what happened is counted, so there they are one to three.
    #[tokio::test]
    async fn requests_sent_together_are_one_round_trip_on_a_bucket() {
        let sha = GitSha::parse("0123456789abcdef0123456789abcdef01234567").unwrap();
        let tmp = tempfile::tempdir().unwrap();
        for (name, store) in testing::backends(&tmp.path().join("store"), "trips").await {
            let keys: Vec<ObjectKey> = (1..=4)
                .map(|a| ObjectKey::from_artifact(&ArtifactRef::new(ArtifactKind::Smoke, sha, a)))
                .collect();
            let before = store.requests().round_trips;
            for k in &keys {
                store.put_create(k, "x").await.unwrap();
            }
            let (a, b, c) = tokio::join!(
                store.get(&keys[0]),
                store.list("smoke/"),
                store.map_many(keys.clone(), 16, |b| b.len())
            );
            a.unwrap();
            b.unwrap();
            c.unwrap();
            store.get(&keys[1]).await.unwrap();
            let trips = store.requests().round_trips - before;
            if name.starts_with("local:") {
                assert!((4 + 1 + 1..=4 + 3 + 1).contains(&trips), "local: {trips}");
            } else {
                assert_eq!(trips, 4 + 1 + 1, "{}", store.location());
            }
        }
    }
}
