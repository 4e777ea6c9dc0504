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

impl crate::Repo {
    /// Writes an object and logs it, as a writer with the store's credentials would
    /// through `ledger`: for attacks that are about what the object says, not about
    /// its absence from the log.
    pub fn write_logged(&self, key: &str, bytes: Vec<u8>) {
        self.tamper_object(key, bytes.clone());
        self.block_on(async {
            let store = self.open_store().await;
            store.adopt(key, ledger_core::Sha256Digest::of(&bytes));
            store.log_flush().await.unwrap();
        });
    }
}
