//! What the store's log says about the evidence being verified: the checks
//! `Evidence` runs with a [`LogIndex`] (an object the log does not name, or names
//! with another digest; a logged object that is gone; attempts with a hole).

use crate::error::Error;
use crate::evidence::Evidence;
use crate::tlog::{LogIndex, Start, NO_LOG};
use ledger_core::tlog::LogHead;
use ledger_core::{ArtifactKind, ArtifactRef, EnvName, GitSha, Sha256Digest};
use std::sync::Arc;

/// What the log says about one SHA's listed objects.
#[derive(Debug, Default)]
pub struct ShaGaps {
    /// Envelopes the log names that the listing lacks (deleted or renamed): verified
    /// like the rest, so they fail as missing.
    pub deleted: Vec<ArtifactRef>,
    /// Other problems: the log itself, captured output not logged or deleted, attempt
    /// numbers with a hole.
    pub problems: Vec<String>,
}

impl Evidence<'_> {
    /// What keeps the log from saying which attempts exist: a broken chain, or a
    /// stored checkpoint (the newest) that the log no longer extends.
    pub async fn log_head_problems(&mut self) -> Result<Vec<String>, Error> {
        let index = self.log_index().await?;
        if index.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<&ledger_core::PublicKey> =
            self.policy().keys().iter().map(|k| &k.key).collect();
        let mut problems = index.problems.clone();
        // The newest checkpoint, read beside this very part of the log by the gate
        // (`gate::reads`), else read now.
        let read_beside = self
            .newest_checkpoint
            .take()
            .filter(|(start, _)| *start == index.start());
        problems.extend(match read_beside {
            Some((_, stored)) => {
                crate::tlog::check_read_checkpoints(self.store, &index, stored, &keys).await?
            }
            None => crate::tlog::check_stored_checkpoints(self.store, &index, &keys, true).await?,
        });
        Ok(problems)
    }

    /// The store's log, read once per verifier: whole, unless a gate read only the
    /// part it needs first ([`Evidence::read_log_covering`]).
    pub async fn log_index(&mut self) -> Result<Arc<LogIndex>, Error> {
        if let Some(index) = &self.log {
            return Ok(index.clone());
        }
        let index = Arc::new(LogIndex::read(self.store).await?);
        self.log = Some(index.clone());
        Ok(index)
    }

    /// Makes the log read so far show the head at `head` and everything after it
    /// (`None`: the whole log), reading it again from there when it does not.
    pub async fn read_log_covering(&mut self, head: Option<LogHead>) -> Result<(), Error> {
        if let Some(start) = self.start_covering(head) {
            self.log = Some(Arc::new(LogIndex::read_from(self.store, start).await?));
        }
        Ok(())
    }

    /// Reads the part of the log that can name an attempt written after any of
    /// `refs`: from the oldest head their evidence recorded (whole, if one recorded
    /// none or does not read), unless that much was read already. With no `refs`,
    /// only the last entry: a gate that relies on no evidence needs the head alone.
    pub async fn read_log_for(&mut self, refs: &[ArtifactRef]) -> Result<(), Error> {
        let mut heads = Vec::with_capacity(refs.len());
        for r in refs {
            heads.push(self.log_head_hint(r).await?);
        }
        if let Some(start) = self.start_for_heads(&heads) {
            self.log = Some(Arc::new(LogIndex::read_from(self.store, start).await?));
        }
        Ok(())
    }

    /// Where to read the log from for evidence that recorded `heads` (`None` for
    /// one that recorded none or does not read): from the oldest, or whole when one
    /// is unknown, or the last entry alone for no evidence; `None` when what was read
    /// already covers it.
    pub(crate) fn start_for_heads(&self, heads: &[Option<LogHead>]) -> Option<Start> {
        if heads.is_empty() {
            return self.log.is_none().then_some(Start::Last);
        }
        let mut oldest: Option<LogHead> = None;
        for head in heads {
            let Some(head) = *head else {
                return self.start_covering(None);
            };
            oldest = Some(match oldest {
                Some(o) if o.size <= head.size => o,
                _ => head,
            });
        }
        self.start_covering(oldest)
    }

    /// Where to read the log from to show `head` and everything after it (`None`:
    /// the whole log); `None` when what was read already does.
    fn start_covering(&self, head: Option<LogHead>) -> Option<Start> {
        let covered = self.log.as_ref().is_some_and(|index| match head {
            Some(head) => index.covers(head.size),
            None => index.start() == Start::Whole,
        });
        (!covered).then(|| head.map_or(Start::Whole, Start::At))
    }

    /// The log head `r`'s evidence says its gate read, taken from the stored
    /// envelope *without* verifying it: it only says where to start reading the log.
    /// Evidence that was altered fails its own check later; `None` (no such field,
    /// or the object does not read) means reading the log whole.
    pub async fn log_head_hint(&mut self, r: &ArtifactRef) -> Result<Option<LogHead>, Error> {
        Ok(self.named(r).await?.and_then(|named| named.log_head))
    }

    /// The latest attempt of `kind` for `sha` (in `env`) the log names, given the
    /// attempts `listed` (ascending), reading only as much of the log as it takes.
    ///
    /// The newest listed attempt's recorded head starts the read: every attempt
    /// written after it is named after that head. If the log does not name it (a
    /// writer killed before logging), the one below it is asked the same way, so an
    /// unlogged attempt is never taken for the latest, as with the whole log.
    pub async fn latest_logged(
        &mut self,
        kind: ArtifactKind,
        sha: &GitSha,
        env: Option<EnvName>,
        listed: &[u32],
    ) -> Result<Option<ArtifactRef>, Error> {
        for attempt in listed.iter().rev() {
            let r = ArtifactRef::new(kind, *sha, *attempt).in_env(env);
            let hint = self.log_head_hint(&r).await?;
            self.read_log_covering(hint).await?;
            let index = self.log_index().await?;
            if index.is_empty() {
                // No log at all: the listing decides (and the evidence fails for it).
                return Ok(Some(r));
            }
            let logged = index.latest(kind, sha, env);
            if logged.is_some_and(|l| l.attempt >= r.attempt) {
                return Ok(logged);
            }
        }
        // No listed attempt is logged: nothing is evidence to a gate. (A logged
        // attempt that was deleted before the oldest of them is no evidence either;
        // `verify` reads the whole log and reports it.)
        Ok(None)
    }

    /// What is wrong with the log head evidence at `key` recorded (its gate's read).
    pub(crate) async fn recorded_head_problems(
        &mut self,
        key: &str,
        head: &LogHead,
    ) -> Result<Vec<String>, Error> {
        let index = self.log_index().await?;
        if index.is_empty() {
            return Ok(Vec::new());
        }
        Ok(index.recorded_head_problems(key, head))
    }

    /// Uses `index` instead of reading the log (`verify --all` reads it once).
    pub fn with_log(mut self, index: Arc<LogIndex>) -> Self {
        self.log = Some(index);
        self
    }

    /// What is wrong with object `key` (of digest `found`, `None`: absent) as the log
    /// sees it.
    pub(crate) async fn log_problems(
        &mut self,
        key: &str,
        found: Option<Sha256Digest>,
    ) -> Result<Vec<String>, Error> {
        let index = self.log_index().await?;
        if index.is_empty() {
            return Ok(vec![NO_LOG.to_owned()]);
        }
        Ok(match (index.get(key), found) {
            (None, None) => vec![],
            (Some(l), None) => vec![format!(
                "the store's log names it (entry {}): it was deleted or renamed",
                l.seq
            )],
            (None, Some(_)) => vec![format!(
                "{key} is not in the store's log: no writer logged it (a `ledger` killed before logging? the next run of the stage logs it)"
            )],
            (Some(l), Some(d)) if l.sha256 != d => vec![format!(
                "{key} is not the object the log recorded in entry {} (sha256 {}): it was replaced",
                l.seq, l.sha256
            )],
            (Some(_), Some(_)) => vec![],
        })
    }

    /// Compares what is listed under `sha`'s prefixes with what the log names there.
    pub async fn sha_log_gaps(
        &mut self,
        sha: &GitSha,
        listed: &[String],
    ) -> Result<ShaGaps, Error> {
        let index = self.log_index().await?;
        let mut gaps = ShaGaps::default();
        if index.is_empty() {
            gaps.problems.extend(attempt_holes(sha, listed, &index));
            return Ok(gaps);
        }
        gaps.problems.extend(index.problems.iter().cloned());
        let listed_set: std::collections::HashSet<&str> =
            listed.iter().map(String::as_str).collect();
        for kind in ArtifactKind::ALL {
            let prefix = kind.prefix(sha);
            let mut logged: Vec<&String> = index
                .keys_of(sha)
                .iter()
                .filter(|k| k.starts_with(&prefix))
                .collect();
            logged.sort();
            for key in logged
                .into_iter()
                .filter(|k| !listed_set.contains(k.as_str()))
            {
                match ArtifactRef::parse_key(key) {
                    Some(r) => gaps.deleted.push(r),
                    None => gaps.problems.push(format!(
                        "the store's log names {key} (entry {}): it was deleted or renamed",
                        index.get(key).map_or(0, |l| l.seq)
                    )),
                }
            }
        }
        for key in listed.iter().filter(|k| k.ends_with(".log")) {
            // A log that cannot be read is reported by its artifact's check.
            let digest = match self.snapshot {
                Some(snapshot) => snapshot.log_digests.get(key.as_str()).cloned(),
                None => self.log_cache.get(key.as_str()).cloned().flatten(),
            };
            let Some(digest) = digest.transpose().ok() else {
                continue;
            };
            gaps.problems.extend(self.log_problems(key, digest).await?);
        }
        // Companions (SLSA statements) are held to the log like captured output; a
        // broken or missing one is also reported by its artifact's check.
        for key in listed
            .iter()
            .filter(|k| ledger_core::Attestation::parse_key(k).is_some())
        {
            let object =
                ledger_store::ObjectKey::parse(key).map_err(ledger_store::StoreError::from)?;
            let Some(Ok(fetched)) = self.fetch(&object).await? else {
                continue;
            };
            gaps.problems
                .extend(self.log_problems(key, Some(fetched.digest)).await?);
        }
        gaps.problems.extend(attempt_holes(sha, listed, &index));
        Ok(gaps)
    }
}

/// Attempt numbers of a stage (per environment) that skip one: 1, 2, 4 means 3 was
/// removed from both the store and the log.
fn attempt_holes(sha: &GitSha, listed: &[String], index: &LogIndex) -> Vec<String> {
    let mut by_stage: std::collections::BTreeMap<(ArtifactKind, Option<EnvName>), Vec<u32>> =
        std::collections::BTreeMap::new();
    for key in listed.iter().chain(index.keys_of(sha)) {
        if let Some(r) = ArtifactRef::parse_key(key).filter(|r| r.sha == *sha) {
            by_stage.entry((r.kind, r.env)).or_default().push(r.attempt);
        }
    }
    let mut out = Vec::new();
    for ((kind, env), mut attempts) in by_stage {
        attempts.sort_unstable();
        attempts.dedup();
        if let Some(missing) = (1..)
            .zip(&attempts)
            .find(|(want, got)| want != *got)
            .map(|(w, _)| w)
        {
            let r = ArtifactRef {
                kind,
                sha: *sha,
                attempt: missing,
                env,
            };
            out.push(format!(
                "{}: attempt {missing} of `{}` is neither stored nor logged, but later attempts are: it was removed",
                r.key(),
                kind.stage()
            ));
        }
    }
    out
}
