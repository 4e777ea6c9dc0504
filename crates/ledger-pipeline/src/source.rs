//! What git says about the code a stage runs: the one place `ledger` asks the
//! repository anything (the `git` binary, run with `std::process::Command`).
//!
//! Evidence names a commit SHA, so it is only as good as the link between that SHA
//! and the code that actually ran. Three rules keep the link, checked before a
//! stage's gate (a refusal writes nothing):
//!
//! * `--sha` must name a commit of the repository, for every stage run inside one;
//!   without it a stage runs for HEAD.
//! * `build` never reads the working tree: each image's context is exported from the
//!   commit's own git objects ([`export`]), so uncommitted files cannot
//!   reach an image labelled with the SHA. Outside a git repository it is refused.
//! * The wrapped stages (`commit`, `integration`) run the working tree, so it must be
//!   the SHA's: HEAD is the SHA and nothing is uncommitted. `--allow-dirty` and
//!   `--allow-other-sha` relax this on request, and the predicate's `source` records
//!   what was allowed ([`check`]), so a policy can still refuse it.

use ledger_core::predicate::{Source, Tree};
use ledger_core::{GitSha, Sha256Digest, Stage};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

mod archive;
mod process;

pub use archive::export;

use process::{git, run, text, Started, STATUS};

/// What the user explicitly allowed for a wrapped stage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Allow {
    /// `--allow-dirty`: run on a tree with uncommitted changes, and record them.
    pub dirty: bool,
    /// `--allow-other-sha`: run for a SHA other than HEAD (or with no repository to
    /// check against), and record it.
    pub other_sha: bool,
}

/// Why the source of a run cannot be vouched for.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{dir} is not in a git repository ({detail}), so {}", consequence(*.stage))]
    NotARepository {
        dir: String,
        detail: String,
        /// The stage refused; `None` when resolving HEAD for a missing `--sha`.
        stage: Option<Stage>,
    },
    #[error("{sha} is not a commit of the repository at {dir}")]
    NotACommit { sha: GitSha, dir: String },
    #[error("{revision:?} is neither a full commit SHA nor a revision of the repository at {dir}")]
    UnknownRevision { revision: String, dir: String },
    #[error("the working tree differs from {sha} ({}), so `{stage}` would run code that is not {sha}", summary(.changes))]
    Dirty {
        stage: Stage,
        sha: GitSha,
        changes: Vec<String>,
    },
    #[error("HEAD is {}, not {sha}, so `{stage}` would run another commit's code under {sha}'s name", .head.map_or("unborn".to_owned(), |h| h.to_string()))]
    OtherSha {
        stage: Stage,
        sha: GitSha,
        head: Option<GitSha>,
    },
    #[error("the repository at {dir} has no commits yet")]
    NoCommits { dir: String },
    #[error("build context {context:?} is not a folder of commit {sha}")]
    NoContext { context: String, sha: GitSha },
    #[error("`git {args}` failed in {dir}: {message}")]
    Git {
        args: String,
        dir: String,
        message: String,
    },
}

/// What is lost without a repository, for `stage`.
fn consequence(stage: Option<Stage>) -> &'static str {
    match stage {
        Some(Stage::Build) => "the image cannot be built from the commit's own files",
        Some(Stage::Commit | Stage::Integration) => {
            "nothing shows that the code under test is that commit's"
        }
        _ => "its commit cannot be found",
    }
}

/// At most three changed paths, then how many more.
fn summary(changes: &[String]) -> String {
    let shown: Vec<&str> = changes.iter().take(3).map(String::as_str).collect();
    match changes.len().saturating_sub(3) {
        0 => format!("changed: {}", shown.join(", ")),
        more => format!("changed: {} and {more} more", shown.join(", ")),
    }
}

impl SourceError {
    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            SourceError::NotARepository {
                stage: Some(stage @ (Stage::Commit | Stage::Integration)),
                ..
            } => format!(
                "run ledger inside the git checkout of the commit; or pass --allow-other-sha to run `{stage}` unchecked, recorded as such"
            ),
            SourceError::NotARepository { .. } => {
                "run ledger inside the git checkout of the commit (`git init` and commit for a new project)".into()
            }
            SourceError::UnknownRevision { .. } => {
                "give the full 40-character SHA, or a revision git knows here (HEAD, a tag, a branch, an abbreviated SHA as `git log --oneline` prints it)".into()
            }
            SourceError::NotACommit { .. } => {
                "pass the full SHA of a commit of this repository (`git log`), or fetch it first".into()
            }
            SourceError::Dirty { stage, .. } => format!(
                "commit or stash the changes; or pass --allow-dirty to run `{stage}` anyway and record the tree as dirty"
            ),
            SourceError::OtherSha { stage, sha, .. } => format!(
                "`git checkout {sha}` first; or pass --allow-other-sha to run `{stage}` anyway and record it"
            ),
            SourceError::NoCommits { .. } => "commit first, or pass --sha <40-hex commit>".into(),
            SourceError::NoContext { .. } => {
                "commit the build context, or fix `context` in ledger.toml".into()
            }
            SourceError::Git { .. } => return None,
        })
    }
}

/// A git working tree: the top folder git reports for a directory, and its HEAD
/// commit as it was when the tree was found.
///
/// Each `git` process costs a few milliseconds, a large share of a stage's own
/// overhead (docs/performance.md), so one `rev-parse` answers both questions and
/// the answers are kept: a stage asks for the top, HEAD and whether its SHA is a
/// commit, and when the SHA is HEAD that is one process, not three.
#[derive(Debug, Clone)]
pub struct Worktree {
    top: PathBuf,
    /// `HEAD^{commit}`; `None` before the first commit.
    head: Option<GitSha>,
}

impl Worktree {
    /// The git working tree whose top folder is `dir`, for `stage`'s sake (named in
    /// the refusal when there is none, git cannot be run, or `dir` is not its top: a
    /// `.git` git does not recognise, inside another repository).
    pub fn find(dir: &Path, stage: Option<Stage>) -> Result<Worktree, SourceError> {
        let refuse = |detail: String| SourceError::NotARepository {
            dir: dir.display().to_string(),
            detail,
            stage,
        };
        // One process: the top folder, then HEAD's commit. Before the first commit
        // git prints the top alone and exits 1 with nothing on stderr (`--quiet`).
        let args = [
            "rev-parse",
            "--show-toplevel",
            "--verify",
            "--quiet",
            "HEAD^{commit}",
        ];
        let out = run(dir, &args)?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let mut lines = stdout.lines();
        let (top, head) = match (out.status.code(), lines.next(), lines.next()) {
            // A HEAD that is no 40-hex SHA (a SHA-256 repository) is no commit
            // evidence can name: as before the first commit.
            (Some(0), Some(top), Some(head)) => (top, GitSha::parse(head).ok()),
            (Some(1), Some(top), None) if out.stderr.is_empty() => (top, None),
            _ => {
                return Err(refuse(
                    String::from_utf8_lossy(&out.stderr).trim().to_owned(),
                ))
            }
        };
        let top = PathBuf::from(top);
        let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        if !same(&top, dir) {
            return Err(refuse(format!(
                "git's working tree for it is {}",
                top.display()
            )));
        }
        tracing::debug!(top = %top.display(), "found the working tree");
        Ok(Worktree { top, head })
    }

    /// HEAD's commit when the tree was found; `None` before the first commit.
    pub fn head(&self) -> Option<GitSha> {
        self.head
    }

    /// Refuses a SHA that is not a commit of this repository. HEAD's commit is one
    /// without asking git again.
    pub fn require_commit(&self, sha: &GitSha) -> Result<(), SourceError> {
        if self.head == Some(*sha) {
            return Ok(());
        }
        let spec = format!("{sha}^{{commit}}");
        match git(&self.top, &["rev-parse", "--verify", "--quiet", &spec]) {
            Ok(out) if text(&out) == sha.as_str() => Ok(()),
            Ok(_) | Err(SourceError::Git { .. }) => Err(SourceError::NotACommit {
                sha: *sha,
                dir: self.top.display().to_string(),
            }),
            Err(e) => Err(e),
        }
    }

    /// The working tree's difference from HEAD: `None` when it has none; else the
    /// changed paths (tracked changes and untracked, non-ignored files) and a digest
    /// over `git diff --binary HEAD` and each untracked file's path and contents.
    pub fn difference(&self) -> Result<Option<(Vec<String>, Sha256Digest)>, SourceError> {
        self.difference_from(&git(&self.top, STATUS)?)
    }

    /// [`Worktree::difference`] given what `git status` ([`STATUS`]) printed for it.
    fn difference_from(
        &self,
        status: &[u8],
    ) -> Result<Option<(Vec<String>, Sha256Digest)>, SourceError> {
        let changes = changed_paths(status);
        if changes.is_empty() {
            return Ok(None);
        }
        let mut hasher = Sha256::new();
        hasher.update(git(&self.top, &["diff", "--binary", "HEAD"])?);
        let untracked = git(
            &self.top,
            &["ls-files", "--others", "--exclude-standard", "-z"],
        )?;
        for path in untracked.split(|b| *b == 0).filter(|p| !p.is_empty()) {
            hasher.update(b"\0");
            hasher.update(path);
            hasher.update(b"\0");
            self.hash_file(&String::from_utf8_lossy(path), &mut hasher)?;
        }
        let digest: [u8; 32] = hasher.finalize().into();
        Ok(Some((changes, Sha256Digest::from(digest))))
    }

    /// Adds an untracked file's contents (a symlink's target) to `hasher`; a folder
    /// (a nested repository) adds nothing beyond its path.
    fn hash_file(&self, rel: &str, hasher: &mut Sha256) -> Result<(), SourceError> {
        let path = self.top.join(rel);
        let failed = |e: std::io::Error| SourceError::Git {
            args: "ls-files --others".into(),
            dir: self.top.display().to_string(),
            message: format!("cannot read untracked file {rel}: {e}"),
        };
        let meta = std::fs::symlink_metadata(&path).map_err(failed)?;
        if meta.is_symlink() {
            let target = std::fs::read_link(&path).map_err(failed)?;
            hasher.update(target.to_string_lossy().as_bytes());
        } else if meta.is_file() {
            let mut file = std::fs::File::open(&path).map_err(failed)?;
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = file.read(&mut buf).map_err(failed)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
            }
        }
        Ok(())
    }

    /// The file `path` (relative to the top) of commit `sha`, read from git objects
    /// only; `None` when the commit has no such file (or it is not a regular blob).
    /// A blob over `limit` bytes is refused from its object size, before it is read.
    pub fn file_at(
        &self,
        sha: &GitSha,
        path: &str,
        limit: usize,
    ) -> Result<Option<Vec<u8>>, SourceError> {
        self.require_commit(sha)?;
        let spec = format!("{sha}^{{tree}}:./{path}");
        let Ok(oid) = git(&self.top, &["rev-parse", "--verify", "--quiet", &spec]) else {
            return Ok(None);
        };
        let oid = text(&oid);
        if text(&git(&self.top, &["cat-file", "-t", &oid])?) != "blob" {
            return Ok(None);
        }
        let size = text(&git(&self.top, &["cat-file", "-s", &oid])?);
        if size.parse::<usize>().map_or(true, |n| n > limit) {
            return Err(SourceError::Git {
                args: format!("cat-file -s {oid}"),
                dir: self.top.display().to_string(),
                message: format!("{path} of {sha} is {size} bytes, over the {limit}-byte limit"),
            });
        }
        git(&self.top, &["cat-file", "blob", &oid]).map(Some)
    }
}

/// The paths of `git status --porcelain=v1 -z`: entries are `XY path`, each
/// NUL-terminated; a rename or copy (`R`/`C`) is followed by its source path as a
/// field of its own.
fn changed_paths(status: &[u8]) -> Vec<String> {
    let mut fields = status.split(|b| *b == 0).filter(|f| !f.is_empty());
    let mut paths = Vec::new();
    while let Some(entry) = fields.next() {
        let (code, path) = entry.split_at(entry.len().min(3));
        paths.push(String::from_utf8_lossy(path).into_owned());
        if code.iter().take(2).any(|c| matches!(c, b'R' | b'C')) {
            if let Some(source) = fields.next() {
                paths.push(String::from_utf8_lossy(source).into_owned());
            }
        }
    }
    paths
}

/// The commit `revision` names in the repository at `dir` (`HEAD`, a tag, a branch,
/// an abbreviated SHA): what the read commands accept besides a full SHA. Never an
/// option to git: the revision follows `--end-of-options`.
pub fn resolve(dir: &Path, revision: &str) -> Result<GitSha, SourceError> {
    let unknown = || SourceError::UnknownRevision {
        revision: revision.chars().take(100).collect(),
        dir: dir.display().to_string(),
    };
    let tree = Worktree::find(dir, None).map_err(|_not_a_repository| unknown())?;
    let spec = format!("{revision}^{{commit}}");
    match git(
        &tree.top,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &spec,
        ],
    ) {
        Ok(out) => GitSha::parse(&text(&out)).map_err(|_not_a_sha| unknown()),
        Err(SourceError::Git { .. }) => Err(unknown()),
        Err(e) => Err(e),
    }
}

/// `git rev-parse HEAD` in `dir`: the SHA a stage works on when `--sha` is not given.
pub fn head(dir: &Path) -> Result<GitSha, SourceError> {
    let tree = Worktree::find(dir, None)?;
    tree.head().ok_or_else(|| SourceError::NoCommits {
        dir: dir.display().to_string(),
    })
}

/// Checks that `stage` may run for `sha` from the checkout at `dir` (the repository
/// root), before its gate, and says which SHA it runs for and what its predicate
/// records as `source`.
///
/// Without `sha` (no `--sha`) the stage runs for HEAD, which the same `git` process
/// that finds the tree reads. Inside a git repository `sha` must be one of its
/// commits, for every stage. `build` needs the repository (it exports contexts from
/// it) and records `exported`. The wrapped stages need HEAD to be `sha` and a clean
/// tree unless `allow`ed; with no repository nothing can be checked, which only
/// `--allow-other-sha` accepts. The other stages run no project code: `None`, and no
/// repository needed when `sha` is given.
#[tracing::instrument(level = "debug", skip_all, fields(%stage))]
pub fn check(
    dir: &Path,
    stage: Stage,
    sha: Option<&GitSha>,
    allow: Allow,
) -> Result<(GitSha, Option<Source>), SourceError> {
    // The wrapped stages' `git status` (a process of a couple of milliseconds, like
    // the one finding the tree) starts at once, in `dir`; its answer is used only
    // once `dir` is known to be the tree's top and HEAD the SHA.
    let status = stage.wraps_command().then(|| Started::spawn(dir, STATUS));
    let tree = match (Worktree::find(dir, Some(stage)), sha) {
        (Ok(tree), _) => tree,
        (Err(SourceError::NotARepository { .. }), Some(sha))
            if !stage.wraps_command() && stage != Stage::Build =>
        {
            return Ok((*sha, None))
        }
        (Err(SourceError::NotARepository { .. }), Some(sha))
            if stage.wraps_command() && allow.other_sha =>
        {
            let unchecked = Source {
                head: None,
                tree: Tree::Unchecked,
                diff_sha256: None,
            };
            return Ok((*sha, Some(unchecked)));
        }
        (Err(e), _) => return Err(e),
    };
    let sha = match sha {
        Some(sha) => {
            tree.require_commit(sha)?;
            *sha
        }
        None => tree.head().ok_or_else(|| SourceError::NoCommits {
            dir: dir.display().to_string(),
        })?,
    };
    let head = tree.head();
    if stage == Stage::Build {
        let exported = Source {
            head,
            tree: Tree::Exported,
            diff_sha256: None,
        };
        return Ok((sha, Some(exported)));
    }
    if !stage.wraps_command() {
        return Ok((sha, None));
    }
    let other = head != Some(sha);
    if other && !allow.other_sha {
        return Err(SourceError::OtherSha { stage, sha, head });
    }
    let difference = match status {
        Some(status) => tree.difference_from(&status.finish()?)?,
        None => tree.difference()?,
    };
    if let (Some((changes, _)), false) = (&difference, allow.dirty) {
        return Err(SourceError::Dirty {
            stage,
            sha,
            changes: changes.clone(),
        });
    }
    let diff_sha256 = difference.map(|(_, digest)| digest);
    let tree = match (other, diff_sha256.is_some()) {
        (true, _) => Tree::Other,
        (false, true) => Tree::Dirty,
        (false, false) => Tree::Clean,
    };
    let source = Source {
        head,
        tree,
        diff_sha256,
    };
    Ok((sha, Some(source)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_entries_name_every_path_including_a_rename_source() {
        let status = b" M app.txt\0R  new name.txt\0old.txt\0?? dir/untracked\0";
        assert_eq!(
            changed_paths(status),
            ["app.txt", "new name.txt", "old.txt", "dir/untracked"]
        );
        assert!(changed_paths(b"").is_empty());
    }

    /// A git started ahead of need answers like one run in turn: its failure is
    /// git's own message, naming the command; one not waited for is ended quietly.
    #[test]
    fn a_git_started_ahead_answers_like_one_run_in_turn() {
        let dir = tempfile::tempdir().unwrap();
        let early = Started::spawn(dir.path(), STATUS).finish().unwrap_err();
        let in_turn = git(dir.path(), STATUS).unwrap_err();
        assert_eq!(early.to_string(), in_turn.to_string());
        assert!(early.to_string().contains("status --porcelain"), "{early}");
        drop(Started::spawn(dir.path(), STATUS));
        let missing = Started::spawn(&dir.path().join("gone"), STATUS).finish();
        assert!(
            missing.is_err_and(|e| e.to_string().contains("could not be run")),
            "a folder that does not exist"
        );
    }
}
