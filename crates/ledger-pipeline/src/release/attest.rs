//! `ledger attest SHA`: a release's SLSA statements attached to its images again,
//! from the store.
//!
//! `build` and `decide` attach their statements once, after recording; a registry
//! that was down then, a registry the images moved to, or an attestation someone
//! removed leaves images that admission checks refuse. The statements are evidence
//! already, so this verifies the latest build, manifest and decision (if any) of the
//! SHA (each through its companion link) and attaches exactly those companions'
//! bytes, the ones the verified artifacts name, to every image of the manifest in a
//! registry. It writes nothing to the store.

use crate::error::Error;
use crate::stages::slsa::{self, Attachment, Release};
use ledger_core::attestation::{PROVENANCE_PREDICATE_TYPE, VSA_PREDICATE_TYPE};
use ledger_core::{GitSha, Stage};
use ledger_store::Store;
use ledger_verify::evidence::{AnyPredicate, Evidence};
use ledger_verify::{gate, SignedPolicy};

/// What `attest` attached, and where.
#[derive(Debug, Clone)]
pub struct Attested {
    /// The companions attached: the provenance, then the VSA (once decided).
    pub statements: Vec<String>,
    pub attachment: Attachment,
}

/// Attaches the SLSA statements of `sha`'s latest verified build and (once there is
/// one) decision to the images of its latest verified manifest.
pub async fn attest(store: &Store, policy: &SignedPolicy, sha: &GitSha) -> Result<Attested, Error> {
    let mut evidence = Evidence::new(store, policy);
    let stages = [Stage::Build, Stage::Publish, Stage::Decide];
    let (verified, refused) = gate::gather(&mut evidence, sha, stages).await?;
    if let Some((key, problems)) = refused.into_values().next() {
        return Err(Error::EvidenceInvalid { key, problems });
    }
    let typed = |stage| verified.get(&stage).map(|a| a.typed());
    let (Some(AnyPredicate::Build(build)), Some(AnyPredicate::Manifest(manifest))) =
        (typed(Stage::Build), typed(Stage::Publish))
    else {
        return Err(nothing(sha, "it has no verified build and manifest"));
    };
    let decision = match typed(Stage::Decide) {
        Some(AnyPredicate::Decision(d)) => d.attestation.as_ref(),
        _ => None,
    };
    let source = build
        .images
        .first()
        .map_or("", |i| i.labels.source.as_str());
    let release = Release::new(sha, manifest, source, None);
    if release.pushed.is_empty() {
        return Err(nothing(sha, "none of its images is in a registry"));
    }
    let mut links = Vec::new();
    links.extend(
        build
            .attestation
            .iter()
            .map(|l| (l, PROVENANCE_PREDICATE_TYPE)),
    );
    links.extend(decision.map(|l| (l, VSA_PREDICATE_TYPE)));
    if links.is_empty() {
        return Err(nothing(
            sha,
            "its evidence names no SLSA statement (recorded before ledger wrote them)",
        ));
    }
    let mut envelopes = Vec::new();
    for (link, predicate_type) in &links {
        envelopes.push((slsa::read_linked(store, link).await?, *predicate_type));
    }
    let borrowed: Vec<(&[u8], &str)> = envelopes.iter().map(|(b, t)| (b.as_slice(), *t)).collect();
    Ok(Attested {
        statements: links.iter().map(|(l, _)| l.key.clone()).collect(),
        attachment: slsa::attach(&release.pushed, &borrowed).await,
    })
}

fn nothing(sha: &GitSha, why: &str) -> Error {
    Error::NothingToAttest {
        sha: *sha,
        why: why.to_owned(),
    }
}
