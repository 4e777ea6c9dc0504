//! `target = "swarm"` on the second engine (a single-node swarm manager), with two
//! images, one of them on two replicas: the first deploy creates one service per
//! image, the next updates each in place (same service, higher version, the previous
//! release named); in an update whose second service never gets healthy, the swarm
//! rolls that one back and ledger the one that had converged, and the deploy is
//! recorded as failed with the release before restored; `ledger rollback` moves the
//! services back to a promoted release's digests. Smoke checks reach the tasks
//! through host-mode ports; `status --drift` reads the services (a service scaled
//! to 0 by hand is a finding). On an engine that is no swarm manager, a Swarm
//! environment is refused (exit 2). Against the
//! registry that needs a login, the nodes pull with the credential `ledger` passes
//! along with the service, and it is stored and printed nowhere. A first deploy that
//! never converges leaves no service behind.

use super::{on_engine, remote, tls_engine, write_config, Remote, TlsEngine};
use crate::assert_code;
use crate::auth_registry::{assert_no_secret_anywhere, auth_registry, Runner, Setup};
use crate::project::{engine, environment_toml, Project};
use serde_json::Value;

/// production as a Swarm environment on `t`, two images built from the same
/// context: `api` (one replica, its port, the health check) and `worker` (two
/// replicas, no port); `unhealthy`: the worker fails its health check (the example
/// service's `UNHEALTHY=1`), so that in a deploy the api's update converges first
/// and must be undone.
fn configure(p: &Project, t: &TlsEngine, unhealthy: bool) {
    let extra = format!(
        "{}\ntarget = \"swarm\"\nswarm = {{ update_order = \"stop-first\", update_parallelism = 2, monitor_seconds = 3 }}",
        on_engine(t, &t.certs)
    );
    let worker_env = if unhealthy { ", UNHEALTHY = \"1\"" } else { "" };
    let env = environment_toml("production", p.port, "127.0.0.1", &extra, "").replace(
        "  [[environments.checks]]",
        &format!(
            "  [[environments.services]]\n  image = \"worker\"\n  replicas = 2\n  health_timeout_seconds = 20\n  env = {{ APP_VERSION = \"it\"{worker_env} }}\n  [[environments.checks]]"
        ),
    );
    write_config(p, &[env]);
    let toml = p.repo.path().join("ledger.toml");
    let text = std::fs::read_to_string(&toml).unwrap().replace(
        "[[images]]\nname = \"api\"\ncontext = \"service\"\n",
        "[[images]]\nname = \"api\"\ncontext = \"service\"\n\n[[images]]\nname = \"worker\"\ncontext = \"service\"\n",
    );
    std::fs::write(toml, text).unwrap();
}

/// The project's services on `t`: `(name, image reference, replicas "running/wanted")`.
fn services(t: &TlsEngine, p: &Project) -> Vec<(String, String, String)> {
    let filter = format!("label=dev.ledger.project={}", p.name);
    let format = "{{.Name}} {{.Image}} {{.Replicas}}";
    let mut list: Vec<(String, String, String)> = t
        .docker(&["service", "ls", "--filter", &filter, "--format", format])
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0].to_owned(), f[1].to_owned(), f[2].to_owned())
        })
        .collect();
    list.sort();
    list
}

fn manifest_ref(p: &Project, sha: &str, image: &str) -> String {
    let manifest = p
        .repo
        .predicate(&format!("release-candidate/{sha}/manifest.json"));
    manifest["images"][image]["ref"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Both services run `sha`'s digests on all their replicas, and the api answers.
#[track_caller]
fn assert_runs(t: &TlsEngine, p: &Project, sha: &str) {
    let expected: Vec<(String, String, String)> = [("api", "1/1"), ("worker", "2/2")]
        .iter()
        .map(|(image, replicas)| {
            (
                format!("{}-production-{image}", p.name),
                manifest_ref(p, sha, image),
                (*replicas).to_owned(),
            )
        })
        .collect();
    assert_eq!(services(t, p), expected);
    assert!(
        p.get("/health").is_some_and(|r| r.contains("ok")),
        "the api's task answers on its host-mode port"
    );
}

/// The deployment evidence of a converged Swarm deploy: the service, its version
/// and its running task, whose container runs on the engine with the evidence's
/// labels.
fn assert_recorded(t: &TlsEngine, deployment: &Value, sha: &str) -> (String, u64) {
    let service = &deployment["services"][0];
    assert_eq!(service["image"], "api");
    let task = &service["tasks"][0];
    assert_eq!(task["state"], "running", "{deployment}");
    let worker = &deployment["services"][1];
    assert_eq!(worker["replicas"], 2);
    assert_eq!(
        worker["tasks"].as_array().map(Vec::len),
        Some(2),
        "{deployment}"
    );
    assert_eq!(deployment["containers"].as_array().map(Vec::len), Some(3));
    let container = task["container_id"].as_str().unwrap();
    assert_eq!(deployment["containers"][0]["container_id"], container);
    let label = t.docker(&[
        "inspect",
        "--format",
        "{{index .Config.Labels \"dev.ledger.sha\"}}",
        container,
    ]);
    assert_eq!(label, sha);
    (
        service["service_id"].as_str().unwrap().to_owned(),
        service["version"].as_u64().unwrap(),
    )
}

/// `status --drift` reads the swarm's services: none at first; the api scaled to 0
/// by hand is a finding; scaled back, none again.
fn assert_drift_reads_the_services(t: &TlsEngine, p: &Project) {
    assert_code(&p.ledger(&["status", "--drift"]), 0);
    let api = format!("{}-production-api", p.name);
    t.docker(&["service", "scale", "--detach=false", &format!("{api}=0")]);
    let out = p.ledger(&["status", "--drift"]);
    assert_code(&out, 4);
    let shown = crate::text(&out);
    assert!(
        shown.contains(&format!("service {api} is scaled to 0 replicas")),
        "{shown}"
    );
    t.docker(&["service", "scale", "--detach=false", &format!("{api}=1")]);
    assert_code(&p.ledger(&["status", "--drift"]), 0);
}

#[test]
fn a_swarm_environment_is_created_updated_rolled_back_by_the_swarm_and_by_ledger() {
    let Some(r) = remote(true) else {
        return;
    };
    let Remote { t, p } = &r;
    let manager = t.docker(&["info", "--format", "{{.Swarm.ControlAvailable}}"]);
    assert_eq!(
        manager, "true",
        "the second engine is a swarm manager (.ci/tls-engine.sh)"
    );
    configure(p, t, false);
    let (first, second, bad) = (p.sha(1), p.sha(2), p.sha(3));

    p.run_through(&first, "decide");
    assert_runs(t, p, &first);
    let created = p.repo.predicate(&format!("infra/{first}/deployment.json"));
    let (service_id, created_version) = assert_recorded(t, &created, &first);
    assert_eq!(created["previous_release"], Value::Null);
    assert_drift_reads_the_services(t, p);

    p.run_through(&second, "decide");
    assert_runs(t, p, &second);
    let updated = p.repo.predicate(&format!("infra/{second}/deployment.json"));
    let (same_id, version) = assert_recorded(t, &updated, &second);
    assert_eq!(same_id, service_id, "updated in place, not replaced");
    assert!(version > created_version, "{version} > {created_version}");
    assert_eq!(updated["previous_release"], first.as_str());

    // A release whose worker never gets healthy: the swarm rolls the worker's update
    // back, ledger the api's (which had converged); the deploy fails (exit 1) having
    // restored the release before on both.
    configure(p, t, true);
    p.run_through(&bad, "publish");
    let out = p.ledger(&["stage", "deploy", "--sha", &bad]);
    assert_code(&out, 1);
    let failed = p.repo.predicate(&format!("infra/{bad}/deployment.json"));
    assert_eq!(failed["result"], "fail");
    assert_eq!(failed["failure"]["restored"], true, "{failed}");
    assert_eq!(failed["previous_release"], second.as_str());
    assert_eq!(failed["services"], Value::Null, "{failed}");
    assert_runs(t, p, &second);
    assert_code(&p.ledger(&["status", "--drift"]), 0);

    // `ledger rollback` to the first (promoted) release updates the service again.
    configure(p, t, false);
    let out = p.ledger(&["rollback", "--to", &first, "--current-config"]);
    assert_code(&out, 0);
    assert_runs(t, p, &first);
    for sha in [&first, &second, &bad] {
        assert_code(&p.ledger(&["verify", sha]), 0);
    }
}

#[test]
fn a_swarm_environment_on_an_engine_outside_a_swarm_is_refused() {
    let Some(r) = remote(true) else {
        return;
    };
    let Remote { p, .. } = &r;
    // The runner's own engine, unless it happens to manage a swarm itself.
    let own = std::process::Command::new("docker")
        .args(["info", "--format", "{{.Swarm.ControlAvailable}}"])
        .output()
        .unwrap();
    if String::from_utf8_lossy(&own.stdout).trim() == "true" {
        eprintln!("the runner's engine manages a swarm; nothing to refuse");
        return;
    }
    let env = environment_toml("production", p.port, "127.0.0.1", "target = \"swarm\"", "");
    write_config(p, &[env]);
    let s = p.sha(9);
    p.run_through(&s, "publish");
    let out = p.ledger(&["stage", "deploy", "--sha", &s]);
    assert_code(&out, 2);
    let shown = crate::text(&out);
    assert!(
        shown.contains("is not a manager of an active swarm")
            && shown.contains("docker swarm init"),
        "{shown}"
    );
    assert!(!p.repo.stored().iter().any(|k| k.contains("/deployment")));
}

#[test]
fn swarm_nodes_pull_from_an_authenticated_registry_with_the_login_ledger_passes() {
    let Some(_) = engine() else { return };
    let Some(t) = tls_engine() else { return };
    let Some(r) = auth_registry() else { return };
    let login = Setup::new(&r);
    let fixture = Remote {
        t,
        p: Project::new(Some(r.host.clone())),
    };
    let Remote { t, p } = &fixture;
    configure(p, t, false);
    let ledger = Runner {
        p,
        printed: Default::default(),
    };
    let sha = p.sha(1);
    for stage in ledger_core::Stage::ALL {
        let out = ledger.stage(&login.logged_in, &login.right_ca, stage.as_str(), &sha);
        assert_code(&out, 0);
    }
    // The second engine never logged in anywhere: its tasks pulled with the
    // credential that came with the service.
    assert_runs(t, p, &sha);
    assert_no_secret_anywhere(p, &r, &ledger.printed.borrow());
}

/// A first deploy whose worker never gets healthy: there is no spec before to roll
/// back to, so past the time allowed ledger removes the services it created (the
/// api too, which had converged) and records the failure without a restore.
#[test]
fn a_first_swarm_deploy_that_never_converges_leaves_no_service_behind() {
    let Some(r) = remote(true) else {
        return;
    };
    let Remote { t, p } = &r;
    configure(p, t, true);
    let s = p.sha(5);
    p.run_through(&s, "publish");
    let out = p.ledger(&["stage", "deploy", "--sha", &s]);
    assert_code(&out, 1);
    let failed = p.repo.predicate(&format!("infra/{s}/deployment.json"));
    assert_eq!(failed["failure"]["restored"], false, "{failed}");
    let why = failed["failure"]["message"].as_str().unwrap();
    assert!(why.contains("did not run 2 healthy replica(s)"), "{why}");
    assert_eq!(services(t, p), Vec::<(String, String, String)>::new());
}
