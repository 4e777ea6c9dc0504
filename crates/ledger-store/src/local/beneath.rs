//! Reaching a local store's objects beneath its folder, following no link: an
//! object opened in one system call, an object created, a folder opened to be
//! listed (the walk is `list.rs`'s).
//!
//! Checking each folder on the way (`lstat`) and then opening the object are two
//! calls: a folder swapped for a symbolic link between them is followed, and the
//! read comes from wherever the link points. Linux's `openat2` (5.6 and later)
//! resolves the whole key from a descriptor of the store's folder with
//! `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`: a link anywhere on the way, or a path
//! that would leave the folder, fails the open itself, so there is no window to
//! swap anything in. It is also fewer calls than an `lstat` a folder.
//!
//! Writes go the same way ([`Root::create`]): the object's folder is opened
//! beneath the root (each missing folder made with `mkdirat` in the one opened
//! before it), and the object is written as `object_store`'s local backend writes
//! it, relative to that descriptor: a staged `NAME#N` created exclusively,
//! written and `fsync`ed, hard-linked to `NAME` (which fails if `NAME` exists: the
//! write-once rule), the folder `fsync`ed, the staged name removed. A folder swapped
//! for a link after it was opened changes nothing: the descriptor is the folder.
//!
//! The folder is opened once per store (`O_PATH`, close-on-exec, so a wrapped
//! command never inherits it). Where the kernel or a seccomp filter refuses
//! `openat2`, or elsewhere than Linux, [`Root::open`] and [`Root::create`] say so,
//! and the folders are checked first, as before (docs/storage.md names the window
//! that leaves).

use std::fs::File;
use std::path::Path;
use std::sync::OnceLock;

/// A local store's folder, for the reads, writes and listings beneath it.
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

/// What a create-only write beneath the store's folder came to.
#[derive(Debug)]
pub(crate) enum Written {
    /// Written, durably: the file and its folder `fsync`ed.
    Created,
    /// Something is already at the key; nothing was written.
    Exists,
    /// As [`Opened::Refused`], on the way to the key's folder.
    Refused(std::io::Error),
    /// Any other failure; no staged file is left behind.
    Failed(std::io::Error),
    /// `openat2` is not available here.
    Unsupported,
}

impl Root {
    pub(crate) fn new(path: &Path) -> Root {
        Root {
            path: path.into(),
            dir: OnceLock::new(),
        }
    }

    /// A root reached by checked paths, as where `openat2` is refused: tests hold
    /// both ways of reading, writing and listing to the same results.
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

    /// Whether keys are reached beneath the folder (else by checked paths).
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

    /// Creates `key` holding `bytes` unless something is there already; never
    /// overwrites, never follows a link.
    pub(crate) fn create(&self, key: &str, bytes: &[u8]) -> Written {
        #[cfg(target_os = "linux")]
        if let Some(dir) = self.dir() {
            return create_beneath(dir, key, bytes);
        }
        let _ = (key, bytes);
        Written::Unsupported
    }

    /// The folder `folder` (a key prefix without its `/`; empty for the root) opened
    /// beneath the root to be listed: `Ok(None)` when absent, `Err` when a link or a
    /// file is on the way; `None` where `openat2` is refused.
    #[cfg(target_os = "linux")]
    pub(crate) fn open_folder(
        &self,
        folder: &str,
    ) -> Option<Result<Option<std::os::fd::OwnedFd>, rustix::io::Errno>> {
        let dir = self.dir()?;
        let folder = if folder.is_empty() { "." } else { folder };
        Some(match open_folder(dir, folder) {
            Ok(fd) => Ok(Some(fd)),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(e),
        })
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
    use rustix::fs::{Mode, OFlags};
    use rustix::io::Errno;
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    // `EAGAIN` is the kernel saying a rename elsewhere raced a `..` it resolved and
    // asking for a retry; a store key has no `..`, so this is belt and braces.
    let mut tries = 0;
    loop {
        return match rustix::fs::openat2(dir, key, flags, Mode::empty(), BENEATH) {
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

/// The flags every open beneath the root resolves its path with.
#[cfg(target_os = "linux")]
const BENEATH: rustix::fs::ResolveFlags = rustix::fs::ResolveFlags::BENEATH
    .union(rustix::fs::ResolveFlags::NO_SYMLINKS)
    .union(rustix::fs::ResolveFlags::NO_MAGICLINKS);

/// How a folder is opened to be listed or written into: a real folder only, never
/// through a link at its own name, and never inherited by a command `ledger` starts.
#[cfg(target_os = "linux")]
pub(super) const FOLDER: rustix::fs::OFlags = rustix::fs::OFlags::RDONLY
    .union(rustix::fs::OFlags::DIRECTORY)
    .union(rustix::fs::OFlags::NOFOLLOW)
    .union(rustix::fs::OFlags::CLOEXEC);

/// `folder` (a key prefix, or `.`) opened beneath `root`.
#[cfg(target_os = "linux")]
fn open_folder(
    root: std::os::fd::BorrowedFd<'_>,
    folder: &str,
) -> rustix::io::Result<std::os::fd::OwnedFd> {
    rustix::fs::openat2(root, folder, FOLDER, rustix::fs::Mode::empty(), BENEATH)
}

#[cfg(target_os = "linux")]
fn create_beneath(root: std::os::fd::BorrowedFd<'_>, key: &str, bytes: &[u8]) -> Written {
    use rustix::io::Errno;
    let (folder, name) = key.rsplit_once('/').unwrap_or((".", key));
    let written =
        open_or_make_folder(root, folder).and_then(|folder| write_staged(&folder, name, bytes));
    match written {
        Ok(true) => Written::Created,
        Ok(false) => Written::Exists,
        Err(e @ (Errno::LOOP | Errno::NOTDIR | Errno::XDEV)) => Written::Refused(e.into()),
        Err(e) => Written::Failed(e.into()),
    }
}

/// `folder` (a key's part before its last `/`, or `.`) opened beneath `root` for
/// writing into and `fsync`; what is missing of it is made, one folder at a time,
/// each in the one opened before it, and each folder gaining an entry `fsync`ed
/// (as `object_store` makes them).
#[cfg(target_os = "linux")]
fn open_or_make_folder(
    root: std::os::fd::BorrowedFd<'_>,
    folder: &str,
) -> rustix::io::Result<std::os::fd::OwnedFd> {
    use rustix::fs::Mode;
    use rustix::io::Errno;
    match open_folder(root, folder) {
        Err(Errno::NOENT) => {}
        opened => return opened,
    }
    let mut current = open_folder(root, ".")?;
    for segment in folder.split('/') {
        let made = match rustix::fs::mkdirat(&current, segment, Mode::from_raw_mode(0o777)) {
            Ok(()) => true,
            Err(Errno::EXIST) => false,
            Err(e) => return Err(e),
        };
        let next = open_folder(std::os::fd::AsFd::as_fd(&current), segment)?;
        if made {
            rustix::fs::fsync(&current)?;
        }
        current = next;
    }
    Ok(current)
}

/// Writes `bytes` to a staged name in `folder` and links it to `name`: `false`
/// when `name` exists. The staged name goes whatever happens.
#[cfg(target_os = "linux")]
fn write_staged(
    folder: &std::os::fd::OwnedFd,
    name: &str,
    bytes: &[u8],
) -> rustix::io::Result<bool> {
    use rustix::fs::{linkat, openat, unlinkat, AtFlags, Mode, OFlags};
    use rustix::io::Errno;
    use std::io::Write;
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    // The first free staged name: others are writes in progress (or left by a
    // writer that was killed), which listings skip.
    let mut n = 0u32;
    let (staged, file) = loop {
        n = n.checked_add(1).ok_or(Errno::EXIST)?;
        let staged = format!("{name}#{n}");
        match openat(folder, &staged, flags, Mode::from_raw_mode(0o666)) {
            Err(Errno::EXIST) => continue,
            opened => break (staged, opened?),
        }
    };
    let mut file = File::from(file);
    let linked = file
        .write_all(bytes)
        .map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO))
        .and_then(|()| rustix::fs::fsync(&file))
        .and_then(|()| {
            drop(file);
            match linkat(folder, &staged, folder, name, AtFlags::empty()) {
                Ok(()) => rustix::fs::fsync(folder).map(|()| true),
                Err(Errno::EXIST) => Ok(false),
                Err(e) => Err(e),
            }
        });
    let _ = unlinkat(folder, &staged, AtFlags::empty());
    linked
}
