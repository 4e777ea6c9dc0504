//! Object keys: the only strings that can name an object in the store.
//!
//! An [`ObjectKey`] is either built from an [`ArtifactRef`] (whose parts are already
//! validated) or parsed from a string under strict rules: `/`-separated segments of
//! `[a-z0-9._-]`, none empty, none `.` or `..`, no leading or trailing `/`. So no
//! input, whatever its origin, can reach outside the store's own layout.

use ledger_core::ArtifactRef;
use std::fmt;

/// Longest key accepted.
pub const MAX_KEY_LEN: usize = 512;

/// A validated object key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey(String);

/// A string that is not a valid key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid object key {shown:?}: {why}")]
pub struct KeyError {
    shown: String,
    why: &'static str,
}

fn check(s: &str) -> Result<(), KeyError> {
    let err = |why| {
        Err(KeyError {
            shown: s.chars().take(100).collect(),
            why,
        })
    };
    if s.is_empty() {
        return err("it is empty");
    }
    if s.len() > MAX_KEY_LEN {
        return err("it is longer than 512 bytes");
    }
    for seg in s.split('/') {
        if seg.is_empty() {
            return err("it has an empty segment (a leading, trailing or doubled `/`)");
        }
        if seg == "." || seg == ".." {
            return err("`.` and `..` segments are not allowed");
        }
        if !seg.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        }) {
            return err("only lowercase letters, digits, `.`, `_` and `-` may appear in a segment");
        }
    }
    Ok(())
}

impl ObjectKey {
    /// Parses a key under the rules of this module.
    pub fn parse(s: &str) -> Result<ObjectKey, KeyError> {
        check(s)?;
        Ok(ObjectKey(s.to_owned()))
    }

    /// Checks a listing prefix: a valid key followed by `/`.
    pub fn parse_prefix(s: &str) -> Result<&str, KeyError> {
        let Some(inner) = s.strip_suffix('/') else {
            return Err(KeyError {
                shown: s.chars().take(100).collect(),
                why: "a prefix must end with `/`",
            });
        };
        check(inner)?;
        Ok(s)
    }

    /// The envelope key of an artifact.
    pub fn from_artifact(r: &ArtifactRef) -> ObjectKey {
        ObjectKey(r.key())
    }

    /// The captured-output key of an artifact.
    pub fn from_artifact_log(r: &ArtifactRef) -> ObjectKey {
        ObjectKey(r.log_key())
    }

    /// The key as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
