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

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{pem::PemObject, CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

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

/// System roots plus `extra`, over ring, HTTP/1.1. The system's roots are read
/// when the first certificate is checked ([`LazyRoots`]); `extra` is checked now.
fn with_roots(
    extra: Vec<(PathBuf, CertificateDer<'static>)>,
) -> Result<rustls::ClientConfig, String> {
    let verifier = Arc::new(LazyRoots::with(extra)?);
    let mut config = rustls::ClientConfig::builder_with_provider(verifier.provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// rustls' own certificate check (`WebPkiServerVerifier`) over the system's roots
/// plus `extra`, with the system's roots read the first time a certificate is
/// checked instead of when the client is made: that is about 150 files and 4 ms,
/// which a command that makes a client and then speaks only plain HTTP (smoke
/// checks of `http://` URLs, a registry on loopback without TLS) never needs. Once
/// read, every check is the standard verifier's; nothing is accepted that it would
/// refuse.
#[derive(Debug)]
struct LazyRoots {
    extra: rustls::RootCertStore,
    provider: Arc<rustls::crypto::CryptoProvider>,
    /// The verifier, once made; `None` when there is no root at all (every
    /// certificate is then of an unknown issuer, as with an empty root store).
    loaded: OnceLock<Option<Arc<WebPkiServerVerifier>>>,
}

impl LazyRoots {
    /// Over `extra`, each checked now (a CA file's problem is a setup error).
    fn with(extra: Vec<(PathBuf, CertificateDer<'static>)>) -> Result<LazyRoots, String> {
        let mut roots = rustls::RootCertStore::empty();
        for (path, cert) in extra {
            roots
                .add(cert)
                .map_err(|e| format!("CA certificate {} is not usable: {e}", path.display()))?;
        }
        Ok(LazyRoots {
            extra: roots,
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            loaded: OnceLock::new(),
        })
    }

    fn verifier(&self) -> Result<&Arc<WebPkiServerVerifier>, rustls::Error> {
        self.loaded
            .get_or_init(|| {
                let mut roots = self.extra.clone();
                let system = rustls_native_certs::load_native_certs();
                let (added, _unparsable) = roots.add_parsable_certificates(system.certs);
                tracing::debug!(system_roots = added, "loaded");
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
                    .build()
                    .ok()
            })
            .as_ref()
            .ok_or(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            ))
    }
}

impl ServerCertVerifier for LazyRoots {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.verifier()?.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier()?.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier()?.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        // What the standard verifier reports: the provider's algorithms.
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
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

    /// Making a client reads no system root; the first certificate checked does,
    /// and is checked by the standard verifier (a certificate that does not parse
    /// is refused as one).
    #[test]
    fn the_system_roots_are_read_at_the_first_certificate_checked() {
        let lazy = LazyRoots::with(Vec::new()).unwrap();
        assert!(lazy.loaded.get().is_none());
        let garbage = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x00]);
        let name = ServerName::try_from("registry.example").unwrap();
        let refused = lazy
            .verify_server_cert(&garbage, &[], &name, &[], UnixTime::now())
            .unwrap_err();
        assert!(
            matches!(refused, rustls::Error::InvalidCertificate(_)),
            "{refused:?}"
        );
        assert!(lazy.loaded.get().is_some());
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
