//! The registry calls `ledger` makes itself, over the OCI distribution API: whether
//! the registry answers (doctor), whether a manifest digest is present and deleting
//! it (prune), resolving a reference to its digest, and attaching attestations to
//! an image and reading them back ([`attach`]: cosign's `.att` tag and OCI 1.1
//! referrers).
//!
//! Pushing and pulling go through the Docker engine ([`crate::Engine`]); deletion has
//! no engine API, so this small client speaks HTTP to the registry itself. It uses
//! reqwest directly: `oci-client` (the OCI distribution crate) has no manifest
//! deletion and asks its token service for pull and push scopes only, so it cannot
//! do what prune needs.
//!
//! - **TLS** ([`tls`]): the system's roots plus the registry's own CAs from Docker's
//!   `certs.d` folder. A registry that is not on a loopback address is reached over
//!   HTTPS only. A loopback registry is reached over HTTPS when it has a CA in
//!   `certs.d` or answers the TLS handshake (its certificate is then verified like any
//!   other: a wrong CA is refused, never skipped), and over plain HTTP only when its
//!   answer shows it does not speak TLS at all, as an anonymous test registry on
//!   `127.0.0.1:5000` does.
//! - **Authentication** ([`auth`]): the credential `docker login` stored
//!   ([`crate::credentials`]) answers a 401's challenge, basic or bearer token. A
//!   registry that wants credentials and has none, or refuses them, is
//!   [`DockerError::Unauthorized`], which names the host and says to `docker login`.
//!   The header a registry accepted is reused for the next request of the same
//!   scope (`request`).

pub mod attach;
pub mod auth;
mod request;
pub mod tls;

use crate::credentials::{self, Credential};
use crate::DockerError;
use request::{send, send_body};
use reqwest::header::HeaderValue;
use reqwest::{Method, Response, StatusCode};
use std::collections::HashMap;
use std::sync::Arc;
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
        if !credentials::names_a_registry(host) || name.is_empty() || !digest.starts_with("sha256:")
        {
            return None;
        }
        Some(DigestRef {
            host: host.to_owned(),
            name: name.to_owned(),
            digest: digest.to_owned(),
        })
    }

    fn path(&self) -> String {
        format!("/v2/{}/manifests/{}", self.name, self.digest)
    }

    /// `host/name@sha256:…` again.
    pub fn reference(&self) -> String {
        format!("{}/{}@{}", self.host, self.name, self.digest)
    }
}

/// Whether `hostname` (no port) is a loopback address.
fn is_loopback(hostname: &str) -> bool {
    let bare = hostname.trim_start_matches('[').trim_end_matches(']');
    bare == "localhost"
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `host` without its port.
fn hostname(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_once(']').map_or(host, |(h, _)| &h[1..]);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

/// `e` and every error under it, joined: reqwest's own text names only the URL, the
/// cause (refused, certificate not trusted …) is further down.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = s.source();
    }
    out
}

/// Whether a failed request shows that the server answered, but not in TLS (rustls
/// read something that is not a TLS record, e.g. an HTTP response).
fn answered_without_tls(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        if let Some(rustls::Error::InvalidMessage(_)) = err.downcast_ref::<rustls::Error>() {
            return true;
        }
        // An `io::Error`'s `source` skips the error it wraps (rustls' sits inside
        // two of them here), so step into it instead.
        next = match err.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    false
}

/// A response body, refused past `limit` bytes.
async fn limited_body(mut response: Response, limit: usize) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("its answer broke off: {}", chain(&e)))?
    {
        if body.len() + chunk.len() > limit {
            return Err(format!("its answer is larger than {limit} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// One registry, as this process reaches it.
#[derive(Debug)]
struct Host {
    name: String,
    /// `https://host` or, for a loopback registry that does not speak TLS, `http://host`.
    base: String,
    http: reqwest::Client,
    credential: Option<Credential>,
    /// The `Authorization` value the registry last accepted, and the scope it was
    /// sent for (a sensitive header value: `Debug` does not show it).
    accepted: std::sync::Mutex<Option<(Option<String>, HeaderValue)>>,
}

/// A registry client with short timeouts; each registry's TLS setup, scheme and
/// credential are found once, on first use.
#[derive(Debug, Default)]
pub struct Registry {
    hosts: tokio::sync::Mutex<HashMap<String, Arc<Host>>>,
}

/// What a request is for: the token scope it needs, and how to name it in errors.
struct Purpose<'a> {
    what: String,
    scope: Option<String>,
    path: &'a str,
}

impl Registry {
    /// A client; nothing is read or contacted until a registry is first used.
    pub fn new() -> Registry {
        Registry::default()
    }

    async fn host(&self, host: &str) -> Result<Arc<Host>, DockerError> {
        let mut hosts = self.hosts.lock().await;
        if let Some(h) = hosts.get(host) {
            return Ok(h.clone());
        }
        let opened = Arc::new(open(host).await?);
        hosts.insert(host.to_owned(), opened.clone());
        Ok(opened)
    }

    /// Whether the registry at `host` answers the distribution API's base endpoint
    /// (`/v2/`) and accepts the stored credential, if it asks for one.
    #[tracing::instrument(level = "debug", name = "registry.ping", skip_all, fields(host = host))]
    pub async fn ping(&self, host: &str) -> Result<(), DockerError> {
        let h = self.host(host).await?;
        let purpose = Purpose {
            what: "answer the API (GET /v2/)".into(),
            scope: None,
            path: "/v2/",
        };
        let resp = send(&h, Method::GET, &purpose).await?;
        match resp.status() {
            s if s.is_success() => Ok(()),
            s => Err(registry_error(
                host,
                format!("{}/v2/ answered {s}; is this an OCI registry?", h.base),
            )),
        }
    }

    /// Whether the registry holds the manifest.
    #[tracing::instrument(level = "debug", name = "registry.has", skip_all, fields(reference = %r.reference()))]
    pub async fn has(&self, r: &DigestRef) -> Result<bool, DockerError> {
        let h = self.host(&r.host).await?;
        let path = r.path();
        let purpose = Purpose {
            what: format!("show {}", r.reference()),
            scope: Some(format!("repository:{}:pull", r.name)),
            path: &path,
        };
        let resp = send(&h, Method::HEAD, &purpose).await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            s => Err(registry_error(
                &r.host,
                format!("it answered {s} when asked for {}", r.reference()),
            )),
        }
    }

    /// Deletes the manifest.
    #[tracing::instrument(level = "debug", name = "registry.delete", skip_all, fields(reference = %r.reference()))]
    pub async fn delete(&self, r: &DigestRef) -> Result<(), DockerError> {
        let h = self.host(&r.host).await?;
        let path = r.path();
        let purpose = Purpose {
            what: format!("delete {}", r.reference()),
            scope: Some(format!("repository:{}:delete", r.name)),
            path: &path,
        };
        let resp = send(&h, Method::DELETE, &purpose).await?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(registry_error(
                &r.host,
                format!(
                    "it answered {} to DELETE {} (is deletion enabled in its configuration?)",
                    resp.status(),
                    r.reference()
                ),
            ))
        }
    }
}

fn registry_error(host: &str, message: String) -> DockerError {
    DockerError::Registry {
        host: host.to_owned(),
        message,
    }
}

/// Finds `host`'s credential and TLS setup and decides its scheme (module docs).
async fn open(host: &str) -> Result<Host, DockerError> {
    let credential = credentials::lookup(host)?;
    let base = tls::certs_base();
    let tls = tls::for_host(&base, host).map_err(|m| registry_error(host, m))?;
    let own_cas = tls.own_cas;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .no_proxy()
        .tls_backend_preconfigured(tls.config)
        .build()
        .map_err(|e| DockerError::HttpClient(chain(&e)))?;
    let https = format!("https://{host}");
    let mut scheme_base = https.clone();
    if is_loopback(hostname(host)) && own_cas == 0 {
        match http.get(format!("{https}/v2/")).send().await {
            Ok(_) => {}
            Err(e) if answered_without_tls(&e) => scheme_base = format!("http://{host}"),
            Err(e) => return Err(unreachable(host, &e)),
        }
    }
    tracing::debug!(
        base = %scheme_base,
        own_cas,
        credential = credential.is_some(),
        "registry opened"
    );
    Ok(Host {
        name: host.to_owned(),
        base: scheme_base,
        http,
        credential,
        accepted: std::sync::Mutex::new(None),
    })
}

fn unreachable(host: &str, e: &reqwest::Error) -> DockerError {
    registry_error(host, format!("did not answer: {}", chain(e)))
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
        assert_eq!(r.path(), format!("/v2/shop/api/manifests/{d}"));
        let remote = DigestRef::parse(&format!("ghcr.io/acme/api@{d}")).unwrap();
        assert_eq!(remote.host, "ghcr.io");
        // Engine-local ids and references without a registry host are not registry refs.
        assert!(DigestRef::parse(&d).is_none());
        assert!(DigestRef::parse(&format!("shop/api@{d}")).is_none());
        assert!(DigestRef::parse("127.0.0.1:5000/shop/api:latest").is_none());
    }

    #[test]
    fn only_loopback_addresses_count_as_loopback() {
        for h in [
            "127.0.0.1:5000",
            "127.8.9.1",
            "localhost:5000",
            "[::1]:5000",
        ] {
            assert!(is_loopback(hostname(h)), "{h}");
        }
        for h in [
            "ghcr.io",
            "10.0.0.1:5000",
            "127.0.0.1.example.com",
            "[::2]:5000",
        ] {
            assert!(!is_loopback(hostname(h)), "{h}");
        }
    }
}
