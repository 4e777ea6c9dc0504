//! Forging the log and its checkpoints with the store's write access and a stage's
//! key: an entry appended the way `ledger` appends one (the log stays a hash chain)
//! but naming an object again with a new digest, a log started afresh over a store
//! with an attempt removed, checkpoints signed by a key the policy does not trust,
//! altered or moved. `verify` exits 4 naming the problem, the next gate exits 3
//! where it reads what was forged, and `verify_chain.py` reaches the same verdict.

use crate::history::{
    assert_audit, assert_next_gate_refuses, commit, commit_log, entries, expect, passing_instead,
    repo_with, verify,
};
use crate::{Backend, Repo, SHA};
use ledger_core::tlog::{self, Checkpoint};
use ledger_core::{Sha256Digest, SigningKey};

/// Attempt 2 failed; the key holder signs a passing attempt 2, writes it over the
/// failing one and appends a well-chained entry naming it with its new digest.
#[test]
fn an_object_named_again_with_another_digest_is_refused() {
    let repo = repo_with(&Backend::Local, &[true, false]);
    repo.write_logged(&commit(2), passing_instead(&repo, 2));
    let again = "again with another digest";
    verify(&repo, 4, &[again]);
    assert_next_gate_refuses(&repo, again);
    assert_audit(&repo, &Backend::Local, &[], false, again);
}

/// A failing middle attempt removed, with its captured output, and the log started
/// again over what is left (`checkpoint --genesis`): the log no longer names it, and
/// the hole in the numbers still gives it away.
#[test]
fn an_attempt_removed_before_the_log_was_started_again_is_refused() {
    let repo = repo_with(&Backend::Local, &[true, false, true]);
    repo.delete_object(&commit(2));
    repo.delete_object(&commit_log(2));
    repo.relog();
    let hole = "attempt 2 of `commit` is neither stored nor logged";
    verify(&repo, 4, &[hole]);
    assert_audit(&repo, &Backend::Local, &[], false, "it was removed");
}

/// The log's newest head, and the name of the newest stored checkpoint.
fn newest(repo: &Repo) -> (Checkpoint, String) {
    let all = entries(repo);
    let (key, last) = all.last().unwrap();
    let head = Checkpoint {
        size: last.seq,
        head: Sha256Digest::of(&repo.read_object(key)),
    };
    let stored = repo
        .stored()
        .into_iter()
        .filter(|k| k.starts_with("checkpoints/"))
        .max()
        .unwrap();
    (head, stored)
}

/// A true checkpoint of the log's head, signed by a key the policy does not trust,
/// stored under that key's name: only trusted keys may vouch for the log.
#[test]
fn a_checkpoint_by_an_untrusted_key_is_refused() {
    let repo = repo_with(&Backend::Local, &[true]);
    let (head, _) = newest(&repo);
    let attacker = SigningKey::from_seed(&[7; 32]);
    let key = tlog::checkpoint_key(head.size, attacker.key_id());
    repo.tamper_object(&key, head.sign(&attacker).into_bytes());
    verify(&repo, 4, &[&key]);
    assert_audit(&repo, &Backend::Local, &[], false, &key);
}

/// The newest checkpoint's head changed (its signature kept): it no longer verifies.
#[test]
fn an_altered_checkpoint_is_refused() {
    let repo = repo_with(&Backend::Local, &[true]);
    let (head, stored) = newest(&repo);
    let altered = Checkpoint {
        size: head.size,
        head: Sha256Digest::of(b"another head"),
    };
    let real = String::from_utf8(repo.read_object(&stored)).unwrap();
    let signature = real.split_once("\n\n").unwrap().1;
    let forged = format!("{}\n{signature}", altered.body());
    repo.tamper_object(&stored, forged.into_bytes());
    verify(&repo, 4, &[&stored, "does not verify"]);
    assert_next_gate_refuses(&repo, &stored);
    assert_audit(&repo, &Backend::Local, &[], false, "does not verify");
}

/// A true, trusted checkpoint copied under another size's name: checkpoints are
/// found by their names, so a misnamed one is refused rather than read as what its
/// name says.
#[test]
fn a_checkpoint_stored_under_another_name_is_refused() {
    let repo = repo_with(&Backend::Local, &[true, true]);
    let (head, stored) = newest(&repo);
    let key = repo.signing_key(".ledger/test.key");
    let signed = head.sign(&key);
    assert_eq!(repo.read_object(&stored), signed.as_bytes());
    let elsewhere = tlog::checkpoint_key(head.size - 1, key.key_id());
    repo.delete_object(&elsewhere);
    repo.tamper_object(&elsewhere, signed.into_bytes());
    verify(&repo, 4, &[&elsewhere, "it was moved"]);
    assert_audit(&repo, &Backend::Local, &[], false, "it was renamed");
    // The attempts themselves are untouched: the refusal is about the checkpoint.
    expect(&repo, &["show", SHA], 0, &[]);
}
