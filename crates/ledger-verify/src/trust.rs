//! Which policy is in force, and every policy that ever was: the policy root of trust
//! as kept in the store.
//!
//! The store holds the root versions (`trust/root/<n>.json`, create-only, so a
//! version once pinned can never be replaced) and one signature envelope per policy
//! the owners signed (`trust/policy/<sha256>.json`). A [`SignedPolicy`] is the
//! policy the caller brought (its bytes and signature, usually from the checkout),
//! accepted only if a threshold of the current owners signed those exact bytes, plus
//! the digests of every policy the owners ever signed: evidence gated by any other
//! policy fails verification, so it can neither pass a gate nor `verify`.
//!
//! Where the owners come from, in order: the owner key ids the CI pins
//! (`LEDGER_POLICY_OWNERS` or `--policy-owners`; they must equal the current root's
//! owners), else the root chain already in the store, else (first use) the checkout's
//! root, which the first stage that runs pins. docs/security.md says why.

use crate::error::Error;
use crate::read::{read_objects, Fetched, Found};
use ledger_core::signed::SignedDocument;
use ledger_core::{KeyId, Sha256Digest};
pub use ledger_policy::root::{parse_policy_signature, Root, RootChain, TrustError};
use ledger_policy::Policy;
use ledger_store::{ObjectKey, PutOutcome, Store, StoreError};
use std::collections::BTreeSet;

/// Where root versions are kept in the store.
pub const ROOT_PREFIX: &str = "trust/root/";

/// Where policy signatures are kept in the store.
pub const POLICY_SIGNATURE_PREFIX: &str = "trust/policy/";

/// The store key of root version `version`.
pub fn root_key(version: u32) -> Result<ObjectKey, Error> {
    Ok(ObjectKey::parse(&format!("{ROOT_PREFIX}{version}.json")).map_err(StoreError::from)?)
}

/// The store key of the signature of the policy with this digest.
pub fn signature_key(digest: &Sha256Digest) -> Result<ObjectKey, Error> {
    Ok(ObjectKey::parse(&format!(
        "{POLICY_SIGNATURE_PREFIX}{}.json",
        digest.to_hex()
    ))
    .map_err(StoreError::from)?)
}

/// What the caller brings besides the store.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sources<'a> {
    /// The policy's bytes.
    pub policy: &'a [u8],
    /// Its signature envelope, if the checkout has one (else the store's is used).
    pub signature: Option<&'a [u8]>,
    /// The checkout's root envelope, used when the store pins none yet or this is
    /// the next version.
    pub root: Option<&'a [u8]>,
    /// Owner key ids the CI pins; when given, the current owners must be exactly these.
    pub anchor: Option<&'a [KeyId]>,
}

/// A policy a threshold of the current owners signed, with the history it belongs to.
#[derive(Debug, Clone)]
pub struct SignedPolicy {
    policy: Policy,
    chain: RootChain,
    signature: SignedDocument,
    history: BTreeSet<Sha256Digest>,
    /// Objects this policy's trust rests on that the store does not hold yet.
    unpinned: Vec<(ObjectKey, Vec<u8>)>,
}

impl std::ops::Deref for SignedPolicy {
    type Target = Policy;
    fn deref(&self) -> &Policy {
        &self.policy
    }
}

fn tampered(key: &str, e: impl std::fmt::Display) -> Error {
    Error::Untrusted(TrustError::Malformed {
        what: format!("stored {key}"),
        message: format!("{e}; trust objects are create-only, so the store was altered"),
    })
}

/// Reads and verifies the store's root chain (empty: none pinned yet).
async fn stored_chain(store: &Store) -> Result<Option<RootChain>, Error> {
    store.check_folder(ROOT_PREFIX.trim_end_matches('/'))?;
    let keys = store.list(ROOT_PREFIX).await?;
    let mut versions: Vec<(u32, String)> = Vec::with_capacity(keys.len());
    for key in keys {
        let n = key
            .strip_prefix(ROOT_PREFIX)
            .and_then(|k| k.strip_suffix(".json"))
            .and_then(|n| n.parse::<u32>().ok())
            .ok_or_else(|| tampered(&key, "not a root version's name"))?;
        versions.push((n, key));
    }
    versions.sort();
    // Every version in one bulk read: a round trip each was most of opening a bucket.
    let keys: Vec<String> = versions.iter().map(|(_, key)| key.clone()).collect();
    let mut read: std::collections::HashMap<String, Found<Fetched>> = read_objects(store, &keys)
        .await?
        .envelopes
        .into_iter()
        .collect();
    let mut chain: Option<RootChain> = None;
    for (n, key) in versions {
        if root_key(n)?.as_str() != key {
            return Err(tampered(&key, "not a root version's name"));
        }
        let bytes = match read.remove(&key).flatten() {
            Some(Ok(fetched)) => fetched.bytes,
            Some(Err(why)) => return Err(tampered(&key, why)),
            None => return Err(tampered(&key, "listed but gone")),
        };
        let root = Root::parse(&bytes).map_err(|e| tampered(&key, e))?;
        if root.version() != n {
            return Err(tampered(&key, format!("holds version {}", root.version())));
        }
        match &mut chain {
            None => chain = Some(RootChain::start(root).map_err(|e| tampered(&key, e))?),
            Some(c) => c.extend(root).map_err(|e| tampered(&key, e))?,
        }
    }
    Ok(chain)
}

/// The root chain in force: the store's, extended by the checkout's root when that
/// is the next version, or the checkout's own when the store pins none.
pub async fn root_chain(store: &Store, checkout_root: Option<&[u8]>) -> Result<RootChain, Error> {
    Ok(chain_of(store, checkout_root).await?.0)
}

/// Whether the store pins a root yet.
pub async fn root_pinned(store: &Store) -> Result<bool, Error> {
    Ok(stored_chain(store).await?.is_some())
}

/// The chain to trust: the store's, extended by the checkout's root when that is the
/// next version, or the checkout's own when the store pins none. Returns the root
/// objects to pin.
async fn chain_of(
    store: &Store,
    checkout_root: Option<&[u8]>,
) -> Result<(RootChain, Vec<(ObjectKey, Vec<u8>)>), Error> {
    let checkout = checkout_root
        .map(Root::parse)
        .transpose()
        .map_err(Error::Untrusted)?;
    let mut unpinned = Vec::new();
    let chain =
        match (stored_chain(store).await?, checkout) {
            (None, None) => return Err(Error::Untrusted(TrustError::Malformed {
                what: "policy root".to_owned(),
                message:
                    "the store pins no policy owners and there is no policy/root.json to start from"
                        .to_owned(),
            })),
            (None, Some(root)) => {
                unpinned.push((root_key(root.version())?, root.to_bytes()));
                RootChain::start(root).map_err(Error::Untrusted)?
            }
            (Some(mut chain), Some(root)) if root.version() > chain.current().version() => {
                unpinned.push((root_key(root.version())?, root.to_bytes()));
                chain.extend(root).map_err(Error::Untrusted)?;
                chain
            }
            (Some(chain), _) => chain,
        };
    Ok((chain, unpinned))
}

impl SignedPolicy {
    /// Loads the trust state and checks the caller's policy (`policy`, parsed from
    /// `sources.policy` by the caller, which reports a malformed one its own way)
    /// against it. Reads only;
    /// [`SignedPolicy::pin`] stores what is new.
    pub async fn load(
        store: &Store,
        policy: Policy,
        sources: Sources<'_>,
    ) -> Result<SignedPolicy, Error> {
        debug_assert_eq!(policy.digest(), Sha256Digest::of(sources.policy));
        // The root chain and the owners' stored signatures are independent reads:
        // both at once (each a round trip or two to a bucket).
        let ((chain, mut unpinned), stored) =
            futures::future::try_join(chain_of(store, sources.root), stored_signatures(store))
                .await?;
        if let Some(anchor) = sources.anchor {
            chain.check_anchor(anchor).map_err(Error::Untrusted)?;
        }
        let digest = policy.digest();
        let signature_key = signature_key(&digest)?;
        let stored_signature = match stored.iter().find(|(k, _)| k == signature_key.as_str()) {
            Some((key, Some(Err(why)))) => return Err(tampered(key, why)),
            Some((_, Some(Ok(fetched)))) => Some(fetched.bytes.clone()),
            _ => None,
        };
        let signature = match (sources.signature, &stored_signature) {
            (Some(bytes), _) => parse_policy_signature(bytes).map_err(Error::Untrusted)?,
            (None, Some(bytes)) => parse_policy_signature(bytes).map_err(Error::Untrusted)?,
            (None, None) => {
                return Err(Error::Untrusted(TrustError::PolicyUnsigned {
                    digest: digest.to_hex(),
                    have: 0,
                    need: chain.current().doc().threshold,
                    version: chain.current().version(),
                }))
            }
        };
        chain
            .check_current(sources.policy, &signature)
            .map_err(Error::Untrusted)?;
        if stored_signature.is_none() {
            unpinned.push((signature_key, signature.to_bytes()));
        }
        let mut history = history(stored, &chain)?;
        history.insert(digest);
        Ok(SignedPolicy {
            policy,
            chain,
            signature,
            history,
            unpinned,
        })
    }

    /// Signs `policy_bytes` with a fresh root whose only owner is `owner`, without a
    /// store: what `ledger init` writes, and what in-process tests verify with.
    pub fn self_signed(
        policy_bytes: &[u8],
        owner: &ledger_core::SigningKey,
    ) -> Result<(SignedPolicy, Vec<u8>, Vec<u8>), Error> {
        let policy = Policy::parse(policy_bytes).map_err(|e| {
            Error::Untrusted(TrustError::Malformed {
                what: "policy".to_owned(),
                message: e.to_string(),
            })
        })?;
        let mut root =
            Root::draft(1, 1, std::slice::from_ref(owner.public())).map_err(Error::Untrusted)?;
        root.sign(owner);
        let root_bytes = root.to_bytes();
        let chain = RootChain::start(root).map_err(Error::Untrusted)?;
        let mut signature =
            SignedDocument::new(ledger_core::signed::POLICY_PAYLOAD_TYPE, policy_bytes);
        signature.sign(owner);
        chain
            .check_current(policy_bytes, &signature)
            .map_err(Error::Untrusted)?;
        let signature_bytes = signature.to_bytes();
        let digest = policy.digest();
        let unpinned = vec![
            (root_key(1)?, root_bytes.clone()),
            (signature_key(&digest)?, signature_bytes.clone()),
        ];
        Ok((
            SignedPolicy {
                policy,
                chain,
                signature,
                history: BTreeSet::from([digest]),
                unpinned,
            },
            root_bytes,
            signature_bytes,
        ))
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The verified root chain.
    pub fn chain(&self) -> &RootChain {
        &self.chain
    }

    /// The owners' signature over this policy.
    pub fn signature(&self) -> &SignedDocument {
        &self.signature
    }

    /// The policy's exact bytes (what its owners signed, so the signature's payload).
    pub fn bytes(&self) -> &[u8] {
        self.signature.payload()
    }

    /// Whether the owners ever signed the policy with this digest.
    pub fn signed(&self, digest: &Sha256Digest) -> bool {
        self.history.contains(digest)
    }

    /// Stores the root versions and the policy signature the store does not hold
    /// yet, create-only. Identical bytes already there are fine (another stage got
    /// there first); other bytes under a root version's name mean someone pinned
    /// other owners in between, which is refused.
    pub async fn pin(&self, store: &Store) -> Result<(), Error> {
        for (key, bytes) in &self.unpinned {
            match store.put_create(key, bytes.clone()).await {
                Ok(PutOutcome::Created | PutOutcome::AlreadyPresent) => {}
                Err(StoreError::AlreadyExists { .. }) if key.as_str().starts_with(POLICY_SIGNATURE_PREFIX) => {}
                Err(StoreError::AlreadyExists { .. }) => {
                    return Err(Error::Untrusted(TrustError::Malformed {
                        what: format!("stored {key}"),
                        message: "another root was pinned under this version while this run started; run again to use it".to_owned(),
                    }))
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// The owners' signatures stored under `trust/policy/`, read.
async fn stored_signatures(store: &Store) -> Result<Vec<(String, Found<Fetched>)>, Error> {
    let keys = store.list(POLICY_SIGNATURE_PREFIX).await?;
    Ok(read_objects(store, &keys).await?.envelopes)
}

/// Digests of every policy whose stored signature (`stored`, as read) a threshold of
/// some root version's owners made. A stored signature that verifies under none is
/// tampering.
fn history(
    stored: Vec<(String, Found<Fetched>)>,
    chain: &RootChain,
) -> Result<BTreeSet<Sha256Digest>, Error> {
    let mut out = BTreeSet::new();
    for (key, fetched) in stored {
        let fetched = match fetched {
            Some(Ok(fetched)) => fetched,
            Some(Err(why)) => return Err(tampered(&key, why)),
            None => continue,
        };
        let signature = parse_policy_signature(&fetched.bytes).map_err(|e| tampered(&key, e))?;
        let digest = chain
            .check_historic(&signature)
            .map_err(|e| tampered(&key, e))?;
        if signature_key(&digest)?.as_str() != key {
            return Err(tampered(
                &key,
                format!("signs policy {digest}, not the one it is named after"),
            ));
        }
        out.insert(digest);
    }
    Ok(out)
}
