//! Attestations attached to an image in its registry: DSSE envelopes (in-toto
//! statements) written beside the image they describe, and read back.
//!
//! **Where they go.** Two places, both in the image's own repository, because
//! readers differ in where they look:
//!
//! - cosign's tag scheme: the tag `sha256-<hex>.att`, named after the image
//!   manifest's digest, holds an OCI image manifest with one layer per envelope
//!   (media type `application/vnd.dsse.envelope.v1+json`, annotated with
//!   `dev.cosignproject.cosign/signature` and the statement's `predicateType`) over
//!   cosign's small config blob. Any registry stores it, and `cosign download
//!   attestation IMAGE` (or `cosign verify-attestation`) finds it there.
//! - OCI 1.1 referrers: the same manifest carries a `subject`, the image manifest's
//!   descriptor, so a registry that implements the referrers API indexes it under the
//!   image (it says so with an `OCI-Subject` header when the manifest is put, which
//!   [`Attached::referrer_indexed`] reports). A registry without the API stores the
//!   field and ignores it; the tag is then the only way in.
//!
//! **What a reader sees.** [`Registry::attestations`] asks the referrers API (a 404
//! means the registry has none) and the tag, takes every DSSE layer from both, and
//! drops repeats by blob digest: the same envelope through both doors is one
//! envelope. Every byte read is held to what names it: a manifest fetched by digest
//! must hash to it, every envelope to its layer's digest and size, and nothing over
//! 4 MiB is read. A registry (or anything between) that serves other bytes is an
//! error naming the blob. Layers of other media types (cosign's own signatures,
//! SBOMs) are not this reader's and are passed over.
//!
//! **Attaching again.** [`Registry::attach`] reads the tag's manifest first and keeps
//! its layers, in order, adding only envelopes whose blob digest is new; attaching
//! the same envelope twice adds nothing, and when nothing is new (and the manifest
//! already points at the image) nothing is written at all. Blobs the registry
//! already has are not uploaded again.
//!
//! **Limitation: two writers at once.** The tag is read, extended and put back with
//! no compare-and-swap (the distribution API has none): two processes attaching to
//! the same image at the same moment each write a manifest holding the old layers
//! plus their own, and the last one put wins; the other's envelopes stay in the
//! registry as blobs (and, on a registry with the referrers API, as a referrer of
//! the image) but no longer under the tag. Attach from one place per image (the one
//! pipeline run that built it), or attach again: it is idempotent.

mod oci;
mod read;
mod repo;

use super::{registry_error, DigestRef, Registry};
use crate::credentials;
use crate::DockerError;
use oci::Descriptor;
use repo::{Access, Repo};

/// One attestation to attach: a DSSE envelope's exact bytes and its statement's
/// predicate type.
#[derive(Debug, Clone, Copy)]
pub struct Attestation<'a> {
    pub envelope: &'a [u8],
    pub predicate_type: &'a str,
}

/// What [`Registry::attach`] left in the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    /// The tag in the image's repository: `sha256-<hex>.att`.
    pub tag: String,
    /// The digest of the manifest the tag now names.
    pub manifest_digest: String,
    /// Whether the registry indexes the manifest as a referrer of the image: it
    /// answered the put with `OCI-Subject`, or (when nothing was put) its referrers
    /// API lists the manifest.
    pub referrer_indexed: bool,
    /// How many envelopes were new this time (the others were attached already).
    pub added: usize,
}

/// One envelope found attached to an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachedEnvelope {
    /// The envelope's bytes, checked against its layer's digest.
    pub bytes: Vec<u8>,
    /// The layer's `predicateType` annotation.
    pub predicate_type: Option<String>,
    /// Where it was found first: `tag sha256-<hex>.att` or `referrer sha256:<hex>`.
    pub found_in: String,
}

impl Registry {
    /// Attaches `attestations` to `image` (a `host/name@sha256:…` of an image
    /// manifest the registry holds): cosign's `sha256-<hex>.att` tag, with a `subject`
    /// for OCI 1.1 referrers (module docs). Envelopes attached before are kept; the
    /// ones already there are not added twice.
    #[tracing::instrument(level = "debug", name = "registry.attach", skip_all, fields(reference = %image.reference(), envelopes = attestations.len()))]
    pub async fn attach(
        &self,
        image: &DigestRef,
        attestations: &[Attestation<'_>],
    ) -> Result<Attached, DockerError> {
        let tag = att_tag(image)?;
        let new = layers_of(image, attestations)?;
        let h = self.host(&image.host).await?;
        let repo = Repo::new(&h, &image.name, Access::Push);
        let subject = repo
            .describe(&image.digest)
            .await?
            .ok_or_else(|| missing(image))?;
        let existing = repo.manifest(&tag).await?;
        let kept = existing.as_ref().map_or(&[][..], |(_, m)| &m.layers[..]);
        let descriptors: Vec<Descriptor> = new.iter().map(|(d, _)| d.clone()).collect();
        let (layers, added) = oci::merge(kept, &descriptors);
        if let Some((bytes, m)) = &existing {
            if added == 0 && m.subject.as_ref() == Some(&subject) {
                tracing::debug!(%tag, "nothing new to attach");
                return unchanged(&repo, image, tag, bytes).await;
            }
        }
        if layers.is_empty() {
            return Err(registry_error(
                &image.host,
                format!("no envelope was given to attach to {}", image.reference()),
            ));
        }
        let (manifest_digest, referrer_indexed) = write(&repo, &tag, layers, subject, &new).await?;
        Ok(Attached {
            tag,
            manifest_digest,
            referrer_indexed,
            added,
        })
    }

    /// Resolves `host/name:tag` or `host/name@sha256:…` to the digest of the manifest
    /// the registry holds for it (asked with the OCI and Docker manifest types). A
    /// digest reference is checked to exist; a missing one is
    /// [`DockerError::Missing`].
    #[tracing::instrument(level = "debug", name = "registry.resolve", skip_all, fields(reference = reference))]
    pub async fn resolve(&self, reference: &str) -> Result<DigestRef, DockerError> {
        let (host, name, tag_or_digest) =
            split_reference(reference).ok_or_else(|| DockerError::Reference {
                reference: reference.to_owned(),
                message:
                    "it is not host[:port]/name:tag or host[:port]/name@sha256:<64 hex digits>"
                        .into(),
            })?;
        let h = self.host(host).await?;
        let repo = Repo::new(&h, name, Access::Pull);
        let found = repo
            .describe(tag_or_digest)
            .await?
            .ok_or_else(|| DockerError::Missing {
                reference: reference.to_owned(),
                message: format!("registry {host} has no manifest for it"),
            })?;
        Ok(DigestRef {
            host: host.to_owned(),
            name: name.to_owned(),
            digest: found.digest,
        })
    }
}

/// Uploads the envelopes `new` and the config of `layers` (each only when the
/// registry lacks it), then puts the manifest under `tag`: its digest, and whether
/// the registry answered `OCI-Subject`.
async fn write(
    repo: &Repo<'_>,
    tag: &str,
    layers: Vec<Descriptor>,
    subject: Descriptor,
    new: &[(Descriptor, &[u8])],
) -> Result<(String, bool), DockerError> {
    for (d, bytes) in new {
        repo.upload(&d.digest, bytes).await?;
    }
    let config = oci::config_blob(&layers);
    let config_descriptor = oci::config_descriptor(&config);
    repo.upload(&config_descriptor.digest, &config).await?;
    let manifest = oci::attachment(config_descriptor, layers, subject);
    let bytes =
        serde_json::to_vec(&manifest).map_err(|e| DockerError::HttpClient(e.to_string()))?;
    repo.put_manifest(tag, bytes).await
}

/// Each envelope as its layer, with its bytes; one over the size limit is refused.
fn layers_of<'a>(
    image: &DigestRef,
    attestations: &[Attestation<'a>],
) -> Result<Vec<(Descriptor, &'a [u8])>, DockerError> {
    attestations
        .iter()
        .map(|a| {
            if a.envelope.len() > oci::LIMIT {
                return Err(registry_error(
                    &image.host,
                    format!(
                        "an envelope of {} bytes ({}) is not attached to {}: at most {} bytes are",
                        a.envelope.len(),
                        a.predicate_type,
                        image.reference(),
                        oci::LIMIT
                    ),
                ));
            }
            Ok((
                oci::envelope_layer(a.envelope, a.predicate_type),
                a.envelope,
            ))
        })
        .collect()
}

/// What is attached already, when nothing is new: the manifest `bytes` the tag
/// names, and whether the referrers API lists it.
async fn unchanged(
    repo: &Repo<'_>,
    image: &DigestRef,
    tag: String,
    bytes: &[u8],
) -> Result<Attached, DockerError> {
    let manifest_digest = oci::digest_of(bytes);
    let referrer_indexed = repo
        .referrers(&image.digest)
        .await?
        .is_some_and(|r| r.iter().any(|d| d.digest == manifest_digest));
    Ok(Attached {
        tag,
        manifest_digest,
        referrer_indexed,
        added: 0,
    })
}

/// The `.att` tag of `image`, or an error when its digest is not a SHA-256 one.
fn att_tag(image: &DigestRef) -> Result<String, DockerError> {
    oci::att_tag(&image.digest).ok_or_else(|| DockerError::Reference {
        reference: image.reference(),
        message: "its digest is not sha256: and 64 lowercase hex digits".into(),
    })
}

fn missing(image: &DigestRef) -> DockerError {
    DockerError::Missing {
        reference: image.reference(),
        message: format!(
            "registry {} has no manifest {} in {}; attach to the digest the push reported",
            image.host, image.digest, image.name
        ),
    }
}

/// `host[:port]/name:tag` or `host[:port]/name@sha256:<hex>` → (host, name, tag or
/// digest). The name is lowercase letters, digits and `._-/` (the distribution
/// spec's characters); the tag is at most 128 of `[A-Za-z0-9_.-]`, not starting
/// with `.` or `-`.
fn split_reference(reference: &str) -> Option<(&str, &str, &str)> {
    let (host, rest) = reference.split_once('/')?;
    if !credentials::names_a_registry(host) {
        return None;
    }
    let (name, tag_or_digest) = match rest.split_once('@') {
        Some((name, digest)) => (name, oci::sha256_hex(digest).map(|_| digest)?),
        None => {
            let (name, tag) = rest.rsplit_once(':')?;
            let tag_ok = tag.len() <= 128
                && !tag.starts_with(['.', '-'])
                && !tag.is_empty()
                && tag
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
            (name, tag_ok.then_some(tag)?)
        }
    };
    let name_ok = !name.is_empty()
        && !name.starts_with('/')
        && !name.ends_with('/')
        && !name.contains("//")
        && name
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-' | b'/'));
    name_ok.then_some((host, name, tag_or_digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_into_host_name_and_tag_or_digest() {
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            split_reference("127.0.0.1:5000/shop/api:v1.2"),
            Some(("127.0.0.1:5000", "shop/api", "v1.2"))
        );
        let by_digest = format!("ghcr.io/acme/api@{d}");
        assert_eq!(
            split_reference(&by_digest),
            Some(("ghcr.io", "acme/api", d.as_str()))
        );
        for bad in [
            "127.0.0.1:5000/shop/api".to_owned(),
            "shop/api:v1".to_owned(),
            "127.0.0.1:5000/Shop/api:v1".to_owned(),
            "127.0.0.1:5000/shop/api:-v1".to_owned(),
            "127.0.0.1:5000/shop/api:v1?x".to_owned(),
            "127.0.0.1:5000/shop/api@sha256:abc".to_owned(),
            format!("127.0.0.1:5000/shop/api:{}", "t".repeat(129)),
            "127.0.0.1:5000//api:v1".to_owned(),
            "127.0.0.1:5000/:v1".to_owned(),
        ] {
            assert_eq!(split_reference(&bad), None, "{bad}");
        }
    }

    #[test]
    fn the_att_tag_needs_a_sha256_digest() {
        let mut image = DigestRef::parse(&format!("h.io/a@sha256:{}", "0f".repeat(32))).unwrap();
        assert_eq!(
            att_tag(&image).unwrap(),
            format!("sha256-{}.att", "0f".repeat(32))
        );
        image.digest = "sha256:ABC".into();
        let e = att_tag(&image).unwrap_err();
        assert!(matches!(e, DockerError::Reference { .. }), "{e}");
    }
}
