//! `cargo xtask`: the project's automation, in Rust so anyone can read it.
//!
//! * `cargo xtask test`: the test command CI runs: tidy checks, `cargo fmt --check`,
//!   then every test, two threads a core, in one build (with the GCS and Azure store
//!   backends) whose workspace crates clippy lints with warnings denied.
//! * `cargo xtask demo`: the main job: a throwaway git repository runs the pipeline
//!   on the local store and verifies its evidence; `--replay` adds a second release
//!   and replays the first from its stored manifest.
//! * `cargo xtask tidy [CHECK…]`: architecture and hygiene checks on the source tree
//!   (all of them, or only those named: deps, verify-path, cycles, size, predicates,
//!   docs, jargon).
//! * `cargo xtask fuzz`: every `cargo fuzz` target, coverage-guided and bounded; part
//!   of `test` when `LEDGER_FUZZ_SECONDS` is set (the bodies always run as tests).
//! * `cargo xtask dist`: the stripped `ledger` binary as a tarball with its SHA-256,
//!   what CI runners download ([`dist`]).
//! * `cargo xtask bench`: per-stage overhead of `ledger` beside the work it wraps, on
//!   the local folder and on S3, then `verify --all` against raw Ed25519.
//!
//! Only the standard library, serde and serde_json are used, so the tool costs little
//! to build.

mod bench;
mod demo;
mod dist;
mod fuzz;
mod tidy;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("demo") => demo::run(&args[1..]),
        Some("tidy") => tidy::run(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
        Some("fuzz") => fuzz::run(&args[1..]),
        Some("dist") => dist::run(&args[1..]),
        _ => {
            eprintln!("usage: cargo xtask <test|demo|tidy|bench|fuzz|dist>");
            eprintln!("  test   tidy, fmt and clippy, then the whole test suite (what CI runs)");
            eprintln!("  demo   run the pipeline end to end in a throwaway repository");
            eprintln!("         (--replay: a second release, then the first replayed)");
            eprintln!("  tidy   architecture and hygiene checks (or only the named ones:");
            eprintln!("         deps verify-path cycles size predicates docs jargon)");
            eprintln!("  bench  per-stage overhead of ledger beside the work it wraps");
            eprintln!("  fuzz   every cargo-fuzz target, bounded (--seconds N, default 30)");
            eprintln!("  dist   the stripped binary, packed with its SHA-256, for CI runners");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (the parent of this crate).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The cargo that runs this xtask.
pub fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

/// Runs `cmd`, failing with its description when it fails.
pub fn run_checked(cmd: &mut Command) -> Result<(), String> {
    let status = cmd
        .status()
        .map_err(|e| format!("could not run {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed with {status}"))
    }
}

fn test(extra: &[String]) -> Result<(), String> {
    tidy::run(&[])?;
    run_checked(cargo().args(["fmt", "--all", "--check"]))?;
    // Clippy and the tests in one build: the workspace's own crates are compiled by
    // clippy's driver (what `cargo clippy` runs, here with code generation), so a lint
    // fails the build and the workspace is compiled once, not once to lint and once to
    // test. Dependencies are built as by a plain `cargo test`. The GCS and Azure
    // backends, left out of the default build, are in this one, so they are linted and
    // tested without a second, check-only build of every dependency (that was 3.4
    // minutes of a fresh CI run; the two features add no crate but `httparse`).
    let mut cmd = cargo();
    cmd.args(["test", "--workspace", "--all-targets"])
        .args(["--features", "ledger-store/gcs,ledger-store/azure"])
        .args(extra)
        .env("RUSTC_WORKSPACE_WRAPPER", "clippy-driver")
        .env(
            "CLIPPY_ARGS",
            "-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__",
        );
    // Most of the cross-crate suite waits: on the engine, the registries, the S3
    // server, child processes. Two test threads a core keep the cores busy (on 2 cores:
    // 350 s with libtest's default of one a core, 239 s with two a core, 230 s with
    // four a core and the cores saturated). `RUST_TEST_THREADS` set by the caller wins.
    if std::env::var_os("RUST_TEST_THREADS").is_none() {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        cmd.env("RUST_TEST_THREADS", (2 * cores).to_string());
    }
    run_checked(&mut cmd)?;
    // The coverage-guided fuzz run, where it is cheap: only when asked for
    // (`LEDGER_FUZZ_SECONDS`) and cargo-fuzz is installed. The targets' bodies always run
    // as tests over their corpora (`tests/it/fuzz_bodies.rs`).
    match std::env::var("LEDGER_FUZZ_SECONDS") {
        Ok(s) if !s.is_empty() => fuzz::run(&["--seconds".into(), s]),
        _ => Ok(()),
    }
}
