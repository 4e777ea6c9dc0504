//! Small pieces of test support that `Repo` hands out: the in-process verifier and
//! the key of each trust zone as `ledger init` makes them.

use ledger_core::{GitSha, Stage};
use ledger_store::Store;

/// The key `ledger init` made for `stage`'s trust zone.
pub fn zone_key(stage: Stage) -> &'static str {
    match stage {
        Stage::Commit | Stage::Integration => ".ledger/test.key",
        _ => ".ledger/release.key",
    }
}

/// See [`Repo::in_process`].
pub struct InProcess {
    pub(crate) rt: tokio::runtime::Runtime,
    pub(crate) store: Store,
    pub(crate) policy: ledger_verify::SignedPolicy,
}

impl InProcess {
    /// Whether every artifact stored for `sha` verifies.
    pub fn chain_ok(&self, sha: &str) -> bool {
        let sha = GitSha::parse(sha).unwrap();
        let evidence = ledger_verify::Evidence::new(&self.store, &self.policy);
        self.rt
            .block_on(async move {
                let mut evidence = evidence;
                evidence.check_sha(&sha).await
            })
            .unwrap()
            .ok
    }
}
