//! Reading the state of releases without changing it.
//!
//! [`status`] says what runs in each environment according to the evidence, [`drift`]
//! compares that with what the engine runs, and [`metrics`] computes the delivery
//! numbers (deploy time, lead time, change-failure rate) that reports render;
//! [`doctor`] probes the store, engine and registry for `ledger doctor`; [`image`]
//! fetches the attestations attached to an image for `ledger verify --image`.

pub mod doctor;
pub mod drift;
pub mod image;
pub mod metrics;
pub mod status;
