//! The Docker fixture shared by every engine test (`docker`, `environments`, `faults`,
//! `prune`, `replay`, `cli_output`): the engine and registry (or a skip), the static
//! example service built once, and [`Project`], a repository set up for the Docker
//! stages whose containers and images are removed when it is dropped. When no engine
//! answers, the tests skip with a notice, unless `LEDGER_REQUIRE_DOCKER=1` (set by
//! `.ci/run`), where they fail instead.
//!
//! A project is a real git repository, since images are built from commits: the SHAs
//! its tests run ([`Project::sha`]) are commits made on demand. Its `ledger.toml` and
//! policy are ignored by git, so that tests may rewrite them between stages without
//! committing; the build context `service/` is committed.

use crate::{assert_code, source, Repo};
use ledger_docker::Engine;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The static example-service binary, built once per test process.
fn service_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let target = root.join("target/example");
        let triple = host_triple();
        let status = Command::new(env!("CARGO"))
            .args([
                "build",
                "--quiet",
                "--release",
                "-p",
                "ledger-example-service",
                "--target",
                &triple,
            ])
            .arg("--target-dir")
            .arg(&target)
            .env("RUSTFLAGS", "-C target-feature=+crt-static")
            .current_dir(&root)
            .status()
            .expect("cargo");
        assert!(status.success(), "building the example service failed");
        target.join(triple).join("release/ledger-example-service")
    })
}

fn host_triple() -> String {
    let out = Command::new("rustc").arg("-vV").output().expect("rustc");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .unwrap_or("x86_64-unknown-linux-gnu")
        .to_owned()
}

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The engine, or `None` (skip) when none answers and it is not required.
pub(crate) fn engine() -> Option<Engine> {
    match runtime().block_on(Engine::connect()) {
        Ok(e) => Some(e),
        Err(e) if std::env::var_os("LEDGER_REQUIRE_DOCKER").is_none() => {
            eprintln!(
                "no Docker engine ({e}); skipping (set LEDGER_REQUIRE_DOCKER=1 to fail instead)"
            );
            None
        }
        Err(e) => panic!("LEDGER_REQUIRE_DOCKER is set but no engine answers: {e}"),
    }
}

pub(crate) fn registry() -> Option<String> {
    let r = std::env::var("LEDGER_TEST_REGISTRY").ok();
    if r.is_none() && std::env::var_os("LEDGER_REQUIRE_DOCKER").is_some() {
        panic!("LEDGER_REQUIRE_DOCKER is set but LEDGER_TEST_REGISTRY is not; run `bash .ci/run`");
    }
    r
}

/// One `[[environments]]` table of `ledger.toml`: the example service on `port` with
/// its health check at `http://host:port/health`, plus `extra` lines for the
/// environment and `checks` (more `[[environments.checks]]`) after the health check.
pub(crate) fn environment_toml(
    name: &str,
    port: u16,
    host: &str,
    extra: &str,
    checks: &str,
) -> String {
    format!(
        r#"
[[environments]]
name = "{name}"
{extra}
  [[environments.services]]
  image = "api"
  ports = [{{ container = 8080, host = {port} }}]
  health_timeout_seconds = 20
  env = {{ APP_VERSION = "it" }}
  [[environments.checks]]
  name = "health"
  url = "http://{host}:{port}/health"
  body_contains = "ok"
  retries = 40
  interval_ms = 100
{checks}"#
    )
}

/// `dockerfile` with a first step of `project`'s own, so no layer of its images is
/// shared with another project's. Tests share one engine, and Docker's classic
/// builder looks for a cached step among the children of the step before, which fails
/// the build ("unable to find image") when another project removes one of those
/// children meanwhile (its drop, a prune); removing an image also removes the parent
/// layers nothing else uses, from under a build that was about to reuse them. Each
/// project copies the 1.3 MB service binary once instead of finding it cached.
fn own_layers(dockerfile: &str, project: &str) -> String {
    let (from, rest) = dockerfile
        .split_once("FROM scratch\n")
        .expect("the example's Dockerfile builds FROM scratch");
    format!("{from}FROM scratch\nLABEL test.ledger-it.project=\"{project}\"\n{rest}")
}

pub(crate) fn free_port() -> u16 {
    // A port the kernel hands out for a socket bound and closed at once can be handed
    // out again to the next test running beside this one, before either container
    // publishes it: never give the same port to two tests of this process.
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// A repository set up for the Docker stages, with a unique project and port, whose
/// containers and images are removed when it is dropped.
pub(crate) struct Project {
    pub(crate) repo: Repo,
    pub(crate) name: String,
    pub(crate) port: u16,
    pub(crate) registry: Option<String>,
    /// The commits made by [`Project::sha`], by number.
    commits: RefCell<BTreeMap<u8, String>>,
}

impl Project {
    pub(crate) fn new(registry: Option<String>) -> Project {
        let repo = Repo::new();
        let unique = format!(
            "{:x}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
                % 0xffff_ffff_ffff
        );
        let name = format!("ledger-it-{unique}");
        let ctx = repo.path().join("service");
        std::fs::create_dir_all(&ctx).unwrap();
        std::fs::copy(service_binary(), ctx.join("ledger-example-service")).unwrap();
        let dockerfile =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/service/image/Dockerfile");
        let dockerfile = std::fs::read_to_string(dockerfile).unwrap();
        std::fs::write(ctx.join("Dockerfile"), own_layers(&dockerfile, &name)).unwrap();
        let p = Project {
            repo,
            name,
            port: free_port(),
            registry,
            commits: RefCell::default(),
        };
        p.configure("");
        let ignore = p.repo.path().join(".gitignore");
        let mut ignored = std::fs::read_to_string(&ignore).unwrap();
        ignored.push_str("ledger.toml\npolicy/\n");
        std::fs::write(ignore, ignored).unwrap();
        source::git_init(&p.repo);
        p
    }

    /// The SHA of commit number `n` of this project: made (empty, on top of HEAD)
    /// the first time it is asked for.
    pub(crate) fn sha(&self, n: u8) -> String {
        self.commits
            .borrow_mut()
            .entry(n)
            .or_insert_with(|| source::commit_all(self.repo.path(), &format!("commit {n}")))
            .clone()
    }

    /// Writes `ledger.toml`; `service_env` is extra TOML for the service's env table.
    pub(crate) fn configure(&self, service_env: &str) {
        self.configure_with(service_env, "/health");
    }

    /// Writes `ledger.toml` with the smoke check aimed at `check_path`.
    pub(crate) fn configure_with(&self, service_env: &str, check_path: &str) {
        let registry = self
            .registry
            .as_ref()
            .map(|r| format!("registry = \"{r}\"\n"))
            .unwrap_or_default();
        let text = format!(
            r#"repository = "{name}"
source = "https://example.invalid/ledger-it"
{registry}
[[images]]
name = "api"
context = "service"

[[environments]]
name = "production"
lease_ttl_seconds = 600
  [[environments.services]]
  image = "api"
  ports = [{{ container = 8080, host = {port} }}]
  health_timeout_seconds = 20
  env = {{ APP_VERSION = "it" {service_env} }}
  [[environments.checks]]
  name = "health"
  url = "http://127.0.0.1:{port}{check_path}"
  body_contains = "ok"
  retries = 40
  interval_ms = 100
"#,
            name = self.name,
            port = self.port
        );
        std::fs::write(self.repo.path().join("ledger.toml"), text).unwrap();
    }

    pub(crate) fn ledger(&self, args: &[&str]) -> std::process::Output {
        self.repo.ledger(args)
    }

    /// Runs commit through `last` (inclusive) for `sha`, asserting success.
    pub(crate) fn run_through(&self, sha: &str, last: &str) {
        for stage in [
            "commit",
            "integration",
            "build",
            "publish",
            "deploy",
            "smoke",
            "decide",
        ] {
            let out = match stage {
                "commit" | "integration" => {
                    self.ledger(&["stage", stage, "--sha", sha, "--", "true"])
                }
                _ => self.ledger(&["stage", stage, "--sha", sha]),
            };
            assert_code(&out, 0);
            if stage == last {
                return;
            }
        }
    }

    pub(crate) fn containers(&self) -> Vec<ledger_docker::ContainerInfo> {
        let engine = engine().unwrap();
        runtime()
            .block_on(engine.containers(&[("dev.ledger.project", &self.name)]))
            .unwrap()
    }

    /// Starts a container by hand (not through ledger) from `image_id` in the
    /// project's `production` environment, named `<project>-<suffix>`, with `sha` as
    /// its `dev.ledger.sha` label; returns its id.
    pub(crate) fn start_by_hand(&self, image_id: &str, suffix: &str, sha: &str) -> String {
        let out = Command::new("docker")
            .args(["run", "-d", "--name", &format!("{}-{suffix}", self.name)])
            .args(["--label", &format!("dev.ledger.project={}", self.name)])
            .args(["--label", "dev.ledger.environment=production"])
            .args(["--label", &format!("dev.ledger.sha={sha}")])
            .args(["--label", "dev.ledger.image=api"])
            .arg(image_id)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", crate::text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    pub(crate) fn get(&self, path: &str) -> Option<String> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes(),
        )
        .ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        Some(out)
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let Ok(engine) = runtime().block_on(Engine::connect()) else {
            return;
        };
        let rt = runtime();
        if let Ok(list) = rt.block_on(engine.containers(&[("dev.ledger.project", &self.name)])) {
            for c in list {
                let _ = rt.block_on(engine.remove(&c.id));
            }
        }
        for sha in shas_of(&self.repo) {
            let repo = match &self.registry {
                Some(r) => format!("{r}/{}/api", self.name),
                None => format!("{}/api", self.name),
            };
            let _ = rt.block_on(engine.remove_image(&format!("{repo}:{sha}")));
        }
    }
}

pub(crate) fn shas_of(repo: &Repo) -> Vec<String> {
    std::fs::read_dir(repo.store().join("build"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}
