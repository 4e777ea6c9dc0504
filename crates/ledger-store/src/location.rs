//! Where the store is: a local folder (the default, `.artifacts/` at the repository
//! root) or a bucket of the team's own object store (`s3://`, `gs://`, `az://`).
//!
//! Parsing is separate from opening so a bad `--store` value is reported before
//! anything touches the disk or network. Cloud clients are only built when a bucket
//! URL is opened, so local runs pay nothing for them; `gs://` and `az://` exist only
//! in builds with the `gcs` / `azure` features. Credentials, region and endpoint come
//! from each cloud's usual environment (`AWS_ACCESS_KEY_ID`, `AWS_ENDPOINT_URL`,
//! `AWS_ALLOW_HTTP`, `GOOGLE_SERVICE_ACCOUNT`, `AZURE_STORAGE_ACCOUNT_NAME` …), never
//! from the URL, so no secret ends up in a command line or in evidence.

use crate::{Store, StoreError};
use object_store::local::LocalFileSystem;
use object_store::ObjectStore;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A parsed store location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// A folder on this machine.
    Local(PathBuf),
    /// A bucket (or container) with an optional key prefix.
    Bucket(Bucket),
}

/// The object-store services `ledger` can keep evidence in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Amazon S3 or an S3-compatible server (`s3://`).
    S3,
    /// Google Cloud Storage (`gs://`).
    Gcs,
    /// Azure Blob Storage (`az://`).
    Azure,
}

impl Service {
    fn from_scheme(scheme: &str) -> Option<Service> {
        match scheme {
            "s3" | "s3a" => Some(Service::S3),
            "gs" => Some(Service::Gcs),
            "az" | "azure" => Some(Service::Azure),
            _ => None,
        }
    }

    /// The URL scheme.
    pub fn scheme(self) -> &'static str {
        match self {
            Service::S3 => "s3",
            Service::Gcs => "gs",
            Service::Azure => "az",
        }
    }
}

/// A bucket URL, parsed: `<scheme>://<bucket>[/<prefix>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    pub service: Service,
    pub name: String,
    /// Key prefix inside the bucket, without leading or trailing `/`; may be empty.
    pub prefix: String,
    /// Client settings applied over the environment's, as `object_store` config keys
    /// (`aws_endpoint`, `aws_access_key_id` …). Empty when parsed from a URL; tests and
    /// embedders set them to avoid touching the process environment.
    pub options: Vec<(String, String)>,
}

impl Bucket {
    /// Adds a client setting (an `object_store` config key such as `aws_endpoint`).
    pub fn with_option(mut self, key: impl Into<String>, value: impl Into<String>) -> Bucket {
        self.options.push((key.into(), value.into()));
        self
    }
}

impl fmt::Display for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.service.scheme(), self.name)?;
        if !self.prefix.is_empty() {
            write!(f, "/{}", self.prefix)?;
        }
        Ok(())
    }
}

/// `location` as it may be shown: any `user:password@` after the scheme, and any
/// query string or fragment, replaced by `…`. A mistyped store URL is echoed in its
/// error, and credentials pasted into it must not reach a CI log.
pub fn without_secrets(location: &str) -> String {
    let Some((scheme, rest)) = location.split_once("://") else {
        return location.to_owned();
    };
    // Query strings and fragments may carry keys: drop them.
    let (rest, cut) = match rest.find(['?', '#']) {
        Some(i) => (&rest[..i], "…"),
        None => (rest, ""),
    };
    // Everything up to the last `@` is `user:password`.
    let rest = match rest.rsplit_once('@') {
        Some((_, after)) => format!("…@{after}"),
        None => rest.to_owned(),
    };
    format!("{scheme}://{rest}{cut}")
}

#[cfg(test)]
mod secret_tests {
    use super::without_secrets;

    #[test]
    fn credentials_queries_and_fragments_are_never_shown() {
        let cases = [
            (
                "s3://AKIA:supersecret@bucket/prefix",
                "s3://…@bucket/prefix",
            ),
            (
                "s3://bucket/prefix?secret_access_key=supersecret",
                "s3://bucket/prefix…",
            ),
            (
                "s3://user@x:supersecret@bucket/p#supersecret",
                "s3://…@bucket/p…",
            ),
            ("s3://bucket/a/b", "s3://bucket/a/b"),
            ("/plain/path@x", "/plain/path@x"),
        ];
        for (given, shown) in cases {
            assert_eq!(without_secrets(given), shown, "{given}");
            assert!(!without_secrets(given).contains("supersecret"), "{given}");
        }
    }
}

impl StoreLocation {
    /// Parses `--store` / `LEDGER_STORE`: a path, a `file://` URL, or a bucket URL.
    pub fn parse(s: &str) -> Result<StoreLocation, StoreError> {
        let invalid = |why: &str| StoreError::InvalidLocation {
            location: without_secrets(s),
            why: why.to_owned(),
        };
        if s.trim().is_empty() {
            return Err(invalid("it is empty"));
        }
        if let Some(path) = s.strip_prefix("file://") {
            return Ok(StoreLocation::Local(PathBuf::from(path)));
        }
        let Some((scheme, rest)) = s.split_once("://") else {
            return Ok(StoreLocation::Local(PathBuf::from(s)));
        };
        let Some(service) = Service::from_scheme(scheme) else {
            // Shown only if it looks like a scheme: text before `://` may be a
            // mistyped `user:password@…`.
            let looks_like_one = scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
            return Err(StoreError::Unsupported {
                scheme: if looks_like_one { scheme } else { "…" }.to_owned(),
            });
        };
        let (name, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if name.is_empty() {
            return Err(invalid(
                "the bucket name is missing (expected s3://BUCKET/PREFIX)",
            ));
        }
        if name.contains(['@', ':', '?', '#']) {
            return Err(invalid(
                "a bucket URL names the bucket only; give credentials and endpoint in the environment (AWS_ACCESS_KEY_ID, AWS_ENDPOINT_URL …)",
            ));
        }
        if prefix.contains(['?', '#']) {
            return Err(invalid(
                "a bucket URL names the bucket and a key prefix only, with no query or fragment; give client settings in the environment (AWS_ACCESS_KEY_ID, AWS_ENDPOINT_URL …)",
            ));
        }
        let prefix = prefix.trim_end_matches('/');
        if !prefix.is_empty() {
            object_store::path::Path::parse(prefix)
                .map_err(|e| invalid(&format!("the key prefix {prefix:?} is not valid: {e}")))?;
        }
        Ok(StoreLocation::Bucket(Bucket {
            service,
            name: name.to_owned(),
            prefix: prefix.to_owned(),
            options: Vec::new(),
        }))
    }

    /// The default: `.artifacts` in `root`.
    pub fn default_for(root: &Path) -> StoreLocation {
        StoreLocation::Local(root.join(".artifacts"))
    }

    pub(crate) fn open(self) -> Result<Store, StoreError> {
        match self {
            StoreLocation::Local(dir) => open_local(dir),
            StoreLocation::Bucket(bucket) => {
                let (inner, shown) = cloud::build(&bucket)?;
                let inner: Arc<dyn ObjectStore> = if bucket.prefix.is_empty() {
                    inner
                } else {
                    Arc::new(object_store::prefix::PrefixStore::new(
                        inner,
                        bucket.prefix.as_str(),
                    ))
                };
                // `Store::open` then lists it once, so a missing bucket, a dead
                // endpoint or bad credentials stop the command before any work,
                // naming the endpoint.
                Ok(Store::from_object_store(inner, shown))
            }
        }
    }
}

fn open_local(dir: PathBuf) -> Result<Store, StoreError> {
    let shown = dir.display().to_string();
    std::fs::create_dir_all(&dir).map_err(|e| StoreError::InvalidLocation {
        location: shown.clone(),
        why: format!("cannot create the folder: {e}"),
    })?;
    let fs = LocalFileSystem::new_with_prefix(&dir)
        .map_err(|source| StoreError::Unreachable {
            location: shown.clone(),
            source,
        })?
        // Evidence must survive a crash right after a stage reports success.
        .with_fsync(true);
    Ok(Store::local(Arc::new(fs), shown, &dir))
}

/// Building the cloud clients; each behind its cargo feature.
mod cloud {
    use super::{Bucket, Service};
    use crate::StoreError;
    use object_store::ObjectStore;
    use std::sync::Arc;

    pub(super) type Built = (Arc<dyn ObjectStore>, String);

    /// Retries for transient failures (5xx, throttling, resets): a few, quickly, so a
    /// dead endpoint fails the command in seconds rather than minutes.
    #[cfg(any(feature = "s3", feature = "gcs", feature = "azure"))]
    fn retry() -> object_store::RetryConfig {
        object_store::RetryConfig {
            backoff: object_store::BackoffConfig::default(),
            max_retries: 3,
            retry_timeout: std::time::Duration::from_secs(30),
        }
    }

    #[cfg(any(feature = "s3", feature = "gcs", feature = "azure"))]
    fn config_error(bucket: &Bucket, e: object_store::Error) -> StoreError {
        StoreError::InvalidLocation {
            location: bucket.to_string(),
            why: format!("the client could not be configured: {e}"),
        }
    }

    #[cfg(any(feature = "s3", feature = "gcs", feature = "azure"))]
    fn bad_option(bucket: &Bucket, key: &str) -> StoreError {
        StoreError::InvalidLocation {
            location: bucket.to_string(),
            why: format!("unknown client setting `{key}`"),
        }
    }

    /// `bucket` shown with the endpoint it talks to, when one is set.
    #[cfg(any(feature = "s3", feature = "gcs", feature = "azure"))]
    fn shown(bucket: &Bucket, endpoint: Option<String>) -> String {
        match endpoint {
            Some(e) => format!("{bucket} (endpoint {e})"),
            None => bucket.to_string(),
        }
    }

    pub(super) fn build(bucket: &Bucket) -> Result<Built, StoreError> {
        // The HTTP client's TLS needs a process-wide cryptography provider: ring (see
        // the workspace's Cargo.toml). Installing it twice is harmless (the first wins).
        #[cfg(feature = "cloud")]
        let _ = rustls::crypto::ring::default_provider().install_default();
        match bucket.service {
            Service::S3 => s3(bucket),
            Service::Gcs => gcs(bucket),
            Service::Azure => azure(bucket),
        }
    }

    #[cfg(not(feature = "s3"))]
    fn s3(_: &Bucket) -> Result<Built, StoreError> {
        Err(StoreError::Unsupported {
            scheme: "s3".into(),
        })
    }

    #[cfg(feature = "s3")]
    fn s3(bucket: &Bucket) -> Result<Built, StoreError> {
        use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
        let client = object_store::ClientOptions::new()
            .with_connect_timeout(std::time::Duration::from_secs(5))
            .with_timeout(std::time::Duration::from_secs(60));
        // Defaults first, then the environment, then explicit options: later wins.
        let mut builder = AmazonS3Builder::new()
            .with_client_options(client)
            .with_retry(retry());
        let env = std::env::vars().filter(|(k, _)| k.starts_with("AWS_"));
        for (key, value) in env {
            if let Ok(k) = key.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
                builder = builder.with_config(k, value);
            }
        }
        for (key, value) in &bucket.options {
            let k = key
                .parse::<AmazonS3ConfigKey>()
                .map_err(|_unknown| bad_option(bucket, key))?;
            builder = builder.with_config(k, value);
        }
        builder = builder.with_bucket_name(&bucket.name);
        let endpoint = builder
            .get_config_value(&AmazonS3ConfigKey::S3Endpoint)
            .or_else(|| builder.get_config_value(&AmazonS3ConfigKey::Endpoint));
        // Without conditional writes every create-only put fails, but only once it is
        // made: the first a stage makes may come after its command ran. Refused here,
        // before anything is read or run.
        let conditional = builder.get_config_value(&AmazonS3ConfigKey::ConditionalPut);
        if conditional.is_some_and(|mode| mode.eq_ignore_ascii_case("disabled")) {
            return Err(StoreError::NoCreateOnly {
                location: shown(bucket, endpoint),
                source: object_store::Error::NotImplemented {
                    operation: "create-only put, aws_conditional_put being disabled".into(),
                    implementer: "AmazonS3".into(),
                },
            });
        }
        let store = builder.build().map_err(|e| config_error(bucket, e))?;
        Ok((Arc::new(store), shown(bucket, endpoint)))
    }

    #[cfg(not(feature = "gcs"))]
    fn gcs(_: &Bucket) -> Result<Built, StoreError> {
        Err(StoreError::Unsupported {
            scheme: "gs".into(),
        })
    }

    #[cfg(feature = "gcs")]
    fn gcs(bucket: &Bucket) -> Result<Built, StoreError> {
        use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
        let mut builder = GoogleCloudStorageBuilder::from_env().with_retry(retry());
        for (key, value) in &bucket.options {
            let k = key
                .parse::<GoogleConfigKey>()
                .map_err(|_unknown_key| bad_option(bucket, key))?;
            builder = builder.with_config(k, value);
        }
        let store = builder
            .with_bucket_name(&bucket.name)
            .build()
            .map_err(|e| config_error(bucket, e))?;
        Ok((Arc::new(store), shown(bucket, None)))
    }

    #[cfg(not(feature = "azure"))]
    fn azure(_: &Bucket) -> Result<Built, StoreError> {
        Err(StoreError::Unsupported {
            scheme: "az".into(),
        })
    }

    #[cfg(feature = "azure")]
    fn azure(bucket: &Bucket) -> Result<Built, StoreError> {
        use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
        let mut builder = MicrosoftAzureBuilder::from_env().with_retry(retry());
        for (key, value) in &bucket.options {
            let k = key
                .parse::<AzureConfigKey>()
                .map_err(|_unknown_key| bad_option(bucket, key))?;
            builder = builder.with_config(k, value);
        }
        let endpoint = builder.get_config_value(&AzureConfigKey::Endpoint);
        let store = builder
            .with_container_name(&bucket.name)
            .build()
            .map_err(|e| config_error(bucket, e))?;
        Ok((Arc::new(store), shown(bucket, endpoint)))
    }
}

#[cfg(test)]
mod tests;
