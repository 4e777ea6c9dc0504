//! The OCI documents of an attachment, as typed values and pure functions: the
//! manifest and its descriptors, the referrers index, cosign's config blob, the
//! `sha256-<hex>.att` tag, digests, and the merge of new envelopes into the layers a
//! tag already holds. No I/O here, so every rule is unit-tested below.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;

/// The manifest this client writes (and reads): an OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// A Docker image manifest: what an engine pushes, so what an image's subject
/// descriptor usually is; also read back as an attachment's manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// The referrers API's answer.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// The config blob's media type, as cosign writes it.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// One DSSE envelope as a layer.
pub const DSSE_ENVELOPE: &str = "application/vnd.dsse.envelope.v1+json";
/// The layer annotation cosign requires on every signature or attestation layer.
pub const COSIGN_SIGNATURE: &str = "dev.cosignproject.cosign/signature";
/// The layer annotation naming the statement's predicate type.
pub const PREDICATE_TYPE: &str = "predicateType";

/// The most bytes an envelope, a manifest or a referrers page may have, written or
/// read.
pub const LIMIT: usize = 4 << 20;

/// An OCI content descriptor. Fields this client does not know (`urls`, `data`) are
/// not kept when it rewrites a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An image manifest (OCI or Docker schema 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An image index: here, one page of the referrers API's answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

/// `sha256:<hex>` of `bytes`.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The hex of a `sha256:` digest; `None` unless it is 64 lowercase hex digits.
pub fn sha256_hex(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))).then_some(hex)
}

/// cosign's attestation tag for the image manifest `digest`: `sha256-<hex>.att`.
pub fn att_tag(digest: &str) -> Option<String> {
    sha256_hex(digest).map(|hex| format!("sha256-{hex}.att"))
}

/// The layer of one envelope, annotated the way cosign writes and reads it.
pub fn envelope_layer(envelope: &[u8], predicate_type: &str) -> Descriptor {
    Descriptor {
        media_type: DSSE_ENVELOPE.into(),
        digest: digest_of(envelope),
        size: envelope.len() as u64,
        artifact_type: None,
        annotations: BTreeMap::from([
            (COSIGN_SIGNATURE.to_owned(), String::new()),
            (PREDICATE_TYPE.to_owned(), predicate_type.to_owned()),
        ]),
    }
}

/// The layers of an updated attachment: every layer `existing` holds, in its order,
/// then each of `new` whose blob digest is not among them yet; and how many were
/// added.
pub fn merge(existing: &[Descriptor], new: &[Descriptor]) -> (Vec<Descriptor>, usize) {
    let mut layers = existing.to_vec();
    let mut added = 0;
    for layer in new {
        if !layers.iter().any(|l| l.digest == layer.digest) {
            layers.push(layer.clone());
            added += 1;
        }
    }
    (layers, added)
}

/// The config blob cosign writes, for `layers`: empty platform fields, the zero
/// time, one history entry and one `diff_ids` entry per layer (the layers are
/// uncompressed, so each diff id is the layer's digest). Deterministic: the same
/// layers always give the same bytes.
pub fn config_blob(layers: &[Descriptor]) -> Vec<u8> {
    #[derive(Serialize)]
    struct History {
        created: &'static str,
    }
    #[derive(Serialize)]
    struct RootFs<'a> {
        r#type: &'static str,
        diff_ids: Vec<&'a str>,
    }
    #[derive(Serialize)]
    struct Config<'a> {
        architecture: &'static str,
        config: BTreeMap<String, String>,
        created: &'static str,
        history: Vec<History>,
        os: &'static str,
        rootfs: RootFs<'a>,
    }
    const ZERO_TIME: &str = "0001-01-01T00:00:00Z";
    let config = Config {
        architecture: "",
        config: BTreeMap::new(),
        created: ZERO_TIME,
        history: layers
            .iter()
            .map(|_| History { created: ZERO_TIME })
            .collect(),
        os: "",
        rootfs: RootFs {
            r#type: "layers",
            diff_ids: layers.iter().map(|l| l.digest.as_str()).collect(),
        },
    };
    serde_json::to_vec(&config).unwrap_or_default()
}

/// The descriptor of the config blob `bytes`.
pub fn config_descriptor(bytes: &[u8]) -> Descriptor {
    Descriptor {
        media_type: OCI_CONFIG.into(),
        digest: digest_of(bytes),
        size: bytes.len() as u64,
        artifact_type: None,
        annotations: BTreeMap::new(),
    }
}

/// The attachment manifest: `layers` over `config`, pointing at `subject`.
pub fn attachment(config: Descriptor, layers: Vec<Descriptor>, subject: Descriptor) -> Manifest {
    Manifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.into()),
        config,
        layers,
        subject: Some(subject),
        annotations: BTreeMap::new(),
    }
}

/// `bytes` as an image manifest: schema version 2, and an OCI or Docker image
/// manifest by its `mediaType` when it names one.
pub fn parse_manifest(bytes: &[u8]) -> Result<Manifest, String> {
    let m: Manifest =
        serde_json::from_slice(bytes).map_err(|e| format!("it is not an image manifest: {e}"))?;
    if m.schema_version != 2 {
        return Err(format!("it has schemaVersion {}, not 2", m.schema_version));
    }
    match m.media_type.as_deref() {
        None | Some(OCI_MANIFEST | DOCKER_MANIFEST) => Ok(m),
        Some(other) => Err(format!("it is a {other}, not an image manifest")),
    }
}

/// `bytes` as one page of the referrers API's answer.
pub fn parse_index(bytes: &[u8]) -> Result<Index, String> {
    let i: Index =
        serde_json::from_slice(bytes).map_err(|e| format!("it is not an image index: {e}"))?;
    if i.schema_version != 2 {
        return Err(format!("it has schemaVersion {}, not 2", i.schema_version));
    }
    match i.media_type.as_deref() {
        None | Some(OCI_INDEX) => Ok(i),
        Some(other) => Err(format!("it is a {other}, not an image index")),
    }
}

/// The layers of `m` that are DSSE envelopes; other media types are not this
/// client's to read.
pub fn envelopes(m: &Manifest) -> impl Iterator<Item = &Descriptor> {
    m.layers.iter().filter(|l| l.media_type == DSSE_ENVELOPE)
}

/// Whether `bytes` are what `d` describes: its size and its digest. `Err` says how
/// they differ.
pub fn check_blob(d: &Descriptor, bytes: &[u8]) -> Result<(), String> {
    if bytes.len() as u64 != d.size {
        return Err(format!(
            "it is {} bytes, and its descriptor says {}",
            bytes.len(),
            d.size
        ));
    }
    let actual = digest_of(bytes);
    if actual != d.digest {
        return Err(format!("its bytes hash to {actual}"));
    }
    Ok(())
}

/// The `rel="next"` target of a `Link` header (the referrers API's pagination).
pub fn next_link(header: &str) -> Option<&str> {
    header.split(',').find_map(|link| {
        let (target, params) = link.split_once(';')?;
        let next = params
            .split(';')
            .any(|p| p.trim().replace(' ', "") == "rel=\"next\"" || p.trim() == "rel=next");
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        next.then_some(target)
    })
}

#[cfg(test)]
mod tests;
