//! `cargo xtask fuzz [--seconds N]`: every `cargo fuzz` target for N seconds (default
//! 30), corpora seeded from the schema fixtures and `fuzz/seeds/`. CI runs it briefly through
//! `cargo xtask test` when `LEDGER_FUZZ_SECONDS` is set; longer runs are in
//! `fuzz/README.md`.

use crate::{root, run_checked};
use std::path::Path;
use std::process::Command;

const TARGETS: [&str; 5] = ["envelope", "statement", "policy", "keys", "json"];

fn cargo_fuzz(dir: &Path) -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.arg("fuzz").current_dir(dir).env("RUSTC_BOOTSTRAP", "1");
    c
}

/// Copies the fixtures that fit `target`, and its committed seeds (`fuzz/seeds/<target>/`),
/// into its corpus folder.
fn seed(target: &str, corpus: &Path) -> Result<(), String> {
    std::fs::create_dir_all(corpus).map_err(|e| format!("{}: {e}", corpus.display()))?;
    let fixtures = root().join("schemas").join("fixtures");
    let dirs: Vec<std::path::PathBuf> = match target {
        "policy" => vec![
            fixtures.join("policy/valid"),
            fixtures.join("policy/invalid"),
        ],
        "statement" | "envelope" | "json" => std::fs::read_dir(&fixtures)
            .map_err(|e| e.to_string())?
            .flatten()
            .map(|e| e.path().join("valid"))
            .collect(),
        _ => Vec::new(),
    };
    let seeds = root().join("fuzz").join("seeds").join(target);
    for entry in std::fs::read_dir(&seeds).into_iter().flatten().flatten() {
        let _ = std::fs::copy(entry.path(), corpus.join(entry.file_name()));
    }
    for dir in dirs {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = format!(
                "{}-{}",
                dir.parent()
                    .and_then(|p| p.file_name())
                    .map_or("x".into(), |n| n.to_string_lossy().into_owned()),
                entry.file_name().to_string_lossy()
            );
            let _ = std::fs::copy(entry.path(), corpus.join(name));
        }
    }
    Ok(())
}

pub fn run(args: &[String]) -> Result<(), String> {
    let seconds: u64 = match args {
        [flag, n] if flag == "--seconds" => n
            .parse()
            .map_err(|e| format!("--seconds takes a number ({e})"))?,
        [] => 30,
        _ => return Err("usage: cargo xtask fuzz [--seconds N]".into()),
    };
    let dir = root().join("fuzz");
    let probe = cargo_fuzz(&dir).arg("--version").output();
    if !probe.is_ok_and(|o| o.status.success()) {
        return Err("cargo-fuzz is not installed: cargo install cargo-fuzz --locked".into());
    }
    run_checked(cargo_fuzz(&dir).args(["build", "-O"]))?;
    for target in TARGETS {
        let corpus = dir.join("corpus").join(target);
        seed(target, &corpus)?;
        eprintln!("fuzz: {target} for {seconds} s");
        run_checked(
            cargo_fuzz(&dir)
                .args(["run", "-O", target])
                .arg(&corpus)
                .args([
                    "--",
                    &format!("-max_total_time={seconds}"),
                    "-rss_limit_mb=2048",
                    "-print_final_stats=1",
                ]),
        )?;
    }
    Ok(())
}
