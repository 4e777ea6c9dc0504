//! Reading the store's log back (`ledger_core::tlog`) and what it says about the set
//! of objects: what exists, what was deleted, what no writer logged.
//!
//! `verify` reads the log whole (one listing, one bulk read) and checks it as a
//! chain: entry numbers 1..N in order, each `prev` the SHA-256 of the entry before.
//! What it names becomes a [`LogIndex`]: the digest every logged object must have,
//! and the latest logged attempt of every stage, which is what gates use instead of a
//! listing, so deleting or hiding a stage's latest attempt cannot make an earlier one
//! "the latest".
//!
//! A gate reads only the log's tail ([`Start::At`]): every piece of evidence records
//! the log's head its own gate read (`log_head`), and every attempt of any stage
//! written after that evidence is named by a later entry, because an entry is
//! appended after the objects it names. So the tail from the oldest head recorded by
//! the evidence a gate relies on holds every entry that could name a later attempt of
//! it, however long the store's history; the entry that head names must still hash to
//! what was signed, and the tail is checked as a chain from it. The head it read is
//! handed to the store, so a stage's append after its gate does not search for it
//! again (`Store::saw_log_head`).

use crate::error::Error;
use crate::read::read_objects;
use ledger_core::tlog::{self, Checkpoint, LogEntry, LogHead};
use ledger_core::{ArtifactKind, ArtifactRef, EnvName, GitSha, PublicKey, Sha256Digest};
use ledger_store::Store;
use std::collections::HashMap;

mod checkpoints;
pub use checkpoints::{
    check_checkpoint, check_read_checkpoints, check_stored_checkpoints, checkpoint_problems,
    read_checkpoints, read_checkpoints_from, verify_checkpoints, CheckpointVerdict,
    StoredCheckpoints,
};

/// Where a logged object was named, and with which digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Logged {
    pub seq: u64,
    pub sha256: Sha256Digest,
}

/// Where a read of the log starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Start {
    /// Entry 1: the whole log, what `verify` reads.
    #[default]
    Whole,
    /// The entry a recorded `log_head` names (which must still hash to it) and every
    /// entry after it: what a gate reads.
    At(LogHead),
    /// The last entry alone: the head, for a gate that relies on no evidence.
    Last,
}

/// What the log names, and what is wrong with the log itself.
#[derive(Debug, Clone, Default)]
pub struct LogIndex {
    /// Where the read started.
    start: Start,
    /// The number of the first entry read (1 when the log was read whole).
    first: u64,
    /// The `prev` of the first entry read: the head before it, as that entry says.
    base: Option<Sha256Digest>,
    objects: HashMap<String, Logged>,
    /// The logged keys of each commit's evidence (its second path segment), so that
    /// one SHA's questions cost what that SHA has, not what the store has.
    by_sha: HashMap<GitSha, Vec<String>>,
    /// SHA-256 of each entry's bytes read, entry `first` first.
    heads: Vec<Sha256Digest>,
    /// Problems of the log as a whole (a gap, a broken link, an unreadable entry).
    pub problems: Vec<String>,
    /// Whether anything at all is stored under `log/` (a log that is there but does
    /// not read is broken, not absent).
    present: bool,
}

impl LogIndex {
    /// Reads and checks every entry of `store`'s log.
    pub async fn read(store: &Store) -> Result<LogIndex, Error> {
        LogIndex::read_from(store, Start::Whole).await
    }

    /// Reads and checks the entries of `store`'s log from `start` on.
    pub async fn read_from(store: &Store, start: Start) -> Result<LogIndex, Error> {
        let (mut index, keys) = LogIndex::listed(store, start).await?;
        let read = read_objects(store, &keys).await?;
        // Parsing each entry is independent of the others, so it runs on every core
        // (a log has an entry per stage ever run); linking them is in order, below.
        let parsed = crate::parallel::map(&read.envelopes, |(_, fetched)| match fetched {
            Some(Ok(fetched)) => Some(LogEntry::parse(&fetched.bytes).map_err(|e| e.to_string())),
            _ => None,
        });
        let mut last = None;
        for (position, ((key, fetched), parsed)) in
            read.envelopes.into_iter().zip(parsed).enumerate()
        {
            let expected = index.first + position as u64;
            let (fetched, parsed) = match (fetched, parsed) {
                (Some(Ok(fetched)), Some(parsed)) => (fetched, parsed),
                (Some(Err(why)), _) => {
                    index.problems.push(why);
                    break;
                }
                _ => {
                    index
                        .problems
                        .push(format!("log entry {key} vanished while it was read"));
                    break;
                }
            };
            if tlog::entry_seq(&key) != Some(expected) {
                index.problems.push(format!(
                    "the log has no entry {expected}: the next is {key} (entries were deleted)"
                ));
                break;
            }
            if let Err(why) = index.check_start(position, &parsed, fetched.digest) {
                index.problems.push(format!("log entry {key}: {why}"));
                break;
            }
            let added = parsed.and_then(|entry| index.add(expected, entry, fetched.digest));
            if let Err(why) = added {
                index.problems.push(format!("log entry {key}: {why}"));
                break;
            }
            last = Some(fetched.bytes);
        }
        // A stage appends to the log after its gate read it: the head it saw saves
        // finding it again (a handful of round trips to a bucket).
        if let (Some(bytes), true) = (last, index.problems.is_empty()) {
            store.saw_log_head(index.size(), bytes);
        }
        Ok(index)
    }

    /// An index to fill from `start`, and the entry keys to read: the listing of
    /// `log/` from there (anything else there is a problem of the log).
    async fn listed(store: &Store, start: Start) -> Result<(LogIndex, Vec<String>), Error> {
        let listed = match start {
            Start::Whole => store.log_keys().await?,
            Start::Last => store.log_keys_tail().await?,
            Start::At(head) => store.log_keys_after(head.size.saturating_sub(1)).await?,
        };
        let mut index = LogIndex {
            start,
            // A recorded head says a log existed: a tail that is gone is cut, not absent.
            present: !listed.is_empty() || matches!(start, Start::At(_)),
            ..LogIndex::default()
        };
        let (mut keys, strays): (Vec<String>, Vec<String>) = listed
            .into_iter()
            .partition(|k| tlog::entry_seq(k).is_some());
        for stray in strays {
            index.problems.push(match store.check_folder(&stray) {
                Err(refused) => refused.to_string(),
                Ok(()) => format!("{stray} is not a log entry: nothing writes it there"),
            });
        }
        if start == Start::Last {
            keys = keys.split_off(keys.len().saturating_sub(1));
        }
        index.first = match start {
            Start::Whole => 1,
            Start::At(head) => head.size,
            Start::Last => keys.first().and_then(|k| tlog::entry_seq(k)).unwrap_or(1),
        };
        if let (Start::At(head), true) = (start, keys.is_empty()) {
            index.problems.push(format!(
                "the log has no entry {} (the head recorded evidence names) nor any after it: its tail was removed",
                head.size
            ));
        }
        Ok((index, keys))
    }

    /// The first entry read of a tail: it must be the one the recorded head names,
    /// and its `prev` is the chain's base (entry 1 has none).
    fn check_start(
        &mut self,
        position: usize,
        parsed: &Result<LogEntry, String>,
        digest: Sha256Digest,
    ) -> Result<(), String> {
        if position > 0 {
            return Ok(());
        }
        if let Start::At(head) = self.start {
            if digest != head.sha256 {
                return Err(format!(
                    "it is not the entry recorded evidence names as the log's head (sha256 {}): the log was rewritten",
                    head.sha256
                ));
            }
        }
        if let (Ok(entry), true) = (parsed, self.first > 1) {
            self.base = entry.prev.0;
        }
        Ok(())
    }

    /// Links `entry`, read as bytes whose SHA-256 is `digest`, as entry `seq`.
    fn add(&mut self, seq: u64, entry: LogEntry, digest: Sha256Digest) -> Result<(), String> {
        if entry.seq != seq {
            return Err(format!("says it is entry {}", entry.seq));
        }
        if entry.prev.0 != self.heads.last().copied().or(self.base) {
            return Err(
                "its `prev` is not the SHA-256 of the entry before: the log was rewritten"
                    .to_owned(),
            );
        }
        for o in entry.objects {
            match self.objects.get(&o.key) {
                Some(l) if l.sha256 != o.sha256 => {
                    return Err(format!(
                        "names {} again with another digest (first in entry {})",
                        o.key, l.seq
                    ))
                }
                Some(_) => {}
                None => {
                    if let Some(sha) = o.key.split('/').nth(1).and_then(|s| GitSha::parse(s).ok()) {
                        self.by_sha.entry(sha).or_default().push(o.key.clone());
                    }
                    self.objects.insert(
                        o.key,
                        Logged {
                            seq,
                            sha256: o.sha256,
                        },
                    );
                }
            }
        }
        self.heads.push(digest);
        Ok(())
    }

    /// Number of entries (as far as the log read as a chain).
    pub fn size(&self) -> u64 {
        (self.first + self.heads.len() as u64).saturating_sub(1)
    }

    /// Where the read started.
    pub fn start(&self) -> Start {
        self.start
    }

    /// The sequence number of the first entry read.
    pub(crate) fn first(&self) -> u64 {
        self.first
    }

    /// Whether the part read shows the head at `size` (and every entry after it), so
    /// that what it lacks after there is not in the log.
    pub fn covers(&self, size: u64) -> bool {
        self.start == Start::Whole || size.saturating_add(1) >= self.first
    }

    /// The SHA-256 of entry `size` (the head at that size), where the part read
    /// shows it.
    fn head_at(&self, size: u64) -> Option<Sha256Digest> {
        if size + 1 == self.first {
            return self.base;
        }
        let at = size.checked_sub(self.first)?;
        self.heads.get(usize::try_from(at).ok()?).copied()
    }

    /// Whether the store has no log at all (nothing under `log/`).
    pub fn is_empty(&self) -> bool {
        !self.present
    }

    /// What the log says about `key`.
    pub fn get(&self, key: &str) -> Option<Logged> {
        self.objects.get(key).copied()
    }

    /// Logged keys starting with `prefix`.
    pub fn keys_under<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a String> + 'a {
        self.objects.keys().filter(move |k| k.starts_with(prefix))
    }

    /// Every logged key.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.objects.keys()
    }

    /// The logged keys of `sha`'s evidence (every folder).
    pub fn keys_of(&self, sha: &GitSha) -> &[String] {
        self.by_sha.get(sha).map_or(&[], Vec::as_slice)
    }

    /// Every SHA the log names evidence of.
    pub fn shas(&self) -> impl Iterator<Item = &GitSha> {
        self.by_sha.keys()
    }

    /// The latest attempt of `kind` for `sha` (in `env`) that the log names.
    pub fn latest(
        &self,
        kind: ArtifactKind,
        sha: &GitSha,
        env: Option<EnvName>,
    ) -> Option<ArtifactRef> {
        let want = env
            .and_then(EnvName::qualifier)
            .filter(|_| kind.per_environment());
        self.keys_of(sha)
            .iter()
            .filter_map(|k| ArtifactRef::parse_key(k))
            .filter(|r| r.kind == kind && r.env == want)
            .max_by_key(|r| r.attempt)
    }

    /// Checks that the log extends `cp`: the entry at its size hashes to its head. A
    /// checkpoint before the part read is not checked here (`verify` reads it all).
    pub fn extends(&self, cp: &Checkpoint) -> Result<(), String> {
        if cp.size == 0 || !self.covers(cp.size) {
            return Ok(());
        }
        match self.head_at(cp.size) {
            Some(h) if h == cp.head => Ok(()),
            Some(_) => Err(format!(
                "the log does not extend checkpoint {}: entry {} is not the one it signed (the log was rewritten)",
                cp.size, cp.size
            )),
            None => Err(format!(
                "the log does not extend checkpoint {}: only {} of its entries read as a chain (its tail was removed or broken)",
                cp.size,
                self.size()
            )),
        }
    }

    /// What is wrong with evidence stored at `key` that recorded `head` as the log's
    /// head its gate read: the log no longer holds that head, or names the evidence
    /// at or before it (it cannot have been logged before its gate ran).
    pub fn recorded_head_problems(&self, key: &str, head: &LogHead) -> Vec<String> {
        if !self.covers(head.size) {
            return Vec::new();
        }
        let mut problems = Vec::new();
        match self.head_at(head.size) {
            Some(h) if h == head.sha256 => {}
            Some(_) => problems.push(format!(
                "its gate read the log at entry {}, and that entry is no longer the one it read: the log was rewritten",
                head.size
            )),
            None => problems.push(format!(
                "its gate read the log at entry {}, but only {} entries read as a chain: the log's tail was removed or broken",
                head.size,
                self.size()
            )),
        }
        if let Some(l) = self.get(key).filter(|l| l.seq <= head.size) {
            problems.push(format!(
                "the log names it in entry {}, not after entry {} that its own gate read: the log was rewritten",
                l.seq, head.size
            ));
        }
        problems
    }
}

/// The message for a store that holds evidence but no log.
pub const NO_LOG: &str = "the store has no log, so deleted evidence cannot be told from evidence never written: run `ledger checkpoint --genesis` to start one from what exists";

/// The log against the whole store, beyond the SHAs' own folders: the log's chain,
/// every checkpoint, and the objects of the other folders (policies, trust, leases,
/// prune records) the log names or lacks. `has_evidence`: whether any evidence is
/// stored (a store with evidence and no log fails).
pub async fn store_wide_problems(
    store: &Store,
    index: &LogIndex,
    policy: &crate::trust::SignedPolicy,
    has_evidence: bool,
) -> Result<Vec<String>, Error> {
    if index.is_empty() {
        return Ok(if has_evidence {
            vec![NO_LOG.to_owned()]
        } else {
            vec![]
        });
    }
    let mut problems = index.problems.clone();
    let keys: Vec<&PublicKey> = policy.keys().iter().map(|k| &k.key).collect();
    problems.extend(check_stored_checkpoints(store, index, &keys, false).await?);
    let evidence_dirs: std::collections::BTreeSet<&str> =
        ArtifactKind::ALL.iter().map(|k| k.dir()).collect();
    let mut dirs: std::collections::BTreeSet<String> = ["policies", "trust", "leases", "prune"]
        .map(String::from)
        .into();
    dirs.extend(
        index
            .keys()
            .filter_map(|k| k.split('/').next())
            .map(String::from),
    );
    for dir in dirs.iter().filter(|d| !evidence_dirs.contains(d.as_str())) {
        let listed: std::collections::HashSet<String> =
            store.list(&format!("{dir}/")).await?.into_iter().collect();
        for key in listed
            .iter()
            .filter(|k| index.get(k).is_none() && !tlog::unlogged(k))
        {
            problems.push(format!(
                "{key} is not in the store's log: no writer logged it"
            ));
        }
        let mut missing: Vec<&String> = index
            .keys_under(dir)
            .filter(|k| !listed.contains(*k))
            .collect();
        missing.sort();
        for key in missing {
            problems.push(format!(
                "the store's log names {key}: it was deleted or renamed"
            ));
        }
    }
    problems.sort();
    Ok(problems)
}

#[cfg(test)]
mod tests;
