//! The `smoke` stage: HTTP checks against what was deployed, with readiness retries.
//!
//! Each check is retried (a just-started service may not listen yet) until it passes
//! or its retries run out; the last try is what is recorded: status, latency, ok.
//! The stage passes only if every check passed, and records p50/p95/max latency so
//! the release policy can bound them. With no checks configured nothing is proven,
//! so the stage fails.

use crate::config::{Check, Environment};
use crate::error::Error;
use crate::record::Recorded;
use crate::record::{Draft, Recorder};
use crate::run::Passed;
use crate::trigger::ReplayOf;
use ledger_core::predicate::{Latency, Outcome, Runner, SmokeCheck, SmokePredicate};
use ledger_core::schema::SchemaError;
use ledger_core::EnvName;
use ledger_core::{ArtifactKind, GitSha, Stage, Subject};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// The result of one check.
#[derive(Debug, Clone)]
pub struct CheckResult {
    pub status: Option<u16>,
    pub latency_ms: f64,
    pub ok: bool,
    pub attempts: u32,
    pub error: Option<String>,
}

async fn try_once(
    client: &reqwest::Client,
    check: &Check,
) -> (Option<u16>, f64, Result<(), String>) {
    let method =
        reqwest::Method::from_bytes(check.method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let clock = Instant::now();
    let response = client.request(method, &check.url).send().await;
    let (status, body) = match response {
        Ok(r) => {
            let status = r.status().as_u16();
            (Some(status), r.text().await.unwrap_or_default())
        }
        Err(e) => {
            let latency = clock.elapsed().as_secs_f64() * 1000.0;
            return (
                None,
                latency,
                Err(format!("request failed: {}", with_causes(&e))),
            );
        }
    };
    let latency = clock.elapsed().as_secs_f64() * 1000.0;
    let verdict = if status != Some(check.expect_status) {
        Err(format!(
            "status {} , expected {}",
            status.unwrap_or_default(),
            check.expect_status
        )
        .replace(" ,", ","))
    } else if let Some(needle) = check
        .body_contains
        .as_deref()
        .filter(|n| !body.contains(*n))
    {
        Err(format!("body does not contain {needle:?}"))
    } else if let Some(max) = check.max_latency_ms.filter(|m| latency > *m) {
        Err(format!("latency {latency:.1} ms over the {max} ms bound"))
    } else {
        Ok(())
    };
    (status, latency, verdict)
}

/// `e` and each of its causes, without the URL (the check records it apart): a
/// TLS failure says which certificate and why only in its causes.
fn with_causes(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(&format!(" for url ({url})"), "");
    }
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        cause = c.source();
    }
    text
}

/// Runs one check with its readiness retries.
pub async fn run_check(client: &reqwest::Client, check: &Check) -> CheckResult {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let (status, latency_ms, verdict) = try_once(client, check).await;
        let done = verdict.is_ok() || attempts >= check.retries;
        if done {
            return CheckResult {
                status,
                latency_ms,
                ok: verdict.is_ok(),
                attempts,
                error: verdict.err(),
            };
        }
        tokio::time::sleep(Duration::from_millis(check.interval_ms)).await;
    }
}

/// Nearest-rank percentile of `values` (0 when empty).
pub fn percentile(values: &[f64], percent: usize) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v[crate::stats::nearest_rank(v.len(), percent) - 1]
}

fn round(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

/// The HTTP client of `env`'s checks: system roots plus its `checks_ca`, ring
/// (the workspace's Cargo.toml says why), no proxy, 10 s per request.
fn check_client(env: &Environment) -> Result<reqwest::Client, Error> {
    let tls = ledger_docker::registry::tls::with_ca_file(env.checks_ca.as_deref()).map_err(
        |message| {
            Error::Config(crate::config::ConfigError::Invalid {
                path: crate::config::CONFIG_FILE.into(),
                message: format!("/environments/{}/checks_ca: {message}", env.name),
            })
        },
    )?;
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .map_err(|e| Error::HttpClient(e.to_string()))
}

/// Runs `smoke` for `sha` against `env`.
#[tracing::instrument(level = "debug", skip_all, fields(stage = "smoke", %sha))]
pub async fn run_smoke(
    rec: &Recorder<'_>,
    env: &Environment,
    sha: GitSha,
    runner: &Runner,
    passed: Passed,
    replay: Option<&ReplayOf>,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Recorded, Error> {
    let gate = passed.expect(Stage::Smoke, &sha)?;
    crate::stages::deploy::check_runner(rec.policy, &env.name, runner)?;
    let draft = Draft::new(rec, Stage::Smoke, sha, runner, gate.inputs);
    let client = check_client(env)?;
    let mut checks = Vec::new();
    let mut latencies = Vec::new();
    for check in &env.checks {
        let res = run_check(&client, check).await;
        progress(&progress_line(check, &res));
        latencies.push(res.latency_ms);
        checks.push(recorded_check(check, res)?);
    }
    if env.checks.is_empty() {
        progress(&format!(
            "no smoke checks are configured for environment `{}`: nothing is proven",
            env.name
        ));
    }
    let all_ok = !checks.is_empty() && checks.iter().all(|c| c.ok);
    let result = if all_ok { Outcome::Pass } else { Outcome::Fail };
    let latency_ms = latency(&latencies);
    let finished = OffsetDateTime::now_utc();
    let env_name = EnvName::parse(&env.name)?;
    let (r, _) = rec
        .write_next_in(
            ArtifactKind::Smoke,
            &sha,
            Some(env_name),
            vec![Subject::git(&sha)],
            |attempt| {
                let mut p = SmokePredicate {
                    header: draft.header(attempt, finished, result),
                    environment: env.name.clone(),
                    checks: checks.clone(),
                    latency_ms,
                    replay: None,
                    manifest: None,
                    rollback_from: None,
                };
                if let Some(replay) = replay {
                    replay.mark_smoke(&mut p);
                }
                p
            },
        )
        .await?;
    let passed = checks.iter().filter(|c| c.ok).count();
    Ok(Recorded {
        r,
        result,
        summary: format!("{passed} of {} check(s) ok", checks.len()),
    })
}

/// The line shown while a check runs.
fn progress_line(check: &Check, res: &CheckResult) -> String {
    format!(
        "{} {} {} -> {} in {:.1} ms{}",
        if res.ok { "ok  " } else { "FAIL" },
        check.method,
        check.url,
        res.status
            .map_or("no response".to_owned(), |s| s.to_string()),
        res.latency_ms,
        res.error
            .as_ref()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default()
    )
}

/// A check and its result as the predicate records them (latency rounded to µs).
fn recorded_check(check: &Check, res: CheckResult) -> Result<SmokeCheck, Error> {
    let method =
        serde_json::from_value(serde_json::Value::String(check.method.clone())).map_err(|e| {
            Error::OwnSchema {
                what: "smoke predicate".into(),
                source: SchemaError::Broken("method".into(), e.to_string()),
            }
        })?;
    Ok(SmokeCheck {
        name: check.name.clone(),
        method,
        url: check.url.clone(),
        expected_status: check.expect_status,
        status: res.status,
        latency_ms: round(res.latency_ms),
        ok: res.ok,
        attempts: res.attempts,
        max_latency_ms: check.max_latency_ms,
        error: res.error,
    })
}

/// Latency percentiles over the checks' measured latencies, rounded to µs.
fn latency(latencies: &[f64]) -> Latency {
    Latency {
        p50: round(percentile(latencies, 50)),
        p95: round(percentile(latencies, 95)),
        max: round(latencies.iter().copied().fold(0.0, f64::max)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v = [5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(percentile(&v, 50), 3.0);
        assert_eq!(percentile(&v, 95), 5.0);
        assert_eq!(percentile(&[], 95), 0.0);
        assert_eq!(percentile(&[7.0], 50), 7.0);
    }

    /// A one-shot HTTP server on loopback answering `status` with `body`.
    async fn serve(status: u16, body: &'static str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = sock.read(&mut buf).await;
                let reply = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(reply.as_bytes()).await;
            }
        });
        format!("http://{addr}/health")
    }

    fn check(url: String) -> Check {
        Check {
            name: "health".into(),
            method: "GET".into(),
            url,
            expect_status: 200,
            body_contains: Some("ok".into()),
            max_latency_ms: None,
            retries: 2,
            interval_ms: 10,
        }
    }

    #[tokio::test]
    async fn checks_pass_and_fail_for_the_right_reasons() {
        let tls = ledger_docker::registry::tls::with_ca_file(None).unwrap();
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .build()
            .unwrap();
        let ok = run_check(&client, &check(serve(200, "ok").await)).await;
        assert!(
            ok.ok && ok.status == Some(200) && ok.attempts == 1,
            "{ok:?}"
        );
        let bad = run_check(&client, &check(serve(503, "down").await)).await;
        assert!(!bad.ok && bad.attempts == 2, "{bad:?}");
        assert!(bad.error.unwrap().contains("status 503, expected 200"));
        let body = run_check(&client, &check(serve(200, "nope").await)).await;
        assert!(body.error.unwrap().contains("body does not contain"));
        let refused = run_check(&client, &check("http://127.0.0.1:9/health".into())).await;
        assert!(!refused.ok && refused.status.is_none());
    }
}
