//! `cargo xtask demo`: the main job, end to end, on the local store.
//!
//! Builds `ledger` and the example service (a static binary for a `FROM scratch`
//! image), makes a throwaway git repository under `target/ledger-demo`, and runs what CI
//! jobs would: `ledger init`, then all seven stages (commit and integration around real
//! commands, build, publish, deploy and smoke on the local Docker engine, decide), then
//! `ledger verify` on the evidence. It prints every command so the output doubles as a
//! tutorial. Set `LEDGER_DEMO_REGISTRY=127.0.0.1:5000` to push to a registry.

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

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// Says what the demo does next, so a long step (the first compile) is never silent.
fn step(what: &str) {
    println!("\n==> {what}");
}

fn ledger_bin(release: bool) -> Result<PathBuf, String> {
    step("building ledger (cargo's progress follows; a first build takes minutes)");
    let mut build = cargo();
    build.args(["build", "-p", "ledger-cli"]);
    if release {
        build.arg("--release");
    }
    run_checked(&mut build)?;
    let profile = if release { "release" } else { "debug" };
    Ok(target_dir().join(profile).join("ledger"))
}

pub fn host_triple() -> String {
    Command::new("rustc")
        .arg("-vV")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        })
        .unwrap_or_else(|| "x86_64-unknown-linux-gnu".into())
}

/// The example service as a statically linked binary (a scratch image has no libc).
pub fn service_bin() -> Result<PathBuf, String> {
    let triple = host_triple();
    let dir = target_dir().join("example");
    step("building the example service as a static binary for a FROM scratch image");
    run_checked(
        cargo()
            .args([
                "build",
                "--release",
                "-p",
                "ledger-example-service",
                "--target",
                &triple,
            ])
            .arg("--target-dir")
            .arg(&dir)
            .env("RUSTFLAGS", "-C target-feature=+crt-static"),
    )?;
    Ok(dir
        .join(triple)
        .join("release")
        .join("ledger-example-service"))
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

/// Builds what the demo needs and makes its repository in `dir`, with `ledger init`
/// done and one commit. Returns the `ledger` binary and the commit SHA.
pub fn setup(dir: &Path) -> Result<(PathBuf, String), String> {
    setup_with(dir, false)
}

/// [`setup`] with an optimised `ledger` when `release` (for measurements).
pub fn setup_with(dir: &Path, release: bool) -> Result<(PathBuf, String), String> {
    let ledger = ledger_bin(release)?;
    let service = service_bin()?;
    let dir = dir.to_path_buf();
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
    let example = root().join("examples").join("service");
    let mut config =
        fs::read_to_string(example.join("ledger.toml")).map_err(|e| format!("ledger.toml: {e}"))?;
    if let Ok(registry) = std::env::var("LEDGER_DEMO_REGISTRY") {
        config = config.replace(
            "# registry = \"127.0.0.1:5000\"",
            &format!("registry = \"{registry}\""),
        );
    }
    write("ledger.toml", &config)?;
    fs::create_dir_all(dir.join("image")).map_err(|e| format!("image/: {e}"))?;
    fs::copy(
        example.join("image").join("Dockerfile"),
        dir.join("image").join("Dockerfile"),
    )
    .map_err(|e| format!("Dockerfile: {e}"))?;
    fs::copy(&service, dir.join("image").join("ledger-example-service"))
        .map_err(|e| format!("service binary: {e}"))?;
    // The service binary is committed: images are built from the commit's own tree,
    // so an ignored file would not be in the build context.

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
    step(&format!(
        "making the demo repository in {}: git init, then ledger init",
        dir.display()
    ));
    run_checked(git(&["init", "--quiet"]).arg("-b").arg("main"))?;
    expect(Command::new(&ledger).arg("init"), &dir, 0)?;
    run_checked(&mut git(&["add", "."]))?;
    run_checked(&mut git(&["commit", "--quiet", "-m", "Release 1.0.0"]))?;
    let out = git(&["rev-parse", "HEAD"])
        .output()
        .map_err(|e| format!("git rev-parse: {e}"))?;
    let sha = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    Ok((ledger, sha))
}

/// Commits a change to `file` in the demo repository; returns the new SHA.
pub fn new_commit(dir: &Path, file: &str, text: &str) -> Result<String, String> {
    fs::write(dir.join(file), text).map_err(|e| format!("cannot write {file}: {e}"))?;
    commit_all(dir, &format!("Change {file}"))
}

/// Commits everything in the demo repository; returns the new SHA.
fn commit_all(dir: &Path, message: &str) -> Result<String, String> {
    let git = |args: &[&str]| -> Result<std::process::Output, String> {
        let out = Command::new("git")
            .args([
                "-c",
                "user.name=ledger demo",
                "-c",
                "user.email=demo@example.invalid",
            ])
            .args(args)
            .current_dir(dir)
            .output()
            .map_err(|e| format!("git: {e}"))?;
        if out.status.success() {
            Ok(out)
        } else {
            Err(format!(
                "git {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    };
    git(&["add", "."])?;
    git(&["commit", "--quiet", "-m", message])?;
    let out = git(&["rev-parse", "HEAD"])?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// All seven stages for HEAD, each expected to pass, then `verify`. Deploy and smoke
/// run in canary first; `ledger promote` then takes the same digests to production,
/// which is smoked before the decision.
fn release(ledger: &Path, dir: &Path, sha: &str) -> Result<(), String> {
    step(&format!(
        "releasing {}: the seven stages, canary then production",
        &sha[..12.min(sha.len())]
    ));
    let ledger_cmd = |args: &[&str]| {
        let mut c = Command::new(ledger);
        c.args(args);
        c
    };
    expect(
        &mut ledger_cmd(&["stage", "commit", "--", "sh", "unit-tests.sh"]),
        dir,
        0,
    )?;
    expect(
        &mut ledger_cmd(&["stage", "integration", "--", "sh", "integration-tests.sh"]),
        dir,
        0,
    )?;
    for args in [
        &["stage", "build"][..],
        &["stage", "publish"],
        &["stage", "deploy", "--env", "canary"],
        &["stage", "smoke", "--env", "canary"],
        &["promote", sha, "--to", "production"],
        &["stage", "smoke", "--env", "production"],
        &["stage", "decide"],
    ] {
        expect(&mut ledger_cmd(args), dir, 0)?;
    }
    step("verifying the evidence offline");
    expect(&mut ledger_cmd(&["verify", sha]), dir, 0)
}

/// Adds the rule that production is entered only by promotion from canary to the
/// demo's policy, as a release manager would, and has the policy owner sign the
/// change (an unsigned policy gates nothing).
fn require_promotion(ledger: &Path, dir: &Path) -> Result<(), String> {
    let path = dir.join("policy").join("pipeline-policy.json");
    let text = fs::read_to_string(&path).map_err(|e| format!("policy: {e}"))?;
    let mut policy: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("policy: {e}"))?;
    policy["environments"] = serde_json::json!({
        "production": { "promotion": { "from": "canary", "min_soak_seconds": 0 } }
    });
    let text = serde_json::to_string_pretty(&policy).map_err(|e| e.to_string())?;
    step("a policy change, signed by its owner: production only by promotion");
    fs::write(&path, text + "\n").map_err(|e| format!("policy: {e}"))?;
    println!("$ (policy) production is entered only by `ledger promote` from canary");
    expect(Command::new(ledger).args(["policy", "sign"]), dir, 0)
}

/// `cargo xtask demo [--replay]`: one release end to end; with `--replay`, a second
/// release follows and the first is then replayed from its stored manifest.
pub fn run(args: &[String]) -> Result<(), String> {
    let replay = match args {
        [] => false,
        [flag] if flag == "--replay" => true,
        _ => return Err("usage: cargo xtask demo [--replay]".into()),
    };
    let dir = root().join("target").join("ledger-demo");
    let (ledger, _) = setup(&dir)?;
    // The policy change is committed like any other: wrapped stages refuse a tree
    // that differs from the commit they record.
    require_promotion(&ledger, &dir)?;
    let sha = commit_all(&dir, "Production only by promotion from canary")?;
    release(&ledger, &dir, &sha)?;
    // Read commands take any git revision and default to HEAD.
    step("reading the release back: by HEAD and by the short SHA git prints");
    let short = &sha[..7.min(sha.len())];
    for args in [
        &["show", "HEAD"][..],
        &["report", "HEAD"],
        &["verify", short],
    ] {
        expect(Command::new(&ledger).args(args), &dir, 0)?;
    }
    if replay {
        step("a second release, then the first replayed from its stored manifest");
        let second = new_commit(&dir, "VERSION", "1.1.0\n")?;
        release(&ledger, &dir, &second)?;
        expect(Command::new(&ledger).args(["replay", &sha]), &dir, 0)?;
        expect(Command::new(&ledger).arg("status"), &dir, 0)?;
        println!(
            "\nReplayed {sha} after {second}: the first release's digests run again, built once."
        );
    }

    println!(
        "\nDemo complete: commit {sha} went through all seven stages, canary then production."
    );
    println!("Evidence:  {}", dir.join(".artifacts").display());
    println!("Service:   curl http://127.0.0.1:18080/ (production), :18081 (canary); label dev.ledger.project=ledger-demo");
    println!(
        "Verify:    cd {} && {} verify {sha}",
        dir.display(),
        ledger.display()
    );
    println!(
        "Stop it:   docker rm -f $(docker ps -q --filter label=dev.ledger.project=ledger-demo)"
    );
    Ok(())
}
