//! Where an engine is: the process default (`DOCKER_HOST`, else the local socket) or
//! an environment's own engine named in `ledger.toml`, and how to reach it.
//!
//! An engine on another machine is reached the way the Docker CLI reaches one: over
//! TCP with TLS and a client certificate (`ca.pem`, `cert.pem`, `key.pem` in one
//! folder, Docker's `DOCKER_CERT_PATH` layout), over SSH (the system `ssh` with the
//! runner's keys, agent and configuration, running `docker system dial-stdio` on the
//! host, as `DOCKER_HOST=ssh://…` does), or through a Unix socket. Plain TCP is
//! accepted only to a loopback address: an engine API without TLS is root on that
//! machine for anyone on the network, so `ledger` refuses to send it deploys.
//!
//! Every check here runs before a connection is attempted, so a mistake in
//! `ledger.toml` is a configuration error naming the file to fix, not a TLS error.

use crate::DockerError;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// An engine to connect to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EngineTarget {
    /// `unix:///path`, `tcp://host:port`; `None`: the process default.
    pub endpoint: Option<String>,
    /// The folder with `ca.pem`, `cert.pem` and `key.pem` for a `tcp://` engine.
    pub certs: Option<PathBuf>,
}

/// How [`EngineTarget`] resolved: what bollard is asked to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// `DOCKER_HOST` or the local socket, as the Docker CLI would pick.
    Default,
    Unix(String),
    /// Plain HTTP, loopback only.
    Http(String),
    /// `ssh://[user@]host[:port]`.
    Ssh(String),
    Tls {
        address: String,
        files: TlsFiles,
    },
}

/// A client's TLS material, in Docker's layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    fn in_folder(dir: &Path) -> TlsFiles {
        TlsFiles {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        }
    }
}

impl EngineTarget {
    /// The process default: `DOCKER_HOST`, else the local socket.
    pub fn default_engine() -> EngineTarget {
        EngineTarget::default()
    }

    /// The endpoint as shown in messages and recorded in evidence (never any
    /// `user:password@`).
    pub fn shown(&self) -> String {
        match &self.endpoint {
            Some(e) => super::without_userinfo(e),
            None => super::without_userinfo(
                &std::env::var("DOCKER_HOST")
                    .unwrap_or_else(|_| "unix:///var/run/docker.sock".into()),
            ),
        }
    }

    /// Checks the endpoint and its TLS files and says how to open it.
    pub(crate) fn route(&self) -> Result<Route, DockerError> {
        let Some(endpoint) = &self.endpoint else {
            return Ok(Route::Default);
        };
        let refuse = |message: String| DockerError::Endpoint {
            endpoint: super::without_userinfo(endpoint),
            message,
        };
        let (scheme, rest) = endpoint.split_once("://").ok_or_else(|| {
            refuse("not a URL; write unix:///path/docker.sock or tcp://host:2376".into())
        })?;
        match scheme {
            "unix" if rest.starts_with('/') => {
                if self.certs.is_some() {
                    return Err(refuse(
                        "engine_certs is for tcp:// engines; a Unix socket needs none".into(),
                    ));
                }
                Ok(Route::Unix(endpoint.clone()))
            }
            "unix" => Err(refuse(
                "a Unix socket needs an absolute path (unix:///var/run/docker.sock)".into(),
            )),
            "tcp" => self.tcp_route(endpoint, rest, &refuse),
            "ssh" => self.ssh_route(endpoint, rest, &refuse),
            other => Err(refuse(format!(
                "unsupported scheme `{other}`; use unix:// or tcp://"
            ))),
        }
    }

    fn ssh_route(
        &self,
        endpoint: &str,
        rest: &str,
        refuse: &dyn Fn(String) -> DockerError,
    ) -> Result<Route, DockerError> {
        if self.certs.is_some() {
            return Err(refuse(
                "engine_certs is for tcp:// engines; an ssh:// engine is reached with the runner's ssh keys, agent and configuration".into(),
            ));
        }
        let authority = rest.trim_end_matches('/');
        let (user, host) = authority.rsplit_once('@').unwrap_or(("", authority));
        if user.contains(':') {
            return Err(refuse(
                "a password in the URL is not how ssh authenticates here; use a key (the runner's ssh agent or ~/.ssh)".into(),
            ));
        }
        if authority.contains('/') || host.is_empty() || host.starts_with('-') {
            return Err(refuse("write ssh://user@host (no path)".into()));
        }
        // bollard hands `user@host:port` to ssh as a host name, which ssh cannot
        // resolve: a port is given the ssh way instead.
        if host.contains(':') {
            return Err(refuse(format!(
                "a port in an ssh:// URL is not supported; give it in ~/.ssh/config (Host {name} / Port …) and write ssh://{user_at}{name}",
                name = host.split(':').next().unwrap_or_default(),
                user_at = if user.is_empty() { String::new() } else { format!("{user}@") },
            )));
        }
        Ok(Route::Ssh(endpoint.trim_end_matches('/').to_owned()))
    }

    fn tcp_route(
        &self,
        endpoint: &str,
        rest: &str,
        refuse: &dyn Fn(String) -> DockerError,
    ) -> Result<Route, DockerError> {
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.contains('@') {
            return Err(refuse(
                "credentials in the URL are not how an engine authenticates; use a client certificate (engine_certs)".into(),
            ));
        }
        let host = host_of(authority)
            .ok_or_else(|| refuse("tcp:// needs a host and a port (tcp://host:2376)".into()))?;
        let Some(dir) = &self.certs else {
            if is_loopback(host) {
                return Ok(Route::Http(endpoint.to_owned()));
            }
            return Err(refuse(format!(
                "an engine on {host} reached over TCP must use TLS with a client certificate; set engine_certs to a folder holding ca.pem, cert.pem and key.pem (as `docker --tlsverify` uses)"
            )));
        };
        let files = TlsFiles::in_folder(dir);
        for (what, path) in [
            ("the engine's CA certificate", &files.ca),
            ("the client certificate", &files.cert),
            ("the client key", &files.key),
        ] {
            if let Err(e) = std::fs::File::open(path) {
                return Err(refuse(format!(
                    "cannot read {what} {}: {e}",
                    path.display()
                )));
            }
        }
        Ok(Route::Tls {
            address: endpoint.to_owned(),
            files,
        })
    }
}

/// The host of `host:port` or `[v6]:port`; `None` without a port.
fn host_of(authority: &str) -> Option<&str> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        (host, after.strip_prefix(':')?)
    } else {
        authority.rsplit_once(':')?
    };
    (!host.is_empty() && port.parse::<u16>().is_ok()).then_some(host)
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(endpoint: &str, certs: Option<&Path>) -> EngineTarget {
        EngineTarget {
            endpoint: Some(endpoint.into()),
            certs: certs.map(Path::to_path_buf),
        }
    }

    fn refused(t: &EngineTarget) -> String {
        match t.route() {
            Err(e @ DockerError::Endpoint { .. }) => e.to_string(),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn sockets_and_loopback_tcp_need_no_certificates() {
        assert_eq!(
            EngineTarget::default_engine().route().unwrap(),
            Route::Default
        );
        assert_eq!(
            target("unix:///run/docker.sock", None).route().unwrap(),
            Route::Unix("unix:///run/docker.sock".into())
        );
        for ok in [
            "tcp://127.0.0.1:2375",
            "tcp://[::1]:2375",
            "tcp://localhost:2375",
        ] {
            assert_eq!(target(ok, None).route().unwrap(), Route::Http(ok.into()));
        }
    }

    #[test]
    fn tcp_elsewhere_needs_tls_with_every_file_readable() {
        let shown = refused(&target("tcp://10.0.0.5:2376", None));
        assert!(
            shown.contains("must use TLS") && shown.contains("engine_certs"),
            "{shown}"
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), "x").unwrap();
        std::fs::write(dir.path().join("cert.pem"), "x").unwrap();
        let shown = refused(&target("tcp://prod.internal:2376", Some(dir.path())));
        assert!(shown.contains("cannot read the client key"), "{shown}");
        assert!(shown.contains("key.pem"), "{shown}");
        std::fs::write(dir.path().join("key.pem"), "x").unwrap();
        let route = target("tcp://prod.internal:2376", Some(dir.path()))
            .route()
            .unwrap();
        assert!(matches!(route, Route::Tls { .. }), "{route:?}");
    }

    #[test]
    fn malformed_and_unsupported_endpoints_are_refused_with_the_fix() {
        for (endpoint, says) in [
            ("prod.internal:2376", "not a URL"),
            ("unix://run/docker.sock", "absolute path"),
            ("tcp://prod.internal", "host and a port"),
            ("tcp://:2376", "host and a port"),
            ("tcp://admin:pw@10.0.0.5:2376", "client certificate"),
            ("ssh://deploy:pw@prod", "password in the URL"),
            ("ssh://deploy@prod/var/run", "no path"),
            ("ssh://deploy@prod:2222", "Host prod / Port"),
            ("ssh://-oProxyCommand=x", "no path"),
            ("http://10.0.0.5:2375", "unsupported scheme `http`"),
        ] {
            let shown = refused(&target(endpoint, None));
            assert!(shown.contains(says), "{endpoint}: {shown}");
            assert!(!shown.contains(":pw@"), "{shown}");
        }
        let dir = tempfile::tempdir().unwrap();
        let shown = refused(&target("unix:///run/docker.sock", Some(dir.path())));
        assert!(shown.contains("needs none"), "{shown}");
        let shown = refused(&target("ssh://deploy@prod", Some(dir.path())));
        assert!(shown.contains("ssh keys"), "{shown}");
    }

    #[test]
    fn ssh_engines_are_reached_as_written() {
        for ok in [
            "ssh://deploy@prod.internal",
            "ssh://deploy@127.0.0.2",
            "ssh://prod/",
        ] {
            let route = target(ok, None).route().unwrap();
            assert_eq!(route, Route::Ssh(ok.trim_end_matches('/').into()));
        }
    }
}
