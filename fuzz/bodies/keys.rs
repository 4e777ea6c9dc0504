//! Everything that turns outside text into a store key or name: SHAs, environment
//! names, artifact keys, object keys and store locations. Whatever parses must stay
//! inside the layout: no `..`, no absolute paths, and keys round-trip.
//!
//! The body of the `keys` fuzz target, shared by `cargo fuzz` (`fuzz_targets/keys.rs`) and
//! the stable test that runs it over the corpus and its mutations (`tests/it/fuzz_bodies.rs`).

use ledger_core::{ArtifactRef, EnvName, GitSha};
use ledger_store::{ObjectKey, StoreLocation};

/// Panics when a property above does not hold for `data`.
pub fn check(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = GitSha::parse(s);
    let _ = EnvName::parse(s);
    let _ = StoreLocation::parse(s);
    if let Some(r) = ArtifactRef::parse_key(s) {
        assert_eq!(r.key(), s, "artifact keys round-trip");
    }
    if let Ok(k) = ObjectKey::parse(s) {
        assert!(!k.as_str().starts_with('/'));
        assert!(k
            .as_str()
            .split('/')
            .all(|seg| seg != ".." && seg != "." && !seg.is_empty()));
    }
}
