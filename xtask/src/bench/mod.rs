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

/// The verified predicate of `key`, read back through `ledger show --json`, so the
/// same code reads a local folder and a bucket.
fn predicate(
    ledger: &Path,
    dir: &Path,
    env: &[(String, String)],
    sha: &str,
    key: &str,
) -> Result<serde_json::Value, String> {
    let out = Command::new(ledger)
        .args(["show", sha, "--json"])
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .map_err(|e| e.to_string())?;
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("ledger show: {e}"))?;
    report["artifacts"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["key"] == key))
        .map(|a| a["predicate"].clone())
        .ok_or_else(|| format!("{key} not in `ledger show {sha}`"))
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

/// What one series of pipeline runs measured.
struct Pipeline {
    /// Median wall time and median overhead per stage.
    stages: Vec<(f64, f64)>,
    ledger: std::path::PathBuf,
    first_sha: String,
    last_sha: String,
    /// Median wall time of build through decide: what a release costs without replay.
    rebuild_ms: f64,
}

/// Median wall time and wrapped work per stage over `runs` pipeline runs in `dir`,
/// with `env` added to every `ledger` process (the store location).
fn pipeline(runs: usize, dir: &Path, env: &[(String, String)]) -> Result<Pipeline, String> {
    let (ledger, mut sha) = demo::setup_with(dir, true)?;
    let first_sha = sha.clone();
    let mut wall: Vec<Vec<f64>> = vec![Vec::new(); STAGES.len()];
    let mut work: Vec<Vec<f64>> = vec![Vec::new(); STAGES.len()];
    for run in 0..runs {
        if run > 0 {
            sha = demo::new_commit(dir, "CHANGES", &format!("run {run}\n"))?;
        }
        for (i, stage) in STAGES.iter().enumerate() {
            let mut cmd = Command::new(&ledger);
            cmd.args(["stage", stage, "--sha", &sha])
                .current_dir(dir)
                .envs(env.iter().map(|(k, v)| (k, v)));
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
            let p = predicate(&ledger, dir, env, &sha, &key(stage, &sha))?;
            work[i].push(work_ms(stage, &p));
        }
        eprintln!("bench: run {} of {runs} done ({})", run + 1, &sha[..12]);
    }
    let mut rebuild: Vec<f64> = (0..runs)
        .map(|r| (2..STAGES.len()).map(|i| wall[i][r]).sum())
        .collect();
    Ok(Pipeline {
        stages: (0..STAGES.len())
            .map(|i| {
                let mut over: Vec<f64> = wall[i].iter().zip(&work[i]).map(|(w, k)| w - k).collect();
                (median(&mut wall[i]), median(&mut over))
            })
            .collect(),
        ledger,
        first_sha,
        last_sha: sha,
        rebuild_ms: median(&mut rebuild),
    })
}

/// Median wall milliseconds of `times` runs of `cmd` (which must succeed).
fn timed(times: usize, mut cmd: impl FnMut() -> Command) -> Result<f64, String> {
    let mut samples = Vec::new();
    for _ in 0..times {
        let mut c = cmd();
        let clock = Instant::now();
        let out = c.output().map_err(|e| e.to_string())?;
        samples.push(clock.elapsed().as_secs_f64() * 1000.0);
        if !out.status.success() {
            return Err(format!(
                "{c:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    Ok(median(&mut samples))
}

/// Cold `ledger verify`, the same chain by securesystemslib, and replay against
/// rebuild, on the local series.
fn chain_measurements(dir: &Path, p: &Pipeline) -> Result<(), String> {
    let sha = &p.last_sha;
    let artifacts = {
        let out = Command::new(&p.ledger)
            .args(["verify", sha, "--json"])
            .current_dir(dir)
            .output()
            .map_err(|e| e.to_string())?;
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
        v["artifacts"].as_array().map_or(0, Vec::len)
    };
    let ledger_ms = timed(20, || {
        let mut c = Command::new(&p.ledger);
        c.args(["verify", sha]).current_dir(dir);
        c
    })?;
    let script = crate::root().join("docs/audit/verify_chain.py");
    let sslib_ms = timed(5, || {
        let mut c = Command::new("python3");
        c.arg(&script)
            .args([".artifacts", "policy/pipeline-policy.json", sha])
            .current_dir(dir);
        c
    })
    .ok();
    let replay_ms = timed(1, || {
        let mut c = Command::new(&p.ledger);
        c.args(["replay", &p.first_sha]).current_dir(dir);
        c
    })?;
    println!("| measurement | value |");
    println!("|---|---:|");
    println!("| `ledger verify <sha>`, cold process, {artifacts}-artifact chain (median of 20) | {ledger_ms:.1} ms |");
    match sslib_ms {
        Some(ms) => println!(
            "| the same chain, `docs/audit/verify_chain.py` (Python securesystemslib), cold | {ms:.0} ms ({:.0}x ledger) |",
            ms / ledger_ms
        ),
        None => println!("| the same chain with securesystemslib | not measured (pip install 'securesystemslib[crypto]') |"),
    }
    println!(
        "| a release again by rebuilding: build to decide (median) | {:.0} ms |",
        p.rebuild_ms
    );
    println!(
        "| the same release by `ledger replay` (deploy, smoke, decide; no build) | {replay_ms:.0} ms ({:.1}x faster) |",
        p.rebuild_ms / replay_ms
    );
    println!();
    Ok(())
}

/// The S3 store to measure: the test server `.ci/run` describes (LEDGER_TEST_S3_*),
/// else a moto server started here on loopback if moto is installed, else none.
struct S3 {
    env: Vec<(String, String)>,
    server: Option<std::process::Child>,
}

impl Drop for S3 {
    fn drop(&mut self) {
        if let Some(child) = &mut self.server {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn s3_env(vars: &dyn Fn(&str) -> Option<String>) -> Option<Vec<(String, String)>> {
    let pairs = [
        ("AWS_ENDPOINT_URL", vars("LEDGER_TEST_S3_ENDPOINT")?),
        ("AWS_ACCESS_KEY_ID", vars("LEDGER_TEST_S3_ACCESS_KEY_ID")?),
        (
            "AWS_SECRET_ACCESS_KEY",
            vars("LEDGER_TEST_S3_SECRET_ACCESS_KEY")?,
        ),
        ("AWS_ALLOW_HTTP", "true".into()),
        ("AWS_REGION", "us-east-1".into()),
        (
            "LEDGER_STORE",
            format!(
                "s3://{}/bench-{}",
                vars("LEDGER_TEST_S3_BUCKET")?,
                std::process::id()
            ),
        ),
    ];
    Some(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

fn start_s3() -> Result<Option<S3>, String> {
    if let Some(env) = s3_env(&|n| std::env::var(n).ok()) {
        return Ok(Some(S3 { env, server: None }));
    }
    let probe = Command::new("python3")
        .args(["-c", "import moto.server, boto3"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("bench: no S3 server (set LEDGER_TEST_S3_* or pip install 'moto[server]'); local store only");
        return Ok(None);
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let server = Command::new("python3")
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start moto: {e}"))?;
    let mut s3 = S3 {
        env: Vec::new(),
        server: Some(server),
    };
    let setup = crate::root().join(".ci").join("s3-setup.py");
    for _ in 0..40 {
        std::thread::sleep(std::time::Duration::from_millis(250));
        let out = Command::new("python3")
            .arg(&setup)
            .args([&endpoint, &endpoint, "ledger-bench"])
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let vars = |name: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(&format!("{name}=")).map(str::to_owned))
            };
            s3.env = s3_env(&vars).ok_or("s3-setup.py printed no settings")?;
            eprintln!("bench: started moto's S3 server on {endpoint}");
            return Ok(Some(s3));
        }
    }
    Err(format!("moto did not come up on {endpoint}"))
}

pub fn run(args: &[String]) -> Result<(), String> {
    let runs: usize = match args {
        [flag, n] if flag == "--runs" => n
            .parse()
            .map_err(|e| format!("--runs takes a number ({e})"))?,
        [] => 5,
        _ => return Err("usage: cargo xtask bench [--runs N]".into()),
    };
    let target = crate::root().join("target");
    let local_dir = target.join("ledger-bench");
    let local = pipeline(runs, &local_dir, &[])?;
    let s3 = start_s3()?;
    let remote = match &s3 {
        Some(s3) => Some(pipeline(runs, &target.join("ledger-bench-s3"), &s3.env)?),
        None => None,
    };
    println!("| stage | local: wall (median ms) | local: ledger overhead | S3: wall | S3: ledger overhead |");
    println!("|---|---:|---:|---:|---:|");
    for (i, stage) in STAGES.iter().enumerate() {
        let (s3_wall, s3_over) = remote.as_ref().map_or(("-".into(), "-".into()), |r| {
            (
                format!("{:.1}", r.stages[i].0),
                format!("{:.1}", r.stages[i].1),
            )
        });
        println!(
            "| {stage} | {:.1} | {:.1} | {s3_wall} | {s3_over} |",
            local.stages[i].0, local.stages[i].1
        );
    }
    println!(
        "\n{runs} runs on {} core(s); overhead = wall minus the wrapped work the evidence records (command, build+push, container start and health wait, HTTP checks). S3 is moto's server on loopback: per-request latency of a real bucket comes on top.\n",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    drop(s3);
    chain_measurements(&local_dir, &local)?;
    // verify --all against raw Ed25519, in the same run.
    crate::run_checked(crate::cargo().args([
        "bench",
        "-q",
        "-p",
        "ledger-pipeline",
        "--bench",
        "verify_all",
    ]))
}
