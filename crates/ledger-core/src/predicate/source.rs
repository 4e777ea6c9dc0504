//! Where the code a stage ran came from (`common.v1.schema.json#/$defs/source`), as
//! the repository told it when the stage started.
//!
//! The subject of every statement is a commit SHA; this object says how faithfully
//! the run matches it. `build` exports its context from the commit's own git objects
//! (`exported`). A wrapped stage runs the working tree, so it records whether that
//! tree was the SHA's (`clean`), the SHA's with uncommitted changes (`dirty`, with a
//! digest of the difference), another commit's (`other`) or could not be checked at
//! all (`unchecked`, no git repository). A policy condition on `/source/tree` can
//! refuse everything but `clean` (or `exported`).
//!
//! Evidence written before this field existed has none, so it is optional to read;
//! every writer sets it.

use crate::digest::Sha256Digest;
use crate::sha::GitSha;
use serde::{Deserialize, Serialize};

/// The source of a run: the repository's HEAD and how the code that ran relates to
/// the statement's SHA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// `git rev-parse HEAD` when the stage started; `None` outside a git repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<GitSha>,
    /// How the code that ran relates to the SHA.
    pub tree: Tree,
    /// SHA-256 over the working tree's difference from HEAD (`git diff --binary HEAD`,
    /// then every untracked, non-ignored file's name and contents); set when the tree
    /// held uncommitted changes (always for `dirty`, possibly for `other`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff_sha256: Option<Sha256Digest>,
}

/// How the code that ran relates to the statement's SHA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tree {
    /// The working tree was the SHA's: HEAD is the SHA and nothing was uncommitted.
    Clean,
    /// HEAD is the SHA, but the tree held uncommitted changes (`--allow-dirty`).
    Dirty,
    /// HEAD is another commit than the SHA (`--allow-other-sha`).
    Other,
    /// No git repository to ask: nothing could be checked (`--allow-other-sha`).
    Unchecked,
    /// Built from the SHA's own git objects, whatever the working tree held.
    Exported,
}

impl Tree {
    /// The word written in evidence.
    pub fn as_str(self) -> &'static str {
        match self {
            Tree::Clean => "clean",
            Tree::Dirty => "dirty",
            Tree::Other => "other",
            Tree::Unchecked => "unchecked",
            Tree::Exported => "exported",
        }
    }
}
