//! The attestations attached to an image in its registry, fetched for
//! `ledger verify --image` (which checks them with `ledger_verify::image`, against
//! the policy alone: no store is read).

use crate::error::Error;
use ledger_docker::Registry;
use ledger_verify::image::{check_image, Attached, ImageReport};
use ledger_verify::SignedPolicy;

/// Resolves `reference` (`host/name:tag` or `host/name@sha256:…`) in its registry,
/// reads every envelope attached to the digest and checks them.
pub async fn verify_image(policy: &SignedPolicy, reference: &str) -> Result<ImageReport, Error> {
    let registry = Registry::new();
    let image = registry.resolve(reference).await?;
    let attached: Vec<Attached> = registry
        .attestations(&image)
        .await?
        .into_iter()
        .map(|a| Attached {
            bytes: a.bytes,
            predicate_type: a.predicate_type,
            found_in: a.found_in,
        })
        .collect();
    let mut report = check_image(policy, &image.digest, &attached);
    report.image = image.reference();
    Ok(report)
}
