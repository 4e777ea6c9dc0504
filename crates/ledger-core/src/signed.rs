//! DSSE envelopes around documents that are not in-toto statements: the policy and
//! the root of trust that says who may sign it.
//!
//! Evidence envelopes (`dsse.rs`) carry an in-toto Statement; these carry the
//! document's exact bytes under a payload type of their own, so the same PAE, key ids
//! and tools (securesystemslib's `Envelope.verify`) apply, and a policy envelope can
//! never be mistaken for evidence or the other way round. Several owners sign one
//! envelope: each signature is over the same bytes, so a threshold is a count of
//! distinct owners whose signatures verify.

use crate::dsse::{decode_b64, pae, Envelope, Signature};
use crate::keys::{KeyId, PublicKey, SigningKey};
use crate::MAX_JSON_BYTES;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// Payload type of a signed policy: the payload is the policy file's bytes.
pub const POLICY_PAYLOAD_TYPE: &str = "application/vnd.ledger.policy+json";

/// Payload type of a signed policy root: the payload is the root document's bytes.
pub const ROOT_PAYLOAD_TYPE: &str = "application/vnd.ledger.policy-root+json";

/// Why a signed document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignedError {
    #[error("signed document is {0} bytes, over the {MAX_JSON_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("not a valid DSSE envelope: {0}")]
    Malformed(String),
    #[error("payloadType is {found:?}, expected {expected:?}")]
    WrongPayloadType { found: String, expected: String },
    #[error("payload or signature {0} is not valid base64")]
    Base64(String),
    #[error("signature {index} repeats key id {keyid}: each key signs once")]
    RepeatedKeyId { index: usize, keyid: String },
    #[error("the signature by owner key {keyid} does not verify: the envelope was altered or signed over other bytes")]
    BadSignature { keyid: String },
}

/// A DSSE envelope around a document's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedDocument {
    payload_type: String,
    payload: Vec<u8>,
    signatures: Vec<(KeyId, Vec<u8>)>,
}

impl SignedDocument {
    /// An envelope around `payload` with no signatures yet.
    pub fn new(payload_type: &str, payload: &[u8]) -> SignedDocument {
        SignedDocument {
            payload_type: payload_type.to_owned(),
            payload: payload.to_vec(),
            signatures: Vec::new(),
        }
    }

    /// Parses an envelope whose payload type must be `expected`. Signatures are
    /// decoded but not verified: see [`SignedDocument::signers`].
    pub fn parse(bytes: &[u8], expected: &str) -> Result<SignedDocument, SignedError> {
        if bytes.len() > MAX_JSON_BYTES {
            return Err(SignedError::TooLarge(bytes.len()));
        }
        let envelope: Envelope =
            crate::json::from_slice(bytes).map_err(|e| SignedError::Malformed(e.to_string()))?;
        if envelope.payload_type != expected {
            return Err(SignedError::WrongPayloadType {
                found: envelope.payload_type.chars().take(100).collect(),
                expected: expected.to_owned(),
            });
        }
        let payload = decode_b64(&envelope.payload)
            .ok_or_else(|| SignedError::Base64("payload".to_owned()))?;
        let mut signatures: Vec<(KeyId, Vec<u8>)> = Vec::with_capacity(envelope.signatures.len());
        for (index, s) in envelope.signatures.iter().enumerate() {
            let sig = decode_b64(&s.sig)
                .ok_or_else(|| SignedError::Base64(format!("signatures[{index}]")))?;
            let keyid = KeyId::from_envelope(&s.keyid);
            if signatures.iter().any(|(k, _)| *k == keyid) {
                return Err(SignedError::RepeatedKeyId {
                    index,
                    keyid: s.keyid.chars().take(80).collect(),
                });
            }
            signatures.push((keyid, sig));
        }
        Ok(SignedDocument {
            payload_type: envelope.payload_type,
            payload,
            signatures,
        })
    }

    /// The signed bytes.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// Adds `key`'s signature, replacing an earlier one by the same key.
    pub fn sign(&mut self, key: &SigningKey) {
        let sig = key.sign(&pae(&self.payload_type, &self.payload)).to_vec();
        self.signatures.retain(|(id, _)| id != key.key_id());
        self.signatures.push((key.key_id().clone(), sig));
    }

    /// Every key id a signature claims, verified or not.
    pub fn claimed(&self) -> Vec<KeyId> {
        self.signatures.iter().map(|(id, _)| id.clone()).collect()
    }

    /// The distinct keys among `keys` whose signatures verify. A signature that
    /// claims one of `keys` and does not verify is an error, never skipped: it means
    /// the envelope was altered.
    pub fn signers(&self, keys: &[PublicKey]) -> Result<Vec<KeyId>, SignedError> {
        let message = pae(&self.payload_type, &self.payload);
        let mut out: Vec<KeyId> = Vec::new();
        for (keyid, sig) in &self.signatures {
            let Some(key) = keys.iter().find(|k| k.key_id() == keyid) else {
                continue;
            };
            if !key.verify(&message, sig) {
                return Err(SignedError::BadSignature {
                    keyid: keyid.to_string(),
                });
            }
            if !out.contains(keyid) {
                out.push(keyid.clone());
            }
        }
        Ok(out)
    }

    /// The envelope's JSON bytes (pretty, with a final newline: it is committed).
    pub fn to_bytes(&self) -> Vec<u8> {
        let envelope = Envelope {
            payload: STANDARD.encode(&self.payload),
            payload_type: self.payload_type.clone(),
            signatures: self
                .signatures
                .iter()
                .map(|(keyid, sig)| Signature {
                    keyid: keyid.to_string(),
                    sig: STANDARD.encode(sig),
                })
                .collect(),
        };
        let mut bytes = serde_json::to_vec_pretty(&envelope).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_counts_distinct_verified_owners() {
        let (a, b) = (
            SigningKey::from_seed(&[1; 32]),
            SigningKey::from_seed(&[2; 32]),
        );
        let keys = [a.public().clone(), b.public().clone()];
        let mut doc = SignedDocument::new(POLICY_PAYLOAD_TYPE, b"{}");
        doc.sign(&a);
        doc.sign(&a);
        assert_eq!(doc.claimed().len(), 1, "signing twice replaces");
        let parsed = SignedDocument::parse(&doc.to_bytes(), POLICY_PAYLOAD_TYPE).unwrap();
        assert_eq!(parsed.signers(&keys).unwrap().len(), 1);
        doc.sign(&b);
        assert_eq!(doc.signers(&keys).unwrap().len(), 2);
        // Other bytes under the same signatures: refused, not skipped.
        let mut forged = doc.clone();
        forged.payload = b"{\"x\":1}".to_vec();
        assert!(matches!(
            forged.signers(&keys),
            Err(SignedError::BadSignature { .. })
        ));
        // A root envelope is not a policy envelope.
        assert!(matches!(
            SignedDocument::parse(&doc.to_bytes(), ROOT_PAYLOAD_TYPE),
            Err(SignedError::WrongPayloadType { .. })
        ));
    }

    #[test]
    fn duplicate_members_are_refused() {
        let key = SigningKey::from_seed(&[1; 32]);
        let mut doc = SignedDocument::new(POLICY_PAYLOAD_TYPE, b"{}");
        doc.sign(&key);
        let text = String::from_utf8(doc.to_bytes()).unwrap();
        let twice = text.replacen("\"payload\"", "\"payload\": \"e30=\",\n  \"payload\"", 1);
        assert!(SignedDocument::parse(twice.as_bytes(), POLICY_PAYLOAD_TYPE).is_err());
    }
}
