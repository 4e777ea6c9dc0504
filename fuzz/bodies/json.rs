//! The strict JSON reader on arbitrary bytes: never a panic; whatever it accepts,
//! serde_json reads to the same value (so nothing it passes is read two ways), and a
//! duplicate it refuses is named by a well-formed JSON pointer.
//!
//! The body of the `json` fuzz target, shared by `cargo fuzz` (`fuzz_targets/json.rs`) and
//! the stable test that runs it over the corpus and its mutations (`tests/it/fuzz_bodies.rs`).

use ledger_core::json::{self, JsonError};
use serde_json::Value;

/// Panics when a property above does not hold for `data`.
pub fn check(data: &[u8]) {
    let loose = serde_json::from_slice::<Value>(data);
    match json::from_slice::<Value>(data) {
        Ok(strict) => {
            assert!(!data.starts_with(b"\xEF\xBB\xBF"));
            assert_eq!(Some(&strict), loose.as_ref().ok(), "read two ways");
            // Written back and read again strictly, it is the same document.
            let again = serde_json::to_vec(&strict).unwrap();
            assert_eq!(json::from_slice::<Value>(&again).ok(), Some(strict));
        }
        Err(JsonError::Duplicate { pointer, .. }) => {
            assert!(pointer.starts_with('/'), "{pointer}");
            assert!(
                !pointer.contains("~2") && !pointer.ends_with('~'),
                "{pointer}"
            );
        }
        Err(JsonError::Bom) => assert!(data.starts_with(b"\xEF\xBB\xBF")),
        Err(JsonError::Syntax(_)) => {}
    }
}
