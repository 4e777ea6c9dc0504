//! The policy's root of trust: who may sign the policy, and how that changes.
//!
//! A policy only gates or verifies when a threshold of its *owners* signed its exact
//! bytes. The owners are named by a root document, itself signed (TUF's root
//! pattern): version 1 by a threshold of its own owners, every later version by a
//! threshold of the previous version's owners *and* of its own. So the code under
//! test, which can edit the checkout, cannot change the rules that judge it, and
//! rotating the owners needs the old owners' consent. Pure: bytes in, verdicts out;
//! where the versions are kept (the store) is `ledger-verify`'s business.

use ledger_core::signed::{SignedDocument, SignedError, POLICY_PAYLOAD_TYPE, ROOT_PAYLOAD_TYPE};
use ledger_core::{KeyId, PublicKey, Sha256Digest};
use serde::{Deserialize, Serialize};

/// The `_type` of a root document.
pub const ROOT_TYPE: &str = "https://ledger.dev/policy-root/v1";

/// The root document: a version, the owners' keys and how many must sign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootDoc {
    #[serde(rename = "_type")]
    pub kind: String,
    pub version: u32,
    pub threshold: u32,
    pub owners: Vec<OwnerDoc>,
}

/// A policy owner's public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnerDoc {
    pub keyid: String,
    pub public_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// Why a root or a policy signature was not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustError {
    #[error("{what}: {source}")]
    Envelope { what: String, source: SignedError },
    #[error("{what}: {message}")]
    Malformed { what: String, message: String },
    #[error("root version {found} follows version {previous}; versions go up by one")]
    RootVersion { previous: u32, found: u32 },
    #[error("root version {version} has {have} valid signature(s) from {by}, {need} required")]
    RootUnsigned {
        version: u32,
        by: String,
        have: usize,
        need: u32,
    },
    #[error("policy {digest} is not signed by the policy owners: {have} of the {need} required signature(s) from the owners of root version {version}")]
    PolicyUnsigned {
        digest: String,
        have: usize,
        need: u32,
        version: u32,
    },
    #[error("the policy file (sha256 {file}) is not the policy its signature covers (sha256 {signed}): it was edited after it was signed")]
    EditedAfterSigning { file: String, signed: String },
    #[error("the policy owners pinned in the store ({pinned}) are not the ones this CI names in LEDGER_POLICY_OWNERS / --policy-owners ({anchor})")]
    AnchorMismatch { pinned: String, anchor: String },
}

impl TrustError {
    /// What to do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            TrustError::PolicyUnsigned { .. } | TrustError::EditedAfterSigning { .. } => {
                "a policy owner reviews the change (`ledger policy show`) and signs it: `ledger policy sign` (owner key: --key, default .ledger/policy-owner.key)"
            }
            TrustError::RootUnsigned { .. } | TrustError::RootVersion { .. } => {
                "a new root version needs the signatures of a threshold of the current owners and of its own: `ledger policy sign --root`"
            }
            TrustError::AnchorMismatch { .. } => {
                "the store pins other owners than the CI trusts: check the store's trust/root/ history before changing either"
            }
            TrustError::Envelope { .. } | TrustError::Malformed { .. } => {
                "`ledger policy show` shows the root of trust and the policy's signatures"
            }
        }
    }
}

/// One verified root version.
#[derive(Debug, Clone)]
pub struct Root {
    doc: RootDoc,
    owners: Vec<PublicKey>,
    envelope: SignedDocument,
}

impl Root {
    /// The document.
    pub fn doc(&self) -> &RootDoc {
        &self.doc
    }

    /// The version number.
    pub fn version(&self) -> u32 {
        self.doc.version
    }

    /// The owners' keys.
    pub fn owners(&self) -> &[PublicKey] {
        &self.owners
    }

    /// The owners' key ids, sorted.
    pub fn owner_ids(&self) -> Vec<KeyId> {
        let mut ids: Vec<KeyId> = self.owners.iter().map(|k| k.key_id().clone()).collect();
        ids.sort();
        ids
    }

    /// The envelope's bytes, as stored.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.envelope.to_bytes()
    }

    /// How many distinct owners of this root signed `doc`.
    fn count(&self, doc: &SignedDocument, what: &str) -> Result<usize, TrustError> {
        doc.signers(&self.owners)
            .map(|s| s.len())
            .map_err(|source| TrustError::Envelope {
                what: what.to_owned(),
                source,
            })
    }

    /// Whether a threshold of this root's owners signed `doc`.
    fn meets(&self, doc: &SignedDocument, what: &str) -> Result<(usize, bool), TrustError> {
        let have = self.count(doc, what)?;
        Ok((have, have >= self.doc.threshold as usize))
    }

    /// Parses a root envelope and checks the document's shape (not its signatures).
    pub fn parse(bytes: &[u8]) -> Result<Root, TrustError> {
        let what = "policy root";
        let envelope = SignedDocument::parse(bytes, ROOT_PAYLOAD_TYPE).map_err(|source| {
            TrustError::Envelope {
                what: what.to_owned(),
                source,
            }
        })?;
        let malformed = |message: String| TrustError::Malformed {
            what: what.to_owned(),
            message,
        };
        let doc: RootDoc = ledger_core::json::from_slice(envelope.payload())
            .map_err(|e| malformed(e.to_string()))?;
        if doc.kind != ROOT_TYPE {
            return Err(malformed(format!(
                "_type is {:?}, expected {ROOT_TYPE:?}",
                doc.kind
            )));
        }
        if doc.version == 0 || doc.threshold == 0 || doc.threshold as usize > doc.owners.len() {
            return Err(malformed(format!(
                "version {} with threshold {} of {} owner(s): versions start at 1 and the threshold must be between 1 and the number of owners",
                doc.version, doc.threshold, doc.owners.len()
            )));
        }
        let mut owners: Vec<PublicKey> = Vec::with_capacity(doc.owners.len());
        for (i, o) in doc.owners.iter().enumerate() {
            let key = PublicKey::from_pem(&o.public_key)
                .map_err(|e| malformed(format!("owners[{i}].public_key: {e}")))?;
            if key.key_id().as_str() != o.keyid {
                return Err(malformed(format!(
                    "owners[{i}].keyid is {} but the key's id is {}",
                    o.keyid,
                    key.key_id()
                )));
            }
            if owners.iter().any(|k| k.key_id() == key.key_id()) {
                return Err(malformed(format!(
                    "owners[{i}]: key {} is listed twice",
                    o.keyid
                )));
            }
            owners.push(key);
        }
        Ok(Root {
            doc,
            owners,
            envelope,
        })
    }

    /// An unsigned root document for `owners`, to be signed with [`Root::sign`].
    pub fn draft(version: u32, threshold: u32, owners: &[PublicKey]) -> Result<Root, TrustError> {
        let owners_doc = owners
            .iter()
            .map(|k| {
                Ok(OwnerDoc {
                    keyid: k.key_id().to_string(),
                    public_key: k.to_pem().map_err(|e| TrustError::Malformed {
                        what: "owner key".to_owned(),
                        message: e.to_string(),
                    })?,
                    comment: None,
                })
            })
            .collect::<Result<Vec<_>, TrustError>>()?;
        let doc = RootDoc {
            kind: ROOT_TYPE.to_owned(),
            version,
            threshold,
            owners: owners_doc,
        };
        let mut payload = serde_json::to_vec_pretty(&doc).unwrap_or_default();
        payload.push(b'\n');
        Root::parse(&SignedDocument::new(ROOT_PAYLOAD_TYPE, &payload).to_bytes())
    }

    /// Adds `key`'s signature to this root's envelope.
    pub fn sign(&mut self, key: &ledger_core::SigningKey) {
        self.envelope.sign(key);
    }
}

/// The verified sequence of root versions, 1 to the current one.
#[derive(Debug, Clone)]
pub struct RootChain {
    roots: Vec<Root>,
}

impl RootChain {
    /// Starts a chain at a version-1 root signed by a threshold of its own owners.
    pub fn start(first: Root) -> Result<RootChain, TrustError> {
        if first.version() != 1 {
            return Err(TrustError::RootVersion {
                previous: 0,
                found: first.version(),
            });
        }
        let (have, ok) = first.meets(&first.envelope, "policy root version 1")?;
        if !ok {
            return Err(TrustError::RootUnsigned {
                version: 1,
                by: "its own owners".to_owned(),
                have,
                need: first.doc.threshold,
            });
        }
        Ok(RootChain { roots: vec![first] })
    }

    /// Appends the next version: signed by a threshold of the current owners and of
    /// its own.
    pub fn extend(&mut self, next: Root) -> Result<(), TrustError> {
        let current = self.current();
        let what = format!("policy root version {}", next.version());
        if next.version() != current.version() + 1 {
            return Err(TrustError::RootVersion {
                previous: current.version(),
                found: next.version(),
            });
        }
        for (signers, by) in [
            (
                current,
                format!("the owners of version {}", current.version()),
            ),
            (&next, "its own owners".to_owned()),
        ] {
            let (have, ok) = signers.meets(&next.envelope, &what)?;
            if !ok {
                return Err(TrustError::RootUnsigned {
                    version: next.version(),
                    by,
                    have,
                    need: signers.doc.threshold,
                });
            }
        }
        self.roots.push(next);
        Ok(())
    }

    /// The newest version: its owners sign policies now.
    pub fn current(&self) -> &Root {
        self.roots
            .last()
            .unwrap_or_else(|| unreachable!("a chain starts with one root"))
    }

    /// Every version, oldest first.
    pub fn versions(&self) -> &[Root] {
        &self.roots
    }

    /// Checks the current owners are exactly the key ids the CI pins.
    pub fn check_anchor(&self, anchor: &[KeyId]) -> Result<(), TrustError> {
        let mut wanted = anchor.to_vec();
        wanted.sort();
        wanted.dedup();
        let pinned = self.current().owner_ids();
        if pinned == wanted {
            return Ok(());
        }
        let join = |ids: &[KeyId]| ids.iter().map(KeyId::short).collect::<Vec<_>>().join(", ");
        Err(TrustError::AnchorMismatch {
            pinned: join(&pinned),
            anchor: join(&wanted),
        })
    }

    /// Checks that `signature` covers exactly `policy_bytes` and is signed by a
    /// threshold of the current owners: the rule for the policy that gates now.
    pub fn check_current(
        &self,
        policy_bytes: &[u8],
        signature: &SignedDocument,
    ) -> Result<(), TrustError> {
        let file = Sha256Digest::of(policy_bytes);
        let signed = Sha256Digest::of(signature.payload());
        if file != signed {
            return Err(TrustError::EditedAfterSigning {
                file: file.to_hex(),
                signed: signed.to_hex(),
            });
        }
        let root = self.current();
        let (have, ok) = root.meets(signature, "policy signature")?;
        if ok {
            return Ok(());
        }
        Err(TrustError::PolicyUnsigned {
            digest: file.to_hex(),
            have,
            need: root.doc.threshold,
            version: root.version(),
        })
    }

    /// Whether `signature` was signed by a threshold of the owners of any version:
    /// the rule for policies that gated evidence in the past. Returns the digest of
    /// the policy it covers.
    pub fn check_historic(&self, signature: &SignedDocument) -> Result<Sha256Digest, TrustError> {
        let digest = Sha256Digest::of(signature.payload());
        // Every version is read, not only until one holds: a bad signature by any
        // owner, current or former, means the envelope was altered.
        let mut best = (0, self.current(), false);
        for root in self.roots.iter().rev() {
            let (have, ok) = root.meets(signature, "stored policy signature")?;
            if !best.2 && (ok || have > best.0) {
                best = (have, root, ok);
            }
        }
        if best.2 {
            return Ok(digest);
        }
        Err(TrustError::PolicyUnsigned {
            digest: digest.to_hex(),
            have: best.0,
            need: best.1.doc.threshold,
            version: best.1.version(),
        })
    }
}

/// Parses a policy signature envelope.
pub fn parse_policy_signature(bytes: &[u8]) -> Result<SignedDocument, TrustError> {
    SignedDocument::parse(bytes, POLICY_PAYLOAD_TYPE).map_err(|source| TrustError::Envelope {
        what: "policy signature".to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger_core::SigningKey;

    fn key(n: u8) -> SigningKey {
        SigningKey::from_seed(&[n; 32])
    }

    fn root(version: u32, threshold: u32, owners: &[&SigningKey], signers: &[&SigningKey]) -> Root {
        let keys: Vec<PublicKey> = owners.iter().map(|k| k.public().clone()).collect();
        let mut r = Root::draft(version, threshold, &keys).unwrap();
        for s in signers {
            r.sign(s);
        }
        Root::parse(&r.to_bytes()).unwrap()
    }

    #[test]
    fn version_one_needs_its_own_threshold() {
        let (a, b) = (key(1), key(2));
        assert!(RootChain::start(root(1, 2, &[&a, &b], &[&a])).is_err());
        assert!(RootChain::start(root(1, 2, &[&a, &b], &[&a, &b])).is_ok());
        assert!(RootChain::start(root(2, 1, &[&a], &[&a])).is_err());
    }

    #[test]
    fn rotation_needs_the_previous_owners() {
        let (old, new) = (key(1), key(2));
        let mut chain = RootChain::start(root(1, 1, &[&old], &[&old])).unwrap();
        // The new owner alone cannot take over.
        let err = chain.extend(root(2, 1, &[&new], &[&new])).unwrap_err();
        assert!(
            matches!(err, TrustError::RootUnsigned { version: 2, .. }),
            "{err}"
        );
        // Nor can the old owner name a new one who did not sign.
        assert!(chain.extend(root(2, 1, &[&new], &[&old])).is_err());
        // Skipping a version is refused.
        assert!(chain.extend(root(3, 1, &[&new], &[&old, &new])).is_err());
        chain.extend(root(2, 1, &[&new], &[&old, &new])).unwrap();
        assert_eq!(chain.current().version(), 2);
        assert!(chain.check_anchor(&[new.key_id().clone()]).is_ok());
        assert!(chain.check_anchor(&[old.key_id().clone()]).is_err());
    }

    #[test]
    fn a_bad_signature_by_a_former_owner_is_tampering() {
        let (old, new) = (key(1), key(2));
        let mut chain = RootChain::start(root(1, 1, &[&old], &[&old])).unwrap();
        chain.extend(root(2, 1, &[&new], &[&old, &new])).unwrap();
        let mut doc = SignedDocument::new(POLICY_PAYLOAD_TYPE, b"{}");
        doc.sign(&new);
        assert!(chain.check_historic(&doc).is_ok());
        // Add a signature claiming the former owner that does not verify.
        let mut json: serde_json::Value = serde_json::from_slice(&doc.to_bytes()).unwrap();
        let forged = serde_json::json!({"keyid": old.key_id().to_string(), "sig": json["signatures"][0]["sig"].clone()});
        json["signatures"].as_array_mut().unwrap().push(forged);
        let doc = parse_policy_signature(&serde_json::to_vec(&json).unwrap()).unwrap();
        assert!(matches!(
            chain.check_historic(&doc),
            Err(TrustError::Envelope { .. })
        ));
    }

    #[test]
    fn policies_need_the_current_owners_and_history_any() {
        let (old, new) = (key(1), key(2));
        let mut chain = RootChain::start(root(1, 1, &[&old], &[&old])).unwrap();
        let policy = b"{\"version\":1}".to_vec();
        let mut by_old = SignedDocument::new(POLICY_PAYLOAD_TYPE, &policy);
        by_old.sign(&old);
        assert!(chain.check_current(&policy, &by_old).is_ok());
        chain.extend(root(2, 1, &[&new], &[&old, &new])).unwrap();
        assert!(matches!(
            chain.check_current(&policy, &by_old),
            Err(TrustError::PolicyUnsigned { .. })
        ));
        assert_eq!(
            chain.check_historic(&by_old).unwrap(),
            Sha256Digest::of(&policy)
        );
        let edited = b"{\"version\":2}".to_vec();
        assert!(matches!(
            chain.check_current(&edited, &by_old),
            Err(TrustError::EditedAfterSigning { .. })
        ));
        let mut unsigned = SignedDocument::new(POLICY_PAYLOAD_TYPE, &policy);
        unsigned.sign(&key(9));
        assert!(chain.check_historic(&unsigned).is_err());
    }
}
