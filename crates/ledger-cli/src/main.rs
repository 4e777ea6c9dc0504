//! `ledger`: the command line. Argument parsing, output and exit codes only; every
//! operation is a library call into `ledger-pipeline` that returns a value.
//!
//! Exit codes (the same for every command, see the README):
//! 0 success · 1 the stage's own work failed (evidence recorded) · 2 bad input or
//! configuration · 3 gate denied · 4 verification failed · 5 infrastructure failing.

/// `eprintln!` in one `write`: stderr is unbuffered, so `eprintln!` writes each
/// piece of its format on its own (thirteen calls for a stage's result line), and
/// another process writing to the same log can land between them. A line of at
/// most `PIPE_BUF` bytes written at once reaches a pipe whole. A failing stderr is
/// not a reason to panic: the line is dropped.
macro_rules! say {
    ($($arg:tt)*) => {{
        let mut line = ::std::format!($($arg)*);
        line.push('\n');
        let _ = ::std::io::Write::write_all(&mut ::std::io::stderr().lock(), line.as_bytes());
    }};
}

mod args;
mod cmd;
mod context;
mod exit;
mod handoff;
mod render;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    restore_sigpipe();
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
