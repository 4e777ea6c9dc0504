//! The exact text `ledger` prints, pinned: every `--help`, and the read commands
//! (`verify`, `verify --all`, `show`, `log`, `doctor`, `status`, `prune`, `gate`) on
//! small stores, in text and `--json`. Each snapshot is one run's whole transcript:
//! its exit code, all of stdout and all of stderr. The library crates can be
//! restructured freely; if any of these change, the CLI's output changed.
//!
//! Only what differs from run to run is replaced, never structure, labels or
//! messages: first literally (the repository's temp path, the repository's key id
//! and its short form, a dead port), then by the insta filters of [`filters`]
//! (times, durations, digests, the runner's host, probe keys).

use crate::{assert_code, Repo, SHA};
use ledger_core::ArtifactKind;
use std::process::Output;

/// A second commit, for the stores with more than one SHA.
const OTHER: &str = "fedcba9876543210fedcba9876543210fedcba98";

/// Regex filters for what varies between runs, applied after the literal
/// replacements of [`Snap::transcript`], in order.
fn filters() -> Vec<(&'static str, &'static str)> {
    vec![
        // RFC 3339 times, with or without fractions, Z or an offset.
        (
            r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})",
            "[TIME]",
        ),
        // sha256 digests (of policies, logs, payloads): the key in them makes them vary.
        (r"sha256:[0-9a-f]{64}", "sha256:[SHA256]"),
        (r"\b[0-9a-f]{64}\b", "[HEX64]"),
        // The short digest `show` prints of each input.
        (r"sha256:[0-9a-f]{16}\b", "sha256:[SHA256-16]"),
        // The host a stage ran on, in `show`'s runner line.
        (r"(?m)^(    runner +)\S+ \(", "$1[HOST] ("),
        // Durations: "(12 ms)" in text, "duration_ms": 12 in JSON.
        (r"\b\d+ ms\b", "[N] ms"),
        (r#""(\w+_ms)": \d+"#, r#""$1": [N]"#),
        // The write-once probe's key: a nanosecond time and a process id.
        (r"probes/\d+-\d+\.probe", "probes/[NANOS]-[PID].probe"),
        // The policy's short digest in doctor's policy line (the key in it varies).
        (r"digest [0-9a-f]{12}\b", "digest [HEX12]"),
    ]
}

/// A repository whose runs are snapshotted.
struct Snap {
    repo: Repo,
    /// Literal replacements, longest first.
    literals: Vec<(String, String)>,
}

impl Snap {
    /// A repository after `ledger init`.
    fn new() -> Snap {
        Snap::from(Repo::new())
    }

    fn from(repo: Repo) -> Snap {
        let mut snap = Snap {
            literals: Vec::new(),
            repo,
        };
        snap.literal(snap.repo.path().display().to_string(), "[REPO]");
        if snap.repo.path().join(".ledger/test.key").exists() {
            snap.learn_keys();
        }
        snap
    }

    /// Replaces the repository's key ids, and their short forms, from now on.
    fn learn_keys(&mut self) {
        for (file, name) in [
            ("test", "TESTKEY"),
            ("release", "RELEASEKEY"),
            ("policy-owner", "OWNERKEY"),
        ] {
            let id = self.repo.key_id(&format!(".ledger/{file}.pub"));
            self.literal(&id[..12], &format!("[{name}12]"));
            self.literal(id, &format!("[{name}]"));
        }
    }

    /// Replaces `from` literally with `to` in this repository's transcripts.
    fn literal(&mut self, from: impl Into<String>, to: &str) {
        self.literals.push((from.into(), to.to_owned()));
        self.literals
            .sort_by_key(|(from, _)| std::cmp::Reverse(from.len()));
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_env(args, &[])
    }

    /// Runs `ledger` as [`Repo::command`] does, without the caller's `RUST_LOG` (its
    /// log lines would land in the snapshotted stderr), with `env` added.
    fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.repo.command(args);
        cmd.env_remove("RUST_LOG");
        cmd.envs(env.iter().copied());
        cmd.output().expect("run ledger")
    }

    /// The run's exit code, stdout and stderr as one text, literals replaced.
    fn transcript(&self, out: &Output) -> String {
        let mut s = format!(
            "exit: {}\n--- stdout\n{}--- stderr\n{}",
            out.status
                .code()
                .map_or_else(|| "signal".to_owned(), |c| c.to_string()),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        for (from, to) in &self.literals {
            s = s.replace(from.as_str(), to);
        }
        s
    }

    /// Runs `args`, asserts the exit code and snapshots the transcript as `name`.
    #[track_caller]
    fn snap(&self, name: &str, args: &[&str], code: i32) {
        let out = self.run(args);
        self.snap_output(name, &out, code);
    }

    #[track_caller]
    fn snap_output(&self, name: &str, out: &Output, code: i32) {
        assert_code(out, code);
        let text = self.transcript(out);
        insta::with_settings!({
            filters => filters(),
            description => format!("ledger {}", name.replace('_', " ")),
            omit_expression => true,
        }, {
            insta::assert_snapshot!(name, text);
        });
    }

    /// `ledger stage commit` for `sha`, wrapping `echo 2 passed, 0 failed`.
    fn commit(&self, sha: &str) -> Output {
        let out = self.run(&[
            "stage",
            "commit",
            "--sha",
            sha,
            "--",
            "echo",
            "2 passed, 0 failed",
        ]);
        assert_code(&out, 0);
        out
    }
}

// --- help ----------------------------------------------------------------------------

/// Every subcommand of `args.rs`, with the nested `keys` ones.
const SUBCOMMANDS: &[&[&str]] = &[
    &["init"],
    &["keys"],
    &["keys", "generate"],
    &["keys", "id"],
    &["policy"],
    &["policy", "show"],
    &["policy", "sign"],
    &["policy", "rotate"],
    &["stage"],
    &["verify"],
    &["checkpoint"],
    &["show"],
    &["log"],
    &["report"],
    &["doctor"],
    &["gate"],
    &["replay"],
    &["rollback"],
    &["promote"],
    &["status"],
    &["prune"],
    &["attest"],
];

/// `--help` output, at a fixed width: clap wraps to the terminal, else `COLUMNS`,
/// capped at 100 columns; a test's stdout is a pipe, so `COLUMNS=100` is what any
/// non-terminal reader gets and a `COLUMNS` in the test's environment cannot leak in.
fn help(snap: &Snap, args: &[&str]) -> Output {
    let mut all = args.to_vec();
    all.push("--help");
    snap.run_env(&all, &[("COLUMNS", "100")])
}

#[test]
fn help_of_ledger_and_of_every_subcommand() {
    let snap = Snap::from(Repo::bare());
    snap.snap_output("help", &help(&snap, &[]), 0);
    for sub in SUBCOMMANDS {
        let name = format!("help_{}", sub.join("_"));
        snap.snap_output(&name, &help(&snap, sub), 0);
    }
    // Every subcommand clap knows is in the list above.
    let out = help(&snap, &[]);
    let listed: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        // A wrapped description continues on a line indented further.
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .filter(|c| c != "help")
        .collect();
    let tested: Vec<String> = SUBCOMMANDS
        .iter()
        .filter(|s| s.len() == 1)
        .map(|s| s[0].to_owned())
        .collect();
    assert_eq!(listed, tested);
}

// --- init, stage, verify --------------------------------------------------------------

#[test]
fn init_and_a_passing_commit_stage() {
    let mut snap = Snap::from(Repo::bare());
    let out = snap.run(&["init"]);
    snap.learn_keys();
    snap.snap_output("init", &out, 0);
    let out = snap.commit(SHA);
    snap.snap_output("stage_commit", &out, 0);
    let out = snap.run(&["stage", "integration", "--sha", SHA, "--", "false"]);
    snap.snap_output("stage_integration_failing", &out, 1);
}

/// A store with SHA's commit (pass) and integration (fail), and OTHER's commit.
fn two_chains() -> Snap {
    let snap = Snap::new();
    snap.commit(SHA);
    assert_code(
        &snap.run(&["stage", "integration", "--sha", SHA, "--", "false"]),
        1,
    );
    snap.commit(OTHER);
    snap
}

#[test]
fn verify_one_sha_then_tampered() {
    let snap = two_chains();
    snap.snap("verify_sha", &["verify", SHA], 0);
    snap.snap("verify_sha_json", &["verify", SHA, "--json"], 0);
    snap.snap("verify_unknown_sha", &["verify", &"a".repeat(40)], 4);
    snap.snap("verify_bad_sha", &["verify", "abc"], 2);

    // The commit stage's captured output altered, and a foreign object beside it.
    snap.repo.tamper_object(
        &format!("commit/{SHA}/commit.log"),
        b"0 passed, 2 failed\n".to_vec(),
    );
    snap.repo
        .tamper_object(&format!("commit/{SHA}/notes.txt"), b"hello".to_vec());
    snap.snap("verify_sha_tampered", &["verify", SHA], 4);
    snap.snap("verify_sha_tampered_json", &["verify", SHA, "--json"], 4);
}

#[test]
fn verify_all_then_tampered() {
    let snap = two_chains();
    // --jobs 1 and 3 print the same; the default (all cores) is the one snapshotted.
    snap.snap("verify_all", &["verify", "--all"], 0);
    snap.snap("verify_all_json", &["verify", "--all", "--json"], 0);

    // Another SHA's integration envelope copied into place, and a stray object.
    snap.repo.tamper_object(
        &format!("integration/{OTHER}/integration.json"),
        snap.repo
            .read_object(&format!("integration/{SHA}/integration.json")),
    );
    snap.repo
        .tamper_object("build/readme.txt", b"hello".to_vec());
    snap.snap("verify_all_tampered", &["verify", "--all"], 4);
    snap.snap(
        "verify_all_tampered_json",
        &["verify", "--all", "--json"],
        4,
    );
}

// --- show, log, gate ------------------------------------------------------------------

#[test]
fn show_log_and_gate() {
    let snap = two_chains();
    snap.snap("show_sha", &["show", SHA], 0);
    snap.snap("log", &["log"], 0);
    snap.snap("log_json", &["log", "--json"], 0);
    snap.snap("gate_decide", &["gate", "decide", "--sha", SHA], 3);
    snap.snap(
        "gate_integration_json",
        &["gate", "integration", "--sha", OTHER, "--json"],
        0,
    );
}

// --- doctor ----------------------------------------------------------------------------

/// doctor on a repository without `ledger.toml`: the Docker engine and registry are
/// skipped (never probed), so the output is the same on every machine; the key id,
/// policy digest, probe key and clock skew are filtered.
#[test]
fn doctor_without_ledger_toml() {
    let snap = Snap::new();
    snap.snap("doctor", &["doctor"], 0);
    snap.snap("doctor_json", &["doctor", "--json"], 0);
}

/// doctor with `ledger.toml` naming a registry on a dead loopback port and an engine
/// socket that does not exist: both fail the same way on every machine, whether or
/// not it runs Docker (the port is replaced literally).
#[test]
fn doctor_with_engine_and_registry_unreachable() {
    let mut snap = Snap::new();
    let port = crate::dead_port();
    snap.literal(format!("127.0.0.1:{port}"), "127.0.0.1:[PORT]");
    std::fs::write(
        snap.repo.path().join("ledger.toml"),
        config(&format!("registry = \"127.0.0.1:{port}\"\n")),
    )
    .unwrap();
    let env = [("DOCKER_HOST", "unix:///nonexistent/docker.sock")];
    let out = snap.run_env(&["doctor"], &env);
    snap.snap_output("doctor_unreachable", &out, 5);
    let out = snap.run_env(&["doctor", "--json"], &env);
    snap.snap_output("doctor_unreachable_json", &out, 5);
}

// --- status, prune ----------------------------------------------------------------------

/// A `ledger.toml` with one image and two environments; `registry` is the line given.
fn config(registry: &str) -> String {
    format!(
        r#"repository = "cli-output-snapshots"
source = "https://example.invalid/cli-output"
{registry}
[[images]]
name = "api"
context = "."

[[environments]]
name = "canary"

[[environments]]
name = "production"
"#
    )
}

/// status reads evidence only (no engine without --drift): with commit evidence
/// only, both configured environments run nothing.
#[test]
fn status_with_commit_evidence_only() {
    let snap = Snap::new();
    snap.commit(SHA);
    snap.snap("status_no_config", &["status"], 0);
    std::fs::write(snap.repo.path().join("ledger.toml"), config("")).unwrap();
    snap.snap("status", &["status"], 0);
    snap.snap("status_json", &["status", "--json"], 0);
}

/// prune's refusals come before any engine is needed: without ledger.toml (2) and
/// with an engine socket that does not exist (5).
#[test]
fn prune_refusals() {
    let snap = Snap::new();
    snap.commit(SHA);
    snap.snap("prune_no_config", &["prune", "--json"], 2);
    std::fs::write(snap.repo.path().join("ledger.toml"), config("")).unwrap();
    let out = snap.run_env(
        &["prune", "--json"],
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
    );
    snap.snap_output("prune_engine_unreachable", &out, 5);
}

/// The dry run lists what the engine runs for the project, so it needs an engine;
/// it skips without one, as `docker.rs` does. The project name is this module's
/// own, so no container carries its label and the plan is the same everywhere: the
/// one SHA with build evidence is too young to prune.
#[test]
fn prune_dry_run() {
    if crate::project::engine().is_none() {
        return;
    }
    let snap = Snap::new();
    snap.commit(SHA);
    snap.repo.record(ArtifactKind::Build, OTHER, |_| {});
    std::fs::write(snap.repo.path().join("ledger.toml"), config("")).unwrap();
    snap.snap("prune_dry_run", &["prune"], 0);
    snap.snap("prune_dry_run_json", &["prune", "--json"], 0);
}

// --- debug logs ---------------------------------------------------------------------------

/// `RUST_LOG=ledger_store=debug` tells what the store did: which prefixes `verify`
/// listed and which keys it read, with the outcome. Asserted, not snapshotted: the
/// log lines carry times and thread details.
#[test]
fn rust_log_debug_names_the_store_operations_and_keys() {
    let snap = Snap::new();
    snap.commit(SHA);
    let out = snap
        .repo
        .ledger_env(&["verify", SHA], &[("RUST_LOG", "ledger_store=debug")]);
    assert_code(&out, 0);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let commit = format!("commit/{SHA}/");
    assert!(
        stderr.lines().any(|l| l.contains("store.list")
            && l.contains(&format!("prefix=\"{commit}\""))
            && l.contains("listed")
            && l.contains("objects=2")),
        "{stderr}"
    );
    assert!(
        stderr.lines().any(|l| l.contains("store.map_many")
            && l.contains(&format!("first=\"{commit}commit.json\""))
            && l.contains("present=1")),
        "{stderr}"
    );
    // Without RUST_LOG, nothing of it.
    let out = snap.run(&["verify", SHA]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("store."));
}
