//! Build contexts as the tar archive the engine's build endpoint takes.
//!
//! Entries are added in sorted order with fixed metadata (mtime 0, uid/gid 0), so the
//! same folder always yields the same bytes: the only source of difference between two
//! builds of one SHA is the engine itself (timestamps in the image config), which is
//! exactly why `ledger` builds once and deploys the recorded digest.

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
    let mut builder = tar::Builder::new(Vec::new());
    for rel in files {
        let data = std::fs::read(dir.join(&rel)).map_err(err)?;
        let mode = file_mode(&dir.join(&rel));
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        builder
            .append_data(&mut header, &rel, data.as_slice())
            .map_err(err)?;
    }
    builder.into_inner().map_err(err)
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
    fn a_missing_folder_is_a_clear_error() {
        let e = tar_context(Path::new("/definitely/not/here")).unwrap_err();
        assert!(e.to_string().contains("cannot read build context"), "{e}");
    }
}
