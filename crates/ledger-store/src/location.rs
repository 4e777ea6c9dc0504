//! Where the store is: a local folder (the default, `.artifacts/` at the repository
//! root) or, in later versions, a bucket URL. Parsing is separate from opening so a
//! bad `--store` value is reported before anything touches the disk or network.

use crate::{Store, StoreError};
use object_store::local::LocalFileSystem;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A parsed store location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// A folder on this machine.
    Local(PathBuf),
}

impl StoreLocation {
    /// Parses `--store` / `LEDGER_STORE`: a path, or a `file://` URL.
    pub fn parse(s: &str) -> Result<StoreLocation, StoreError> {
        if s.trim().is_empty() {
            return Err(StoreError::InvalidLocation {
                location: s.to_owned(),
                why: "it is empty".into(),
            });
        }
        if let Some(path) = s.strip_prefix("file://") {
            return Ok(StoreLocation::Local(PathBuf::from(path)));
        }
        if let Some((scheme, _)) = s.split_once("://") {
            return Err(StoreError::Unsupported {
                scheme: scheme.to_owned(),
            });
        }
        Ok(StoreLocation::Local(PathBuf::from(s)))
    }

    /// The default: `.artifacts` in `root`.
    pub fn default_for(root: &Path) -> StoreLocation {
        StoreLocation::Local(root.join(".artifacts"))
    }

    pub(crate) fn open(self) -> Result<Store, StoreError> {
        match self {
            StoreLocation::Local(dir) => {
                let shown = dir.display().to_string();
                std::fs::create_dir_all(&dir).map_err(|e| StoreError::InvalidLocation {
                    location: shown.clone(),
                    why: format!("cannot create the folder: {e}"),
                })?;
                let fs = LocalFileSystem::new_with_prefix(&dir)
                    .map_err(|source| StoreError::Unreachable {
                        location: shown.clone(),
                        source,
                    })?
                    // Evidence must survive a crash right after a stage reports success.
                    .with_fsync(true);
                Ok(Store::from_object_store(Arc::new(fs), shown))
            }
        }
    }
}
