//! `ledger doctor`: the preflight a CI job runs before its first stage. Each check
//! says what it found and, when it fails, what fixes it; the exit code is that of the
//! first failure's class (2 configuration, 5 infrastructure), so a broken runner fails
//! in seconds with a reason instead of halfway through a release.

use crate::args::{DoctorArgs, Global};
use crate::context;
use crate::exit::{Code, Failure, Result};
use crate::read::print_json;
use ledger_core::Stage;
use serde::Serialize;
use std::time::{Duration, SystemTime};

/// The clock may differ from the store's by this much before doctor objects.
const MAX_SKEW: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Ok,
    Failed,
    Skipped,
}

#[derive(Debug, Serialize)]
struct Check {
    name: &'static str,
    status: Status,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<String>,
    /// The exit code this failure maps to.
    #[serde(skip_serializing_if = "Option::is_none")]
    exit_code: Option<u8>,
}

#[derive(Debug, Serialize)]
struct Report {
    ok: bool,
    checks: Vec<Check>,
}

fn ok(name: &'static str, detail: impl Into<String>) -> Check {
    Check {
        name,
        status: Status::Ok,
        detail: detail.into(),
        fix: None,
        exit_code: None,
    }
}

fn skipped(name: &'static str, detail: impl Into<String>) -> Check {
    Check {
        name,
        status: Status::Skipped,
        detail: detail.into(),
        fix: None,
        exit_code: None,
    }
}

fn failed(name: &'static str, f: Failure) -> Check {
    Check {
        name,
        status: Status::Failed,
        detail: f.message,
        fix: f.hint,
        exit_code: Some(f.code as u8),
    }
}

fn failed_with(name: &'static str, code: Code, detail: String, fix: &str) -> Check {
    Check {
        name,
        status: Status::Failed,
        detail,
        fix: Some(fix.to_owned()),
        exit_code: Some(code as u8),
    }
}

pub async fn doctor(global: &Global, args: DoctorArgs) -> Result<Code> {
    let root = context::repo_root()?;
    let mut checks = Vec::new();

    // Policy first: the key check needs it.
    let policy = match context::load_policy(global, &root) {
        Ok((policy, _)) => {
            checks.push(ok(
                "policy",
                format!(
                    "{} valid, {} trusted key(s), digest {}",
                    context::policy_path(global, &root).display(),
                    policy.keys().len(),
                    &policy.digest().to_hex()[..12]
                ),
            ));
            Some(policy)
        }
        Err(f) => {
            checks.push(failed("policy", f));
            None
        }
    };

    checks.push(match context::load_signing_key(args.key.as_deref(), &root) {
        Err(f) => failed("signing key", f),
        Ok(key) => match &policy {
            None => skipped("signing key", format!("key {} loaded; no valid policy to check trust against", key.key_id().short())),
            Some(policy) => {
                let now = time::OffsetDateTime::now_utc();
                let stages: Vec<Stage> = match args.stage {
                    Some(s) => vec![s],
                    None => Stage::ALL.into_iter().filter(|s| policy.may_sign(&key, *s, now)).collect(),
                };
                let trusted: Vec<&str> = stages
                    .iter()
                    .filter(|s| policy.may_sign(&key, **s, now))
                    .map(|s| s.as_str())
                    .collect();
                if trusted.is_empty() || trusted.len() < stages.len() {
                    let wanted = args.stage.map_or("any stage".to_owned(), |s| format!("stage `{s}`"));
                    failed_with(
                        "signing key",
                        Code::BadInput,
                        format!("key {} is not trusted (or is revoked) by the policy for {wanted}", key.key_id()),
                        "add the key's public half to the policy's `keys` with the stages it signs, or use a key the policy trusts",
                    )
                } else {
                    ok("signing key", format!("key {} trusted for {}", key.key_id().short(), trusted.join(", ")))
                }
            }
        },
    });

    // The store: reachable, credentials, create-only writes, and its clock.
    let store = context::open_store(global, &root).await;
    match store {
        Err(f) => {
            checks.push(failed("store", f));
            checks.push(skipped("clock", "no store to compare with"));
        }
        Ok(store) => {
            let who = ledger_pipeline::ci::host_name();
            match store.probe(&format!("ledger doctor on {who}")).await {
                Err(e) => {
                    checks.push(failed("store", Failure::from(e)));
                    checks.push(skipped("clock", "no store to compare with"));
                }
                Ok(probe) => {
                    checks.push(ok(
                        "store",
                        format!(
                            "{}: reachable, writable, create-only writes honoured (probe {probe})",
                            store.location()
                        ),
                    ));
                    checks.push(clock(&store, &probe).await);
                }
            }
        }
    }

    // Docker and the registry matter only where the Docker stages are configured.
    match ledger_pipeline::config::Config::load(&root) {
        Err(ledger_pipeline::config::ConfigError::Read { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            checks.push(skipped(
                "ledger.toml",
                "absent: the Docker stages (build, publish, deploy, smoke) are not configured here",
            ));
            checks.push(skipped("docker engine", "not needed without ledger.toml"));
            checks.push(skipped("registry", "not needed without ledger.toml"));
        }
        Err(e) => {
            checks.push(failed(
                "ledger.toml",
                ledger_pipeline::Error::from(e).into(),
            ));
            checks.push(skipped("docker engine", "ledger.toml must be valid first"));
            checks.push(skipped("registry", "ledger.toml must be valid first"));
        }
        Ok(config) => {
            checks.push(ok(
                "ledger.toml",
                format!(
                    "{} image(s), {} environment(s)",
                    config.images.len(),
                    config.environments.len()
                ),
            ));
            checks.push(match ledger_docker::Engine::connect().await {
                Err(e) => failed("docker engine", ledger_pipeline::Error::from(e).into()),
                Ok(engine) => match engine.version().await {
                    Ok(v) => ok(
                        "docker engine",
                        format!("{} answers, version {v}", engine.endpoint()),
                    ),
                    Err(e) => failed("docker engine", ledger_pipeline::Error::from(e).into()),
                },
            });
            checks.push(match &config.registry {
                None => skipped(
                    "registry",
                    "none configured: images stay in the local engine",
                ),
                Some(host) => match ledger_docker::Registry::new() {
                    Err(e) => failed("registry", e.into()),
                    Ok(client) => match client.ping(host).await {
                        Ok(()) => ok(
                            "registry",
                            format!("{host} answers the OCI distribution API"),
                        ),
                        Err(detail) => failed_with(
                            "registry",
                            Code::Infrastructure,
                            detail,
                            "start the registry or correct `registry` in ledger.toml",
                        ),
                    },
                },
            });
        }
    }

    let first_failure = checks
        .iter()
        .find(|c| c.status == Status::Failed)
        .and_then(|c| c.exit_code);
    let report = Report {
        ok: first_failure.is_none(),
        checks,
    };
    if args.json {
        print_json(&report)?;
    } else {
        for c in &report.checks {
            let mark = match c.status {
                Status::Ok => "ok  ",
                Status::Failed => "FAIL",
                Status::Skipped => "skip",
            };
            println!("{mark} {:<14} {}", c.name, c.detail);
            if let Some(fix) = &c.fix {
                println!("     {:<14} fix: {fix}", "");
            }
        }
        println!(
            "{}",
            if report.ok {
                "ready"
            } else {
                "NOT ready: fix the FAIL lines above"
            }
        );
    }
    Ok(match first_failure {
        None => Code::Success,
        Some(2) => Code::BadInput,
        Some(4) => Code::VerificationFailed,
        Some(_) => Code::Infrastructure,
    })
}

/// Compares this machine's clock with the time the store recorded for the probe:
/// evidence times come from this clock, and a clock far off makes them lie.
async fn clock(store: &ledger_store::Store, probe: &ledger_store::ObjectKey) -> Check {
    let now = SystemTime::now();
    match store.modified(probe).await {
        Ok(Some(stored)) => {
            let skew = now
                .duration_since(stored)
                .or_else(|e| Ok::<_, ()>(e.duration()))
                .unwrap_or_default();
            if skew > MAX_SKEW {
                failed_with(
                    "clock",
                    Code::Infrastructure,
                    format!(
                        "this machine's clock differs from the store's by {} s",
                        skew.as_secs()
                    ),
                    "synchronise the clock (NTP); evidence times are taken from it",
                )
            } else {
                ok(
                    "clock",
                    format!("within {} ms of the store's", skew.as_millis()),
                )
            }
        }
        Ok(None) => skipped("clock", "the store did not report the probe's time"),
        Err(e) => failed("clock", Failure::from(e)),
    }
}
