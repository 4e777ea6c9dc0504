//! `cargo fuzz` target: see `../bodies/statement.rs` for what it checks.
#![no_main]

#[path = "../bodies/statement.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::check(data));
