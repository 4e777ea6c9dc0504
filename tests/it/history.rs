//! Tamper-evident history: deleting, hiding, replacing or truncating
//! evidence behind `ledger`'s back is caught by the store's append-only log. Each
//! case is the attacker's move with the store's write access (objects deleted,
//! renamed or overwritten directly), then the real binary: `verify` exits 4 naming
//! what is missing, the next gate exits 3. On the local backend the auditor's
//! independent verifier (`docs/audit/verify_chain.py`) must reach the same verdict.

use crate::{assert_code, text, Backend, Repo, SHA};
use ledger_core::tlog::{self, LogEntry};
use ledger_core::{ArtifactKind, ArtifactRef, GitSha};
use std::process::Output;

pub(crate) fn sha() -> GitSha {
    GitSha::parse(SHA).unwrap()
}

/// The envelope key of commit attempt `attempt` of `SHA`.
pub(crate) fn commit(attempt: u32) -> String {
    ArtifactRef::new(ArtifactKind::Commit, sha(), attempt).key()
}

/// The captured output of commit attempt `attempt` of `SHA`.
pub(crate) fn commit_log(attempt: u32) -> String {
    ArtifactRef::new(ArtifactKind::Commit, sha(), attempt).log_key()
}

/// Runs `ledger args`, asserts its exit code and that its output names `needles`.
#[track_caller]
pub(crate) fn expect(repo: &Repo, args: &[&str], code: i32, needles: &[&str]) -> Output {
    let out = repo.ledger(args);
    assert_code(&out, code);
    for n in needles {
        assert!(text(&out).contains(n), "want {n:?}: {}", text(&out));
    }
    out
}

/// `ledger verify SHA`, as [`expect`].
#[track_caller]
pub(crate) fn verify(repo: &Repo, code: i32, needles: &[&str]) -> Output {
    expect(repo, &["verify", SHA], code, needles)
}

/// Runs `ledger stage commit` once per entry of `results` (true: the command passes),
/// as attempts `first`, `first + 1`, ...
fn commit_attempts(repo: &Repo, first: u32, results: &[bool]) {
    for (attempt, pass) in (first..).zip(results) {
        let cmd = if *pass { "true" } else { "false" };
        let out = repo.ledger(&["stage", "commit", "--sha", SHA, "--", cmd]);
        assert_eq!(out.status.success(), *pass, "{attempt}: {}", text(&out));
        assert!(repo.has_object(&commit(attempt)), "{}", text(&out));
    }
}

/// A repository whose commit attempts 1, 2, ... have `results`, and verify.
pub(crate) fn repo_with(backend: &Backend, results: &[bool]) -> Repo {
    let repo = Repo::on(backend);
    commit_attempts(&repo, 1, results);
    verify(&repo, 0, &[]);
    repo
}

/// `ledger stage integration` is denied (exit 3) naming `needle`, without running
/// its command or writing evidence.
#[track_caller]
pub(crate) fn assert_stage_refuses(repo: &Repo, needle: &str) {
    let args = ["stage", "integration", "--sha", SHA, "--", "echo", "RAN-IT"];
    let out = expect(repo, &args, 3, &[needle]);
    assert!(!text(&out).contains("RAN-IT"), "{}", text(&out));
    let integration = ArtifactRef::new(ArtifactKind::Integration, sha(), 1).key();
    assert!(!repo.has_object(&integration), "{}", text(&out));
}

/// The integration gate, asked both ways (`ledger gate`, and the stage itself),
/// refuses with exit 3 naming `needle`.
#[track_caller]
pub(crate) fn assert_next_gate_refuses(repo: &Repo, needle: &str) {
    expect(repo, &["gate", "integration", "--sha", SHA], 3, &[needle]);
    assert_stage_refuses(repo, needle);
}

/// The auditor's verifier (local backend only: it reads a folder), given `extra`
/// arguments, agrees with `ledger verify`: exit 0 when `ok`, else 1, naming `needle`.
#[track_caller]
pub(crate) fn assert_audit(repo: &Repo, backend: &Backend, extra: &[&str], ok: bool, needle: &str) {
    if !matches!(backend, Backend::Local) || std::env::var_os("LEDGER_SKIP_INTEROP").is_some() {
        return;
    }
    let out = if extra.is_empty() {
        crate::interop::audit_chain(repo, SHA).unwrap()
    } else {
        // `audit_chain`, with the extra arguments.
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        std::process::Command::new("python3")
            .arg(script.join("../../docs/audit/verify_chain.py"))
            .arg(repo.store())
            .arg(repo.path().join("policy/pipeline-policy.json"))
            .arg(SHA)
            .args(extra)
            .output()
            .expect("python3")
    };
    assert_eq!(out.status.code(), Some(i32::from(!ok)), "{}", text(&out));
    assert!(text(&out).contains(needle), "{needle}: {}", text(&out));
}

/// The log's entries as stored, in order.
pub(crate) fn entries(repo: &Repo) -> Vec<(String, LogEntry)> {
    let keys = repo.stored().into_iter();
    keys.filter(|k| tlog::entry_seq(k).is_some())
        .map(|k| (k.clone(), LogEntry::parse(&repo.read_object(&k)).unwrap()))
        .collect()
}

// --- 1. the latest, failing attempt deleted -------------------------------------------

fn deleting_the_latest_failing_attempt_is_refused(backend: Backend) {
    let repo = repo_with(&backend, &[true, false]);
    assert_stage_refuses(&repo, "fail");
    repo.delete_object(&commit(2));
    repo.delete_object(&commit_log(2));

    verify(&repo, 4, &[&commit(2), "deleted or renamed"]);
    assert_next_gate_refuses(&repo, &commit(2));
    assert_audit(&repo, &backend, &[], false, &commit(2));
}

// --- 2. a middle attempt deleted -------------------------------------------------------

fn deleting_a_middle_attempt_is_refused(backend: Backend) {
    let repo = repo_with(&backend, &[true, false, true]);
    repo.delete_object(&commit(2));
    repo.delete_object(&commit_log(2));

    verify(&repo, 4, &[&commit(2)]);
    assert_audit(&repo, &backend, &[], false, &commit(2));
}

// --- 3. a log entry deleted ------------------------------------------------------------

/// Entries 1, 2, 3: attempt 1 passes, attempts 2 and 3 fail; entry 2 deleted. The log
/// then reads as a chain only up to entry 1, whose latest attempt passed.
fn log_without_entry_2(backend: &Backend) -> Repo {
    let repo = repo_with(backend, &[true, false, false]);
    assert_eq!(entries(&repo).len(), 3);
    repo.delete_object(&tlog::entry_key(2));
    repo
}

fn deleting_a_log_entry_is_refused(backend: Backend) {
    let repo = log_without_entry_2(&backend);
    verify(&repo, 4, &["no entry 2"]);
    expect(&repo, &["verify", "--all"], 4, &["no entry 2"]);
    assert_stage_refuses(&repo, "no entry 2");
}

/// `ledger gate` (what the gate would decide now) must agree with the stage.
fn ledger_gate_refuses_a_log_with_a_deleted_entry(backend: Backend) {
    let repo = log_without_entry_2(&backend);
    assert_stage_refuses(&repo, "no entry 2");
    expect(&repo, &["gate", "integration", "--sha", SHA], 3, &[]);
}

// --- 4. a whole SHA's folder deleted ---------------------------------------------------

fn deleting_a_whole_shas_folder_is_refused(backend: Backend) {
    let repo = repo_with(&backend, &[true]);
    let integrate = ["stage", "integration", "--sha", SHA, "--", "true"];
    expect(&repo, &integrate, 0, &[]);
    expect(&repo, &["verify", "--all"], 0, &[]);
    let folder = repo
        .stored()
        .into_iter()
        .filter(|k| k.contains(&format!("/{SHA}/")));
    let gone: Vec<String> = folder.collect();
    assert_eq!(gone.len(), 4, "{gone:?}");
    gone.iter().for_each(|key| repo.delete_object(key));

    let integration = ArtifactRef::new(ArtifactKind::Integration, sha(), 1).key();
    expect(&repo, &["verify", "--all"], 4, &[&commit(1), &integration]);
    verify(&repo, 4, &[&commit(1), &integration]);
}

// --- 5. an attempt renamed to a name listings skip ------------------------------------

fn renaming_an_attempt_out_of_sight_is_refused(backend: Backend) {
    let other_case = format!("commit/{}/commit.attempt-2.json", SHA.to_uppercase());
    for to in [
        format!("{}.bak", commit(2)),
        other_case,
        commit(2).to_uppercase(),
    ] {
        let repo = repo_with(&backend, &[true, false]);
        repo.tamper_object(&to, repo.read_object(&commit(2)));
        repo.delete_object(&commit(2));

        verify(&repo, 4, &[&commit(2)]);
        assert_next_gate_refuses(&repo, &commit(2));
        assert_audit(&repo, &backend, &[], false, &commit(2));
    }
}

// --- 6. an envelope replaced by another validly signed one ----------------------------

/// Attempt 2 failed; the attacker, holding the stage's key, signs a passing attempt 2
/// and writes it over the failing one.
fn a_re_signed_envelope_in_place_of_the_latest_is_refused(backend: Backend) {
    let repo = repo_with(&backend, &[true, false]);
    repo.tamper_object(&commit(2), passing_instead(&repo, 2));

    verify(&repo, 4, &[&commit(2), "replaced"]);
    assert_next_gate_refuses(&repo, "replaced");
    assert_audit(&repo, &backend, &[], false, &commit(2));
}

/// Commit attempt `attempt`, which failed, as the stage's key holder would forge it:
/// the same predicate made to say `pass`, signed with the trusted key.
pub(crate) fn passing_instead(repo: &Repo, attempt: u32) -> Vec<u8> {
    let mut p = repo.predicate(&commit(attempt));
    assert_eq!(p["result"], "fail");
    crate::consistent::with_result(ArtifactKind::Commit, &mut p, false);
    let key = repo.signing_key(".ledger/test.key");
    let subject = vec![ledger_core::Subject::git(&sha())];
    let statement = ledger_core::Statement::new(ArtifactKind::Commit, subject, p);
    ledger_core::Envelope::sign(&statement, &key).to_bytes()
}

/// Attempt 2's envelope (validly signed, passing) copied over attempt 1's key.
fn another_attempts_envelope_copied_in_is_refused(backend: Backend) {
    let repo = repo_with(&backend, &[false, true]);
    repo.tamper_object(&commit(1), repo.read_object(&commit(2)));

    verify(&repo, 4, &[&commit(1), "replaced"]);
    assert_audit(&repo, &backend, &[], false, &commit(1));
}

// --- 7. the log's tail truncated -------------------------------------------------------

/// Attempt 1 passes, attempt 2 fails; an auditor saves the checkpoint after attempt
/// 2. The attacker cuts the log back to before attempt 2: its entries, the objects
/// they name and (unless `keep_checkpoint`) the checkpoints past the cut.
fn truncated(backend: &Backend, keep_checkpoint: bool) -> Repo {
    let repo = repo_with(backend, &[true]);
    let before = entries(&repo).len() as u64;
    commit_attempts(&repo, 2, &[false]);
    let out = expect(&repo, &["checkpoint"], 0, &[]);
    std::fs::write(repo.path().join("saved.txt"), &out.stdout).unwrap();
    expect(&repo, &["verify", SHA, "--checkpoint", "saved.txt"], 0, &[]);

    for (key, entry) in entries(&repo).into_iter().filter(|(_, e)| e.seq > before) {
        entry
            .objects
            .iter()
            .for_each(|o| repo.delete_object(&o.key));
        repo.delete_object(&key);
    }
    for key in repo.stored() {
        let Some(name) = key.strip_prefix(tlog::CHECKPOINT_PREFIX) else {
            continue;
        };
        if !keep_checkpoint && name[..16].parse::<u64>().unwrap() > before {
            repo.delete_object(&key);
        }
    }
    assert!(!repo.has_object(&commit(2)));
    repo
}

fn truncating_the_log_tail_is_caught_by_a_saved_checkpoint(backend: Backend) {
    let repo = truncated(&backend, false);
    // Without the auditor's checkpoint the store is self-consistent: that is what
    // saving checkpoints is for.
    verify(&repo, 0, &[]);
    assert_audit(&repo, &backend, &[], true, "verified");

    let saved = ["verify", SHA, "--checkpoint", "saved.txt"];
    expect(&repo, &saved, 4, &["checkpoint 2"]);
    let file = repo.path().join("saved.txt");
    let extra = ["--checkpoint", file.to_str().unwrap()];
    assert_audit(&repo, &backend, &extra, false, "checkpoint");
}

fn truncating_the_log_tail_under_a_stored_checkpoint_is_refused(backend: Backend) {
    let repo = truncated(&backend, true);
    verify(&repo, 4, &["checkpoint 2"]);
    assert_stage_refuses(&repo, "checkpoint 2");
    assert_audit(&repo, &backend, &[], false, "checkpoint");
}

/// `ledger gate` must agree with the stage, which refuses a log cut under its
/// newest stored checkpoint.
fn ledger_gate_refuses_a_log_cut_under_its_checkpoint(backend: Backend) {
    let repo = truncated(&backend, true);
    assert_stage_refuses(&repo, "checkpoint 2");
    expect(&repo, &["gate", "integration", "--sha", SHA], 3, &[]);
}

// --- 8. a crash between a stage's objects and its log entry ---------------------------

fn a_crash_before_the_log_entry_is_reported_then_adopted(backend: Backend) {
    let repo = repo_with(&backend, &[true]);
    let size = entries(&repo).len();
    let out = repo.ledger_env(
        &["stage", "commit", "--sha", SHA, "--", "true"],
        &[("LEDGER_TEST_CRASH_BEFORE_LOG", "1")],
    );
    assert!(!out.status.success(), "{}", text(&out));
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt as _;
        assert_eq!(out.status.signal(), Some(libc::SIGABRT), "{}", text(&out));
    }
    assert!(repo.has_object(&commit(2)), "{}", text(&out));
    assert_eq!(entries(&repo).len(), size, "no entry after the crash");
    verify(&repo, 4, &[&commit(2), "not in the store's log"]);

    commit_attempts(&repo, 3, &[true]);
    verify(&repo, 0, &[]);
    expect(&repo, &["verify", "--all"], 0, &[]);
    let logged: Vec<String> = entries(&repo)
        .into_iter()
        .flat_map(|(_, e)| e.objects.into_iter().map(|o| o.key))
        .collect();
    for key in [
        commit(1),
        commit_log(1),
        commit(2),
        commit_log(2),
        commit(3),
    ] {
        let times = logged.iter().filter(|k| **k == key).count();
        assert_eq!(times, 1, "{key}: {logged:?}");
    }
}

// --- 9. a store from before the log ---------------------------------------------------

/// Deletes the log and its checkpoints, as if the store predated them.
pub(crate) fn delete_log(repo: &Repo) {
    for key in repo.stored() {
        if key.starts_with(tlog::LOG_PREFIX) || key.starts_with(tlog::CHECKPOINT_PREFIX) {
            repo.delete_object(&key);
        }
    }
}

fn genesis_starts_the_log_of_a_store_without_one(backend: Backend) {
    // One attempt: it was gated on an empty log, so it records no log head, as
    // evidence recorded before the log did not.
    let repo = repo_with(&backend, &[true]);
    delete_log(&repo);
    let no_log = ["no log", "checkpoint --genesis"];
    verify(&repo, 4, &no_log);
    expect(&repo, &["verify", "--all"], 4, &no_log);

    let genesis = expect(&repo, &["checkpoint", "--genesis"], 0, &[]);
    assert_eq!(entries(&repo).len(), 1);
    verify(&repo, 0, &[]);
    expect(&repo, &["verify", "--all"], 0, &[]);
    let newest = expect(&repo, &["checkpoint"], 0, &[]);
    assert_eq!(newest.stdout, genesis.stdout);

    let refused = ["already has a log"];
    expect(&repo, &["checkpoint", "--genesis"], 2, &refused);
    assert_eq!(entries(&repo).len(), 1);
}

// --- 10. racing writers ----------------------------------------------------------------

/// Racing processes (the test binary re-run as [`race_helper_process`]), each with a
/// `Store` of its own as separate CI jobs have, each appending one entry per round.
const RACE: ledger_store::testing::Race = ledger_store::testing::Race {
    helper: "history::race_helper_process",
    racers: 6,
    rounds: 50,
    round_ms: 20,
};

/// The key racer `id` names in round `round` (not stored: the log is what is raced).
fn raced_key(id: &str, round: u32) -> String {
    format!("prune/race/{id}/{round:04}.json")
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    rt.unwrap().block_on(f)
}

/// Not a test on its own: the body each racing process runs.
#[test]
fn race_helper_process() {
    block_on(async {
        let Some(racer) = ledger_store::testing::Racer::from_env().await else {
            return;
        };
        for round in 0..RACE.rounds {
            racer.wait_for(round).await;
            let key = raced_key(&racer.id, round);
            let sha256 = ledger_core::Sha256Digest::of(key.as_bytes());
            let word = match racer
                .store
                .log_append(vec![tlog::LoggedObject { key, sha256 }])
                .await
            {
                Ok(head) => format!("seq-{}", head.size),
                Err(e) => format!("error {e}").replace(' ', "_"),
            };
            racer.report(round, &word);
        }
    });
}

fn racing_appenders_leave_one_gapless_chain(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (spec, location) = match &backend {
        Backend::Local => (
            format!("local:{}", dir.path().display()),
            ledger_store::StoreLocation::Local(dir.path().to_path_buf()),
        ),
        Backend::S3(server) => {
            let prefix = ledger_store::testing::S3Server::unique_prefix("history-race");
            (format!("s3:{prefix}"), server.location(&prefix))
        }
    };
    let started = std::time::Instant::now();
    let rounds = RACE.run(&spec);
    let total = RACE.racers as u64 * u64::from(RACE.rounds);

    // Every append got an entry number of its own: 1..=total, none twice.
    let mut seqs: Vec<u64> = rounds
        .iter()
        .flatten()
        .map(
            |(id, word)| match word.strip_prefix("seq-").map(str::parse) {
                Some(Ok(seq)) => seq,
                _ => panic!("racer {id}: {word}"),
            },
        )
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=total).collect::<Vec<_>>(), "{spec}");

    block_on(async {
        let store = ledger_store::Store::open(location).await.unwrap();
        let index = ledger_verify::tlog::LogIndex::read(&store).await.unwrap();
        assert!(index.problems.is_empty(), "{spec}: {:?}", index.problems);
        assert_eq!(index.size(), total, "{spec}");
        // Each appended object is named by exactly one entry.
        let mut named: Vec<String> = Vec::new();
        for key in store.log_keys().await.unwrap() {
            let entry = LogEntry::parse(&store.raw_get(&key).await.unwrap().unwrap());
            named.extend(entry.unwrap().objects.into_iter().map(|o| o.key));
        }
        named.sort();
        let mut want: Vec<String> = (0..RACE.racers)
            .flat_map(|id| (0..RACE.rounds).map(move |r| raced_key(&id.to_string(), r)))
            .collect();
        want.sort();
        assert_eq!(named, want, "{spec}");
        assert!(want.iter().all(|k| index.get(k).is_some()), "{spec}");
    });
    eprintln!("{spec}: {total} appends in {:?}", started.elapsed());
}

on_both_backends!(
    deleting_the_latest_failing_attempt_is_refused,
    deleting_a_middle_attempt_is_refused,
    deleting_a_log_entry_is_refused,
    deleting_a_whole_shas_folder_is_refused,
    renaming_an_attempt_out_of_sight_is_refused,
    a_re_signed_envelope_in_place_of_the_latest_is_refused,
    another_attempts_envelope_copied_in_is_refused,
    truncating_the_log_tail_is_caught_by_a_saved_checkpoint,
    truncating_the_log_tail_under_a_stored_checkpoint_is_refused,
    a_crash_before_the_log_entry_is_reported_then_adopted,
    genesis_starts_the_log_of_a_store_without_one,
    racing_appenders_leave_one_gapless_chain,
    ledger_gate_refuses_a_log_with_a_deleted_entry,
    ledger_gate_refuses_a_log_cut_under_its_checkpoint,
);
