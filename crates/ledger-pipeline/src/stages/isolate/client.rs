//! The caller's side of isolation: start the helper with a status pipe and learn,
//! before the command starts, whether the namespaces are in place.

use super::{Failure, Isolate, HELPER_ARG};
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::Stdio;

/// The longest status line read; the helper writes a short one.
const MAX_STATUS: u64 = 4096;

/// A pipe `(read, write)` whose read end is inheritable and write end close-on-exec.
/// Only for a process with one thread: another thread starting a program meanwhile
/// would hand it the read end.
pub fn pipe_read_end_inherited() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    fcntl(&r, FcntlArg::F_SETFD(FdFlag::empty()))?;
    Ok((r, w))
}

/// The helper's command line, with the status pipe: `(command, read end, write
/// end)`. Both ends stay close-on-exec in this process, which has other threads:
/// a program another thread starts before `drop(write end)` must not inherit it,
/// or the status read would wait for that program to end. Only the helper gets the
/// write end, in the forked child just before `exec`.
fn helper_command(
    iso: &Isolate,
    argv: &[String],
    env_remove: &[&str],
) -> std::io::Result<(tokio::process::Command, OwnedFd, OwnedFd)> {
    let (status_r, status_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let raw = status_w.as_raw_fd();
    let mut cmd = tokio::process::Command::new(&iso.helper);
    cmd.arg(HELPER_ARG).arg(raw.to_string());
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
    inherit_in_child(&mut cmd, raw);
    Ok((cmd, status_r, status_w))
}

/// Makes descriptor `raw` inheritable in the child `cmd` forks, between `fork` and
/// `exec`, leaving it close-on-exec here.
#[allow(
    unsafe_code,
    reason = "`pre_exec` is unsafe: the closure runs in a forked child of a threaded process"
)]
fn inherit_in_child(cmd: &mut tokio::process::Command, raw: std::os::fd::RawFd) {
    // SAFETY: the closure only calls fcntl(2), which is async-signal-safe, and
    // allocates nothing and takes no lock, so it is sound in a child forked from a
    // process with other threads. `raw` stays open in this process until the
    // child has been spawned (the caller holds the `OwnedFd` past `spawn`), so the
    // child has it too.
    unsafe {
        cmd.pre_exec(move || {
            let fd = std::os::fd::BorrowedFd::borrow_raw(raw);
            fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty()))?;
            Ok(())
        });
    }
}

/// Starts the helper, which sets up the namespaces and starts `argv` inside them.
pub async fn spawn(
    iso: &Isolate,
    argv: &[String],
    env_remove: &[&str],
) -> Result<tokio::process::Child, Failure> {
    let unavailable =
        |what: &str, e: &dyn std::fmt::Display| Failure::Unavailable(format!("{what}: {e}"));
    let (mut cmd, status_r, status_w) = helper_command(iso, argv, env_remove)
        .map_err(|e| unavailable("create the status pipe", &e))?;
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
    use std::os::unix::fs::PermissionsExt;

    /// `pipe:[inode]`, as `/proc/PID/fd` shows a descriptor of `fd`'s pipe.
    fn pipe_name(fd: &OwnedFd) -> String {
        let stat = nix::sys::stat::fstat(fd).unwrap();
        format!("pipe:[{}]", stat.st_ino)
    }

    /// The descriptors `/proc/self/fd` lists in a program started now, by this thread.
    fn fds_of_a_program_started_now() -> String {
        let out = std::process::Command::new("ls")
            .args(["-l", "/proc/self/fd"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    }

    /// The helper gets the status pipe's write end; a program started by any thread
    /// of this (threaded) process while the helper's command is being prepared and
    /// spawned gets neither end. The old way made the write end inheritable here
    /// before the spawn, and such a program held it.
    #[tokio::test]
    async fn only_the_helper_inherits_the_status_pipe() {
        let dir = tempfile::tempdir().unwrap();
        let helper = dir.path().join("helper");
        let seen = dir.path().join("seen");
        std::fs::write(
            &helper,
            format!(
                "#!/bin/sh\nreadlink /proc/self/fd/$2 > {}\n",
                seen.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let iso = Isolate {
            helper,
            mask: vec![],
        };
        let (mut cmd, status_r, status_w) = helper_command(&iso, &["true".into()], &[]).unwrap();
        let pipe = pipe_name(&status_r);
        assert_eq!(pipe, pipe_name(&status_w));

        let other = fds_of_a_program_started_now();
        assert!(other.contains("/proc/"), "{other}");
        assert!(
            !other.contains(&pipe),
            "another program holds the status pipe: {other}"
        );

        let status = cmd.spawn().unwrap().wait().await.unwrap();
        assert!(status.success());
        drop(status_w);
        assert_eq!(std::fs::read_to_string(&seen).unwrap().trim(), pipe);
        assert!(!fds_of_a_program_started_now().contains(&pipe));
    }

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
