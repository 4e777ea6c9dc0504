//! Environments on engines of their own: canary on the runner's engine, production
//! on a second, private `dockerd` reached over TCP with TLS and a client certificate
//! (`.ci/tls-engine.sh`, started by `.ci/run`). [`promotion`]: promotion, smoke,
//! replay, `status --drift` and `doctor` each use the environment's engine; the
//! deployment evidence names it; images reach the second engine only through the
//! registry. [`refusals`]: a wrong CA, a client certificate the engine does not
//! accept, a missing key, plain TCP to a remote host and a password in an `ssh://`
//! URL are refused with the fix named and nothing recorded. [`ssh`]: an engine over
//! ssh, through a local sshd. [`https`]: HTTPS smoke checks trust an
//! environment's `checks_ca` and nothing they were not told to, and published ports
//! bind to the environment's `publish_address`. [`swarm`]: the same engine as a
//! single-node swarm, with `target = "swarm"`: services created, updated, rolled back
//! by the swarm when the new release fails, and rolled back to by `ledger rollback`.
//! [`prune`]: copies found and deleted on every engine, what runs on any kept.
//!
//! The tests skip when `LEDGER_TEST_TLS_ENGINE` is not set, unless
//! `LEDGER_REQUIRE_DOCKER=1` (CI), where that is a failure.

mod https;
mod promotion;
mod prune;
mod refusals;
mod ssh;
mod swarm;

use crate::project::{engine, environment_toml, registry, Project};
use crate::text;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The second engine `.ci/run` started.
struct TlsEngine {
    /// `tcp://127.0.0.1:PORT`, TLS with client certificates.
    endpoint: String,
    /// The client's `ca.pem`, `cert.pem`, `key.pem`.
    certs: PathBuf,
    /// Its Unix socket, for the test's own look at it through the docker CLI.
    socket: String,
}

fn tls_engine() -> Option<TlsEngine> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let found = (|| {
        Some(TlsEngine {
            endpoint: var("LEDGER_TEST_TLS_ENGINE")?,
            certs: var("LEDGER_TEST_TLS_ENGINE_CERTS")?.into(),
            socket: var("LEDGER_TEST_TLS_ENGINE_SOCKET")?,
        })
    })();
    if found.is_none() {
        assert!(
            std::env::var_os("LEDGER_REQUIRE_DOCKER").is_none(),
            "LEDGER_REQUIRE_DOCKER is set but LEDGER_TEST_TLS_ENGINE(_CERTS, _SOCKET) is not; run `bash .ci/run`"
        );
        eprintln!("LEDGER_TEST_TLS_ENGINE not set; skipping");
    }
    found
}

impl TlsEngine {
    /// The docker CLI against the second engine's socket: an account of what runs
    /// there that does not go through ledger's own client.
    fn docker(&self, args: &[&str]) -> String {
        let out = Command::new("docker")
            .args(["-H", &self.socket])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "docker {args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Running containers of `project` there, as `(name, environment label)`.
    fn running(&self, project: &str) -> Vec<(String, String)> {
        let filter = format!("label=dev.ledger.project={project}");
        let format = "{{.Names}} {{.Label \"dev.ledger.environment\"}}";
        self.docker(&["ps", "--filter", &filter, "--format", format])
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(n, e)| (n.to_owned(), e.to_owned()))
            .collect()
    }
}

/// Removes `project`'s services, containers and images from the engine at `socket`.
fn remove_from(socket: &str, project: &str) {
    let docker = |args: &[&str]| {
        Command::new("docker")
            .args(["-H", socket])
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    let filter = format!("label=dev.ledger.project={project}");
    for id in docker(&["service", "ls", "-q", "--filter", &filter]).lines() {
        docker(&["service", "rm", id]);
    }
    for id in docker(&["ps", "-aq", "--filter", &filter]).lines() {
        docker(&["rm", "-f", id]);
    }
    let reference = format!("reference=*/{project}/*");
    for id in docker(&["images", "-q", "--filter", &reference]).lines() {
        docker(&["rmi", "-f", id]);
    }
}

/// What each test here starts from: the second engine and a project pushing to a
/// registry (the test registry, another, or none). Dropping it removes what the project left on the second
/// engine. The cleanup is `Remote`'s own `Drop`, not a field's: a field left out of a
/// destructuring pattern (`let Remote { t, p, .. } = remote(…)`) is dropped at once,
/// which once left every test's swarm services running (health checks and all) for the
/// rest of the suite; with `Drop` on `Remote`, moving out of it does not compile, so a
/// test borrows its parts (`let Remote { t, p } = &r`).
struct Remote {
    t: TlsEngine,
    p: Project,
}

impl Drop for Remote {
    fn drop(&mut self) {
        remove_from(&self.t.socket, &self.p.name);
    }
}

/// The fixture, or `None` (skip) where the engines or the registry are absent.
fn remote(with_registry: bool) -> Option<Remote> {
    engine()?;
    let t = tls_engine()?;
    let registry = if with_registry {
        Some(registry()?)
    } else {
        None
    };
    let p = Project::new(registry);
    Some(Remote { t, p })
}

fn write_config(p: &Project, environments: &[String]) {
    let registry = p
        .registry
        .as_ref()
        .map(|r| format!("registry = \"{r}\"\n"))
        .unwrap_or_default();
    let text = format!(
        "repository = \"{}\"\nsource = \"https://example.invalid/ledger-it\"\n{registry}\n[[images]]\nname = \"api\"\ncontext = \"service\"\n{}",
        p.name,
        environments.concat()
    );
    std::fs::write(p.repo.path().join("ledger.toml"), text).unwrap();
}

/// `engine = …` and `engine_certs = …` lines for `t`, with the certificates in `certs`.
fn on_engine(t: &TlsEngine, certs: &Path) -> String {
    format!(
        "engine = \"{}\"\nengine_certs = \"{}\"",
        t.endpoint,
        certs.display()
    )
}

/// canary on the runner's engine at `canary_port`, production on `t` at the
/// project's port with the client certificates in `certs`.
fn configure_two_engines(p: &Project, t: &TlsEngine, canary_port: u16, certs: &Path) {
    write_config(
        p,
        &[
            environment_toml("canary", canary_port, "127.0.0.1", "", ""),
            environment_toml("production", p.port, "127.0.0.1", &on_engine(t, certs), ""),
        ],
    );
}
