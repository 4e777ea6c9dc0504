//! `ledger-pipeline`: what each stage does, and how evidence is checked.
//!
//! This crate is the library behind every `ledger` command. It combines the pure
//! formats (`ledger-core`) and rules (`ledger-policy`) with the write-once store
//! (`ledger-store`): run a stage, record its evidence, verify a chain. It knows
//! nothing of the command line; every operation returns a value or a typed [`Error`]
//! whose [`ErrorClass`] decides the exit code.

pub mod build;
pub mod command;
pub mod config;
pub mod decide;
pub mod deploy;
pub mod drift;
pub mod error;
pub mod evidence;
pub mod gate;
pub mod lease;
pub mod promote;
pub mod prune;
pub mod publish;
pub mod record;
pub mod redact;
pub mod registry;
pub mod replay;
pub mod report;
pub mod runner;
pub mod show;
pub mod smoke;
pub mod stage;
pub mod status;
pub mod walk;

pub use error::{Error, ErrorClass};

use ledger_store::StoreError;

/// The class of a store failure.
pub(crate) fn store_class(e: &StoreError) -> ErrorClass {
    match e {
        StoreError::Unsupported { .. }
        | StoreError::InvalidKey(_)
        | StoreError::InvalidLocation { .. } => ErrorClass::Input,
        StoreError::TooLarge { .. } => ErrorClass::Verification,
        _ => ErrorClass::Infrastructure,
    }
}
