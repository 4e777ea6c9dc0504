//! The inside of the isolation boundary: the helper (`ledger __isolate`) and the init
//! process of the new PID namespace, a fork of the helper. The helper is a fresh,
//! single-threaded execution of `ledger` and starts no threads, so the namespace
//! calls that need one thread (`unshare(CLONE_NEWUSER)`) work in both, and the
//! command is started with `std::process`.
//! The module comment of `isolate` gives the layout and the status protocol.

use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{getgid, getpid, getuid, Pid};
use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Exit code of the helper when setup failed (the status pipe says why).
const SETUP_FAILED: i32 = 125;
/// Exit code when the command could not be started (the status pipe says why).
const NOT_STARTED: i32 = 127;

/// Takes ownership of inherited descriptor `fd` (see `isolate::adopt_fd`).
#[allow(
    unsafe_code,
    reason = "taking ownership of a descriptor a parent passed by number has no safe API"
)]
pub fn adopt(fd: i32) -> std::io::Result<OwnedFd> {
    let bad = || std::io::Error::from(std::io::ErrorKind::InvalidInput);
    if fd <= 2 || !Path::new(&format!("/proc/self/fd/{fd}")).exists() {
        return Err(bad());
    }
    // SAFETY: `fd` is open (checked above), is not a standard stream, and was left
    // open across exec by our parent for this process to own; nothing else in this
    // process refers to it, since it is adopted once, at start, before any other
    // descriptor is opened by number.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    nix::fcntl::fcntl(
        &owned,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )?;
    Ok(owned)
}

fn step<T>(what: &str, r: nix::Result<T>) -> Result<T, String> {
    r.map_err(|e| format!("{what}: {}", e.desc_named()))
}

trait Named {
    fn desc_named(&self) -> String;
}

impl Named for nix::errno::Errno {
    fn desc_named(&self) -> String {
        format!("{self:?} ({})", self.desc())
    }
}

fn io_step<T>(what: &str, r: std::io::Result<T>) -> Result<T, String> {
    r.map_err(|e| match e.raw_os_error() {
        Some(n) => format!("{what}: {}", nix::errno::Errno::from_raw(n).desc_named()),
        None => format!("{what}: {e}"),
    })
}

fn report(status: &mut File, line: &str) {
    let _ = status.write_all(format!("{line}\n").as_bytes());
}

/// Writes this process's uid and gid maps: `inside outside 1` each, setgroups denied.
fn map_ids(uid: String, gid: String) -> Result<(), String> {
    io_step(
        "write /proc/self/setgroups",
        std::fs::write("/proc/self/setgroups", "deny"),
    )?;
    io_step(
        "write /proc/self/uid_map",
        std::fs::write("/proc/self/uid_map", format!("{uid} 1\n")),
    )?;
    io_step(
        "write /proc/self/gid_map",
        std::fs::write("/proc/self/gid_map", format!("{gid} 1\n")),
    )
}

fn parse_fd(arg: Option<&OsString>) -> Option<i32> {
    arg?.to_str()?.parse().ok()
}

/// `__isolate STATUS_FD [--mask PATH]... -- CMD [ARG]...`
pub fn helper(args: &[OsString]) -> i32 {
    let Some(status_fd) = parse_fd(args.first()) else {
        return SETUP_FAILED;
    };
    let mut masks = Vec::new();
    let mut rest = args.iter().skip(1);
    while let Some(a) = rest.next() {
        if a == "--" {
            break;
        }
        match (a.to_str(), rest.next()) {
            (Some("--mask"), Some(path)) => masks.push(PathBuf::from(path)),
            _ => return SETUP_FAILED,
        }
    }
    let argv: Vec<OsString> = rest.cloned().collect();
    let Ok(status) = adopt(status_fd) else {
        return SETUP_FAILED;
    };
    let mut status_file = File::from(status);
    let (uid, gid) = (getuid(), getgid());
    if let Err(why) = helper_setup(&masks, &uid.to_string(), &gid.to_string()) {
        report(&mut status_file, &format!("fail {why}"));
        return SETUP_FAILED;
    }
    match start_init(status_file, &uid.to_string(), &gid.to_string(), &argv) {
        Ok(code) => code,
        Err(why) => why,
    }
}

/// The first user, mount and PID namespaces, `/` private, the masks.
fn helper_setup(masks: &[PathBuf], uid: &str, gid: &str) -> Result<(), String> {
    step(
        "unshare(CLONE_NEWUSER|CLONE_NEWNS|CLONE_NEWPID)",
        unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID),
    )?;
    map_ids(format!("0 {uid}"), format!("0 {gid}"))?;
    step(
        "make / a private mount tree",
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        ),
    )?;
    let mut masked: Vec<&Path> = Vec::new();
    for path in masks {
        // A file inside a masked directory is hidden already (and gone from view).
        if !masked.iter().any(|dir| path.starts_with(dir)) {
            mask(path)?;
            masked.push(path);
        }
    }
    Ok(())
}

/// Hides `path`: an empty read-only tmpfs over a directory, `/dev/null` over a file.
fn mask(path: &Path) -> Result<(), String> {
    let what = format!("mask {}", path.display());
    let is_dir = io_step(&what, std::fs::metadata(path))?.is_dir();
    let hidden = if is_dir {
        mount(
            Some("tmpfs"),
            path,
            Some("tmpfs"),
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            Some("size=4k,mode=0555"),
        )
    } else {
        mount(
            Some("/dev/null"),
            path,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
    };
    step(&what, hidden)
}

/// Starts the init process (PID 1 of the new PID namespace), hands it the status
/// pipe, waits for it and relays how the command ended. `Err` holds an exit code.
///
/// Init is a fork of this process, not `ledger` run again: the helper starts no
/// threads, so its child may run any code until it starts the command, and a wrapped
/// command is spared a second load and start of the `ledger` binary (a third of the
/// time the isolation adds to it, docs/performance.md).
#[allow(
    unsafe_code,
    reason = "fork(2) has no safe API; the SAFETY comment says why this one is sound"
)]
#[allow(
    clippy::exit,
    reason = "the forked init must end there, never return into the helper's code"
)]
fn start_init(status: File, uid: &str, gid: &str, argv: &[OsString]) -> Result<i32, i32> {
    let mut status = status;
    // Both ends close-on-exec: the command holds neither.
    let relay = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC);
    let (relay_read, relay_write) = step("create the exit relay pipe", relay).map_err(|why| {
        report(&mut status, &format!("fail {why}"));
        SETUP_FAILED
    })?;
    // SAFETY: this process has one thread: the helper is `ledger` run for this alone,
    // dispatched first thing in `main`, before any runtime or thread exists, and it
    // starts none. The child is therefore a whole copy of a single-threaded process
    // (no lock held by another thread, no allocator state mid-change), in which
    // ordinary code may run; it leaves only through `process::exit`.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => {
            drop(relay_read);
            std::process::exit(init(status, File::from(relay_write), uid, gid, argv));
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => {
            // From here on only init holds the write ends.
            drop(status);
            drop(relay_write);
            let ended = loop {
                match waitpid(child, None) {
                    Err(nix::errno::Errno::EINTR) => {}
                    other => break other,
                }
            };
            let mut word = String::new();
            let _ = File::from(relay_read).take(64).read_to_string(&mut word);
            if let Some(sig) = word.strip_prefix("signal ").and_then(|s| s.parse().ok()) {
                return Ok(die_by(sig));
            }
            if let Some(code) = word.strip_prefix("exit ").and_then(|s| s.parse().ok()) {
                return Ok(code);
            }
            // Init itself ended abnormally (killed from outside): pass that on.
            match ended {
                Ok(WaitStatus::Exited(_, code)) => Ok(code),
                _ => Ok(SETUP_FAILED),
            }
        }
        Err(e) => {
            let why = format!("start the namespace's init process: {}", e.desc_named());
            report(&mut status, &format!("fail {why}"));
            Err(SETUP_FAILED)
        }
    }
}

/// Ends this process by signal `sig`, as the command ended; a signal this process
/// ignores becomes the shell's convention, 128 + the signal number.
fn die_by(sig: i32) -> i32 {
    if let Ok(signal) = Signal::try_from(sig) {
        // No core file of the helper for a command's SIGSEGV or SIGABRT.
        let _ = nix::sys::prctl::set_dumpable(false);
        let _ = kill(getpid(), signal);
    }
    128 + sig
}

/// PID 1 of the new PID namespace (a fork of the helper): sets up, starts `argv`,
/// reaps until it ends and writes how on `relay`; returns the exit code.
fn init(mut status: File, mut relay: File, uid: &str, gid: &str, argv: &[OsString]) -> i32 {
    if let Err(why) = init_setup(uid, gid) {
        report(&mut status, &format!("fail {why}"));
        return SETUP_FAILED;
    }
    let Some((program, rest)) = argv.split_first() else {
        report(&mut status, "fail no command given");
        return SETUP_FAILED;
    };
    let command = match Command::new(program).args(rest).spawn() {
        Ok(c) => Pid::from_raw(i32::try_from(c.id()).unwrap_or(-1)),
        Err(e) => {
            report(
                &mut status,
                &format!("spawn {}", e.raw_os_error().unwrap_or(0)),
            );
            return NOT_STARTED;
        }
    };
    report(&mut status, "ok");
    drop(status);
    let (word, code) = reap_until(command);
    let _ = relay.write_all(word.as_bytes());
    code
}

/// PID 1's setup: die with the helper, a /proc of this PID namespace only, then the
/// second user and mount namespaces that lock every mount, the caller's ids again.
fn init_setup(uid: &str, gid: &str) -> Result<(), String> {
    step(
        "prctl(PR_SET_PDEATHSIG)",
        nix::sys::prctl::set_pdeathsig(Signal::SIGKILL),
    )?;
    step(
        "mount a new /proc",
        mount(
            Some("proc"),
            "/proc",
            Some("proc"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            None::<&str>,
        ),
    )?;
    step(
        "unshare(CLONE_NEWUSER|CLONE_NEWNS)",
        unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS),
    )?;
    map_ids(format!("{uid} 0"), format!("{gid} 0"))
}

/// Reaps every process of the namespace until `command` ends; then its exit, as the
/// relay word (`exit N` or `signal N`) and this process's exit code. When PID 1
/// returns, the kernel ends whatever else still runs in the namespace.
fn reap_until(command: Pid) -> (String, i32) {
    loop {
        match waitpid(None::<Pid>, None) {
            Ok(WaitStatus::Exited(pid, code)) if pid == command => {
                return (format!("exit {code}"), code);
            }
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == command => {
                let n = sig as i32;
                return (format!("signal {n}"), 128 + n);
            }
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return ("exit 125".into(), SETUP_FAILED),
        }
    }
}
