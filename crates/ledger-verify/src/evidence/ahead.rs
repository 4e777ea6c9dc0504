//! Reading ahead: objects a verifier will check, read in bulk before the checks
//! so that checking them waits on no read of its own, and on a bucket requests that
//! do not depend on each other go out together.

use super::Evidence;
use crate::error::Error;
use crate::read::{policy_key, read_objects, ReadObjects};
use ledger_core::ArtifactRef;
use ledger_store::Store;

/// What [`read_with_log`] reads: objects, the stored policy's copy, the log.
#[derive(Debug, Default)]
pub(crate) struct ToRead {
    pub(crate) objects: Vec<String>,
    pub(crate) policy: Vec<String>,
    pub(crate) log: bool,
}

/// What [`read_with_log`] read.
#[derive(Debug)]
pub(crate) struct ReadWithLog {
    objects: ReadObjects,
    policy: ReadObjects,
    log: Option<crate::tlog::LogIndex>,
}

/// Reads `what` with its requests sent together. Reads only, and needs no
/// verifier, so it can wait beside other reads (`ledger verify` runs it beside the
/// policy's trust check).
pub(crate) async fn read_with_log(store: &Store, what: ToRead) -> Result<ReadWithLog, Error> {
    let log = async {
        match what.log {
            true => crate::tlog::LogIndex::read(store).await.map(Some),
            false => Ok(None),
        }
    };
    let (objects, policy, log) = futures::future::try_join3(
        read_objects(store, &what.objects),
        read_objects(store, &what.policy),
        log,
    )
    .await?;
    Ok(ReadWithLog {
        objects,
        policy,
        log,
    })
}

impl Evidence<'_> {
    /// Reads the envelopes of `refs` and their captured logs into the cache in one
    /// bulk read (see `read_ahead`). Only listed objects: the stored policy is left to
    /// the first check that needs it, because a stage may store the current policy
    /// after its gate ran, and an absence remembered here would outlive that.
    pub async fn read_ahead_refs(&mut self, refs: &[ArtifactRef]) -> Result<(), Error> {
        let mut keys = Vec::new();
        for r in refs {
            keys.push(r.key());
            if r.kind.has_log() {
                keys.push(r.log_key());
            }
            keys.extend(ledger_core::Attestation::key_beside(r));
        }
        self.read_ahead(&keys).await
    }

    /// Keeps what a bulk read found present (an absence is not remembered: the
    /// object may be stored later in this process, as a stage stores its policy).
    pub(crate) fn remember_present(&mut self, read: ReadObjects) {
        self.cache
            .extend(read.envelopes.into_iter().filter(|(_, f)| f.is_some()));
        self.log_cache
            .extend(read.log_digests.into_iter().filter(|(_, f)| f.is_some()));
    }

    /// Keys of `keys` this verifier has not read yet.
    pub(crate) fn unread(&self, keys: impl IntoIterator<Item = String>) -> Vec<String> {
        let mut unread: Vec<String> = keys
            .into_iter()
            .filter(|k| !self.cache.contains_key(k) && !self.log_cache.contains_key(k))
            .collect();
        unread.sort();
        unread.dedup();
        unread
    }

    /// Reads every one of `keys` into the cache in one bulk read (captured logs only
    /// hashed), so that checking them afterwards waits on no read of its own.
    pub(crate) async fn read_ahead(&mut self, keys: &[String]) -> Result<(), Error> {
        if self.snapshot.is_some() {
            return Ok(());
        }
        let unread = self.unread(keys.iter().cloned());
        let read = read_objects(self.store, &unread).await?;
        self.cache.extend(read.envelopes);
        self.log_cache.extend(read.log_digests);
        Ok(())
    }

    /// The keys [`read_with_log`] reads for this verifier, given `keys` listed: those
    /// not read yet, and the stored copy of the policy verified with (the one that
    /// gated the evidence, unless the policy changed since); with the whole log
    /// unless some of it was read already.
    pub(crate) fn to_read_with_log(&self, keys: &[String]) -> Result<ToRead, Error> {
        if self.snapshot.is_some() {
            return Ok(ToRead::default());
        }
        Ok(ToRead {
            objects: self.unread(keys.iter().cloned()),
            policy: self.unread([policy_key(&self.policy.digest())?.as_str().to_owned()]),
            log: self.log.is_none(),
        })
    }

    /// Keeps what [`read_with_log`] read (the policy's copy only if present, like
    /// [`Evidence::read_for_gate`]'s reads).
    pub(crate) fn keep_read(&mut self, read: ReadWithLog) {
        self.cache.extend(read.objects.envelopes);
        self.log_cache.extend(read.objects.log_digests);
        self.remember_present(read.policy);
        if let Some(log) = read.log {
            self.log = Some(std::sync::Arc::new(log));
        }
    }
}
