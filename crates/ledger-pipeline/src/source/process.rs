//! Running git: each question is one `git` process (`--no-optional-locks`, so
//! asking never writes to the repository), its answer read whole.

use super::SourceError;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `git args` in `dir`, ready to run: `--no-optional-locks`, no input.
fn command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("git");
    cmd.arg("--no-optional-locks")
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::null());
    cmd
}

/// Runs `git args` in `dir`, whatever its exit status; only a git that cannot be
/// started is an error.
pub(super) fn run(dir: &Path, args: &[&str]) -> Result<std::process::Output, SourceError> {
    command(dir, args)
        .output()
        .map_err(|e| not_run(dir, args, e))
}

fn not_run(dir: &Path, args: &[&str], e: std::io::Error) -> SourceError {
    failed(dir, args, format!("git could not be run: {e}"))
}

fn failed(dir: &Path, args: &[&str], message: String) -> SourceError {
    SourceError::Git {
        args: args.join(" "),
        dir: dir.display().to_string(),
        message,
    }
}

/// Runs `git args` in `dir`; its stdout, or why not.
pub(super) fn git(dir: &Path, args: &[&str]) -> Result<Vec<u8>, SourceError> {
    stdout_of(dir, args, run(dir, args)?)
}

/// What `git args` printed when it succeeded; else its message, as an error.
fn stdout_of(dir: &Path, args: &[&str], out: std::process::Output) -> Result<Vec<u8>, SourceError> {
    if !out.status.success() {
        let message = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        return Err(failed(dir, args, message));
    }
    Ok(out.stdout)
}

/// `git status`, as [`super::Worktree::difference`] reads it.
pub(super) const STATUS: &[&str] = &["status", "--porcelain=v1", "-z", "--untracked-files=all"];

/// A git process started before its answer is needed, so that it runs beside
/// another; one whose answer is not wanted after all is killed and waited for.
pub(super) struct Started {
    dir: PathBuf,
    args: &'static [&'static str],
    child: Option<std::io::Result<std::process::Child>>,
}

impl Started {
    pub(super) fn spawn(dir: &Path, args: &'static [&'static str]) -> Started {
        let child = command(dir, args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn();
        Started {
            dir: dir.to_path_buf(),
            args,
            child: Some(child),
        }
    }

    /// Its stdout, or why not, as [`git`] says.
    pub(super) fn finish(mut self) -> Result<Vec<u8>, SourceError> {
        let out = match self.child.take() {
            Some(Ok(child)) => child.wait_with_output(),
            Some(Err(e)) => Err(e),
            None => Err(std::io::Error::other("already waited for")),
        }
        .map_err(|e| not_run(&self.dir, self.args, e))?;
        stdout_of(&self.dir, self.args, out)
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if let Some(Ok(mut child)) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub(super) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim().to_owned()
}
