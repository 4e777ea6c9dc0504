//! The standard statements beside `build` and `decision` evidence
//! (`ledger_core::attestation`), checked as part of the artifact that links them.
//!
//! The artifact's `attestation` hash link is what makes a companion evidence: it
//! must be the companion's own key, the object must still hash to the link, and
//! the envelope must verify by the same stage's trusted keys as the artifact (a
//! downstream tool trusts the companion alone, so it must stand alone). Its content
//! must agree with the artifact: provenance names exactly the build's images and the
//! commit; a VSA says PASSED exactly when the decision promotes, for the policy that
//! gated it and for this commit. An artifact without the link (evidence written
//! before companions existed, a failed build, a decision without a manifest) has no
//! companion to check, and a companion without its artifact is a stray
//! (`read::classify`). Whether the log names a companion is checked with the SHA's
//! other objects (`logged`).

use crate::error::Error;
use crate::evidence::Evidence;
use crate::typed::AnyPredicate;
use ledger_core::dsse::Envelope;
use ledger_core::predicate::{
    from_value, provenance_subjects, Decision, Input, ProvenancePredicate, VerificationResult,
    VsaPredicate,
};
use ledger_core::schema::{self, Document};
use ledger_core::{ArtifactRef, Attestation, Statement};
use ledger_store::ObjectKey;

impl Evidence<'_> {
    /// The problems of the companion `typed` (the predicate of `r`) links, if any.
    pub(crate) async fn check_attestation(
        &mut self,
        r: &ArtifactRef,
        typed: &AnyPredicate,
        problems: &mut Vec<String>,
    ) -> Result<(), Error> {
        let link = match typed {
            AnyPredicate::Build(b) => b.attestation.as_ref(),
            AnyPredicate::Decision(d) => d.attestation.as_ref(),
            _ => None,
        };
        let (Some(link), Some(attestation), Some(expected)) =
            (link, Attestation::of(r.kind), Attestation::key_beside(r))
        else {
            return Ok(());
        };
        if link.key != expected {
            problems.push(format!(
                "attestation key is {:?}, expected {expected:?}",
                link.key
            ));
            return Ok(());
        }
        let mut found = Vec::new();
        self.check_companion(r, typed, attestation, link, &mut found)
            .await?;
        problems.extend(found.into_iter().map(|p| format!("{}: {p}", link.key)));
        Ok(())
    }

    async fn check_companion(
        &mut self,
        r: &ArtifactRef,
        typed: &AnyPredicate,
        attestation: Attestation,
        link: &Input,
        problems: &mut Vec<String>,
    ) -> Result<(), Error> {
        let key = ObjectKey::parse(&link.key).map_err(ledger_store::StoreError::from)?;
        let fetched = match self.fetch(&key).await? {
            None => {
                problems.push("missing from the store".to_owned());
                return Ok(());
            }
            Some(Err(why)) => {
                problems.push(why);
                return Ok(());
            }
            Some(Ok(f)) => f,
        };
        if fetched.digest != link.sha256 {
            problems.push(format!(
                "altered: its sha256 is {}, the signed record says {}",
                fetched.digest, link.sha256
            ));
            return Ok(());
        }
        let stage = r.kind.stage();
        let policy = self.policy();
        let verified = match Envelope::verify(
            &fetched.bytes,
            |id| policy.key_for(stage, id),
            &format!("for stage `{stage}`"),
        ) {
            Ok(v) => v,
            Err(e) => {
                problems.push(e.to_string());
                return Ok(());
            }
        };
        let signed_by = verified.signers().to_vec();
        self.trusted_signers(r, &signed_by, typed.header(), problems);
        let statement = verified.into_statement();
        problems.extend(content_problems(r, typed, attestation, &statement));
        Ok(())
    }
}

/// What is wrong with the companion's statement against its artifact.
fn content_problems(
    r: &ArtifactRef,
    typed: &AnyPredicate,
    attestation: Attestation,
    statement: &Statement,
) -> Vec<String> {
    if statement.predicate_type != attestation.predicate_type() {
        return vec![format!(
            "predicateType is {:?}, expected {:?}",
            statement.predicate_type,
            attestation.predicate_type()
        )];
    }
    if let Err(e) = schema::validate(Document::Attestation(attestation), &statement.predicate) {
        return vec![e.to_string()];
    }
    let sha = r.sha.as_str();
    let mut problems = Vec::new();
    match typed {
        AnyPredicate::Build(build) => {
            let Ok(p) = from_value::<ProvenancePredicate>(&statement.predicate) else {
                return vec!["the provenance does not read as SLSA Provenance v1".to_owned()];
            };
            if statement.subject != provenance_subjects(&build.images) {
                problems.push("its subjects are not the images the build recorded".to_owned());
            }
            if p.commit() != Some(sha) {
                problems.push(format!("its first resolved dependency is not commit {sha}"));
            }
        }
        AnyPredicate::Decision(decision) => {
            let Ok(p) = from_value::<VsaPredicate>(&statement.predicate) else {
                return vec!["the VSA does not read as a SLSA VSA v1".to_owned()];
            };
            let passed = p.verification_result == VerificationResult::Passed;
            if passed != (decision.decision == Decision::Promote) {
                problems.push(format!(
                    "it says {} but the decision is {}",
                    p.verification_result.as_str(),
                    decision.decision.as_str()
                ));
            }
            if p.policy.digest.get("sha256") != Some(&decision.header.policy_sha256.to_hex()) {
                problems.push(
                    "it names another policy than the one that gated the decision".to_owned(),
                );
            }
            if !p.resource_uri.ends_with(&format!("@{sha}")) {
                problems.push(format!("its resourceUri is not about commit {sha}"));
            }
        }
        _ => {}
    }
    problems
}
