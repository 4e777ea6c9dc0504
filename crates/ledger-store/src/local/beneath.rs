//! Opening a store object beneath the store's folder in one system call.
//!
//! Checking each folder on the way (`lstat`) and then opening the object are two
//! calls: a folder swapped for a symbolic link between them is followed, and the
//! read comes from wherever the link points. Linux's `openat2` (5.6 and later)
//! resolves the whole key from a descriptor of the store's folder with
//! `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`: a link anywhere on the way, or a path
//! that would leave the folder, fails the open itself, so there is no window to
//! swap anything in. It is also fewer calls than an `lstat` a folder.
//!
//! The folder is opened once per store (`O_PATH`, close-on-exec, so a wrapped
//! command never inherits it). Where the kernel or a seccomp filter refuses
//! `openat2`, or elsewhere than Linux, [`Root::open`] says so and reads check the
//! folders first, as before (docs/storage.md names the window that leaves).

use std::fs::File;
use std::path::Path;
use std::sync::OnceLock;

/// A local store's folder, for reads beneath it.
#[derive(Debug)]
pub(crate) struct Root {
    path: Box<Path>,
    /// The folder opened for `openat2`, on first use; `None` where that is refused.
    #[cfg(target_os = "linux")]
    dir: OnceLock<Option<std::os::fd::OwnedFd>>,
    #[cfg(not(target_os = "linux"))]
    dir: OnceLock<Option<()>>,
}

/// What opening a key beneath the store's folder found.
#[derive(Debug)]
pub(crate) enum Opened {
    /// The file, opened without following anything and without blocking; not yet
    /// checked to be a regular file.
    File(File),
    /// Nothing at the key (or a folder on the way is missing).
    Absent,
    /// A symbolic link on the way or at the key (`ELOOP`), something that is not a
    /// folder where a folder belongs (`ENOTDIR`), or a way out of the folder
    /// (`EXDEV`): nothing was opened.
    Refused(std::io::Error),
    /// Any other failure of the call.
    Failed(std::io::Error),
    /// `openat2` is not available here: check the folders, then open.
    Unsupported,
}

impl Root {
    pub(crate) fn new(path: &Path) -> Root {
        Root {
            path: path.into(),
            dir: OnceLock::new(),
        }
    }

    /// A root whose reads check the folders first, as where `openat2` is refused:
    /// tests hold both ways of reading to the same results.
    #[cfg(test)]
    pub(crate) fn checking_folders(path: &Path) -> Root {
        Root {
            path: path.into(),
            dir: OnceLock::from(None),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether reads open their keys beneath the folder in one call.
    pub(crate) fn opens_beneath(&self) -> bool {
        self.dir().is_some()
    }

    /// Opens `key` (a store key: `/`-separated, no `.` or `..` segment) beneath the
    /// folder, following no symbolic link on the way or at the key.
    pub(crate) fn open(&self, key: &str) -> Opened {
        #[cfg(target_os = "linux")]
        if let Some(dir) = self.dir() {
            return open_beneath(dir, key);
        }
        let _ = key;
        Opened::Unsupported
    }

    #[cfg(target_os = "linux")]
    fn dir(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        self.dir
            .get_or_init(|| open_dir(&self.path))
            .as_ref()
            .map(AsFd::as_fd)
    }

    #[cfg(not(target_os = "linux"))]
    fn dir(&self) -> Option<()> {
        None
    }
}

/// The store's folder opened with `openat2` itself, so a kernel without it (or a
/// filter refusing it) is found here, once; `None` then. The folder the user named
/// may itself be a link (docs/storage.md), so this open follows links.
#[cfg(target_os = "linux")]
fn open_dir(path: &Path) -> Option<std::os::fd::OwnedFd> {
    use rustix::fs::{Mode, OFlags, ResolveFlags, CWD};
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    match rustix::fs::openat2(CWD, path, flags, Mode::empty(), ResolveFlags::empty()) {
        Ok(dir) => Some(dir),
        Err(e) => {
            tracing::debug!(
                error = %e,
                "openat2 of the store's folder failed; reads check each folder first"
            );
            None
        }
    }
}

#[cfg(target_os = "linux")]
fn open_beneath(dir: std::os::fd::BorrowedFd<'_>, key: &str) -> Opened {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    use rustix::io::Errno;
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    // `EAGAIN` is the kernel saying a rename elsewhere raced a `..` it resolved and
    // asking for a retry; a store key has no `..`, so this is belt and braces.
    let mut tries = 0;
    loop {
        return match rustix::fs::openat2(dir, key, flags, Mode::empty(), resolve) {
            Ok(fd) => Opened::File(File::from(fd)),
            Err(Errno::NOENT) => Opened::Absent,
            Err(e @ (Errno::LOOP | Errno::NOTDIR | Errno::XDEV)) => Opened::Refused(e.into()),
            Err(Errno::AGAIN) if tries < 8 => {
                tries += 1;
                continue;
            }
            Err(e) => Opened::Failed(e.into()),
        };
    }
}
