//! Keeping the signing key out of `ledger`'s own environment block.
//!
//! `/proc/PID/environ` shows the environment a process was started with; removing a
//! variable afterwards does not change it, and a wrapped command run without
//! isolation can read its parent's. So when `LEDGER_SIGNING_KEY` holds PEM text,
//! `ledger stage` first writes the text into a pipe and re-executes itself without
//! the variable, naming the pipe's read end in `LEDGER_SIGNING_KEY_FD`; the new
//! process reads the key from there once, before any thread starts, and the key
//! loader takes it from [`signing_key_env`] as if it were the variable.

use ledger_pipeline::stages::exec::{SIGNING_KEY_ENV, SIGNING_KEY_FD_ENV};
use std::ffi::OsString;
use std::sync::OnceLock;

/// The PEM text handed over through the pipe, once read.
static HANDED_OVER: OnceLock<String> = OnceLock::new();

/// More than a pipe holds without a reader; no key is that large, and such a value
/// fails to load as a key before anything runs, so it is left where it is.
const MAX_HANDOFF: usize = 60_000;

/// `$LEDGER_SIGNING_KEY` as the key loader sees it: the handed-over PEM text, else
/// the variable itself.
pub fn signing_key_env() -> Option<OsString> {
    match HANDED_OVER.get() {
        Some(pem) => Some(OsString::from(pem)),
        None => std::env::var_os(SIGNING_KEY_ENV),
    }
}

/// Called first thing for `ledger stage`, while this process has one thread: takes
/// a handed-over key, or re-executes this program without the key in its
/// environment. Returns only when there is nothing (more) to do.
pub fn keep_key_out_of_environ() {
    #[cfg(target_os = "linux")]
    {
        if let Some(fd) = std::env::var_os(SIGNING_KEY_FD_ENV) {
            // Single-threaded here, so changing the environment is sound.
            std::env::remove_var(SIGNING_KEY_FD_ENV);
            take_handed_over(&fd);
            return;
        }
        let Some(value) = std::env::var_os(SIGNING_KEY_ENV) else {
            return;
        };
        let value = value.to_string_lossy().into_owned();
        if value.trim_start().starts_with("-----BEGIN") && value.len() <= MAX_HANDOFF {
            let why = reexec_with_pipe(&value);
            say!(
                "ledger: warning: could not re-execute without ${SIGNING_KEY_ENV} in the \
                 environment ({why}); processes that can read ledger's environment can \
                 read the key"
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (&HANDED_OVER, SIGNING_KEY_FD_ENV, MAX_HANDOFF);
}

#[cfg(target_os = "linux")]
fn take_handed_over(fd: &std::ffi::OsStr) {
    use std::io::Read;
    let Some(n) = fd.to_str().and_then(|s| s.parse().ok()) else {
        return;
    };
    let Ok(owned) = ledger_pipeline::stages::isolate::adopt_fd(n) else {
        return;
    };
    let mut pem = String::new();
    let mut pipe = std::fs::File::from(owned).take(MAX_HANDOFF as u64);
    if pipe.read_to_string(&mut pem).is_ok() && !pem.is_empty() {
        let _ = HANDED_OVER.set(pem);
    }
}

/// Writes `pem` into a pipe and replaces this process by the same program without
/// the variable. Returns only on failure, with the reason.
#[cfg(target_os = "linux")]
fn reexec_with_pipe(pem: &str) -> String {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let (read, write) = match ledger_pipeline::stages::isolate::pipe_to_child() {
        Ok(ends) => ends,
        Err(e) => return format!("pipe: {e}"),
    };
    let mut write = std::fs::File::from(write);
    if let Err(e) = write.write_all(pem.as_bytes()) {
        return format!("pipe: {e}");
    }
    drop(write);
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| "ledger".into());
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => return format!("locate the ledger binary: {e}"),
    };
    let e = std::process::Command::new(exe)
        .arg0(arg0)
        .args(args)
        .env_remove(SIGNING_KEY_ENV)
        .env(SIGNING_KEY_FD_ENV, read.as_raw_fd().to_string())
        .exec();
    format!("exec: {e}")
}
