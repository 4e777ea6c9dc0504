//! Ed25519 keys in the PEM forms operators already have, and their key ids.
//!
//! Private keys are PKCS#8 PEM and public keys SPKI PEM, so `openssl genpkey -algorithm
//! ed25519` output works unchanged. The key id is the securesystemslib default (hex
//! SHA-256 over the OLPC canonical JSON of the key's public form), which is what lets
//! an envelope signed here verify unchanged with securesystemslib and in-toto.
//!
//! A [`SigningKey`] never shows its secret: not in `Debug`, not in errors.

use crate::digest::Sha256Digest;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::Signer as _;
use serde::Serialize;
use std::fmt;

/// The securesystemslib key id of a public key: 64 lowercase hex digits.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct KeyId(String);

impl KeyId {
    /// The key id as hex.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key id as written in an envelope; not validated, because an envelope may
    /// name any key id at all (and an unknown one simply matches no trusted key).
    pub fn from_envelope(s: &str) -> KeyId {
        KeyId(s.to_owned())
    }

    /// The first 12 hex digits, for people.
    pub fn short(&self) -> &str {
        self.0.get(..12).unwrap_or(&self.0)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.short())
    }
}

/// Why a key could not be loaded. Messages never contain key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("not a PKCS#8 PEM Ed25519 private key ({0}); make one with `ledger keys generate` or `openssl genpkey -algorithm ed25519`")]
    BadPrivateKey(String),
    #[error("not an SPKI PEM Ed25519 public key ({0}); expected a `-----BEGIN PUBLIC KEY-----` block, e.g. from `openssl pkey -pubout`")]
    BadPublicKey(String),
    #[error("could not encode key as PEM: {0}")]
    Encode(String),
}

/// An Ed25519 public key that signatures are checked against.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: ed25519_dalek::VerifyingKey,
    id: KeyId,
}

impl PublicKey {
    /// Loads an SPKI PEM public key.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let key = ed25519_dalek::VerifyingKey::from_public_key_pem(pem.trim())
            .map_err(|e| KeyError::BadPublicKey(e.to_string()))?;
        Ok(Self::from_dalek(key))
    }

    /// Wraps a raw 32-byte public key.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KeyError> {
        let key = ed25519_dalek::VerifyingKey::from_bytes(bytes)
            .map_err(|e| KeyError::BadPublicKey(e.to_string()))?;
        Ok(Self::from_dalek(key))
    }

    fn from_dalek(key: ed25519_dalek::VerifyingKey) -> Self {
        let id = key_id(&key);
        PublicKey { key, id }
    }

    /// The securesystemslib key id.
    pub fn key_id(&self) -> &KeyId {
        &self.id
    }

    /// The raw public key as 64 hex digits (securesystemslib's `keyval.public`).
    pub fn to_hex(&self) -> String {
        hex::encode(self.key.as_bytes())
    }

    /// SPKI PEM text.
    pub fn to_pem(&self) -> Result<String, KeyError> {
        self.key
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| KeyError::Encode(e.to_string()))
    }

    /// Strict Ed25519 verification (rejects small-order keys and non-canonical
    /// signatures), so one message has one valid signature per key.
    pub fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        let Ok(sig) = ed25519_dalek::Signature::from_slice(sig) else {
            return false;
        };
        self.key.verify_strict(message, &sig).is_ok()
    }

    /// The underlying dalek key, for batch verification.
    pub fn dalek(&self) -> &ed25519_dalek::VerifyingKey {
        &self.key
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.id.short())
    }
}

/// An Ed25519 private key. Its `Debug` shows only the key id.
pub struct SigningKey {
    key: ed25519_dalek::SigningKey,
    public: PublicKey,
}

impl SigningKey {
    /// Loads a PKCS#8 PEM private key.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let key = ed25519_dalek::SigningKey::from_pkcs8_pem(pem.trim())
            // The underlying error names only the decoding step, never key bytes.
            .map_err(|e| KeyError::BadPrivateKey(e.to_string()))?;
        Ok(Self::from_dalek(key))
    }

    /// A fresh key from the operating system's random source.
    pub fn generate() -> Self {
        Self::from_dalek(ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng))
    }

    /// A key from a 32-byte seed; for tests and fixtures only.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self::from_dalek(ed25519_dalek::SigningKey::from_bytes(seed))
    }

    fn from_dalek(key: ed25519_dalek::SigningKey) -> Self {
        let public = PublicKey::from_dalek(key.verifying_key());
        SigningKey { key, public }
    }

    /// The matching public key.
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// The key id of the matching public key.
    pub fn key_id(&self) -> &KeyId {
        self.public.key_id()
    }

    /// PKCS#8 v1 PEM text, the form `openssl genpkey` writes. (v2, which embeds the
    /// public key, is not readable by OpenSSL 3.0 or Python `cryptography`.) The
    /// caller must write it only where secrets belong.
    pub fn to_pkcs8_pem(&self) -> Result<zeroize_string::Secret, KeyError> {
        let bytes = ed25519_dalek::pkcs8::KeypairBytes {
            secret_key: self.key.to_bytes(),
            public_key: None,
        };
        bytes
            .to_pkcs8_pem(LineEnding::LF)
            .map(zeroize_string::Secret)
            .map_err(|e| KeyError::Encode(e.to_string()))
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({}, secret hidden)", self.key_id().short())
    }
}

/// Holds PEM text of a private key and wipes it on drop.
pub mod zeroize_string {
    /// A private key's PEM text; dropped memory is zeroed by the `Zeroizing` inside.
    pub struct Secret(pub(crate) zeroize::Zeroizing<String>);

    impl Secret {
        /// The PEM text.
        pub fn expose(&self) -> &str {
            &self.0
        }
    }

    impl std::fmt::Debug for Secret {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Secret(hidden)")
        }
    }
}

/// securesystemslib's `keyid`: SHA-256 over the canonical JSON of the public key.
fn key_id(key: &ed25519_dalek::VerifyingKey) -> KeyId {
    #[derive(Serialize)]
    struct KeyVal {
        public: String,
    }
    #[derive(Serialize)]
    struct SslibKey {
        keytype: &'static str,
        keyval: KeyVal,
        scheme: &'static str,
    }
    let value = SslibKey {
        keytype: "ed25519",
        keyval: KeyVal {
            public: hex::encode(key.as_bytes()),
        },
        scheme: "ed25519",
    };
    let mut buf = Vec::new();
    let mut ser =
        serde_json::Serializer::with_formatter(&mut buf, olpc_cjson::CanonicalFormatter::new());
    // Serializing three strings into a Vec cannot fail.
    value.serialize(&mut ser).unwrap_or_default();
    KeyId(Sha256Digest::of(&buf).to_hex())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Generated with `openssl genpkey -algorithm ed25519` and `openssl pkey -pubout`.
    const OPENSSL_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIPVcr03LOITJSK3G+2VlF8+0JPwVbtxzRHnBh9eL5PJY\n-----END PRIVATE KEY-----\n";
    const OPENSSL_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEApiovwmkuDWd+gANCNJYFgiSw+DSpFCjzJBO78UbOI10=\n-----END PUBLIC KEY-----\n";

    #[test]
    fn openssl_keys_load_and_match() {
        let sk = SigningKey::from_pem(OPENSSL_PRIVATE).unwrap();
        let pk = PublicKey::from_pem(OPENSSL_PUBLIC).unwrap();
        assert_eq!(sk.public(), &pk);
        let sig = sk.sign(b"msg");
        assert!(pk.verify(b"msg", &sig));
        assert!(!pk.verify(b"msh", &sig));
        assert!(!pk.verify(b"msg", &sig[..63]));
    }

    /// The identity point is a small-order key: with `R` the identity and `S` = 0,
    /// `[S]B = R + [k]A` holds for every message, and plain Ed25519 verification
    /// (`ed25519-dalek`'s `verify`) accepts that signature. `verify_strict`, the
    /// only check `ledger` makes, refuses it: a policy naming such a key vouches
    /// for nothing (docs/security.md).
    #[test]
    fn a_small_order_key_signs_nothing() {
        use ed25519_dalek::Verifier;
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let pk = PublicKey::from_bytes(&identity).unwrap();
        let mut sig = [0u8; 64];
        sig[0] = 1;
        let dalek_sig = ed25519_dalek::Signature::from_bytes(&sig);
        for message in [&b"any message"[..], b"another one"] {
            assert!(pk.dalek().verify(message, &dalek_sig).is_ok(), "plain");
            assert!(!pk.verify(message, &sig), "ledger accepted it");
        }
    }

    #[test]
    fn key_id_matches_securesystemslib() {
        // Expected value computed with securesystemslib's SSlibKey for the same key
        // (the interop test in tests/ re-checks this against the real library).
        let pk = PublicKey::from_pem(OPENSSL_PUBLIC).unwrap();
        let canonical = format!(
            r#"{{"keytype":"ed25519","keyval":{{"public":"{}"}},"scheme":"ed25519"}}"#,
            pk.to_hex()
        );
        assert_eq!(
            pk.key_id().as_str(),
            Sha256Digest::of(canonical.as_bytes()).to_hex()
        );
    }

    #[test]
    fn private_keys_are_written_as_pkcs8_v1_like_openssl() {
        let sk = SigningKey::from_pem(OPENSSL_PRIVATE).unwrap();
        assert_eq!(sk.to_pkcs8_pem().unwrap().expose(), OPENSSL_PRIVATE);
    }

    #[test]
    fn pem_round_trip() {
        let sk = SigningKey::generate();
        let again = SigningKey::from_pem(sk.to_pkcs8_pem().unwrap().expose()).unwrap();
        assert_eq!(again.key_id(), sk.key_id());
        let pk = PublicKey::from_pem(&sk.public().to_pem().unwrap()).unwrap();
        assert_eq!(&pk, sk.public());
    }

    #[test]
    fn broken_pem_is_an_error_without_key_material() {
        let broken = OPENSSL_PRIVATE.replace("MC4C", "MC4D");
        let e = SigningKey::from_pem(&broken).unwrap_err().to_string();
        assert!(e.contains("PKCS#8"), "{e}");
        assert!(!e.contains("PVcr03LOITJ"), "{e}");
        assert!(SigningKey::from_pem(OPENSSL_PUBLIC).is_err());
        assert!(PublicKey::from_pem(OPENSSL_PRIVATE).is_err());
        assert!(PublicKey::from_pem("").is_err());
    }

    #[test]
    fn debug_hides_the_secret() {
        let sk = SigningKey::from_pem(OPENSSL_PRIVATE).unwrap();
        let shown = format!("{sk:?}");
        assert!(shown.contains("secret hidden"));
        assert!(!shown.contains("PVcr03LOITJ"));
        assert_eq!(
            format!("{:?}", sk.to_pkcs8_pem().unwrap()),
            "Secret(hidden)"
        );
    }
}
