//! HTTPS smoke checks against a real TLS server with a CA of its own (the
//! authenticated registry), and ports published on the environment's address.

use super::write_config;
use crate::project::{engine, environment_toml, registry, Project};
use crate::{assert_code, text};
use std::process::Command;

/// The authenticated registry `.ci/run` started: a real HTTPS server with a CA of
/// its own, whose API root answers 401 to a client without a login.
fn tls_server() -> Option<(String, String)> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let found = var("LEDGER_TEST_AUTH_REGISTRY").zip(var("LEDGER_TEST_AUTH_REGISTRY_CA"));
    assert!(
        found.is_some() || std::env::var_os("LEDGER_REQUIRE_DOCKER").is_none(),
        "LEDGER_REQUIRE_DOCKER is set but LEDGER_TEST_AUTH_REGISTRY(_CA) is not"
    );
    found
}

/// Writes production with its port on 127.0.0.2, the health check there, a check
/// of `https://HOST/v2/` expecting 401, and `extra` lines.
fn configure(p: &Project, tls_host: &str, extra: &str) {
    let https_check = format!(
        "  [[environments.checks]]\n  name = \"tls\"\n  url = \"https://{tls_host}/v2/\"\n  expect_status = 401\n  retries = 1\n"
    );
    write_config(
        p,
        &[environment_toml(
            "production",
            p.port,
            "127.0.0.2",
            &format!("publish_address = \"127.0.0.2\"\n{extra}"),
            &https_check,
        )],
    );
}

#[test]
fn https_checks_trust_the_environments_ca_and_ports_bind_to_its_address() {
    let Some(_) = engine() else { return };
    let Some(registry) = registry() else { return };
    let Some((tls_host, ca)) = tls_server() else {
        return;
    };
    let p = Project::new(Some(registry));
    configure(&p, &tls_host, "");
    let s = p.sha(4);
    p.run_through(&s, "deploy");
    let c = &p.containers()[0];
    let format = "{{json .HostConfig.PortBindings}}";
    let bound = Command::new("docker")
        .args(["inspect", "--format", format, &c.id])
        .output()
        .unwrap();
    let bound = String::from_utf8_lossy(&bound.stdout).to_string();
    assert!(bound.contains("\"HostIp\":\"127.0.0.2\""), "{bound}");
    let deployment = p.repo.predicate(&format!("infra/{s}/deployment.json"));
    assert_eq!(
        deployment["containers"][0]["ports"][0]["address"],
        "127.0.0.2"
    );

    // Without the CA the check fails on the certificate, and the smoke with it.
    let out = p.ledger(&["stage", "smoke", "--sha", &s]);
    assert_code(&out, 1);
    let smoke = p.repo.predicate(&format!("deploy/{s}/api-smoke.json"));
    let checks = smoke["checks"].as_array().unwrap();
    assert_eq!(
        checks[0]["ok"], true,
        "the health check at 127.0.0.2 passed"
    );
    assert_eq!(checks[1]["ok"], false);
    let error = checks[1]["error"].as_str().unwrap_or_default();
    assert!(error.to_lowercase().contains("certificate"), "{error}");

    // A CA file that is not there: exit 2 naming the setting, nothing recorded.
    configure(&p, &tls_host, "checks_ca = \"missing/ca.pem\"");
    let out = p.ledger(&["stage", "smoke", "--sha", &s]);
    assert_code(&out, 2);
    let shown = text(&out);
    assert!(
        shown.contains("/environments/production/checks_ca"),
        "{shown}"
    );
    let stored = p.repo.stored();
    assert!(!stored.iter().any(|k| k.contains("api-smoke.attempt-2")));

    // With the registry's CA, both checks pass.
    configure(&p, &tls_host, &format!("checks_ca = \"{ca}\""));
    assert_code(&p.ledger(&["stage", "smoke", "--sha", &s]), 0);
    let smoke = p
        .repo
        .predicate(&format!("deploy/{s}/api-smoke.attempt-2.json"));
    assert_eq!(smoke["checks"][1]["ok"], true, "{smoke}");
    assert_eq!(smoke["checks"][1]["status"], 401);
}
