//! Production on the second engine: promoted to, smoked, decided, compared by
//! `status --drift`, replayed and checked by `doctor`, each on its own engine.

use super::{configure_two_engines, remote, Remote, TlsEngine};
use crate::auth_registry::{contains, files_under};
use crate::project::{engine, free_port, Project};
use crate::{assert_code, text};
use serde_json::{json, Value};

#[test]
fn production_on_a_tls_engine_of_its_own_is_promoted_to_smoked_replayed_and_compared() {
    let Some(r) = remote(true) else {
        return;
    };
    let Remote { t, p } = &r;
    configure_two_engines(p, t, free_port(), &t.certs);
    p.repo.edit_policy(|policy| {
        policy["environments"] = json!({
            "production": { "promotion": { "from": "canary", "min_soak_seconds": 0 } }
        })
    });
    let s = p.sha(1);
    p.run_through(&s, "publish");
    for stage in ["deploy", "smoke"] {
        assert_code(
            &p.ledger(&["stage", stage, "--sha", &s, "--env", "canary"]),
            0,
        );
    }
    assert!(
        t.running(&p.name).is_empty(),
        "canary runs on the runner's engine only"
    );
    let promoted = p.repo.ledger_env(
        &["promote", &s, "--to", "production"],
        &[("RUST_LOG", "debug")],
    );
    assert_code(&promoted, 0);
    assert_production_runs_the_digest_on_its_engine_only(p, t, &s);
    for args in [
        &["stage", "smoke", "--sha", &s, "--env", "production"][..],
        &["stage", "decide", "--sha", &s],
    ] {
        assert_code(&p.ledger(args), 0);
    }
    assert_drift_is_read_on_each_environments_engine(p, t);

    // A replay of production runs on production's engine again.
    let out = p.ledger(&["replay", &s, "--env", "production", "--current-config"]);
    assert_code(&out, 0);
    let remote = t.running(&p.name);
    assert_eq!(remote.len(), 1, "{remote:?}");
    let replayed = p
        .repo
        .predicate(&format!("infra/{s}/deployment.attempt-2.json"));
    assert_eq!(replayed["engine"], t.endpoint.as_str());
    assert_eq!(replayed["replay"], true);
    assert_code(&p.ledger(&["verify", &s]), 0);
    assert_doctor_checks_every_engine(p, t);
    let mut printed = promoted.stdout.clone();
    printed.extend_from_slice(&promoted.stderr);
    printed.extend_from_slice(&out.stderr);
    assert_client_key_nowhere(p, t, &printed);
}

/// No line of the client key the engine was reached with is in any stored byte (the
/// store, `.ledger/`, the repository) or in what `ledger` printed at debug level.
fn assert_client_key_nowhere(p: &Project, t: &TlsEngine, printed: &[u8]) {
    let key = std::fs::read_to_string(t.certs.join("key.pem")).unwrap();
    let lines: Vec<&str> = key
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 16)
        .collect();
    assert!(!lines.is_empty(), "the key has a body");
    let mut files = Vec::new();
    files_under(p.repo.path(), &mut files);
    for line in &lines {
        assert!(!contains(printed, line), "the client key was printed");
        for f in &files {
            let bytes = std::fs::read(f).unwrap();
            assert!(
                !contains(&bytes, line),
                "the client key is in {}",
                f.display()
            );
        }
    }
}

/// Promotion deployed the same digest on the production engine, pulled there from
/// the registry; the runner's engine still runs canary only; the evidence names
/// each deployment's engine.
fn assert_production_runs_the_digest_on_its_engine_only(p: &Project, t: &TlsEngine, s: &str) {
    let remote = t.running(&p.name);
    assert_eq!(remote.len(), 1, "{remote:?}");
    assert_eq!(remote[0].1, "production");
    let local: Vec<String> = p
        .containers()
        .into_iter()
        .filter(|c| c.running)
        .map(|c| c.labels["dev.ledger.environment"].clone())
        .collect();
    assert_eq!(local, ["canary"]);
    let manifest = p
        .repo
        .predicate(&format!("release-candidate/{s}/manifest.json"));
    let digest = manifest["images"]["api"]["digest"].as_str().unwrap();
    let image = t.docker(&["inspect", "--format", "{{.Image}}", &remote[0].0]);
    let digests = t.docker(&[
        "image",
        "inspect",
        "--format",
        "{{json .RepoDigests}}",
        &image,
    ]);
    assert!(digests.contains(digest), "{digests} runs {digest}");
    assert!(
        p.get("/health").is_some_and(|r| r.contains("ok")),
        "production answers"
    );
    let production = p.repo.predicate(&format!("infra/{s}/deployment.json"));
    assert_eq!(production["engine"], t.endpoint.as_str());
    let canary = p
        .repo
        .predicate(&format!("infra/{s}/deployment.canary.json"));
    assert_ne!(canary["engine"], t.endpoint.as_str());
    assert!(canary["engine"]
        .as_str()
        .is_some_and(|e| e.starts_with("unix://") || e.starts_with("tcp://")));
}

/// `doctor` checks each environment's engine, and takes the runner's own engine
/// from DOCKER_HOST with TLS set the Docker CLI's way.
fn assert_doctor_checks_every_engine(p: &Project, t: &TlsEngine) {
    let out = p.ledger(&["doctor"]);
    let env_engine = format!("ok   env engine     `production`: {} answers", t.endpoint);
    assert!(text(&out).contains(&env_engine), "{}", text(&out));
    let certs = t.certs.display().to_string();
    let out = p.repo.ledger_env(
        &["doctor"],
        &[
            ("DOCKER_HOST", &t.endpoint),
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CERT_PATH", &certs),
        ],
    );
    let default = format!("ok   docker engine  {} answers", t.endpoint);
    assert!(text(&out).contains(&default), "{}", text(&out));
}

/// `status --drift` compares each environment on its own engine: none at first; a
/// container labelled production on the runner's engine is a finding naming both
/// engines; removed, none again.
fn assert_drift_is_read_on_each_environments_engine(p: &Project, t: &TlsEngine) {
    let out = p.ledger(&["status", "--drift", "--json"]);
    assert_code(&out, 0);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let drift = report["drift"].as_array().unwrap();
    let envs: Vec<&str> = drift
        .iter()
        .map(|d| d["environment"].as_str().unwrap())
        .collect();
    assert_eq!(envs, ["canary", "production"]);
    for d in drift {
        assert_eq!(d["findings"], json!([]), "{d}");
        assert_eq!(d["observed"].as_array().unwrap().len(), 1, "{d}");
    }

    let image_id = p.containers()[0].image_id.clone();
    let sha = p.sha(1);
    let stray = p.start_by_hand(&image_id, "stray", &sha);
    let out = p.ledger(&["status", "--drift"]);
    assert_code(&out, 4);
    let shown = text(&out);
    assert!(
        shown.contains("labelled `production` runs on engine")
            && shown.contains(&format!("not the environment's engine {}", t.endpoint)),
        "{shown}"
    );
    crate::project::runtime()
        .block_on(engine().unwrap().remove(&stray))
        .unwrap();
    assert_code(&p.ledger(&["status", "--drift"]), 0);
}
