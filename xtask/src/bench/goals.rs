//! The one-chain measurements (cold start, verify against Python, replay against
//! rebuild), instruction counts, and the goals table that closes `cargo xtask bench`.

use super::{median_timed as timed, Pipeline, Requests, WalkSummary, STAGES};
use crate::demo;
use std::path::Path;
use std::process::Command;

/// What one chain measured, in the same run as the pipelines.
pub struct Chain {
    artifacts: usize,
    /// Median cold `ledger --version`: starting the process and nothing else.
    version_ms: f64,
    /// Median cold `ledger verify <sha>`.
    verify_ms: f64,
    /// `docs/audit/verify_chain.py` on the same chain, when securesystemslib is there.
    python_ms: Option<f64>,
}

/// Prints what isolating a wrapped command costs: the median wall of `stage commit
/// -- true` against the same stage with `--no-isolation`, alternated, `runs` of each
/// on one new commit. The stage overhead cannot show it: the isolation starts and
/// ends inside the command's recorded duration, which counts as wrapped work. Run
/// last on the store: every stage it adds is a log entry and a checkpoint that a
/// later `verify` would check too.
pub fn isolation(dir: &Path, p: &Pipeline, runs: usize) -> Result<(), String> {
    let ms = isolation_ms(dir, p, runs)?;
    println!("| measurement | value |");
    println!("|---|---:|");
    println!("| isolating a wrapped command: `stage commit -- true` against `--no-isolation` (medians of {runs}, alternated; inside the command's recorded time, so not in the stage overhead) | {ms:.1} ms |");
    println!();
    Ok(())
}

fn isolation_ms(dir: &Path, p: &Pipeline, runs: usize) -> Result<f64, String> {
    let sha = demo::new_commit(dir, "CHANGES", "isolation\n")?;
    let timed = |isolated: bool| -> Result<f64, String> {
        let mut c = Command::new(&p.ledger);
        c.args(["stage", "commit", "--sha", &sha]).current_dir(dir);
        if !isolated {
            c.arg("--no-isolation");
        }
        let clock = std::time::Instant::now();
        let out = c.args(["--", "true"]).output().map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "{c:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(clock.elapsed().as_secs_f64() * 1000.0)
    };
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        with.push(timed(true)?);
        without.push(timed(false)?);
    }
    Ok(super::median(&mut with) - super::median(&mut without))
}

/// Cold `ledger --version` and `ledger verify`, the same chain by securesystemslib,
/// and replay against rebuild, on the local series.
pub fn chain_measurements(dir: &Path, p: &Pipeline) -> Result<Chain, String> {
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
    let version_ms = timed(20, || {
        let mut c = Command::new(&p.ledger);
        c.arg("--version").current_dir(dir);
        c
    })?;
    let verify_ms = timed(20, || {
        let mut c = Command::new(&p.ledger);
        c.args(["verify", sha]).current_dir(dir);
        c
    })?;
    let script = crate::root().join("docs/audit/verify_chain.py");
    let python_ms = timed(5, || {
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
    println!("| `ledger --version`, cold process (median of 20) | {version_ms:.1} ms |");
    println!("| `ledger verify <sha>`, cold process, {artifacts}-artifact chain (median of 20) | {verify_ms:.1} ms |");
    match python_ms {
        Some(ms) => println!(
            "| the same chain, `docs/audit/verify_chain.py` (Python securesystemslib), cold | {ms:.0} ms ({:.0}x ledger) |",
            ms / verify_ms
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
    Ok(Chain {
        artifacts,
        version_ms,
        verify_ms,
        python_ms,
    })
}

/// Instructions (callgrind's `Ir`) that one `ledger` process executes: repeatable
/// whatever else the machine does. `None` when valgrind is not installed.
fn instructions(ledger: &Path, dir: &Path, args: &[&str]) -> Result<Option<u64>, String> {
    let probe = Command::new("valgrind").arg("--version").output();
    if !probe.is_ok_and(|o| o.status.success()) {
        return Ok(None);
    }
    let out_file = dir.with_extension("callgrind.out");
    let out = Command::new("valgrind")
        .args(["--tool=callgrind", "--quiet"])
        .arg(format!("--callgrind-out-file={}", out_file.display()))
        .arg(ledger)
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "ledger {} under callgrind failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let text = std::fs::read_to_string(&out_file).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(&out_file);
    text.lines()
        .find_map(|l| {
            l.strip_prefix("summary: ")
                .or_else(|| l.strip_prefix("totals: "))
        })
        .and_then(|n| n.trim().parse().ok())
        .map(Some)
        .ok_or_else(|| "callgrind wrote no summary".into())
}

/// Instruction counts of cold `ledger verify` and of one whole stage (`commit` on a
/// new commit, wrapping `true`: the stage's own work, not the command's).
pub fn instruction_counts(dir: &Path, p: &Pipeline) -> Result<Option<(u64, u64)>, String> {
    let Some(verify) = instructions(&p.ledger, dir, &["verify", &p.last_sha])? else {
        return Ok(None);
    };
    let sha = demo::new_commit(dir, "CHANGES", "callgrind\n")?;
    let Some(stage) = instructions(
        &p.ledger,
        dir,
        &["stage", "commit", "--sha", &sha, "--", "true"],
    )?
    else {
        return Ok(None);
    };
    Ok(Some((verify, stage)))
}

/// One row of the goals table.
fn goal(name: &str, target: &str, measured: String, holds: Option<bool>) {
    let verdict = match holds {
        Some(true) => "yes",
        Some(false) => "**no**",
        None => "reported",
    };
    println!("| {name} | {target} | {measured} | {verdict} |");
}

/// The goals of docs/performance.md, each with what this run measured.
pub fn goals(
    local: &Pipeline,
    remote: Option<&Pipeline>,
    chain: &Chain,
    calls: Option<(u64, u64)>,
    walk_share: Option<WalkSummary>,
) -> Result<(), String> {
    println!("| goal | target | measured (this run) | holds |");
    println!("|---|---|---|---|");
    let ratio = chain.verify_ms / chain.version_ms;
    goal(
        &format!(
            "cold `ledger verify`, {}-artifact chain, against cold `ledger --version`",
            chain.artifacts
        ),
        "≤ 2×",
        format!(
            "{ratio:.2}× ({:.1} ms against {:.1} ms)",
            chain.verify_ms, chain.version_ms
        ),
        Some(ratio <= 2.0),
    );
    match chain.python_ms {
        Some(py) => {
            let times = py / chain.verify_ms;
            goal(
                "the same chain: `docs/audit/verify_chain.py` against `ledger verify`",
                "≥ 100×",
                format!("{times:.0}× ({py:.0} ms against {:.1} ms)", chain.verify_ms),
                Some(times >= 100.0),
            );
        }
        None => goal(
            "`verify_chain.py` against `ledger verify`",
            "≥ 100×",
            "securesystemslib missing".into(),
            Some(false),
        ),
    }
    let (worst, over) = STAGES
        .iter()
        .zip(&local.stages)
        .map(|(s, (_, o))| (*s, *o))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .ok_or("no stages")?;
    goal(
        "stage overhead, local folder (wall minus wrapped work), every stage",
        "≤ 10 ms",
        format!("at most {over:.1} ms ({worst})"),
        Some(over <= 10.0),
    );
    s3_goal(local, remote);
    other_goals(local, chain, calls, walk_share)
}

/// The goal on S3: `decide`'s overhead there against the local folder, with the
/// server's own CPU time in it when the server is a process here.
fn s3_goal(local: &Pipeline, remote: Option<&Pipeline>) {
    let decide = STAGES.len() - 1;
    match remote {
        Some(r) => {
            let (s3, here) = (r.stages[decide].1, local.stages[decide].1);
            let times = s3 / here;
            let mut measured = format!("{times:.1}× ({s3:.1} ms against {here:.1} ms)");
            // moto serves requests under Python's global lock: its CPU time is time
            // the stage waits whatever the client overlaps.
            if let Some(cpu) = r.server_ms.as_ref().map(|ms| ms[decide]) {
                let n = r.requests[decide].total().max(1);
                measured.push_str(&format!(
                    "; of it, the server's own CPU: {cpu:.0} ms for {n} requests ({:.1} ms each), alone {:.1}× the local overhead",
                    cpu / n as f64,
                    cpu / here
                ));
            }
            goal(
                "`decide` overhead on S3 against the local folder",
                "≤ 3×",
                measured,
                Some(times <= 3.0),
            );
        }
        None => goal(
            "`decide` on S3 against local",
            "≤ 3×",
            "no S3 server".into(),
            Some(false),
        ),
    }
}

/// The goals on requests, `verify --all`, size, start-up, instructions and CI.
fn other_goals(
    local: &Pipeline,
    chain: &Chain,
    calls: Option<(u64, u64)>,
    walk_share: Option<WalkSummary>,
) -> Result<(), String> {
    requests_goal(local);
    match walk_share {
        // Judged in envelopes a second, as the goal was set; every envelope also
        // brings its checkpoint's signature, so the share in checks is reported too.
        Some(w) => goal(
            "`verify --all` against strict Ed25519 verification × cores",
            "≥ 70 %",
            format!(
                "{:.0} % in envelopes ({:.0} % counted in signature checks: each envelope's and its checkpoint's)",
                w.share_of_strict * 100.0,
                w.checks_share_of_strict * 100.0
            ),
            Some(w.share_of_strict >= 0.70),
        ),
        None => goal(
            "`verify --all`",
            "≥ 70 %",
            "not measured".into(),
            Some(false),
        ),
    }
    let bytes = std::fs::metadata(&local.ledger)
        .map_err(|e| e.to_string())?
        .len();
    let mb = bytes as f64 / 1e6;
    goal(
        "release binary (`target/release/ledger`)",
        "< 25 MB",
        format!("{mb:.1} MB"),
        Some(mb < 25.0),
    );
    goal(
        "start-up: cold `ledger --version`",
        "reported",
        format!("{:.1} ms", chain.version_ms),
        None,
    );
    match calls {
        Some((verify, stage)) => goal(
            "instructions (callgrind): cold `ledger verify`; one `ledger stage commit -- true`",
            "reported",
            format!("{:.1} M; {:.1} M", verify as f64 / 1e6, stage as f64 / 1e6),
            None,
        ),
        None => goal(
            "instructions (callgrind)",
            "reported",
            "valgrind not installed".into(),
            None,
        ),
    }
    goal(
        "`.ci/run` on a fresh clone of a fresh machine",
        "< 15 min",
        "not measured here: `.ci/run` prints its elapsed seconds".into(),
        None,
    );
    Ok(())
}

/// The goal on store requests: the minimum a stage needs is fixed (docs/performance.md
/// lists it); what it must not do is read more as the store's history grows (compared
/// between the second run and the last, on the local folder) or read an object twice.
fn requests_goal(local: &Pipeline) {
    let decide = STAGES.len() - 1;
    let most = local
        .requests
        .iter()
        .map(Requests::total)
        .max()
        .unwrap_or(0);
    let grown: Vec<&str> = match &local.second_requests {
        Some(second) => STAGES
            .iter()
            .zip(second.iter().zip(&local.requests))
            .filter(|(_, (early, late))| late.total() > early.total())
            .map(|(stage, _)| *stage)
            .collect(),
        None => STAGES.to_vec(),
    };
    let again: Vec<&str> = STAGES
        .iter()
        .zip(&local.requests)
        .filter(|(_, r)| r.repeated > 0)
        .map(|(stage, _)| *stage)
        .collect();
    let mut measured = match (&local.second_requests, grown.is_empty()) {
        (None, _) => "needs --runs 3 or more".to_owned(),
        (Some(_), true) => format!(
            "{most} at most (decide: {}), the same in run 2 and run {}",
            local.requests[decide], local.runs
        ),
        (Some(_), false) => {
            format!("{most} at most; more in the last run: {}", grown.join(", "))
        }
    };
    if again.is_empty() {
        measured += "; no object read twice";
    } else {
        measured += &format!("; an object read twice by {}", again.join(", "));
    }
    goal(
        "store requests per stage (counted; the table above, explained in docs/performance.md)",
        "the minimum each stage needs: none more in the last run than in the second, no object read twice",
        measured,
        Some(local.second_requests.is_some() && grown.is_empty() && again.is_empty()),
    );
}
