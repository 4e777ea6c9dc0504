//! Registry credentials, found where Docker users already keep them.
//!
//! `docker login` (and `docker/login-action` in CI) writes `config.json` in
//! `$DOCKER_CONFIG`, else `~/.docker/`: an `auths` entry per registry, or a credential
//! store (`credsStore`) or per-registry helper (`credHelpers`) that holds the secret.
//! [`lookup`] reads it through the `docker_credential` crate rather than by hand, so
//! every form Docker writes works, helpers included.
//!
//! A credential is a secret from the moment it is read: [`Secret`] zeroes its bytes
//! when dropped and shows `[redacted]` in `Debug`, so no log line, error or
//! `{:?}` of a value holding one can print it. The secret leaves this crate only as
//! the engine's `X-Registry-Auth` header ([`Credential::engine`]) and as the
//! `Authorization` header of the registry API's requests (`registry`), never in an
//! error's text.

use crate::DockerError;
use std::path::PathBuf;
use zeroize::Zeroize;

/// A secret string: redacted in `Debug`, zeroed when dropped, read only through
/// [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    /// The secret itself, for the one header that carries it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// The credential `docker login` stored for one registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A user name and password (or access token used as one, as GHCR and GitLab do).
    Basic { username: String, password: Secret },
    /// An identity token (an OAuth2 refresh token, as Azure's registries issue).
    IdentityToken(Secret),
}

impl Credential {
    /// The credential as the engine takes it for a push or pull of `host`'s images.
    pub fn engine(&self, host: &str) -> bollard::auth::DockerCredentials {
        let mut c = bollard::auth::DockerCredentials {
            serveraddress: Some(host.to_owned()),
            ..Default::default()
        };
        match self {
            Credential::Basic { username, password } => {
                c.username = Some(username.clone());
                c.password = Some(password.expose().to_owned());
            }
            Credential::IdentityToken(token) => c.identitytoken = Some(token.expose().to_owned()),
        }
        c
    }
}

/// The Docker configuration folder: `$DOCKER_CONFIG`, else `~/.docker`.
pub fn config_dir() -> Option<PathBuf> {
    std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
}

/// The key `docker login HOST` stores `host`'s credentials under: Docker Hub's
/// historic URL for Docker Hub, the host (with its port) for every other registry.
fn server_key(host: &str) -> &str {
    match host {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => "https://index.docker.io/v1/",
        other => other,
    }
}

/// Whether the first part of an image reference names a registry host (Docker's
/// rule: it holds a `.` or a `:`, or is `localhost`) rather than a path component.
pub fn names_a_registry(first: &str) -> bool {
    first.contains('.') || first.contains(':') || first == "localhost"
}

/// The registry host of an image reference (`127.0.0.1:5000/shop/api:tag` →
/// `127.0.0.1:5000`); Docker Hub's for a reference without one.
pub fn host_of(reference: &str) -> &str {
    match reference.split_once('/') {
        Some((first, _)) if names_a_registry(first) => first,
        _ => "docker.io",
    }
}

/// The credential stored for `host`, or `None` when there is none (no
/// `config.json`, or nothing in it for this registry): the registry is then used
/// anonymously. A configuration that exists but cannot be read, or a credential
/// helper that fails, is an error: silently going anonymous would hide it.
#[tracing::instrument(level = "debug", name = "credentials.lookup", skip_all, fields(host = host))]
pub fn lookup(host: &str) -> Result<Option<Credential>, DockerError> {
    match config_dir() {
        Some(dir) => lookup_in(&dir, host),
        None => Ok(None),
    }
}

/// [`lookup`] in the configuration folder `dir`.
pub fn lookup_in(dir: &std::path::Path, host: &str) -> Result<Option<Credential>, DockerError> {
    use docker_credential::{CredentialRetrievalError as E, DockerCredential};
    let path = dir.join("config.json");
    let failed = |message: String| DockerError::Credentials {
        host: host.to_owned(),
        message,
    };
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::debug!("no Docker configuration");
            return Ok(None);
        }
        Err(e) => return Err(failed(format!("cannot open {}: {e}", path.display()))),
    };
    let reader = std::io::BufReader::new(file);
    let found = match docker_credential::get_credential_from_reader(reader, server_key(host)) {
        Ok(DockerCredential::UsernamePassword(username, password)) => Credential::Basic {
            username,
            password: Secret::new(password),
        },
        Ok(DockerCredential::IdentityToken(token)) => Credential::IdentityToken(Secret::new(token)),
        Err(E::NoCredentialConfigured) => {
            tracing::debug!("none stored for this registry");
            return Ok(None);
        }
        // The helper's own output may hold anything; only its name is shown.
        Err(E::HelperFailure { helper, .. }) => {
            return Err(failed(format!("the credential helper {helper} failed")))
        }
        Err(e) => return Err(failed(format!("{e} ({})", path.display()))),
    };
    tracing::debug!(
        kind = match found {
            Credential::Basic { .. } => "user and password",
            Credential::IdentityToken(_) => "identity token",
        },
        "found"
    );
    Ok(Some(found))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show_in_debug() {
        let c = Credential::Basic {
            username: "ci".into(),
            password: Secret::new("hunter2-s3cret".into()),
        };
        let shown = format!(
            "{c:?} {:?}",
            Credential::IdentityToken(Secret::new("tok-123".into()))
        );
        assert!(
            !shown.contains("hunter2") && !shown.contains("tok-123"),
            "{shown}"
        );
        assert!(shown.contains("[redacted]"), "{shown}");
    }

    #[test]
    fn the_registry_host_of_a_reference_is_its_first_part_when_it_names_one() {
        assert_eq!(host_of("127.0.0.1:5000/shop/api:1"), "127.0.0.1:5000");
        assert_eq!(host_of("ghcr.io/acme/api@sha256:00"), "ghcr.io");
        assert_eq!(host_of("localhost/api"), "localhost");
        assert_eq!(host_of("acme/api:1"), "docker.io");
        assert_eq!(server_key("docker.io"), "https://index.docker.io/v1/");
        assert_eq!(server_key("ghcr.io"), "ghcr.io");
    }

    fn config(json: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), json).unwrap();
        dir
    }

    #[test]
    fn credentials_are_read_from_the_docker_configuration() {
        // base64("ci:pa:ss"): the password may hold colons.
        let dir = config(
            r#"{"auths":{"127.0.0.1:5000":{"auth":"Y2k6cGE6c3M="},"reg.example":{"identitytoken":"tok"}}}"#,
        );
        let basic = lookup_in(dir.path(), "127.0.0.1:5000").unwrap().unwrap();
        assert_eq!(
            basic,
            Credential::Basic {
                username: "ci".into(),
                password: Secret::new("pa:ss".into())
            }
        );
        let token = lookup_in(dir.path(), "reg.example").unwrap().unwrap();
        assert_eq!(token, Credential::IdentityToken(Secret::new("tok".into())));
        assert_eq!(lookup_in(dir.path(), "other.example").unwrap(), None);
        let none = tempfile::tempdir().unwrap();
        assert_eq!(lookup_in(none.path(), "127.0.0.1:5000").unwrap(), None);
    }

    #[test]
    fn an_unreadable_configuration_or_a_failing_helper_is_an_error_without_secrets() {
        let broken = config(r#"{"auths": "#);
        let e = lookup_in(broken.path(), "127.0.0.1:5000").unwrap_err();
        assert!(matches!(e, DockerError::Credentials { .. }), "{e}");
        assert!(e.to_string().contains("config.json"), "{e}");
        let helper = config(r#"{"credHelpers":{"127.0.0.1:5000":"ledger-test-absent"}}"#);
        let e = lookup_in(helper.path(), "127.0.0.1:5000").unwrap_err();
        assert!(e.to_string().contains("127.0.0.1:5000"), "{e}");
        assert!(
            e.hint().unwrap().contains("docker login 127.0.0.1:5000"),
            "{e}"
        );
    }

    #[test]
    fn the_engine_gets_the_credential_for_its_registry() {
        let c = Credential::Basic {
            username: "ci".into(),
            password: Secret::new("pw".into()),
        };
        let e = c.engine("127.0.0.1:5000");
        assert_eq!(e.serveraddress.as_deref(), Some("127.0.0.1:5000"));
        assert_eq!(
            (e.username.as_deref(), e.password.as_deref()),
            (Some("ci"), Some("pw"))
        );
    }
}
