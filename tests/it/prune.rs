//! `ledger status` and `ledger prune` on the real engine and registry: the protection
//! invariant (nothing promoted or running is ever a candidate), dry run by default,
//! the safety threshold, the signed prune record, and what status reports.

use crate::project::{engine, registry, runtime, Project};
use crate::{assert_code, text};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn build_image(p: &Project, s: &str) -> (String, String) {
    let build = p.repo.predicate(&format!("build/{s}/build.json"));
    let image = &build["images"][0];
    (
        image["image_id"].as_str().unwrap().to_owned(),
        image["repo_digest"].as_str().unwrap().to_owned(),
    )
}

fn in_registry(reference: &str) -> bool {
    let (repo, digest) = reference.split_once('@').unwrap();
    let (host, name) = repo.split_once('/').unwrap();
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-I"])
        .args([
            "-H",
            "Accept: application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json",
        ])
        .arg(format!("http://{host}/v2/{name}/manifests/{digest}"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout) == "200"
}

fn on_engine(id: &str) -> bool {
    let engine = engine().unwrap();
    runtime()
        .block_on(engine.inspect_image(id))
        .unwrap()
        .is_some()
}

/// The engine and the test registry, or `None` (the case is skipped, saying why)
/// where either is missing outside CI.
fn engine_and_registry() -> Option<(ledger_docker::Engine, String)> {
    let engine = engine()?;
    let Some(registry) = registry() else {
        eprintln!("LEDGER_TEST_REGISTRY not set; skipping");
        return None;
    };
    Some((engine, registry))
}

fn json_of(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(out)))
}

/// The three SHAs of the prune scenario and the images each was built as.
struct Releases {
    promoted: String,
    unpromoted: String,
    running: String,
    /// The unpromoted SHA's image id and registry reference: what prune deletes.
    gone: (String, String),
    /// The promoted and the running SHA's images: what prune must keep.
    kept: Vec<(String, String)>,
}

/// One SHA promoted, one published only, one deployed but rejected (never promoted,
/// yet protected while it runs); prune's threshold set to 1.
fn three_releases(p: &Project) -> Releases {
    let (promoted, unpromoted, running) = (p.sha(30), p.sha(31), p.sha(32));
    p.run_through(&promoted, "decide");
    p.run_through(&unpromoted, "publish");
    // `running` is deployed but rejected: never promoted, yet protected while it runs.
    p.run_through(&running, "deploy");
    p.configure_with("", "/missing");
    assert_code(&p.ledger(&["stage", "smoke", "--sha", &running]), 1);
    assert_code(&p.ledger(&["stage", "decide", "--sha", &running]), 1);
    p.configure("");
    let toml = p.repo.path().join("ledger.toml");
    let mut config = std::fs::read_to_string(&toml).unwrap();
    config.push_str("\n[prune]\nthreshold = 1\n");
    std::fs::write(&toml, config).unwrap();
    let gone = build_image(p, &unpromoted);
    let kept: Vec<(String, String)> = [&promoted, &running]
        .iter()
        .map(|s| build_image(p, s))
        .collect();
    Releases {
        promoted,
        unpromoted,
        running,
        gone,
        kept,
    }
}

/// Status: what runs, and the last promoted release.
fn assert_status_shows_running_and_promoted(p: &Project, r: &Releases) {
    let out = p.ledger(&["status", "--json"]);
    assert_code(&out, 0);
    let status = json_of(&out);
    crate::read::assert_output_schema("status", &status);
    assert_eq!(status["environments"][0]["environment"], "production");
    assert_eq!(
        status["environments"][0]["running"]["sha"],
        r.running.as_str()
    );
    assert_eq!(status["last_promoted"]["sha"], r.promoted.as_str());
}

/// A dry run with no minimum age lists exactly the unpromoted SHA's two copies and
/// deletes nothing; over the threshold `--apply` without `--force` is refused.
fn assert_dry_run_and_threshold_delete_nothing(p: &Project, r: &Releases) {
    let (gone_id, gone_ref) = &r.gone;
    // Dry run: lists exactly the unpromoted SHA's two copies, deletes nothing.
    let out = p.ledger(&["prune", "--min-age-days", "0", "--json"]);
    assert_code(&out, 0);
    let plan = json_of(&out);
    crate::read::assert_output_schema("prune", &plan);
    let candidates = plan["candidates"].as_array().unwrap();
    assert_eq!(candidates.len(), 2, "{plan:#}");
    assert!(candidates.iter().all(|c| c["sha"] == r.unpromoted.as_str()));
    let refs: Vec<&str> = candidates
        .iter()
        .map(|c| c["ref"].as_str().unwrap())
        .collect();
    assert!(refs.contains(&gone_id.as_str()) && refs.contains(&gone_ref.as_str()));
    assert!(
        on_engine(gone_id) && in_registry(gone_ref),
        "a dry run deletes nothing"
    );

    // Over the threshold (1): refused without --force, nothing deleted.
    let out = p.ledger(&["prune", "--min-age-days", "0", "--apply"]);
    assert_code(&out, 3);
    assert!(text(&out).contains("safety threshold"), "{}", text(&out));
    assert!(on_engine(gone_id) && in_registry(gone_ref));
    assert!(!p.repo.store().join("prune").exists());
}

/// `--apply --force` refused before anything is deleted: signing with a key not
/// trusted for `deploy` (the commit zone's), and with an engine that does not
/// answer (exit 5).
fn assert_refusals_before_deleting(p: &Project, r: &Releases) {
    let (gone_id, gone_ref) = &r.gone;
    let apply = ["prune", "--min-age-days", "0", "--apply", "--force"];
    let with_key = [&apply[..], &["--key", ".ledger/test.key"]].concat();
    let out = p.ledger(&with_key);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("deploy"), "{}", text(&out));
    let dead = format!("tcp://127.0.0.1:{}", crate::dead_port());
    let out = p.repo.ledger_env(&apply, &[("DOCKER_HOST", &dead)]);
    assert_code(&out, 5);
    assert!(text(&out).contains(&dead[6..]), "{}", text(&out));
    assert!(
        on_engine(gone_id) && in_registry(gone_ref),
        "a refused prune deleted"
    );
    assert!(!p.repo.store().join("prune").exists());
}

/// `--apply --force` deletes the unpromoted SHA's copies and nothing protected.
fn apply_and_assert_only_the_unpromoted_images_are_gone(p: &Project, r: &Releases) {
    let (gone_id, gone_ref) = &r.gone;
    let out = p.ledger(&[
        "prune",
        "--min-age-days",
        "0",
        "--apply",
        "--force",
        "--json",
    ]);
    assert_code(&out, 0);
    let applied = json_of(&out);
    crate::read::assert_output_schema("prune", &applied);
    assert_eq!(
        applied["deleted"].as_array().unwrap().len(),
        2,
        "{applied:#}"
    );
    assert!(applied["record"].as_str().unwrap().starts_with("prune/"));
    assert!(!on_engine(gone_id), "{}", text(&out));
    assert!(!in_registry(gone_ref), "{}", text(&out));
    for (id, reference) in &r.kept {
        assert!(on_engine(id), "protected image {id} was deleted");
        assert!(in_registry(reference), "protected {reference} was deleted");
    }
    // The service still runs.
    assert!(p.get("/health").unwrap().contains("200"));
}

/// The record: one signed statement naming what was deleted, verifiable by a
/// standard DSSE implementation.
fn assert_one_signed_prune_record(p: &Project, r: &Releases) {
    let records: Vec<_> = std::fs::read_dir(p.repo.store().join("prune"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(records.len(), 1);
    let envelope: Value = serde_json::from_slice(&std::fs::read(&records[0]).unwrap()).unwrap();
    use base64::Engine as _;
    let statement: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(envelope["payload"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        statement["predicateType"],
        "https://ledger.dev/predicate/prune/v1"
    );
    let deleted = statement["predicate"]["deleted"].as_array().unwrap();
    assert_eq!(deleted.len(), 2);
    assert!(deleted
        .iter()
        .all(|d| d["ok"] == true && d["sha"] == r.unpromoted.as_str()));
    assert_eq!(statement["predicate"]["forced"], true);
    if std::env::var_os("LEDGER_SKIP_INTEROP").is_none() {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/sslib_interop.py");
        let out = Command::new("python3")
            .arg(&script)
            .arg("verify")
            .arg(&records[0])
            .arg(p.repo.path().join(".ledger/release.pub"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
    }
}

/// A policy freshness limit of one second: the running release is now stale.
fn assert_a_stale_release_raises_the_freshness_alarm(p: &Project) {
    p.repo.edit_policy(|policy| {
        policy["freshness"] = serde_json::json!({ "max_running_age_seconds": 1 });
    });
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let out = p.ledger(&["status"]);
    assert_code(&out, 0);
    assert!(text(&out).contains("FRESHNESS ALARM"), "{}", text(&out));
    assert!(
        text(&out).contains("max_running_age_seconds"),
        "{}",
        text(&out)
    );
}

/// A promoted release whose decision an attacker deleted from the store, once
/// another release runs: the log still names the decision, so prune cannot tell the
/// release was never promoted; it leaves its images alone and names the deletion.
/// The same when the decision is put back altered.
#[test]
fn prune_leaves_a_release_alone_whose_decision_was_deleted_or_altered() {
    let Some((_, registry)) = engine_and_registry() else {
        return;
    };
    let p = Project::new(Some(registry));
    let (promoted, current) = (p.sha(33), p.sha(34));
    p.run_through(&promoted, "decide");
    p.run_through(&current, "decide");
    let decision = format!("release/{promoted}/decision.json");
    let original = p.repo.read_object(&decision);
    p.repo.delete_object(&decision);
    let left_alone = |how: &str| {
        let out = p.ledger(&["prune", "--min-age-days", "0", "--json"]);
        assert_code(&out, 0);
        let plan = json_of(&out);
        crate::read::assert_output_schema("prune", &plan);
        let candidates = plan["candidates"].as_array().unwrap();
        assert!(
            candidates.iter().all(|c| c["sha"] != promoted.as_str()),
            "{how}: {plan:#}"
        );
        assert!(
            plan["ignored"].to_string().contains(&decision),
            "{how}: {plan:#}"
        );
    };
    left_alone("deleted");
    // Put back with one byte changed: it does not verify either.
    let mut altered = original;
    let at = altered.len() - 8;
    altered[at] = if altered[at] == b'A' { b'B' } else { b'A' };
    p.repo.tamper_object(&decision, altered);
    left_alone("altered");
    let (id, reference) = build_image(&p, &promoted);
    assert!(on_engine(&id) && in_registry(&reference));
}

/// A release that was deployed but never promoted, whose container someone removed
/// behind `ledger`'s back: no engine shows it running, but its deployment evidence
/// says it runs, and that alone protects its images.
#[test]
fn prune_keeps_what_the_evidence_says_runs_when_no_engine_shows_it() {
    let Some((engine, registry)) = engine_and_registry() else {
        return;
    };
    let p = Project::new(Some(registry));
    let deployed = p.sha(35);
    p.run_through(&deployed, "deploy");
    for c in p.containers() {
        runtime().block_on(engine.remove(&c.id)).unwrap();
    }
    assert!(p.containers().is_empty());
    let out = p.ledger(&["prune", "--min-age-days", "0", "--json"]);
    assert_code(&out, 0);
    let plan = json_of(&out);
    let candidates = plan["candidates"].as_array().unwrap();
    assert!(
        candidates.iter().all(|c| c["sha"] != deployed.as_str()),
        "{plan:#}"
    );
    let (id, reference) = build_image(&p, &deployed);
    let protected = plan["protected"].to_string();
    let digest = reference.split_once('@').unwrap().1;
    assert!(protected.contains(digest), "{plan:#}");
    assert!(
        protected.contains("recorded as running in production"),
        "{plan:#}"
    );
    let out = p.ledger(&["prune", "--min-age-days", "0", "--apply", "--force"]);
    assert_code(&out, 0);
    assert!(
        on_engine(&id) && in_registry(&reference),
        "a running release was pruned"
    );
}

#[test]
fn prune_deletes_only_never_promoted_images_and_records_what_it_did() {
    let Some((_, registry)) = engine_and_registry() else {
        return;
    };
    let p = Project::new(Some(registry));
    let r = three_releases(&p);
    assert_status_shows_running_and_promoted(&p, &r);

    // Everything is younger than the default 14 days: nothing is a candidate.
    let out = p.ledger(&["prune", "--json"]);
    assert_code(&out, 0);
    crate::read::assert_output_schema("prune", &json_of(&out));
    assert_eq!(json_of(&out)["candidates"].as_array().unwrap().len(), 0);

    assert_dry_run_and_threshold_delete_nothing(&p, &r);
    assert_refusals_before_deleting(&p, &r);
    apply_and_assert_only_the_unpromoted_images_are_gone(&p, &r);
    assert_one_signed_prune_record(&p, &r);

    // Pruning again finds nothing; the promoted chain still verifies.
    let out = p.ledger(&["prune", "--min-age-days", "0", "--json"]);
    assert_eq!(json_of(&out)["candidates"].as_array().unwrap().len(), 0);
    assert_code(&p.ledger(&["verify", &r.promoted]), 0);

    assert_a_stale_release_raises_the_freshness_alarm(&p);
}
