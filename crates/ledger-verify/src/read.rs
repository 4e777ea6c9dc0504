//! The bulk read behind verification: objects hashed once, read ahead of checking.
//!
//! Verifying a chain reads every envelope, the digest of every captured log and the
//! stored policy; reading them one at a time was most of a gate's time on a bucket.
//! Here keys are read in one bulk read (logs only hashed, since they can be large),
//! and a [`Snapshot`] holds everything a whole-store walk will need so that checking
//! it needs no I/O at all. [`classify`] splits a listing into artifacts and strays.

use crate::error::Error;
use ledger_core::{ArtifactRef, GitSha, Sha256Digest};
use ledger_store::{ObjectKey, Store};
use std::collections::HashMap;

/// One object as a read found it: `None` when absent, `Some(Err(why))` when it is
/// there but cannot be evidence (over its limit, a symbolic link, a FIFO …), which
/// fails whatever relies on it and nothing else.
pub type Found<T> = Option<Result<T, String>>;

/// Limit for captured logs read back for hashing.
pub const MAX_LOG_BYTES: usize = 256 * 1024 * 1024;

/// The key of the stored copy of a policy with this digest.
pub fn policy_key(digest: &Sha256Digest) -> Result<ObjectKey, Error> {
    let key = ObjectKey::parse(&format!("policies/{}.json", digest.to_hex()))
        .map_err(ledger_store::StoreError::from)?;
    Ok(key)
}

/// The key of an artifact reference.
pub fn object_key(r: &ArtifactRef) -> ObjectKey {
    ObjectKey::from_artifact(r)
}

/// The key of an artifact's log.
pub fn log_object_key(r: &ArtifactRef) -> ObjectKey {
    ObjectKey::from_artifact_log(r)
}

/// Everything verification reads, read ahead of it: envelope and policy bytes, and
/// the SHA-256 of each captured log (logs can be large; only their digest is kept).
/// Built from one listing of the store (see [`crate::walk`]), so a key absent from it
/// is absent from the store, and verifying over it needs no I/O at all.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    /// Envelope and policy bytes with their SHA-256, computed once while reading
    /// (or why they could not be read).
    pub objects: HashMap<String, Result<Fetched, String>>,
    pub log_digests: HashMap<String, Result<Sha256Digest, String>>,
}

/// An object read for verification, with the SHA-256 of its bytes: every check that
/// needs the digest (the artifact's own, a hash link, a stored policy) shares one.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub bytes: bytes::Bytes,
    pub digest: Sha256Digest,
}

impl Fetched {
    /// Bytes as read, hashed once.
    pub fn new(bytes: bytes::Bytes) -> Fetched {
        let digest = Sha256Digest::of(&bytes);
        Fetched { bytes, digest }
    }
}

/// What one bulk read of evidence keys found: envelope (and policy) bytes with their
/// digests, and the digests of captured logs, as [`Found`].
#[derive(Debug)]
pub struct ReadObjects {
    pub envelopes: Vec<(String, Found<Fetched>)>,
    pub log_digests: Vec<(String, Found<Sha256Digest>)>,
}

/// Reads `keys` in one bulk read: captured logs (`.log`) are only hashed, since they
/// can be large; everything else is kept with its digest. The two kinds are read
/// concurrently. A listed name no writer could have made (`FOO.json`) is not read:
/// it is no evidence, and [`classify`] reports it as a stray of the store.
pub async fn read_objects(store: &Store, keys: &[String]) -> Result<ReadObjects, Error> {
    let (mut logs, mut envelopes) = (Vec::new(), Vec::new());
    for key in keys {
        let Ok(k) = ObjectKey::parse(key) else {
            continue;
        };
        if key.ends_with(".log") {
            logs.push(k);
        } else {
            envelopes.push(k);
        }
    }
    // Both at once: on a bucket each bulk read is a round trip of its own.
    let (read, digests) = futures::future::try_join(
        store.map_many(
            envelopes.clone(),
            ledger_store::DEFAULT_READ_LIMIT,
            Fetched::new,
        ),
        store.map_many(logs.clone(), MAX_LOG_BYTES, |b| Sha256Digest::of(&b)),
    )
    .await?;
    let named = |keys: Vec<ObjectKey>| keys.into_iter().map(|k| k.as_str().to_owned());
    Ok(ReadObjects {
        envelopes: named(envelopes).zip(read.into_iter().map(found)).collect(),
        log_digests: named(logs).zip(digests.into_iter().map(found)).collect(),
    })
}

/// A bulk read's result for one object, its refusal as a problem to report.
fn found<T>(read: ledger_store::BulkRead<T>) -> Found<T> {
    read.map(|r| r.map_err(|e| e.to_string()))
}

/// A single read's result as [`Found`]: a refused object is a problem of that
/// object; any other failure is the store's.
pub fn found_one<T>(read: Result<Option<T>, ledger_store::StoreError>) -> Result<Found<T>, Error> {
    match read {
        Ok(got) => Ok(got.map(Ok)),
        Err(e) if e.is_object_problem() => Ok(Some(Err(e.to_string()))),
        Err(e) => Err(e.into()),
    }
}

/// Splits keys listed under `sha`'s prefixes into its artifacts, in stage order and
/// then attempt order, and objects that are not `ledger` evidence (captured logs and
/// companion statements beside their envelope are neither: they are checked through
/// the envelope).
pub fn classify(sha: &GitSha, keys: &[String]) -> (Vec<ArtifactRef>, Vec<String>) {
    let mut refs = Vec::new();
    let mut unexpected = Vec::new();
    for key in keys {
        match ArtifactRef::parse_key(key) {
            Some(r) if r.sha == *sha => refs.push(r),
            _ if ledger_core::ArtifactKind::ALL
                .iter()
                .any(|k| is_known_log(key, *k, sha)) => {}
            _ => unexpected.push(key.clone()),
        }
    }
    // A companion belongs to the SHA's evidence only beside its artifact.
    unexpected.retain(|key| {
        !ledger_core::Attestation::parse_key(key).is_some_and(|(r, _)| refs.contains(&r))
    });
    refs.sort_by_key(|r| {
        let kind = ledger_core::ArtifactKind::ALL
            .iter()
            .position(|k| *k == r.kind);
        (kind, r.attempt)
    });
    refs.dedup();
    unexpected.sort();
    (refs, unexpected)
}

fn is_known_log(key: &str, kind: ledger_core::ArtifactKind, sha: &GitSha) -> bool {
    let Some(json) = key.strip_suffix(".log").map(|k| format!("{k}.json")) else {
        return false;
    };
    kind.has_log() && ArtifactRef::parse_key(&json).is_some_and(|r| r.kind == kind && r.sha == *sha)
}
