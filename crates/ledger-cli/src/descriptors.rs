//! Keeping the descriptors `ledger` was started with out of what it starts.
//!
//! A CI job may start `ledger` with more than its standard three descriptors open:
//! a jobserver's pipes, a file the job's script opened (`exec 7<release.pem`), or
//! whatever its runner leaked. A child inherits every descriptor not marked
//! close-on-exec, and an inherited descriptor reaches past every mount the
//! isolation hides (`/proc/self/fd/7` reopens the key file). So `ledger` marks them
//! all close-on-exec first thing: the wrapped command, `git` and the isolation's
//! helper get the standard three and only what `ledger` passes on purpose (the
//! helper's status pipe, made inheritable after this). `ledger` itself still holds
//! them: `--key /dev/fd/7` reads the key as before.

/// Marks every descriptor from 3 up close-on-exec (`close_range` with
/// `CLOSE_RANGE_CLOEXEC`, Linux 5.11; before it, each one listed in
/// `/proc/self/fd`). Nothing is closed.
#[cfg(target_os = "linux")]
#[allow(
    unsafe_code,
    reason = "marking descriptors by number has no safe API: the call closes none \
              and touches no memory"
)]
pub fn keep_inherited_to_self() {
    // SAFETY: with CLOSE_RANGE_CLOEXEC the call closes no descriptor, so no owned
    // descriptor elsewhere in the process is invalidated; it takes no pointers.
    let marked = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if marked != 0 {
        mark_each_listed();
    }
}

/// [`keep_inherited_to_self`] where `close_range` is missing: each descriptor from
/// 3 up that `/proc/self/fd` lists.
#[cfg(target_os = "linux")]
#[allow(
    unsafe_code,
    reason = "marking a descriptor by number has no safe API: the call closes none \
              and touches no memory"
)]
fn mark_each_listed() {
    let Ok(listed) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    for fd in listed.flatten() {
        if let Some(fd) = fd.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) {
            if fd > 2 {
                // SAFETY: F_SETFD sets a descriptor's flags and nothing else; a
                // number that is not open (the listing's own) fails with EBADF.
                unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub fn keep_inherited_to_self() {}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[allow(
        unsafe_code,
        reason = "reading and clearing a descriptor's flags by number"
    )]
    fn cloexec(file: &std::fs::File, set: Option<bool>) -> bool {
        let fd = file.as_raw_fd();
        // SAFETY: `fd` is open for as long as `file` is borrowed; F_GETFD and
        // F_SETFD read and set its flags and nothing else.
        unsafe {
            if let Some(set) = set {
                libc::fcntl(fd, libc::F_SETFD, if set { libc::FD_CLOEXEC } else { 0 });
            }
            libc::fcntl(fd, libc::F_GETFD) & libc::FD_CLOEXEC != 0
        }
    }

    /// Both ways of marking leave an inheritable descriptor close-on-exec and open.
    #[test]
    fn an_inherited_descriptor_is_marked_and_kept_both_ways() {
        let file = std::fs::File::open("/proc/self/status").unwrap();
        for mark in [keep_inherited_to_self as fn(), mark_each_listed] {
            assert!(!cloexec(&file, Some(false)));
            mark();
            assert!(cloexec(&file, None));
            // Still open: `fstat` on a closed descriptor fails.
            assert!(file.metadata().is_ok());
        }
    }
}
