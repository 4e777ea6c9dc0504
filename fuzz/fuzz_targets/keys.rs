//! `cargo fuzz` target: see `../bodies/keys.rs` for what it checks.
#![no_main]

#[path = "../bodies/keys.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::check(data));
