//! Why a store operation failed, and how failures are logged.
//!
//! Messages name the key or location and what to do; debug logs name only the kind
//! of failure, because a store's location may carry credentials.

use crate::KeyError;

/// Why a store operation failed. Messages name the key or location and what to do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{key} already exists in the store with different contents (another writer created it first, or it was written before); evidence is write-once and was not overwritten (a retried stage writes a new attempt instead)")]
    AlreadyExists { key: String },
    #[error("{key} is {size} bytes or more, over the {limit}-byte limit; refusing to read it")]
    TooLarge {
        key: String,
        size: u64,
        limit: usize,
    },
    #[error("{key} in the store is {what}; ledger neither reads nor writes through it, so nothing lands outside the store (evidence is regular files in real folders): remove it, and restore the store from a copy if it was tampered with")]
    NotRegular { key: String, what: String },
    #[error("store URL scheme `{scheme}://` is not supported by this build of ledger; use a local folder, s3://BUCKET/PREFIX, or a build with the `gcs`/`azure` features for gs:// and az://")]
    Unsupported { scheme: String },
    #[error("invalid store location {location:?}: {why}")]
    InvalidLocation { location: String, why: String },
    #[error(transparent)]
    InvalidKey(#[from] KeyError),
    #[error("evidence store {location} is unreachable or failing: {source}; check that it exists and is writable")]
    Unreachable {
        location: String,
        #[source]
        source: object_store::Error,
    },
    #[error("evidence store {location} refused the credentials or the request: {source}; check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or the cloud's equivalent) and that they may list, read and create objects")]
    Denied {
        location: String,
        #[source]
        source: object_store::Error,
    },
    #[error("evidence store {location} cannot create objects only-if-absent ({source}); ledger refuses a store that could overwrite evidence (for S3, leave aws_conditional_put at its default `etag`)")]
    NoCreateOnly {
        location: String,
        #[source]
        source: object_store::Error,
    },
    #[error("evidence store {location} did not honour a create-only write: {what}; ledger cannot keep evidence write-once there")]
    CreateOnlyBroken { location: String, what: String },
    #[error("the log of evidence store {location} cannot be appended to: {what}")]
    LogBroken { location: String, what: String },
}

impl StoreError {
    /// Whether the failure is about one object only (too large, a link or a special
    /// file in its place): it makes that object fail verification, while the store and
    /// every other object stay readable.
    pub fn is_object_problem(&self) -> bool {
        matches!(
            self,
            StoreError::TooLarge { .. } | StoreError::NotRegular { .. }
        )
    }

    /// A short name of the failure for debug logs: never the message, which names the
    /// store's location.
    fn kind(&self) -> &'static str {
        match self {
            StoreError::AlreadyExists { .. } => "already exists",
            StoreError::TooLarge { .. } => "too large",
            StoreError::NotRegular { .. } => "not a regular file",
            StoreError::Unsupported { .. } => "unsupported scheme",
            StoreError::InvalidLocation { .. } => "invalid location",
            StoreError::InvalidKey(_) => "invalid key",
            StoreError::Unreachable { .. } => "unreachable",
            StoreError::Denied { .. } => "denied",
            StoreError::NoCreateOnly { .. } => "no create-only writes",
            StoreError::CreateOnlyBroken { .. } => "create-only broken",
            StoreError::LogBroken { .. } => "log broken",
        }
    }
}

/// Logs (at debug) that the operation of the current span failed, by kind only.
pub(crate) fn log_failure<T>(result: Result<T, StoreError>) -> Result<T, StoreError> {
    if let Err(e) = &result {
        tracing::debug!(error = e.kind(), "failed");
    }
    result
}

/// Whether `e` is the server refusing who we are. The S3 client reports a refused
/// listing as a generic error whose cause carries the HTTP status, and that cause's
/// type is private to `object_store`, so its message is what can be inspected.
pub(crate) fn refused(e: &object_store::Error) -> bool {
    let mut cause: Option<&dyn std::error::Error> = Some(e);
    while let Some(c) = cause {
        let text = c.to_string();
        if ["401 Unauthorized", "403 Forbidden"]
            .iter()
            .any(|s| text.contains(s))
        {
            return true;
        }
        cause = c.source();
    }
    false
}
