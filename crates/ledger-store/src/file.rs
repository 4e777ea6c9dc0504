//! Reading one file the way `ledger` reads every file: a regular file only, never
//! more than a limit, and never waiting on the other end of a pipe.
//!
//! Sizes from metadata cannot bound a read: `/dev/zero` reports 0 bytes and never
//! ends, a FIFO reports 0 and blocks its reader until a writer comes. So the file is
//! opened without blocking (`O_NONBLOCK`), checked to be a regular file on the open
//! descriptor (`fstat`, so it cannot be swapped after the check), and read through
//! `take(limit + 1)`: one byte past the limit proves it too large whatever the
//! metadata said. Store objects are also opened with `O_NOFOLLOW`: a symbolic link
//! in the store is never read through ([`Links::Refuse`]).

use std::io::Read;
use std::path::Path;

/// Whether the last component of the path may be a symbolic link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// Follow it: a file the user named may be a link (`--key ~/keys/current.pem`).
    Follow,
    /// Refuse it: nothing below a store's root is read through a link.
    Refuse,
}

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("it does not exist")]
    NotFound,
    #[error("it is {0}, not a regular file")]
    NotRegular(&'static str),
    #[error("it is {size} bytes or more, over the {limit}-byte limit")]
    TooLarge { size: u64, limit: usize },
    #[error("{0}")]
    Io(std::io::Error),
}

/// Reads the regular file at `path`, at most `limit` bytes.
pub fn read_regular(path: &Path, limit: usize, links: Links) -> Result<Vec<u8>, FileError> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let nofollow = if links == Links::Refuse {
            libc::O_NOFOLLOW
        } else {
            0
        };
        options.custom_flags(libc::O_NONBLOCK | nofollow);
    }
    let file = match options.open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(FileError::NotFound),
        #[cfg(unix)]
        Err(e) if links == Links::Refuse && e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(FileError::NotRegular("a symbolic link"))
        }
        Err(e) => return Err(FileError::Io(e)),
    };
    read_opened(file, limit)
}

/// Reads `file`, opened without blocking, if it is a regular file of at most `limit`
/// bytes: the check is made on the open descriptor, so the file cannot be swapped
/// after it.
pub fn read_opened(file: std::fs::File, limit: usize) -> Result<Vec<u8>, FileError> {
    let meta = file.metadata().map_err(FileError::Io)?;
    if !meta.file_type().is_file() {
        return Err(FileError::NotRegular(describe(meta.file_type())));
    }
    // The size said now only spares reading a file known to be too large; the limit
    // that holds is the one counted while reading.
    if meta.len() > limit as u64 {
        return Err(FileError::TooLarge {
            size: meta.len(),
            limit,
        });
    }
    // Sized from the metadata, the file is read in one call and its end found by a
    // second (from an empty buffer, `read_to_end` grows it from 32 bytes, a read for
    // each doubling: seven for a 2 KB envelope). A file that grew meanwhile is still
    // read to its end, up to the limit.
    let mut buf = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(limit));
    file.take(limit as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(FileError::Io)?;
    if buf.len() > limit {
        return Err(FileError::TooLarge {
            size: buf.len() as u64,
            limit,
        });
    }
    Ok(buf)
}

/// What a file that is not a regular file is, for messages.
pub fn describe(kind: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if kind.is_char_device() || kind.is_block_device() {
            return "a device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    if kind.is_symlink() {
        "a symbolic link"
    } else if kind.is_dir() {
        "a folder"
    } else if kind.is_file() {
        "a regular file"
    } else {
        "a special file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_and_oversize_files_are_refused_without_reading_them_whole() {
        #[cfg(unix)]
        assert!(matches!(
            read_regular(Path::new("/dev/zero"), 16, Links::Follow),
            Err(FileError::NotRegular("a device"))
        ));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"12345").unwrap();
        assert!(matches!(
            read_regular(&path, 4, Links::Follow),
            Err(FileError::TooLarge { size: 5, limit: 4 })
        ));
        assert_eq!(read_regular(&path, 5, Links::Refuse).unwrap(), b"12345");
        #[cfg(unix)]
        {
            let link = dir.path().join("l");
            std::os::unix::fs::symlink(&path, &link).unwrap();
            assert!(matches!(
                read_regular(&link, 5, Links::Refuse),
                Err(FileError::NotRegular("a symbolic link"))
            ));
            assert_eq!(read_regular(&link, 5, Links::Follow).unwrap(), b"12345");
        }
    }

    #[test]
    fn a_file_is_read_whole_whatever_its_size_said() {
        let dir = tempfile::tempdir().unwrap();
        // Sizes around the buffer's first growth steps and a block.
        for len in [0, 1, 31, 32, 33, 4095, 4096, 4097, 100_000] {
            let path = dir.path().join(format!("f{len}"));
            let data: Vec<u8> = (0..len).map(|i| b"0123456789abcdef"[i % 16]).collect();
            std::fs::write(&path, &data).unwrap();
            assert_eq!(read_regular(&path, len, Links::Refuse).unwrap(), data);
            if len > 0 {
                assert!(matches!(
                    read_regular(&path, len - 1, Links::Refuse),
                    Err(FileError::TooLarge { .. })
                ));
            }
        }
        // A regular file whose metadata says 0 bytes but which has more (procfs):
        // read to its end, not to the size it reported.
        #[cfg(target_os = "linux")]
        {
            let status = Path::new("/proc/self/status");
            assert_eq!(std::fs::metadata(status).unwrap().len(), 0);
            let read = read_regular(status, 1 << 20, Links::Follow).unwrap();
            assert!(
                read.len() > 100 && read.ends_with(b"\n"),
                "{} bytes",
                read.len()
            );
            let text = String::from_utf8(read).unwrap();
            assert!(
                text.starts_with("Name:") && text.contains("\nPid:"),
                "{text}"
            );
        }
    }
}
