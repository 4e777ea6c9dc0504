//! The whole store at once: one listing per evidence folder, grouped by SHA, and
//! `verify --all` on top of it.
//!
//! Reading per SHA (list eight prefixes, fetch, verify) is right for one chain and
//! wrong for thousands: it is a listing per prefix per SHA and leaves all but one core
//! idle. Here the store is listed once per folder ([`StoreIndex`]), every object the
//! verification will read is fetched concurrently into a [`Snapshot`] (logs are only
//! hashed), and then the chains are verified on every core with no I/O at all.

use crate::error::Error;
use crate::evidence::{ChainReport, Evidence};
use crate::read::{classify, policy_key, read_objects, Snapshot};
use crate::trust::SignedPolicy;
use ledger_core::{ArtifactKind, ArtifactRef, GitSha};
use ledger_store::Store;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::SystemTime;

/// The objects stored for one SHA.
#[derive(Debug, Clone)]
pub struct ShaObjects {
    /// Every key under the SHA's prefixes, sorted.
    pub keys: Vec<String>,
    /// The newest write time among them (from the listing; for ordering only).
    pub newest: SystemTime,
}

impl ShaObjects {
    /// The SHA's artifacts in stage and attempt order.
    pub fn refs(&self, sha: &GitSha) -> Vec<ArtifactRef> {
        classify(sha, &self.keys).0
    }
}

/// Every evidence object in the store, by SHA, from one listing per folder.
#[derive(Debug, Clone, Default)]
pub struct StoreIndex {
    pub shas: BTreeMap<GitSha, ShaObjects>,
    /// Objects in an evidence folder but not under any SHA: nothing writes these.
    pub foreign: Vec<String>,
}

impl StoreIndex {
    /// Lists each evidence folder of `store` once.
    pub async fn build(store: &Store) -> Result<StoreIndex, Error> {
        let dirs: BTreeSet<&str> = ArtifactKind::ALL.iter().map(|k| k.dir()).collect();
        let mut index = StoreIndex::default();
        for dir in dirs {
            for listed in store.list_meta(&format!("{dir}/")).await? {
                let sha = listed
                    .key
                    .split('/')
                    .nth(1)
                    .and_then(|s| GitSha::parse(s).ok());
                let Some(sha) = sha else {
                    index.foreign.push(listed.key);
                    continue;
                };
                let entry = index.shas.entry(sha).or_insert_with(|| ShaObjects {
                    keys: Vec::new(),
                    newest: SystemTime::UNIX_EPOCH,
                });
                entry.newest = entry.newest.max(listed.modified);
                entry.keys.push(listed.key);
            }
        }
        for entry in index.shas.values_mut() {
            entry.keys.sort();
        }
        Ok(index)
    }

    /// SHAs, most recently written first.
    pub fn newest_first(&self) -> Vec<GitSha> {
        let mut shas: Vec<(&GitSha, &ShaObjects)> = self.shas.iter().collect();
        shas.sort_by(|a, b| b.1.newest.cmp(&a.1.newest).then(a.0.cmp(b.0)));
        shas.into_iter().map(|(s, _)| *s).collect()
    }

    /// Number of evidence envelopes listed.
    pub fn envelopes(&self) -> usize {
        self.shas.iter().map(|(sha, o)| o.refs(sha).len()).sum()
    }

    /// Reads ahead everything verifying `shas` will read: their envelopes (and any
    /// envelope their `inputs` could name is among them: inputs are the same SHA's),
    /// their logs' digests, and every stored policy. Each object is hashed as it is
    /// read, on the thread that read it.
    pub async fn snapshot(&self, store: &Store, shas: &[GitSha]) -> Result<Snapshot, Error> {
        let mut keys: Vec<String> = shas
            .iter()
            .filter_map(|sha| self.shas.get(sha))
            .flat_map(|objects| objects.keys.iter().cloned())
            .collect();
        keys.extend(store.list("policies/").await?);
        let read = read_objects(store, &keys).await?;
        Ok(Snapshot {
            objects: read.envelopes.into_iter().filter_map(present).collect(),
            log_digests: read.log_digests.into_iter().filter_map(present).collect(),
        })
    }
}

/// The pair, if the object was present.
fn present<T>((key, value): (String, Option<T>)) -> Option<(String, T)> {
    Some((key, value?))
}

/// The result of verifying the whole store.
#[derive(Debug, Clone, Serialize)]
pub struct AllReport {
    pub ok: bool,
    pub shas: usize,
    pub shas_failed: usize,
    pub artifacts: usize,
    pub artifacts_ok: usize,
    pub artifacts_failed: usize,
    /// Objects among the evidence that no stage writes (under a SHA or not).
    pub unexpected: Vec<String>,
    /// What is wrong with the store's log as a whole: its chain, checkpoints that it
    /// does not extend, objects outside the evidence folders it misses or lacks.
    pub log: Vec<String>,
    /// Every chain that failed, in SHA order.
    pub failed: Vec<ChainReport>,
}

/// The most threads a walk uses: a few per core keeps every core busy while reads
/// finish; more only costs memory (`--jobs 1000000` must not spawn a million).
pub fn max_threads() -> usize {
    crate::parallel::cores().saturating_mul(4).min(256)
}

/// Verifies every SHA in the store on `threads` threads (at least one, at most
/// [`max_threads`]), calling
/// `progress(done, total)` as chains finish. Linear in the number of artifacts.
#[tracing::instrument(level = "debug", skip_all, fields(threads))]
pub async fn verify_all(
    store: &Store,
    policy: &SignedPolicy,
    threads: usize,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<AllReport, Error> {
    let index = StoreIndex::build(store).await?;
    let log = std::sync::Arc::new(crate::tlog::LogIndex::read(store).await?);
    // A SHA the log names is verified even when nothing of it is left in the store.
    let mut shas: BTreeSet<GitSha> = index.shas.keys().copied().collect();
    shas.extend(log.shas().copied());
    let shas: Vec<GitSha> = shas.into_iter().collect();
    let snapshot = index.snapshot(store, &shas).await?;
    let log_problems =
        crate::tlog::store_wide_problems(store, &log, policy, !index.shas.is_empty()).await?;
    // The policy objects are read once here; a missing one is reported per artifact.
    let _ = policy_key(&policy.digest())?;
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results: Mutex<Vec<ChainReport>> = Mutex::new(Vec::with_capacity(shas.len()));
    let failure: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, max_threads()) {
            scope.spawn(|| {
                let mut evidence =
                    Evidence::over_snapshot(store, policy, &snapshot).with_log(log.clone());
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(sha) = shas.get(i) else { break };
                    let keys = index.shas.get(sha).map_or(&[][..], |o| o.keys.as_slice());
                    // Over a snapshot nothing awaits I/O: each future completes on its
                    // first poll, so a minimal executor on this thread is enough.
                    match futures::executor::block_on(evidence.check_listed(sha, keys)) {
                        Ok(report) => results
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(report),
                        Err(e) => {
                            *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                            break;
                        }
                    }
                    progress(done.fetch_add(1, Ordering::Relaxed) + 1, shas.len());
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    let mut chains = results.into_inner().unwrap_or_else(|p| p.into_inner());
    chains.sort_by_key(|c| c.sha);
    let artifacts: usize = chains.iter().map(|c| c.artifacts.len()).sum();
    let artifacts_ok = chains
        .iter()
        .flat_map(|c| &c.artifacts)
        .filter(|a| a.ok)
        .count();
    let mut unexpected = index.foreign.clone();
    unexpected.extend(chains.iter().flat_map(|c| c.unexpected.iter().cloned()));
    unexpected.sort();
    let failed: Vec<ChainReport> = chains.into_iter().filter(|c| !c.ok).collect();
    Ok(AllReport {
        ok: failed.is_empty() && unexpected.is_empty() && log_problems.is_empty(),
        shas: shas.len(),
        shas_failed: failed.len(),
        artifacts,
        artifacts_ok,
        artifacts_failed: artifacts - artifacts_ok,
        unexpected,
        log: log_problems,
        failed,
    })
}
