//! DSSE envelopes: the signed wrapper around every statement.
//!
//! The verifier is built to fail closed, after the mistakes peers made (envelopes that
//! verified with no signatures, or with an unrelated one): the bytes are parsed into a
//! strict [`Envelope`] before any cryptography; the payload type must be in-toto's; at
//! least one signature must come from a key the caller trusts and verify under the
//! DSSE pre-authentication encoding; a trusted key's signature that does not verify is
//! a failure, not something to skip. Only [`Envelope::verify`] can produce a
//! [`VerifiedEnvelope`].

use crate::keys::{KeyId, PublicKey, SigningKey};
use crate::statement::{Statement, StatementError};
use crate::MAX_JSON_BYTES;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// The DSSE payload type of in-toto statements; the only one `ledger` accepts.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// A DSSE envelope as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    pub payload: String,
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    pub signatures: Vec<Signature>,
}

/// One signature of an envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    pub keyid: String,
    pub sig: String,
}

/// Why an envelope did not verify. Each names what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("envelope is {0} bytes, over the {MAX_JSON_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("envelope is not valid DSSE JSON: {0}")]
    Malformed(String),
    #[error("payloadType is {0:?}, expected {PAYLOAD_TYPE:?}")]
    WrongPayloadType(String),
    #[error("envelope has no signatures")]
    NoSignatures,
    #[error("payload is not valid base64")]
    PayloadBase64,
    #[error("signature {index} repeats key id {keyid}: each key signs an envelope once (securesystemslib refuses such envelopes too)")]
    RepeatedKeyId { index: usize, keyid: String },
    #[error("signature {index} (keyid {keyid}) is not valid base64")]
    SignatureBase64 { index: usize, keyid: String },
    #[error(transparent)]
    Statement(#[from] StatementError),
    #[error("signature by trusted key {keyid} does not verify: the envelope was altered or signed over other bytes")]
    BadSignature { keyid: String },
    #[error("no signature by a trusted key{}: signed by [{}]", .context, .keyids.join(", "))]
    Untrusted {
        keyids: Vec<String>,
        context: String,
    },
}

/// The DSSE v1 pre-authentication encoding of a payload.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + payload_type.len() + 32);
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

/// Decodes canonical base64 in the standard or URL-safe alphabet (DSSE allows both).
pub(crate) fn decode_b64(s: &str) -> Option<Vec<u8>> {
    STANDARD.decode(s).or_else(|_| URL_SAFE.decode(s)).ok()
}

/// An envelope whose signature, payload type and statement shape have been checked.
/// It can only be made by [`Envelope::verify`].
#[derive(Debug, Clone)]
pub struct VerifiedEnvelope {
    statement: Statement,
    payload: Vec<u8>,
    signers: Vec<KeyId>,
}

impl VerifiedEnvelope {
    /// The verified statement.
    pub fn statement(&self) -> &Statement {
        &self.statement
    }

    /// The verified statement, taken out of the envelope.
    pub fn into_statement(self) -> Statement {
        self.statement
    }

    /// The exact payload bytes that were signed.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The distinct trusted keys whose signatures verified, in envelope order.
    pub fn signers(&self) -> &[KeyId] {
        &self.signers
    }
}

/// A parsed envelope with its payload decoded, ready for signature checks.
#[derive(Debug)]
pub struct ParsedEnvelope {
    pub envelope: Envelope,
    pub payload: Vec<u8>,
    pub statement: Statement,
    sigs: Vec<(KeyId, Vec<u8>)>,
}

impl ParsedEnvelope {
    /// The pre-authentication encoding that signatures cover.
    pub fn pae(&self) -> Vec<u8> {
        pae(&self.envelope.payload_type, &self.payload)
    }

    /// `(keyid, raw signature)` pairs, in envelope order.
    pub fn signatures(&self) -> &[(KeyId, Vec<u8>)] {
        &self.sigs
    }

    /// Checks signatures against the keys `trusted` returns for a key id. `context`
    /// is added to the untrusted-key message (e.g. "for stage commit").
    pub fn verify<'k>(
        self,
        trusted: impl Fn(&KeyId) -> Option<&'k PublicKey>,
        context: &str,
    ) -> Result<VerifiedEnvelope, EnvelopeError> {
        let message = self.pae();
        let mut signers: Vec<KeyId> = Vec::new();
        for (keyid, sig) in &self.sigs {
            let Some(key) = trusted(keyid) else { continue };
            // The key id must be the key's own: a trusted key id in front of another
            // key's signature must not count.
            if key.key_id() != keyid || !key.verify(&message, sig) {
                return Err(EnvelopeError::BadSignature {
                    keyid: keyid.to_string(),
                });
            }
            if !signers.contains(keyid) {
                signers.push(keyid.clone());
            }
        }
        if signers.is_empty() {
            return Err(EnvelopeError::Untrusted {
                keyids: self.sigs.iter().map(|(k, _)| k.to_string()).collect(),
                context: if context.is_empty() {
                    String::new()
                } else {
                    format!(" {context}")
                },
            });
        }
        Ok(VerifiedEnvelope {
            statement: self.statement,
            payload: self.payload,
            signers,
        })
    }
}

impl Envelope {
    /// Signs `statement` with `key`.
    pub fn sign(statement: &Statement, key: &SigningKey) -> Envelope {
        let payload = statement.to_bytes();
        let sig = key.sign(&pae(PAYLOAD_TYPE, &payload));
        Envelope {
            payload: STANDARD.encode(&payload),
            payload_type: PAYLOAD_TYPE.to_owned(),
            signatures: vec![Signature {
                keyid: key.key_id().to_string(),
                sig: STANDARD.encode(sig),
            }],
        }
    }

    /// The stored form: pretty JSON with a trailing newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// Parses stored bytes and checks everything that needs no key: size, strict JSON,
    /// payload type, a non-empty signature list, base64, statement shape.
    pub fn parse(bytes: &[u8]) -> Result<ParsedEnvelope, EnvelopeError> {
        if bytes.len() > MAX_JSON_BYTES {
            return Err(EnvelopeError::TooLarge(bytes.len()));
        }
        let envelope: Envelope =
            crate::json::from_slice(bytes).map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
        if envelope.payload_type != PAYLOAD_TYPE {
            return Err(EnvelopeError::WrongPayloadType(
                envelope.payload_type.chars().take(100).collect(),
            ));
        }
        if envelope.signatures.is_empty() {
            return Err(EnvelopeError::NoSignatures);
        }
        let payload = decode_b64(&envelope.payload).ok_or(EnvelopeError::PayloadBase64)?;
        let mut sigs = Vec::with_capacity(envelope.signatures.len());
        for (index, s) in envelope.signatures.iter().enumerate() {
            let raw = decode_b64(&s.sig).ok_or_else(|| EnvelopeError::SignatureBase64 {
                index,
                keyid: s.keyid.chars().take(80).collect(),
            })?;
            let keyid = KeyId::from_envelope(&s.keyid);
            if sigs.iter().any(|(k, _)| *k == keyid) {
                return Err(EnvelopeError::RepeatedKeyId {
                    index,
                    keyid: s.keyid.chars().take(80).collect(),
                });
            }
            sigs.push((keyid, raw));
        }
        let statement = Statement::parse(&payload)?;
        Ok(ParsedEnvelope {
            envelope,
            payload,
            statement,
            sigs,
        })
    }

    /// Parses and verifies in one step.
    pub fn verify<'k>(
        bytes: &[u8],
        trusted: impl Fn(&KeyId) -> Option<&'k PublicKey>,
        context: &str,
    ) -> Result<VerifiedEnvelope, EnvelopeError> {
        Envelope::parse(bytes)?.verify(trusted, context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::ArtifactKind;
    use crate::statement::Subject;
    use crate::GitSha;
    use serde_json::json;

    fn statement() -> Statement {
        let sha = GitSha::parse("0123456789abcdef0123456789abcdef01234567").unwrap();
        Statement::new(
            ArtifactKind::Commit,
            vec![Subject::git(&sha)],
            json!({"x": 1}),
        )
    }

    fn only<'a>(k: &'a PublicKey) -> impl Fn(&KeyId) -> Option<&'a PublicKey> {
        move |id| (id == k.key_id()).then_some(k)
    }

    #[test]
    fn pae_matches_the_spec_vector() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }

    #[test]
    fn sign_verify_round_trip() {
        let key = SigningKey::from_seed(&[7; 32]);
        let env = Envelope::sign(&statement(), &key);
        let v = Envelope::verify(&env.to_bytes(), only(key.public()), "").unwrap();
        assert_eq!(v.statement(), &statement());
        assert_eq!(v.signers(), &[key.key_id().clone()]);
    }

    #[test]
    fn url_safe_base64_is_accepted() {
        let key = SigningKey::from_seed(&[7; 32]);
        let mut env = Envelope::sign(&statement(), &key);
        let raw = STANDARD.decode(&env.signatures[0].sig).unwrap();
        env.signatures[0].sig = URL_SAFE.encode(raw);
        assert!(Envelope::verify(&env.to_bytes(), only(key.public()), "").is_ok());
    }

    #[test]
    fn fails_closed() {
        let key = SigningKey::from_seed(&[7; 32]);
        let other = SigningKey::from_seed(&[8; 32]);
        let good = Envelope::sign(&statement(), &key);
        let check = |env: &Envelope| Envelope::verify(&env.to_bytes(), only(key.public()), "");

        let mut e = good.clone();
        e.signatures.clear();
        assert_eq!(check(&e).unwrap_err(), EnvelopeError::NoSignatures);

        let mut e = good.clone();
        e.payload_type = "application/json".into();
        assert!(matches!(check(&e), Err(EnvelopeError::WrongPayloadType(_))));

        let mut e = good.clone();
        e.payload.insert(3, '!');
        assert_eq!(check(&e).unwrap_err(), EnvelopeError::PayloadBase64);

        let mut e = good.clone();
        e.signatures[0].sig = "%%%".into();
        assert!(matches!(
            check(&e),
            Err(EnvelopeError::SignatureBase64 { .. })
        ));

        // Signed by an unknown key.
        let e = Envelope::sign(&statement(), &other);
        assert!(matches!(check(&e), Err(EnvelopeError::Untrusted { .. })));

        // One key's signature twice (securesystemslib refuses it too).
        let mut e = good.clone();
        e.signatures.push(e.signatures[0].clone());
        assert!(matches!(
            check(&e),
            Err(EnvelopeError::RepeatedKeyId { .. })
        ));

        // Trusted key id, another key's signature.
        let mut e = Envelope::sign(&statement(), &other);
        e.signatures[0].keyid = key.key_id().to_string();
        assert!(matches!(check(&e), Err(EnvelopeError::BadSignature { .. })));

        // Payload changed after signing.
        let mut e = good.clone();
        let mut st = statement();
        st.predicate = json!({"x": 2});
        e.payload = STANDARD.encode(st.to_bytes());
        assert!(matches!(check(&e), Err(EnvelopeError::BadSignature { .. })));

        // Unknown top-level field, trailing data, oversize.
        let text = String::from_utf8(good.to_bytes()).unwrap();
        let extra = text.replacen('{', "{\"extra\":1,", 1);
        assert!(matches!(
            Envelope::verify(extra.as_bytes(), only(key.public()), ""),
            Err(EnvelopeError::Malformed(_))
        ));
        let trailing = format!("{text}{{}}");
        assert!(Envelope::verify(trailing.as_bytes(), only(key.public()), "").is_err());
        let big = vec![b' '; MAX_JSON_BYTES + 1];
        assert!(matches!(
            Envelope::verify(&big, only(key.public()), ""),
            Err(EnvelopeError::TooLarge(_))
        ));
    }

    #[test]
    fn a_repeated_key_id_is_refused_like_securesystemslib_does() {
        let key = SigningKey::from_seed(&[7; 32]);
        let mut e = Envelope::sign(&statement(), &key);
        e.signatures.push(e.signatures[0].clone());
        let err = Envelope::verify(&e.to_bytes(), only(key.public()), "").unwrap_err();
        assert!(
            matches!(err, EnvelopeError::RepeatedKeyId { index: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn an_extra_unknown_signature_is_ignored() {
        let key = SigningKey::from_seed(&[7; 32]);
        let other = SigningKey::from_seed(&[8; 32]);
        let mut e = Envelope::sign(&statement(), &key);
        e.signatures
            .push(Envelope::sign(&statement(), &other).signatures[0].clone());
        let v = Envelope::verify(&e.to_bytes(), only(key.public()), "").unwrap();
        assert_eq!(v.signers(), &[key.key_id().clone()]);
    }
}
