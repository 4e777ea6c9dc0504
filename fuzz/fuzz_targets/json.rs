//! `cargo fuzz` target: see `../bodies/json.rs` for what it checks.
#![no_main]

#[path = "../bodies/json.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::check(data));
