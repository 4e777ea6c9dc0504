//! `ledger verify --image`: the attestations attached to an image in its registry,
//! checked against the policy and its keys alone, as an admission check would run
//! it, with no access to the evidence store.
//!
//! The image passes only when its attachments prove a promotion: a SLSA VSA about
//! this digest, signed by keys the policy trusts for `decide`, whose latest
//! (`timeVerified`) verdict is PASSED under a policy the owners signed, and a SLSA
//! Provenance about the same digest, signed by keys trusted for `build`, for the
//! same commit, which that VSA names among its inputs by the SHA-256 of its exact
//! envelope. (Whether the owners signed the policy a VSA names is the store's to
//! prove, `ledger verify SHA`; here a VSA made under another policy than the one in
//! force is a note, so a rollback to an older promoted release is still admitted.)
//! It fails closed: an attached envelope that claims one of those two
//! predicate types and does not verify is tampering and fails the image, even when
//! a valid pair is attached beside it. Attestations of other types (an SBOM, another
//! tool's provenance) are not `ledger`'s to judge and are counted, not checked.
//! Fetching the envelopes is the caller's (`ledger-pipeline`): this crate holds no
//! HTTP client.

use crate::trust::SignedPolicy;
use ledger_core::dsse::Envelope;
use ledger_core::predicate::{from_value, ProvenancePredicate, VerificationResult, VsaPredicate};
use ledger_core::schema::{self, Document};
use ledger_core::{Attestation, Sha256Digest, Stage, Statement};
use serde::Serialize;
use time::OffsetDateTime;

/// One envelope found attached, and where (for messages).
#[derive(Debug, Clone)]
pub struct Attached {
    pub bytes: Vec<u8>,
    /// The predicate type the registry's annotation claims, if any.
    pub predicate_type: Option<String>,
    pub found_in: String,
}

/// What `verify --image` concluded about one image digest.
#[derive(Debug, Clone, Serialize)]
pub struct ImageReport {
    /// The image, `host/name@sha256:<hex>` (set by the caller that resolved it).
    pub image: String,
    /// `sha256:<hex>`.
    pub digest: String,
    pub ok: bool,
    /// The commit the passing VSA and provenance are about.
    pub commit: Option<String>,
    /// The verdict of the latest valid VSA, if any.
    pub verdict: Option<String>,
    /// Valid attestations, as `<type> <envelope sha256> (<where>)`.
    pub verified: Vec<String>,
    /// Attached envelopes of other predicate types, not judged.
    pub other: usize,
    pub problems: Vec<String>,
    /// What holds but is worth knowing (a VSA made under an earlier policy).
    pub notes: Vec<String>,
}

/// A valid VSA or provenance about the digest.
struct Valid<P> {
    predicate: P,
    envelope: Sha256Digest,
}

/// Checks everything attached to the image of `digest` (`sha256:<hex>`).
pub fn check_image(policy: &SignedPolicy, digest: &str, attached: &[Attached]) -> ImageReport {
    let mut report = ImageReport {
        image: String::new(),
        digest: digest.to_owned(),
        ok: false,
        commit: None,
        verdict: None,
        verified: Vec::new(),
        other: 0,
        problems: Vec::new(),
        notes: Vec::new(),
    };
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    let (mut vsas, mut provenances) = (Vec::new(), Vec::new());
    for a in attached {
        let (attestation, statement) = match identify(a) {
            Identified::Ours(attestation, statement) => (attestation, statement),
            Identified::Other => {
                report.other += 1;
                continue;
            }
            Identified::Broken(attestation, why) => {
                report.problems.push(format!(
                    "{attestation} {} ({}): {why}",
                    Sha256Digest::of(&a.bytes),
                    a.found_in
                ));
                continue;
            }
        };
        let what = format!(
            "{attestation} {} ({})",
            Sha256Digest::of(&a.bytes),
            a.found_in
        );
        match check_one(policy, attestation, &a.bytes, &statement, hex) {
            Err(problem) => report.problems.push(format!("{what}: {problem}")),
            Ok(()) => {
                let envelope = Sha256Digest::of(&a.bytes);
                let predicate = &statement.predicate;
                match attestation {
                    Attestation::Vsa => from_value::<VsaPredicate>(predicate).ok().map(|p| {
                        vsas.push(Valid {
                            predicate: p,
                            envelope,
                        })
                    }),
                    Attestation::Provenance => {
                        from_value::<ProvenancePredicate>(predicate).ok().map(|p| {
                            provenances.push(Valid {
                                predicate: p,
                                envelope,
                            })
                        })
                    }
                };
                report.verified.push(what);
            }
        }
    }
    conclude(&mut report, &vsas, &provenances);
    if let Some(latest) = latest(&vsas) {
        let made_under = latest.predicate.policy.digest.get("sha256");
        if made_under != Some(&policy.digest().to_hex()) {
            report.notes.push(format!(
                "the verification summary was made under policy {}, not the one in force; `ledger verify SHA` against the store checks that its owners signed it",
                made_under.map_or("?", |d| &d[..d.len().min(12)])
            ));
        }
    }
    report
}

/// What an attached envelope claims to be.
enum Identified {
    /// One of `ledger`'s two types (signature not checked yet).
    Ours(Attestation, Statement),
    /// Another tool's attestation: not judged.
    Other,
    /// Annotated as one of `ledger`'s types, but no envelope of it: tampering.
    Broken(Attestation, String),
}

/// Sorts an attached envelope by the predicate type its statement (or, when that
/// cannot be read, the registry's annotation) claims.
fn identify(a: &Attached) -> Identified {
    let ours = |t: &str| {
        Attestation::ALL
            .into_iter()
            .find(|x| x.predicate_type() == t)
    };
    let annotated = a.predicate_type.as_deref().and_then(ours);
    match Envelope::parse(&a.bytes) {
        Ok(parsed) => match ours(&parsed.statement.predicate_type) {
            Some(attestation) => Identified::Ours(attestation, parsed.statement),
            None => match annotated {
                Some(attestation) => Identified::Broken(
                    attestation,
                    "annotated as this type, but its statement is of another".to_owned(),
                ),
                None => Identified::Other,
            },
        },
        Err(e) => match annotated {
            Some(attestation) => Identified::Broken(attestation, e.to_string()),
            None => Identified::Other,
        },
    }
}

/// Signature, signers' trust and revocation, schema and subject of one envelope.
fn check_one(
    policy: &SignedPolicy,
    attestation: Attestation,
    bytes: &[u8],
    statement: &Statement,
    hex: &str,
) -> Result<(), String> {
    let stage: Stage = attestation.kind().stage();
    let verified = Envelope::verify(
        bytes,
        |id| policy.key_for(stage, id),
        &format!("for stage `{stage}`"),
    )
    .map_err(|e| e.to_string())?;
    schema::validate(Document::Attestation(attestation), &statement.predicate)
        .map_err(|e| e.to_string())?;
    let at = time_of(attestation, &statement.predicate).ok_or("no time to check keys at")?;
    let signers: Vec<_> = verified
        .signers()
        .iter()
        .filter(|id| policy.revoked_for(id, at).is_none())
        .collect();
    let need = policy.min_signatures(stage);
    if signers.len() < need {
        return Err(format!(
            "{} trusted signature(s) not revoked at {at}, the policy requires {need} for stage `{stage}`",
            signers.len()
        ));
    }
    if !statement
        .subject
        .iter()
        .any(|s| s.digest.get("sha256").map(String::as_str) == Some(hex))
    {
        return Err(format!(
            "it is not about this image (no subject has sha256 {hex})"
        ));
    }
    Ok(())
}

/// The time a statement was made: a build's end, a verification's time.
fn time_of(attestation: Attestation, predicate: &serde_json::Value) -> Option<OffsetDateTime> {
    match attestation {
        Attestation::Provenance => from_value::<ProvenancePredicate>(predicate)
            .ok()
            .map(|p| p.run_details.metadata.finished_on),
        Attestation::Vsa => from_value::<VsaPredicate>(predicate)
            .ok()
            .map(|p| p.time_verified),
    }
}

/// The latest VSA by `timeVerified`; of two at the same time a FAILED one, so the
/// verdict fails closed whatever order the registry lists them in.
fn latest(vsas: &[Valid<VsaPredicate>]) -> Option<&Valid<VsaPredicate>> {
    vsas.iter().max_by_key(|v| {
        (
            v.predicate.time_verified,
            v.predicate.verification_result == VerificationResult::Failed,
        )
    })
}

/// The verdict from the valid attestations: the latest VSA passed, under a policy
/// the owners signed, and names a provenance of the same commit attached here.
fn conclude(
    report: &mut ImageReport,
    vsas: &[Valid<VsaPredicate>],
    provenances: &[Valid<ProvenancePredicate>],
) {
    let Some(latest) = latest(vsas) else {
        report.problems.push(
            "no valid SLSA verification summary (VSA) from `ledger` is attached: this image was never promoted, or its VSA was removed".to_owned(),
        );
        return;
    };
    let vsa = &latest.predicate;
    report.verdict = Some(vsa.verification_result.as_str().to_owned());
    let commit = vsa
        .resource_uri
        .rsplit_once('@')
        .map(|(_, sha)| sha.to_owned());
    report.commit = commit.clone();
    if vsa.verification_result != VerificationResult::Passed {
        report.problems.push(format!(
            "the latest verification summary ({}, {}) says FAILED: the release was rejected",
            latest.envelope, vsa.time_verified
        ));
    }
    let inputs: Vec<&str> = vsa
        .input_attestations
        .iter()
        .filter_map(|i| i.digest.get("sha256").map(String::as_str))
        .collect();
    let matching = provenances.iter().any(|p| {
        p.predicate.commit() == commit.as_deref() && inputs.contains(&p.envelope.to_hex().as_str())
    });
    if !matching {
        report.problems.push(format!(
            "no valid SLSA provenance of commit {} that the verification summary names is attached: the provenance was removed or replaced",
            commit.as_deref().unwrap_or("?")
        ));
    }
    report.ok = report.problems.is_empty();
}

#[cfg(test)]
mod tests;
