//! Running git: each question is one `git` process (`--no-optional-locks`, so
//! asking never writes to the repository), its answer read whole.

use super::SourceError;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `git args` in `dir`, whatever its exit status; only a git that cannot be
/// started is an error.
pub(super) fn run(dir: &Path, args: &[&str]) -> Result<std::process::Output, SourceError> {
    Command::new("git")
        .arg("--no-optional-locks")
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| failed(dir, args, format!("git could not be run: {e}")))
}

pub(super) fn failed(dir: &Path, args: &[&str], message: String) -> SourceError {
    SourceError::Git {
        args: args.join(" "),
        dir: dir.display().to_string(),
        message,
    }
}

/// Runs `git args` in `dir`; its stdout, or why not.
pub(super) fn git(dir: &Path, args: &[&str]) -> Result<Vec<u8>, SourceError> {
    let out = run(dir, args)?;
    if !out.status.success() {
        let message = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        return Err(failed(dir, args, message));
    }
    Ok(out.stdout)
}

/// `git status`, as [`Worktree::difference`] reads it.
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
        let child = Command::new("git")
            .arg("--no-optional-locks")
            .args(args)
            .current_dir(dir)
            .stdin(std::process::Stdio::null())
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
        let (dir, args) = (&self.dir, self.args);
        let out = match self.child.take() {
            Some(Ok(child)) => child.wait_with_output(),
            Some(Err(e)) => Err(e),
            None => Err(std::io::Error::other("already waited for")),
        }
        .map_err(|e| failed(dir, args, format!("git could not be run: {e}")))?;
        if !out.status.success() {
            let message = String::from_utf8_lossy(&out.stderr).trim().to_owned();
            return Err(failed(dir, args, message));
        }
        Ok(out.stdout)
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
