//! The caller's side of isolation: start the helper with a status pipe and learn,
//! before the command starts, whether the namespaces are in place.

use super::{Failure, Isolate, HELPER_ARG};
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::Stdio;

/// The longest status line read; the helper writes a short one.
const MAX_STATUS: u64 = 4096;

/// A close-on-exec pipe `(read, write)` of which one end is made inheritable again:
/// the write end when `write_inherited`, else the read end.
pub fn pipe_inherited_end(write_inherited: bool) -> std::io::Result<(OwnedFd, OwnedFd)> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let inherited = if write_inherited { &w } else { &r };
    fcntl(inherited, FcntlArg::F_SETFD(FdFlag::empty()))?;
    Ok((r, w))
}

/// Starts the helper, which sets up the namespaces and starts `argv` inside them.
pub async fn spawn(
    iso: &Isolate,
    argv: &[String],
    env_remove: &[&str],
) -> Result<tokio::process::Child, Failure> {
    let unavailable =
        |what: &str, e: &dyn std::fmt::Display| Failure::Unavailable(format!("{what}: {e}"));
    let (status_r, status_w) =
        pipe_inherited_end(true).map_err(|e| unavailable("create the status pipe", &e))?;
    let mut cmd = tokio::process::Command::new(&iso.helper);
    cmd.arg(HELPER_ARG).arg(status_w.as_raw_fd().to_string());
    for path in &iso.mask {
        cmd.arg("--mask").arg(path);
    }
    cmd.arg("--")
        .args(argv)
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for name in env_remove {
        cmd.env_remove(name);
    }
    let mut child = cmd.spawn().map_err(|e| {
        unavailable(
            &format!("start the isolation helper {}", iso.helper.display()),
            &e,
        )
    })?;
    // Only the helper (and the init process it starts) may hold the write end, so
    // that the read below ends when they are done with it.
    drop(status_w);
    let line = tokio::task::spawn_blocking(move || read_status(status_r))
        .await
        .unwrap_or_default();
    let failure = match parse_status(&line) {
        Status::Ok => return Ok(child),
        Status::Spawn(errno) => Failure::Spawn(std::io::Error::from_raw_os_error(errno)),
        Status::Fail(why) => Failure::Unavailable(why),
    };
    // Nothing ran; the helper is ending (or ends now).
    let _ = child.kill().await;
    Err(failure)
}

fn read_status(fd: OwnedFd) -> String {
    let mut line = String::new();
    let _ = BufReader::new(std::fs::File::from(fd).take(MAX_STATUS)).read_line(&mut line);
    line
}

#[derive(Debug, PartialEq, Eq)]
enum Status {
    Ok,
    Spawn(i32),
    Fail(String),
}

fn parse_status(line: &str) -> Status {
    let line = line.trim_end();
    if line == "ok" {
        return Status::Ok;
    }
    if let Some(errno) = line.strip_prefix("spawn ").and_then(|n| n.parse().ok()) {
        return Status::Spawn(errno);
    }
    match line.strip_prefix("fail ") {
        Some(why) => Status::Fail(why.to_owned()),
        None => Status::Fail("the isolation helper ended before reporting its setup".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(parse_status("ok\n"), Status::Ok);
        assert_eq!(parse_status("spawn 2\n"), Status::Spawn(2));
        assert_eq!(
            parse_status("fail mount a new /proc: EPERM\n"),
            Status::Fail("mount a new /proc: EPERM".into())
        );
        assert!(matches!(parse_status(""), Status::Fail(w) if w.contains("ended before")));
    }
}
