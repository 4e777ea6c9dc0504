//! TLS for the registry API, the way Docker sets it up: the system's roots, plus the
//! registry's own CAs when its folder in Docker's certificates directory holds any
//! (`/etc/docker/certs.d/HOST[:PORT]/*.crt`, the file `docker` and `dockerd` read).
//!
//! [`with_ca_file`] gives the same setup (system roots, plus one CA file) to the
//! other HTTPS client `ledger` has, the smoke checks.
//!
//! The base folder can be moved with `LEDGER_REGISTRY_CERTS_DIR` (tests, and runners
//! where `/etc` is not writable). The crypto provider is named here (ring) rather than
//! left to a process default, and reqwest is handed this configuration whole, so the
//! roots a registry is checked against are exactly these.

use rustls::pki_types::{pem::PemObject, CertificateDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The variable that moves Docker's certificates directory for `ledger`.
pub const CERTS_DIR_VAR: &str = "LEDGER_REGISTRY_CERTS_DIR";

/// Docker's certificates directory: `$LEDGER_REGISTRY_CERTS_DIR`, else
/// `/etc/docker/certs.d`.
pub fn certs_base() -> PathBuf {
    std::env::var_os(CERTS_DIR_VAR)
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from("/etc/docker/certs.d"), PathBuf::from)
}

/// The TLS setup for one registry.
#[derive(Debug)]
pub struct HostTls {
    pub config: rustls::ClientConfig,
    /// How many of the registry's own CAs (from its certs.d folder) are trusted
    /// besides the system's roots; a registry with its own CA is always reached over
    /// TLS.
    pub own_cas: usize,
}

/// The TLS client configuration for `host` (`name[:port]`): system roots, plus every
/// `*.crt` in `base/host/`. A CA file that exists but cannot be read or parsed is an
/// error, since ignoring it would end in a less clear certificate failure later.
pub fn for_host(base: &Path, host: &str) -> Result<HostTls, String> {
    let own = own_cas(&base.join(host))?;
    let own_cas = own.len();
    let config = with_roots(own)?;
    Ok(HostTls { config, own_cas })
}

/// The TLS client configuration of anything else `ledger` checks over HTTPS (an
/// environment's smoke checks): the system's roots plus the certificates of the PEM
/// file `ca_file`, when one is named. A named file that cannot be read or holds no
/// certificate is an error naming it.
pub fn with_ca_file(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, String> {
    let extra = match ca_file {
        None => Vec::new(),
        Some(path) => pem_certs(path)?
            .into_iter()
            .map(|c| (path.to_path_buf(), c))
            .collect(),
    };
    with_roots(extra)
}

/// System roots plus `extra`, over ring, HTTP/1.1.
fn with_roots(
    extra: Vec<(PathBuf, CertificateDer<'static>)>,
) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    let system = rustls_native_certs::load_native_certs();
    let (added, _unparsable) = roots.add_parsable_certificates(system.certs);
    tracing::debug!(system_roots = added, "loaded");
    for (path, cert) in extra {
        roots
            .add(cert)
            .map_err(|e| format!("CA certificate {} is not usable: {e}", path.display()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Every certificate of the PEM file `path`; none is an error.
fn pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read CA certificate {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "CA file {} holds no PEM certificate",
            path.display()
        ));
    }
    Ok(certs)
}

/// The certificates of every `*.crt` file in `dir` (none when it does not exist),
/// sorted by file name.
fn own_cas(dir: &Path) -> Result<Vec<(PathBuf, CertificateDer<'static>)>, String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot read {}: {e}", dir.display())),
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "crt"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let certs = pem_certs(&path)?;
        out.extend(certs.into_iter().map(|c| (path.clone(), c)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registry_without_a_certs_folder_gets_the_system_roots_only() {
        let base = tempfile::tempdir().unwrap();
        let tls = for_host(base.path(), "127.0.0.1:5000").unwrap();
        assert_eq!(tls.own_cas, 0);
    }

    #[test]
    fn a_named_ca_file_must_hold_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("absent.pem");
        let e = with_ca_file(Some(&missing)).unwrap_err();
        assert!(e.contains("absent.pem"), "{e}");
        std::fs::write(dir.path().join("empty.pem"), "").unwrap();
        let e = with_ca_file(Some(&dir.path().join("empty.pem"))).unwrap_err();
        assert!(e.contains("no PEM certificate"), "{e}");
        assert!(with_ca_file(None).is_ok());
    }

    #[test]
    fn a_broken_ca_file_is_an_error_naming_it() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("127.0.0.1:5000");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ca.crt"), "not a certificate").unwrap();
        // Client certificates and keys (`*.cert`, `*.key`) are not CAs.
        std::fs::write(dir.join("client.key"), "ignored").unwrap();
        let e = for_host(base.path(), "127.0.0.1:5000").unwrap_err();
        assert!(
            e.contains("ca.crt") && e.contains("no PEM certificate"),
            "{e}"
        );
    }
}
