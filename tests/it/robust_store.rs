//! A store and a checkout tampered with below the file level: symbolic links, FIFOs,
//! devices, stray names and oversize objects. `ledger` never writes or reads through a
//! link below the store's root, never waits on a FIFO, never reads a file past its
//! limit, and reports each as a problem with the documented exit code; the auditor's
//! verifier (`docs/audit/verify_chain.py`) reaches the same verdict. Commands that
//! could hang run under a deadline, so a regression fails instead of blocking.

use crate::{assert_code, text, Repo, SHA};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long a command may take before it is taken to hang (generous: a loaded machine).
const DEADLINE: Duration = Duration::from_secs(120);

/// Runs `cmd`, killing it and failing the test if it outlives [`DEADLINE`].
fn bounded(mut cmd: Command) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start");
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!("{cmd:?} hung; killed after {DEADLINE:?}\n{}", text(&out));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

fn ledger(repo: &Repo, args: &[&str]) -> Output {
    bounded(repo.command(args))
}

/// `ledger verify SHA`, `ledger verify --all` and the auditor's verifier all fail on
/// `repo`, each naming `needle`; returns ledger's output.
#[track_caller]
fn all_verifiers_fail(repo: &Repo, needle: &str) -> String {
    let one = ledger(repo, &["verify", SHA]);
    assert_code(&one, 4);
    assert!(text(&one).contains(needle), "{needle:?} in\n{}", text(&one));
    let all = ledger(repo, &["verify", "--all"]);
    assert_code(&all, 4);
    assert!(text(&all).contains(needle), "{needle:?} in\n{}", text(&all));
    if crate::audit_trust::python_ready() {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/audit/verify_chain.py");
        let mut cmd = Command::new("python3");
        cmd.arg(script)
            .arg(repo.store())
            .arg(repo.path().join("policy/pipeline-policy.json"))
            .arg(SHA);
        let audit = bounded(cmd);
        assert_eq!(
            audit.status.code(),
            Some(1),
            "the auditor's verifier must fail too:\n{}",
            text(&audit)
        );
        assert!(text(&audit).contains("FAIL"), "{}", text(&audit));
    }
    text(&one)
}

/// A repository with passing commit evidence for `SHA` (an envelope and its log).
fn with_commit() -> Repo {
    let repo = Repo::new();
    assert_code(
        &ledger(&repo, &["stage", "commit", "--sha", SHA, "--", "true"]),
        0,
    );
    repo
}

fn mkfifo(path: &Path) {
    std::fs::remove_file(path).ok();
    let made = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(made.success());
}

/// Every file under `dir`, for "nothing was written there".
fn files_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

#[test]
fn a_link_inside_the_store_makes_a_stage_refuse_to_write_through_it() {
    let envelope = format!("commit/{SHA}/commit.json");
    for linked in [
        format!("commit/{SHA}"),
        "policies".to_owned(),
        "log".to_owned(),
        "trust".to_owned(),
        envelope.clone(),
    ] {
        let repo = Repo::new();
        let outside = tempfile::tempdir().unwrap();
        let at = repo.store().join(&linked);
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        // The object file links to a name that does not exist yet, where a write
        // through it would create the file; a folder links to an empty folder.
        let target = if linked == envelope {
            outside.path().join("planted.json")
        } else {
            outside.path().to_path_buf()
        };
        symlink(&target, &at).unwrap();
        let out = ledger(&repo, &["stage", "commit", "--sha", SHA, "--", "true"]);
        // A linked log/ leaves the gate nothing to read: denied. Anything else is
        // refused when the stage would read or write through the link.
        assert_code(&out, if linked == "log" { 3 } else { 4 });
        // The command ran before the write was refused: its result waits in the
        // spool rather than being lost.
        if linked == envelope || linked == format!("commit/{SHA}") {
            let spool = repo.path().join(".ledger/spool");
            let kept = std::fs::read_dir(&spool).map_or(0, |d| d.count());
            assert_eq!(kept, 1, "{linked}: the run is not in the spool");
        }
        assert!(
            text(&out).contains(&format!("{linked} in the store is a symbolic link")),
            "{linked}: the refusal names the link:\n{}",
            text(&out)
        );
        assert_eq!(
            files_in(outside.path()),
            Vec::<PathBuf>::new(),
            "{linked}: nothing may be written outside the store"
        );
    }
}

/// The attempt a stage writes is numbered from the listing its gate made, before
/// the command ran: a link planted at that attempt while the command runs is
/// refused all the same when the stage writes, and nothing lands outside the store.
#[test]
fn a_link_planted_while_the_command_runs_is_refused_at_the_write() {
    let repo = Repo::new();
    let outside = tempfile::tempdir().unwrap();
    let wait = "touch started; while [ ! -e go ]; do sleep 0.05; done";
    let mut cmd = repo.command(&["stage", "commit", "--sha", SHA, "--", "sh", "-c", wait]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let deadline = Instant::now() + DEADLINE;
    while !repo.path().join("started").exists() {
        assert!(Instant::now() < deadline, "the command never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let linked = format!("commit/{SHA}/commit.log");
    let at = repo.store().join(&linked);
    std::fs::create_dir_all(at.parent().unwrap()).unwrap();
    symlink(outside.path().join("planted.log"), &at).unwrap();
    std::fs::write(repo.path().join("go"), "").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_code(&out, 4);
    assert!(
        text(&out).contains(&format!("{linked} in the store is a symbolic link")),
        "{}",
        text(&out)
    );
    assert_eq!(files_in(outside.path()), Vec::<PathBuf>::new());
}

#[test]
fn the_store_folder_itself_may_be_a_link() {
    let repo = Repo::new();
    let elsewhere = tempfile::tempdir().unwrap();
    symlink(elsewhere.path(), repo.store()).unwrap();
    assert_code(
        &ledger(&repo, &["stage", "commit", "--sha", SHA, "--", "true"]),
        0,
    );
    assert!(elsewhere
        .path()
        .join(format!("commit/{SHA}/commit.json"))
        .is_file());
    assert_code(&ledger(&repo, &["verify", SHA]), 0);
}

#[test]
fn a_link_to_a_copy_of_real_evidence_is_not_read_through() {
    let repo = with_commit();
    let outside = tempfile::tempdir().unwrap();
    let key = format!("commit/{SHA}/commit.json");
    let copy = outside.path().join("commit.json");
    std::fs::copy(repo.object(&key), &copy).unwrap();
    std::fs::remove_file(repo.object(&key)).unwrap();
    symlink(&copy, repo.object(&key)).unwrap();
    all_verifiers_fail(&repo, "symbolic link");
    let gate = ledger(&repo, &["gate", "integration", "--sha", SHA]);
    assert_code(&gate, 3);
    assert!(text(&gate).contains("symbolic link"), "{}", text(&gate));
    // A folder moved out of the store and linked back in: the SHA's, the stored
    // policies, the log; and moved elsewhere inside the store, linked by a relative
    // path that never leaves it.
    for folder in [format!("commit/{SHA}"), "policies".into(), "log".into()] {
        for inside in [false, true] {
            let repo = with_commit();
            let outside = tempfile::tempdir().unwrap();
            let at = repo.store().join(&folder);
            let moved = match inside {
                false => outside.path().join("moved"),
                true => repo.store().join("moved"),
            };
            std::fs::rename(&at, &moved).unwrap();
            let up = "../".repeat(folder.matches('/').count());
            match inside {
                false => symlink(&moved, &at).unwrap(),
                true => symlink(format!("{up}moved"), &at).unwrap(),
            }
            assert!(at.join(".").is_dir(), "the link leads to the folder");
            all_verifiers_fail(&repo, &format!("{folder} in the store is a symbolic link"));
        }
    }
}

#[test]
fn a_fifo_in_place_of_a_log_or_an_envelope_never_hangs_verify_or_a_gate() {
    for name in ["commit.log", "commit.json"] {
        let repo = with_commit();
        mkfifo(&repo.object(&format!("commit/{SHA}/{name}")));
        all_verifiers_fail(&repo, "FIFO");
        let gate = ledger(&repo, &["gate", "integration", "--sha", SHA]);
        assert_code(&gate, 3);
        assert!(text(&gate).contains("FIFO"), "{}", text(&gate));
    }
}

#[test]
fn an_oversize_envelope_is_a_gate_denial_and_a_verification_failure() {
    let repo = with_commit();
    let key = format!("commit/{SHA}/commit.json");
    std::fs::write(
        repo.object(&key),
        vec![b' '; ledger_core::MAX_JSON_BYTES + 1],
    )
    .unwrap();
    let gate = ledger(&repo, &["gate", "integration", "--sha", SHA]);
    assert_code(&gate, 3);
    assert!(text(&gate).contains("byte limit"), "{}", text(&gate));
    all_verifiers_fail(&repo, "byte limit");
}

#[test]
fn a_stray_name_in_a_sha_folder_is_a_problem_of_the_store() {
    let repo = with_commit();
    std::fs::write(repo.object(&format!("commit/{SHA}/FOO.json")), b"{}").unwrap();
    all_verifiers_fail(&repo, "FOO.json");
}

#[test]
fn a_symlink_loop_in_the_store_is_a_problem_not_a_failing_store() {
    let repo = with_commit();
    let loop_at = repo.object(&format!("commit/{SHA}/loop"));
    symlink(&loop_at, &loop_at).unwrap();
    all_verifiers_fail(&repo, "loop");
    // The envelope itself as a loop.
    let repo = with_commit();
    let envelope = repo.object(&format!("commit/{SHA}/commit.json"));
    std::fs::remove_file(&envelope).unwrap();
    symlink(&envelope, &envelope).unwrap();
    all_verifiers_fail(&repo, "symbolic link");
    let gate = ledger(&repo, &["gate", "integration", "--sha", SHA]);
    assert_code(&gate, 3);
    assert!(text(&gate).contains("symbolic link"), "{}", text(&gate));
}

#[test]
fn devices_as_policy_key_or_checkpoint_are_refused_at_once() {
    let repo = Repo::new();
    for (args, env) in [
        (vec!["--policy", "/dev/zero", "verify", SHA], None),
        (
            vec![
                "stage",
                "commit",
                "--sha",
                SHA,
                "--key",
                "/dev/zero",
                "--",
                "true",
            ],
            None,
        ),
        (
            vec!["stage", "commit", "--sha", SHA, "--", "true"],
            Some("/dev/zero"),
        ),
        (vec!["verify", SHA, "--checkpoint", "/dev/zero"], None),
    ] {
        let mut cmd = repo.command(&args);
        if let Some(value) = env {
            cmd.env("LEDGER_SIGNING_KEY", value);
        }
        let out = bounded(cmd);
        assert_code(&out, 2);
        assert!(
            text(&out).contains("/dev/zero") || text(&out).contains("LEDGER_SIGNING_KEY"),
            "{args:?}: the refusal names what was given:\n{}",
            text(&out)
        );
    }
}

#[test]
fn init_refuses_to_write_through_a_ledger_or_gitignore_link() {
    for name in [".ledger", ".gitignore"] {
        let repo = Repo::bare();
        let outside = tempfile::tempdir().unwrap();
        let target = if name == ".ledger" {
            outside.path().to_path_buf()
        } else {
            let file = outside.path().join("ignored");
            std::fs::write(&file, "target/\n").unwrap();
            file
        };
        symlink(&target, repo.path().join(name)).unwrap();
        let out = ledger(&repo, &["init"]);
        assert_code(&out, 2);
        assert!(
            text(&out).contains(name) && text(&out).contains("symbolic link"),
            "{}",
            text(&out)
        );
        let left: Vec<PathBuf> = files_in(outside.path());
        if name == ".ledger" {
            assert!(left.is_empty(), "no key may land outside: {left:?}");
        } else {
            assert_eq!(
                std::fs::read_to_string(&target).unwrap(),
                "target/\n",
                "the link's target is untouched"
            );
        }
        assert!(
            !repo.path().join("policy").exists(),
            "nothing is written when init refuses"
        );
    }
}
