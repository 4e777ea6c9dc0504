//! in-toto statement parsing and predicate schema validation on arbitrary payloads.
#![no_main]

use ledger_core::schema::{self, Document};
use ledger_core::{ArtifactKind, Statement};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(statement) = Statement::parse(data) {
        let _ = statement.kind();
        let _ = statement.git_commits().count();
        for kind in ArtifactKind::ALL {
            let _ = schema::validate(Document::Predicate(kind), &statement.predicate);
        }
        let _ = ledger_core::predicate::Header::from_predicate(&statement.predicate);
    }
});
