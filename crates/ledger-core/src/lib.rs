//! `ledger-core`: the pure heart of `ledger`.
//!
//! Everything here is a function of its arguments: no file system, no network, no
//! clock, no async. That is what lets the verifier be reasoned about (and fuzzed) in
//! isolation, and what lets every other crate agree on one definition of the formats.
//!
//! * [`sha`] and [`stage`] name *what* evidence is about and *where* it lives.
//! * [`digest`] is SHA-256 as the evidence spells it (lowercase hex).
//! * [`keys`] loads Ed25519 keys from PEM and computes securesystemslib key ids.
//! * [`dsse`] builds, signs, parses and verifies DSSE envelopes.
//! * [`statement`] is the in-toto Statement v1 carried inside an envelope.
//! * [`predicate`] types every predicate: the shared header and one model per kind.
//! * [`json`] is the one strict JSON reader: no duplicate member at any depth, no BOM.
//! * [`attestation`] names the standard SLSA statements written beside `build` and
//!   `decide` evidence (their types are in [`predicate`]).
//! * [`schema`] validates predicates and policies against the JSON Schemas in `schemas/`.

pub mod attestation;
pub mod digest;
pub mod dsse;
pub mod env;
pub mod json;
pub mod keys;
pub mod predicate;
pub mod schema;
pub mod sha;
pub mod signed;
pub mod stage;
pub mod statement;
pub mod tlog;

pub use attestation::Attestation;
pub use digest::Sha256Digest;
pub use dsse::{Envelope, Signature, VerifiedEnvelope};
pub use env::{EnvName, DEFAULT_ENV};
pub use keys::{KeyId, PublicKey, SigningKey};
pub use sha::GitSha;
pub use stage::{ArtifactKind, ArtifactRef, Stage};
pub use statement::{Statement, Subject};

/// The largest JSON document `ledger` will parse: an envelope, a policy, a config.
/// Evidence is small; anything larger is refused before parsing so that a hostile
/// store cannot make the verifier allocate without bound.
pub const MAX_JSON_BYTES: usize = 4 * 1024 * 1024;

/// The version of `ledger` that writes evidence, recorded in every predicate.
pub const LEDGER_VERSION: &str = env!("CARGO_PKG_VERSION");
