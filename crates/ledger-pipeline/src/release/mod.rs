//! Operations on releases that were already built and published.
//!
//! None of them builds: [`replay`] (and rollback) runs a stored manifest again,
//! [`promote`] carries one environment's verified digests to the next, [`prune`]
//! removes images no promotion protects, and [`lease`] serializes deploys per
//! environment for all of them and for the deploy stage.

pub mod lease;
pub mod promote;
pub mod prune;
pub mod replay;
pub mod step;
