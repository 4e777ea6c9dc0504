//! Why a deploy, smoke or decide runs other than as the next stage of a new release.
//!
//! A replay or rollback runs a stored release again, and a promotion carries one
//! environment's digests to the next; their evidence says so, and names what it relied
//! on. The stages record these marks and the release operations make them, so they
//! live here, below both.

use ledger_core::env::InvalidEnvName;
use ledger_core::predicate::{
    DecisionPredicate, DeploymentPredicate, Input, Promotion, SmokePredicate,
};
use ledger_core::{EnvName, GitSha};

/// What marks a stage run as part of a replay or rollback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayOf {
    /// The release-candidate manifest being run again (key and envelope digest).
    pub manifest: Input,
    /// `Some` for a rollback: the SHA that was running when it began (`None` inside
    /// when the environment ran nothing).
    pub rollback_from: Option<Option<GitSha>>,
}

impl ReplayOf {
    /// The `manifest` a replayed predicate names.
    pub fn manifest(&self) -> Option<Input> {
        Some(self.manifest.clone())
    }

    /// The `rollback_from` a replayed predicate records (`None` unless a rollback).
    pub fn rollback_from(&self) -> Option<Option<GitSha>> {
        self.rollback_from
    }

    /// Marks a smoke predicate as part of this replay or rollback.
    pub fn mark_smoke(&self, p: &mut SmokePredicate) {
        p.replay = Some(true);
        p.manifest = self.manifest();
        p.rollback_from = self.rollback_from();
    }

    /// Marks a decision predicate as part of this replay or rollback.
    pub fn mark_decision(&self, p: &mut DecisionPredicate) {
        p.replay = Some(true);
        p.manifest = self.manifest();
        p.rollback_from = self.rollback_from();
    }

    /// Marks a deployment predicate as part of this replay or rollback. Its `manifest`
    /// is the one deployed, which is the manifest run again.
    pub fn mark_deployment(&self, p: &mut DeploymentPredicate) {
        p.replay = true;
        p.manifest = self.manifest.clone();
        p.rollback_from = self.rollback_from();
    }
}

/// What marks a deploy as a promotion: where from, and the evidence relied on there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromotionOf {
    pub from: String,
    pub deployment: Input,
    pub smoke: Input,
}

impl PromotionOf {
    /// The `promotion` a promoted deployment records.
    pub fn promotion(&self) -> Result<Promotion, InvalidEnvName> {
        Ok(Promotion {
            from: EnvName::parse(&self.from)?,
            deployment: self.deployment.clone(),
            smoke: self.smoke.clone(),
        })
    }
}
