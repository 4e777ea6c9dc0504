//! A commit's whole chain: every artifact stored (or logged) for a SHA, verified one
//! by one into a [`ChainReport`], with what the log says is missing.

use crate::error::Error;
use crate::evidence::ahead::{read_with_log, ReadWithLog, ToRead};
use crate::evidence::{ArtifactReport, ChainReport, Evidence};
use crate::read::{classify, policy_key};
use crate::tlog::{self, Start, StoredCheckpoints};
use ledger_core::{ArtifactKind, ArtifactRef, GitSha, PublicKey, Sha256Digest};
use ledger_store::Store;

impl Evidence<'_> {
    /// Verifies every artifact stored for `sha` ([`ShaReads`] says what is read
    /// first, and how).
    #[tracing::instrument(level = "debug", skip_all, fields(%sha))]
    pub async fn check_sha(&mut self, sha: &GitSha) -> Result<ChainReport, Error> {
        let start = self
            .log
            .as_ref()
            .map_or((Start::Whole, 1), |index| (index.start(), index.first()));
        let this = &*self;
        let reads = read_sha(self.store(), sha, start, |keys| this.to_read_with_log(keys)).await?;
        self.check_sha_read(reads).await
    }

    /// [`Evidence::check_sha`] of the SHA `reads` were made for, with what it reads
    /// first read already: by [`ShaReads::read`], for this verifier before it read
    /// anything.
    pub async fn check_sha_read(&mut self, reads: ShaReads) -> Result<ChainReport, Error> {
        let ShaReads {
            sha,
            keys,
            read,
            checkpoints: stored,
        } = reads;
        self.keep_read(read);
        // Every stored checkpoint must still describe the log: a log cut back below
        // a signed head is caught here. Their signatures are checked on other
        // threads while this one checks the chain.
        let index = self.log_index().await?;
        let start = index.start();
        let trusted: Vec<PublicKey> = self.policy().keys().iter().map(|k| k.key.clone()).collect();
        let pending = std::thread::spawn(move || {
            let keys: Vec<&PublicKey> = trusted.iter().collect();
            let verdicts = tlog::verify_checkpoints(&stored, &index, &keys);
            (stored, verdicts, trusted)
        });
        let mut report = self.check_listed(&sha, &keys).await?;
        let (stored, verdicts, trusted) = pending
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        let keys: Vec<&PublicKey> = trusted.iter().collect();
        let checkpoints =
            tlog::checkpoint_problems(self.store, start, stored, verdicts, &keys).await?;
        report.ok &= checkpoints.is_empty();
        report.log.extend(checkpoints);
        Ok(report)
    }

    /// Verifies the artifacts among `keys`, the objects listed under `sha`'s prefixes;
    /// any other object there is reported as unexpected.
    pub async fn check_listed(
        &mut self,
        sha: &GitSha,
        keys: &[String],
    ) -> Result<ChainReport, Error> {
        let (mut refs, unexpected) = classify(sha, keys);
        // What the log names but the listing lacks was deleted or renamed; what the
        // listing has but the log lacks, no writer logged.
        let gaps = self.sha_log_gaps(sha, keys).await?;
        refs.extend(gaps.deleted);
        refs.sort_by_key(|r| {
            (
                ArtifactKind::ALL.iter().position(|k| *k == r.kind),
                r.attempt,
            )
        });
        let mut artifacts = Vec::new();
        for r in refs {
            artifacts.push(self.report(&r).await?);
        }
        let ok = !artifacts.is_empty()
            && artifacts.iter().all(|a| a.ok)
            && unexpected.is_empty()
            && gaps.problems.is_empty();
        Ok(ChainReport {
            sha: *sha,
            ok,
            artifacts,
            unexpected,
            log: gaps.problems,
        })
    }

    async fn report(&mut self, r: &ArtifactRef) -> Result<ArtifactReport, Error> {
        let base = ArtifactReport {
            key: r.key(),
            kind: r.kind.as_str().to_owned(),
            stage: r.kind.stage().as_str().to_owned(),
            attempt: r.attempt,
            ok: false,
            result: None,
            signers: vec![],
            problems: vec![],
            notes: vec![],
        };
        Ok(match self.check(r).await?.into_result() {
            Ok(a) => ArtifactReport {
                ok: true,
                result: Some(a.header().result),
                signers: a.signers().iter().map(|k| k.to_string()).collect(),
                notes: a.notes().to_vec(),
                ..base
            },
            Err(problems) => ArtifactReport { problems, ..base },
        })
    }
}

/// What verifying one SHA's chain reads before it checks anything, in three rounds
/// of requests sent together (on a bucket each request is a round trip; one after
/// another these were fourteen): the listings under the SHA's prefixes with the
/// checkpoints' listing; then the listed objects, the stored policy, the
/// checkpoints and the log's listing; then the log's entries. The log is listed only
/// once the SHA's listing has ended, as when they were read in turn, so an object
/// and its entry written meanwhile are seen as before. Checkpoints are listed before
/// the log is read, so each names only entries stored before it, which that read
/// holds (one the read does not extend is checked again against a later read all
/// the same).
#[derive(Debug)]
pub struct ShaReads {
    sha: GitSha,
    keys: Vec<String>,
    read: ReadWithLog,
    checkpoints: StoredCheckpoints,
}

impl ShaReads {
    /// The reads of [`Evidence::check_sha`] for a verifier that has read nothing
    /// yet, verifying with the policy of digest `policy`. It needs no verifier, so it
    /// can run before the policy is trusted, beside that check (`ledger verify`):
    /// what it reads is checked only once a verifier has one.
    pub async fn read(
        store: &Store,
        sha: &GitSha,
        policy: &Sha256Digest,
    ) -> Result<ShaReads, Error> {
        let policy = policy_key(policy)?.as_str().to_owned();
        // Each kind has a folder of its own, so no key is listed twice.
        read_sha(store, sha, (Start::Whole, 1), |keys| {
            Ok(ToRead {
                objects: keys.to_vec(),
                policy: vec![policy.clone()],
                log: true,
            })
        })
        .await
    }
}

/// [`ShaReads`]' reads: `sha`'s listings, then what `to_read` names of them, beside
/// the stored checkpoints from `start` (a log read from its `.0`, whose first entry
/// is `.1`).
async fn read_sha(
    store: &Store,
    sha: &GitSha,
    start: (Start, u64),
    to_read: impl FnOnce(&[String]) -> Result<ToRead, Error>,
) -> Result<ShaReads, Error> {
    let chain = async move {
        let listings = ArtifactKind::ALL
            .iter()
            .map(|kind| async move { store.list(&kind.prefix(sha)).await.map_err(Error::from) });
        let keys: Vec<String> = futures::future::try_join_all(listings)
            .await?
            .into_iter()
            .flatten()
            .collect();
        let read = read_with_log(store, to_read(&keys)?).await?;
        Ok::<_, Error>((keys, read))
    };
    let ((keys, read), checkpoints) = futures::future::try_join(
        chain,
        tlog::read_checkpoints_from(store, start.0, start.1, false),
    )
    .await?;
    Ok(ShaReads {
        sha: *sha,
        keys,
        read,
        checkpoints,
    })
}
