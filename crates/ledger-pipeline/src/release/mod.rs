//! Operations on releases that were already built and published.
//!
//! None of them builds: [`replay`] (and rollback) runs a stored manifest again,
//! [`promote`] carries one environment's verified digests to the next, [`prune`]
//! removes images no promotion protects, and [`lease`] serializes deploys per
//! environment for all of them and for the deploy stage; [`attest`] attaches a
//! release's SLSA statements to its images again. [`released_config`] is the
//! `ledger.toml` a replay or rollback runs a release under: the SHA's own.

pub mod attest;
pub mod lease;
pub mod promote;
pub mod prune;
pub mod released_config;
pub mod replay;
pub mod restore;
pub mod step;
