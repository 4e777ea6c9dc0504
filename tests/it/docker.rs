//! The Docker half against the real engine and the real registry that `bash .ci/run`
//! starts: build once, publish, deploy by digest, smoke, decide; refusals of foreign
//! or tag-named images; serialized deploys; restore on failed health; unreachable
//! engine or registry. The fixture ([`Project`], engine and registry) is in
//! `project.rs`; without an engine these tests skip as it describes.

use crate::project::{engine, free_port, registry, runtime, shas_of, Project};
use crate::{assert_code, text};
use ledger_core::ArtifactKind;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

#[test]
fn full_chain_without_a_registry() {
    let Some(_) = engine() else { return };
    let p = Project::new(None);
    let s = p.sha(1);
    p.run_through(&s, "decide");
    assert_code(&p.ledger(&["verify", &s]), 0);
    let manifest = p
        .repo
        .predicate(&format!("release-candidate/{s}/manifest.json"));
    assert_eq!(manifest["images"]["api"]["engine_local"], true);
    assert!(manifest["images"]["api"]["ref"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    let running = p.containers();
    assert_eq!(running.len(), 1);
    assert_eq!(running[0].labels["dev.ledger.sha"], s);
    assert_eq!(
        running[0].labels["dev.ledger.evidence"],
        format!("infra/{s}/deployment.json")
    );
    assert!(p.get("/").unwrap().contains("\"version\":\"it\""));
    let decision = p.repo.predicate(&format!("release/{s}/decision.json"));
    assert_eq!(decision["decision"], "promote");
}

#[test]
fn full_chain_with_a_registry_deploys_by_pulled_digest() {
    let Some(engine) = engine() else { return };
    let Some(registry) = registry() else {
        eprintln!("LEDGER_TEST_REGISTRY not set; skipping");
        return;
    };
    let p = Project::new(Some(registry.clone()));
    let s = p.sha(2);
    p.run_through(&s, "publish");
    let manifest = p
        .repo
        .predicate(&format!("release-candidate/{s}/manifest.json"));
    let reference = manifest["images"]["api"]["ref"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        reference.starts_with(&format!("{registry}/{}/api@sha256:", p.name)),
        "{reference}"
    );
    assert_eq!(manifest["images"]["api"]["engine_local"], false);
    // Remove the local copy: deploy must pull the digest from the registry.
    runtime()
        .block_on(engine.remove_image(&format!("{registry}/{}/api:{s}", p.name)))
        .unwrap();
    runtime().block_on(engine.remove_image(&reference)).unwrap();
    let out = p.ledger(&["stage", "deploy", "--sha", &s]);
    assert_code(&out, 0);
    assert!(
        text(&out).contains(&format!("pulling {reference}")),
        "{}",
        text(&out)
    );
    assert_code(&p.ledger(&["stage", "smoke", "--sha", &s]), 0);
    assert_code(&p.ledger(&["stage", "decide", "--sha", &s]), 0);
    assert_code(&p.ledger(&["verify", &s]), 0);
    let deployment = p.repo.predicate(&format!("infra/{s}/deployment.json"));
    assert_eq!(deployment["containers"][0]["ref"], reference.as_str());
    // The report of a real release, full registry digests and all, stays readable.
    if let Some(browser) = crate::report::chromium() {
        let page = crate::report::layout(&browser, &p.repo, &s, 0);
        assert_eq!(page.banner, "Status: done (release promoted)");
        page.assert_readable(8.0);
        page.assert_results_coloured();
    }
}

#[test]
fn a_second_build_of_a_sha_is_refused() {
    let Some(_) = engine() else { return };
    let p = Project::new(None);
    let s = p.sha(3);
    p.run_through(&s, "build");
    let out = p.ledger(&["stage", "build", "--sha", &s]);
    assert_code(&out, 3);
    assert!(
        text(&out).contains(&format!("ledger replay {s}")),
        "{}",
        text(&out)
    );
    assert_eq!(shas_of(&p.repo).len(), 1);
}

#[test]
fn deploy_refuses_an_image_built_from_another_commit() {
    let Some(engine) = engine() else { return };
    let p = Project::new(None);
    let (s, other) = (p.sha(4), p.sha(5));
    p.run_through(&s, "integration");
    // An image labelled with another commit, presented in a validly signed manifest.
    let spec = ledger_docker::BuildSpec {
        context: ledger_docker::tar_context(&p.repo.path().join("service"))
            .unwrap()
            .into(),
        context_name: "service".into(),
        dockerfile: "Dockerfile".into(),
        tag: format!("{}/api:{s}", p.name),
        labels: [(
            "org.opencontainers.image.revision".to_string(),
            other.clone(),
        )]
        .into(),
    };
    let built = runtime().block_on(engine.build(&spec, |_| {})).unwrap();
    p.repo.record(ArtifactKind::Build, &s, |pr| {
        pr["images"][0]["image_id"] = built.image_id.clone().into();
        pr["images"][0]["repo_digest"] = Value::Null;
        pr["images"][0]["labels"]["org.opencontainers.image.revision"] = other.clone().into();
        pr["registry"] = Value::Null;
    });
    p.repo.record(ArtifactKind::Manifest, &s, |pr| {
        pr["images"] = json!({ "api": { "ref": built.image_id, "digest": built.image_id, "engine_local": true } });
        pr["registry"] = Value::Null;
    });
    let out = p.ledger(&["stage", "deploy", "--sha", &s]);
    assert_code(&out, 4);
    assert!(
        text(&out).contains(&format!("revision label \"{other}\", not {s}")),
        "{}",
        text(&out)
    );
    assert!(p.containers().is_empty(), "nothing may be started");
    assert!(!p
        .repo
        .object(&format!("infra/{s}/deployment.json"))
        .exists());
    let _ = runtime().block_on(engine.remove_image(&built.image_id));
}

#[test]
fn deploy_refuses_a_manifest_that_names_a_tag() {
    let Some(_) = engine() else { return };
    let p = Project::new(None);
    let s = p.sha(6);
    p.run_through(&s, "build");
    // ledger cannot write such a manifest (its schema forbids it); forge one signed
    // with the trusted key, bypassing the recorder's checks.
    use ledger_core::dsse::Envelope;
    let mut pred = p.repo.predicate(&format!("build/{s}/build.json"));
    pred["stage"] = "publish".into();
    pred.as_object_mut().unwrap().remove("images");
    pred["images"] = json!({ "api": { "ref": format!("{}/api:latest", p.name), "digest": format!("sha256:{}", "a".repeat(64)), "engine_local": true } });
    let gitsha = ledger_core::GitSha::parse(&s).unwrap();
    let st = ledger_core::Statement::new(
        ArtifactKind::Manifest,
        vec![ledger_core::Subject::git(&gitsha)],
        pred,
    );
    let key = p.repo.signing_key(".ledger/release.key");
    // Written and logged as the key's holder would through ledger.
    p.repo.write_logged(
        &format!("release-candidate/{s}/manifest.json"),
        Envelope::sign(&st, &key).to_bytes(),
    );
    let out = p.ledger(&["stage", "deploy", "--sha", &s]);
    assert_code(&out, 3);
    assert!(text(&out).contains("/images/api/ref"), "{}", text(&out));
    assert!(p.containers().is_empty());
}

/// A lease another runner holds: a deploy waits `--lease-wait`, then fails (exit 5)
/// naming the holder, with nothing started; a lease that has expired is taken over,
/// and the deployment records the takeover.
#[test]
fn a_held_lease_stops_a_deploy_naming_its_holder_and_an_expired_one_is_taken_over() {
    use time::format_description::well_known::Rfc3339;
    let Some(_) = engine() else { return };
    let p = Project::new(None);
    let s = p.sha(12);
    p.run_through(&s, "publish");
    let now = time::OffsetDateTime::now_utc();
    let lease = |seq: u64, expires: time::OffsetDateTime| {
        let lease = serde_json::json!({
            "environment": "production", "seq": seq, "holder": "other-host/run-42",
            "sha": s, "acquired_at": (now - time::Duration::minutes(1)).format(&Rfc3339).unwrap(),
            "expires_at": expires.format(&Rfc3339).unwrap(), "takeover_of": null,
        });
        serde_json::to_vec(&lease).unwrap()
    };
    let held = lease(1, now + time::Duration::hours(1));
    p.repo
        .write_logged("leases/production/0000000001.json", held);
    let out = p.ledger(&["stage", "deploy", "--sha", &s, "--lease-wait", "1"]);
    assert_code(&out, 5);
    assert!(text(&out).contains("other-host/run-42"), "{}", text(&out));
    assert!(p.containers().is_empty(), "a deploy ran without the lease");

    let expired = lease(2, now - time::Duration::seconds(1));
    p.repo
        .write_logged("leases/production/0000000002.json", expired);
    assert_code(&p.ledger(&["stage", "deploy", "--sha", &s]), 0);
    let deployment = p.repo.predicate(&format!("infra/{s}/deployment.json"));
    assert_eq!(deployment["lease"]["takeover"], true, "{deployment}");
}

/// Runs the two `ledger` command lines at once in `p`'s repository; both must pass.
/// Returns the two deployments of `s` they recorded, the one whose lease was taken
/// first first, after asserting that the later took the lease only once the earlier
/// had finished, and that one container runs.
fn run_together(p: &Project, s: &str, a: &[&str], b: &[&str]) -> (Value, Value) {
    let dir = p.repo.path().to_path_buf();
    let spawn = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_ledger"))
            .args(args)
            .current_dir(&dir)
            .env_remove("LEDGER_STORE")
            .env_remove("LEDGER_SIGNING_KEY")
            .output()
            .unwrap()
    };
    let (out_a, out_b) = std::thread::scope(|scope| {
        let first = scope.spawn(|| spawn(a));
        let second = scope.spawn(|| spawn(b));
        (first.join().unwrap(), second.join().unwrap())
    });
    assert_code(&out_a, 0);
    assert_code(&out_b, 0);
    let first = p.repo.predicate(&format!("infra/{s}/deployment.json"));
    let second = p
        .repo
        .predicate(&format!("infra/{s}/deployment.attempt-2.json"));
    let (l1, l2) = (&first["lease"], &second["lease"]);
    let (earlier, later) = if l1["acquired_at"].as_str() < l2["acquired_at"].as_str() {
        (first, second)
    } else {
        (second, first)
    };
    // The later deploy acquired the lease only after the earlier one had finished.
    assert!(
        later["lease"]["acquired_at"].as_str().unwrap() >= earlier["finished_at"].as_str().unwrap(),
        "{earlier}\n{later}"
    );
    assert_eq!(later["previous_release"], s);
    assert_eq!(p.containers().into_iter().filter(|c| c.running).count(), 1);
    (earlier, later)
}

#[test]
fn concurrent_deploys_to_one_environment_are_serialized() {
    let Some(_) = engine() else { return };
    let p = Project::new(None);
    let s = p.sha(7);
    p.run_through(&s, "publish");
    let deploy = ["stage", "deploy", "--sha", &s, "--lease-wait", "120"];
    let (earlier, _) = run_together(&p, &s, &deploy, &deploy);
    // The lease lasts the environment's configured `lease_ttl_seconds`.
    let at = |v: &Value| {
        time::OffsetDateTime::parse(
            v.as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    };
    let lease = &earlier["lease"];
    let ttl = at(&lease["expires_at"]) - at(&lease["acquired_at"]);
    assert_eq!(ttl.whole_seconds(), 600, "{lease}");
}

/// A replay takes the environment's lease like a deploy: run beside one, the two
/// never overlap.
#[test]
fn a_replay_beside_a_deploy_to_one_environment_is_serialized() {
    let Some(_) = engine() else { return };
    let p = Project::new(None);
    let s = p.sha(13);
    p.run_through(&s, "publish");
    let deploy = ["stage", "deploy", "--sha", &s, "--lease-wait", "120"];
    let replay = ["replay", &s, "--current-config", "--lease-wait", "120"];
    let (earlier, later) = run_together(&p, &s, &deploy, &replay);
    let replays = [&earlier, &later]
        .iter()
        .filter(|d| d["replay"] == true)
        .count();
    assert_eq!(replays, 1, "{earlier}\n{later}");
}

#[test]
fn a_deploy_that_fails_health_restores_the_previous_release() {
    let Some(_) = engine() else { return };
    let p = Project::new(None);
    let (good, bad) = (p.sha(8), p.sha(9));
    p.run_through(&good, "deploy");
    // The next release starts unhealthy.
    p.configure(", UNHEALTHY = \"1\"");
    p.run_through(&bad, "publish");
    let out = p.ledger(&["stage", "deploy", "--sha", &bad]);
    assert_code(&out, 1);
    let d = p.repo.predicate(&format!("infra/{bad}/deployment.json"));
    assert_eq!(d["result"], "fail");
    assert_eq!(d["failure"]["restored"], true);
    assert_eq!(d["previous_release"], good.as_str());
    // The message says when it gave up and what the timeout was, not one for the other.
    let why = d["failure"]["message"].as_str().unwrap();
    assert!(why.contains("was not healthy after"), "{why}");
    assert!(why.contains("(health timeout 20 s)"), "{why}");
    let running: Vec<_> = p.containers().into_iter().filter(|c| c.running).collect();
    assert_eq!(running.len(), 1);
    assert_eq!(running[0].labels["dev.ledger.sha"], good);
    // The restored container is started, not waited for: give it a moment to listen.
    let serves = (0..40).any(|_| {
        let ok = p.get("/health").is_some_and(|r| r.contains("200"));
        if !ok {
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
        ok
    });
    assert!(serves, "the previous release serves again");
    // Smoke of the failed SHA is denied by its gate; the chain still verifies.
    assert_code(&p.ledger(&["stage", "smoke", "--sha", &bad]), 3);
    assert_code(&p.ledger(&["verify", &bad]), 0);
}

#[test]
fn a_failing_smoke_check_is_recorded_and_the_release_rejected() {
    let Some(_) = engine() else { return };
    let p = Project::new(None);
    let s = p.sha(10);
    p.run_through(&s, "deploy");
    // Point the check at a path the service does not serve.
    let toml = std::fs::read_to_string(p.repo.path().join("ledger.toml")).unwrap();
    std::fs::write(
        p.repo.path().join("ledger.toml"),
        toml.replace("/health\"", "/missing\"\n  retries = 2"),
    )
    .unwrap();
    let toml = std::fs::read_to_string(p.repo.path().join("ledger.toml")).unwrap();
    std::fs::write(
        p.repo.path().join("ledger.toml"),
        toml.replace("  retries = 40\n", ""),
    )
    .unwrap();
    assert_code(&p.ledger(&["stage", "smoke", "--sha", &s]), 1);
    let smoke = p.repo.predicate(&format!("deploy/{s}/api-smoke.json"));
    assert_eq!(smoke["result"], "fail");
    assert_eq!(smoke["checks"][0]["status"], 404);
    assert_code(&p.ledger(&["stage", "decide", "--sha", &s]), 1);
    assert_eq!(
        p.repo.predicate(&format!("release/{s}/decision.json"))["decision"],
        "reject"
    );
    if let Some(browser) = crate::report::chromium() {
        let page = crate::report::layout(&browser, &p.repo, &s, 0);
        assert_eq!(
            page.banner,
            "Status: blocked (release rejected by the decision)"
        );
        assert_eq!(page.banner_class, "verdict bad");
        page.assert_readable(8.0);
        page.assert_results_coloured();
        // The timeline reads in the order things happened.
        let order: Vec<&str> = page
            .timeline
            .iter()
            .map(|l| l.split(' ').next().unwrap())
            .filter(|l| *l != "timing")
            .collect();
        let stages: Vec<&str> = ledger_core::Stage::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(order, stages);
    }
}

#[test]
fn an_unreachable_engine_or_registry_is_exit_5_and_writes_nothing() {
    let Some(_) = engine() else { return };
    let p = Project::new(None);
    let s = p.sha(11);
    p.run_through(&s, "integration");
    let out = p.repo.ledger_env(
        &["stage", "build", "--sha", &s],
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
    );
    assert_code(&out, 5);
    assert!(
        text(&out).contains("/nonexistent/docker.sock"),
        "{}",
        text(&out)
    );
    assert!(!p.repo.object(&format!("build/{s}/build.json")).exists());

    let q = Project::new(Some(format!("127.0.0.1:{}", free_port())));
    let s = q.sha(11);
    q.run_through(&s, "integration");
    let out = q.ledger(&["stage", "build", "--sha", &s]);
    assert_code(&out, 5);
    assert!(text(&out).contains("pushing"), "{}", text(&out));
    assert!(!q.repo.object(&format!("build/{s}/build.json")).exists());
}

#[test]
fn docker_half_evidence_verifies_with_securesystemslib() {
    let Some(_) = engine() else { return };
    if std::env::var_os("LEDGER_SKIP_INTEROP").is_some() {
        return;
    }
    let p = Project::new(None);
    let s = p.sha(12);
    p.run_through(&s, "decide");
    // The auditor's independent verifier (docs/audit) accepts the whole real chain.
    let out = crate::interop::audit_chain(&p.repo, &s).unwrap();
    assert_code(&out, 0);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("8 of 8 artifact(s) verified"),
        "{}",
        text(&out)
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/sslib_interop.py");
    for key in [
        format!("build/{s}/build.json"),
        format!("release-candidate/{s}/manifest.json"),
    ] {
        let out = Command::new("python3")
            .arg(&script)
            .arg("verify")
            .arg(p.repo.object(&key))
            .arg(p.repo.path().join(".ledger/release.pub"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{key}: {}", text(&out));
    }
}

#[test]
fn status_drift_compares_the_evidence_with_what_the_engine_runs() {
    let Some(engine) = engine() else { return };
    let p = Project::new(None);
    let s = p.sha(60);
    p.run_through(&s, "deploy");
    let drift = |code: i32| -> Value {
        let out = p.ledger(&["status", "--drift", "--json"]);
        assert_code(&out, code);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        crate::read::assert_output_schema("status", &v);
        v
    };
    let v = drift(0);
    let prod = &v["drift"][0];
    assert_eq!(prod["environment"], "production");
    assert_eq!(prod["recorded_sha"], s.as_str());
    assert_eq!(prod["findings"], json!([]));
    assert_eq!(prod["observed"][0]["sha"], s.as_str());

    // Stopped behind ledger's back: the record says it runs, the engine disagrees.
    let running = p.containers().into_iter().find(|c| c.running).unwrap();
    runtime().block_on(engine.stop(&running.id)).unwrap();
    let v = drift(4);
    let findings = v["drift"][0]["findings"].to_string();
    assert!(findings.contains("runs no container"), "{findings}");

    // Started by hand with the project's labels but another SHA and no evidence.
    runtime().block_on(engine.start(&running.id)).unwrap();
    let other = p.sha(61);
    p.start_by_hand(&running.image_id, "rogue", &other);
    let out = p.ledger(&["status", "--drift"]);
    assert_code(&out, 4);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("runs SHA {other}, the evidence records {s}")),
        "{stdout}"
    );
    assert!(stdout.contains("(no evidence label)"), "{stdout}");
    assert_eq!(stdout.matches("DRIFT production").count(), 2, "{stdout}");
}
