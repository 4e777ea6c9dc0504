//! Policy parsing and gate evaluation on arbitrary documents: a policy either parses
//! (and then every gate evaluates without panicking) or is refused with an error.
//!
//! The body of the `policy` fuzz target, shared by `cargo fuzz` (`fuzz_targets/policy.rs`) and
//! the stable test that runs it over the corpus and its mutations (`tests/it/fuzz_bodies.rs`).

use ledger_core::Stage;
use ledger_policy::{evaluate, Policy};
use std::collections::BTreeMap;

/// Panics when a property above does not hold for `data`.
pub fn check(data: &[u8]) {
    let Ok(policy) = Policy::parse(data) else {
        return;
    };
    let found = BTreeMap::new();
    let now = time::OffsetDateTime::UNIX_EPOCH;
    for stage in Stage::ALL {
        let verdict = evaluate(&policy.gate(stage), "/stages", &found, now);
        // With no evidence at all, a gate that requires anything must deny.
        if !policy.gate(stage).requires.is_empty() {
            assert!(!verdict.allowed);
        }
    }
    let _ = evaluate(&policy.release(), "/release", &found, now);
    let _ = evaluate(&policy.replay(), "/replay", &found, now);
}
