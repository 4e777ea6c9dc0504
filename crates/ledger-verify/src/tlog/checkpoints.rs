//! The log's signed checkpoints read back: each signed by a key the policy trusts
//! and extended by the part of the log read (`verify` checks every one, a gate the
//! newest of those over the tail it read).

use super::{LogIndex, Start};
use crate::error::Error;
use crate::read::{read_objects, Fetched, Found};
use ledger_core::tlog::{self, Checkpoint};
use ledger_core::PublicKey;
use ledger_store::Store;

/// The stored checkpoints as read, each with its key (`newest_only`: the one of the
/// largest size).
pub type StoredCheckpoints = Vec<(String, Found<Fetched>)>;

/// What checking one stored checkpoint found: the checkpoint and its signer, or why
/// it does not hold.
pub type CheckpointVerdict = Result<(Checkpoint, ledger_core::KeyId), String>;

/// Reads the stored checkpoints (`newest_only`: the one of the largest size) of
/// the part of the log `index` read.
pub async fn read_checkpoints(
    store: &Store,
    index: &LogIndex,
    newest_only: bool,
) -> Result<StoredCheckpoints, Error> {
    read_checkpoints_from(store, index.start, index.first, newest_only).await
}

/// [`read_checkpoints`] of a log read from `start` whose first entry is `first`
/// (both known before the log is read, except for [`Start::Last`]), so that the
/// checkpoints can be read at the same time as the log.
pub async fn read_checkpoints_from(
    store: &Store,
    start: Start,
    first: u64,
    newest_only: bool,
) -> Result<StoredCheckpoints, Error> {
    let mut listed = if start == Start::Whole {
        store.list(tlog::CHECKPOINT_PREFIX).await?
    } else {
        // Keys sort by size: `checkpoints/<size>` sorts just before its own keys.
        let from = format!("{}{:016}", tlog::CHECKPOINT_PREFIX, first.saturating_sub(1));
        store.list_after(tlog::CHECKPOINT_PREFIX, &from).await?
    };
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
/// When `index` was read before the checkpoints were listed (a gate reads them side
/// by side), a writer running meanwhile may have appended entries and stored a
/// checkpoint of them. Entries are stored before their checkpoint, so a log read
/// after the listing holds every entry a listed checkpoint names: a checkpoint
/// `index` does not extend is checked again against such a fresh read, and only a
/// log that still does not extend it fails.
pub async fn checkpoint_problems(
    store: &Store,
    index_start: Start,
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
                fresh = Some(LogIndex::read_from(store, index_start).await?);
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
    let stored = read_checkpoints(store, index, newest_only).await?;
    check_read_checkpoints(store, index, stored, keys).await
}

/// Verifies checkpoints read already (`stored`) against `keys` and `index`; returns
/// problems.
pub async fn check_read_checkpoints(
    store: &Store,
    index: &LogIndex,
    stored: StoredCheckpoints,
    keys: &[&PublicKey],
) -> Result<Vec<String>, Error> {
    let verdicts = verify_checkpoints(&stored, index, keys);
    checkpoint_problems(store, index.start, stored, verdicts, keys).await
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
