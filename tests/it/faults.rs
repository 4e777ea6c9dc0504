//! Faults with the real components: a full disk under the store, a `ledger` killed in
//! the middle of a stage, and (with the Docker half) the whole pipeline run with a
//! signing key and secret values in its environment, every stored byte and printed
//! line then searched for them. Each fault must leave no half-written evidence, exit
//! as documented, and let a following run recover.
//!
//! The disk-full case mounts a small tmpfs (root only); `.ci/run` sets
//! `LEDGER_REQUIRE_FAULTS=1` so it cannot silently skip there.

use crate::project::{engine, Project};
use crate::{assert_code, text, Repo, SHA};
use std::path::{Path, PathBuf};

/// A tmpfs of `kib` KiB mounted at `dir`, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, kib: u32) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(dir)
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            if std::env::var("LEDGER_REQUIRE_FAULTS").as_deref() == Ok("1") {
                panic!("LEDGER_REQUIRE_FAULTS=1 but a tmpfs cannot be mounted here (root needed)");
            }
            eprintln!("cannot mount a tmpfs (not root?): skipping the disk-full case");
            return None;
        }
        Some(Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// Fills `dir`'s file system: writes one filler file until the disk refuses.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = [0u8; 1024];
    while f.write_all(&chunk).and_then(|_| f.sync_all()).is_ok() {}
    path
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path().strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_full_disk_is_exit_5_with_nothing_half_written_and_the_next_run_recovers() {
    let repo = Repo::new();
    let mount = repo.path().join("evidence-disk");
    let Some(_tmpfs) = Tmpfs::mount(&mount, 256) else {
        return;
    };
    let store = mount.join("store");
    std::fs::create_dir_all(&store).unwrap();
    let store_arg = store.display().to_string();
    let filler = fill(&mount);
    let out = repo.ledger_env(
        &["stage", "commit", "--sha", SHA, "--", "echo", "1 passed"],
        &[("LEDGER_STORE", &store_arg)],
    );
    assert_code(&out, 5);
    assert!(text(&out).contains("No space left"), "{}", text(&out));
    let left: Vec<String> = files_under(&store);
    assert!(
        left.iter().all(|f| f.starts_with("policies/")),
        "half-written evidence left behind: {left:?}"
    );

    // Space again: the same command succeeds as attempt 1, and the chain verifies.
    std::fs::remove_file(filler).unwrap();
    let out = repo.ledger_env(
        &["stage", "commit", "--sha", SHA, "--", "echo", "1 passed"],
        &[("LEDGER_STORE", &store_arg)],
    );
    assert_code(&out, 0);
    assert!(store.join(format!("commit/{SHA}/commit.json")).is_file());
    assert_code(
        &repo.ledger_env(&["verify", SHA], &[("LEDGER_STORE", &store_arg)]),
        0,
    );
}

#[test]
fn a_ledger_killed_mid_stage_leaves_no_evidence_and_the_next_run_recovers() {
    use std::os::unix::process::CommandExt;
    let repo = Repo::new();
    let mut cmd = repo.command(&["stage", "commit", "--sha", SHA, "--", "sleep", "30"]);
    // Its own process group, so the wrapped `sleep` dies with it.
    cmd.process_group(0)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let child = cmd.spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(800));
    let pgid = child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut child = child;
    let _ = child.wait();
    let evidence: Vec<String> = repo
        .stored()
        .into_iter()
        .filter(|k| !k.starts_with("policies/") && !k.starts_with("trust/"))
        .collect();
    assert!(evidence.is_empty(), "a killed stage left {evidence:?}");
    let out = repo.ledger(&["stage", "commit", "--sha", SHA, "--", "true"]);
    assert_code(&out, 0);
    assert!(repo.object(&format!("commit/{SHA}/commit.json")).is_file());
    assert_code(&repo.ledger(&["verify", SHA]), 0);
}

/// A Docker project whose service declares `API_TOKEN` a secret and whose signing
/// key is moved out of the repository; returns the key's PEM, to be passed in
/// `LEDGER_SIGNING_KEY`.
fn project_with_secrets() -> (Project, [String; 2]) {
    let p = Project::new(None);
    p.configure(", API_TOKEN_FROM_ENV = \"unused\"");
    let config = std::fs::read_to_string(p.repo.path().join("ledger.toml")).unwrap();
    let config = config.replace(
        "  health_timeout_seconds = 20",
        "  health_timeout_seconds = 20\n  secrets = [\"API_TOKEN\"]",
    );
    std::fs::write(p.repo.path().join("ledger.toml"), config).unwrap();
    let pems = [".ledger/test.key", ".ledger/release.key"].map(|k| {
        let pem = std::fs::read_to_string(p.repo.path().join(k)).unwrap();
        std::fs::remove_file(p.repo.path().join(k)).unwrap();
        pem
    });
    (p, pems)
}

/// Runs every stage for `s`, then the read commands, all with `env` (and the zone's key
/// from `pems` in LEDGER_SIGNING_KEY), asserting success; returns everything they
/// printed.
fn run_the_whole_pipeline(
    p: &Project,
    s: &str,
    env: &[(&str, &str)],
    pems: &[String; 2],
) -> String {
    let mut printed = String::new();
    let runs: [&[&str]; 7] = [
        &[
            "stage",
            "commit",
            "--sha",
            s,
            "--redact-env",
            "DATABASE_URL",
            "--",
            "sh",
            "-c",
            "echo token=$GITHUB_TOKEN; env",
        ],
        &[
            "stage",
            "integration",
            "--sha",
            s,
            "--redact-env",
            "DATABASE_URL",
            "--",
            "sh",
            "-c",
            "echo db=$DATABASE_URL",
        ],
        &["stage", "build", "--sha", s],
        &["stage", "publish", "--sha", s],
        &["stage", "deploy", "--sha", s],
        &["stage", "smoke", "--sha", s],
        &["stage", "decide", "--sha", s],
    ];
    for (i, args) in runs.into_iter().enumerate() {
        let mut env = env.to_vec();
        env.push(("LEDGER_SIGNING_KEY", pems[usize::from(i >= 2)].as_str()));
        let out = p.repo.ledger_env(args, &env);
        assert_code(&out, 0);
        printed.push_str(&text(&out));
    }
    for args in [&["verify", s][..], &["show", s, "--json"], &["report", s]] {
        let out = p.repo.ledger_env(args, env);
        assert_code(&out, 0);
        printed.push_str(&text(&out));
    }
    printed
}

/// No stored object and nothing printed holds any of `needles`.
fn assert_no_needle_stored_or_printed(p: &Project, needles: &[&str], printed: &str) {
    let stored = p.repo.stored();
    assert!(stored.len() > 10, "{stored:?}");
    for key in &stored {
        let bytes = String::from_utf8_lossy(&p.repo.read_object(key)).into_owned();
        for n in needles {
            assert!(!bytes.contains(n), "secret {n:.6}… is stored in {key}");
        }
    }
    for n in needles {
        assert!(!printed.contains(n), "secret {n:.6}… was printed");
    }
}

#[test]
fn the_whole_pipeline_keeps_the_key_and_secret_values_out_of_store_and_output() {
    let Some(_) = engine() else { return };
    let (p, pems) = project_with_secrets();
    let (token, api, db) = (
        "ghp_tok3n-value-5b1f9c0d7e",
        "api-secret-7a2c44e1b9",
        "postgres://u:db-pass-93kd2@127.0.0.1/x",
    );
    let env = [
        ("GITHUB_TOKEN", token),
        ("API_TOKEN", api),
        ("DATABASE_URL", db),
    ];
    let s = p.sha(72);
    let printed = run_the_whole_pipeline(&p, &s, &env, &pems);
    let mut needles: Vec<&str> = vec![token, api, "db-pass-93kd2"];
    for pem in &pems {
        needles.extend(pem.lines().filter(|l| !l.starts_with("-----")));
    }
    assert_no_needle_stored_or_printed(&p, &needles, &printed);
    // The masked output still says a value was there.
    let log = String::from_utf8_lossy(&p.repo.read_object(&format!("commit/{s}/commit.log")))
        .into_owned();
    assert!(log.contains("token=***"), "{log}");
}
