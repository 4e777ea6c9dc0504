//! `cargo fuzz` target: see `../bodies/policy.rs` for what it checks.
#![no_main]

#[path = "../bodies/policy.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::check(data));
