//! `ledger checkpoint`: the store log's newest signed head, verified, for auditors to
//! keep (in release notes, a git tag, their own storage) and check later with
//! `ledger verify --checkpoint FILE`; and `--genesis`, which starts the log of a store
//! written before there was one, never silently.

use crate::args::{CheckpointArgs, Global};
use crate::context::{self, Reader, Writer};
use crate::exit::{Code, Failure, Result};
use ledger_core::tlog::{self, Checkpoint, LoggedObject};
use ledger_core::{ArtifactKind, PublicKey, Sha256Digest};
use ledger_verify::tlog::{check_checkpoint, LogIndex};
use ledger_verify::{ObjectKey, Store};

/// `ledger checkpoint [--genesis]`.
pub async fn checkpoint(global: &Global, args: CheckpointArgs) -> Result<Code> {
    if args.genesis {
        return genesis(global, &args).await;
    }
    let reader = Reader::load(global).await?;
    let index = LogIndex::read(&reader.store).await.map_err(Failure::from)?;
    if index.is_empty() {
        return Err(Failure::new(
            Code::VerificationFailed,
            ledger_verify::tlog::NO_LOG,
        ));
    }
    let keys: Vec<&PublicKey> = reader.policy.keys().iter().map(|k| &k.key).collect();
    let mut listed = reader
        .store
        .list(tlog::CHECKPOINT_PREFIX)
        .await
        .map_err(Failure::from)?;
    listed.sort();
    let Some(newest) = listed.last() else {
        return Err(Failure::new(
            Code::VerificationFailed,
            "the store's log has no checkpoint yet",
        )
        .hint("every stage writes one; run a stage first"));
    };
    let key =
        ObjectKey::parse(newest).map_err(|e| Failure::from(ledger_verify::StoreError::from(e)))?;
    let bytes = reader
        .store
        .get(&key)
        .await
        .map_err(Failure::from)?
        .ok_or_else(|| Failure::new(Code::VerificationFailed, format!("{newest} vanished")))?;
    if !index.problems.is_empty() {
        return Err(Failure::new(
            Code::VerificationFailed,
            format!("the store's log is broken: {}", index.problems.join("; ")),
        ));
    }
    check_checkpoint(&bytes, &index, &keys)
        .map_err(|e| Failure::new(Code::VerificationFailed, format!("{newest}: {e}")))?;
    print!("{}", String::from_utf8_lossy(&bytes));
    Ok(Code::Success)
}

/// One entry naming everything in a store that has no log yet, then a checkpoint.
async fn genesis(global: &Global, args: &CheckpointArgs) -> Result<Code> {
    let root = context::repo_root()?;
    let writer = Writer::load(global, &root, args.key.as_deref(), None).await?;
    let store = &writer.store;
    let index = LogIndex::read(store).await.map_err(Failure::from)?;
    if !index.is_empty() {
        return Err(Failure::input(format!(
            "the store already has a log ({} entries); a genesis entry only starts one",
            index.size()
        )));
    }
    let objects = everything(store).await?;
    let count = objects.len();
    let head = store.log_append(objects).await.map_err(Failure::from)?;
    let note = Checkpoint {
        size: head.size,
        head: head.head,
    }
    .sign(&writer.key);
    let key = ObjectKey::parse(&tlog::checkpoint_key(head.size, writer.key.key_id()))
        .map_err(|e| Failure::from(ledger_verify::StoreError::from(e)))?;
    store
        .put_create(&key, note.clone())
        .await
        .map_err(Failure::from)?;
    say!("ledger: started the log with {count} object(s) that exist now; from here on, deletions are detected");
    print!("{note}");
    Ok(Code::Success)
}

/// Every object of the store's folders with the SHA-256 of its bytes.
async fn everything(store: &Store) -> Result<Vec<LoggedObject>> {
    let mut dirs: Vec<&str> = ArtifactKind::ALL.iter().map(|k| k.dir()).collect();
    dirs.extend(["policies", "trust", "leases", "prune"]);
    dirs.sort_unstable();
    dirs.dedup();
    let mut out = Vec::new();
    for dir in dirs {
        for key in store
            .list(&format!("{dir}/"))
            .await
            .map_err(Failure::from)?
        {
            let object = ObjectKey::parse(&key)
                .map_err(|e| Failure::from(ledger_verify::StoreError::from(e)))?;
            let Some(bytes) = store
                .get_limited(&object, ledger_verify::read::MAX_LOG_BYTES)
                .await
                .map_err(Failure::from)?
            else {
                continue;
            };
            out.push(LoggedObject {
                key,
                sha256: Sha256Digest::of(&bytes),
            });
        }
    }
    Ok(out)
}
