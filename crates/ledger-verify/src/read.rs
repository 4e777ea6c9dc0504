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
    /// Envelope and policy bytes with their SHA-256, computed once while reading.
    pub objects: HashMap<String, Fetched>,
    pub log_digests: HashMap<String, Sha256Digest>,
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
/// digests, and the digests of captured logs; `None` where a key is absent.
#[derive(Debug)]
pub struct ReadObjects {
    pub envelopes: Vec<(String, Option<Fetched>)>,
    pub log_digests: Vec<(String, Option<Sha256Digest>)>,
}

/// Reads `keys` in one bulk read: captured logs (`.log`) are only hashed, since they
/// can be large; everything else is kept with its digest.
pub async fn read_objects(store: &Store, keys: &[String]) -> Result<ReadObjects, Error> {
    let (mut logs, mut envelopes) = (Vec::new(), Vec::new());
    for key in keys {
        let k = ObjectKey::parse(key).map_err(ledger_store::StoreError::from)?;
        if key.ends_with(".log") {
            logs.push(k);
        } else {
            envelopes.push(k);
        }
    }
    let read = store
        .map_many(
            envelopes.clone(),
            ledger_store::DEFAULT_READ_LIMIT,
            Fetched::new,
        )
        .await?;
    let digests = store
        .map_many(logs.clone(), MAX_LOG_BYTES, |b| Sha256Digest::of(&b))
        .await?;
    let named = |keys: Vec<ObjectKey>| keys.into_iter().map(|k| k.as_str().to_owned());
    Ok(ReadObjects {
        envelopes: named(envelopes).zip(read).collect(),
        log_digests: named(logs).zip(digests).collect(),
    })
}

/// Splits keys listed under `sha`'s prefixes into its artifacts, in stage order and
/// then attempt order, and objects that are not `ledger` evidence (captured logs
/// beside their envelope are neither: they are checked through the envelope).
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
