//! The store's append-only log of every object `ledger` writes, and its signed
//! checkpoints: the formats, independent of any store.
//!
//! Every envelope is signed and hash-linked, but the *set* of objects was not:
//! deleting a stage's latest, failing attempt left a store that verified. So every
//! object `ledger` writes is also named, with the SHA-256 of its bytes, by an entry of
//! a log. Entries are create-only objects `log/<seq>.json` numbered from 1 without
//! gaps, each carrying the SHA-256 of the previous entry's bytes (`prev`): a hash
//! chain, so changing, removing or reordering any entry breaks every later link.
//!
//! A checkpoint is the log's size and the SHA-256 of its last entry (the chain's
//! head), signed: a C2SP signed note (`origin`, size, base64 head, a blank line, then
//! `— <name> <base64(key hash ‖ signature)>` lines; Ed25519 with C2SP's key hash).
//! The head is a hash-chain head, not a Merkle root: consistency between a saved
//! checkpoint and today's log is checked by recomputing the chain up to the saved
//! size, which an auditor does anyway because verification reads the whole log.
//!
//! Every predicate also records the head its gate read ([`LogHead`], signed with the
//! rest): entries are appended after the objects they name, so every attempt written
//! later is named after that head, and a gate reads only the log's tail from there.

use crate::digest::Sha256Digest;
use crate::keys::{KeyId, PublicKey, SigningKey};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// Where log entries live.
pub const LOG_PREFIX: &str = "log/";

/// Where signed checkpoints live.
pub const CHECKPOINT_PREFIX: &str = "checkpoints/";

/// The checkpoint's origin line: which log this is.
pub const ORIGIN: &str = "ledger.dev/evidence-log";

/// The largest log entry read (an entry names the objects of one command).
pub const MAX_ENTRY_BYTES: usize = 1 << 20;

/// Objects the log does not name: its own entries and checkpoints, and `doctor`'s
/// write probes (which are not evidence).
pub fn unlogged(key: &str) -> bool {
    key.starts_with(LOG_PREFIX) || key.starts_with(CHECKPOINT_PREFIX) || key.starts_with("probes/")
}

/// The key of entry `seq` (zero-padded, so listings sort in log order).
pub fn entry_key(seq: u64) -> String {
    format!("{LOG_PREFIX}{seq:016}.json")
}

/// The sequence number in an entry key, if it is one.
pub fn entry_seq(key: &str) -> Option<u64> {
    let digits = key.strip_prefix(LOG_PREFIX)?.strip_suffix(".json")?;
    (digits.len() == 16 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// The key of the checkpoint at log size `size` signed by `keyid`.
pub fn checkpoint_key(size: u64, keyid: &KeyId) -> String {
    format!("{CHECKPOINT_PREFIX}{size:016}-{}.txt", keyid.short())
}

/// One object named by the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggedObject {
    pub key: String,
    pub sha256: Sha256Digest,
}

/// One log entry: the objects one command wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogEntry {
    pub seq: u64,
    /// SHA-256 of the previous entry's bytes; `null` for entry 1 (and never absent).
    pub prev: Prev,
    pub objects: Vec<LoggedObject>,
}

/// The `prev` member: a digest or `null`, but always present (serde reads a missing
/// member of any `Option`-like type as `null`, so this reads it as a JSON value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Prev(pub Option<Sha256Digest>);

impl<'de> Deserialize<'de> for Prev {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Prev, D::Error> {
        use serde::de::Error as _;
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Null => Ok(Prev(None)),
            serde_json::Value::String(s) => Sha256Digest::parse(&s)
                .map(|h| Prev(Some(h)))
                .map_err(D::Error::custom),
            _ => Err(D::Error::custom("prev is neither a SHA-256 nor null")),
        }
    }
}

/// A log entry or checkpoint that does not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlogError {
    #[error("{0}")]
    Malformed(String),
    #[error("checkpoint signature by {name} does not verify: the checkpoint was altered")]
    BadSignature { name: String },
    #[error("checkpoint is signed by no key the policy trusts (signers: {0})")]
    Untrusted(String),
}

impl LogEntry {
    /// The entry's bytes as stored: compact JSON and a newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec(self).unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// Parses stored bytes strictly (size, JSON, no unknown or repeated members).
    pub fn parse(bytes: &[u8]) -> Result<LogEntry, TlogError> {
        if bytes.len() > MAX_ENTRY_BYTES {
            return Err(TlogError::Malformed(format!(
                "{} bytes, over the {MAX_ENTRY_BYTES}-byte limit",
                bytes.len()
            )));
        }
        crate::json::from_slice(bytes).map_err(|e| TlogError::Malformed(e.to_string()))
    }
}

/// The log as a reader saw it: its size and the SHA-256 of its last entry. Evidence
/// records the one its gate read (`log_head` in every predicate's header): every
/// entry naming an attempt written after that evidence comes after it, which is what
/// lets a gate read only the log's tail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogHead {
    pub size: u64,
    pub sha256: Sha256Digest,
}

/// A log head: its size and the SHA-256 of its last entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    pub size: u64,
    pub head: Sha256Digest,
}

/// The C2SP key name of `key` in checkpoint signatures.
pub fn note_name(key: &PublicKey) -> String {
    format!(
        "ledger-{}",
        &key.key_id().as_str()[..16.min(key.key_id().as_str().len())]
    )
}

/// C2SP's key hash of an Ed25519 key: the first 4 bytes of
/// SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key).
fn key_hash(name: &str, key: &PublicKey) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n\x01");
    h.update(key.dalek().as_bytes());
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

impl Checkpoint {
    /// The signed text: origin, size, base64 head, each on its own line.
    pub fn body(&self) -> String {
        format!(
            "{ORIGIN}\n{}\n{}\n",
            self.size,
            STANDARD.encode(self.head.as_bytes())
        )
    }

    /// The signed note.
    pub fn sign(&self, key: &SigningKey) -> String {
        let body = self.body();
        let name = note_name(key.public());
        let mut blob = key_hash(&name, key.public()).to_vec();
        blob.extend_from_slice(&key.sign(body.as_bytes()));
        format!("{body}\n\u{2014} {name} {}\n", STANDARD.encode(blob))
    }

    /// Parses a signed note and checks that a key among `keys` signed it; a
    /// signature line naming one of `keys` that does not verify is an error.
    pub fn verify(text: &str, keys: &[&PublicKey]) -> Result<(Checkpoint, KeyId), TlogError> {
        let bad = |why: &str| TlogError::Malformed(format!("not a ledger checkpoint: {why}"));
        if !text.ends_with('\n') || text.contains('\r') {
            return Err(bad("lines must end in a newline, without carriage returns"));
        }
        let (body, sigs) = text
            .split_once("\n\n")
            .ok_or_else(|| bad("no blank line"))?;
        let body = format!("{body}\n");
        let mut lines = body.lines();
        if lines.next() != Some(ORIGIN) {
            return Err(bad("wrong origin line"));
        }
        let size: u64 = lines
            .next()
            .filter(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()))
            .filter(|l| !l.starts_with('0') || *l == "0")
            .and_then(|l| l.parse().ok())
            .ok_or_else(|| bad("size is not a decimal number"))?;
        let head = lines
            .next()
            .and_then(|l| STANDARD.decode(l).ok())
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .map(Sha256Digest::from)
            .ok_or_else(|| bad("head is not a base64 SHA-256"))?;
        if lines.next().is_some() {
            return Err(bad("extra lines before the signatures"));
        }
        let mut names = Vec::new();
        let mut signer = None;
        for line in sigs.lines() {
            let rest = line
                .strip_prefix("\u{2014} ")
                .ok_or_else(|| bad("a signature line does not start with an em dash"))?;
            let (name, b64) = rest.split_once(' ').ok_or_else(|| bad("signature line"))?;
            names.push(name.to_owned());
            let blob = STANDARD
                .decode(b64)
                .map_err(|_not_base64| bad("signature is not base64"))?;
            let Some(key) = keys.iter().find(|k| note_name(k) == name) else {
                continue;
            };
            if blob.len() != 68
                || blob[..4] != key_hash(name, key)
                || !key.verify(body.as_bytes(), &blob[4..])
            {
                return Err(TlogError::BadSignature {
                    name: name.to_owned(),
                });
            }
            signer.get_or_insert_with(|| key.key_id().clone());
        }
        let signer = signer.ok_or_else(|| TlogError::Untrusted(names.join(", ")))?;
        Ok((Checkpoint { size, head }, signer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_round_trip_and_fail_closed() {
        let key = SigningKey::from_seed(&[3; 32]);
        let other = SigningKey::from_seed(&[4; 32]);
        let cp = Checkpoint {
            size: 42,
            head: Sha256Digest::of(b"entry"),
        };
        let note = cp.sign(&key);
        assert!(note.starts_with("ledger.dev/evidence-log\n42\n"), "{note}");
        let (got, by) = Checkpoint::verify(&note, &[key.public()]).unwrap();
        assert_eq!((got, &by), (cp, key.key_id()));
        assert!(matches!(
            Checkpoint::verify(&note, &[other.public()]),
            Err(TlogError::Untrusted(_))
        ));
        let altered = note.replace("\n42\n", "\n41\n");
        assert!(matches!(
            Checkpoint::verify(&altered, &[key.public()]),
            Err(TlogError::BadSignature { .. })
        ));
        assert!(Checkpoint::verify("garbage", &[key.public()]).is_err());
    }

    #[test]
    fn entries_parse_strictly_and_keys_sort_in_order() {
        let e = LogEntry {
            seq: 7,
            prev: Prev(Some(Sha256Digest::of(b"6"))),
            objects: vec![LoggedObject {
                key: "commit/x/commit.json".into(),
                sha256: Sha256Digest::of(b"x"),
            }],
        };
        assert_eq!(LogEntry::parse(&e.to_bytes()).unwrap(), e);
        let twice = String::from_utf8(e.to_bytes()).unwrap().replacen(
            "{\"seq\":7",
            "{\"seq\":7,\"seq\":8",
            1,
        );
        assert!(LogEntry::parse(twice.as_bytes()).is_err());
        assert!(
            LogEntry::parse(b"{\"seq\":1,\"objects\":[]}").is_err(),
            "prev is required"
        );
        assert!(entry_key(9) < entry_key(10));
        assert_eq!(entry_seq(&entry_key(123)), Some(123));
        assert_eq!(entry_seq("log/12.json"), None);
    }
}
