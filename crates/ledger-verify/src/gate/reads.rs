//! What a gate reads once it has the newest attempts' envelopes, in one round trip
//! of requests sent together instead of one after another.
//!
//! After the envelopes, a gate needs three independent things: the store's log from
//! the oldest head those envelopes recorded, the newest checkpoint over that part of
//! the log, and the objects the envelopes' checks read (the stored policy that gated
//! each, the inputs they link). Each was a listing and a read after the one before,
//! six round trips for a stage like `smoke`; on a bucket each costs its latency. All
//! three are named by the envelopes before they are verified, so they are read at
//! once. The names only say what to read: every object is still checked as before
//! (an envelope that lies about its inputs fails its own check), and an absent one
//! is not remembered, so a check that needs it reads again.

use crate::error::Error;
use crate::evidence::Evidence;
use crate::read::{object_key, policy_key, read_objects};
use crate::tlog::{read_checkpoints_from, LogIndex, Start};
use ledger_core::predicate::Input;
use ledger_core::tlog::LogHead;
use ledger_core::{ArtifactRef, Sha256Digest};
use std::sync::Arc;

/// What an envelope's predicate names, read without verifying it.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct Named {
    /// The log head its gate read.
    #[serde(default)]
    pub log_head: Option<LogHead>,
    /// The policy that gated it.
    #[serde(default)]
    pub policy_sha256: Option<Sha256Digest>,
    /// The evidence it was made from.
    #[serde(default)]
    pub inputs: Vec<Input>,
}

impl Evidence<'_> {
    /// Reads, all at once, what gating on `newest` (envelopes read ahead already)
    /// takes next: the log from the oldest head they recorded, the policies and
    /// inputs they name, and with `checkpoint` the newest checkpoint over that log.
    pub async fn read_for_gate(
        &mut self,
        newest: &[ArtifactRef],
        checkpoint: bool,
    ) -> Result<(), Error> {
        // Each envelope parsed once, for its log head and what it names.
        let mut heads = Vec::with_capacity(newest.len());
        let mut keys = Vec::new();
        for r in newest {
            let Some(named) = self.named(r).await? else {
                heads.push(None);
                continue;
            };
            heads.push(named.log_head);
            keys.extend(named.policy_sha256.map(|d| policy_key(&d)).transpose()?);
            keys.extend(
                named
                    .inputs
                    .iter()
                    .filter_map(|i| ArtifactRef::parse_key(&i.key))
                    .map(|i| object_key(&i)),
            );
        }
        let start = self.start_for_heads(&heads);
        let keys = self.unread(keys.into_iter().map(|k| k.as_str().to_owned()));
        let store = self.store();
        let log = async {
            match start {
                Some(start) => LogIndex::read_from(store, start).await.map(Some),
                None => Ok(None),
            }
        };
        // The checkpoints' names sort by the log size they sign, so they are listed
        // from the same place without waiting for the log; a gate with no inputs
        // reads the last entry alone and learns where that is only from the log.
        let checkpoint = async {
            let (start, first) = match start {
                _ if !checkpoint => return Ok(None),
                Some(start @ Start::At(head)) => (start, head.size),
                Some(start @ Start::Whole) => (start, 1),
                Some(Start::Last) | None => return Ok(None),
            };
            let stored = read_checkpoints_from(store, start, first, true).await?;
            Ok::<_, Error>(Some((start, stored)))
        };
        let (log, checkpoint, objects) =
            futures::future::try_join3(log, checkpoint, read_objects(store, &keys)).await?;
        if let Some(log) = log {
            self.log = Some(Arc::new(log));
        }
        if checkpoint.is_some() {
            self.newest_checkpoint = checkpoint;
        }
        self.remember_present(objects);
        Ok(())
    }

    /// What `r`'s stored envelope names, taken *without* verifying it; `None` when it
    /// does not read or parse (its own check then says why).
    pub(crate) async fn named(&mut self, r: &ArtifactRef) -> Result<Option<Named>, Error> {
        let Some(Ok(fetched)) = self.fetch(&object_key(r)).await? else {
            return Ok(None);
        };
        let Ok(parsed) = ledger_core::dsse::Envelope::parse(&fetched.bytes) else {
            return Ok(None);
        };
        Ok(serde_json::from_value::<Named>(parsed.statement.predicate).ok())
    }
}
