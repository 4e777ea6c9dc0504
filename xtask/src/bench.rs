//! `cargo xtask bench`: what `ledger` adds on top of the work each stage wraps.
//!
//! Runs the demo pipeline `--runs N` times (default 5), each on a new commit, timing
//! every `ledger stage` process from the outside, and reads from the evidence itself the
//! time spent in the wrapped work: the command (commit, integration), the engine's
//! build and push (build), the container operations and health wait (deploy), the HTTP
//! checks (smoke). Overhead is the difference: process start, policy and key loading,
//! gate evaluation (verifying upstream evidence), signing and storing. Medians are
//! printed as a Markdown table, ready for `docs/performance.md`.

use crate::demo;
use base64::Engine as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

const STAGES: [&str; 7] = [
    "commit",
    "integration",
    "build",
    "publish",
    "deploy",
    "smoke",
    "decide",
];

fn predicate(store: &Path, key: &str) -> Result<serde_json::Value, String> {
    let bytes = std::fs::read(store.join(key)).map_err(|e| format!("{key}: {e}"))?;
    let env: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(env["payload"].as_str().unwrap_or_default())
        .map_err(|e| e.to_string())?;
    let st: serde_json::Value = serde_json::from_slice(&payload).map_err(|e| e.to_string())?;
    Ok(st["predicate"].clone())
}

/// Milliseconds of wrapped work recorded in a stage's predicate.
fn work_ms(stage: &str, p: &serde_json::Value) -> f64 {
    let n = |v: &serde_json::Value| v.as_f64().unwrap_or(0.0);
    match stage {
        "commit" | "integration" => n(&p["command"]["duration_ms"]),
        "build" => p["images"]
            .as_array()
            .map_or(0.0, |a| a.iter().map(|i| n(&i["duration_ms"])).sum()),
        "deploy" => n(&p["duration_ms"]),
        "smoke" => p["checks"]
            .as_array()
            .map_or(0.0, |a| a.iter().map(|c| n(&c["latency_ms"])).sum()),
        _ => 0.0,
    }
}

fn key(stage: &str, sha: &str) -> String {
    match stage {
        "commit" => format!("commit/{sha}/commit.json"),
        "integration" => format!("integration/{sha}/integration.json"),
        "build" => format!("build/{sha}/build.json"),
        "publish" => format!("release-candidate/{sha}/manifest.json"),
        "deploy" => format!("infra/{sha}/deployment.json"),
        "smoke" => format!("deploy/{sha}/api-smoke.json"),
        _ => format!("release/{sha}/decision.json"),
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        0.0
    } else {
        v[v.len() / 2]
    }
}

pub fn run(args: &[String]) -> Result<(), String> {
    let runs: usize = match args {
        [flag, n] if flag == "--runs" => {
            n.parse().map_err(|_| "--runs takes a number".to_string())?
        }
        [] => 5,
        _ => return Err("usage: cargo xtask bench [--runs N]".into()),
    };
    let dir = crate::root().join("target").join("ledger-bench");
    let (ledger, mut sha) = demo::setup(&dir)?;
    let store = dir.join(".artifacts");
    let mut wall: Vec<Vec<f64>> = vec![Vec::new(); STAGES.len()];
    let mut work: Vec<Vec<f64>> = vec![Vec::new(); STAGES.len()];
    for run in 0..runs {
        if run > 0 {
            sha = demo::new_commit(&dir, "CHANGES", &format!("run {run}\n"))?;
        }
        for (i, stage) in STAGES.iter().enumerate() {
            let mut cmd = Command::new(&ledger);
            cmd.args(["stage", stage, "--sha", &sha]).current_dir(&dir);
            match *stage {
                "commit" => cmd.args(["--", "sh", "unit-tests.sh"]),
                "integration" => cmd.args(["--", "sh", "integration-tests.sh"]),
                _ => &mut cmd,
            };
            let clock = Instant::now();
            let out = cmd.output().map_err(|e| e.to_string())?;
            let elapsed = clock.elapsed().as_secs_f64() * 1000.0;
            if !out.status.success() {
                return Err(format!(
                    "{stage} failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            wall[i].push(elapsed);
            work[i].push(work_ms(stage, &predicate(&store, &key(stage, &sha))?));
        }
        eprintln!("bench: run {} of {runs} done ({})", run + 1, &sha[..12]);
    }
    println!("| stage | ledger stage, wall (median ms) | wrapped work recorded (median ms) | ledger overhead (median ms) |");
    println!("|---|---:|---:|---:|");
    for (i, stage) in STAGES.iter().enumerate() {
        let mut over: Vec<f64> = wall[i].iter().zip(&work[i]).map(|(w, k)| w - k).collect();
        println!(
            "| {stage} | {:.1} | {:.1} | {:.1} |",
            median(&mut wall[i].clone()),
            median(&mut work[i].clone()),
            median(&mut over)
        );
    }
    println!("\n{runs} runs on {} core(s); build and deploy work is the Docker engine's (build+push, start+health).", std::thread::available_parallelism().map_or(1, |n| n.get()));
    Ok(())
}
