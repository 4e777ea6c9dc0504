//! `cargo xtask dist`: the binary a CI runner or a laptop downloads.
//!
//! Builds `ledger` with the release profile (stripped, whole-program LTO: see the
//! workspace's Cargo.toml) and packs it as
//! `target/dist-pkg/ledger-<version>-<target>.tar.gz` with a `.sha256` beside it, the
//! way teams keep tools in an artifact store: CI jobs download both and check the
//! digest before running it (docs/ci/ shows how). The binary links the system's
//! glibc; a fully static (musl) build needs the `x86_64-unknown-linux-musl` target
//! installed, and `--target TRIPLE` builds for it when it is.

use crate::{cargo, root, run_checked};
use std::path::PathBuf;
use std::process::Command;

/// `cargo xtask dist [--target TRIPLE]`.
pub fn run(args: &[String]) -> Result<(), String> {
    let target = match args {
        [] => None,
        [flag, triple] if flag == "--target" => Some(triple.clone()),
        _ => return Err("usage: cargo xtask dist [--target TRIPLE]".into()),
    };
    println!("==> building ledger with the release profile (cargo's progress follows)");
    let mut build = cargo();
    build.args(["build", "--locked", "--release", "-p", "ledger-cli"]);
    if let Some(t) = &target {
        build.args(["--target", t]);
    }
    run_checked(&mut build)?;

    let triple = target.unwrap_or_else(crate::demo::host_triple);
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    let built = match args {
        [] => target_dir.join("release").join("ledger"),
        _ => target_dir.join(&triple).join("release").join("ledger"),
    };
    let version = env!("CARGO_PKG_VERSION");
    let name = format!("ledger-{version}-{triple}");
    let out = target_dir.join("dist-pkg");
    let stage = out.join(&name);
    std::fs::create_dir_all(&stage).map_err(|e| format!("{}: {e}", stage.display()))?;
    std::fs::copy(&built, stage.join("ledger")).map_err(|e| format!("{}: {e}", built.display()))?;
    let tarball = format!("{name}.tar.gz");
    run_checked(Command::new("tar").current_dir(&out).args([
        "--owner=0",
        "--group=0",
        "--numeric-owner",
        "-czf",
        &tarball,
        &name,
    ]))?;
    let sum = Command::new("sha256sum")
        .current_dir(&out)
        .arg(&tarball)
        .output()
        .map_err(|e| format!("sha256sum: {e}"))?;
    if !sum.status.success() {
        return Err("sha256sum failed".into());
    }
    std::fs::write(out.join(format!("{tarball}.sha256")), &sum.stdout)
        .map_err(|e| format!("{tarball}.sha256: {e}"))?;
    let size = std::fs::metadata(stage.join("ledger")).map_or(0, |m| m.len());
    println!(
        "==> {} ({:.1} MB binary)\n    {}.sha256",
        out.join(&tarball).display(),
        size as f64 / 1e6,
        out.join(&tarball).display()
    );
    Ok(())
}
