//! Running a stage's wrapped command: stream its output, capture it, time it.
//!
//! Output is read line by line from both pipes, redacted, echoed to the terminal and
//! appended to one capture in arrival order, so what is stored is what a person saw.
//! The capture is bounded ([`super::capture`]): everything is shown live, but only
//! its head and tail are kept. A line longer than [`MAX_LINE`] is handled in pieces,
//! cut after the last blank in the piece when there is one, so memory stays bounded
//! even for output without newlines.
//! The command's exit status becomes the stage result; `ledger` itself never fails
//! because the command failed. It runs isolated ([`super::isolate`]) when asked and
//! possible, else directly, and the run says which.

use crate::redact::Redactor;
use crate::stages::capture::{Capture, Captured};
use crate::stages::isolate::{self, Isolate};
use ledger_core::predicate::Isolation;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// The variable that may hold the signing key; never passed to wrapped commands.
pub const SIGNING_KEY_ENV: &str = "LEDGER_SIGNING_KEY";

/// The internal variable naming the descriptor `ledger` re-executed itself with to
/// read the key from (so its own environment block never holds it); never passed on.
pub const SIGNING_KEY_FD_ENV: &str = "LEDGER_SIGNING_KEY_FD";

/// How to start the wrapped command.
#[derive(Debug, Clone)]
pub struct Launch {
    /// Isolate it; `None` runs it as a plain child (`--no-isolation`).
    pub isolate: Option<Isolate>,
    /// Told, once, when isolation was asked for and is unavailable here.
    pub notice: fn(&str),
}

impl Default for Launch {
    fn default() -> Self {
        Launch {
            isolate: None,
            notice: |_| {},
        }
    }
}

/// What a finished command did.
#[derive(Debug)]
pub struct CommandRun {
    pub exit_code: Option<i32>,
    pub started_at: OffsetDateTime,
    pub finished_at: OffsetDateTime,
    pub duration_ms: u64,
    /// Whether it ran isolated.
    pub isolation: Isolation,
    /// The combined, redacted output, as kept (bounded), with its test counts.
    pub output: Captured,
}

/// The command could not be started at all.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("no command given: put the command to wrap after `--`, e.g. `ledger stage commit -- cargo test`")]
    Empty,
    #[error("could not start `{program}`: {source}; {}", advice(program, source))]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("lost contact with `{program}`: {source}")]
    Wait {
        program: String,
        source: std::io::Error,
    },
}

/// What to do about a command that did not start, from the two mistakes people make
/// most: the whole command line quoted as one word, and a script without `#!`.
fn advice(program: &str, source: &std::io::Error) -> String {
    const ENOEXEC: i32 = 8;
    const EACCES: i32 = 13;
    if program.contains(char::is_whitespace) {
        return format!(
            "the whole command was given as one word: write its words separately after `--` \
             (`-- {program}`, unquoted), or run a shell line with `-- sh -c '{program}'`"
        );
    }
    match source.raw_os_error() {
        Some(ENOEXEC) => "it is neither a program nor a script with a `#!` line: start the \
             script with one (e.g. `#!/bin/sh`), or wrap it as `-- sh SCRIPT`"
            .into(),
        Some(EACCES) => "it is not executable: `chmod +x` it, or wrap it as `-- sh SCRIPT`".into(),
        _ => "check that it is installed and on PATH".into(),
    }
}

#[derive(Clone, Copy)]
enum Echo {
    Stdout,
    Stderr,
    Quiet,
}

/// The longest piece of output handled as one line (redacted, echoed, kept).
pub const MAX_LINE: usize = 1024 * 1024;

/// Where a piece of `buf` ends: after its first newline, else (when `buf` holds
/// [`MAX_LINE`] bytes or the pipe is closed) after its last blank, else all of it.
fn piece_end(buf: &[u8], closed: bool) -> Option<usize> {
    if let Some(i) = buf.iter().position(|b| *b == b'\n') {
        return Some(i + 1);
    }
    if closed && !buf.is_empty() {
        return Some(buf.len());
    }
    if buf.len() < MAX_LINE {
        return None;
    }
    // A secret never holds a blank: cutting there cannot split one.
    let blank = buf.iter().rposition(|b| b.is_ascii_whitespace());
    Some(blank.map_or(buf.len(), |i| i + 1))
}

async fn pump<R: AsyncRead + Unpin>(
    mut pipe: R,
    echo: Echo,
    redactor: Arc<Redactor>,
    capture: Arc<Mutex<Capture>>,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(128 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut closed = false;
    while !closed {
        let room = MAX_LINE.saturating_sub(buf.len()).min(chunk.len()).max(1);
        match pipe.read(&mut chunk[..room]).await {
            Ok(0) | Err(_) => closed = true,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        // Every complete piece read so far, redacted piece by piece, shown and kept
        // in one go (one write per read, not per line).
        let mut clean = Vec::new();
        let mut start = 0;
        while let Some(n) = piece_end(&buf[start..], closed) {
            clean.extend(redactor.redact_bytes(&buf[start..start + n]));
            start += n;
        }
        buf.drain(..start);
        if clean.is_empty() {
            continue;
        }
        // Echo failures (a closed terminal) must not stop the capture.
        match echo {
            Echo::Stdout => {
                let _ = tokio::io::stdout().write_all(&clean).await;
                let _ = tokio::io::stdout().flush().await;
            }
            Echo::Stderr => {
                let _ = tokio::io::stderr().write_all(&clean).await;
                let _ = tokio::io::stderr().flush().await;
            }
            Echo::Quiet => {}
        }
        if let Ok(mut c) = capture.lock() {
            c.push(&clean);
        }
    }
}

/// Starts `argv` isolated when `launch` asks and it is possible here, else directly.
async fn start(
    argv: &[String],
    redactor: &Redactor,
    launch: &Launch,
) -> Result<(tokio::process::Child, Isolation), CommandError> {
    let (program, args) = argv.split_first().ok_or(CommandError::Empty)?;
    let spawn_error = |source| CommandError::Spawn {
        program: redactor.redact(program),
        source,
    };
    // The wrapped command has no business with the signing key.
    let hidden = [SIGNING_KEY_ENV, SIGNING_KEY_FD_ENV];
    if let Some(iso) = &launch.isolate {
        match isolate::spawn(iso, argv, &hidden).await {
            Ok(child) => return Ok((child, Isolation::Namespaces)),
            Err(isolate::Failure::Spawn(source)) => return Err(spawn_error(source)),
            Err(isolate::Failure::Unavailable(why)) => (launch.notice)(&format!(
                "warning: cannot isolate the wrapped command ({why}); it runs WITHOUT \
                 isolation and can reach what ledger can (recorded as isolation: none; \
                 --no-isolation opts out knowingly)"
            )),
        }
    }
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for name in hidden {
        cmd.env_remove(name);
    }
    Ok((cmd.spawn().map_err(spawn_error)?, Isolation::None))
}

/// Runs `argv` as `launch` says, echoing its output when `echo` is set.
pub async fn run(
    argv: &[String],
    redactor: &Redactor,
    echo: bool,
    launch: &Launch,
) -> Result<CommandRun, CommandError> {
    let program = argv.first().ok_or(CommandError::Empty)?;
    let started_at = OffsetDateTime::now_utc();
    let clock = std::time::Instant::now();
    let (mut child, isolation) = start(argv, redactor, launch).await?;
    let capture = Arc::new(Mutex::new(Capture::default()));
    let redactor = Arc::new(redactor.clone());
    let (out_echo, err_echo) = if echo {
        (Echo::Stdout, Echo::Stderr)
    } else {
        (Echo::Quiet, Echo::Quiet)
    };
    let mut pumps = Vec::new();
    if let Some(out) = child.stdout.take() {
        pumps.push(tokio::spawn(pump(
            out,
            out_echo,
            redactor.clone(),
            capture.clone(),
        )));
    }
    if let Some(err) = child.stderr.take() {
        pumps.push(tokio::spawn(pump(
            err,
            err_echo,
            redactor.clone(),
            capture.clone(),
        )));
    }
    let status = child.wait().await.map_err(|source| CommandError::Wait {
        program: redactor.redact(program),
        source,
    })?;
    for p in pumps {
        let _ = p.await;
    }
    let duration_ms = u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);
    let finished_at = OffsetDateTime::now_utc();
    let output = capture
        .lock()
        .map(|mut c| std::mem::take(&mut *c))
        .unwrap_or_default()
        .finish();
    Ok(CommandRun {
        exit_code: status.code(),
        started_at,
        finished_at,
        duration_ms,
        isolation,
        output,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn captures_both_streams_and_the_exit_code() {
        let argv: Vec<String> = ["sh", "-c", "echo out; echo err >&2; exit 3"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let run = run(&argv, &Redactor::default(), false, &Launch::default())
            .await
            .unwrap();
        assert_eq!(run.exit_code, Some(3));
        let text = String::from_utf8(run.output.bytes).unwrap();
        assert!(text.contains("out\n") && text.contains("err\n"), "{text}");
    }

    #[tokio::test]
    async fn the_signing_key_is_not_inherited() {
        // SAFETY of the test: set_var only affects this process's environment.
        std::env::set_var(SIGNING_KEY_ENV, "secret-pem-text");
        let argv: Vec<String> = ["sh", "-c", "echo \"[${LEDGER_SIGNING_KEY:-unset}]\""]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let run = run(&argv, &Redactor::default(), false, &Launch::default())
            .await
            .unwrap();
        std::env::remove_var(SIGNING_KEY_ENV);
        assert_eq!(String::from_utf8(run.output.bytes).unwrap(), "[unset]\n");
    }

    #[tokio::test]
    async fn a_missing_program_is_an_error() {
        let argv = vec!["definitely-not-a-program-ledger".to_string()];
        let e = run(&argv, &Redactor::default(), false, &Launch::default())
            .await
            .unwrap_err();
        assert!(e.to_string().contains("could not start"), "{e}");
        assert!(matches!(
            run(&[], &Redactor::default(), false, &Launch::default()).await,
            Err(CommandError::Empty)
        ));
    }
}
