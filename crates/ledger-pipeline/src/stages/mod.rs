//! The seven stages, in pipeline order.
//!
//! `commit` and `integration` wrap a command ([`command`], with the process itself in
//! [`exec`], its bounded output in [`capture`], kept away from the signing key by [`isolate`]); `build`, `publish`,
//! `deploy` and `smoke` drive the engine and the registry; `decide` evaluates the
//! release rules over the whole chain. Every stage starts with [`crate::run::begin`]
//! and writes through [`crate::record`].

pub mod build;
pub mod capture;
pub mod command;
pub mod decide;
pub mod deploy;
pub mod exec;
pub mod isolate;
pub mod publish;
pub mod slsa;
pub mod smoke;
