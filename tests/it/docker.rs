//! The Docker half against the real engine and the real registry that `bash .ci/run`
//! starts: build once, publish, deploy by digest, smoke, decide; refusals of foreign
//! or tag-named images; serialized deploys; restore on failed health; unreachable
//! engine or registry. When no engine answers these tests skip with a notice, unless
//! `LEDGER_REQUIRE_DOCKER=1` (set by `.ci/run`), where they fail instead.

use crate::{assert_code, text, Repo};
use ledger_core::ArtifactKind;
use ledger_docker::Engine;
use serde_json::{json, Value};
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

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A repository set up for the Docker stages, with a unique project and port, whose
/// containers and images are removed when it is dropped.
pub(crate) struct Project {
    pub(crate) repo: Repo,
    pub(crate) name: String,
    pub(crate) port: u16,
    pub(crate) registry: Option<String>,
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
        std::fs::copy(dockerfile, ctx.join("Dockerfile")).unwrap();
        let p = Project {
            repo,
            name,
            port: free_port(),
            registry,
        };
        p.configure("");
        p
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

pub(crate) fn sha(n: u8) -> String {
    format!("{:040x}", 0xabc0_u64 + u64::from(n))
}

#[test]
fn full_chain_without_a_registry() {
    let Some(_) = engine() else { return };
    let p = Project::new(None);
    let s = sha(1);
    p.run_through(&s, "decide");
    assert_code(&p.ledger(&["verify", &s]), 0);
    let manifest = p
        .repo
        .predicate(&format!("release-candidate/{s}/manifest.json"));
    assert_eq!(manifest["images"]["api"]["engine_local"], true);
    assert!(manifest["images"]["api"]["ref"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    let running = p.containers();
    assert_eq!(running.len(), 1);
    assert_eq!(running[0].labels["dev.ledger.sha"], s);
    assert_eq!(
        running[0].labels["dev.ledger.evidence"],
        format!("infra/{s}/deployment.json")
    );
    assert!(p.get("/").unwrap().contains("\"version\":\"it\""));
    let decision = p.repo.predicate(&format!("release/{s}/decision.json"));
    assert_eq!(decision["decision"], "promote");
}

#[test]
fn full_chain_with_a_registry_deploys_by_pulled_digest() {
    let Some(engine) = engine() else { return };
    let Some(registry) = registry() else {
        eprintln!("LEDGER_TEST_REGISTRY not set; skipping");
        return;
    };
    let p = Project::new(Some(registry.clone()));
    let s = sha(2);
    p.run_through(&s, "publish");
    let manifest = p
        .repo
        .predicate(&format!("release-candidate/{s}/manifest.json"));
    let reference = manifest["images"]["api"]["ref"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        reference.starts_with(&format!("{registry}/{}/api@sha256:", p.name)),
        "{reference}"
    );
    assert_eq!(manifest["images"]["api"]["engine_local"], false);
    // Remove the local copy: deploy must pull the digest from the registry.
    runtime()
        .block_on(engine.remove_image(&format!("{registry}/{}/api:{s}", p.name)))
        .unwrap();
    runtime().block_on(engine.remove_image(&reference)).unwrap();
    let out = p.ledger(&["stage", "deploy", "--sha", &s]);
    assert_code(&out, 0);
    assert!(
        text(&out).contains(&format!("pulling {reference}")),
        "{}",
        text(&out)
    );
    assert_code(&p.ledger(&["stage", "smoke", "--sha", &s]), 0);
    assert_code(&p.ledger(&["stage", "decide", "--sha", &s]), 0);
    assert_code(&p.ledger(&["verify", &s]), 0);
    let deployment = p.repo.predicate(&format!("infra/{s}/deployment.json"));
    assert_eq!(deployment["containers"][0]["ref"], reference.as_str());
}

#[test]
fn a_second_build_of_a_sha_is_refused() {
    let Some(_) = engine() else { return };
    let p = Project::new(None);
    let s = sha(3);
    p.run_through(&s, "build");
    let out = p.ledger(&["stage", "build", "--sha", &s]);
    assert_code(&out, 3);
    assert!(
        text(&out).contains(&format!("ledger replay {s}")),
        "{}",
        text(&out)
    );
    assert_eq!(shas_of(&p.repo).len(), 1);
}

#[test]
fn deploy_refuses_an_image_built_from_another_commit() {
    let Some(engine) = engine() else { return };
    let p = Project::new(None);
    let (s, other) = (sha(4), sha(5));
    p.run_through(&s, "integration");
    // An image labelled with another commit, presented in a validly signed manifest.
    let spec = ledger_docker::BuildSpec {
        context_dir: p.repo.path().join("service"),
        dockerfile: "Dockerfile".into(),
        tag: format!("{}/api:{s}", p.name),
        labels: [(
            "org.opencontainers.image.revision".to_string(),
            other.clone(),
        )]
        .into(),
    };
    let built = runtime().block_on(engine.build(&spec, |_| {})).unwrap();
    p.repo.record(ArtifactKind::Build, &s, |pr| {
        pr["images"][0]["image_id"] = built.image_id.clone().into();
        pr["images"][0]["repo_digest"] = Value::Null;
        pr["images"][0]["labels"]["org.opencontainers.image.revision"] = other.clone().into();
        pr["registry"] = Value::Null;
    });
    p.repo.record(ArtifactKind::Manifest, &s, |pr| {
        pr["images"] = json!({ "api": { "ref": built.image_id, "digest": built.image_id, "engine_local": true } });
        pr["registry"] = Value::Null;
    });
    let out = p.ledger(&["stage", "deploy", "--sha", &s]);
    assert_code(&out, 4);
    assert!(
        text(&out).contains(&format!("revision label \"{other}\", not {s}")),
        "{}",
        text(&out)
    );
    assert!(p.containers().is_empty(), "nothing may be started");
    assert!(!p
        .repo
        .object(&format!("infra/{s}/deployment.json"))
        .exists());
    let _ = runtime().block_on(engine.remove_image(&built.image_id));
}

#[test]
fn deploy_refuses_a_manifest_that_names_a_tag() {
    let Some(_) = engine() else { return };
    let p = Project::new(None);
    let s = sha(6);
    p.run_through(&s, "build");
    // ledger cannot write such a manifest (its schema forbids it); forge one signed
    // with the trusted key, bypassing the recorder's checks.
    use ledger_core::dsse::Envelope;
    let mut pred = p.repo.predicate(&format!("build/{s}/build.json"));
    pred["stage"] = "publish".into();
    pred.as_object_mut().unwrap().remove("images");
    pred["images"] = json!({ "api": { "ref": format!("{}/api:latest", p.name), "digest": format!("sha256:{}", "a".repeat(64)), "engine_local": true } });
    let gitsha = ledger_core::GitSha::parse(&s).unwrap();
    let st = ledger_core::Statement::new(
        ArtifactKind::Manifest,
        vec![ledger_core::Subject::git(&gitsha)],
        pred,
    );
    let key = ledger_core::SigningKey::from_pem(
        &std::fs::read_to_string(p.repo.path().join(".ledger/signing.key")).unwrap(),
    )
    .unwrap();
    let path = p
        .repo
        .object(&format!("release-candidate/{s}/manifest.json"));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, Envelope::sign(&st, &key).to_bytes()).unwrap();
    let out = p.ledger(&["stage", "deploy", "--sha", &s]);
    assert_code(&out, 3);
    assert!(text(&out).contains("/images/api/ref"), "{}", text(&out));
    assert!(p.containers().is_empty());
}

#[test]
fn concurrent_deploys_to_one_environment_are_serialized() {
    let Some(_) = engine() else { return };
    let p = Project::new(None);
    let s = sha(7);
    p.run_through(&s, "publish");
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_ledger"))
            .args(["stage", "deploy", "--sha", &s, "--lease-wait", "120"])
            .current_dir(p.repo.path())
            .env_remove("LEDGER_STORE")
            .env_remove("LEDGER_SIGNING_KEY")
            .output()
    };
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(spawn);
        let b = scope.spawn(spawn);
        (a.join().unwrap().unwrap(), b.join().unwrap().unwrap())
    });
    assert_code(&a, 0);
    assert_code(&b, 0);
    let first = p.repo.predicate(&format!("infra/{s}/deployment.json"));
    let second = p
        .repo
        .predicate(&format!("infra/{s}/deployment.attempt-2.json"));
    let (l1, l2) = (&first["lease"], &second["lease"]);
    let (earlier, later) = if l1["acquired_at"].as_str() < l2["acquired_at"].as_str() {
        (&first, &second)
    } else {
        (&second, &first)
    };
    // The later deploy acquired the lease only after the earlier one had finished.
    assert!(
        later["lease"]["acquired_at"].as_str().unwrap() >= earlier["finished_at"].as_str().unwrap(),
        "{first}\n{second}"
    );
    assert_eq!(later["previous_release"], s.as_str());
    assert_eq!(p.containers().into_iter().filter(|c| c.running).count(), 1);
    // The lease lasts the environment's configured `lease_ttl_seconds`.
    let at = |v: &Value| {
        time::OffsetDateTime::parse(
            v.as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    };
    let ttl = at(&l1["expires_at"]) - at(&l1["acquired_at"]);
    assert_eq!(ttl.whole_seconds(), 600, "{l1}");
}

#[test]
fn a_deploy_that_fails_health_restores_the_previous_release() {
    let Some(_) = engine() else { return };
    let p = Project::new(None);
    let (good, bad) = (sha(8), sha(9));
    p.run_through(&good, "deploy");
    // The next release starts unhealthy.
    p.configure(", UNHEALTHY = \"1\"");
    p.run_through(&bad, "publish");
    let out = p.ledger(&["stage", "deploy", "--sha", &bad]);
    assert_code(&out, 1);
    let d = p.repo.predicate(&format!("infra/{bad}/deployment.json"));
    assert_eq!(d["result"], "fail");
    assert_eq!(d["failure"]["restored"], true);
    assert_eq!(d["previous_release"], good.as_str());
    let running: Vec<_> = p.containers().into_iter().filter(|c| c.running).collect();
    assert_eq!(running.len(), 1);
    assert_eq!(running[0].labels["dev.ledger.sha"], good);
    assert!(
        p.get("/health").unwrap().contains("200"),
        "the previous release serves again"
    );
    // Smoke of the failed SHA is denied by its gate; the chain still verifies.
    assert_code(&p.ledger(&["stage", "smoke", "--sha", &bad]), 3);
    assert_code(&p.ledger(&["verify", &bad]), 0);
}

#[test]
fn a_failing_smoke_check_is_recorded_and_the_release_rejected() {
    let Some(_) = engine() else { return };
    let p = Project::new(None);
    let s = sha(10);
    p.run_through(&s, "deploy");
    // Point the check at a path the service does not serve.
    let toml = std::fs::read_to_string(p.repo.path().join("ledger.toml")).unwrap();
    std::fs::write(
        p.repo.path().join("ledger.toml"),
        toml.replace("/health\"", "/missing\"\n  retries = 2"),
    )
    .unwrap();
    let toml = std::fs::read_to_string(p.repo.path().join("ledger.toml")).unwrap();
    std::fs::write(
        p.repo.path().join("ledger.toml"),
        toml.replace("  retries = 40\n", ""),
    )
    .unwrap();
    assert_code(&p.ledger(&["stage", "smoke", "--sha", &s]), 1);
    let smoke = p.repo.predicate(&format!("deploy/{s}/api-smoke.json"));
    assert_eq!(smoke["result"], "fail");
    assert_eq!(smoke["checks"][0]["status"], 404);
    assert_code(&p.ledger(&["stage", "decide", "--sha", &s]), 1);
    assert_eq!(
        p.repo.predicate(&format!("release/{s}/decision.json"))["decision"],
        "reject"
    );
}

#[test]
fn an_unreachable_engine_or_registry_is_exit_5_and_writes_nothing() {
    let Some(_) = engine() else { return };
    let p = Project::new(None);
    let s = sha(11);
    p.run_through(&s, "integration");
    let out = p.repo.ledger_env(
        &["stage", "build", "--sha", &s],
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
    );
    assert_code(&out, 5);
    assert!(
        text(&out).contains("/nonexistent/docker.sock"),
        "{}",
        text(&out)
    );
    assert!(!p.repo.object(&format!("build/{s}/build.json")).exists());

    let q = Project::new(Some(format!("127.0.0.1:{}", free_port())));
    q.run_through(&s, "integration");
    let out = q.ledger(&["stage", "build", "--sha", &s]);
    assert_code(&out, 5);
    assert!(text(&out).contains("pushing"), "{}", text(&out));
    assert!(!q.repo.object(&format!("build/{s}/build.json")).exists());
}

#[test]
fn docker_half_evidence_verifies_with_securesystemslib() {
    let Some(_) = engine() else { return };
    if std::env::var_os("LEDGER_SKIP_INTEROP").is_some() {
        return;
    }
    let p = Project::new(None);
    let s = sha(12);
    p.run_through(&s, "decide");
    // The auditor's independent verifier (docs/audit) accepts the whole real chain.
    let out = crate::interop::audit_chain(&p.repo, &s).unwrap();
    assert_code(&out, 0);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("8 of 8 artifact(s) verified"),
        "{}",
        text(&out)
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/sslib_interop.py");
    for key in [
        format!("build/{s}/build.json"),
        format!("release-candidate/{s}/manifest.json"),
    ] {
        let out = Command::new("python3")
            .arg(&script)
            .arg("verify")
            .arg(p.repo.object(&key))
            .arg(p.repo.path().join(".ledger/signing.pub"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{key}: {}", text(&out));
    }
}

#[test]
fn status_drift_compares_the_evidence_with_what_the_engine_runs() {
    let Some(engine) = engine() else { return };
    let p = Project::new(None);
    let s = sha(60);
    p.run_through(&s, "deploy");
    let drift = |code: i32| -> Value {
        let out = p.ledger(&["status", "--drift", "--json"]);
        assert_code(&out, code);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        crate::read::assert_output_schema("status", &v);
        v
    };
    let v = drift(0);
    let prod = &v["drift"][0];
    assert_eq!(prod["environment"], "production");
    assert_eq!(prod["recorded_sha"], s.as_str());
    assert_eq!(prod["findings"], json!([]));
    assert_eq!(prod["observed"][0]["sha"], s.as_str());

    // Stopped behind ledger's back: the record says it runs, the engine disagrees.
    let running = p.containers().into_iter().find(|c| c.running).unwrap();
    runtime().block_on(engine.stop(&running.id)).unwrap();
    let v = drift(4);
    let findings = v["drift"][0]["findings"].to_string();
    assert!(findings.contains("runs no container"), "{findings}");

    // Started by hand with the project's labels but another SHA and no evidence.
    runtime().block_on(engine.start(&running.id)).unwrap();
    let other = sha(61);
    let out = Command::new("docker")
        .args(["run", "-d", "--name", &format!("{}-rogue", p.name)])
        .args(["--label", &format!("dev.ledger.project={}", p.name)])
        .args(["--label", "dev.ledger.environment=production"])
        .args(["--label", &format!("dev.ledger.sha={other}")])
        .args(["--label", "dev.ledger.image=api"])
        .arg(&running.image_id)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let out = p.ledger(&["status", "--drift"]);
    assert_code(&out, 4);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("runs SHA {other}, the evidence records {s}")),
        "{stdout}"
    );
    assert!(stdout.contains("(no evidence label)"), "{stdout}");
    assert_eq!(stdout.matches("DRIFT production").count(), 2, "{stdout}");
}
