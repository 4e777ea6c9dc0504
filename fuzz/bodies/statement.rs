//! in-toto statement parsing and predicate schema validation on arbitrary payloads.
//!
//! The body of the `statement` fuzz target, shared by `cargo fuzz` (`fuzz_targets/statement.rs`) and
//! the stable test that runs it over the corpus and its mutations (`tests/it/fuzz_bodies.rs`).

use ledger_core::schema::{self, Document};
use ledger_core::{ArtifactKind, Statement};

/// Panics when a property above does not hold for `data`.
pub fn check(data: &[u8]) {
    if let Ok(statement) = Statement::parse(data) {
        let _ = statement.kind();
        let _ = statement.git_commits().count();
        for kind in ArtifactKind::ALL {
            let _ = schema::validate(Document::Predicate(kind), &statement.predicate);
        }
        let _ = ledger_core::predicate::Header::from_predicate(&statement.predicate);
    }
}
