//! Reading back what is attached to an image: the referrers API's manifests, then
//! the `.att` tag's, every DSSE layer of them once (by blob digest), each blob held
//! to its digest (the module docs of `attach` say why both places).

use super::oci::{self, Descriptor, Manifest, DOCKER_MANIFEST, OCI_MANIFEST};
use super::repo::{Access, Repo};
use super::{att_tag, AttachedEnvelope};
use crate::registry::{registry_error, DigestRef, Registry};
use crate::DockerError;

/// How many referrer manifests are read, at most.
const REFERRERS: usize = 256;

impl Registry {
    /// Every envelope attached to `image`: through the OCI 1.1 referrers API (when
    /// the registry has it) and cosign's `sha256-<hex>.att` tag, each once (by blob
    /// digest), referrers first. Each envelope's bytes hash to its layer's digest.
    #[tracing::instrument(level = "debug", name = "registry.attestations", skip_all, fields(reference = %image.reference()))]
    pub async fn attestations(
        &self,
        image: &DigestRef,
    ) -> Result<Vec<AttachedEnvelope>, DockerError> {
        let tag = att_tag(image)?;
        let h = self.host(&image.host).await?;
        let repo = Repo::new(&h, &image.name, Access::Pull);
        let mut layers: Vec<(Descriptor, String)> = Vec::new();
        let referrers = repo.referrers(&image.digest).await?.unwrap_or_default();
        let manifests: Vec<&Descriptor> = referrers
            .iter()
            .filter(|d| d.media_type == OCI_MANIFEST || d.media_type == DOCKER_MANIFEST)
            .collect();
        if manifests.len() > REFERRERS {
            return Err(registry_error(
                &image.host,
                format!(
                    "it lists {} referrers of {}; at most {REFERRERS} are read",
                    manifests.len(),
                    image.reference()
                ),
            ));
        }
        for d in manifests {
            let found_in = format!("referrer {}", d.digest);
            let Some((_, m)) = repo.manifest(&d.digest).await? else {
                return Err(registry_error(
                    &image.host,
                    format!(
                        "it lists {found_in} of {}, and has no such manifest",
                        image.reference()
                    ),
                ));
            };
            collect(image, &m, &found_in, &mut layers)?;
        }
        if let Some((_, m)) = repo.manifest(&tag).await? {
            collect(image, &m, &format!("tag {tag}"), &mut layers)?;
        }
        tracing::debug!(
            referrers = referrers.len(),
            envelopes = layers.len(),
            "attachments listed"
        );
        let mut out = Vec::with_capacity(layers.len());
        for (d, found_in) in layers {
            out.push(AttachedEnvelope {
                bytes: repo.blob(&d).await?,
                predicate_type: d.annotations.get(oci::PREDICATE_TYPE).cloned(),
                found_in,
            });
        }
        Ok(out)
    }
}

/// Adds the DSSE layers of `m` (found at `found_in`) that `layers` lacks. A
/// manifest whose `subject` is another image is an error: the registry filed it
/// under the wrong image.
fn collect(
    image: &DigestRef,
    m: &Manifest,
    found_in: &str,
    layers: &mut Vec<(Descriptor, String)>,
) -> Result<(), DockerError> {
    if let Some(subject) = m.subject.as_ref().filter(|s| s.digest != image.digest) {
        return Err(registry_error(
            &image.host,
            format!(
                "{found_in} of {} names another image as its subject ({})",
                image.reference(),
                subject.digest
            ),
        ));
    }
    for d in oci::envelopes(m) {
        if !layers.iter().any(|(l, _)| l.digest == d.digest) {
            layers.push((d.clone(), found_in.to_owned()));
        }
    }
    Ok(())
}
