//! The fuzz targets' bodies as ordinary tests, on the stable toolchain: every input of
//! each target's corpus (its committed seeds under `fuzz/seeds/<target>/`, every schema
//! fixture, and the `cargo fuzz` corpus and crash folders when a fuzz run left them),
//! then a bounded, repeatable mutation run over that corpus.
//!
//! Why: the coverage-guided run needs `cargo fuzz` and a second, instrumented build of
//! the workspace, which cost CI more than all the tests together. The properties are the
//! same code (`fuzz/bodies/`); what this run lacks is coverage feedback, so it finds
//! shallow breakage (a panic one byte flip from a real document), not deep paths. The
//! coverage-guided run stays one command away: `cargo xtask fuzz` (`fuzz/README.md`).
//!
//! The mutation run is deterministic (a fixed seed per target) so a failure reproduces;
//! `LEDGER_FUZZ_MUTATIONS` sets how many mutated inputs each target gets (default 4000)
//! and `LEDGER_FUZZ_SEED` varies the seed.

#[path = "../../fuzz/bodies/envelope.rs"]
mod envelope;
#[path = "../../fuzz/bodies/json.rs"]
mod json;
#[path = "../../fuzz/bodies/keys.rs"]
mod keys;
#[path = "../../fuzz/bodies/policy.rs"]
mod policy;
#[path = "../../fuzz/bodies/statement.rs"]
mod statement;

use crate::support::Rng;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every regular file directly in `dir` (none when it does not exist).
fn files_in(dir: &Path) -> Vec<Vec<u8>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .collect()
}

/// The corpus of `target`: what `cargo xtask fuzz` seeds it with, plus every fixture
/// and whatever a coverage-guided run left behind.
fn corpus(target: &str) -> Vec<Vec<u8>> {
    let root = root();
    let mut inputs = files_in(&root.join("fuzz/seeds").join(target));
    let fixtures = root.join("schemas/fixtures");
    let mut kinds: Vec<PathBuf> = std::fs::read_dir(&fixtures)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    kinds.sort();
    for kind in kinds {
        inputs.extend(files_in(&kind.join("valid")));
        inputs.extend(files_in(&kind.join("invalid")));
    }
    inputs.extend(files_in(&root.join("fuzz/corpus").join(target)));
    inputs.extend(files_in(&root.join("fuzz/artifacts").join(target)));
    inputs
}

/// Fragments that JSON, DSSE and key parsers treat specially.
const TOKENS: &[&[u8]] = &[
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"\\u0000",
    b"\\ud800",
    b"1e999",
    b"-0",
    b"null",
    b"\xEF\xBB\xBF",
    b"\"payload\":\"\"",
    b"\"signatures\":[]",
    b"\"keyid\":\"\"",
    b"..",
    b"/",
    b"%2e%2e",
    b"://",
    b"@",
    b"\xff",
];

/// One mutation of `input`, sometimes spliced with `other`.
fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(3) {
        let at = rng.below(out.len() + 1);
        match rng.below(7) {
            0 if !out.is_empty() => {
                let i = at.min(out.len() - 1);
                out[i] ^= 1 << rng.below(8);
            }
            1 if !out.is_empty() => {
                let i = at.min(out.len() - 1);
                out[i] = u8::try_from(rng.below(256)).unwrap();
            }
            2 => {
                let end = (at + rng.below(16)).min(out.len());
                out.drain(at..end);
            }
            3 => {
                let end = (at + rng.below(64)).min(out.len());
                let copy = out[at..end].to_vec();
                let to = rng.below(out.len() + 1);
                out.splice(to..to, copy);
            }
            4 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                out.splice(at..at, token.iter().copied());
            }
            5 => {
                let from = rng.below(other.len() + 1);
                out.truncate(at);
                out.extend_from_slice(&other[from..]);
            }
            _ => out.truncate(at),
        }
    }
    out
}

fn seed(target: &str) -> u64 {
    let base: u64 = std::env::var("LEDGER_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED);
    target
        .bytes()
        .fold(base ^ 0x9E37_79B9_7F4A_7C15, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3)
        })
        .max(1)
}

/// Runs `check` over the corpus of `target` and its mutations; a failing input is
/// reported in hex (and kept under `target/fuzz-failures/`) so it can be replayed with
/// `cargo fuzz run <target> <file>` and turned into a regression test.
fn run(target: &str, check: fn(&[u8])) {
    let inputs = corpus(target);
    assert!(inputs.len() >= 8, "{target}: corpus too small");
    let mutations: usize = std::env::var("LEDGER_FUZZ_MUTATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4000);
    let mut rng = Rng(seed(target));
    let mutated = (0..mutations).map(|_| {
        let a = &inputs[rng.below(inputs.len())];
        let b = &inputs[rng.below(inputs.len())];
        mutate(&mut rng, a, b)
    });
    let mut failure = None;
    for (n, data) in inputs.iter().cloned().chain(mutated).enumerate() {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check(&data))) {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            failure = Some((n, data, why));
            break;
        }
    }
    if let Some((n, data, why)) = failure {
        let dir = root().join("target/fuzz-failures");
        let _ = std::fs::create_dir_all(&dir);
        let file = dir.join(format!("{target}-{n}"));
        let _ = std::fs::write(&file, &data);
        let shown: String = data.iter().take(512).map(|b| format!("{b:02x}")).collect();
        panic!(
            "{target}: input {n} ({} of them the corpus) broke a property: {why}\nsaved as {}\nhex: {shown}",
            inputs.len(),
            file.display()
        );
    }
}

#[test]
fn envelope_body_holds_over_its_corpus_and_mutations() {
    run("envelope", envelope::check);
}

#[test]
fn statement_body_holds_over_its_corpus_and_mutations() {
    run("statement", statement::check);
}

#[test]
fn policy_body_holds_over_its_corpus_and_mutations() {
    run("policy", policy::check);
}

#[test]
fn keys_body_holds_over_its_corpus_and_mutations() {
    run("keys", keys::check);
}

#[test]
fn json_body_holds_over_its_corpus_and_mutations() {
    run("json", json::check);
}

/// The harness itself: a property that fails is caught, reported and saved, not
/// swallowed (so a green run means the bodies held, not that nothing ran).
#[test]
fn a_broken_property_fails_the_run() {
    fn fragile(data: &[u8]) {
        assert!(!data.contains(&b'{'), "saw a brace");
    }
    let result = catch_unwind(|| run("json", fragile));
    let message = result.expect_err("the run must fail");
    let text = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(text.contains("saw a brace"), "{text}");
    assert!(text.contains("saved as"), "{text}");
}
