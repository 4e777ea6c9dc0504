//! Running the wrapped command where the signing key cannot be reached.
//!
//! Why: the command `ledger stage commit -- CMD` wraps may be a pull request's code,
//! the adversary. As a plain child of `ledger` it could read the key from
//! `/proc/$PPID/environ`, from any ancestor's environment (the CI shell holds
//! `LEDGER_SIGNING_KEY`), or from the key file itself. On Linux the command therefore
//! runs behind two user namespaces, a mount namespace and a PID namespace:
//!
//! ```text
//! ledger ─► helper (`ledger __isolate`)       user ns 1 (0 ↦ caller's uid), mount ns 1:
//!   │                                         `/` private, each key path masked
//!   └─► init (a fork of the helper)           PID 1 of a new PID namespace, fresh /proc;
//!         │                                   then user ns 2 (caller's uid ↦ 0 of ns 1)
//!         │                                   and mount ns 2, where the masks are locked
//!         └─► the command                     same uid, cwd, files, network, stdio
//! ```
//!
//! The command sees no process outside its namespace (so no ancestor's environment),
//! finds an empty read-only directory where `.ledger/` was and an empty file where a key
//! file was, and cannot unmount either: mounts copied into a mount namespace owned by a
//! less privileged user namespace are locked (`MNT_LOCKED`), even for its root.
//!
//! Every setup step is reported on a status pipe (close-on-exec, so the command never
//! holds it) before the command starts: `ok`, `spawn <errno>` (the command itself could
//! not be started) or `fail <step>: <errno>`. On `fail` nothing ran, and the caller
//! runs the command directly, recorded `isolation: none`. The helper relays the
//! command's exit code, and dies by the same signal when the command did, so the
//! caller sees exactly what a direct child would give.

#[cfg(target_os = "linux")]
mod client;
#[cfg(target_os = "linux")]
mod inside;

use std::ffi::OsString;
use std::path::PathBuf;

/// The internal subcommand the helper runs as (hidden from `--help`).
pub const HELPER_ARG: &str = "__isolate";

/// What to isolate the command with.
#[derive(Debug, Clone)]
pub struct Isolate {
    /// The `ledger` binary, run again as the helper.
    pub helper: PathBuf,
    /// Files and directories the command must not read (existing, absolute paths).
    pub mask: Vec<PathBuf>,
}

/// Why the command was not started isolated.
#[derive(Debug)]
pub enum Failure {
    /// Isolation is not possible here; the message names the step and the errno.
    Unavailable(String),
    /// Isolation was in place, but the command itself could not be started.
    Spawn(std::io::Error),
}

/// Starts `argv` isolated, its stdout and stderr piped and stdin inherited, without
/// the variables in `env_remove`. Returns once the command has started.
pub async fn spawn(
    iso: &Isolate,
    argv: &[String],
    env_remove: &[&str],
) -> Result<tokio::process::Child, Failure> {
    #[cfg(target_os = "linux")]
    {
        client::spawn(iso, argv, env_remove).await
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (iso, argv, env_remove);
        Err(Failure::Unavailable(
            "namespaces: not available on this operating system (Linux only)".into(),
        ))
    }
}

/// Runs the internal subcommand `args[1]` names, if it is [`HELPER_ARG`]; returns
/// its exit code. `None` for every other command line.
pub fn internal_main(args: &[OsString]) -> Option<i32> {
    let which = args.get(1)?;
    #[cfg(target_os = "linux")]
    {
        if which == HELPER_ARG {
            return Some(inside::helper(&args[2..]));
        }
    }
    let _ = which;
    None
}

/// A pipe whose read end a child (or the same program after `exec`) inherits, and
/// whose write end is close-on-exec: `(read, write)`. Only for a process that has one
/// thread (`ledger` before it re-executes itself).
#[cfg(target_os = "linux")]
pub fn pipe_to_child() -> std::io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    client::pipe_read_end_inherited()
}

/// Takes ownership of descriptor `fd`, which this process inherited for that purpose
/// (named by its parent in an argument or variable). Refuses the standard streams and
/// descriptors that are not open. Marks it close-on-exec.
#[cfg(target_os = "linux")]
pub fn adopt_fd(fd: i32) -> std::io::Result<std::os::fd::OwnedFd> {
    inside::adopt(fd)
}
