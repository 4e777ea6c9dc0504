//! `ledger-policy`: the pipeline policy auditors read, and what it decides.
//!
//! Pure like `ledger-core`: a policy is parsed from bytes (the caller reads the file),
//! validated against `schemas/policy.v1.schema.json`, and then checked for what a
//! schema cannot express (each key id really is its key's id, no stage requires
//! itself through a cycle). The resulting [`Policy`] answers which keys may sign
//! which stage, and the gate evaluation turns evidence into a [`Verdict`] value:
//! a denial is data with reasons, never an `Err`.

pub mod model;
mod parse;
mod trust;

pub use model::{Condition, Gate, Op, Requirement};
pub use parse::PolicyError;
pub use trust::{Policy, TrustedKey};
mod default;
pub use default::{
    default_policy, default_policy_json, key_doc, zoned_policy_json, POLICY_SCHEMA_ID,
    RELEASE_ZONE, TEST_ZONE,
};
pub mod eval;
pub use eval::{evaluate, Found, Reason, Used, Verdict};
pub mod root;
pub use root::{Root, RootChain, TrustError};
