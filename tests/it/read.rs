//! The read commands people and machines use on a store: `verify --all` (exact counts
//! over hundreds of generated chains with tampered ones among them, on both
//! backends), `show` and `log` (pinned text), `doctor` (each component missing), and
//! every `--json` output checked against its published schema in `schemas/output/`.

use crate::{assert_code, text, Backend, Repo, SHA};
use ledger_core::ArtifactKind;
use serde_json::Value;
use std::path::Path;

/// Validates `instance` against `schemas/output/<name>.v1.schema.json`, resolving
/// references between the output schemas.
pub fn assert_output_schema(name: &str, instance: &Value) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/output");
    let mut resources = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let schema: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let id = schema["$id"].as_str().unwrap().to_owned();
        resources.push((id, jsonschema::Resource::from_contents(schema)));
    }
    let registry = jsonschema::Registry::new()
        .extend(resources)
        .and_then(|b| b.prepare())
        .unwrap();
    let schema: Value =
        serde_json::from_slice(&std::fs::read(dir.join(format!("{name}.v1.schema.json"))).unwrap())
            .unwrap();
    let validator = jsonschema::options()
        .with_registry(&registry)
        .should_validate_formats(true)
        .build(&schema)
        .unwrap();
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{name}: {errors:?}\n{instance:#}");
}

pub(crate) fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(out)))
}

fn sha_n(n: usize) -> String {
    format!("{n:040x}")
}

const CHAINS: usize = 120;
const PER_CHAIN: [ArtifactKind; 3] = [
    ArtifactKind::Commit,
    ArtifactKind::Integration,
    ArtifactKind::Build,
];

fn verify_all_counts_every_chain_and_names_each_tampered_one(backend: Backend) {
    let repo = Repo::on(&backend);
    record_chains_that_all_verify(&repo);
    let stray = tamper_four_chains(&repo);
    assert_json_names_each_tampered_chain(&repo, &stray);
    assert_text_summary_names_each_failure(&repo);
}

/// Records [`CHAINS`] chains of [`PER_CHAIN`] and checks `verify --all` counts them all.
fn record_chains_that_all_verify(repo: &Repo) {
    let all: Vec<(ArtifactKind, String)> = (0..CHAINS)
        .flat_map(|n| PER_CHAIN.map(|kind| (kind, sha_n(n))))
        .collect();
    repo.record_each(&all);
    let out = repo.ledger(&["verify", "--all", "--json"]);
    assert_code(&out, 0);
    let clean = json(&out);
    assert_output_schema("verify-all", &clean);
    assert_eq!(
        (&clean["shas"], &clean["artifacts"], &clean["artifacts_ok"]),
        (&CHAINS.into(), &(CHAINS * 3).into(), &(CHAINS * 3).into())
    );
}

/// Breaks chains 3, 5, 7 and 9 four different ways and adds an object outside any
/// SHA; returns the stray object's key inside chain 9.
fn tamper_four_chains(repo: &Repo) -> String {
    // 3: one byte of the commit envelope flipped.
    let key3 = format!("commit/{}/commit.json", sha_n(3));
    let mut bytes = repo.read_object(&key3);
    let i = bytes.len() / 2;
    bytes[i] ^= 0x01;
    repo.tamper_object(&key3, bytes);
    // 5: another SHA's integration envelope copied into place.
    let key5 = format!("integration/{}/integration.json", sha_n(5));
    repo.tamper_object(
        &key5,
        repo.read_object(&format!("integration/{}/integration.json", sha_n(6))),
    );
    // 7: the captured output of the commit stage altered.
    repo.tamper_object(
        &format!("commit/{}/commit.log", sha_n(7)),
        b"0 passed\n".to_vec(),
    );
    // 9: a foreign object among the chain's evidence; and one outside any SHA.
    let stray = format!("build/{}/notes.txt", sha_n(9));
    repo.tamper_object(&stray, b"hello".to_vec());
    repo.tamper_object("build/readme.txt", b"hello".to_vec());
    stray
}

/// `verify --all --json` counts the failures exactly and names each broken chain.
fn assert_json_names_each_tampered_chain(repo: &Repo, stray: &str) {
    let out = repo.ledger(&["verify", "--all", "--json"]);
    assert_code(&out, 4);
    let v = json(&out);
    assert_output_schema("verify-all", &v);
    assert_eq!(v["ok"], false);
    assert_eq!(v["shas"], CHAINS);
    assert_eq!(v["shas_failed"], 4);
    assert_eq!(v["artifacts"], CHAINS * 3);
    assert_eq!(v["artifacts_ok"], CHAINS * 3 - 3);
    assert_eq!(v["artifacts_failed"], 3);
    assert_eq!(
        v["unexpected"],
        serde_json::json!([stray, "build/readme.txt"])
    );
    let failed: Vec<&str> = v["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["sha"].as_str().unwrap())
        .collect();
    assert_eq!(failed, [sha_n(3), sha_n(5), sha_n(7), sha_n(9)]);
    let problems = v["failed"].to_string();
    assert!(problems.contains("another git commit"), "{problems}");
    assert!(problems.contains("was altered"), "{problems}");
}

/// The text summary says the same, one FAIL line per broken artifact or object.
fn assert_text_summary_names_each_failure(repo: &Repo) {
    let out = repo.ledger(&["verify", "--all"]);
    assert_code(&out, 4);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.matches("FAIL  ").count(), 5, "{stdout}");
    assert!(
        stdout.contains(&format!(
            "SHAs      {:>9} {:>8} {:>8}",
            CHAINS,
            CHAINS - 4,
            4
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "artifacts {:>9} {:>8} {:>8}",
            CHAINS * 3,
            CHAINS * 3 - 3,
            3
        )),
        "{stdout}"
    );
    assert!(stdout.contains("verification FAILED"), "{stdout}");
    // Not a terminal: progress is plain lines on stderr.
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("verified {CHAINS}/{CHAINS} SHAs"))
    );
}

fn show_and_log_read_a_chain(backend: Backend) {
    let repo = Repo::on(&backend);
    let out = repo.ledger(&[
        "stage",
        "commit",
        "--sha",
        SHA,
        "--",
        "echo",
        "2 passed, 0 failed",
    ]);
    assert_code(&out, 0);
    let out = repo.ledger(&["stage", "integration", "--sha", SHA, "--", "false"]);
    assert_code(&out, 1);
    let out = repo.ledger(&["show", SHA, "--json"]);
    assert_code(&out, 0);
    let v = json(&out);
    assert_output_schema("show", &v);
    assert_eq!(v["artifacts"][0]["facts"][2]["value"], "2 passed, 0 failed");
    assert_eq!(v["artifacts"][1]["result"], "fail");
    assert_eq!(
        v["artifacts"][1]["inputs"][0]["key"],
        format!("commit/{SHA}/commit.json")
    );
    let out = repo.ledger(&["log", "--json"]);
    assert_code(&out, 0);
    let log = json(&out);
    assert_output_schema("log", &log);
    assert_eq!(log[0]["sha"], SHA);
    assert_eq!(log[0]["furthest_stage"], "integration");
    assert_eq!(log[0]["furthest_result"], "fail");
}

on_both_backends!(
    verify_all_counts_every_chain_and_names_each_tampered_one,
    show_and_log_read_a_chain,
);

/// Replaces what differs between runs (times, key ids, hosts, digests) for snapshots.
pub fn stable(s: &str) -> String {
    let mut out = String::new();
    for word in s.split_inclusive(|c: char| c.is_whitespace()) {
        let w = word.trim_end();
        let tail = &word[w.len()..];
        let replaced = if w.len() >= 20 && w.starts_with("20") && w.contains('T') {
            "[TIME]".to_owned()
        } else if w.len() == 12 && w.bytes().all(|b| b.is_ascii_hexdigit()) {
            "[KEYID]".to_owned()
        } else if let Some(d) = w.strip_prefix("sha256:") {
            format!("sha256:[{}]", d.len())
        } else {
            w.to_owned()
        };
        out.push_str(&replaced);
        out.push_str(tail);
    }
    out
}

#[test]
fn show_and_log_text_is_pinned() {
    let repo = Repo::new();
    repo.ledger(&[
        "stage",
        "commit",
        "--sha",
        SHA,
        "--",
        "echo",
        "2 passed, 0 failed",
    ]);
    repo.ledger(&["stage", "integration", "--sha", SHA, "--", "false"]);
    let other = "f".repeat(40);
    repo.record(ArtifactKind::Commit, &other, |_| {});
    let out = repo.ledger(&["show", SHA]);
    assert_code(&out, 0);
    let shown = String::from_utf8_lossy(&out.stdout)
        .replace(&repo.path().display().to_string(), "[REPO]")
        .replace(&ledger_pipeline::ci::host_name(), "[HOST]");
    let shown = shown
        .lines()
        .map(|l| {
            // "(4 ms)" varies; keep the shape.
            match (l.find(" ("), l.find(" ms)")) {
                (Some(a), Some(b)) if a < b => format!("{} ([N] ms){}", &l[..a], &l[b + 4..]),
                _ => l.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    insta::assert_snapshot!("show_text", stable(&shown));
    let out = repo.ledger(&["log"]);
    assert_code(&out, 0);
    insta::assert_snapshot!("log_text", stable(&String::from_utf8_lossy(&out.stdout)));
}

/// An absurd `--jobs` is capped (a few threads per core), not obeyed: the walk
/// finishes and gives the same answer as with one thread.
#[test]
fn verify_all_caps_an_absurd_job_count() {
    let repo = Repo::new();
    repo.chain_before(ledger_core::Stage::Publish, SHA);
    let one = repo.ledger(&["verify", "--all", "--jobs", "1", "--json"]);
    assert_code(&one, 0);
    let many = repo.ledger(&["verify", "--all", "--jobs", "1000000", "--json"]);
    assert_code(&many, 0);
    assert_eq!(json(&one), json(&many));
}

#[test]
fn verify_all_on_an_empty_store_verifies_nothing_and_passes() {
    let repo = Repo::new();
    let out = repo.ledger(&["verify", "--all", "--json"]);
    assert_code(&out, 0);
    let v = json(&out);
    assert_output_schema("verify-all", &v);
    assert_eq!(
        (v["shas"].as_u64(), v["artifacts"].as_u64()),
        (Some(0), Some(0))
    );
}

#[test]
fn verify_json_matches_its_schema() {
    let repo = Repo::new();
    repo.record(ArtifactKind::Commit, SHA, |_| {});
    let out = repo.ledger(&["verify", SHA, "--json"]);
    assert_code(&out, 0);
    assert_output_schema("verify", &json(&out));
}

// --- doctor --------------------------------------------------------------------------

fn doctor(repo: &Repo, args: &[&str], env: &[(&str, &str)]) -> (i32, Value) {
    let mut all = vec!["doctor", "--json"];
    all.extend_from_slice(args);
    let out = repo.ledger_env(&all, env);
    let v = json(&out);
    assert_output_schema("doctor", &v);
    (out.status.code().unwrap(), v)
}

/// Runs doctor and asserts it exits `code` with the check `name` failed.
fn assert_doctor_fails(repo: &Repo, name: &str, code: i32) -> Value {
    let (got, v) = doctor(repo, &[], &[]);
    assert_eq!(
        (got, &check(&v, name)["status"]),
        (code, &"failed".into()),
        "{v}"
    );
    v
}

fn check<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {v}"))
}

const MINIMAL_CONFIG: &str = r#"repository = "doctor"
source = "https://example.invalid/doctor"
REGISTRY
[[images]]
name = "api"
context = "."

[[environments]]
name = "production"
"#;

#[test]
fn doctor_passes_on_a_fresh_repository_and_probes_the_store() {
    let repo = Repo::new();
    // Before the first stage: no store yet, and doctor creates none (no probe left).
    let _ = std::fs::remove_dir_all(repo.store());
    let (code, v) = doctor(&repo, &[], &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(check(&v, "store")["status"], "skipped", "{v}");
    assert!(check(&v, "store")["detail"]
        .as_str()
        .unwrap()
        .contains("does not exist yet"));
    assert_eq!(check(&v, "policy owners")["status"], "ok", "{v}");
    assert!(!repo.store().exists(), "doctor created the store");
    std::fs::create_dir_all(repo.store()).unwrap();
    let (code, v) = doctor(&repo, &[], &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["ok"], true);
    assert_eq!(check(&v, "store")["status"], "ok");
    assert!(check(&v, "store")["detail"]
        .as_str()
        .unwrap()
        .contains("create-only"));
    assert_eq!(check(&v, "clock")["status"], "ok");
    assert_eq!(check(&v, "docker engine")["status"], "skipped");
    assert_eq!(check(&v, "policy owners")["status"], "ok");
    assert!(repo.stored().iter().any(|k| k.starts_with("probes/")));
    // A policy edited without the owners' signature: doctor says so, exit 4.
    repo.edit_policy_unsigned(|p| p["description"] = "edited".into());
    let v = assert_doctor_fails(&repo, "policy owners", 4);
    assert!(check(&v, "policy owners")["fix"]
        .as_str()
        .unwrap()
        .contains("ledger policy sign"));
}

#[test]
fn doctor_names_each_missing_component_with_its_exit_code() {
    // Policy missing: configuration, exit 2, and the fix says how to make one.
    let repo = Repo::new();
    std::fs::remove_file(repo.path().join("policy/pipeline-policy.json")).unwrap();
    let v = assert_doctor_fails(&repo, "policy", 2);
    assert!(check(&v, "policy")["fix"]
        .as_str()
        .unwrap()
        .contains("ledger init"));

    // Signing key missing.
    let repo = Repo::new();
    std::fs::remove_file(repo.path().join(".ledger/release.key")).unwrap();
    assert_doctor_fails(&repo, "signing key", 2);

    // A key the policy does not trust for the stage asked about.
    let repo = Repo::new();
    let id = repo.generate_key("ci");
    repo.trust_key("ci", &id, &["commit"]);
    let (code, v) = doctor(&repo, &["--key", "ci.key", "--stage", "decide"], &[]);
    assert_eq!(code, 2, "{v}");
    assert!(check(&v, "signing key")["detail"]
        .as_str()
        .unwrap()
        .contains("stage `decide`"));
    let (code, _) = doctor(&repo, &["--key", "ci.key", "--stage", "commit"], &[]);
    assert_eq!(code, 0);

    // Store unreachable: a bucket whose endpoint nothing listens on; exit 5.
    let repo = Repo::new();
    let port = crate::dead_port();
    let dead = format!("http://127.0.0.1:{port}");
    let (code, v) = doctor(
        &repo,
        &[],
        &[
            ("LEDGER_STORE", "s3://evidence/doctor"),
            ("AWS_ENDPOINT_URL", &dead),
            ("AWS_ALLOW_HTTP", "true"),
            ("AWS_ACCESS_KEY_ID", "x"),
            ("AWS_SECRET_ACCESS_KEY", "y"),
            ("AWS_REGION", "us-east-1"),
        ],
    );
    assert_eq!(code, 5, "{v}");
    assert!(
        check(&v, "store")["detail"]
            .as_str()
            .unwrap()
            .contains(&dead),
        "{v}"
    );

    // ledger.toml broken: exit 2 with the file named.
    let repo = Repo::new();
    std::fs::write(repo.path().join("ledger.toml"), "repository = 3\n").unwrap();
    assert_doctor_fails(&repo, "ledger.toml", 2);

    // Docker engine and registry unreachable: exit 5, both named.
    let repo = Repo::new();
    let config = MINIMAL_CONFIG.replace("REGISTRY", &format!("registry = \"127.0.0.1:{port}\""));
    std::fs::write(repo.path().join("ledger.toml"), config).unwrap();
    let (code, v) = doctor(
        &repo,
        &[],
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
    );
    assert_eq!(code, 5, "{v}");
    assert_eq!(check(&v, "docker engine")["status"], "failed", "{v}");
    assert_eq!(check(&v, "registry")["status"], "failed", "{v}");
    assert!(check(&v, "registry")["detail"]
        .as_str()
        .unwrap()
        .contains(&format!("127.0.0.1:{port}")));
}

#[test]
fn rust_log_shows_tracing_and_output_carries_no_colour_codes() {
    let repo = Repo::new();
    let mut cmd = repo.command(&["stage", "commit", "--sha", SHA, "--", "true"]);
    cmd.env_remove("NO_COLOR").env("RUST_LOG", "debug");
    let out = cmd.output().unwrap();
    assert_code(&out, 0);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("DEBUG"),
        "RUST_LOG=debug logged nothing: {stderr}"
    );
    for stream in [&out.stdout, &out.stderr] {
        assert!(
            !stream.contains(&0x1b),
            "ANSI escape in output that is not a terminal"
        );
    }
}
