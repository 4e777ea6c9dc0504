//! What a command holds once it has loaded what it needs: a [`Writer`] (policy,
//! signing key, store) for the commands that record evidence, a [`Reader`]
//! (policy, store) for those that read it.

use super::{
    env_map, load_policy, load_signed_policy, load_signing_key, open_store_trusting, opened,
    refuse_missing_named_folder, repo_root, store_location, zone_key_path,
};
use crate::args::Global;
use crate::exit::{Failure, Result};
use ledger_core::{SigningKey, Stage};
use ledger_verify::evidence::Evidence;
use ledger_verify::{SignedPolicy, Store};
use std::path::{Path, PathBuf};

/// What every command that writes evidence loads first: the policy, the signing key,
/// the store, the process environment and the runner it describes.
pub struct Writer {
    pub policy: SignedPolicy,
    pub key: SigningKey,
    pub store: Store,
    pub env: std::collections::BTreeMap<String, String>,
    pub runner: ledger_core::predicate::Runner,
}

impl Writer {
    /// Loads policy, key (`explicit`, else the default places for `stage`'s zone;
    /// `None`: a release operation) and store, in that order, so a bad policy or key
    /// is reported before the store is touched; then checks the policy's signatures
    /// (an untrusted policy is a denial, exit 3: nothing runs).
    pub async fn load(
        global: &Global,
        root: &Path,
        explicit_key: Option<&Path>,
        stage: Option<Stage>,
    ) -> Result<Writer> {
        let (policy, policy_bytes) = load_policy(global, root)?;
        let key = load_signing_key(explicit_key, root, zone_key_path(stage))?;
        let (store, policy) = open_store_trusting(
            global,
            root,
            (policy, &policy_bytes),
            crate::exit::Code::Denied,
        )
        .await?;
        let env = env_map();
        let runner = ledger_pipeline::ci::detect(&env, &ledger_pipeline::ci::host_name());
        Ok(Writer {
            policy,
            key,
            store,
            env,
            runner,
        })
    }

    /// The recorder that signs and stores with this writer's key and policy.
    pub fn recorder(&self) -> ledger_pipeline::record::Recorder<'_> {
        ledger_pipeline::record::Recorder {
            store: &self.store,
            policy: &self.policy,
            key: &self.key,
        }
    }
}

/// What every command that reads evidence loads first: the repository root, the
/// policy and the store, in that order.
pub struct Reader {
    pub root: PathBuf,
    pub policy: SignedPolicy,
    pub store: Store,
}

impl Reader {
    /// Finds the root, then loads the policy and opens the store.
    pub async fn load(global: &Global) -> Result<Reader> {
        Reader::open(global, repo_root()?).await
    }

    /// Loads the policy and opens the store of the repository at `root`; a policy
    /// its owners did not sign fails verification (exit 4).
    pub async fn open(global: &Global, root: PathBuf) -> Result<Reader> {
        Reader::open_or(global, root, crate::exit::Code::VerificationFailed).await
    }

    /// [`Reader::open`], with `untrusted` as the exit code of an unsigned policy
    /// (`ledger gate` says what a stage would: denied, exit 3).
    pub async fn open_or(
        global: &Global,
        root: PathBuf,
        untrusted: crate::exit::Code,
    ) -> Result<Reader> {
        let nothing = async |_: &Store, _| Ok(());
        Ok(Reader::open_reading_or(global, root, untrusted, nothing)
            .await?
            .0)
    }

    /// [`Reader::open`], with `read` (reads the command needs, given the store and
    /// the digest of the policy on disk) run beside the policy's trust check, so
    /// that on a bucket their requests go out together. What `read` found is used
    /// only once the policy is trusted; a trust failure is reported first.
    pub async fn open_reading<T>(
        global: &Global,
        root: PathBuf,
        read: impl AsyncFnOnce(&Store, ledger_core::Sha256Digest) -> Result<T>,
    ) -> Result<(Reader, T)> {
        let code = crate::exit::Code::VerificationFailed;
        Reader::open_reading_or(global, root, code, read).await
    }

    /// [`Reader::open_reading`] with `untrusted` as [`Reader::open_or`] takes it.
    async fn open_reading_or<T>(
        global: &Global,
        root: PathBuf,
        untrusted: crate::exit::Code,
        read: impl AsyncFnOnce(&Store, ledger_core::Sha256Digest) -> Result<T>,
    ) -> Result<(Reader, T)> {
        let (policy, policy_bytes) = load_policy(global, &root)?;
        refuse_missing_named_folder(global, &root)?;
        let digest = policy.digest();
        let location = store_location(global, &root)?;
        let (store, (policy, found)) = Store::open_with(location, async |store| {
            let (trusted, found) = tokio::join!(
                load_signed_policy(global, &root, store, (policy, &policy_bytes), untrusted),
                read(store, digest),
            );
            Ok::<_, Failure>((trusted?, found?))
        })
        .await?;
        let reader = Reader {
            root,
            policy,
            store: opened(store),
        };
        Ok((reader, found))
    }

    /// A verifier of this store's evidence under this policy.
    pub fn evidence(&self) -> Evidence<'_> {
        Evidence::new(&self.store, &self.policy)
    }
}
