//! Environments against the real engine: canary then production, `ledger promote`
//! denied for every rule that fails and allowed otherwise (the same digests in both
//! environments, nothing rebuilt), direct production deploys refused when the policy
//! says production is entered by promotion, approved runners, the environment
//! contract, and the labels on every container.

use crate::project::{engine, environment_toml, free_port, Project};
use crate::{assert_code, text};
use serde_json::{json, Value};

/// Writes a two-environment ledger.toml: canary on its own port with its health
/// check at `canary_check`, production on the project's port requiring `required`.
fn configure(p: &Project, canary_port: u16, canary_check: &str, required: &[&str]) {
    let required: Vec<String> = required.iter().map(|r| format!("\"{r}\"")).collect();
    let env = |name: &str, port: u16, check: &str, extra: &str| {
        environment_toml(name, port, "127.0.0.1", extra, "")
            .replace("/health\"", &format!("{check}\""))
    };
    let text = format!(
        "repository = \"{}\"\nsource = \"https://example.invalid/ledger-it\"\n\n[[images]]\nname = \"api\"\ncontext = \"service\"\n{}{}",
        p.name,
        env("canary", canary_port, canary_check, ""),
        env(
            "production",
            p.port,
            "/health",
            &format!("required_env = [{}]", required.join(", "))
        ),
    );
    std::fs::write(p.repo.path().join("ledger.toml"), text).unwrap();
}

fn promotion_policy(p: &Project, min_soak_seconds: u64) {
    p.repo.edit_policy(|policy| {
        policy["environments"] = json!({
            "production": {
                "approved_runners": ["prod-runner"],
                "promotion": { "from": "canary", "min_soak_seconds": min_soak_seconds }
            }
        })
    });
}

const APPROVED: (&str, &str) = ("LEDGER_RUNNER_LABELS", "prod-runner");

fn promote(p: &Project, sha: &str, env: &[(&str, &str)]) -> std::process::Output {
    p.repo
        .ledger_env(&["promote", sha, "--to", "production"], env)
}

fn running_in(p: &Project, env: &str) -> Vec<ledger_docker::ContainerInfo> {
    p.containers()
        .into_iter()
        .filter(|c| {
            c.running && c.labels.get("dev.ledger.environment").map(String::as_str) == Some(env)
        })
        .collect()
}

/// Asserts `out` is a denial (exit 3) whose text names `reason`.
fn assert_denied(out: &std::process::Output, reason: &str) {
    assert_code(out, 3);
    assert!(text(out).contains(reason), "{}", text(out));
}

/// Before canary: promotion finds no canary evidence, and production cannot be
/// deployed to directly.
fn assert_denied_before_canary(p: &Project, s: &str) {
    // Never reached canary.
    assert_denied(&promote(p, s, &[APPROVED]), "never reached `canary`");
    // Production cannot be deployed to directly.
    let out = p.repo.ledger_env(
        &["stage", "deploy", "--sha", s, "--env", "production"],
        &[APPROVED],
    );
    assert_denied(&out, "only by promotion from `canary`");
}

/// Canary deployed with a failing smoke, then a passing one that has not soaked:
/// promotion is denied for each. Leaves the policy's soak time at zero.
fn assert_denied_until_canary_passes_and_soaks(p: &Project, canary_port: u16, s: &str) {
    // Canary deployed, but its smoke fails (the check path is wrong).
    assert_code(
        &p.repo
            .ledger(&["stage", "deploy", "--sha", s, "--env", "canary"]),
        0,
    );
    assert_code(
        &p.repo
            .ledger(&["stage", "smoke", "--sha", s, "--env", "canary"]),
        1,
    );
    assert_denied(
        &promote(p, s, &[APPROVED]),
        "latest smoke in `canary` (attempt 1) failed",
    );

    // Smoke passes now, but the soak time has not passed.
    configure(p, canary_port, "/health", &[]);
    assert_code(
        &p.repo
            .ledger(&["stage", "smoke", "--sha", s, "--env", "canary"]),
        0,
    );
    promotion_policy(p, 3600);
    assert_denied(&promote(p, s, &[APPROVED]), "soaked in `canary` for");
    promotion_policy(p, 0);
}

/// From a runner the policy does not approve for production; nothing runs there.
fn assert_denied_from_an_unapproved_runner(p: &Project, s: &str) {
    let host = ledger_pipeline::ci::host_name();
    assert_denied(
        &promote(p, s, &[]),
        &format!("runner {host} is not approved for environment `production`"),
    );
    assert!(
        running_in(p, "production").is_empty(),
        "a denied promotion touched production"
    );
}

/// `approved_runners` holds for every command that acts on production, not only for
/// `promote`: its smoke, a replay and a rollback from an unapproved runner are each
/// denied naming the runner, and what runs there stays.
fn assert_unapproved_runners_touch_nothing_in_production(p: &Project, s: &str) {
    let host = ledger_pipeline::ci::host_name();
    let unapproved = format!("runner {host} is not approved for environment `production`");
    let before: Vec<String> = running_in(p, "production")
        .into_iter()
        .map(|c| c.id)
        .collect();
    let before_store = p.repo.stored();
    for args in [
        &["stage", "smoke", "--sha", s, "--env", "production"][..],
        &["replay", s, "--env", "production", "--current-config"],
        &[
            "rollback",
            "--to",
            s,
            "--env",
            "production",
            "--current-config",
        ],
    ] {
        let out = p.repo.ledger(args);
        assert_denied(&out, &unapproved);
    }
    let after: Vec<String> = running_in(p, "production")
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(before, after, "an unapproved runner changed production");
    assert_eq!(
        p.repo.stored(),
        before_store,
        "an unapproved runner wrote evidence"
    );
}

/// The production deployment names the canary evidence it was promoted on, as its
/// promotion record and as hash-linked inputs, and the approved runner.
fn assert_the_deployment_records_the_promotion(p: &Project, s: &str) {
    let deployment = p.repo.predicate(&format!("infra/{s}/deployment.json"));
    assert_eq!(deployment["promotion"]["from"], "canary");
    let canary_smoke = format!("deploy/{s}/api-smoke.canary.attempt-2.json");
    assert_eq!(
        deployment["promotion"]["smoke"]["key"],
        canary_smoke.as_str()
    );
    let inputs: Vec<&str> = deployment["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap())
        .collect();
    assert!(
        inputs.contains(&canary_smoke.as_str())
            && inputs.contains(&format!("infra/{s}/deployment.canary.json").as_str()),
        "{inputs:?}"
    );
    assert!(deployment["runner"]["labels"]
        .as_array()
        .unwrap()
        .contains(&json!("prod-runner")));
}

/// Every rule holds: the same digests run in production, nothing was rebuilt, and
/// labels answer "what is this and why is it running" on both.
fn promote_and_assert_the_same_digests_run(p: &Project, s: &str) {
    let out = promote(p, s, &[APPROVED]);
    assert_code(&out, 0);
    let (canary, production) = (running_in(p, "canary"), running_in(p, "production"));
    assert_eq!((canary.len(), production.len()), (1, 1));
    assert_eq!(canary[0].image_id, production[0].image_id);
    let builds: Vec<String> = p
        .repo
        .stored()
        .into_iter()
        .filter(|k| k.starts_with("build/"))
        .collect();
    // One build and its provenance: promotion built nothing.
    assert_eq!(
        builds,
        [
            format!("build/{s}/build.json"),
            format!("build/{s}/build.provenance.json")
        ]
    );
    assert_the_deployment_records_the_promotion(p, s);

    // Labels answer "what is this and why is it running" on both.
    for (c, env, evidence) in [
        (
            &canary[0],
            "canary",
            format!("infra/{s}/deployment.canary.json"),
        ),
        (
            &production[0],
            "production",
            format!("infra/{s}/deployment.json"),
        ),
    ] {
        assert_eq!(c.labels["dev.ledger.sha"], s);
        assert_eq!(c.labels["dev.ledger.environment"], env);
        assert_eq!(c.labels["dev.ledger.attempt"], "1");
        assert_eq!(c.labels["dev.ledger.evidence"], evidence);
    }
}

#[test]
fn promotion_is_denied_until_every_rule_holds_then_runs_the_same_digests() {
    let Some(_) = engine() else { return };
    let p = Project::new(None);
    let canary_port = free_port();
    configure(&p, canary_port, "/missing", &[]);
    promotion_policy(&p, 0);
    let s = p.sha(70);
    p.run_through(&s, "publish");

    assert_denied_before_canary(&p, &s);
    assert_denied_until_canary_passes_and_soaks(&p, canary_port, &s);
    assert_denied_from_an_unapproved_runner(&p, &s);
    promote_and_assert_the_same_digests_run(&p, &s);
    assert_unapproved_runners_touch_nothing_in_production(&p, &s);

    // Production smoke and the decision follow; the chain verifies.
    assert_code(
        &p.repo.ledger_env(
            &["stage", "smoke", "--sha", &s, "--env", "production"],
            &[APPROVED],
        ),
        0,
    );
    assert_code(&p.repo.ledger(&["stage", "decide", "--sha", &s]), 0);
    assert_code(&p.repo.ledger(&["verify", &s]), 0);
}

#[test]
fn a_missing_required_variable_is_exit_2_before_the_engine_and_values_stay_out() {
    let Some(_) = engine() else { return };
    let p = Project::new(None);
    configure(
        &p,
        free_port(),
        "/health",
        &["PAYMENT_TOKEN", "REGION", "AUDIT_ID"],
    );
    let s = p.sha(71);
    p.run_through(&s, "publish");
    let before = p.repo.stored();
    // Two unset and one set but empty: all three named, by `stage deploy` and by
    // `promote` alike, before the engine is touched.
    for args in [
        &["stage", "deploy", "--sha", &s, "--env", "production"][..],
        &["promote", &s, "--to", "production"],
    ] {
        let out = p.repo.ledger_env(args, &[("REGION", "")]);
        assert_code(&out, 2);
        for name in ["PAYMENT_TOKEN", "REGION", "AUDIT_ID"] {
            assert!(text(&out).contains(name), "{args:?}: {}", text(&out));
        }
    }
    let out = p.repo.ledger_env(
        &["stage", "deploy", "--sha", &s, "--env", "production"],
        &[("REGION", "eu"), ("AUDIT_ID", "7")],
    );
    assert_code(&out, 2);
    assert!(text(&out).contains("PAYMENT_TOKEN"), "{}", text(&out));
    assert!(
        !text(&out).contains("REGION") && !text(&out).contains("AUDIT_ID"),
        "a set variable was reported missing: {}",
        text(&out)
    );
    assert!(p.containers().is_empty(), "the engine was touched");
    let written: Vec<String> = p
        .repo
        .stored()
        .into_iter()
        .filter(|k| !before.contains(k))
        .collect();
    assert!(written.is_empty(), "{written:?}");

    let secret = "pay-7d1f0c2e9b8a4f35-secret";
    let out = p.repo.ledger_env(
        &["stage", "deploy", "--sha", &s, "--env", "production"],
        &[
            ("REGION", "eu"),
            ("AUDIT_ID", "7"),
            ("PAYMENT_TOKEN", secret),
        ],
    );
    assert_code(&out, 0);
    assert!(!text(&out).contains(secret));
    for key in p.repo.stored() {
        let bytes = p.repo.read_object(&key);
        assert!(
            !String::from_utf8_lossy(&bytes).contains(secret),
            "{key} holds the value"
        );
    }
    let v: Value = serde_json::from_slice(&p.repo.ledger(&["show", &s, "--json"]).stdout).unwrap();
    assert!(!v.to_string().contains(secret));
}

/// The latest canary smoke failed and an attacker with write access to the store
/// deletes it, so the listing's newest attempt is the earlier one that passed:
/// promotion takes the latest attempt the log names, finds it missing and refuses.
#[test]
fn promotion_is_refused_when_the_latest_canary_smoke_is_hidden() {
    let Some(_) = engine() else { return };
    let p = Project::new(None);
    let canary_port = free_port();
    configure(&p, canary_port, "/health", &[]);
    promotion_policy(&p, 0);
    let s = p.sha(72);
    p.run_through(&s, "publish");
    let stage = |name: &str, code: i32| {
        let args = ["stage", name, "--sha", &s, "--env", "canary"];
        assert_code(&p.repo.ledger(&args), code);
    };
    stage("deploy", 0);
    stage("smoke", 0);
    configure(&p, canary_port, "/missing", &[]);
    stage("smoke", 1);
    let hidden: Vec<String> = p
        .repo
        .stored()
        .into_iter()
        .filter(|k| k.contains("smoke.canary.attempt-2"))
        .collect();
    assert!(!hidden.is_empty(), "{:?}", p.repo.stored());
    for key in &hidden {
        p.repo.delete_object(key);
    }
    configure(&p, canary_port, "/health", &[]);
    let out = promote(&p, &s, &[APPROVED]);
    assert_denied(&out, "attempt-2");
    assert!(
        running_in(&p, "production").is_empty(),
        "a refused promotion touched production"
    );
}

/// What canary proved must be what production gets: a canary redeployed since its
/// last smoke, then a release candidate published again (another manifest) since
/// canary ran, are each refused with production untouched; once canary runs and
/// smokes the new manifest, the promotion goes through.
#[test]
fn promotion_is_refused_for_an_unsmoked_redeploy_or_another_manifest() {
    let Some(_) = engine() else { return };
    let p = Project::new(None);
    configure(&p, free_port(), "/health", &[]);
    promotion_policy(&p, 0);
    let s = p.sha(73);
    p.run_through(&s, "publish");
    let run = |args: &[&str]| assert_code(&p.repo.ledger(args), 0);
    let canary = |stage: &str| run(&["stage", stage, "--sha", &s, "--env", "canary"]);
    let refused = |reason: &str| {
        assert_denied(&promote(&p, &s, &[APPROVED]), reason);
        assert!(
            running_in(&p, "production").is_empty(),
            "a refused promotion touched production"
        );
    };
    canary("deploy");
    canary("smoke");
    canary("deploy");
    refused("smoke it again first");
    canary("smoke");
    run(&["stage", "publish", "--sha", &s]);
    refused("ran another manifest");
    canary("deploy");
    canary("smoke");
    assert_code(&promote(&p, &s, &[APPROVED]), 0);
    assert!(!running_in(&p, "production").is_empty());
}

/// Without a `promotion` rule in the policy, `promote` takes the environment before
/// the target in `ledger.toml` as where the release must have passed (canary here),
/// asks no soak time, and direct deploys to production stay allowed.
#[test]
fn without_a_promotion_rule_promote_uses_the_environment_before_and_no_soak() {
    let Some(_) = engine() else { return };
    let p = Project::new(None);
    configure(&p, free_port(), "/health", &[]);
    let s = p.sha(74);
    p.run_through(&s, "publish");
    assert_denied(&promote(&p, &s, &[]), "never reached `canary`");
    for stage in ["deploy", "smoke"] {
        let args = ["stage", stage, "--sha", &s, "--env", "canary"];
        assert_code(&p.repo.ledger(&args), 0);
    }
    assert_code(&promote(&p, &s, &[]), 0);
    assert!(!running_in(&p, "production").is_empty());
    let direct = ["stage", "deploy", "--sha", &s, "--env", "production"];
    assert_code(&p.repo.ledger(&direct), 0);
}
