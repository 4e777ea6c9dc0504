//! `cargo xtask bench`: what `ledger` adds on top of the work each stage wraps.
//!
//! Runs the demo pipeline `--runs N` times (default 5), each on a new commit, timing
//! every `ledger stage` process from the outside, and reads from the evidence itself the
//! time spent in the wrapped work: the command (commit, integration), the engine's
//! build and push (build), the container operations and health wait (deploy), the HTTP
//! checks (smoke). Overhead is the difference: process start, policy and key loading,
//! gate evaluation (verifying upstream evidence), signing and storing. Medians are
//! printed as a Markdown table, ready for `docs/performance.md`.

mod goals;
mod s3;

use crate::demo;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

pub const STAGES: [&str; 7] = [
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

/// Store requests of one process, as `LEDGER_COUNT_REQUESTS` writes them.
#[derive(Debug, Clone, Copy, Default, serde::Deserialize)]
pub struct Requests {
    get: u64,
    head: u64,
    put: u64,
    list: u64,
    /// Of the gets, those of an object the process had read already.
    #[serde(default)]
    pub repeated: u64,
    /// The longest run of requests made one after another (a bucket's latency is
    /// paid once per round trip, however many requests are in flight together).
    #[serde(default)]
    pub round_trips: u64,
}

impl Requests {
    pub fn total(&self) -> u64 {
        self.get + self.head + self.put + self.list
    }
}

impl std::fmt::Display for Requests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({} get, {} head, {} put, {} list)",
            self.total(),
            self.get,
            self.head,
            self.put,
            self.list
        )?;
        match self.repeated {
            0 => {}
            n => write!(f, ", {n} read again")?,
        }
        write!(f, "; {} round trips", self.round_trips)
    }
}

/// The requests the last `ledger` process appended to `file`, which is then emptied.
fn take_requests(file: &Path) -> Result<Requests, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    std::fs::remove_file(file).map_err(|e| e.to_string())?;
    let line = text.lines().last().ok_or("ledger counted no requests")?;
    serde_json::from_str(line).map_err(|e| format!("request counts: {e}"))
}

/// What one series of pipeline runs measured.
pub struct Pipeline {
    /// Median wall time and median overhead per stage.
    pub stages: Vec<(f64, f64)>,
    /// Store requests per stage, in the last run.
    pub requests: Vec<Requests>,
    /// Store requests per stage in the second run (the first on a store with
    /// history), to compare with the last: they must not grow with the history.
    pub second_requests: Option<Vec<Requests>>,
    /// Store requests of `ledger verify` of the last SHA, after the runs.
    pub verify_requests: Requests,
    /// How many pipeline runs were measured.
    pub runs: usize,
    pub ledger: std::path::PathBuf,
    pub first_sha: String,
    pub last_sha: String,
    /// Median wall time of build through decide: what a release costs without replay.
    pub rebuild_ms: f64,
    /// The S3 server's own CPU milliseconds per stage (mean of the runs), when the
    /// server is a process on this machine.
    pub server_ms: Option<Vec<f64>>,
}

/// Median wall time and wrapped work per stage over `runs` pipeline runs in `dir`,
/// with `env` added to every `ledger` process (the store location), and the CPU
/// time `server` spent in each stage when it is a process here.
fn pipeline(
    runs: usize,
    dir: &Path,
    env: &[(String, String)],
    server: Option<&s3::S3>,
) -> Result<Pipeline, String> {
    let server_cpu = || server.and_then(s3::S3::server_cpu_ms);
    let mut server_ms: Option<Vec<f64>> = server_cpu().map(|_| vec![0.0; STAGES.len()]);
    let (ledger, mut sha) = demo::setup_with(dir, true)?;
    let first_sha = sha.clone();
    let mut wall: Vec<Vec<f64>> = vec![Vec::new(); STAGES.len()];
    let mut work: Vec<Vec<f64>> = vec![Vec::new(); STAGES.len()];
    let mut requests = vec![Requests::default(); STAGES.len()];
    let mut second_requests = None;
    let counts = dir.with_extension("requests.jsonl");
    let _ = std::fs::remove_file(&counts);
    for run in 0..runs {
        if run > 0 {
            sha = demo::new_commit(dir, "CHANGES", &format!("run {run}\n"))?;
        }
        for (i, stage) in STAGES.iter().enumerate() {
            let mut cmd = Command::new(&ledger);
            cmd.args(["stage", stage, "--sha", &sha])
                .current_dir(dir)
                .env("LEDGER_COUNT_REQUESTS", &counts)
                .envs(env.iter().map(|(k, v)| (k, v)));
            match *stage {
                "commit" => cmd.args(["--", "sh", "unit-tests.sh"]),
                "integration" => cmd.args(["--", "sh", "integration-tests.sh"]),
                _ => &mut cmd,
            };
            let cpu_before = server_cpu();
            let clock = Instant::now();
            let out = cmd.output().map_err(|e| e.to_string())?;
            let elapsed = clock.elapsed().as_secs_f64() * 1000.0;
            if let (Some(total), Some(b), Some(a)) = (&mut server_ms, cpu_before, server_cpu()) {
                total[i] += (a - b) / runs as f64;
            }
            if !out.status.success() {
                return Err(format!(
                    "{stage} failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            wall[i].push(elapsed);
            requests[i] = take_requests(&counts)?;
            let p = predicate(&ledger, dir, env, &sha, &key(stage, &sha))?;
            work[i].push(work_ms(stage, &p));
        }
        if run == 1 {
            second_requests = Some(requests.clone());
        }
        eprintln!("bench: run {} of {runs} done ({})", run + 1, &sha[..12]);
    }
    let verify_requests = verify_requests(&ledger, dir, env, &sha, &counts)?;
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
        requests,
        second_requests: second_requests.filter(|_| runs > 2),
        verify_requests,
        runs,
        ledger,
        first_sha,
        last_sha: sha,
        rebuild_ms: median(&mut rebuild),
        server_ms,
    })
}

/// The store requests of `ledger verify sha` in `dir`, counted into `counts`.
fn verify_requests(
    ledger: &Path,
    dir: &Path,
    env: &[(String, String)],
    sha: &str,
    counts: &Path,
) -> Result<Requests, String> {
    let out = Command::new(ledger)
        .args(["verify", sha])
        .current_dir(dir)
        .env("LEDGER_COUNT_REQUESTS", counts)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "verify failed: {}",
            String::from_utf8_lossy(&out.stdout)
        ));
    }
    take_requests(counts)
}

/// Median wall milliseconds of `times` runs of `cmd` (which must succeed).
pub fn median_timed(times: usize, mut cmd: impl FnMut() -> Command) -> Result<f64, String> {
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
    let local = pipeline(runs, &local_dir, &[], None)?;
    let s3 = s3::start_s3()?;
    let remote = match &s3 {
        Some(s3) => Some(pipeline(
            runs,
            &target.join("ledger-bench-s3"),
            &s3.env,
            Some(s3),
        )?),
        None => None,
    };
    stage_table(
        runs,
        &local,
        remote.as_ref(),
        s3.as_ref().map(s3::S3::described),
    );
    println!("| stage | store requests, local folder (last run) | store requests, S3 |");
    println!("|---|---|---|");
    for (i, stage) in STAGES.iter().enumerate() {
        let s3 = remote
            .as_ref()
            .map_or("-".into(), |r| r.requests[i].to_string());
        println!("| {stage} | {} | {s3} |", local.requests[i]);
    }
    let s3 = remote
        .as_ref()
        .map_or("-".into(), |r| r.verify_requests.to_string());
    println!(
        "| `verify` of the last SHA | {} | {s3} |",
        local.verify_requests
    );
    println!();
    drop(s3);
    let chain = goals::chain_measurements(&local_dir, &local)?;
    let calls = goals::instruction_counts(&local_dir, &local)?;
    goals::isolation(&local_dir, &local, 20)?;
    // verify --all against raw Ed25519, in the same run.
    let summary = target.join("verify-all-summary.json");
    let _ = std::fs::remove_file(&summary);
    crate::run_checked(
        crate::cargo()
            .args([
                "bench",
                "-q",
                "-p",
                "ledger-pipeline",
                "--bench",
                "verify_all",
            ])
            .env("LEDGER_BENCH_SUMMARY", &summary),
    )?;
    let walk_share = std::fs::read_to_string(&summary)
        .ok()
        .and_then(|t| serde_json::from_str::<WalkSummary>(&t).ok());
    println!();
    goals::goals(&local, remote.as_ref(), &chain, calls, walk_share)
}

/// Wall time and overhead per stage on both stores, with the S3 server's own CPU.
fn stage_table(runs: usize, local: &Pipeline, remote: Option<&Pipeline>, server: Option<String>) {
    println!("| stage | local: wall (median ms) | local: ledger overhead | S3: wall | S3: ledger overhead | S3: the server's CPU (mean) |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (i, stage) in STAGES.iter().enumerate() {
        let (s3_wall, s3_over, s3_cpu) = remote.map_or(("-".into(), "-".into(), "-".into()), |r| {
            (
                format!("{:.1}", r.stages[i].0),
                format!("{:.1}", r.stages[i].1),
                r.server_ms
                    .as_ref()
                    .map_or("-".into(), |ms| format!("{:.0}", ms[i])),
            )
        });
        println!(
            "| {stage} | {:.1} | {:.1} | {s3_wall} | {s3_over} | {s3_cpu} |",
            local.stages[i].0, local.stages[i].1
        );
    }
    println!(
        "\n{runs} runs on {} core(s); overhead = wall minus the wrapped work the evidence records (command, build+push, container start and health wait, HTTP checks). S3 is {}: per-request latency of a real bucket comes on top. The server's CPU is its process's user and system time during the stage (10 ms ticks, averaged over the runs).\n",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        server.as_deref().unwrap_or("not measured")
    );
}

/// What the `verify_all` benchmark reports back (`LEDGER_BENCH_SUMMARY`).
#[derive(serde::Deserialize)]
pub struct WalkSummary {
    /// The walk on every core in envelopes a second, as a share of strict Ed25519
    /// verification × cores.
    share_of_strict: f64,
    /// The same walk in signature checks a second (each envelope's and its
    /// checkpoint's), as a share of the same.
    checks_share_of_strict: f64,
}
