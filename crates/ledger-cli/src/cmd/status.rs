//! `ledger status`: what the evidence says runs where, the last promoted release,
//! freshness and rejected-release alarms and, with `--drift`, how the engine differs
//! from the evidence.

use super::{print_json, rfc3339};
use crate::args::{Global, StatusArgs};
use crate::context::Reader;
use crate::exit::{Code, Failure, Result};
use ledger_pipeline::config::Config;
use ledger_pipeline::observe::drift::{self, EnvironmentDrift};
use ledger_pipeline::observe::status::{AlarmKind, Running, StatusReport};

/// `ledger status`.
pub async fn status(global: &Global, args: StatusArgs) -> Result<Code> {
    let reader = Reader::load(global).await?;
    // Environments named in ledger.toml are listed even when nothing runs there; an
    // auditor without the file still gets everything the evidence records.
    let config = Config::load(&reader.root);
    let configured: Vec<String> = config
        .as_ref()
        .map(|c| c.environments.iter().map(|e| e.name.clone()).collect())
        .unwrap_or_default();
    let report = ledger_pipeline::observe::status::status(
        &mut reader.evidence(),
        &configured,
        args.environment.as_deref(),
        time::OffsetDateTime::now_utc(),
    )
    .await?;
    let drift = if args.drift {
        Some(drift(config, &report, &configured, args.environment.as_deref()).await?)
    } else {
        None
    };
    let drifted = drift
        .as_ref()
        .is_some_and(|d| d.iter().any(|e| !e.findings.is_empty()));
    let code = if drifted {
        Code::VerificationFailed
    } else {
        Code::Success
    };
    if args.json {
        #[derive(serde::Serialize)]
        struct Out<'a> {
            #[serde(flatten)]
            report: &'a StatusReport,
            #[serde(skip_serializing_if = "Option::is_none")]
            drift: Option<&'a Vec<EnvironmentDrift>>,
        }
        print_json(&Out {
            report: &report,
            drift: drift.as_ref(),
        })?;
        return Ok(code);
    }
    print_status(&report);
    print_drift(drift.iter().flatten());
    Ok(code)
}

/// Compares each environment's engine with the evidence; needs `ledger.toml`.
async fn drift(
    config: std::result::Result<Config, ledger_pipeline::config::ConfigError>,
    report: &StatusReport,
    configured: &[String],
    environment: Option<&str>,
) -> Result<Vec<EnvironmentDrift>> {
    let config = config.map_err(ledger_pipeline::Error::from).map_err(|e| {
        Failure::from(e).hint(
            "--drift needs ledger.toml: it names the project whose containers to compare and each environment's engine",
        )
    })?;
    let envs = drift::environments_to_compare(report, configured, environment);
    let placement =
        ledger_pipeline::Placement::connect(&config, envs.iter().map(String::as_str)).await?;
    let swarm = config
        .environments
        .iter()
        .filter(|e| e.target == ledger_pipeline::config::Target::Swarm)
        .map(|e| e.name.clone())
        .collect();
    Ok(drift::drift(&placement, &config.repository, report, environment, &swarm).await?)
}

fn ago(since: time::OffsetDateTime) -> String {
    let d = time::OffsetDateTime::now_utc() - since;
    if d.whole_days() > 0 {
        format!("{} d ago", d.whole_days())
    } else if d.whole_hours() > 0 {
        format!("{} h ago", d.whole_hours())
    } else {
        format!("{} min ago", d.whole_minutes())
    }
}

fn print_status(report: &StatusReport) {
    for env in &report.environments {
        match &env.running {
            None => println!("{:<12} nothing deployed", env.environment),
            Some(r) => print_running(&env.environment, r),
        }
        for alarm in &env.alarms {
            let what = match alarm.kind {
                AlarmKind::Freshness => "FRESHNESS ALARM",
                AlarmKind::Rejected => "REJECTED RELEASE ALARM",
            };
            println!("{:<12}   {what}: {}", "", alarm.message);
        }
    }
    match &report.last_promoted {
        Some(p) => println!(
            "last promoted {} at {} ({})",
            p.sha,
            rfc3339(p.decided_at),
            p.decision
        ),
        None => println!("last promoted: none yet"),
    }
    for i in &report.ignored {
        println!("ignored (does not verify): {i}");
    }
}

fn print_running(environment: &str, r: &Running) {
    let how = match (&r.rollback_from, r.replay) {
        (Some(from), _) => format!(", rollback from {}", &from[..12.min(from.len())]),
        (None, true) => ", replay".to_owned(),
        (None, false) => String::new(),
    };
    println!(
        "{:<12} runs {} since {} ({}; {} attempt {}{how})",
        environment,
        r.sha,
        rfc3339(r.since),
        ago(r.since),
        r.deployment,
        r.attempt
    );
    for (image, digest) in &r.images {
        println!("{:<12}   {image} {digest}", "");
    }
}

fn print_drift<'a>(drift: impl Iterator<Item = &'a EnvironmentDrift>) {
    for env in drift {
        if env.findings.is_empty() {
            println!(
                "drift {:<12} none: the engine runs what the evidence records ({} container(s))",
                env.environment,
                env.observed.len()
            );
        }
        for f in &env.findings {
            println!("DRIFT {:<12} {f}", env.environment);
        }
    }
}
