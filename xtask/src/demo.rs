//! `cargo xtask demo`: the main job, end to end, on the local store.
//!
//! Builds `ledger`, makes a throwaway git repository under `target/ledger-demo`, and
//! runs what a CI job would: `ledger init`, the commit and integration stages around
//! real commands, then `ledger verify` on the evidence. It prints every command so the
//! output doubles as a tutorial.

use crate::{cargo, root, run_checked};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const UNIT_TESTS: &str = r#"#!/bin/sh
# The demo's fast checks: the version file is well formed.
set -e
passed=0
grep -Eq '^[0-9]+\.[0-9]+\.[0-9]+$' VERSION && passed=$((passed+1))
test -s README && passed=$((passed+1))
echo "$passed passed, 0 failed"
"#;

const INTEGRATION_TESTS: &str = r#"#!/bin/sh
# The demo's integration suite: the service's config parses as key=value lines.
set -e
n=$(grep -c '=' service.conf)
echo "checked $n settings"
echo "$n passed, 0 failed"
"#;

fn ledger_bin() -> Result<PathBuf, String> {
    run_checked(cargo().args(["build", "--quiet", "-p", "ledger-cli"]))?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    Ok(target.join("debug").join("ledger"))
}

fn show(cmd: &mut Command, dir: &Path) -> Result<std::process::ExitStatus, String> {
    let args: Vec<String> = cmd
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let program = Path::new(cmd.get_program())
        .file_name()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    println!("\n$ {program} {}", args.join(" "));
    cmd.current_dir(dir)
        .status()
        .map_err(|e| format!("could not run {program}: {e}"))
}

fn expect(cmd: &mut Command, dir: &Path, code: i32) -> Result<(), String> {
    let status = show(cmd, dir)?;
    if status.code() == Some(code) {
        Ok(())
    } else {
        Err(format!("expected exit code {code}, got {status}"))
    }
}

pub fn run(_args: &[String]) -> Result<(), String> {
    let ledger = ledger_bin()?;
    let dir = root().join("target").join("ledger-demo");
    if dir.exists() {
        fs::remove_dir_all(&dir).map_err(|e| format!("cannot clear {}: {e}", dir.display()))?;
    }
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let write = |name: &str, text: &str| {
        fs::write(dir.join(name), text).map_err(|e| format!("cannot write {name}: {e}"))
    };
    write("VERSION", "1.0.0\n")?;
    write("README", "A service released with ledger.\n")?;
    write("service.conf", "port=8080\nlog=info\n")?;
    write("unit-tests.sh", UNIT_TESTS)?;
    write("integration-tests.sh", INTEGRATION_TESTS)?;

    let git = |args: &[&str]| {
        let mut c = Command::new("git");
        c.args([
            "-c",
            "user.name=ledger demo",
            "-c",
            "user.email=demo@example.invalid",
        ]);
        c.args(args);
        c.current_dir(&dir);
        c
    };
    run_checked(git(&["init", "--quiet"]).arg("-b").arg("main"))?;
    expect(Command::new(&ledger).arg("init"), &dir, 0)?;
    run_checked(&mut git(&["add", "."]))?;
    run_checked(&mut git(&["commit", "--quiet", "-m", "Release 1.0.0"]))?;
    let out = git(&["rev-parse", "HEAD"])
        .output()
        .map_err(|e| format!("git rev-parse: {e}"))?;
    let sha = String::from_utf8_lossy(&out.stdout).trim().to_owned();

    let ledger_cmd = |args: &[&str]| {
        let mut c = Command::new(&ledger);
        c.args(args);
        c
    };
    expect(
        &mut ledger_cmd(&["stage", "commit", "--", "sh", "unit-tests.sh"]),
        &dir,
        0,
    )?;
    expect(
        &mut ledger_cmd(&["stage", "integration", "--", "sh", "integration-tests.sh"]),
        &dir,
        0,
    )?;
    expect(&mut ledger_cmd(&["verify", &sha]), &dir, 0)?;

    println!("\nDemo complete. Commit {sha} has verified evidence in");
    println!("  {}", dir.join(".artifacts").display());
    println!(
        "Inspect it with: cd {} && {} verify {sha} --json",
        dir.display(),
        ledger.display()
    );
    Ok(())
}
