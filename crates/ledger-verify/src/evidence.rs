//! Reading evidence back and checking every link of it.
//!
//! [`Evidence`] verifies one artifact completely: the envelope's signature by a key the
//! policy trusts for that stage (not revoked at the artifact's time, enough distinct
//! signers), the predicate type and schema, that subject, `sha`, `stage` and `attempt`
//! agree with the key it was stored under, that every `inputs` hash link and the
//! captured log still hash to what was signed, and that the policy which gated it is
//! stored intact. Every failed check is reported; nothing is skipped silently.

use crate::error::Error;
use crate::layout::{header_problems, read_predicate, result_problems, statement_problems};
use crate::read::{
    found_one, log_object_key, object_key, policy_key, Fetched, Found, Snapshot, MAX_LOG_BYTES,
};
use crate::trust::SignedPolicy;
pub use crate::typed::{AnyPredicate, Typed};
use ledger_core::dsse::Envelope;
use ledger_core::predicate::{CommandPredicate, Header, Input, Outcome};
use ledger_core::{ArtifactRef, EnvName, GitSha, KeyId, Sha256Digest, Statement};
use ledger_store::{ObjectKey, Store};
use serde::Serialize;
use std::collections::HashMap;

pub(crate) mod ahead;

/// An artifact that passed every check. Only [`Evidence::check`] makes one: its fields
/// are private, so holding an `Artifact` is proof that it verified.
#[derive(Debug, Clone)]
pub struct Artifact {
    r: ArtifactRef,
    digest: Sha256Digest,
    statement: Statement,
    typed: AnyPredicate,
    signers: Vec<KeyId>,
    notes: Vec<String>,
}

impl Artifact {
    /// Where it is stored.
    pub fn r(&self) -> &ArtifactRef {
        &self.r
    }

    /// Its object key.
    pub fn key(&self) -> String {
        self.r.key()
    }

    /// SHA-256 of the stored envelope bytes (what downstream `inputs` link to).
    pub fn digest(&self) -> Sha256Digest {
        self.digest
    }

    /// The hash link a later predicate records when it relies on this artifact.
    pub fn input(&self) -> Input {
        Input {
            key: self.r.key(),
            sha256: self.digest,
        }
    }

    /// The verified statement.
    pub fn statement(&self) -> &Statement {
        &self.statement
    }

    /// The fields every predicate carries.
    pub fn header(&self) -> &Header {
        self.typed.header()
    }

    /// The predicate, read into the type of its kind (done once, by the check).
    pub fn typed(&self) -> &AnyPredicate {
        &self.typed
    }

    /// The predicate as `P`, or [`Error::EvidenceInvalid`] when the artifact is of
    /// another kind (a caller asked a build for its smoke checks, say).
    pub fn predicate_as<P: Typed>(&self) -> Result<&P, Error> {
        P::from_any(&self.typed).ok_or_else(|| Error::EvidenceInvalid {
            key: self.key(),
            problems: vec![format!(
                "it holds {} evidence, not {}",
                self.r.kind,
                P::WHAT
            )],
        })
    }

    /// The distinct trusted keys that signed it.
    pub fn signers(&self) -> &[KeyId] {
        &self.signers
    }

    /// Remarks that are not failures (e.g. gated by an earlier policy version).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The predicate JSON (schema-valid).
    pub fn predicate(&self) -> &serde_json::Value {
        &self.statement.predicate
    }
}

/// The outcome of checking one artifact: verified, or the problems found. Evidence
/// that does not hold is data, not an error: the caller decides whether it denies a
/// gate, fails a verify or is left out of a history.
#[derive(Debug, Clone)]
pub enum Checked {
    Verified(Box<Artifact>),
    Invalid(Vec<String>),
}

impl Checked {
    /// The artifact, or the problems that keep it from verifying.
    pub fn into_result(self) -> Result<Artifact, Vec<String>> {
        match self {
            Checked::Verified(a) => Ok(*a),
            Checked::Invalid(problems) => Err(problems),
        }
    }

    /// The artifact if it verified.
    pub fn verified(self) -> Option<Artifact> {
        self.into_result().ok()
    }

    /// The artifact, or [`Error::EvidenceInvalid`] naming `key`.
    pub fn require(self, key: &str) -> Result<Artifact, Error> {
        self.into_result()
            .map_err(|problems| Error::EvidenceInvalid {
                key: key.to_owned(),
                problems,
            })
    }
}

/// One artifact's verification result, as reported to people and machines.
#[derive(Debug, Clone, Serialize)]
pub struct ArtifactReport {
    pub key: String,
    pub kind: String,
    pub stage: String,
    pub attempt: u32,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Outcome>,
    pub signers: Vec<String>,
    pub problems: Vec<String>,
    pub notes: Vec<String>,
}

/// The verification of every artifact stored for one SHA.
#[derive(Debug, Clone, Serialize)]
pub struct ChainReport {
    pub sha: GitSha,
    pub ok: bool,
    pub artifacts: Vec<ArtifactReport>,
    /// Objects under this SHA's prefixes that are not `ledger` evidence.
    pub unexpected: Vec<String>,
    /// What the store's log says is wrong: objects it names that are gone, objects
    /// it does not name, attempts removed, checkpoints it no longer extends.
    pub log: Vec<String>,
}

/// Verifies artifacts against a store and a policy, caching what it reads.
#[derive(Debug)]
pub struct Evidence<'a> {
    pub(crate) store: &'a Store,
    policy: &'a SignedPolicy,
    cache: HashMap<String, Found<Fetched>>,
    /// Digests of captured logs read ahead (`None`: absent from the store).
    pub(crate) log_cache: HashMap<String, Found<Sha256Digest>>,
    pub(crate) snapshot: Option<&'a Snapshot>,
    env: Option<EnvName>,
    /// The store's log, read on first need (`tlog`).
    pub(crate) log: Option<std::sync::Arc<crate::tlog::LogIndex>>,
    /// The newest stored checkpoint over the log read from this start, read beside
    /// the log by a gate (`gate::reads`) for [`Evidence::log_head_problems`].
    pub(crate) newest_checkpoint: Option<(crate::tlog::Start, crate::tlog::StoredCheckpoints)>,
}

impl<'a> Evidence<'a> {
    /// A verifier over `store` trusting what `policy` trusts.
    pub fn new(store: &'a Store, policy: &'a SignedPolicy) -> Self {
        Evidence {
            store,
            policy,
            cache: HashMap::new(),
            log_cache: HashMap::new(),
            snapshot: None,
            env: None,
            log: None,
            newest_checkpoint: None,
        }
    }

    /// The same verifier, looking up deploy and smoke evidence in `env` (`None`: the
    /// default environment) when gathering the latest evidence for a gate.
    pub fn in_env(mut self, env: Option<EnvName>) -> Self {
        self.env = env;
        self
    }

    /// The environment deploy and smoke evidence is looked up in.
    pub fn env(&self) -> Option<EnvName> {
        self.env
    }

    /// A verifier that reads only `snapshot`, never the store itself.
    pub fn over_snapshot(
        store: &'a Store,
        policy: &'a SignedPolicy,
        snapshot: &'a Snapshot,
    ) -> Self {
        Evidence {
            snapshot: Some(snapshot),
            ..Evidence::new(store, policy)
        }
    }

    /// The store evidence is read from.
    pub fn store(&self) -> &'a Store {
        self.store
    }

    /// The policy evidence is checked against.
    pub fn policy(&self) -> &'a SignedPolicy {
        self.policy
    }

    pub(crate) async fn fetch(&mut self, key: &ObjectKey) -> Result<Found<Fetched>, Error> {
        if let Some(snapshot) = self.snapshot {
            let found = snapshot.objects.get(key.as_str()).cloned();
            if found.is_some() {
                return Ok(found);
            }
            // Absent from the listing: say so, unless a folder on its way is a link
            // or a file (listed as one object of its own), which is what to fix.
            let folder = key.as_str().rsplit_once('/').map(|(folder, _)| folder);
            return Ok(match folder.map(|f| self.store.check_folder(f)) {
                Some(Err(refused)) if refused.is_object_problem() => Some(Err(refused.to_string())),
                _ => None,
            });
        }
        if let Some(f) = self.cache.get(key.as_str()) {
            return Ok(f.clone());
        }
        let f = found_one(self.store.get(key).await)?.map(|r| r.map(Fetched::new));
        self.cache.insert(key.as_str().to_owned(), f.clone());
        Ok(f)
    }

    /// Whether this verifier read `key` from the store (not from a snapshot) and
    /// found exactly the bytes that hash to `digest`.
    pub fn read_as(&self, key: &ObjectKey, digest: &Sha256Digest) -> bool {
        matches!(self.cache.get(key.as_str()), Some(Some(Ok(f))) if f.digest == *digest)
    }

    /// Verifies one artifact. `Ok(Err(problems))` is evidence that does not hold;
    /// `Err` is a failure to read the store at all.
    #[tracing::instrument(level = "debug", skip_all, fields(key = %r.key()))]
    pub async fn check(&mut self, r: &ArtifactRef) -> Result<Checked, Error> {
        let key = object_key(r);
        let Fetched { bytes, digest } = match self.fetch(&key).await? {
            Some(Ok(fetched)) => fetched,
            Some(Err(why)) => return Ok(Checked::Invalid(vec![why])),
            None => {
                let mut problems = vec![format!("{key} is missing from the store")];
                problems.extend(self.log_problems(key.as_str(), None).await?);
                return Ok(Checked::Invalid(problems));
            }
        };
        let stage = r.kind.stage();
        let policy = self.policy;
        let verified = match Envelope::verify(
            &bytes,
            |id| policy.key_for(stage, id),
            &format!("for stage `{stage}`"),
        ) {
            Ok(v) => v,
            Err(e) => return Ok(Checked::Invalid(vec![e.to_string()])),
        };
        let signed_by: Vec<KeyId> = verified.signers().to_vec();
        let statement = verified.into_statement();
        let mut problems = statement_problems(r, &key, &statement);
        let typed = match read_predicate(r.kind, &statement.predicate) {
            Ok(typed) => typed,
            Err(problem) => {
                problems.push(problem);
                return Ok(Checked::Invalid(problems));
            }
        };
        problems.extend(header_problems(r, &typed));
        problems.extend(result_problems(&typed));
        let signers = self.trusted_signers(r, &signed_by, typed.header(), &mut problems);
        self.check_inputs(&typed.header().inputs, &mut problems)
            .await?;
        self.check_log(r, &typed, &mut problems).await?;
        self.check_attestation(r, &typed, &mut problems).await?;
        let mut notes = Vec::new();
        self.check_policy(&typed.header().policy_sha256, &mut problems, &mut notes)
            .await?;
        // A gate may have read only the log's tail: this evidence's entry comes after
        // the head it recorded, so the log is read from there if it was not.
        if self.log.is_some() {
            self.read_log_covering(typed.header().log_head).await?;
        }
        problems.extend(self.log_problems(key.as_str(), Some(digest)).await?);
        if let Some(head) = &typed.header().log_head {
            problems.extend(self.recorded_head_problems(key.as_str(), head).await?);
        }
        if !problems.is_empty() {
            return Ok(Checked::Invalid(problems));
        }
        Ok(Checked::Verified(Box::new(Artifact {
            r: *r,
            digest,
            statement,
            typed,
            signers,
            notes,
        })))
    }

    /// The signers not revoked at the evidence's time; too few is a problem.
    pub(crate) fn trusted_signers(
        &self,
        r: &ArtifactRef,
        signed_by: &[KeyId],
        header: &Header,
        problems: &mut Vec<String>,
    ) -> Vec<KeyId> {
        let stage = r.kind.stage();
        let mut signers = Vec::new();
        for id in signed_by {
            match self.policy.revoked_for(id, header.finished_at) {
                Some(at) => problems.push(format!(
                    "signed by key {} which the policy revoked at {at}, before this evidence's time {}",
                    id.short(),
                    header.finished_at
                )),
                None => signers.push(id.clone()),
            }
        }
        let need = self.policy.min_signatures(stage);
        if signers.len() < need {
            problems.push(format!(
                "{} distinct trusted signature(s), the policy requires {need} for stage `{stage}`",
                signers.len()
            ));
        }
        signers
    }

    /// Every `inputs` hash link must name stored evidence that still hashes the same.
    async fn check_inputs(
        &mut self,
        inputs: &[Input],
        problems: &mut Vec<String>,
    ) -> Result<(), Error> {
        for input in inputs {
            let Some(input_ref) = ArtifactRef::parse_key(&input.key) else {
                problems.push(format!("input {:?} is not an evidence key", input.key));
                continue;
            };
            match self.fetch(&object_key(&input_ref)).await? {
                None => problems.push(format!("input {} is missing from the store", input.key)),
                Some(Err(why)) => problems.push(format!("input {}: {why}", input.key)),
                Some(Ok(f)) if f.digest != input.sha256 => problems.push(format!(
                    "hash link broken: input {} has sha256 {}, but this artifact was made from {}",
                    input.key, f.digest, input.sha256
                )),
                Some(Ok(_)) => {}
            }
        }
        Ok(())
    }

    async fn check_log(
        &mut self,
        r: &ArtifactRef,
        typed: &AnyPredicate,
        problems: &mut Vec<String>,
    ) -> Result<(), Error> {
        let AnyPredicate::Command(CommandPredicate { output, .. }) = typed else {
            return Ok(());
        };
        let expected_key = r.log_key();
        let (key, sha) = (output.key.as_str(), output.sha256);
        if key != expected_key {
            problems.push(format!(
                "output log key is {key:?}, expected {expected_key:?}"
            ));
            return Ok(());
        }
        let actual = match (self.snapshot, self.log_cache.get(key)) {
            (Some(snapshot), _) => snapshot.log_digests.get(key).cloned(),
            (None, Some(read_ahead)) => read_ahead.clone(),
            (None, None) => found_one(
                self.store
                    .get_limited(&log_object_key(r), MAX_LOG_BYTES)
                    .await,
            )?
            .map(|r| r.map(|b| Sha256Digest::of(&b))),
        };
        match actual {
            None => problems.push(format!("captured output {key} is missing from the store")),
            Some(Err(why)) => problems.push(format!("captured output: {why}")),
            Some(Ok(d)) if d != sha => problems.push(format!(
                "captured output {key} was altered: its sha256 is {d}, the signed record says {sha}"
            )),
            Some(Ok(_)) => {}
        }
        Ok(())
    }

    async fn check_policy(
        &mut self,
        recorded: &Sha256Digest,
        problems: &mut Vec<String>,
        notes: &mut Vec<String>,
    ) -> Result<(), Error> {
        let key = policy_key(recorded)?;
        match self.fetch(&key).await? {
            None => problems.push(format!(
                "the policy that gated this stage ({key}) is not in the store"
            )),
            Some(Err(why)) => problems.push(format!("the policy that gated this stage: {why}")),
            Some(Ok(f)) if f.digest != *recorded => problems.push(format!(
                "stored policy {key} was altered after the fact: it now hashes to {}",
                f.digest
            )),
            Some(_) if !self.policy.signed(recorded) => problems.push(format!(
                "gated by policy {}, which the policy owners never signed: evidence recorded under an unsigned policy counts for nothing",
                &recorded.to_hex()[..12]
            )),
            Some(_) if *recorded != self.policy.digest() => notes.push(format!(
                "gated by policy {}, not the one verified with ({})",
                &recorded.to_hex()[..12],
                &self.policy.digest().to_hex()[..12]
            )),
            Some(_) => {}
        }
        Ok(())
    }
}
