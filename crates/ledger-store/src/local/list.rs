//! Listing a local folder store: one walk over its folders, each reached either by
//! a descriptor opened beneath the one before it (where `openat2` is available:
//! [`super::beneath`]) or by path.
//!
//! By descriptor, a folder swapped for a symbolic link while it is listed is not
//! listed through: the walk holds the folder itself, and each sub-folder is opened
//! from it without following a link. By path (where `openat2` is refused), the
//! folder is checked and then read, in two calls (docs/storage.md).

#[cfg(target_os = "linux")]
use super::beneath::FOLDER;
use super::{check_path, io_failure, Last, Root};
use crate::{Listed, StoreError};
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::time::SystemTime;

/// What an entry of a folder is: never what a link points to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Folder,
    File,
    /// A link, a FIFO, a device, a socket: listed as an object of its own.
    Other,
}

/// What opening a folder of the walk found.
pub(super) enum Child<F> {
    Folder(F),
    /// Gone since its parent was read.
    Gone,
    /// No longer a folder (a link or a file put in its place since its parent was
    /// read): listed as an object of its own, as a link is.
    NotFolder,
}

/// A folder the walk reads: by path, or by descriptor.
pub(super) trait Folder: Sized {
    /// Its entries without `.` and `..`: name and kind; an entry gone since the
    /// folder was read is left out.
    fn entries(&mut self) -> std::io::Result<Vec<(OsString, Kind)>>;
    /// Its sub-folder `name`, not following a link.
    fn child(&self, name: &OsStr) -> std::io::Result<Child<Self>>;
    /// Size and write time of `name`, not following a link; `None` when gone.
    fn stat(&self, name: &OsStr) -> std::io::Result<Option<(u64, SystemTime)>>;
}

/// Every object under `root/prefix` (`prefix` without its trailing `/`): every file
/// without the backend's in-progress writes (`NAME#DIGITS`), with size and write
/// time. Symbolic links are not followed: a link (or a FIFO, a device) is listed as
/// an object of its own, so that verification sees it and refuses to read it; a
/// folder on the way to `prefix` that is a link is listed as that one object. One
/// `lstat` per listed file (none with `stat` false: sizes and times are then left
/// at 0 and the epoch, for callers that keep the keys alone; an entry's kind comes
/// from the directory read) and none of the backend's path-to-URL conversions,
/// which made its listing cost more than reading the same files. With `after`, only
/// keys that sort after it (the others are skipped before their `lstat`).
pub(crate) fn list(
    root: &Root,
    location: &str,
    prefix: &str,
    after: Option<&str>,
    stat: bool,
) -> Result<Vec<Listed>, StoreError> {
    let walk = Walk {
        root,
        location,
        after,
        stat,
    };
    #[cfg(target_os = "linux")]
    if let Some(listed) = walk.beneath(prefix) {
        return listed;
    }
    if !prefix.is_empty() {
        if let Some(object) = walk.not_a_folder(prefix)? {
            return Ok(object);
        }
    }
    walk.run(PathFolder(root.path().join(prefix)), prefix)
}

struct Walk<'a> {
    root: &'a Root,
    location: &'a str,
    after: Option<&'a str>,
    stat: bool,
}

impl Walk<'_> {
    fn failed(&self, key: &str, e: std::io::Error) -> StoreError {
        let path = self.root.path().join(key);
        io_failure(self.location, format!("listing {}", path.display()), e)
    }

    /// The listing of a prefix on whose way something is not a folder: that part,
    /// as one object; `None` when every part on the way is a folder (or absent).
    fn not_a_folder(&self, prefix: &str) -> Result<Option<Vec<Listed>>, StoreError> {
        let key = match check_path(self.root.path(), self.location, prefix, Last::Folder) {
            Err(StoreError::NotRegular { key, .. }) => key,
            Err(e) => return Err(e),
            Ok(_) => return Ok(None),
        };
        let path = self.root.path().join(&key);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) => Ok(Some(vec![listed(key, meta.len(), modified(&meta))])),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.failed(&key, e)),
        }
    }

    /// The listing walked by descriptor from the folder opened beneath the root;
    /// `None` where `openat2` is refused. A link or a file on the way is listed as
    /// that one object; one gone by the time it is looked at (put back) has the
    /// folder opened again.
    #[cfg(target_os = "linux")]
    fn beneath(&self, prefix: &str) -> Option<Result<Vec<Listed>, StoreError>> {
        for _ in 0..8 {
            let listed = match self.root.open_folder(prefix)? {
                Ok(Some(folder)) => FdFolder::new(folder)
                    .map_err(|e| self.failed(prefix, e))
                    .and_then(|folder| self.run(folder, prefix)),
                Ok(None) => Ok(Vec::new()),
                Err(_) => match self.not_a_folder(prefix) {
                    Ok(None) => continue,
                    object => object.map(Option::unwrap_or_default),
                },
            };
            return Some(listed);
        }
        let changing = "a folder on the way kept changing between a link and a folder";
        Some(Err(self.failed(prefix, std::io::Error::other(changing))))
    }

    fn run<F: Folder>(&self, top: F, prefix: &str) -> Result<Vec<Listed>, StoreError> {
        let mut out = Vec::new();
        let mut folders = vec![(top, prefix.to_owned())];
        while let Some((mut folder, key)) = folders.pop() {
            let entries = match folder.entries() {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(self.failed(&key, e)),
            };
            let after_here = self.after.and_then(|after| name_bound(after, &key));
            for (file_name, kind) in entries {
                if after_here.is_some_and(|bound| sorts_at_or_before(kind, &file_name, bound)) {
                    continue;
                }
                let name = file_name.to_string_lossy().into_owned();
                let child = if key.is_empty() {
                    name.clone()
                } else {
                    format!("{key}/{name}")
                };
                // A folder's key is a prefix of its objects' keys, so one that sorts
                // before `after` may still hold keys after it: only files are skipped.
                let before = self.after.is_some_and(|after| child.as_str() <= after);
                if before && kind != Kind::Folder {
                    continue;
                }
                if kind == Kind::Folder {
                    match folder.child(&file_name) {
                        Ok(Child::Folder(sub)) => {
                            folders.push((sub, child));
                            continue;
                        }
                        Ok(Child::Gone) => continue,
                        Ok(Child::NotFolder) => {}
                        Err(e) => return Err(self.failed(&child, e)),
                    }
                } else if before || kind == Kind::File && in_progress(&name) {
                    continue;
                }
                out.push(match self.stat.then(|| folder.stat(&file_name)) {
                    None => Listed::unstatted(child),
                    Some(Ok(Some((size, modified)))) => listed(child, size, modified),
                    Some(Ok(None)) => continue,
                    Some(Err(e)) => return Err(self.failed(&child, e)),
                });
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        tracing::debug!(prefix, files = out.len(), "listed the local folder");
        Ok(out)
    }
}

/// A folder reached by path, where `openat2` is refused: its sub-folders too.
struct PathFolder(PathBuf);

impl Folder for PathFolder {
    fn entries(&mut self) -> std::io::Result<Vec<(OsString, Kind)>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.0)? {
            let entry = entry?;
            let kind = match entry.file_type() {
                Ok(kind) if kind.is_dir() => Kind::Folder,
                Ok(kind) if kind.is_file() => Kind::File,
                Ok(_) => Kind::Other,
                // Gone since the folder was read: not an object.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            out.push((entry.file_name(), kind));
        }
        Ok(out)
    }

    fn child(&self, name: &OsStr) -> std::io::Result<Child<Self>> {
        Ok(Child::Folder(PathFolder(self.0.join(name))))
    }

    fn stat(&self, name: &OsStr) -> std::io::Result<Option<(u64, SystemTime)>> {
        match std::fs::symlink_metadata(self.0.join(name)) {
            Ok(meta) => Ok(Some((meta.len(), modified(&meta)))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A folder being listed, held by its descriptor: its sub-folders are opened from it
/// without following a link, so a folder swapped for a link is not listed through.
#[cfg(target_os = "linux")]
struct FdFolder(rustix::fs::Dir);

#[cfg(target_os = "linux")]
impl Folder for FdFolder {
    fn entries(&mut self) -> std::io::Result<Vec<(OsString, Kind)>> {
        use std::os::unix::ffi::OsStrExt;
        let mut out = Vec::new();
        while let Some(entry) = self.0.read() {
            let entry = entry?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            if let Some(kind) = self.entry_kind(entry.file_type(), entry.file_name())? {
                out.push((OsStr::from_bytes(name).to_owned(), kind));
            }
        }
        Ok(out)
    }

    fn child(&self, name: &OsStr) -> std::io::Result<Child<Self>> {
        use rustix::io::Errno;
        let folder = rustix::fs::openat(self.0.fd()?, name, FOLDER, rustix::fs::Mode::empty());
        match folder {
            Ok(fd) => Ok(Child::Folder(FdFolder::new(fd)?)),
            Err(Errno::NOENT) => Ok(Child::Gone),
            Err(Errno::LOOP | Errno::NOTDIR) => Ok(Child::NotFolder),
            Err(e) => Err(e.into()),
        }
    }

    fn stat(&self, name: &OsStr) -> std::io::Result<Option<(u64, SystemTime)>> {
        Ok(self.lstat(name)?.map(|st| {
            let secs = u64::try_from(st.st_mtime).unwrap_or(0);
            let nanos = u32::try_from(st.st_mtime_nsec).unwrap_or(0);
            let modified = std::time::UNIX_EPOCH + std::time::Duration::new(secs, nanos);
            (u64::try_from(st.st_size).unwrap_or(0), modified)
        }))
    }
}

#[cfg(target_os = "linux")]
impl FdFolder {
    fn new(fd: std::os::fd::OwnedFd) -> std::io::Result<FdFolder> {
        Ok(FdFolder(rustix::fs::Dir::new(fd)?))
    }

    /// What entry `name` is, from the type its folder entry `reported`; a file system
    /// that does not say there (`DT_UNKNOWN`) is asked with an `fstatat` that follows
    /// no link. `None` when the entry is gone by then.
    fn entry_kind(
        &self,
        reported: rustix::fs::FileType,
        name: &std::ffi::CStr,
    ) -> std::io::Result<Option<Kind>> {
        use rustix::fs::FileType;
        Ok(match reported {
            FileType::Unknown => self
                .lstat(name)?
                .map(|st| kind_of(FileType::from_raw_mode(st.st_mode))),
            kind => Some(kind_of(kind)),
        })
    }

    /// `name`'s own metadata (`fstatat` without following a link); `None` when gone.
    fn lstat(&self, name: impl rustix::path::Arg) -> std::io::Result<Option<rustix::fs::Stat>> {
        use rustix::fs::{statat, AtFlags};
        match statat(self.0.fd()?, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(st)),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(target_os = "linux")]
fn kind_of(kind: rustix::fs::FileType) -> Kind {
    match kind {
        rustix::fs::FileType::Directory => Kind::Folder,
        rustix::fs::FileType::RegularFile => Kind::File,
        _ => Kind::Other,
    }
}

fn modified(meta: &std::fs::Metadata) -> SystemTime {
    meta.modified().unwrap_or(std::time::UNIX_EPOCH)
}

/// `after` as a name in the folder whose key is `folder`, when it lies in it: a file
/// whose name sorts at or before that name is skipped before its key is built (most
/// of a long log's folder, which a gate lists for its last few entries).
fn name_bound<'a>(after: &'a str, folder: &str) -> Option<&'a str> {
    match folder {
        "" => Some(after),
        folder => after.strip_prefix(folder)?.strip_prefix('/'),
    }
}

/// Whether an entry of `kind` named `name` is a file whose name sorts at or before
/// `bound` ([`name_bound`]); `false` for a folder, and for a name that is not UTF-8,
/// which the caller then compares as a key.
fn sorts_at_or_before(kind: Kind, name: &OsStr, bound: &str) -> bool {
    kind != Kind::Folder && name.to_str().is_some_and(|name| name <= bound)
}

fn listed(key: String, size: u64, modified: SystemTime) -> Listed {
    Listed {
        key,
        size,
        modified,
    }
}

impl Listed {
    /// A key listed without its `lstat` (`list` with `stat` false).
    fn unstatted(key: String) -> Listed {
        listed(key, 0, std::time::UNIX_EPOCH)
    }
}

/// Whether `name` is one of the backend's in-progress writes: `NAME#DIGITS`.
fn in_progress(name: &str) -> bool {
    name.split_once('#')
        .is_some_and(|(_, suffix)| !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// A file system that leaves the type out of its folder entries (`DT_UNKNOWN`)
    /// gets each entry's type from the entry itself, a link never followed: a link to
    /// a folder or a file is neither, and a name gone meanwhile is skipped.
    #[test]
    fn an_entry_of_unknown_type_is_looked_at_without_following_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("folder")).unwrap();
        std::fs::write(root.join("file"), b"x").unwrap();
        std::os::unix::fs::symlink("folder", root.join("to-folder")).unwrap();
        std::os::unix::fs::symlink("file", root.join("to-file")).unwrap();
        let fd = rustix::fs::open(root, FOLDER, rustix::fs::Mode::empty()).unwrap();
        let folder = FdFolder::new(fd).unwrap();
        let unknown = |name: &str| {
            let name = std::ffi::CString::new(name).unwrap();
            folder
                .entry_kind(rustix::fs::FileType::Unknown, &name)
                .unwrap()
        };
        assert_eq!(unknown("folder"), Some(Kind::Folder));
        assert_eq!(unknown("file"), Some(Kind::File));
        assert_eq!(unknown("to-folder"), Some(Kind::Other));
        assert_eq!(unknown("to-file"), Some(Kind::Other));
        assert_eq!(unknown("gone"), None);
        // Where the entry says, it is taken at its word (no extra call).
        let said = std::ffi::CString::new("gone").unwrap();
        let kind = folder.entry_kind(rustix::fs::FileType::Directory, &said);
        assert_eq!(kind.unwrap(), Some(Kind::Folder));
    }
}
