//! The in-toto Statement v1 that every envelope carries.
//!
//! A statement binds a predicate (what a stage did) to subjects (the git commit, and
//! image digests where a stage produced or consumed images). Parsing is strict: unknown
//! fields, duplicate keys and trailing bytes are refused, because the verifier must
//! see exactly what was signed and nothing an attacker could smuggle beside it.

use crate::sha::GitSha;
use crate::stage::ArtifactKind;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `_type` of every in-toto Statement v1.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";

/// The predicate type of a prune record (`prune/<time>-<keyid>.json`).
pub const PRUNE_PREDICATE_TYPE: &str = "https://ledger.dev/predicate/prune/v1";

/// The subject name `ledger` gives the git commit.
pub const GIT_SUBJECT_NAME: &str = "git-commit";

/// An in-toto Statement v1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    #[serde(rename = "_type")]
    pub statement_type: String,
    pub subject: Vec<Subject>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    pub predicate: serde_json::Value,
}

/// One subject: a name and its digests by algorithm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub digest: BTreeMap<String, String>,
}

/// Why a payload is not a statement `ledger` accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatementError {
    #[error("payload is not a valid in-toto Statement: {0}")]
    Malformed(String),
    #[error("statement _type is {0:?}, expected {STATEMENT_TYPE:?}")]
    WrongType(String),
    #[error("statement has no subject")]
    NoSubject,
}

impl Subject {
    /// The git commit subject for `sha`.
    pub fn git(sha: &GitSha) -> Self {
        Subject {
            name: GIT_SUBJECT_NAME.to_owned(),
            digest: BTreeMap::from([("gitCommit".to_owned(), sha.to_string())]),
        }
    }

    /// An image subject: `digest` is `sha256:<hex>` or bare hex.
    pub fn image(name: &str, digest: &str) -> Self {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        Subject {
            name: name.to_owned(),
            digest: BTreeMap::from([("sha256".to_owned(), hex.to_owned())]),
        }
    }
}

impl Statement {
    /// A statement of `kind` about `subjects` (the git subject must be among them).
    pub fn new(kind: ArtifactKind, subjects: Vec<Subject>, predicate: serde_json::Value) -> Self {
        Statement {
            statement_type: STATEMENT_TYPE.to_owned(),
            subject: subjects,
            predicate_type: kind.predicate_type().to_owned(),
            predicate,
        }
    }

    /// A statement with an explicit predicate type, for records that are not a
    /// stage's artifact (e.g. [`PRUNE_PREDICATE_TYPE`]).
    pub fn with_type(
        predicate_type: &str,
        subjects: Vec<Subject>,
        predicate: serde_json::Value,
    ) -> Self {
        Statement {
            statement_type: STATEMENT_TYPE.to_owned(),
            subject: subjects,
            predicate_type: predicate_type.to_owned(),
            predicate,
        }
    }

    /// Parses and shape-checks a payload.
    pub fn parse(payload: &[u8]) -> Result<Self, StatementError> {
        let st: Statement = crate::json::from_slice(payload)
            .map_err(|e| StatementError::Malformed(e.to_string()))?;
        if st.statement_type != STATEMENT_TYPE {
            return Err(StatementError::WrongType(st.statement_type));
        }
        if st.subject.is_empty() {
            return Err(StatementError::NoSubject);
        }
        Ok(st)
    }

    /// The canonical bytes `ledger` signs (compact JSON, fields in declaration order).
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serializing a Value-bearing struct to a Vec cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Whether a subject names git commit `sha`.
    pub fn is_about(&self, sha: &GitSha) -> bool {
        self.subject
            .iter()
            .any(|s| s.digest.get("gitCommit").map(String::as_str) == Some(sha.as_str()))
    }

    /// The git commits named by subjects.
    pub fn git_commits(&self) -> impl Iterator<Item = &str> {
        self.subject
            .iter()
            .filter_map(|s| s.digest.get("gitCommit").map(String::as_str))
    }

    /// The artifact kind named by `predicateType`, if `ledger` knows it.
    pub fn kind(&self) -> Option<ArtifactKind> {
        ArtifactKind::from_predicate_type(&self.predicate_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sha() -> GitSha {
        GitSha::parse("0123456789abcdef0123456789abcdef01234567").unwrap()
    }

    #[test]
    fn round_trip() {
        let st = Statement::new(
            ArtifactKind::Commit,
            vec![Subject::git(&sha())],
            json!({"a": 1}),
        );
        let back = Statement::parse(&st.to_bytes()).unwrap();
        assert_eq!(back, st);
        assert!(back.is_about(&sha()));
        assert_eq!(back.kind(), Some(ArtifactKind::Commit));
    }

    #[test]
    fn strict_parsing() {
        let ok = r#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"x","digest":{"gitCommit":"a"}}],"predicateType":"p","predicate":{}}"#;
        assert!(Statement::parse(ok.as_bytes()).is_ok());
        for bad in [
            ok.replace("Statement/v1", "Statement/v0.1"),
            ok.replace(r#"[{"name":"x","digest":{"gitCommit":"a"}}]"#, "[]"),
            ok.replace(r#""predicate":{}"#, r#""predicate":{},"extra":1"#),
            ok.replace(r#""predicate":{}"#, r#""predicate":{},"predicate":{}"#),
            format!("{ok}{{}}"),
            ok[..ok.len() - 1].to_string(),
        ] {
            assert!(Statement::parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
