//! `ledger doctor`: the preflight a CI job runs before its first stage. Each check
//! says what it found and, when it fails, what fixes it; the exit code is that of the
//! first failure's class (2 configuration, 5 infrastructure), so a broken runner fails
//! in seconds with a reason instead of halfway through a release. The probes
//! themselves are library calls (`ledger_pipeline::observe::doctor`).

use super::print_json;
use crate::args::{DoctorArgs, Global};
use crate::context;
use crate::exit::{Code, Failure, Result};
use ledger_core::Stage;
use ledger_pipeline::config::{Config, ConfigError};
use ledger_pipeline::observe::doctor::{self as probe};
use ledger_verify::{ObjectKey, Policy, Store, StoreLocation};
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

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
    /// The same, typed: what doctor exits with when this is the first failure.
    #[serde(skip)]
    code: Option<Code>,
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
        code: None,
    }
}

fn skipped(name: &'static str, detail: impl Into<String>) -> Check {
    Check {
        name,
        status: Status::Skipped,
        detail: detail.into(),
        fix: None,
        exit_code: None,
        code: None,
    }
}

fn failed(name: &'static str, f: Failure) -> Check {
    Check {
        name,
        status: Status::Failed,
        detail: f.message,
        fix: f.hint,
        exit_code: Some(f.code as u8),
        code: Some(f.code),
    }
}

fn failed_with(name: &'static str, code: Code, detail: String, fix: &str) -> Check {
    Check {
        name,
        status: Status::Failed,
        detail,
        fix: Some(fix.to_owned()),
        exit_code: Some(code as u8),
        code: Some(code),
    }
}

/// `ledger doctor`.
pub async fn doctor(global: &Global, args: DoctorArgs) -> Result<Code> {
    let root = context::repo_root()?;
    let mut checks = Vec::new();
    // Policy first: the key check needs it.
    let policy = match context::load_policy(global, &root) {
        Ok((policy, bytes)) => {
            checks.push(ok(
                "policy",
                format!(
                    "{} valid, {} trusted key(s), digest {}",
                    context::policy_path(global, &root).display(),
                    policy.keys().len(),
                    &policy.digest().to_hex()[..12]
                ),
            ));
            Some((policy, bytes))
        }
        Err(f) => {
            checks.push(failed("policy", f));
            None
        }
    };
    checks.push(signing_key(&args, &root, policy.as_ref().map(|p| &p.0)));
    checks.extend(store_checks(global, &root).await);
    checks.push(
        policy_owners(
            global,
            &root,
            policy.as_ref().map(|(p, b)| (p.clone(), b.as_slice())),
        )
        .await,
    );
    checks.extend(docker_checks(&root).await);
    let code = exit_code(&checks);
    let report = Report {
        ok: code == Code::Success,
        checks,
    };
    if args.json {
        print_json(&report)?;
    } else {
        print_report(&report);
    }
    Ok(code)
}

/// The exit code of the first failed check, as that check's failure class has it (a
/// stage failure stays 1, a denial 3); 0 when nothing failed.
fn exit_code(checks: &[Check]) -> Code {
    checks
        .iter()
        .find(|c| c.status == Status::Failed)
        .map_or(Code::Success, |c| c.code.unwrap_or(Code::Infrastructure))
}

fn print_report(report: &Report) {
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

/// The signing key loads and the policy trusts it (for `--stage`, or any stage).
fn signing_key(args: &DoctorArgs, root: &Path, policy: Option<&Policy>) -> Check {
    let key = match context::load_signing_key(
        args.key.as_deref(),
        root,
        context::zone_key_path(args.stage),
    ) {
        Err(f) => return failed("signing key", f),
        Ok(key) => key,
    };
    let Some(policy) = policy else {
        return skipped(
            "signing key",
            format!(
                "key {} loaded; no valid policy to check trust against",
                key.key_id().short()
            ),
        );
    };
    let now = time::OffsetDateTime::now_utc();
    let stages: Vec<Stage> = match args.stage {
        Some(s) => vec![s],
        None => Stage::ALL
            .into_iter()
            .filter(|s| policy.may_sign(&key, *s, now))
            .collect(),
    };
    let trusted: Vec<&str> = stages
        .iter()
        .filter(|s| policy.may_sign(&key, **s, now))
        .map(|s| s.as_str())
        .collect();
    if trusted.is_empty() || trusted.len() < stages.len() {
        let wanted = args
            .stage
            .map_or("any stage".to_owned(), |s| format!("stage `{s}`"));
        failed_with(
            "signing key",
            Code::BadInput,
            format!(
                "key {} is not trusted (or is revoked) by the policy for {wanted}",
                key.key_id()
            ),
            "add the key's public half to the policy's `keys` with the stages it signs, or use a key the policy trusts",
        )
    } else {
        ok(
            "signing key",
            format!(
                "key {} trusted for {}",
                key.key_id().short(),
                trusted.join(", ")
            ),
        )
    }
}

/// The policy is signed by its owners: what every stage checks before its gate.
async fn policy_owners(global: &Global, root: &Path, policy: Option<(Policy, &[u8])>) -> Check {
    const NAME: &str = "policy owners";
    let Some(policy) = policy else {
        return skipped(NAME, "no valid policy to check");
    };
    // Before the first stage there is no store, so no pinned root: the checkout's
    // root decides, as it will for that first stage.
    let store = match not_created(global, root) {
        Some(dir) => Store::empty(dir.display().to_string()),
        None => match context::open_store(global, root).await {
            Ok(store) => store,
            Err(_) => return skipped(NAME, "no store to read the root of trust from"),
        },
    };
    match context::load_signed_policy(global, root, &store, policy, Code::VerificationFailed).await
    {
        Ok(p) => {
            let current = p.chain().current();
            let owners: Vec<&str> = current
                .owners()
                .iter()
                .map(|k| k.key_id().short())
                .collect();
            ok(
                NAME,
                format!(
                    "signed by a threshold of {} of the owners of root version {} ({})",
                    current.doc().threshold,
                    current.version(),
                    owners.join(", ")
                ),
            )
        }
        Err(f) => failed(NAME, f),
    }
}

/// The local folder the store would be, when it does not exist yet: before the
/// first stage (or before `ledger init`), doctor neither creates it nor leaves a
/// probe in it.
fn not_created(global: &Global, root: &Path) -> Option<std::path::PathBuf> {
    match context::store_location(global, root).ok()? {
        StoreLocation::Local(dir) if std::fs::symlink_metadata(&dir).is_err() => Some(dir),
        _ => None,
    }
}

/// The store: reachable, credentials, create-only writes, and its clock.
async fn store_checks(global: &Global, root: &Path) -> [Check; 2] {
    if let Some(dir) = not_created(global, root) {
        return [
            skipped(
                "store",
                format!(
                    "{} does not exist yet: the first stage creates it",
                    dir.display()
                ),
            ),
            skipped("clock", "no store to compare with"),
        ];
    }
    let store = match context::open_store(global, root).await {
        Err(f) => {
            return [
                failed("store", f),
                skipped("clock", "no store to compare with"),
            ]
        }
        Ok(store) => store,
    };
    match probe::probe_store(&store).await {
        Err(e) => [
            failed("store", Failure::from(e)),
            skipped("clock", "no store to compare with"),
        ],
        Ok(key) => [
            ok(
                "store",
                format!(
                    "{}: reachable, writable, create-only writes honoured (probe {key})",
                    store.location()
                ),
            ),
            clock(&store, &key).await,
        ],
    }
}

/// Compares this machine's clock with the time the store recorded for the probe:
/// evidence times come from this clock, and a clock far off makes them lie.
async fn clock(store: &Store, probe: &ObjectKey) -> Check {
    match probe::clock_skew(store, probe).await {
        Ok(Some(skew)) if skew > MAX_SKEW => failed_with(
            "clock",
            Code::Infrastructure,
            format!(
                "this machine's clock differs from the store's by {} s",
                skew.as_secs()
            ),
            "synchronise the clock (NTP); evidence times are taken from it",
        ),
        Ok(Some(skew)) => ok(
            "clock",
            format!("within {} ms of the store's", skew.as_millis()),
        ),
        Ok(None) => skipped("clock", "the store did not report the probe's time"),
        Err(e) => failed("clock", Failure::from(e)),
    }
}

/// Docker and the registry matter only where the Docker stages are configured.
async fn docker_checks(root: &Path) -> Vec<Check> {
    let config = match Config::load(root) {
        Err(ConfigError::Read { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return vec![
                skipped(
                    "ledger.toml",
                    "absent: the Docker stages (build, publish, deploy, smoke) are not configured here",
                ),
                skipped("docker engine", "not needed without ledger.toml"),
                skipped("registry", "not needed without ledger.toml"),
            ];
        }
        Err(e) => {
            return vec![
                failed("ledger.toml", ledger_pipeline::Error::from(e).into()),
                skipped("docker engine", "ledger.toml must be valid first"),
                skipped("registry", "ledger.toml must be valid first"),
            ];
        }
        Ok(config) => config,
    };
    let mut checks = vec![
        ok(
            "ledger.toml",
            format!(
                "{} image(s), {} environment(s)",
                config.images.len(),
                config.environments.len()
            ),
        ),
        match probe::probe_engine(&Default::default()).await {
            Ok(e) => ok(
                "docker engine",
                format!("{} answers, version {}", e.endpoint, e.version),
            ),
            Err(e) => failed("docker engine", e.into()),
        },
    ];
    // Each environment that deploys to an engine of its own.
    for env in config.environments.iter().filter(|e| e.engine.is_some()) {
        checks.push(match probe::probe_engine(&env.engine_target()).await {
            Ok(e) => ok(
                "env engine",
                format!(
                    "`{}`: {} answers, version {}",
                    env.name, e.endpoint, e.version
                ),
            ),
            Err(e) => {
                let mut check = failed("env engine", e.into());
                check.detail = format!("`{}`: {}", env.name, check.detail);
                check
            }
        });
    }
    checks.push(registry(config.registry.as_deref()).await);
    checks
}

async fn registry(host: Option<&str>) -> Check {
    let Some(host) = host else {
        return skipped(
            "registry",
            "none configured: images stay in the local engine",
        );
    };
    match probe::probe_registry(host).await {
        Ok(()) => ok(
            "registry",
            format!("{host} answers the OCI distribution API"),
        ),
        Err(e) => failed("registry", e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failing(code: Code) -> Check {
        failed_with("x", code, "failed".into(), "fix it")
    }

    #[test]
    fn the_first_failure_decides_the_exit_code_with_its_own_class() {
        assert_eq!(exit_code(&[ok("a", "fine")]), Code::Success);
        for code in [
            Code::StageFailed,
            Code::BadInput,
            Code::Denied,
            Code::VerificationFailed,
            Code::Infrastructure,
        ] {
            let checks = [
                ok("a", "fine"),
                failing(code),
                failing(Code::Infrastructure),
            ];
            assert_eq!(exit_code(&checks), code);
            assert_eq!(checks[1].exit_code, Some(code as u8));
        }
    }
}
