//! The cross-crate suite: runs the real `ledger` binary on real files, the way CI jobs
//! and auditors do. One test binary; each module is one area, and `Repo` makes each
//! case a few lines.

mod bad_input;
mod foundation;
mod interop;
mod tamper;

use std::path::{Path, PathBuf};
use std::process::Output;

/// A commit SHA used throughout.
pub const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

/// A throwaway git repository with `ledger` set up in it.
pub struct Repo {
    pub dir: tempfile::TempDir,
}

impl Repo {
    /// An empty repository (git initialised, no ledger yet).
    pub fn bare() -> Repo {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join(".git")).expect(".git");
        Repo { dir }
    }

    /// A repository after `ledger init`.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Repo {
        let repo = Repo::bare();
        let out = repo.ledger(&["init"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        repo
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn store(&self) -> PathBuf {
        self.path().join(".artifacts")
    }

    /// Runs `ledger` in the repository with a clean, predictable environment.
    pub fn ledger(&self, args: &[&str]) -> Output {
        self.ledger_env(args, &[])
    }

    pub fn ledger_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ledger"));
        cmd.args(args).current_dir(self.path());
        for var in [
            "LEDGER_STORE",
            "LEDGER_POLICY",
            "LEDGER_SIGNING_KEY",
            "GITHUB_ACTIONS",
            "GITLAB_CI",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("NO_COLOR", "1");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run ledger")
    }

    /// Every file under the store, relative, sorted.
    pub fn stored(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(&self.store(), &self.store(), &mut out);
        out.sort();
        out
    }

    /// Path of a stored object.
    pub fn object(&self, key: &str) -> PathBuf {
        self.store().join(key)
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(root, &p, out);
        } else if let Ok(rel) = p.strip_prefix(root) {
            out.push(rel.display().to_string());
        }
    }
}

/// stdout and stderr of a run, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "--- stdout\n{}--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts the exit code, showing the output when it differs.
#[track_caller]
pub fn assert_code(out: &Output, code: i32) {
    assert_eq!(out.status.code(), Some(code), "{}", text(out));
}

/// The stderr of a run with the machine-specific temp path replaced, for snapshots.
pub fn stderr_of(out: &Output, repo: &Repo) -> String {
    String::from_utf8_lossy(&out.stderr).replace(&repo.path().display().to_string(), "[REPO]")
}
