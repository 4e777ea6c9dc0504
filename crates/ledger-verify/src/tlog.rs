//! Reading the store's log back (`ledger_core::tlog`) and what it says about the set
//! of objects: what exists, what was deleted, what no writer logged.
//!
//! The log is read whole (one listing, one bulk read) and checked as a chain: entry
//! numbers 1..N in order, each `prev` the SHA-256 of the entry before. What it names
//! becomes a [`LogIndex`]: the digest every logged object must have, and the latest
//! logged attempt of every stage, which is what gates use instead of a listing, so
//! deleting or hiding a stage's latest attempt cannot make an earlier one "the latest".
//! The head it read is handed to the store, so a stage's append after its gate does
//! not search for it again (`Store::saw_log_head`).

use crate::error::Error;
use crate::read::{read_objects, Fetched, Found};
use ledger_core::tlog::{self, Checkpoint, LogEntry};
use ledger_core::{ArtifactKind, ArtifactRef, EnvName, GitSha, PublicKey, Sha256Digest};
use ledger_store::Store;
use std::collections::HashMap;

/// Where a logged object was named, and with which digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Logged {
    pub seq: u64,
    pub sha256: Sha256Digest,
}

/// What the log names, and what is wrong with the log itself.
#[derive(Debug, Clone, Default)]
pub struct LogIndex {
    objects: HashMap<String, Logged>,
    /// The logged keys of each commit's evidence (its second path segment), so that
    /// one SHA's questions cost what that SHA has, not what the store has.
    by_sha: HashMap<GitSha, Vec<String>>,
    /// SHA-256 of each entry's bytes, entry 1 first.
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
        let listed = store.log_keys().await?;
        let mut index = LogIndex {
            present: !listed.is_empty(),
            ..LogIndex::default()
        };
        let (keys, strays): (Vec<String>, Vec<String>) = listed
            .into_iter()
            .partition(|k| tlog::entry_seq(k).is_some());
        for stray in strays {
            index.problems.push(match store.check_folder(&stray) {
                Err(refused) => refused.to_string(),
                Ok(()) => format!("{stray} is not a log entry: nothing writes it there"),
            });
        }
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
            let expected = position as u64 + 1;
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

    /// Links `entry`, read as bytes whose SHA-256 is `digest`, as entry `seq`.
    fn add(&mut self, seq: u64, entry: LogEntry, digest: Sha256Digest) -> Result<(), String> {
        if entry.seq != seq {
            return Err(format!("says it is entry {}", entry.seq));
        }
        if entry.prev.0 != self.heads.last().copied() {
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

    /// Number of entries.
    pub fn size(&self) -> u64 {
        self.heads.len() as u64
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

    /// Checks that the log extends `cp`: the entry at its size hashes to its head.
    pub fn extends(&self, cp: &Checkpoint) -> Result<(), String> {
        let at = usize::try_from(cp.size).unwrap_or(usize::MAX);
        match at.checked_sub(1).and_then(|i| self.heads.get(i)) {
            Some(h) if *h == cp.head => Ok(()),
            Some(_) => Err(format!(
                "the log does not extend checkpoint {}: entry {} is not the one it signed (the log was rewritten)",
                cp.size, cp.size
            )),
            None if cp.size == 0 => Ok(()),
            None => Err(format!(
                "the log does not extend checkpoint {}: only {} of its entries read as a chain (its tail was removed or broken)",
                cp.size,
                self.size()
            )),
        }
    }
}

/// The stored checkpoints as read, each with its key (`newest_only`: the one of the
/// largest size).
pub type StoredCheckpoints = Vec<(String, Found<Fetched>)>;

/// What checking one stored checkpoint found: the checkpoint and its signer, or why
/// it does not hold.
pub type CheckpointVerdict = Result<(Checkpoint, ledger_core::KeyId), String>;

/// Reads the stored checkpoints (`newest_only`: the one of the largest size).
pub async fn read_checkpoints(
    store: &Store,
    newest_only: bool,
) -> Result<StoredCheckpoints, Error> {
    let mut listed = store.list(tlog::CHECKPOINT_PREFIX).await?;
    listed.sort();
    if newest_only {
        listed = listed.pop().into_iter().collect();
    }
    Ok(read_objects(store, &listed).await?.envelopes)
}

/// Checks every read checkpoint's signature against `keys` and `index`, on every
/// core: one Ed25519 check each, which with a checkpoint per stage is half the
/// signature work of verifying a whole store. Pure, so it can run beside other work.
pub fn verify_checkpoints(
    stored: &StoredCheckpoints,
    index: &LogIndex,
    keys: &[&PublicKey],
) -> Vec<Option<CheckpointVerdict>> {
    crate::parallel::map(stored, |(_, fetched)| match fetched {
        Some(Ok(fetched)) => Some(check_checkpoint(&fetched.bytes, index, keys)),
        _ => None,
    })
}

/// The problems of `stored` given their `verdicts` (from [`verify_checkpoints`]).
///
/// `index` was read before the checkpoints were listed, so a writer running meanwhile
/// may have appended entries and stored a checkpoint of them. Entries are stored
/// before their checkpoint, so a log read after the listing holds every entry a
/// listed checkpoint names: a checkpoint `index` does not extend is checked again
/// against such a fresh read, and only a log that still does not extend it fails.
pub async fn checkpoint_problems(
    store: &Store,
    stored: StoredCheckpoints,
    verdicts: Vec<Option<CheckpointVerdict>>,
    keys: &[&PublicKey],
) -> Result<Vec<String>, Error> {
    let mut problems = Vec::new();
    let mut fresh: Option<LogIndex> = None;
    for ((key, fetched), verdict) in stored.into_iter().zip(verdicts) {
        let (fetched, mut checked) = match (fetched, verdict) {
            (Some(Ok(fetched)), Some(checked)) => (fetched, checked),
            (Some(Err(why)), _) => {
                problems.push(why);
                continue;
            }
            _ => continue,
        };
        if checked.is_err() {
            if fresh.is_none() {
                fresh = Some(LogIndex::read(store).await?);
            }
            if let Some(fresh) = &fresh {
                checked = check_checkpoint(&fetched.bytes, fresh, keys);
            }
        }
        let checked = checked.and_then(|(cp, signer)| {
            let named = tlog::checkpoint_key(cp.size, &signer);
            if named == key {
                Ok(())
            } else {
                Err(format!(
                    "a checkpoint of size {} by {} belongs at {named}: it was moved",
                    cp.size,
                    signer.short()
                ))
            }
        });
        problems.extend(checked.err().map(|e| format!("{key}: {e}")));
    }
    Ok(problems)
}

/// Verifies the stored checkpoints (`newest_only`: the one of the largest size)
/// against `keys` and `index`; returns problems.
pub async fn check_stored_checkpoints(
    store: &Store,
    index: &LogIndex,
    keys: &[&PublicKey],
    newest_only: bool,
) -> Result<Vec<String>, Error> {
    let stored = read_checkpoints(store, newest_only).await?;
    let verdicts = verify_checkpoints(&stored, index, keys);
    checkpoint_problems(store, stored, verdicts, keys).await
}

/// Verifies one checkpoint's signature and that the log extends it; returns it and
/// its (first trusted) signer.
pub fn check_checkpoint(
    bytes: &[u8],
    index: &LogIndex,
    keys: &[&PublicKey],
) -> Result<(Checkpoint, ledger_core::KeyId), String> {
    let text = std::str::from_utf8(bytes).map_err(|_not_utf8| "not UTF-8 text".to_owned())?;
    let (cp, signer) = Checkpoint::verify(text, keys).map_err(|e| e.to_string())?;
    index.extends(&cp)?;
    Ok((cp, signer))
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
