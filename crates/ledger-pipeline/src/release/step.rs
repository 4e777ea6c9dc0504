//! The steps of a replay's or rollback's validation chain, in order.
//!
//! A leaf module: errors name the step that failed ([`crate::Error::At`]) and the CLI
//! reports each step as it passes, so both import it without importing the replay.

use serde::Serialize;

/// One step of the validation chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    Promoted,
    Chain,
    Digests,
    Revisions,
    Deploy,
    Smoke,
    Decide,
}

impl Step {
    /// What the step establishes, for people.
    pub fn title(self) -> &'static str {
        match self {
            Step::Promoted => "latest decision is promote",
            Step::Chain => "stored chain verifies and passes the replay policy",
            Step::Digests => "every digest of the manifest is present",
            Step::Revisions => "revision labels equal the SHA",
            Step::Deploy => "deploy",
            Step::Smoke => "smoke",
            Step::Decide => "decision",
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.title())
    }
}
