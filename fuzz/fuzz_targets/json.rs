//! The strict JSON reader on arbitrary bytes: never a panic; whatever it accepts,
//! serde_json reads to the same value (so nothing it passes is read two ways), and a
//! duplicate it refuses is named by a well-formed JSON pointer.
#![no_main]

use ledger_core::json::{self, JsonError};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
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
            assert!(!pointer.contains("~2") && !pointer.ends_with('~'), "{pointer}");
        }
        Err(JsonError::Bom) => assert!(data.starts_with(b"\xEF\xBB\xBF")),
        Err(JsonError::Syntax(_)) => {}
    }
});
