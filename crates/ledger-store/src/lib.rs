//! `ledger-store`: the write-once evidence store.
//!
//! The only crate that talks to `object_store`, so the write-once rule lives in one
//! place: every put is `PutMode::Create`, nothing is ever overwritten or deleted. A put
//! that meets an existing object reads it back: identical bytes mean a retried request
//! already succeeded; different bytes are refused. Keys are [`ObjectKey`]s, built from
//! validated parts only, so no input can address anything outside the store's layout.

mod attempts;
mod error;
pub mod file;
mod key;
mod listing;
mod local;
mod location;
mod log;
mod requests;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use error::StoreError;
use error::{log_failure, refused};
pub use key::{KeyError, ObjectKey};
pub use local::cores;
pub use location::{Bucket, Service, StoreLocation};
pub use log::{Head, MAX_APPEND_RACES};
use requests::Kind;
pub use requests::Requests;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use std::sync::Arc;

/// An object found by listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    pub size: u64,
    /// When the store says the object was written (not signed evidence: for ordering
    /// listings only).
    pub modified: std::time::SystemTime,
}

/// What a create-only put found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// The object was created by this call.
    Created,
    /// An identical object was already there (a retried request); nothing changed.
    AlreadyPresent,
}

/// An opened evidence store.
#[derive(Clone)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    location: String,
    /// The folder of a local store, read and listed directly on the caller's thread.
    local_root: Option<Arc<local::Root>>,
    /// Objects this process created that no log entry names yet (`log.rs`).
    pending: Arc<std::sync::Mutex<Vec<ledger_core::tlog::LoggedObject>>>,
    /// The last log entry this process saw or wrote.
    head_cache: Arc<std::sync::Mutex<Option<(u64, Bytes)>>>,
    /// Requests made through this store and its clones ([`Store::requests`]).
    requests: Arc<requests::Counter>,
    /// Listings kept for one [`Store::next_attempt_in`] each (`attempts.rs`).
    listed_for_attempts: Arc<std::sync::Mutex<std::collections::HashMap<String, Vec<String>>>>,
}

/// One object of a bulk read ([`Store::map_many`]): `None` when absent, `Some(Err)`
/// when it cannot be evidence ([`StoreError::is_object_problem`]).
pub type BulkRead<T> = Option<Result<T, StoreError>>;

/// How many requests [`Store::map_many`] keeps in flight against a bucket.
pub const BULK_REQUESTS: usize = 64;

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.location)
    }
}

/// Objects read for evidence are at most this large unless a caller says otherwise.
pub const DEFAULT_READ_LIMIT: usize = ledger_core::MAX_JSON_BYTES;

impl Store {
    /// Opens (and for a local folder, creates) the store at `location`.
    pub async fn open(location: StoreLocation) -> Result<Store, StoreError> {
        let store = location.open()?;
        store.check_reachable_if_bucket().await?;
        Ok(store)
    }

    /// [`Store::open`] with a bucket's reachability listing run beside `first` (the
    /// caller's first requests) instead of before them: one round trip fewer. When
    /// the listing fails, its error is returned, not `first`'s, so a missing bucket,
    /// a dead endpoint or bad credentials are still what the command reports.
    pub async fn open_with<T, E: From<StoreError>>(
        location: StoreLocation,
        first: impl AsyncFnOnce(&Store) -> Result<T, E>,
    ) -> Result<(Store, T), E> {
        let store = location.open()?;
        let (reachable, first) =
            futures::future::join(store.check_reachable_if_bucket(), first(&store)).await;
        reachable?;
        Ok((store, first?))
    }

    /// [`Store::check_reachable`] for a bucket; a local folder was made reachable
    /// by opening it.
    async fn check_reachable_if_bucket(&self) -> Result<(), StoreError> {
        match self.local_root {
            Some(_) => Ok(()),
            None => self.check_reachable().await,
        }
    }

    /// Wraps any `object_store` implementation (tests, other backends).
    pub fn from_object_store(inner: Arc<dyn ObjectStore>, location: impl Into<String>) -> Store {
        Store {
            inner,
            location: location.into(),
            local_root: None,
            pending: Arc::default(),
            head_cache: Arc::default(),
            listed_for_attempts: Arc::default(),
            requests: Arc::default(),
        }
    }

    /// What a store that does not exist yet holds: nothing. Lets a command reason
    /// about a store before the first stage creates it (`doctor` checks the policy's
    /// owners against it) without creating the folder.
    pub fn empty(location: impl Into<String>) -> Store {
        Store::from_object_store(Arc::new(object_store::memory::InMemory::new()), location)
    }

    /// A store over the local folder `root`, which `inner` serves.
    pub(crate) fn local(
        inner: Arc<dyn ObjectStore>,
        location: String,
        root: &std::path::Path,
    ) -> Store {
        Store {
            local_root: Some(Arc::new(local::Root::new(root))),
            ..Store::from_object_store(inner, location)
        }
    }

    /// The store's location, for messages.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The requests this store (and its clones) made so far, by kind.
    pub fn requests(&self) -> Requests {
        self.requests.snapshot()
    }

    /// Classifies a failure of the backing store for the caller.
    fn unreachable(&self, source: object_store::Error) -> StoreError {
        let location = self.location.clone();
        match source {
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => {
                StoreError::Denied { location, source }
            }
            object_store::Error::NotImplemented { .. } => {
                StoreError::NoCreateOnly { location, source }
            }
            source if refused(&source) => StoreError::Denied { location, source },
            source => StoreError::Unreachable { location, source },
        }
    }

    /// Lists the store's top level once: fails with the location named when the
    /// bucket is missing, the endpoint dead or the credentials refused.
    #[tracing::instrument(level = "debug", name = "store.check_reachable", skip_all)]
    pub async fn check_reachable(&self) -> Result<(), StoreError> {
        let trip = self.requests.add(Kind::List);
        let result = self
            .inner
            .list_with_delimiter(None)
            .await
            .map(|_| ())
            .map_err(|e| self.unreachable(e));
        drop(trip);
        if result.is_ok() {
            tracing::debug!("reachable");
        }
        log_failure(result)
    }

    /// Proves the store keeps evidence write-once: creates a scratch object under
    /// `probes/`, checks a second create of the same key with other bytes is refused
    /// and the first bytes read back unchanged. The probe object stays (the store
    /// never deletes); it is a few bytes naming who probed and when.
    #[tracing::instrument(level = "debug", name = "store.probe", skip_all)]
    pub async fn probe(&self, who: &str) -> Result<ObjectKey, StoreError> {
        self.check_reachable().await?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let key = ObjectKey::parse(&format!("probes/{nanos}-{}.probe", std::process::id()))?;
        let first = format!("write-once probe by {who}\n");
        let broken = |what: &str| StoreError::CreateOnlyBroken {
            location: self.location.clone(),
            what: what.to_owned(),
        };
        if self.put_create(&key, first.clone()).await? != PutOutcome::Created {
            return Err(broken("a fresh scratch key already existed"));
        }
        match self.put_create(&key, "overwritten\n").await {
            Err(StoreError::AlreadyExists { .. }) => {}
            Ok(_) => return Err(broken("a second create of the same key succeeded")),
            Err(e) => return Err(e),
        }
        match self.get(&key).await? {
            Some(b) if b == first.as_bytes() => {
                tracing::debug!(key = key.as_str(), "write-once honoured");
                Ok(key)
            }
            Some(_) => Err(broken("the scratch object was overwritten")),
            None => Err(broken("the scratch object vanished after it was created")),
        }
    }

    /// Creates `key` with `bytes`; never overwrites.
    #[tracing::instrument(level = "debug", name = "store.put_create", skip_all, fields(key = key.as_str()))]
    pub async fn put_create(
        &self,
        key: &ObjectKey,
        bytes: impl Into<Bytes>,
    ) -> Result<PutOutcome, StoreError> {
        let bytes: Bytes = bytes.into();
        log_failure(self.put_create_bytes(key, bytes).await)
    }

    async fn put_create_bytes(
        &self,
        key: &ObjectKey,
        bytes: Bytes,
    ) -> Result<PutOutcome, StoreError> {
        // In a local folder an object already there is compared, not written again:
        // a staged copy and its `fsync` cost far more than reading it (every
        // `commit` stores the policy's copy, which is there after the first).
        if self.local_path_present(key.as_str(), local::Last::File)? {
            if let Some(outcome) = self.compare_existing(key, &bytes).await? {
                return Ok(outcome);
            }
        }
        let trip = self.requests.add(Kind::Put);
        let created = self.create(key, &bytes).await;
        // Ended before the read-back below, which is a round trip of its own.
        drop(trip);
        if created? {
            tracing::debug!(bytes = bytes.len(), "created");
            self.note_written(key.as_str(), &bytes);
            return Ok(PutOutcome::Created);
        }
        tracing::debug!("exists already; reading it back");
        self.compare_existing(key, &bytes)
            .await?
            .ok_or_else(|| StoreError::AlreadyExists {
                key: key.as_str().to_owned(),
            })
    }

    /// One create-only write of `bytes` at `key`: `false` when something is there
    /// already. A local folder writes beneath its root, following no link, where the
    /// kernel can (`local::create`); everything else is the backend's own put.
    async fn create(&self, key: &ObjectKey, bytes: &Bytes) -> Result<bool, StoreError> {
        let local = self.local_root.as_ref();
        if let Some(created) =
            local.and_then(|root| local::create(root, &self.location, key, bytes))
        {
            return created;
        }
        let path = Path::from(key.as_str());
        let opts = PutOptions::from(PutMode::Create);
        let payload = PutPayload::from(bytes.clone());
        match self.inner.put_opts(&path, payload, opts).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(self.unreachable(e)),
        }
    }

    /// What a create of `bytes` at `key`, which exists, comes to: the same bytes
    /// are [`PutOutcome::AlreadyPresent`], others [`StoreError::AlreadyExists`];
    /// `None` when `key` turned out to be absent after all.
    async fn compare_existing(
        &self,
        key: &ObjectKey,
        bytes: &Bytes,
    ) -> Result<Option<PutOutcome>, StoreError> {
        match self.get_limited(key, bytes.len().max(1)).await {
            Ok(Some(existing)) if existing == *bytes => {
                tracing::debug!("identical bytes already present");
                Ok(Some(PutOutcome::AlreadyPresent))
            }
            Ok(None) => Ok(None),
            Ok(Some(_)) | Err(StoreError::TooLarge { .. }) => Err(StoreError::AlreadyExists {
                key: key.as_str().to_owned(),
            }),
            Err(e) => Err(e),
        }
    }

    /// When the store says `key` was written (its own clock); `None` when absent.
    #[tracing::instrument(level = "debug", name = "store.modified", skip_all, fields(key = key.as_str()))]
    pub async fn modified(
        &self,
        key: &ObjectKey,
    ) -> Result<Option<std::time::SystemTime>, StoreError> {
        self.check_local_path(key.as_str(), local::Last::File)?;
        let trip = self.requests.add(Kind::Head);
        let head = self.inner.head(&Path::from(key.as_str())).await;
        drop(trip);
        log_failure(match head {
            Ok(meta) => {
                tracing::debug!("found");
                Ok(Some(meta.last_modified.into()))
            }
            Err(object_store::Error::NotFound { .. }) => {
                tracing::debug!("absent");
                Ok(None)
            }
            Err(e) => Err(self.unreachable(e)),
        })
    }

    /// Reads `key` (at most [`DEFAULT_READ_LIMIT`] bytes); `None` when absent.
    pub async fn get(&self, key: &ObjectKey) -> Result<Option<Bytes>, StoreError> {
        self.get_limited(key, DEFAULT_READ_LIMIT).await
    }

    /// Reads `key` if it is at most `limit` bytes; `None` when absent.
    #[tracing::instrument(level = "debug", name = "store.get", skip_all, fields(key = key.as_str(), limit = limit))]
    pub async fn get_limited(
        &self,
        key: &ObjectKey,
        limit: usize,
    ) -> Result<Option<Bytes>, StoreError> {
        let result = self.get_limited_unlogged(key, limit).await;
        if let Ok(got) = &result {
            match got {
                Some(bytes) => tracing::debug!(bytes = bytes.len(), "read"),
                None => tracing::debug!("absent"),
            }
        }
        log_failure(result)
    }

    async fn get_limited_unlogged(
        &self,
        key: &ObjectKey,
        limit: usize,
    ) -> Result<Option<Bytes>, StoreError> {
        let _trip = self.requests.read([key.as_str()]);
        if let Some(root) = &self.local_root {
            return local::read(root, &self.location, key, limit);
        }
        let path = Path::from(key.as_str());
        let result = match self.inner.get(&path).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.unreachable(e)),
        };
        let too_large = |size: u64| StoreError::TooLarge {
            key: key.as_str().to_owned(),
            size,
            limit,
        };
        if result.meta.size > limit as u64 {
            return Err(too_large(result.meta.size));
        }
        let bytes = result.bytes().await.map_err(|e| self.unreachable(e))?;
        if bytes.len() > limit {
            return Err(too_large(bytes.len() as u64));
        }
        Ok(Some(bytes))
    }

    /// Reads every one of `keys` (each at most `limit` bytes) and passes its bytes to
    /// `map` right away, so only `map`'s results are kept (a caller that needs only a
    /// digest of large logs never holds them all). Results are in `keys` order, `None`
    /// for an absent key, `Some(Err)` for an object that cannot be read as evidence
    /// ([`StoreError::is_object_problem`]: too large, a link or a special file); any
    /// other failure ends the whole read.
    ///
    /// This is the bulk read of `verify` (one SHA's chain, or the whole store with
    /// `--all`) and of every gate. A local folder is read with plain file reads on every core:
    /// `object_store`'s local backend hands each read to tokio's blocking pool twice,
    /// which for evidence files of a few kilobytes costs several times the read
    /// itself. A bucket gets [`BULK_REQUESTS`] requests in flight.
    #[tracing::instrument(
        level = "debug",
        name = "store.map_many",
        skip_all,
        fields(
            keys = keys.len(),
            first = keys.first().map(ObjectKey::as_str),
            limit = limit,
            local = self.local_root.is_some(),
        )
    )]
    pub async fn map_many<T, F>(
        &self,
        keys: Vec<ObjectKey>,
        limit: usize,
        map: F,
    ) -> Result<Vec<BulkRead<T>>, StoreError>
    where
        T: Send + 'static,
        F: Fn(Bytes) -> T + Send + Sync + 'static,
    {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let result = if let Some(root) = &self.local_root {
            // One round trip: a bucket has every key of a bulk read in flight at once
            // (up to `BULK_REQUESTS`).
            let _trip = self.requests.read(keys.iter().map(ObjectKey::as_str));
            local::map_many(root, &self.location, &keys, limit, &map)
        } else {
            let map = &map;
            futures::stream::iter(keys)
                .map(|key| async move {
                    match self.get_limited(&key, limit).await {
                        Ok(bytes) => Ok(bytes.map(|b| Ok(map(b)))),
                        Err(e) if e.is_object_problem() => Ok(Some(Err(e))),
                        Err(e) => Err(e),
                    }
                })
                .buffered(BULK_REQUESTS)
                .try_collect()
                .await
        };
        if let Ok(read) = &result {
            let present = read.iter().filter(|r| r.is_some()).count();
            tracing::debug!(present, absent = read.len() - present, "read");
        }
        log_failure(result)
    }

    /// For a local folder: refuses `key` when a folder on its way (or, as `last`
    /// says, the object itself) is a symbolic link or not what the layout puts there
    /// (`local::check_path`). A few `lstat` calls, made on the caller's thread.
    /// Checked before the write, not atomically with it: docs/security.md says what
    /// that leaves open.
    fn check_local_path(&self, key: &str, last: local::Last) -> Result<(), StoreError> {
        self.local_path_present(key, last).map(|_| ())
    }

    /// [`Store::check_local_path`], saying whether `key` is there (always `false`
    /// for a bucket, where only a request could tell).
    fn local_path_present(&self, key: &str, last: local::Last) -> Result<bool, StoreError> {
        match &self.local_root {
            Some(root) => log_failure(local::check_path(root.path(), &self.location, key, last)),
            None => Ok(false),
        }
    }

    /// Whether `folder` (a key prefix without its `/`) is a real folder or absent;
    /// in a local store a symbolic link or a file in its place is refused, naming
    /// it. Listings list such a folder as one object of its own: this says why.
    pub fn check_folder(&self, folder: &str) -> Result<(), StoreError> {
        self.check_local_path(folder, local::Last::Folder)
    }
}

#[cfg(test)]
mod tests;
