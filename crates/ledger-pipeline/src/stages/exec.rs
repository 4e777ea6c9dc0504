//! Running a stage's wrapped command: stream its output, capture it, time it.
//!
//! Output is read line by line from both pipes, redacted, echoed to the terminal and
//! appended to one capture in arrival order, so what is stored is what a person saw.
//! The command's exit status becomes the stage result; `ledger` itself never fails
//! because the command failed. It runs isolated ([`super::isolate`]) when asked and
//! possible, else directly, and the run says which.

use crate::redact::Redactor;
use crate::stages::isolate::{self, Isolate};
use ledger_core::predicate::{Isolation, TestCounts};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};

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
    /// The combined, redacted output.
    pub output: Vec<u8>,
}

/// The command could not be started at all.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("no command given: put the command to wrap after `--`, e.g. `ledger stage commit -- cargo test`")]
    Empty,
    #[error("could not start `{program}`: {source}; check that it is installed and on PATH")]
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

#[derive(Clone, Copy)]
enum Echo {
    Stdout,
    Stderr,
    Quiet,
}

async fn pump<R: AsyncRead + Unpin>(
    pipe: R,
    echo: Echo,
    redactor: Arc<Redactor>,
    capture: Arc<Mutex<Vec<u8>>>,
) {
    let mut reader = BufReader::new(pipe);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let clean = redactor.redact_bytes(&line);
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
            c.extend_from_slice(&clean);
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
    let capture = Arc::new(Mutex::new(Vec::new()));
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
    let output = capture.lock().map(|c| c.clone()).unwrap_or_default();
    Ok(CommandRun {
        exit_code: status.code(),
        started_at,
        finished_at,
        duration_ms,
        isolation,
        output,
    })
}

/// Test counts from a summary line the usual runners print, if any:
/// cargo's `test result: … N passed; M failed; K ignored` (summed over all test
/// binaries), else the last `N passed, M failed[, K skipped]` line (pytest and the
/// plain form).
pub fn test_counts(output: &[u8]) -> Option<TestCounts> {
    let text = String::from_utf8_lossy(output);
    let mut cargo: Option<TestCounts> = None;
    let mut plain: Option<TestCounts> = None;
    for line in text.lines() {
        let counts = count_words(line);
        if line.contains("test result:") {
            if let Some(c) = counts {
                let acc = cargo.get_or_insert(TestCounts {
                    passed: 0,
                    failed: 0,
                    ignored: 0,
                });
                // The output is the code under test's: sums saturate, never wrap
                // a huge failure count around to zero.
                acc.passed = acc.passed.saturating_add(c.passed);
                acc.failed = acc.failed.saturating_add(c.failed);
                acc.ignored = acc.ignored.saturating_add(c.ignored);
            }
        } else if counts.is_some() {
            plain = counts;
        }
    }
    cargo.or(plain)
}

/// Reads "<n> passed", "<n> failed", "<n> ignored|skipped" pairs from one line.
/// A printed count: all ASCII digits, saturating at `u64::MAX` when it is larger
/// (a count too large to hold is still a count, never zero).
fn count(word: &str) -> Option<u64> {
    if word.is_empty() || !word.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(word.parse::<u64>().unwrap_or(u64::MAX))
}

fn count_words(line: &str) -> Option<TestCounts> {
    let words: Vec<&str> = line
        .split(|c: char| c.is_whitespace() || c == ',' || c == ';' || c == '=')
        .filter(|w| !w.is_empty())
        .collect();
    let mut c = TestCounts {
        passed: 0,
        failed: 0,
        ignored: 0,
    };
    let mut saw_passed = false;
    for pair in words.windows(2) {
        let Some(n) = count(pair[0]) else {
            continue;
        };
        match pair[1].trim_end_matches('.') {
            "passed" => {
                c.passed = n;
                saw_passed = true;
            }
            "failed" => c.failed = n,
            "ignored" | "skipped" => c.ignored = n,
            _ => {}
        }
    }
    saw_passed.then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_failure_counts_saturate_and_never_read_as_zero() {
        let max = u64::MAX;
        let out = format!(
            "test result: FAILED. 1 passed; {max} failed; 0 ignored\n\
             test result: FAILED. 1 passed; 5 failed; 0 ignored\n"
        );
        assert_eq!(test_counts(out.as_bytes()).map(|c| c.failed), Some(max));
        let beyond = b"test result: FAILED. 1 passed; 99999999999999999999999 failed; 0 ignored\n";
        assert_eq!(test_counts(beyond).map(|c| c.failed), Some(max));
        let plain = b"3 passed, 123456789012345678901234567890 failed\n";
        assert_eq!(test_counts(plain).map(|c| c.failed), Some(max));
    }

    #[test]
    fn cargo_summaries_are_summed() {
        let out = b"running 2 tests\ntest result: ok. 2 passed; 0 failed; 1 ignored; 0 measured\n\
                    test result: FAILED. 3 passed; 1 failed; 0 ignored; 0 measured\n";
        assert_eq!(
            test_counts(out),
            Some(TestCounts {
                passed: 5,
                failed: 1,
                ignored: 1
            })
        );
    }

    #[test]
    fn pytest_and_plain_summaries() {
        assert_eq!(
            test_counts(b"===== 3 passed, 2 failed, 1 skipped in 0.12s =====\n"),
            Some(TestCounts {
                passed: 3,
                failed: 2,
                ignored: 1
            })
        );
        assert_eq!(
            test_counts(b"12 passed, 0 failed\n"),
            Some(TestCounts {
                passed: 12,
                failed: 0,
                ignored: 0
            })
        );
        assert_eq!(test_counts(b"nothing here\n"), None);
    }

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
        let text = String::from_utf8(run.output).unwrap();
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
        assert_eq!(String::from_utf8(run.output).unwrap(), "[unset]\n");
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
