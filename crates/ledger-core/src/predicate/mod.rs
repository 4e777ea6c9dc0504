//! Typed predicates: one serde model per schema in `schemas/`.
//!
//! Stages wrote and read predicates as untyped JSON (`json!`, `p["field"]`), so a
//! misspelt field or a changed shape surfaced only when the schema refused it at run
//! time, or never (a read of a missing field is just `null`). These types are the
//! schemas spelt in Rust, one file per kind, kept in step with them by the tests in
//! `tests/predicates.rs` (every valid fixture round-trips; every field of every type
//! is in its schema and every property of every schema is in its type).
//!
//! Readers still validate a predicate against its schema first (the schema is the
//! contract, and it checks patterns these types do not), then deserialize it with
//! [`from_value`].

mod build;
mod command;
mod decision;
mod deployment;
mod header;
mod manifest;
mod provenance;
mod prune;
mod smoke;
mod source;
mod timing;
mod vsa;

pub use build::{BuildFailure, BuildPredicate, BuiltImage, ImageLabels};
pub use command::{Command, CommandPredicate, Isolation, Output, TestCounts};
pub use decision::{Decision, DecisionPredicate, Reason};
pub use deployment::{
    Container, DeployFailure, DeploymentPredicate, Lease, Port, Promotion, SwarmService, SwarmTask,
};
pub use header::{Header, Input, Outcome, Runner};
pub use manifest::{ManifestPredicate, PinnedImage};
pub use provenance::{
    provenance_subjects, BuildDefinition, BuildMetadata, Builder, ExternalParameters,
    ImageParameters, InternalParameters, ProvenancePredicate, ResourceDescriptor, RunDetails,
    BUILD_TYPE,
};
pub use prune::{Deleted, Place, PrunePredicate};
pub use smoke::{Latency, Method, SmokeCheck, SmokePredicate};
pub use source::{Source, Tree};
pub use timing::{StageTime, TimingPredicate};
pub use vsa::{VerificationResult, Verifier, VsaPredicate, BUILD_LEVEL, VERIFIER_ID};

use crate::schema::Document;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A predicate type and the schema documents it is the predicate of.
pub trait Predicate: Serialize + DeserializeOwned {
    /// The documents (schemas) whose predicates this type models. More than one when
    /// several kinds share a shape (`commit` and `integration`).
    const DOCUMENTS: &'static [Document];
}

/// Reads a predicate of type `P` out of its JSON (validate it against its schema
/// first: this checks shapes, not every pattern).
pub fn from_value<P: Predicate>(value: &serde_json::Value) -> Result<P, serde_json::Error> {
    P::deserialize(value)
}

/// Deserializes a field that may be absent, `null` or a value, keeping all three
/// apart: absent is `None` (through `#[serde(default)]`), `null` is `Some(None)`.
/// Plain `Option<Option<T>>` would read `null` as `None` and lose it.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}
