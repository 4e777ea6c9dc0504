//! `ledger-pipeline`: what each stage and release operation does.
//!
//! This crate is the library behind every `ledger` command that changes something. It
//! combines the pure formats (`ledger-core`) and rules (`ledger-policy`) with the
//! write-once store (`ledger-store`), the verification path (`ledger-verify`) and the
//! engine (`ledger-docker`). It knows nothing of the command line; every operation
//! returns a value or a typed [`Error`] whose [`ErrorClass`] decides the exit code.
//!
//! Its rooms, each a folder:
//!
//! * [`stages`]: the seven stages, each run through [`run::begin`] (signer → gate →
//!   stored policy) and [`record`] (sign, store create-only).
//! * [`release`]: operations on stored releases: replay and rollback, promotion,
//!   prune, and the deploy lease they share.
//! * [`observe`]: what runs where (`status`), drift against the engine, delivery
//!   metrics.
//!
//! and the ground floor they share: [`run`], [`record`], [`config`] (`ledger.toml`),
//! [`engines`] (which engine each environment runs on),
//! [`ci`] (which CI runs us), [`source`] (what git says about the code a stage runs), [`spool`] (results waiting for a store that was down), [`redact`] (secrets out of stored bytes), [`trigger`]
//! (replay and promotion marks) and [`error`].

pub mod ci;
pub mod config;
pub mod engines;
pub mod error;
pub mod observe;
pub mod record;
pub mod redact;
pub mod release;
pub mod run;
pub mod source;
pub mod spool;
pub mod stages;
pub mod stats;
pub mod trigger;

pub use engines::{connect_engine, connect_environment_engine, Placement};
pub use error::{Error, ErrorClass};
pub use ledger_docker::{DockerError, Engine, EngineTarget, Registry};

/// A client for OCI registries (what `prune` deletes from).
pub fn registry_client() -> Registry {
    Registry::new()
}
