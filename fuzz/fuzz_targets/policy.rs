//! Policy parsing and gate evaluation on arbitrary documents: a policy either parses
//! (and then every gate evaluates without panicking) or is refused with an error.
#![no_main]

use ledger_core::Stage;
use ledger_policy::{evaluate, Policy};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

fuzz_target!(|data: &[u8]| {
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
});
