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
    write_entries(entries).map_err(err)
}

/// The regular files of the tar archive `archive` (named `name` in errors), sorted
/// by path, with the fixed metadata of [`tar_context`].
pub fn normalize_tar(archive: &[u8], name: &str) -> Result<Vec<u8>, DockerError> {
    let err = |e: std::io::Error| DockerError::Context {
        path: name.to_owned(),
        message: e.to_string(),
    };
    let mut entries = Vec::new();
    let mut reader = tar::Archive::new(archive);
    for entry in reader.entries().map_err(err)? {
        let mut entry = entry.map_err(err)?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let path = entry.path().map_err(err)?.into_owned();
        let exec = entry.header().mode().map_err(err)? & 0o111 != 0;
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).map_err(err)?;
        entries.push((path, exec, data));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    write_entries(entries).map_err(err)
}

/// Files as a tar archive: mtime 0, uid/gid 0, mode 0755 when `exec` else 0644.
fn write_entries(entries: Vec<(PathBuf, bool, Vec<u8>)>) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for (rel, exec, data) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(if exec { 0o755 } else { 0o644 });
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        builder.append_data(&mut header, &rel, data.as_slice())?;
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
    fn a_missing_folder_is_a_clear_error() {
        let e = tar_context(Path::new("/definitely/not/here")).unwrap_err();
        assert!(e.to_string().contains("cannot read build context"), "{e}");
    }
}
