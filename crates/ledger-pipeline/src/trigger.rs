//! Why a deploy, smoke or decide runs other than as the next stage of a new release.
//!
//! A replay or rollback runs a stored release again, and a promotion carries one
//! environment's digests to the next; their evidence says so, and names what it relied
//! on. The stages record these marks and the release operations make them, so they
//! live here, below both.

use ledger_core::predicate::Input;
use ledger_core::GitSha;
use serde_json::{json, Value};

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
    /// Adds `replay`, `manifest` and, for a rollback, `rollback_from` to a predicate.
    pub fn annotate(&self, fields: &mut Value) {
        fields["replay"] = json!(true);
        fields["manifest"] = json!({ "key": self.manifest.key, "sha256": self.manifest.sha256 });
        if let Some(from) = &self.rollback_from {
            fields["rollback_from"] = json!(from);
        }
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
    /// Adds `promotion` to a deployment predicate.
    pub fn annotate(&self, fields: &mut Value) {
        let link = |i: &Input| json!({ "key": i.key, "sha256": i.sha256 });
        fields["promotion"] = json!({
            "from": self.from,
            "deployment": link(&self.deployment),
            "smoke": link(&self.smoke),
        });
    }
}
