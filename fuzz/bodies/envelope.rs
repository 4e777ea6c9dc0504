//! Envelope parsing and verification on arbitrary bytes: never a panic, and never a
//! verified envelope unless the bytes carry a real signature by the trusted key.
//!
//! The body of the `envelope` fuzz target, shared by `cargo fuzz` (`fuzz_targets/envelope.rs`) and
//! the stable test that runs it over the corpus and its mutations (`tests/it/fuzz_bodies.rs`).

use ledger_core::dsse::Envelope;
use ledger_core::SigningKey;

/// Panics when a property above does not hold for `data`.
pub fn check(data: &[u8]) {
    let key = SigningKey::from_seed(&[42; 32]);
    let public = key.public().clone();
    let _ = Envelope::parse(data);
    if let Ok(verified) =
        Envelope::verify(data, |id| (id == public.key_id()).then_some(&public), "")
    {
        // Anything that verifies must name the trusted key and parse as a statement.
        assert_eq!(verified.signers(), std::slice::from_ref(public.key_id()));
    }
}
