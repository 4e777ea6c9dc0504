//! The standard SLSA statements `ledger` writes beside two of its own artifacts.
//!
//! `ledger`'s predicates are its own (`https://ledger.dev/predicate/…`), which only
//! `ledger` and `docs/audit/verify_chain.py` understand. Admission controllers,
//! `cosign verify-attestation` and SLSA verifiers look for two standard predicates
//! instead, next to the image in its registry: SLSA Provenance v1 (how the images
//! were built) and the SLSA Verification Summary Attestation v1 (that a verifier
//! checked them against a policy, and what it concluded). So `build` also writes a
//! provenance statement and `decide` a VSA, each a DSSE envelope signed by the
//! stage's own key, stored beside the stage's artifact as its *companion*
//! (`build/<sha>/build.provenance.json`, `release/<sha>/decision.vsa.json`; attempt
//! *n* as `….attempt-n.provenance.json`), the way a commit's captured output sits
//! beside it as `.log`.
//!
//! The companion is written first and the artifact names it with a hash link
//! (`attestation`), so the chain's own signatures cover it and deleting or replacing
//! it is found like any broken link. The statements' subjects are the images (not
//! the commit: these statements are about artifacts), so the commit is bound in the
//! predicate instead (provenance: the first resolved dependency; VSA: the resource
//! URI).

use crate::stage::{ArtifactKind, ArtifactRef};
use std::fmt;

/// A standard statement written beside one of `ledger`'s artifacts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Attestation {
    /// SLSA Provenance v1, beside the `build` artifact.
    Provenance,
    /// SLSA Verification Summary Attestation v1, beside the `decision` artifact.
    Vsa,
}

/// `https://slsa.dev/provenance/v1`.
pub const PROVENANCE_PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// `https://slsa.dev/verification_summary/v1`.
pub const VSA_PREDICATE_TYPE: &str = "https://slsa.dev/verification_summary/v1";

impl Attestation {
    /// Both companions.
    pub const ALL: [Attestation; 2] = [Attestation::Provenance, Attestation::Vsa];

    /// The companion an artifact of `kind` has, if any.
    pub fn of(kind: ArtifactKind) -> Option<Attestation> {
        match kind {
            ArtifactKind::Build => Some(Attestation::Provenance),
            ArtifactKind::Decision => Some(Attestation::Vsa),
            _ => None,
        }
    }

    /// The artifact kind this companion sits beside.
    pub fn kind(self) -> ArtifactKind {
        match self {
            Attestation::Provenance => ArtifactKind::Build,
            Attestation::Vsa => ArtifactKind::Decision,
        }
    }

    /// The statement's `predicateType`.
    pub fn predicate_type(self) -> &'static str {
        match self {
            Attestation::Provenance => PROVENANCE_PREDICATE_TYPE,
            Attestation::Vsa => VSA_PREDICATE_TYPE,
        }
    }

    /// Short name: the key's extension before `.json`, and the schema's name
    /// (`slsa-<name>.v1.schema.json`).
    pub fn as_str(self) -> &'static str {
        match self {
            Attestation::Provenance => "provenance",
            Attestation::Vsa => "vsa",
        }
    }

    /// The companion's object key beside `r` (`None` when `r`'s kind has none).
    pub fn key_beside(r: &ArtifactRef) -> Option<String> {
        let a = Attestation::of(r.kind)?;
        Some(r.file(&format!("{}.json", a.as_str())))
    }

    /// The artifact whose companion `key` is, if it is one.
    pub fn parse_key(key: &str) -> Option<(ArtifactRef, Attestation)> {
        Attestation::ALL.into_iter().find_map(|a| {
            let base = key.strip_suffix(&format!(".{}.json", a.as_str()))?;
            let r = ArtifactRef::parse_key(&format!("{base}.json"))?;
            (r.kind == a.kind()).then_some((r, a))
        })
    }
}

impl fmt::Display for Attestation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GitSha;

    fn sha() -> GitSha {
        GitSha::parse("0123456789abcdef0123456789abcdef01234567").unwrap()
    }

    #[test]
    fn companion_keys_sit_beside_their_artifact_and_parse_back() {
        let s = sha();
        let build = ArtifactRef::new(ArtifactKind::Build, s, 1);
        assert_eq!(
            Attestation::key_beside(&build).unwrap(),
            format!("build/{s}/build.provenance.json")
        );
        let decision = ArtifactRef::new(ArtifactKind::Decision, s, 3);
        assert_eq!(
            Attestation::key_beside(&decision).unwrap(),
            format!("release/{s}/decision.attempt-3.vsa.json")
        );
        for r in [build, decision] {
            let key = Attestation::key_beside(&r).unwrap();
            let (back, a) = Attestation::parse_key(&key).unwrap();
            assert_eq!((back, a.kind()), (r, r.kind));
        }
        assert_eq!(
            Attestation::key_beside(&ArtifactRef::new(ArtifactKind::Commit, s, 1)),
            None
        );
    }

    #[test]
    fn other_names_are_no_companions() {
        let s = sha();
        for bad in [
            format!("build/{s}/build.vsa.json"),
            format!("release/{s}/decision.provenance.json"),
            format!("commit/{s}/commit.provenance.json"),
            format!("build/{s}/build.provenance.attempt-2.json"),
            format!("build/{s}/build.attempt-1.provenance.json"),
            format!("build/{s}/build.provenance.log"),
            format!("build/{s}/build.json"),
        ] {
            assert_eq!(Attestation::parse_key(&bad), None, "{bad}");
        }
    }
}
