//! A build context exported from a commit: `git archive` of the context's folder,
//! so that only committed files can reach an image labelled with the SHA.

use super::process::{git, text};
use super::SourceError;
use ledger_core::GitSha;
use std::path::{Component, Path};

/// The folder `context` (relative to the top) of commit `sha` as a tar archive, read
/// from git objects only: `git archive` of the folder's tree, run in `top`.
///
/// It does not find the working tree first: a caller checks beside it, with
/// [`super::check`], that `top` is the tree's top and `sha` one of its commits, and uses
/// the archive only once that check has passed (`ledger stage build` exports while
/// its gate runs, and records the `Source` that check returned).
pub fn export(top: &Path, sha: &GitSha, context: &str) -> Result<Vec<u8>, SourceError> {
    let missing = || SourceError::NoContext {
        context: context.to_owned(),
        sha: *sha,
    };
    let mut parts = Vec::new();
    for c in Path::new(context).components() {
        match c {
            Component::CurDir => {}
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            _ => return Err(missing()),
        }
    }
    let spec = format!("{sha}^{{tree}}:./{}", parts.join("/"));
    // `git archive` takes the folder's tree directly; only when it fails is git
    // asked why, so that a context missing from the commit (or a file, not a
    // folder) is named as such.
    let archived = git(top, &["archive", "--format=tar", &spec]);
    if archived.is_ok() {
        return archived;
    }
    let tree = git(top, &["rev-parse", "--verify", "--quiet", &spec])
        .map_err(|_not_in_commit| missing())?;
    if text(&git(top, &["cat-file", "-t", &text(&tree)])?) != "tree" {
        return Err(missing());
    }
    archived
}
