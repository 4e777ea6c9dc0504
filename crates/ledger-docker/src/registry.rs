//! The two registry calls `ledger prune` needs, over the OCI distribution API:
//! whether a manifest digest is present, and deleting it.
//!
//! Pushing and pulling go through the Docker engine ([`crate::Engine`]); only deletion
//! has no engine API, so this small client speaks HTTP to the registry itself. It
//! handles anonymous registries (plain HTTP on loopback addresses, HTTPS elsewhere);
//! registries that need credentials are not supported yet.

use crate::DockerError;
use std::time::Duration;

/// A `host[:port]/name@sha256:…` reference split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestRef {
    pub host: String,
    pub name: String,
    pub digest: String,
}

impl DigestRef {
    /// Splits `reference`; `None` unless it names a registry host and a digest.
    pub fn parse(reference: &str) -> Option<DigestRef> {
        let (repo, digest) = reference.split_once('@')?;
        let (host, name) = repo.split_once('/')?;
        let is_host = host.contains('.') || host.contains(':') || host == "localhost";
        if !is_host || name.is_empty() || !digest.starts_with("sha256:") {
            return None;
        }
        Some(DigestRef {
            host: host.to_owned(),
            name: name.to_owned(),
            digest: digest.to_owned(),
        })
    }

    fn url(&self) -> String {
        format!(
            "{}/v2/{}/manifests/{}",
            base_url(&self.host),
            self.name,
            self.digest
        )
    }
}

/// `http://host` for loopback registries, `https://host` for any other.
fn base_url(host: &str) -> String {
    let hostname = host.rsplit_once(':').map_or(host, |(h, _)| h);
    let loopback = hostname == "localhost"
        || hostname.starts_with("127.")
        || hostname == "[::1]"
        || hostname == "::1";
    let scheme = if loopback { "http" } else { "https" };
    format!("{scheme}://{host}")
}

/// A registry client with short timeouts.
#[derive(Debug)]
pub struct Registry {
    http: reqwest::Client,
}

impl Registry {
    /// A client with a 20 s timeout that ignores proxy settings (registries are
    /// reached directly).
    pub fn new() -> Result<Registry, DockerError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .no_proxy()
            .build()
            .map_err(|e| DockerError::HttpClient(e.to_string()))?;
        Ok(Registry { http })
    }

    fn unreachable(r: &DigestRef, e: impl std::fmt::Display) -> DockerError {
        DockerError::Missing {
            reference: format!("{}/{}@{}", r.host, r.name, r.digest),
            message: format!("registry {} did not answer: {e}", r.host),
        }
    }

    /// Whether the registry at `host` answers the distribution API's base endpoint
    /// (`/v2/`); 200, or 401 (it wants credentials), count as answering.
    pub async fn ping(&self, host: &str) -> Result<(), String> {
        let url = format!("{}/v2/", base_url(host));
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("{url} did not answer: {e}"))?;
        match resp.status().as_u16() {
            200 | 401 => Ok(()),
            s => Err(format!("{url} answered {s}; is this an OCI registry?")),
        }
    }

    /// Whether the registry holds the manifest.
    pub async fn has(&self, r: &DigestRef) -> Result<bool, DockerError> {
        let resp = self
            .http
            .head(r.url())
            .header(
                "accept",
                "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json",
            )
            .send()
            .await
            .map_err(|e| Self::unreachable(r, e))?;
        Ok(resp.status().is_success())
    }

    /// Deletes the manifest; `Err` carries the registry's answer.
    pub async fn delete(&self, r: &DigestRef) -> Result<(), String> {
        let resp = self
            .http
            .delete(r.url())
            .send()
            .await
            .map_err(|e| format!("registry {} did not answer: {e}", r.host))?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(format!(
                "registry {} answered {} to DELETE (is deletion enabled in its configuration?)",
                r.host,
                resp.status()
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_references_split_into_host_name_and_digest() {
        let d = format!("sha256:{}", "a".repeat(64));
        let r = DigestRef::parse(&format!("127.0.0.1:5000/shop/api@{d}")).unwrap();
        assert_eq!(
            (r.host.as_str(), r.name.as_str()),
            ("127.0.0.1:5000", "shop/api")
        );
        assert_eq!(
            r.url(),
            format!("http://127.0.0.1:5000/v2/shop/api/manifests/{d}")
        );
        let remote = DigestRef::parse(&format!("ghcr.io/acme/api@{d}")).unwrap();
        assert!(remote.url().starts_with("https://ghcr.io/v2/acme/api/"));
        // Engine-local ids and references without a registry host are not registry refs.
        assert!(DigestRef::parse(&d).is_none());
        assert!(DigestRef::parse(&format!("shop/api@{d}")).is_none());
        assert!(DigestRef::parse("127.0.0.1:5000/shop/api:latest").is_none());
    }
}
