//! Writing evidence: validate, sign, store create-only, never overwrite.
//!
//! Attempts are reserved by a create-only put: whoever creates the first object of
//! attempt *n* owns it, and a writer that loses the race moves on to *n + 1*, after a
//! short random pause ([`Backoff`]) so that many writers of one SHA spread out; it
//! keeps going until it wins an attempt (there is no small fixed number of tries). The
//! policy that gated a stage is stored content-addressed beside the evidence, so an
//! auditor can always see exactly which rules were in force.

use crate::error::Error;
use ledger_core::dsse::Envelope;
use ledger_core::predicate::{Header, Input, Outcome, Runner};
use ledger_core::schema::{self, Document, SchemaError};
use ledger_core::tlog::{self, Checkpoint};
use ledger_core::EnvName;
use ledger_core::{
    ArtifactKind, ArtifactRef, Attestation, GitSha, Sha256Digest, SigningKey, Stage, Statement,
    Subject, LEDGER_VERSION,
};
use ledger_store::{PutOutcome, Store, StoreError};
use ledger_verify::read::{object_key, policy_key};
use ledger_verify::{Evidence, SignedPolicy};
use serde::Serialize;
use time::OffsetDateTime;

/// The highest attempt number an evidence key can name (`….attempt-9999.json`).
pub const MAX_ATTEMPT: u32 = 9999;

mod backoff;
pub use backoff::{transient, Backoff, STORE_RETRY_BUDGET};

/// A predicate in the making: the header fields known before a stage's work starts.
#[derive(Debug, Clone)]
pub struct Draft {
    pub stage: Stage,
    pub sha: GitSha,
    pub runner: Runner,
    pub inputs: Vec<Input>,
    pub started_at: OffsetDateTime,
    pub policy_sha256: Sha256Digest,
    /// The store's log head this process last saw (its gate's read): where a later
    /// gate relying on this evidence starts reading the log.
    pub log_head: Option<tlog::LogHead>,
}

impl Draft {
    /// A draft for `stage`, started now.
    pub fn new(
        rec: &Recorder<'_>,
        stage: Stage,
        sha: GitSha,
        runner: &Runner,
        inputs: Vec<Input>,
    ) -> Draft {
        Draft {
            stage,
            sha,
            runner: runner.clone(),
            inputs,
            started_at: OffsetDateTime::now_utc(),
            policy_sha256: rec.policy.digest(),
            log_head: rec.store.seen_log_head(),
        }
    }

    /// The finished header, for the attempt the predicate is written as; the stage
    /// puts it into its typed predicate beside its own fields.
    pub fn header(&self, attempt: u32, finished_at: OffsetDateTime, result: Outcome) -> Header {
        Header {
            stage: self.stage,
            sha: self.sha,
            attempt,
            started_at: self.started_at,
            finished_at,
            result,
            runner: self.runner.clone(),
            inputs: self.inputs.clone(),
            policy_sha256: self.policy_sha256,
            ledger_version: LEDGER_VERSION.to_owned(),
            log_head: self.log_head,
        }
    }
}

/// A standard statement to write beside an artifact
/// ([`Recorder::write_next_with`]): which one, its subjects, its predicate.
#[derive(Debug, Clone)]
pub struct Companion {
    pub attestation: Attestation,
    pub subjects: Vec<Subject>,
    pub predicate: serde_json::Value,
}

impl Companion {
    /// A companion with a typed predicate.
    pub fn new(
        attestation: Attestation,
        subjects: Vec<Subject>,
        predicate: &impl Serialize,
    ) -> Result<Companion, Error> {
        let predicate = serde_json::to_value(predicate).map_err(|e| Error::OwnSchema {
            what: format!("{attestation} statement"),
            source: SchemaError::Broken("serialize".into(), e.to_string()),
        })?;
        Ok(Companion {
            attestation,
            subjects,
            predicate,
        })
    }
}

/// A companion as stored: the hash link its artifact records, and the envelope's
/// bytes (what is attached to images in the registry).
#[derive(Debug, Clone)]
pub struct Written {
    pub link: Input,
    pub bytes: Vec<u8>,
}

/// What a stage recorded.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub r: ArtifactRef,
    pub result: Outcome,
    /// One line for people, e.g. which images or checks.
    pub summary: String,
}

/// Everything needed to write evidence (references only, so copied freely).
#[derive(Debug, Clone, Copy)]
pub struct Recorder<'a> {
    pub store: &'a Store,
    /// The policy in force, signed by its owners.
    pub policy: &'a SignedPolicy,
    pub key: &'a SigningKey,
}

impl Recorder<'_> {
    /// Stores the policy's bytes under their digest (idempotent), after what its
    /// trust rests on (the owners' root versions and signature) that the store does
    /// not hold yet.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn store_policy(&self) -> Result<(), Error> {
        self.store_policy_unless_read(None).await
    }

    /// [`Recorder::store_policy`], skipping the write when `read` (a gate's
    /// verifier) already read the stored copy byte for byte: the object is named
    /// after its digest and the store is write-once, so the write could only have
    /// found it there (a write and the read comparing it: two round trips a stage
    /// need not make).
    pub async fn store_policy_unless_read(&self, read: Option<&Evidence<'_>>) -> Result<(), Error> {
        self.policy.pin(self.store).await?;
        let digest = self.policy.digest();
        let key = policy_key(&digest)?;
        if read.is_some_and(|evidence| evidence.read_as(&key, &digest)) {
            return Ok(());
        }
        match self
            .store
            .put_create(&key, self.policy.bytes().to_vec())
            .await
        {
            Ok(_) => Ok(()),
            // Same name, other bytes: someone altered the stored copy.
            Err(StoreError::AlreadyExists { .. }) => Err(Error::PolicyObjectAltered {
                key: key.as_str().to_owned(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Validates, signs and stores one artifact at exactly `r`. Returns the SHA-256
    /// of the stored envelope bytes.
    #[tracing::instrument(level = "debug", skip_all, fields(key = %r.key()))]
    pub async fn write(
        &self,
        r: &ArtifactRef,
        subjects: Vec<Subject>,
        predicate: impl Serialize,
    ) -> Result<Sha256Digest, Error> {
        let digest = self.write_unlogged(r, subjects, predicate).await?;
        self.log_and_checkpoint().await?;
        Ok(digest)
    }

    /// [`Recorder::write`] without the log entry (the caller appends it with
    /// [`Recorder::log_and_checkpoint`]). Writing the same predicate again is a no-op:
    /// the signature is deterministic, so the bytes are identical.
    pub async fn write_unlogged(
        &self,
        r: &ArtifactRef,
        subjects: Vec<Subject>,
        predicate: impl Serialize,
    ) -> Result<Sha256Digest, Error> {
        let envelope = self.seal(r.kind, subjects, predicate)?;
        let bytes = envelope.to_bytes();
        let digest = Sha256Digest::of(&bytes);
        match self.store.put_create(&object_key(r), bytes).await? {
            PutOutcome::Created | PutOutcome::AlreadyPresent => {}
        }
        Ok(digest)
    }

    /// Appends one log entry naming everything this process wrote since the last
    /// (the envelope, its captured output, the policy copy …), then stores a
    /// checkpoint of the new head signed with the stage's key. Objects first, entry
    /// second (`ledger_store` says why); a checkpoint lost to a crash is only a
    /// checkpoint fewer.
    pub async fn log_and_checkpoint(&self) -> Result<(), Error> {
        crash_point("LEDGER_TEST_CRASH_BEFORE_LOG");
        let Some(head) = self.store.log_flush().await? else {
            return Ok(());
        };
        let note = Checkpoint {
            size: head.size,
            head: head.head,
        }
        .sign(self.key);
        let key =
            ledger_store::ObjectKey::parse(&tlog::checkpoint_key(head.size, self.key.key_id()))
                .map_err(StoreError::from)?;
        match self.store.put_create(&key, note).await {
            Ok(_) | Err(StoreError::AlreadyExists { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes the next free attempt of `kind`, building the (typed) predicate for the attempt
    /// number it gets; moves on when another writer took that attempt first.
    pub async fn write_next<P: Serialize>(
        &self,
        kind: ArtifactKind,
        sha: &GitSha,
        subjects: Vec<Subject>,
        predicate_for: impl Fn(u32) -> P,
    ) -> Result<(ArtifactRef, Sha256Digest), Error> {
        self.write_next_in(kind, sha, None, subjects, predicate_for)
            .await
    }

    /// [`Recorder::write_next`] for evidence kept per environment (deploy, smoke).
    pub async fn write_next_in<P: Serialize>(
        &self,
        kind: ArtifactKind,
        sha: &GitSha,
        env: Option<EnvName>,
        subjects: Vec<Subject>,
        predicate_for: impl Fn(u32) -> P,
    ) -> Result<(ArtifactRef, Sha256Digest), Error> {
        let predicate_for = |attempt, _| predicate_for(attempt);
        let (r, digest, _) = self
            .write_next_beside(kind, sha, env, subjects, None, predicate_for)
            .await?;
        self.log_and_checkpoint().await?;
        Ok((r, digest))
    }

    /// [`Recorder::write_next`] with a companion statement (`ledger_core::attestation`),
    /// if one is given, written first at the same attempt and handed to
    /// `predicate_for` as the hash link the artifact records. Returns the companion as
    /// written.
    pub async fn write_next_with<P: Serialize>(
        &self,
        kind: ArtifactKind,
        sha: &GitSha,
        subjects: Vec<Subject>,
        companion: Option<Companion>,
        predicate_for: impl Fn(u32, Option<Input>) -> P,
    ) -> Result<(ArtifactRef, Sha256Digest, Option<Written>), Error> {
        let written = self
            .write_next_beside(kind, sha, None, subjects, companion, predicate_for)
            .await?;
        self.log_and_checkpoint().await?;
        Ok(written)
    }

    /// [`Recorder::write_next_with`] without the log entry: the caller writes more,
    /// then appends one entry naming all of it ([`Recorder::log_and_checkpoint`]).
    pub async fn write_next_with_unlogged<P: Serialize>(
        &self,
        kind: ArtifactKind,
        sha: &GitSha,
        subjects: Vec<Subject>,
        companion: Option<Companion>,
        predicate_for: impl Fn(u32, Option<Input>) -> P,
    ) -> Result<(ArtifactRef, Sha256Digest, Option<Written>), Error> {
        self.write_next_beside(kind, sha, None, subjects, companion, predicate_for)
            .await
    }

    /// Writes the companion and artifact at the next free attempt; the caller
    /// appends the log entry naming them.
    async fn write_next_beside<P: Serialize>(
        &self,
        kind: ArtifactKind,
        sha: &GitSha,
        env: Option<EnvName>,
        subjects: Vec<Subject>,
        companion: Option<Companion>,
        predicate_for: impl Fn(u32, Option<Input>) -> P,
    ) -> Result<(ArtifactRef, Sha256Digest, Option<Written>), Error> {
        let sealed = companion
            .map(|c| self.seal_companion(kind, c))
            .transpose()?;
        let mut attempt = self.store.next_attempt_in(kind, sha, env).await?;
        let mut backoff = Backoff::default();
        while attempt <= MAX_ATTEMPT {
            let r = ArtifactRef::new(kind, *sha, attempt).in_env(env);
            match self
                .write_pair(&r, sealed.as_ref(), &subjects, &predicate_for)
                .await
            {
                Ok((digest, written)) => return Ok((r, digest, written)),
                Err(Error::Store(StoreError::AlreadyExists { .. })) => {
                    attempt += 1;
                    backoff.contended().await;
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::AttemptContention {
            stage: kind.stage(),
            tries: MAX_ATTEMPT,
        })
    }

    /// Stores the companion (if any), then the artifact linking it, both at `r`'s
    /// attempt; either one already taken by another writer moves the caller on.
    async fn write_pair<P: Serialize>(
        &self,
        r: &ArtifactRef,
        companion: Option<&Vec<u8>>,
        subjects: &[Subject],
        predicate_for: &impl Fn(u32, Option<Input>) -> P,
    ) -> Result<(Sha256Digest, Option<Written>), Error> {
        let mut written = None;
        if let (Some(bytes), Some(key)) = (companion, Attestation::key_beside(r)) {
            let object = ledger_store::ObjectKey::parse(&key).map_err(StoreError::from)?;
            self.store.put_create(&object, bytes.clone()).await?;
            written = Some(Written {
                link: Input {
                    key,
                    sha256: Sha256Digest::of(bytes),
                },
                bytes: bytes.clone(),
            });
        }
        let link = written.as_ref().map(|w| w.link.clone());
        let digest = self
            .write_unlogged(r, subjects.to_vec(), predicate_for(r.attempt, link))
            .await?;
        Ok((digest, written))
    }

    /// Validates and signs a companion statement of an artifact of `kind`.
    fn seal_companion(&self, kind: ArtifactKind, c: Companion) -> Result<Vec<u8>, Error> {
        let what = format!("{} statement", c.attestation);
        if Attestation::of(kind) != Some(c.attestation) {
            return Err(Error::OwnSchema {
                what,
                source: SchemaError::Broken("companion".into(), format!("not one of {kind}")),
            });
        }
        schema::validate(Document::Attestation(c.attestation), &c.predicate)
            .map_err(|source| Error::OwnSchema { what, source })?;
        let statement =
            Statement::with_type(c.attestation.predicate_type(), c.subjects, c.predicate);
        Ok(Envelope::sign(&statement, self.key).to_bytes())
    }

    fn seal(
        &self,
        kind: ArtifactKind,
        subjects: Vec<Subject>,
        predicate: impl Serialize,
    ) -> Result<Envelope, Error> {
        let predicate = serde_json::to_value(predicate).map_err(|e| Error::OwnSchema {
            what: format!("{kind} predicate"),
            source: SchemaError::Broken("serialize".into(), e.to_string()),
        })?;
        schema::validate(Document::Predicate(kind), &predicate).map_err(|source| {
            Error::OwnSchema {
                what: format!("{kind} predicate"),
                source,
            }
        })?;
        let statement = Statement::new(kind, subjects, predicate);
        Ok(Envelope::sign(&statement, self.key))
    }
}

/// In debug builds, ends the process at once when the variable `name` is set: the
/// tests' way of killing `ledger` at an exact point (between a stage's objects and
/// their log entry) instead of racing a signal against it. Release builds have no
/// such point.
fn crash_point(name: &str) {
    #[cfg(debug_assertions)]
    if std::env::var_os(name).is_some() {
        eprintln!("ledger: {name} is set: ending here, as a crash would");
        std::process::abort();
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
}
