//! Appending to the store's log (`ledger_core::tlog`): every object this process
//! created is named by an entry, written after the objects it names.
//!
//! Order and recovery: objects first, then their entry. A crash in between leaves
//! objects the log does not name; nothing the log names is ever missing because of a
//! crash, so a missing logged object always means deletion. Unlogged objects are not
//! evidence to any gate (the gate reads only what the log names), `verify` reports
//! them, and the next run of the same stage logs them ([`Store::adopt`]).
//!
//! Entries are create-only and numbered: two writers racing for entry *n* get one
//! winner, and the loser reads the winner's entry, links to it and takes *n + 1*, so
//! the log never forks and never has a gap.

use crate::{PutOutcome, Store, StoreError};
use bytes::Bytes;
use ledger_core::tlog::{self, LogEntry, LogHead, LoggedObject};
use ledger_core::Sha256Digest;
use object_store::path::Path;
use object_store::ObjectStoreExt;

/// How many times an append moves past a racing writer before giving up.
pub const MAX_APPEND_RACES: u32 = 1000;

/// The head of the log after an append: its size and last entry's SHA-256.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub size: u64,
    pub head: Sha256Digest,
}

impl Store {
    /// Records that this process wrote `key` (called by every create).
    pub(crate) fn note_written(&self, key: &str, bytes: &[u8]) {
        if tlog::unlogged(key) {
            return;
        }
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(LoggedObject {
                key: key.to_owned(),
                sha256: Sha256Digest::of(bytes),
            });
    }

    /// Adds an object that exists but the log does not name (a crashed writer's) to
    /// the next entry this process appends.
    pub fn adopt(&self, key: &str, sha256: Sha256Digest) {
        if tlog::unlogged(key) {
            return;
        }
        let mut pending = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !pending.iter().any(|o| o.key == key) {
            pending.push(LoggedObject {
                key: key.to_owned(),
                sha256,
            });
        }
    }

    async fn entry_exists(&self, seq: u64) -> Result<bool, StoreError> {
        self.check_local_path(&tlog::entry_key(seq), crate::local::Last::File)?;
        let trip = self.requests.add(crate::Kind::Head);
        let head = self.inner.head(&Path::from(tlog::entry_key(seq))).await;
        drop(trip);
        match head {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.unreachable(e)),
        }
    }

    /// Tells the appender the newest entry a reader in this process saw (`seq` and
    /// its bytes), so that the next append starts from it instead of finding the
    /// head again: a gate has just read the log up to its head, and finding it is about
    /// ten existence checks, each a round trip to a bucket. Kept only when newer
    /// than what this process knows. A head that is stale by the time of the append
    /// costs nothing in correctness: the create-only put of the entry after it fails
    /// and the append gallops on from there.
    pub fn saw_log_head(&self, seq: u64, bytes: Bytes) {
        if let Ok(mut cache) = self.head_cache.lock() {
            if cache.as_ref().is_none_or(|(known, _)| *known < seq) {
                *cache = Some((seq, bytes));
            }
        }
    }

    /// The last entry: the newest this process wrote or saw, else found by galloping
    /// and bisecting over existence checks.
    pub async fn log_last(&self) -> Result<Option<(u64, Bytes)>, StoreError> {
        if let Some(cached) = self.head_cache.lock().ok().and_then(|c| c.clone()) {
            return Ok(Some(cached));
        }
        if !self.entry_exists(1).await? {
            return Ok(None);
        }
        self.last_from(1).await.map(Some)
    }

    /// The last entry, entry `present` being known to exist: galloping past it over
    /// existence checks, then bisecting (entries are numbered without gaps), so a
    /// few requests however far the log has grown.
    async fn last_from(&self, mut present: u64) -> Result<(u64, Bytes), StoreError> {
        let mut step = 1u64;
        let mut absent = present.saturating_add(step);
        while self.entry_exists(absent).await? {
            present = absent;
            step = step.saturating_mul(2);
            absent = present.saturating_add(step);
        }
        while absent - present > 1 {
            let mid = present + (absent - present) / 2;
            if self.entry_exists(mid).await? {
                present = mid;
            } else {
                absent = mid;
            }
        }
        let bytes = self.read_entry(present).await?;
        Ok((present, bytes))
    }

    async fn read_entry(&self, seq: u64) -> Result<Bytes, StoreError> {
        let key = crate::ObjectKey::parse(&tlog::entry_key(seq))?;
        self.get_limited(&key, tlog::MAX_ENTRY_BYTES)
            .await?
            .ok_or_else(|| StoreError::LogBroken {
                location: self.location.clone(),
                what: format!("entry {seq} vanished while appending"),
            })
    }

    /// Appends one entry naming `objects`; returns the new head.
    pub async fn log_append(&self, objects: Vec<LoggedObject>) -> Result<Head, StoreError> {
        let mut last = self.log_last().await?;
        for _ in 0..MAX_APPEND_RACES {
            let (seq, prev) = match &last {
                None => (1, None),
                Some((seq, bytes)) => (seq + 1, Some(Sha256Digest::of(bytes))),
            };
            let entry = LogEntry {
                seq,
                prev: tlog::Prev(prev),
                objects: objects.clone(),
            }
            .to_bytes();
            let key = crate::ObjectKey::parse(&tlog::entry_key(seq))?;
            match self.put_create(&key, entry.clone()).await {
                Ok(PutOutcome::Created | PutOutcome::AlreadyPresent) => {
                    let head = Sha256Digest::of(&entry);
                    if let Ok(mut cache) = self.head_cache.lock() {
                        *cache = Some((seq, Bytes::from(entry)));
                    }
                    return Ok(Head { size: seq, head });
                }
                // Another writer took `seq`: continue after the newest entry another
                // task of this process has written since, else after the log's
                // real head, galloping from `seq` (so many writers in one process do
                // not race one number at a time, and a head seen long ago costs a
                // few requests, not one per entry written since).
                Err(StoreError::AlreadyExists { .. }) => {
                    let cached = self.head_cache.lock().ok().and_then(|c| c.clone());
                    last = match cached {
                        Some((newer, bytes)) if newer > seq => Some((newer, bytes)),
                        _ => Some(self.last_from(seq).await?),
                    };
                }
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::LogBroken {
            location: self.location.clone(),
            what: format!("no free entry after {MAX_APPEND_RACES} racing writers"),
        })
    }

    /// Appends one entry naming every object this process created (or adopted) since
    /// the last flush; `None` when there was nothing to log.
    pub async fn log_flush(&self) -> Result<Option<Head>, StoreError> {
        let objects: Vec<LoggedObject> = std::mem::take(
            &mut *self
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        if objects.is_empty() {
            return Ok(None);
        }
        match self.log_append(objects.clone()).await {
            Ok(head) => Ok(Some(head)),
            Err(e) => {
                // Keep them for a retry by the caller.
                self.pending
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .extend(objects);
                Err(e)
            }
        }
    }

    /// Every entry's key, in log order (by listing).
    pub async fn log_keys(&self) -> Result<Vec<String>, StoreError> {
        let mut keys = self.list(tlog::LOG_PREFIX).await?;
        keys.sort();
        Ok(keys)
    }

    /// The keys under `log/` near its end, in log order ([`Store::list_tail`]): what
    /// a gate that needs the last entry alone reads, in a few round trips however
    /// long the log.
    pub async fn log_keys_tail(&self) -> Result<Vec<String>, StoreError> {
        self.list_tail(tlog::LOG_PREFIX, tlog::entry_seq, tlog::entry_key)
            .await
    }

    /// The keys under `log/` after entry `size`'s, in log order: the tail of the log
    /// past a head seen before, in one listing of what the tail holds.
    pub async fn log_keys_after(&self, size: u64) -> Result<Vec<String>, StoreError> {
        let mut keys = self
            .list_after(tlog::LOG_PREFIX, &tlog::entry_key(size))
            .await?;
        keys.sort();
        Ok(keys)
    }

    /// The newest log head this process wrote or saw (a gate's read of the log):
    /// what the evidence it writes next records as `log_head`.
    pub fn seen_log_head(&self) -> Option<LogHead> {
        let cached = self.head_cache.lock().ok()?.clone()?;
        Some(LogHead {
            size: cached.0,
            sha256: Sha256Digest::of(&cached.1),
        })
    }
}

#[cfg(test)]
mod tests;
