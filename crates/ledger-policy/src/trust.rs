//! Which keys the policy trusts, for which stages, and until when.
//!
//! Trust is per stage: a key trusted for `commit` cannot sign `decide`. A revoked key's
//! signatures count only for evidence whose recorded finish time is before the
//! revocation (see `docs/policy.md` on what that does and does not protect against).

use crate::model::{Gate, PolicyDoc};
use ledger_core::{KeyId, PublicKey, Sha256Digest, SigningKey, Stage};
use std::collections::BTreeSet;
use time::OffsetDateTime;

/// A checked policy.
#[derive(Debug, Clone)]
pub struct Policy {
    doc: PolicyDoc,
    keys: Vec<TrustedKey>,
    digest: Sha256Digest,
}

/// A public key the policy trusts.
#[derive(Debug, Clone)]
pub struct TrustedKey {
    pub key: PublicKey,
    pub stages: BTreeSet<Stage>,
    pub revoked_at: Option<OffsetDateTime>,
    pub comment: Option<String>,
}

impl Policy {
    pub(crate) fn new(doc: PolicyDoc, keys: Vec<TrustedKey>, digest: Sha256Digest) -> Self {
        Policy { doc, keys, digest }
    }

    /// SHA-256 of the policy file's bytes, recorded in every predicate it gated.
    pub fn digest(&self) -> Sha256Digest {
        self.digest
    }

    /// The parsed document.
    pub fn doc(&self) -> &PolicyDoc {
        &self.doc
    }

    /// Every trusted key.
    pub fn keys(&self) -> &[TrustedKey] {
        &self.keys
    }

    /// The key with this id, if trusted for `stage` (revocation is checked separately,
    /// against the evidence's time, by [`Policy::revoked_for`]).
    pub fn key_for(&self, stage: Stage, keyid: &KeyId) -> Option<&PublicKey> {
        self.keys
            .iter()
            .find(|k| k.key.key_id() == keyid && k.stages.contains(&stage))
            .map(|k| &k.key)
    }

    /// The trusted key entry with this id, whatever its stages.
    pub fn trusted(&self, keyid: &KeyId) -> Option<&TrustedKey> {
        self.keys.iter().find(|k| k.key.key_id() == keyid)
    }

    /// When `keyid` was revoked, if it was revoked at or before `at`.
    pub fn revoked_for(&self, keyid: &KeyId, at: OffsetDateTime) -> Option<OffsetDateTime> {
        self.trusted(keyid)
            .and_then(|k| k.revoked_at)
            .filter(|r| *r <= at)
    }

    /// Whether `key` may sign `stage` now (used before signing, to fail early).
    pub fn may_sign(&self, key: &SigningKey, stage: Stage, now: OffsetDateTime) -> bool {
        self.key_for(stage, key.key_id()).is_some() && self.revoked_for(key.key_id(), now).is_none()
    }

    /// The gate in front of `stage` (an empty gate when the policy names none).
    pub fn gate(&self, stage: Stage) -> Gate {
        self.doc.stages.get(&stage).cloned().unwrap_or_default()
    }

    /// The release decision's rules.
    pub fn release(&self) -> Gate {
        self.doc.release.clone().unwrap_or_default()
    }

    /// What a replay or rollback demands of the stored chain before it runs again:
    /// the policy's `replay` gate, or else passing evidence of every stage up to
    /// `publish` (the manifest and everything it was built from).
    pub fn replay(&self) -> Gate {
        self.doc
            .replay
            .clone()
            .unwrap_or_else(crate::default::default_replay_gate)
    }

    /// The age after which a running release raises the freshness alarm, if set.
    pub fn max_running_age(&self) -> Option<std::time::Duration> {
        self.doc
            .freshness
            .as_ref()
            .map(|f| std::time::Duration::from_secs(f.max_running_age_seconds))
    }

    /// The runners allowed to run deploy, smoke and promote in `env`; `None`: any.
    pub fn approved_runners(&self, env: &str) -> Option<&[String]> {
        self.doc
            .environments
            .get(env)
            .and_then(|e| e.approved_runners.as_deref())
    }

    /// The promotion rule into `env`, if the policy has one.
    pub fn promotion(&self, env: &str) -> Option<&crate::model::Promotion> {
        self.doc
            .environments
            .get(env)
            .and_then(|e| e.promotion.as_ref())
    }

    /// How many distinct trusted signatures each artifact of `stage` needs.
    pub fn min_signatures(&self, stage: Stage) -> usize {
        self.doc
            .stages
            .get(&stage)
            .and_then(|g| g.min_signatures)
            .unwrap_or(1) as usize
    }
}
