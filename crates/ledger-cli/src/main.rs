//! `ledger`: the command line. Argument parsing, output and exit codes only; every
//! operation is a library call into `ledger-pipeline` that returns a value.
//!
//! Exit codes (the same for every command, see the README):
//! 0 success · 1 the stage's own work failed (evidence recorded) · 2 bad input or
//! configuration · 3 gate denied · 4 verification failed · 5 infrastructure failing.

/// `eprintln!` in one `write` ([`say_to`] on stderr).
macro_rules! say {
    ($($arg:tt)*) => {
        crate::say_to(&mut ::std::io::stderr().lock(), ::std::format_args!($($arg)*))
    };
}

mod args;
mod cmd;
mod context;
mod descriptors;
mod exit;
mod handoff;
mod render;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    restore_sigpipe();
    // Before anything is started, the helper and the key's handoff among it.
    descriptors::keep_inherited_to_self();
    // The isolation helper is this binary run again, hidden from the grammar; it
    // starts no thread and no runtime (its init process is a fork of it, which
    // relies on that).
    let raw: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(code) = ledger_pipeline::stages::isolate::internal_main(&raw) {
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    let cli = args::Cli::parse();
    if matches!(cli.command, args::Command::Stage(_)) {
        // Before any thread exists: may re-execute this process.
        handoff::keep_key_out_of_environ();
    }
    init_tracing();
    // The worker count is the cores the store's reads and the checks use, asked
    // once per process (tokio would read the cgroup's CPU quota again).
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(ledger_verify::parallel::cores())
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            say!("error: could not start the async runtime: {e}");
            return exit::Code::Infrastructure.into();
        }
    };
    let result = runtime.block_on(async {
        let result = cmd::run(cli).await;
        // Whatever the command wrote is logged, whether it succeeded or not.
        match (result, context::log_what_was_written().await) {
            (Ok(_), Err(f)) => Err(f),
            (result, _) => result,
        }
    });
    match result {
        Ok(code) => code.into(),
        Err(failure) => {
            failure.print();
            failure.code.into()
        }
    }
}

/// Writes `args` and a newline to `out` in one `write`. stderr is unbuffered, so
/// `eprintln!` writes each piece of its format on its own (thirteen calls for a
/// stage's result line), and another process writing to the same log can land
/// between them; a line of at most `PIPE_BUF` bytes written at once reaches a pipe
/// whole. A failing stderr is not a reason to panic: the line is dropped.
fn say_to(out: &mut impl std::io::Write, args: std::fmt::Arguments<'_>) {
    let mut line = args.to_string();
    line.push('\n');
    let _ = out.write_all(line.as_bytes());
}

/// Rust ignores SIGPIPE, so printing into a closed pipe (`ledger show SHA | head`)
/// would panic; restoring the default makes `ledger` end quietly like other Unix
/// tools when its reader goes away.
#[allow(
    unsafe_code,
    reason = "restoring SIGPIPE's default disposition has no safe API in std or libc"
)]
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any thread exists; SIG_DFL is a
    // valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn init_tracing() {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    // `RUST_LOG` as targets and levels (`ledger_store=debug,info`); unset or not
    // understood, warnings and errors only.
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|spec| spec.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::WARN));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        // Colour only on a terminal, and never under NO_COLOR (https://no-color.org).
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        );
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(filter)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::say_to;

    /// Counts the `write` calls it is given; fails them all when `broken`.
    #[derive(Default)]
    struct Calls {
        writes: Vec<Vec<u8>>,
        broken: bool,
    }

    impl std::io::Write for Calls {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.broken {
                return Err(std::io::Error::other("stderr is gone"));
            }
            self.writes.push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_line_of_many_pieces_is_one_write_and_a_broken_stderr_no_panic() {
        let mut out = Calls::default();
        let (stage, attempt, key) = ("commit", 1, "commit/abc/commit.json");
        say_to(
            &mut out,
            format_args!(
                "ledger: {stage} pass (attempt {attempt}, exit code {}); evidence {key} in {}",
                0, ".artifacts"
            ),
        );
        assert_eq!(
            out.writes,
            [b"ledger: commit pass (attempt 1, exit code 0); evidence commit/abc/commit.json in .artifacts\n".to_vec()]
        );
        let mut broken = Calls {
            broken: true,
            ..Calls::default()
        };
        say_to(&mut broken, format_args!("error: {}", "x"));
        assert!(broken.writes.is_empty());
    }
}
