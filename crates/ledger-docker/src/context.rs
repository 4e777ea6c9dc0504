//! Build contexts as the tar archive the engine's build endpoint takes.
//!
//! Entries are added in sorted order with fixed metadata (mtime 0, uid/gid 0, mode
//! 0644 or 0755), so the same files always yield the same bytes: the only source of
//! difference between two builds of one SHA is the engine itself (timestamps in the
//! image config), which is exactly why `ledger` builds once and deploys the recorded
//! digest. A context is plain files: symlinks and special files are left out.
//! [`tar_context`] reads a folder; [`normalize_tar`] rewrites an archive made
//! elsewhere (the pipeline's `git archive` of a commit) into the same form.

use crate::DockerError;
use std::path::{Path, PathBuf};

fn collect(dir: &Path, base: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let kind = e.file_type()?;
        if kind.is_dir() {
            collect(&path, base, out)?;
        } else if kind.is_file() {
            out.push(
                path.strip_prefix(base)
                    .map(Path::to_path_buf)
                    .unwrap_or(path),
            );
        }
        // Symlinks and special files are left out: a context is plain files.
    }
    Ok(())
}

/// The folder `dir` as a deterministic tar archive.
pub fn tar_context(dir: &Path) -> Result<Vec<u8>, DockerError> {
    let err = |e: std::io::Error| DockerError::Context {
        path: dir.display().to_string(),
        message: e.to_string(),
    };
    let mut files = Vec::new();
    collect(dir, dir, &mut files).map_err(err)?;
    let mut entries = Vec::new();
    for rel in files {
        let data = std::fs::read(dir.join(&rel)).map_err(err)?;
        let exec = file_mode(&dir.join(&rel)) & 0o111 != 0;
        entries.push((rel, exec, data));
    }
    write_entries(
        entries
            .iter()
            .map(|(rel, exec, data)| (rel.as_path(), *exec, data.as_slice())),
    )
    .map_err(err)
}

/// The regular files of the tar archive `archive` (named `name` in errors), sorted
/// by path, with the fixed metadata of [`tar_context`].
///
/// A file's bytes are copied once, from `archive` into the result: the entries are
/// located by seeking past their data, not read out. A build context is mostly one or
/// two large files (a binary), and every extra copy of a fresh buffer costs a page
/// fault a page, not only a `memcpy`.
pub fn normalize_tar(archive: &[u8], name: &str) -> Result<Vec<u8>, DockerError> {
    let err = |e: std::io::Error| DockerError::Context {
        path: name.to_owned(),
        message: e.to_string(),
    };
    let mut files = Vec::new();
    let mut reader = tar::Archive::new(std::io::Cursor::new(archive));
    for entry in reader.entries_with_seek().map_err(err)? {
        let entry = entry.map_err(err)?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let path = entry.path().map_err(err)?.into_owned();
        let exec = entry.header().mode().map_err(err)? & 0o111 != 0;
        let data = usize::try_from(entry.raw_file_position())
            .ok()
            .zip(usize::try_from(entry.size()).ok())
            .and_then(|(at, len)| archive.get(at..at.checked_add(len)?))
            .ok_or_else(|| {
                err(std::io::Error::other(format!(
                    "the archive ends inside {}",
                    path.display()
                )))
            })?;
        files.push((path, exec, data));
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    write_entries(
        files
            .iter()
            .map(|(path, exec, data)| (path.as_path(), *exec, *data)),
    )
    .map_err(err)
}

/// At least the length of the archive [`write_entries`] makes of `entries`: per file a
/// header, the data padded to a block and room for a long name's extra header and
/// name; two end blocks.
fn archive_size<'a>(entries: impl Iterator<Item = (&'a Path, bool, &'a [u8])>) -> usize {
    let block = |n: usize| n.div_ceil(512) * 512;
    entries.fold(1024, |total, (rel, _, data)| {
        total + 1024 + block(data.len()) + block(rel.as_os_str().len() + 1)
    })
}

/// Files as a tar archive: mtime 0, uid/gid 0, mode 0755 when `exec` else 0644.
fn write_entries<'a>(
    entries: impl Iterator<Item = (&'a Path, bool, &'a [u8])> + Clone,
) -> std::io::Result<Vec<u8>> {
    // Sized up front, so the archive is written into one buffer.
    let mut builder = tar::Builder::new(Vec::with_capacity(archive_size(entries.clone())));
    for (rel, exec, data) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(if exec { 0o755 } else { 0o644 });
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        builder.append_data(&mut header, rel, data)?;
    }
    builder.into_inner()
}

#[cfg(unix)]
fn file_mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    let exec = std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false);
    if exec {
        0o755
    } else {
        0o644
    }
}

#[cfg(not(unix))]
fn file_mode(_: &Path) -> u32 {
    0o644
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archives_are_deterministic_and_complete() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        std::fs::write(dir.path().join("bin/app"), "x").unwrap();
        let a = tar_context(dir.path()).unwrap();
        let b = tar_context(dir.path()).unwrap();
        assert_eq!(a, b);
        let mut archive = tar::Archive::new(a.as_slice());
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["Dockerfile", "bin/app"]);
    }

    #[test]
    fn a_foreign_archive_is_normalized_to_the_folder_form() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        std::fs::write(dir.path().join("bin/app"), "x").unwrap();
        let folder = tar_context(dir.path()).unwrap();
        // The same files as another tool writes them: other order, times, owners,
        // a directory entry and a symlink.
        let mut builder = tar::Builder::new(Vec::new());
        let mut dir_header = tar::Header::new_ustar();
        dir_header.set_entry_type(tar::EntryType::Directory);
        dir_header.set_mode(0o775);
        dir_header.set_size(0);
        builder
            .append_data(&mut dir_header, "bin/", &[][..])
            .unwrap();
        for (path, data) in [
            ("bin/app", &b"x"[..]),
            ("Dockerfile", &b"FROM scratch\n"[..]),
        ] {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o664);
            h.set_mtime(1_800_000_000);
            h.set_uid(1000);
            builder.append_data(&mut h, path, data).unwrap();
        }
        let mut link = tar::Header::new_ustar();
        link.set_entry_type(tar::EntryType::Symlink);
        link.set_size(0);
        builder
            .append_link(&mut link, "link", "Dockerfile")
            .unwrap();
        let foreign = builder.into_inner().unwrap();
        assert_eq!(normalize_tar(&foreign, "test").unwrap(), folder);
    }

    #[test]
    fn long_names_large_files_and_pax_headers_come_through_in_one_buffer() {
        // Names past the 100 bytes of a plain header, once as `git archive` writes
        // them (a pax record before the entry) and once as a GNU long name; an empty
        // file and one of several blocks.
        let long = format!("{}/{}", "d".repeat(120), "f".repeat(150));
        let pax_long = format!("{}/{}", "p".repeat(130), "q".repeat(101));
        let big: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        let mut builder = tar::Builder::new(Vec::new());
        let body = format!(" path={pax_long}\n");
        let len = (body.len() + 3).to_string().len() + body.len();
        let record = format!("{len}{body}");
        assert_eq!(record.len(), len);
        let mut pax = tar::Header::new_ustar();
        pax.set_entry_type(tar::EntryType::XHeader);
        pax.set_size(record.len() as u64);
        builder
            .append_data(&mut pax, "pax_header", record.as_bytes())
            .unwrap();
        let mut short = tar::Header::new_ustar();
        short.set_size(3);
        short.set_mode(0o664);
        builder
            .append_data(&mut short, "cut-short-name", &b"pax"[..])
            .unwrap();
        let files: [(&str, &[u8], u32); 3] = [
            (&long, b"deep", 0o644),
            ("empty", b"", 0o755),
            ("big.bin", &big, 0o700),
        ];
        for (path, data, mode) in files {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(mode);
            builder.append_data(&mut h, path, data).unwrap();
        }
        let foreign = builder.into_inner().unwrap();
        let out = normalize_tar(&foreign, "test").unwrap();
        let entries = [
            (Path::new("big.bin"), true, big.as_slice()),
            (Path::new(long.as_str()), false, &b"deep"[..]),
            (Path::new("empty"), true, &b""[..]),
            (Path::new(pax_long.as_str()), false, &b"pax"[..]),
        ];
        let want = write_entries(entries.iter().copied()).unwrap();
        assert!(
            out == want,
            "normalized archive differs from the files written in order"
        );
        assert!(out.len() <= archive_size(entries.iter().copied()));
        assert_eq!(out.capacity(), archive_size(entries.iter().copied()));
        let mut read = tar::Archive::new(out.as_slice());
        let got: Vec<(String, u32, Vec<u8>)> = read
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let mut data = Vec::new();
                std::io::Read::read_to_end(&mut e, &mut data).unwrap();
                let path = e.path().unwrap().display().to_string();
                (path, e.header().mode().unwrap(), data)
            })
            .collect();
        let want = [
            ("big.bin".to_owned(), 0o755, big.clone()),
            (long.clone(), 0o644, b"deep".to_vec()),
            ("empty".to_owned(), 0o755, Vec::new()),
            (pax_long.clone(), 0o644, b"pax".to_vec()),
        ];
        assert!(
            got == want,
            "entries read back: {:?}",
            got.iter()
                .map(|g| (&g.0, g.1, g.2.len()))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn an_archive_cut_inside_a_file_is_an_error_naming_it() {
        let mut builder = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_size(2000);
        h.set_mode(0o644);
        builder
            .append_data(&mut h, "app.bin", &[7u8; 2000][..])
            .unwrap();
        let whole = builder.into_inner().unwrap();
        // Cut after the header, inside the data, and a byte before its end.
        for cut in [512, 1500, 512 + 1999] {
            let e = normalize_tar(&whole[..cut], "abc:image").unwrap_err();
            let text = e.to_string();
            assert!(
                text.contains("abc:image") && text.contains("app.bin"),
                "{text}"
            );
        }
    }

    #[test]
    fn a_missing_folder_is_a_clear_error() {
        let e = tar_context(Path::new("/definitely/not/here")).unwrap_err();
        assert!(e.to_string().contains("cannot read build context"), "{e}");
    }
}
