//! The distribution API calls of attaching and reading attestations, on one
//! repository of one registry: describe a manifest, get one (by tag or digest,
//! within the size limit, held to its digest), list referrers, check, upload and read
//! blobs, put a manifest. Each request names what it was for in its errors, goes
//! through the registry's authentication (`request`), and never leaves the
//! registry's own origin.

use super::oci::{self, Descriptor, Manifest};
use crate::registry::request::Body;
use crate::registry::{limited_body, registry_error, send_body, Host, Purpose};
use crate::DockerError;
use reqwest::{Method, Response, StatusCode};

/// What the requests of an operation may do; the token scope they ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Pull,
    Push,
}

/// One repository of one registry.
#[derive(Debug)]
pub struct Repo<'a> {
    h: &'a Host,
    name: &'a str,
    scope: String,
}

/// How many pages of referrers are read, at most.
const REFERRER_PAGES: usize = 16;

impl<'a> Repo<'a> {
    pub fn new(h: &'a Host, name: &'a str, access: Access) -> Repo<'a> {
        let actions = match access {
            Access::Pull => "pull",
            Access::Push => "pull,push",
        };
        Repo {
            h,
            name,
            scope: format!("repository:{name}:{actions}"),
        }
    }

    /// `host/name` and `suffix` (`:tag`, `@digest`), for messages.
    fn shown(&self, suffix: &str) -> String {
        format!("{}/{}{suffix}", self.h.name, self.name)
    }

    fn error(&self, message: String) -> DockerError {
        registry_error(&self.h.name, message)
    }

    fn tampered(&self, message: String) -> DockerError {
        DockerError::Integrity {
            host: self.h.name.clone(),
            message,
        }
    }

    /// `reference` (a tag or digest) after `:` or `@`.
    fn at(reference: &str) -> String {
        if reference.starts_with("sha256:") {
            format!("@{reference}")
        } else {
            format!(":{reference}")
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        what: String,
        body: Option<Body>,
    ) -> Result<Response, DockerError> {
        let purpose = Purpose {
            what,
            scope: Some(self.scope.clone()),
            path,
        };
        send_body(self.h, method, &purpose, body).await
    }

    fn unexpected(&self, resp: &Response, method: &str, what: &str) -> DockerError {
        self.error(format!("it answered {} to {method} {what}", resp.status()))
    }

    /// The descriptor of the manifest `reference` names (a HEAD; a GET, hashed here,
    /// when the answer lacks its type, a SHA-256 digest or its length), or `None`
    /// when there is none. A manifest asked for by digest must be that digest.
    pub async fn describe(&self, reference: &str) -> Result<Option<Descriptor>, DockerError> {
        let path = format!("/v2/{}/manifests/{reference}", self.name);
        let shown = self.shown(&Self::at(reference));
        let resp = self
            .call(Method::HEAD, &path, format!("show {shown}"), None)
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => return Ok(None),
            s if !s.is_success() => return Err(self.unexpected(&resp, "HEAD", &shown)),
            _ => {}
        }
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let media_type = header("content-type")
            .map(|t| t.split(';').next().unwrap_or_default().trim().to_owned());
        let size = header("content-length").and_then(|l| l.parse::<u64>().ok());
        let digest = header("docker-content-digest").filter(|d| oci::sha256_hex(d).is_some());
        let found = match (media_type, digest, size) {
            (Some(media_type), Some(digest), Some(size)) if size > 0 => Descriptor {
                media_type,
                digest,
                size,
                artifact_type: None,
                annotations: Default::default(),
            },
            _ => match self.fetch(reference).await? {
                Some((bytes, media_type)) => Descriptor {
                    media_type,
                    digest: oci::digest_of(&bytes),
                    size: bytes.len() as u64,
                    artifact_type: None,
                    annotations: Default::default(),
                },
                None => return Ok(None),
            },
        };
        if reference.starts_with("sha256:") && found.digest != reference {
            return Err(self.tampered(format!(
                "asked for {shown}, it described manifest {}",
                found.digest
            )));
        }
        Ok(Some(found))
    }

    /// The bytes and content type of the manifest `reference` names, within the
    /// size limit, or `None` when there is none; by digest, they must hash to it.
    async fn fetch(&self, reference: &str) -> Result<Option<(Vec<u8>, String)>, DockerError> {
        let path = format!("/v2/{}/manifests/{reference}", self.name);
        let shown = self.shown(&Self::at(reference));
        let resp = self
            .call(Method::GET, &path, format!("read {shown}"), None)
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => return Ok(None),
            s if !s.is_success() => return Err(self.unexpected(&resp, "GET", &shown)),
            _ => {}
        }
        let media_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(|t| t.split(';').next().unwrap_or_default().trim().to_owned())
            .unwrap_or_default();
        let bytes = limited_body(resp, oci::LIMIT)
            .await
            .map_err(|m| self.error(format!("reading manifest {shown}: {m}")))?;
        if reference.starts_with("sha256:") && oci::digest_of(&bytes) != reference {
            return Err(self.tampered(format!(
                "manifest {shown} was served with other bytes: they hash to {}",
                oci::digest_of(&bytes)
            )));
        }
        Ok(Some((bytes, media_type)))
    }

    /// The image manifest `reference` names, parsed, with its bytes; `None` when
    /// there is none.
    pub async fn manifest(
        &self,
        reference: &str,
    ) -> Result<Option<(Vec<u8>, Manifest)>, DockerError> {
        let Some((bytes, _)) = self.fetch(reference).await? else {
            return Ok(None);
        };
        let m = oci::parse_manifest(&bytes).map_err(|e| {
            self.error(format!(
                "manifest {}: {e}",
                self.shown(&Self::at(reference))
            ))
        })?;
        Ok(Some((bytes, m)))
    }

    /// Every manifest the referrers API lists for `digest`, or `None` when the
    /// registry has no such API (a 404). Follows `Link` pages, up to a bound.
    pub async fn referrers(&self, digest: &str) -> Result<Option<Vec<Descriptor>>, DockerError> {
        let mut path = format!("/v2/{}/referrers/{digest}", self.name);
        let mut out = Vec::new();
        for page in 0..REFERRER_PAGES {
            let what = format!("list the referrers of {}", self.shown(&Self::at(digest)));
            let resp = self.call(Method::GET, &path, what.clone(), None).await?;
            match resp.status() {
                StatusCode::NOT_FOUND if page == 0 => return Ok(None),
                s if !s.is_success() => return Err(self.unexpected(&resp, "GET", &path)),
                _ => {}
            }
            let next = resp
                .headers()
                .get("link")
                .and_then(|v| v.to_str().ok())
                .and_then(oci::next_link)
                .map(|l| same_origin_path(&self.h.base, l, None));
            let bytes = limited_body(resp, oci::LIMIT)
                .await
                .map_err(|m| self.error(format!("to {what}: {m}")))?;
            let index = oci::parse_index(&bytes)
                .map_err(|e| self.error(format!("to {what}, it answered a page where {e}")))?;
            out.extend(index.manifests);
            match next {
                None => return Ok(Some(out)),
                Some(next) => path = next.map_err(|m| self.error(m))?,
            }
        }
        Err(self.error(format!(
            "it lists more than {REFERRER_PAGES} pages of referrers for {}",
            self.shown(&Self::at(digest))
        )))
    }

    /// The blob `d` describes, within the size limit, held to its size and digest.
    pub async fn blob(&self, d: &Descriptor) -> Result<Vec<u8>, DockerError> {
        let shown = self.shown(&format!("@{}", d.digest));
        if d.size > oci::LIMIT as u64 {
            return Err(self.error(format!(
                "blob {shown} is {} bytes; at most {} are read",
                d.size,
                oci::LIMIT
            )));
        }
        let path = format!("/v2/{}/blobs/{}", self.name, d.digest);
        let resp = self
            .call(Method::GET, &path, format!("read blob {shown}"), None)
            .await?;
        if !resp.status().is_success() {
            return Err(self.unexpected(&resp, "GET blob", &shown));
        }
        let bytes = limited_body(resp, oci::LIMIT)
            .await
            .map_err(|m| self.error(format!("reading blob {shown}: {m}")))?;
        oci::check_blob(d, &bytes).map_err(|m| {
            self.tampered(format!(
                "blob {shown} was served with other bytes than its digest names: {m}"
            ))
        })?;
        Ok(bytes)
    }

    /// Uploads `bytes` as the blob `digest` unless the registry has it: a POST
    /// starts the upload, one PUT to the location it answered sends it whole.
    pub async fn upload(&self, digest: &str, bytes: &[u8]) -> Result<(), DockerError> {
        let shown = self.shown(&format!("@{digest}"));
        let path = format!("/v2/{}/blobs/{digest}", self.name);
        let head = self
            .call(Method::HEAD, &path, format!("check blob {shown}"), None)
            .await?;
        match head.status() {
            s if s.is_success() => return Ok(()),
            StatusCode::NOT_FOUND => {}
            _ => return Err(self.unexpected(&head, "HEAD blob", &shown)),
        }
        let what = format!("push blob {shown}");
        let start = format!("/v2/{}/blobs/uploads/", self.name);
        let empty = Some(("application/octet-stream", bytes::Bytes::new()));
        let resp = self.call(Method::POST, &start, what.clone(), empty).await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(self.unexpected(&resp, "POST", &start));
        }
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| self.error(format!("it started no upload for {shown} (no Location)")))?;
        let target =
            same_origin_path(&self.h.base, location, Some(digest)).map_err(|m| self.error(m))?;
        let body = Some((
            "application/octet-stream",
            bytes::Bytes::copy_from_slice(bytes),
        ));
        let resp = self.call(Method::PUT, &target, what, body).await?;
        if resp.status() != StatusCode::CREATED {
            return Err(self.unexpected(&resp, "PUT blob", &shown));
        }
        Ok(())
    }

    /// Puts `bytes` (an OCI image manifest) under `tag`: the digest the registry
    /// stored it as, and whether it answered `OCI-Subject`.
    pub async fn put_manifest(
        &self,
        tag: &str,
        bytes: Vec<u8>,
    ) -> Result<(String, bool), DockerError> {
        let digest = oci::digest_of(&bytes);
        let shown = self.shown(&format!(":{tag}"));
        let path = format!("/v2/{}/manifests/{tag}", self.name);
        let body = Some((oci::OCI_MANIFEST, bytes::Bytes::from(bytes)));
        let resp = self
            .call(Method::PUT, &path, format!("push {shown}"), body)
            .await?;
        if resp.status() != StatusCode::CREATED {
            return Err(self.unexpected(&resp, "PUT", &shown));
        }
        let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok());
        if let Some(stored) = header("docker-content-digest").filter(|d| *d != digest) {
            return Err(self.error(format!(
                "it stored {shown} as {stored}, and the manifest sent is {digest}"
            )));
        }
        let indexed = header("oci-subject").is_some();
        tracing::debug!(%digest, indexed, "attachment manifest put");
        Ok((digest, indexed))
    }
}

/// The path and query to request for `location` (absolute or relative to `base`,
/// the registry's `scheme://host`), with `digest=` added to its query when given.
/// `Err` when it points at another origin: credentials are sent to the registry
/// only.
fn same_origin_path(base: &str, location: &str, digest: Option<&str>) -> Result<String, String> {
    let base_url = reqwest::Url::parse(base).map_err(|e| format!("{base}: {e}"))?;
    let mut url = base_url
        .join(location)
        .map_err(|e| format!("it answered a location that is not a URL ({location:?}: {e})"))?;
    if url.origin() != base_url.origin() {
        return Err(format!(
            "it answered a location on another server ({}); credentials are sent to the registry only",
            url.origin().ascii_serialization()
        ));
    }
    if let Some(d) = digest {
        url.query_pairs_mut().append_pair("digest", d);
    }
    Ok(match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_locations_relative_absolute_and_with_a_query() {
        let base = "http://127.0.0.1:5000";
        let d = "sha256:00";
        assert_eq!(
            same_origin_path(base, "/v2/a/blobs/uploads/u1", Some(d)).unwrap(),
            "/v2/a/blobs/uploads/u1?digest=sha256%3A00"
        );
        assert_eq!(
            same_origin_path(
                base,
                "http://127.0.0.1:5000/v2/a/blobs/uploads/u1?_state=x%3D",
                Some(d)
            )
            .unwrap(),
            "/v2/a/blobs/uploads/u1?_state=x%3D&digest=sha256%3A00"
        );
        assert_eq!(
            same_origin_path(base, "/v2/a/referrers/x?n=1&last=y", None).unwrap(),
            "/v2/a/referrers/x?n=1&last=y"
        );
        for elsewhere in [
            "https://127.0.0.1:5000/v2/a",
            "http://127.0.0.1:5001/v2/a",
            "http://evil.example/v2/a",
            "//evil.example/v2/a",
        ] {
            let e = same_origin_path(base, elsewhere, Some(d)).unwrap_err();
            assert!(e.contains("another server"), "{elsewhere}: {e}");
        }
    }
}
