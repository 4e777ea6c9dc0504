//! A gate reads the log from the head its inputs recorded, not from entry 1: every
//! piece of evidence records the log's head its own gate read (`log_head`, signed),
//! and every later attempt is named after it. These cases hold that reading to what
//! the whole log would say: the requests do not grow with the store's history, the
//! entry it starts from cannot be rewritten, a forged head does not hide a later
//! attempt, and a log deleted and started again does not launder what the old one
//! named. As in `history`, each is the attacker's move with the store's write access,
//! then the real binary (and, on the local backend, the auditor's verifier).

use crate::history::{
    assert_next_gate_refuses, commit, delete_log, entries, expect, repo_with, verify,
};
use crate::{assert_code, text, Backend, Repo, SHA};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ledger_core::tlog::{self, LogEntry};
use ledger_core::{Sha256Digest, Stage};
use serde_json::{json, Value};

/// The store requests `ledger args` made, counted by the binary.
#[derive(serde::Deserialize)]
struct Requests {
    get: u64,
    list: u64,
    /// Gets of an object the process had read already.
    repeated: u64,
}

fn counted(repo: &Repo, args: &[&str]) -> Requests {
    let file = repo.path().join("requests.jsonl");
    let _ = std::fs::remove_file(&file);
    let out = repo.ledger_env(args, &[("LEDGER_COUNT_REQUESTS", file.to_str().unwrap())]);
    assert_code(&out, 0);
    let line = std::fs::read_to_string(&file).unwrap();
    serde_json::from_str(line.trim()).unwrap()
}

/// The `get` and `list` requests of `ledger args`.
fn requests(repo: &Repo, args: &[&str]) -> (u64, u64) {
    let c = counted(repo, args);
    (c.get, c.list)
}

/// The gate of `integration` makes as many requests after 2 commit attempts as after
/// 12: it reads the log from the head the latest attempt recorded, not the whole log.
fn a_gate_reads_the_log_from_the_head_its_inputs_recorded(backend: Backend) {
    let measure = |attempts: usize| {
        let repo = repo_with(&backend, &vec![true; attempts]);
        assert_eq!(entries(&repo).len(), attempts);
        let gate = requests(&repo, &["gate", "integration", "--sha", SHA]);
        let stage = requests(&repo, &["stage", "integration", "--sha", SHA, "--", "true"]);
        // `verify` still reads every entry.
        let (verify_gets, _) = requests(&repo, &["verify", SHA]);
        (gate, stage, verify_gets)
    };
    let (short_gate, short_stage, short_verify) = measure(2);
    let (long_gate, long_stage, long_verify) = measure(12);
    assert_eq!(short_gate, long_gate, "gate: 2 attempts, then 12");
    assert_eq!(short_stage, long_stage, "stage: 2 attempts, then 12");
    assert!(
        long_verify >= short_verify + 10,
        "{short_verify} {long_verify}"
    );
}

/// Entry 1 (what commit attempt 2's gate read) rewritten, the chain after it linked
/// to the new bytes and every checkpoint deleted: only the signed head still says
/// what entry 1 was, and that is enough.
fn rewriting_the_entry_a_gate_starts_from_is_refused(backend: Backend) {
    let repo = repo_with(&backend, &[true, false]);
    for key in repo.stored() {
        if key.starts_with(tlog::CHECKPOINT_PREFIX) {
            repo.delete_object(&key);
        }
    }
    let mut prev = None;
    for (key, mut entry) in entries(&repo) {
        if entry.seq == 1 {
            entry.objects.retain(|o| !o.key.ends_with(".log"));
        }
        entry.prev = tlog::Prev(prev);
        let bytes = entry.to_bytes();
        prev = Some(Sha256Digest::of(&bytes));
        repo.tamper_object(&key, bytes);
    }
    let rewritten = "its gate read the log at entry 1, and that entry is no longer the one it read";
    assert_next_gate_refuses(&repo, rewritten);
    verify(&repo, 4, &[rewritten]);
}

/// Commit attempt 3 (failing) deleted, and attempt 2's recorded head moved past the
/// entry naming 3 so that a gate would start reading after it. The head is read
/// before the envelope is verified, but an attempt the part read does not name is
/// not taken for the latest: the walk goes down, the log is read from earlier, and
/// the deleted attempt is found.
fn a_forged_head_does_not_hide_a_later_attempt(backend: Backend) {
    let repo = repo_with(&backend, &[true, false, false]);
    let log = entries(&repo);
    let (last_key, _) = log.last().unwrap();
    let last = Sha256Digest::of(&repo.read_object(last_key));
    repo.delete_object(&commit(3));
    let mut envelope: Value = serde_json::from_slice(&repo.read_object(&commit(2))).unwrap();
    let payload = STANDARD
        .decode(envelope["payload"].as_str().unwrap())
        .unwrap();
    let mut statement: Value = serde_json::from_slice(&payload).unwrap();
    statement["predicate"]["log_head"] = json!({ "size": log.len(), "sha256": last });
    envelope["payload"] = json!(STANDARD.encode(serde_json::to_vec(&statement).unwrap()));
    repo.tamper_object(&commit(2), serde_json::to_vec(&envelope).unwrap());
    assert_next_gate_refuses(&repo, &commit(3));
    verify(&repo, 4, &[&commit(3), "deleted"]);
}

/// Deleting a store's log and starting a new one does not launder what the old one
/// said: evidence recorded the log's head its gate read, signed, and the new log
/// does not hold it.
fn a_new_log_does_not_replace_one_evidence_read(backend: Backend) {
    let repo = repo_with(&backend, &[true, false]);
    delete_log(&repo);
    expect(&repo, &["checkpoint", "--genesis"], 0, &[]);
    let entry: LogEntry = LogEntry::parse(&repo.read_object(&tlog::entry_key(1))).unwrap();
    assert!(
        entry.objects.iter().any(|o| o.key == commit(2)),
        "{entry:?}"
    );
    verify(
        &repo,
        4,
        &[
            &commit(2),
            "its gate read the log at entry 1, and that entry is no longer the one it read",
            "the log names it in entry 1, not after entry 1",
        ],
    );
    let out = expect(&repo, &["verify", "--all"], 4, &["the log was rewritten"]);
    assert!(text(&out).contains(&commit(2)), "{}", text(&out));
}

/// No stage reads an object twice: what its gate read, its work reuses. `decide`
/// judges the release over the evidence its gate gathered (it had read every other
/// stage again), and the stored copy of the policy the gate read is not written again
/// (the write-once store had answered with a read to compare).
fn no_stage_reads_an_object_twice(backend: Backend) {
    let repo = repo_with(&backend, &[false, true]);
    let c = counted(&repo, &["stage", "integration", "--sha", SHA, "--", "true"]);
    assert_eq!(c.repeated, 0, "integration: {} gets", c.get);
    repo.chain_before(Stage::Decide, SHA);
    // The first decision, and one more on a store that holds a decision already.
    for attempt in 1..=2 {
        let c = counted(&repo, &["stage", "decide", "--sha", SHA]);
        assert_eq!(c.repeated, 0, "decide attempt {attempt}: {} gets", c.get);
        // Six stages' evidence at least, each read once.
        assert!(
            c.get >= 6,
            "decide attempt {attempt} read {} objects",
            c.get
        );
    }
}

on_both_backends!(
    no_stage_reads_an_object_twice,
    a_gate_reads_the_log_from_the_head_its_inputs_recorded,
    rewriting_the_entry_a_gate_starts_from_is_refused,
    a_forged_head_does_not_hide_a_later_attempt,
    a_new_log_does_not_replace_one_evidence_read,
);
