//! A finished wrapped command's result is never lost, and what is kept of its output
//! is bounded: many parallel runs of one SHA each get their own attempt; a store that
//! is down when the command finishes leaves the run in `.ledger/spool/`, recorded by
//! `--resume` or by the next run; an output larger than ledger keeps is stored as head
//! and tail, verifies, and passes the next gate, in bounded memory.

use crate::{assert_code, text, Repo, SHA};
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// A stage takes its attempt number from the listing its gate made (no listing again
/// after the work), so that listing can be stale: a run that took the attempt while
/// this one's command ran moves this one on to the next, and both are recorded.
#[test]
fn a_run_whose_attempt_was_taken_during_its_work_records_the_next() {
    let repo = Repo::new();
    let wait = "touch started; while [ ! -e go ]; do sleep 0.05; done; echo slow run";
    let mut slow = repo.command(&["stage", "commit", "--sha", SHA, "--", "sh", "-c", wait]);
    slow.stdout(Stdio::piped()).stderr(Stdio::piped());
    let slow = slow.spawn().unwrap();
    let started = repo.path().join("started");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !started.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the slow run never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let fast = repo.ledger(&["stage", "commit", "--sha", SHA, "--", "echo", "fast run"]);
    assert_code(&fast, 0);
    std::fs::write(repo.path().join("go"), "").unwrap();
    assert_code(&slow.wait_with_output().unwrap(), 0);
    let output = |key: &str| String::from_utf8(repo.read_object(key)).unwrap();
    assert_eq!(
        output(&format!("commit/{SHA}/commit.log")).trim(),
        "fast run"
    );
    assert_eq!(
        output(&format!("commit/{SHA}/commit.attempt-2.log")).trim(),
        "slow run"
    );
    assert_eq!(
        repo.predicate(&format!("commit/{SHA}/commit.attempt-2.json"))["attempt"],
        2
    );
    assert_code(&repo.ledger(&["verify", SHA]), 0);
}

#[test]
fn parallel_runs_of_one_sha_each_record_their_own_attempt() {
    let repo = Repo::new();
    let runs: i32 = 24;
    let children: Vec<_> = (0..runs)
        .map(|i: i32| {
            let script = format!("echo parallel run {i}; exit {}", i % 2);
            let mut cmd =
                repo.command(&["stage", "commit", "--sha", SHA, "--", "sh", "-c", &script]);
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    for (i, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        assert_code(&out, i32::from(i % 2 == 1));
    }
    let mut seen = Vec::new();
    for attempt in 1..=runs {
        let (key, log) = match attempt {
            1 => (
                format!("commit/{SHA}/commit.json"),
                format!("commit/{SHA}/commit.log"),
            ),
            n => (
                format!("commit/{SHA}/commit.attempt-{n}.json"),
                format!("commit/{SHA}/commit.attempt-{n}.log"),
            ),
        };
        assert!(repo.has_object(&key), "{key} missing");
        let printed = String::from_utf8(repo.read_object(&log)).unwrap();
        assert_eq!(repo.predicate(&key)["attempt"], attempt);
        seen.push(printed.trim().to_owned());
    }
    assert!(!repo.has_object(&format!("commit/{SHA}/commit.attempt-{}.json", runs + 1)));
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 24, "one attempt per run: {seen:?}");
    assert_code(&repo.ledger(&["verify", SHA]), 0);
}

/// A small tmpfs under the repository holding the store; unmounted on drop.
struct Disk(PathBuf);

impl Drop for Disk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// A store on a 2 MiB tmpfs that the wrapped command itself fills up, so the store
/// is down exactly when the command finishes. `None` where no tmpfs can be mounted
/// (not root), except under `LEDGER_REQUIRE_FAULTS=1`.
fn store_that_fails_after_the_command(repo: &Repo) -> Option<(Disk, String, String)> {
    let mount = repo.path().join("evidence-disk");
    std::fs::create_dir_all(&mount).unwrap();
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2048k", "tmpfs"])
        .arg(&mount)
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("LEDGER_REQUIRE_FAULTS").as_deref() != Ok("1"),
            "LEDGER_REQUIRE_FAULTS=1 but a tmpfs cannot be mounted here (root needed)"
        );
        eprintln!("cannot mount a tmpfs (not root?): skipping");
        return None;
    }
    let store = mount.join("store");
    std::fs::create_dir_all(&store).unwrap();
    let fill = format!(
        "echo 'test result: ok. 3 passed; 0 failed; 0 ignored'; \
         dd if=/dev/zero of={} bs=4k 2>/dev/null; exit 0",
        mount.join("filler").display()
    );
    Some((Disk(mount), store.display().to_string(), fill))
}

fn spool_entries(repo: &Repo) -> Vec<PathBuf> {
    std::fs::read_dir(repo.path().join(".ledger/spool"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// Runs the filling command against the failing store: exit 5, the run in the
/// spool, the hint printed. Returns the spooled record.
fn run_into_the_spool(repo: &Repo, store: &str, fill: &str) -> serde_json::Value {
    let out = repo.ledger_env(
        &["stage", "commit", "--sha", SHA, "--", "sh", "-c", fill],
        &[("LEDGER_STORE", store)],
    );
    assert_code(&out, 5);
    let printed = text(&out);
    assert!(printed.contains(".ledger/spool"), "{printed}");
    assert!(
        printed.contains(&format!("ledger stage commit --sha {SHA} --resume")),
        "{printed}"
    );
    let entries = spool_entries(repo);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(entries[0].join("output.log").is_file());
    let record = std::fs::read(entries[0].join("run.json")).unwrap();
    serde_json::from_slice(&record).unwrap()
}

fn free_the_disk(store: &str) {
    let filler = Path::new(store).parent().unwrap().join("filler");
    std::fs::remove_file(filler).unwrap();
}

#[test]
fn a_run_whose_store_is_down_is_spooled_and_resume_records_it_as_it_ran() {
    let repo = Repo::new();
    let Some((_disk, store, fill)) = store_that_fails_after_the_command(&repo) else {
        return;
    };
    let spooled = run_into_the_spool(&repo, &store, &fill);
    let entry = spool_entries(&repo).remove(0);
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&entry), 0o700);
        assert_eq!(mode(&entry.join("run.json")), 0o600);
        assert_eq!(mode(&entry.join("output.log")), 0o600);
        assert_eq!(mode(&entry.join("run.sig.json")), 0o600);
    }
    free_the_disk(&store);
    let env = [("LEDGER_STORE", store.as_str())];
    // An altered log is refused, and the run stays in the spool.
    let log = entry.join("output.log");
    let original = std::fs::read(&log).unwrap();
    std::fs::write(&log, b"test result: ok. 9 passed; 0 failed; 0 ignored\n").unwrap();
    let out = repo.ledger_env(&["stage", "commit", "--sha", SHA, "--resume"], &env);
    assert_code(&out, 4);
    assert!(text(&out).contains("does not hash"), "{}", text(&out));
    assert_eq!(spool_entries(&repo), vec![entry.clone()]);
    std::fs::write(&log, original).unwrap();

    let out = repo.ledger_env(&["stage", "commit", "--sha", SHA, "--resume"], &env);
    assert_code(&out, 0);
    assert!(
        text(&out).contains("recorded the spooled run"),
        "{}",
        text(&out)
    );
    assert!(
        spool_entries(&repo).is_empty(),
        "{:?}",
        spool_entries(&repo)
    );
    let key = format!("commit/{SHA}/commit.json");
    let recorded = read_predicate(&store, &key);
    let original = &spooled["predicate"];
    for field in ["started_at", "finished_at", "result"] {
        assert_eq!(recorded[field], original[field], "{field}");
    }
    assert_eq!(recorded["command"], original["command"]);
    assert_eq!(recorded["tests"]["passed"], 3);
    assert_code(&repo.ledger_env(&["verify", SHA], &env), 0);
    // Nothing left to resume: bad input, nothing written.
    let again = repo.ledger_env(&["stage", "commit", "--sha", SHA, "--resume"], &env);
    assert_code(&again, 2);
}

#[test]
fn the_next_run_records_the_spooled_one_first() {
    let repo = Repo::new();
    let Some((_disk, store, fill)) = store_that_fails_after_the_command(&repo) else {
        return;
    };
    let spooled = run_into_the_spool(&repo, &store, &fill);
    free_the_disk(&store);
    let env = [("LEDGER_STORE", store.as_str())];
    let out = repo.ledger_env(&["stage", "commit", "--sha", SHA, "--", "true"], &env);
    assert_code(&out, 0);
    assert!(
        text(&out).contains("recorded the spooled run"),
        "{}",
        text(&out)
    );
    assert!(spool_entries(&repo).is_empty());
    let first = read_predicate(&store, &format!("commit/{SHA}/commit.json"));
    assert_eq!(first["started_at"], spooled["predicate"]["started_at"]);
    let second = read_predicate(&store, &format!("commit/{SHA}/commit.attempt-2.json"));
    assert_eq!(second["command"]["argv"], serde_json::json!(["true"]));
    assert_code(&repo.ledger_env(&["verify", SHA], &env), 0);
}

fn read_predicate(store: &str, key: &str) -> serde_json::Value {
    use base64::Engine as _;
    let env: serde_json::Value =
        serde_json::from_slice(&std::fs::read(Path::new(store).join(key)).unwrap()).unwrap();
    let payload = base64::engine::general_purpose::STANDARD
        .decode(env["payload"].as_str().unwrap())
        .unwrap();
    let st: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    st["predicate"].clone()
}

#[test]
fn a_huge_output_is_kept_as_head_and_tail_verifies_and_passes_the_gate_in_bounded_memory() {
    let time = Path::new("/usr/bin/time");
    assert!(
        time.is_file(),
        "GNU time (/usr/bin/time) is needed to measure peak memory"
    );
    let repo = Repo::new();
    // 270 MB in 100-byte lines, the test summary in the middle of it.
    let line = "x".repeat(99);
    let script = format!(
        "echo first line; yes {line} | head -c 135000000; \
         echo 'test result: ok. 7 passed; 0 failed; 2 ignored'; \
         yes {line} | head -c 135000000; echo last line"
    );
    let summary = "test result: ok. 7 passed; 0 failed; 2 ignored\n".len() as u64;
    let total = 11 + 135_000_000 + summary + 135_000_000 + 10;
    let ledger = repo.command(&["stage", "commit", "--sha", SHA, "--", "sh", "-c", &script]);
    let rss_file = repo.path().join("max-rss-kib");
    let mut cmd = std::process::Command::new(time);
    cmd.arg("-f").arg("%M").arg("-o").arg(&rss_file);
    cmd.arg(ledger.get_program()).args(ledger.get_args());
    cmd.current_dir(repo.path());
    for (k, v) in ledger.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let out = cmd.stdout(Stdio::null()).output().unwrap();
    assert_code(&out, 0);
    let kib: u64 = std::fs::read_to_string(&rss_file)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    eprintln!("ledger peaked at {kib} KiB");
    assert!(
        kib < 150 * 1000,
        "ledger peaked at {kib} KiB for a 270 MB output"
    );

    let key = format!("commit/{SHA}/commit.json");
    let p = repo.predicate(&key);
    assert_eq!(p["output"]["truncated"], true);
    assert_eq!(p["output"]["total_bytes"], total);
    assert_eq!(
        p["tests"],
        serde_json::json!({"passed": 7, "failed": 0, "ignored": 2})
    );
    let log = repo.read_object(&format!("commit/{SHA}/commit.log"));
    assert_eq!(p["output"]["bytes"], log.len() as u64);
    assert!(log.len() <= 32 * 1024 * 1024, "{}", log.len());
    assert!(log.starts_with(b"first line\n"));
    assert!(log.ends_with(b"last line\n"));
    let marker = b"[ledger: output truncated: ";
    assert!(log.windows(marker.len()).any(|w| w == marker));
    assert_code(&repo.ledger(&["verify", SHA]), 0);
    assert_code(&repo.ledger(&["gate", "integration", "--sha", SHA]), 0);
    if crate::audit_trust::python_ready() {
        let audit = crate::audit_trust::verify_chain(&repo);
        assert_eq!(audit.status.code(), Some(0), "{}", text(&audit));
    }
}

/// A spooled run someone else planted: a passing record and a log that hashes to
/// it, for the SHA under test, in `.ledger/spool/`. Without a seal, with a seal by a
/// key other than the stage's (a stranger's, another zone's), or with the stage's own
/// seal over a failing run whose `run.json` was then edited to pass, it is refused
/// (exit 4), left where it is, and never signed into the store; the same run sealed
/// by the stage's key is recorded.
#[test]
fn a_planted_spool_entry_is_never_recorded() {
    use ledger_core::signed::SignedDocument;
    use ledger_core::SigningKey;
    let repo = Repo::new();
    let log = b"212 passed, 0 failed\n";
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../schemas/fixtures/commit/valid/first-attempt.json");
    let mut predicate: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture).unwrap()).unwrap();
    predicate["sha"] = SHA.into();
    predicate["output"]["sha256"] = ledger_core::Sha256Digest::of(log).to_hex().into();
    predicate["output"]["bytes"] = log.len().into();
    let record = |result: &str| {
        let mut predicate = predicate.clone();
        predicate["result"] = result.into();
        let run = serde_json::json!({"stage": "commit", "sha": SHA, "predicate": predicate});
        serde_json::to_vec(&run).unwrap()
    };
    let commit_key = repo.signing_key(".ledger/test.key");
    let release_key = repo.signing_key(".ledger/release.key");
    let entry = repo
        .path()
        .join(format!(".ledger/spool/commit-{SHA}-00000000000000000001-1"));
    // `sealed` is what the seal covers, `stored` what run.json holds.
    let plant = |sealed: &[u8], stored: &[u8], seal: Option<&SigningKey>| {
        std::fs::create_dir_all(&entry).unwrap();
        std::fs::write(entry.join("run.json"), stored).unwrap();
        std::fs::write(entry.join("output.log"), log).unwrap();
        if let Some(key) = seal {
            let mut doc = SignedDocument::new(ledger_pipeline::spool::SPOOL_PAYLOAD_TYPE, sealed);
            doc.sign(key);
            std::fs::write(entry.join("run.sig.json"), doc.to_bytes()).unwrap();
        }
    };
    let attacker = SigningKey::generate();
    let (fail, pass) = (record("fail"), record("pass"));
    // No seal; a seal by a key nobody trusts; by the release zone's key, which does
    // not sign commit; and a true seal over a failing run whose run.json then says
    // it passed.
    let cases: [(&[u8], &[u8], Option<&SigningKey>); 4] = [
        (&pass, &pass, None),
        (&pass, &pass, Some(&attacker)),
        (&pass, &pass, Some(&release_key)),
        (&fail, &pass, Some(&commit_key)),
    ];
    for (sealed, stored, seal) in cases {
        plant(sealed, stored, seal);
        for args in [
            &["stage", "commit", "--sha", SHA, "--resume"][..],
            &["stage", "commit", "--sha", SHA, "--", "true"],
        ] {
            let out = repo.command(args).output().unwrap();
            assert_code(&out, 4);
            assert!(text(&out).contains("run.sig.json"), "{}", text(&out));
            assert_eq!(spool_entries(&repo), vec![entry.clone()], "the entry stays");
        }
        assert!(
            repo.stored().iter().all(|k| !k.starts_with("commit/")),
            "a planted run reached the store: {:?}",
            repo.stored()
        );
        std::fs::remove_dir_all(&entry).unwrap();
    }
    // The same run sealed by the stage's own key is recorded: the refusals above
    // were about their seals.
    plant(&pass, &pass, Some(&commit_key));
    let out = repo
        .command(&["stage", "commit", "--sha", SHA, "--resume"])
        .output()
        .unwrap();
    assert_code(&out, 0);
    assert!(repo.has_object(&format!("commit/{SHA}/commit.json")));
}
