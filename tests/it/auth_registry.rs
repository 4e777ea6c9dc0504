//! The pipeline against a registry that needs a login and serves TLS from its own CA
//! (Debian's docker-registry behind htpasswd, started by `.ci/run`'s
//! `setup_auth_registry`): the credential `docker login` stored in `DOCKER_CONFIG` is
//! used for the push, the pull and the registry API; without it, or with a wrong
//! one, the push and the pull are refused with exit 5 naming the registry and
//! `docker login`; ledger's own registry client verifies the registry's certificate
//! against the CA in the certs.d folder and refuses a wrong CA or none; and the
//! password and the base64 string `docker login` stored are found in no stored byte
//! and no printed line. Credential helpers (`credsStore`, `credHelpers`) are real
//! programs on `PATH`; [`bearer`] does the same against a token-authenticated
//! registry.
//!
//! The tests skip when `LEDGER_TEST_AUTH_REGISTRY` is not set, unless
//! `LEDGER_REQUIRE_DOCKER=1` (CI), where that is a failure.

mod bearer;

use crate::project::{engine, runtime, Project};
use crate::{assert_code, text};
use base64::Engine as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The authenticated registry `.ci/run` started.
pub(crate) struct AuthRegistry {
    pub(crate) host: String,
    user: String,
    password: String,
    ca: PathBuf,
}

pub(crate) fn auth_registry() -> Option<AuthRegistry> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let found = (|| {
        Some(AuthRegistry {
            host: var("LEDGER_TEST_AUTH_REGISTRY")?,
            user: var("LEDGER_TEST_AUTH_REGISTRY_USER")?,
            password: var("LEDGER_TEST_AUTH_REGISTRY_PASSWORD")?,
            ca: var("LEDGER_TEST_AUTH_REGISTRY_CA")?.into(),
        })
    })();
    if found.is_none() {
        assert!(
            std::env::var_os("LEDGER_REQUIRE_DOCKER").is_none(),
            "LEDGER_REQUIRE_DOCKER is set but LEDGER_TEST_AUTH_REGISTRY(_USER, _PASSWORD, _CA) is not; run `bash .ci/run`"
        );
        eprintln!("LEDGER_TEST_AUTH_REGISTRY not set; skipping");
    }
    found
}

/// The folders and variables one `ledger` run gets: which Docker configuration
/// (logged in or not) and which certs.d folder (the right CA, a wrong one, none).
pub(crate) struct Setup {
    _dirs: tempfile::TempDir,
    pub(crate) logged_in: PathBuf,
    pub(crate) logged_out: PathBuf,
    wrong_login: PathBuf,
    pub(crate) right_ca: PathBuf,
    wrong_ca: PathBuf,
    no_ca: PathBuf,
}

impl Setup {
    pub(crate) fn new(r: &AuthRegistry) -> Setup {
        let dirs = tempfile::tempdir().unwrap();
        let d = |name: &str| {
            let p = dirs.path().join(name);
            std::fs::create_dir_all(&p).unwrap();
            p
        };
        let (logged_in, logged_out, wrong_login) = (d("login"), d("no-login"), d("wrong-login"));
        // The real `docker login`, as a user or CI's login step does it.
        let mut login = Command::new("docker")
            .env("DOCKER_CONFIG", &logged_in)
            .args(["login", "--username", &r.user, "--password-stdin", &r.host])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        login
            .stdin
            .take()
            .unwrap()
            .write_all(r.password.as_bytes())
            .unwrap();
        let out = login.wait_with_output().unwrap();
        assert!(out.status.success(), "docker login: {}", text(&out));
        let wrong = base64::engine::general_purpose::STANDARD.encode(format!("{}:wrong", r.user));
        std::fs::write(
            wrong_login.join("config.json"),
            format!(r#"{{"auths":{{"{}":{{"auth":"{wrong}"}}}}}}"#, r.host),
        )
        .unwrap();
        let (right_ca, wrong_ca, no_ca) = (d("certs-right"), d("certs-wrong"), d("certs-none"));
        std::fs::create_dir_all(right_ca.join(&r.host)).unwrap();
        std::fs::copy(&r.ca, right_ca.join(&r.host).join("ca.crt")).unwrap();
        std::fs::create_dir_all(wrong_ca.join(&r.host)).unwrap();
        throwaway_ca(&wrong_ca.join(&r.host));
        Setup {
            _dirs: dirs,
            logged_in,
            logged_out,
            wrong_login,
            right_ca,
            wrong_ca,
            no_ca,
        }
    }
}

/// A CA certificate of its own in `dir/ca.crt`, made by openssl: not the registry's.
fn throwaway_ca(dir: &Path) {
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=not the registry's CA"])
        .arg("-keyout")
        .arg(dir.join("ca.key"))
        .arg("-out")
        .arg(dir.join("ca.crt"))
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl: {}", text(&out));
}

/// Runs `ledger` with the Docker configuration `docker_config` and the certs.d
/// folder `certs`, logging at debug (so the logs are searched too); keeps the output.
pub(crate) struct Runner<'a> {
    pub(crate) p: &'a Project,
    pub(crate) printed: std::cell::RefCell<Vec<u8>>,
}

impl Runner<'_> {
    pub(crate) fn run(&self, docker_config: &Path, certs: &Path, args: &[&str]) -> Output {
        let config = docker_config.display().to_string();
        let certs = certs.display().to_string();
        let out = self.p.repo.ledger_env(
            args,
            &[
                ("DOCKER_CONFIG", &config),
                ("LEDGER_REGISTRY_CERTS_DIR", &certs),
                ("RUST_LOG", "debug"),
            ],
        );
        let mut printed = self.printed.borrow_mut();
        printed.extend_from_slice(&out.stdout);
        printed.extend_from_slice(&out.stderr);
        out
    }

    pub(crate) fn stage(
        &self,
        docker_config: &Path,
        certs: &Path,
        stage: &str,
        sha: &str,
    ) -> Output {
        match stage {
            "commit" | "integration" => self.run(
                docker_config,
                certs,
                &["stage", stage, "--sha", sha, "--", "true"],
            ),
            _ => self.run(docker_config, certs, &["stage", stage, "--sha", sha]),
        }
    }
}

/// Exit 5, naming the registry and telling to `docker login` to it.
#[track_caller]
fn assert_refused_with_login_hint(out: &Output, host: &str) {
    assert_code(out, 5);
    let shown = text(out);
    assert!(shown.contains(&format!("registry {host}")), "{shown}");
    assert!(
        shown.contains(&format!("log in with `docker login {host}`")),
        "{shown}"
    );
}

/// Exit 5, naming the registry and the certificate that did not verify.
#[track_caller]
fn assert_certificate_refused(out: &Output, host: &str) {
    assert_code(out, 5);
    let shown = text(out);
    assert!(shown.contains(&format!("registry {host}")), "{shown}");
    assert!(shown.contains("invalid peer certificate"), "{shown}");
}

/// Every file under `dir` (the repository: the store in `.artifacts/`, `.ledger/`,
/// the policy, the keys), `.git` included.
pub(crate) fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if e.file_type().unwrap().is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

pub(crate) fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Neither the password nor the base64 string `docker login` stored appears in any
/// printed line or any byte under the repository.
pub(crate) fn assert_no_secret_anywhere(p: &Project, r: &AuthRegistry, printed: &[u8]) {
    let auth =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", r.user, r.password));
    let secrets = [r.password.as_str(), auth.as_str()];
    for s in secrets {
        assert!(!contains(printed, s), "a secret was printed");
    }
    let mut files = Vec::new();
    files_under(p.repo.path(), &mut files);
    assert!(
        files.iter().any(|f| f.starts_with(p.repo.store())),
        "the store holds evidence"
    );
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        for s in secrets {
            assert!(
                !contains(&bytes, s),
                "a secret is stored in {}",
                f.display()
            );
        }
    }
}

fn image_of(p: &Project, sha: &str) -> (String, String) {
    let build = p.repo.predicate(&format!("build/{sha}/build.json"));
    let image = &build["images"][0];
    (
        image["image_id"].as_str().unwrap().to_owned(),
        image["repo_digest"].as_str().unwrap().to_owned(),
    )
}

/// Whether the registry holds the manifest, asked with curl (its own TLS and basic
/// authentication, not ledger's).
fn in_registry(r: &AuthRegistry, reference: &str) -> bool {
    let (repo, digest) = reference.split_once('@').unwrap();
    let name = repo.split_once('/').unwrap().1;
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-I"])
        .arg("--cacert")
        .arg(&r.ca)
        .args(["--netrc-file", "/dev/null", "-K", "-"])
        .args([
            "-H",
            "Accept: application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json",
        ])
        .arg(format!("https://{}/v2/{name}/manifests/{digest}", r.host))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            // The credential goes through stdin, not the argument list.
            writeln!(
                c.stdin.take().unwrap(),
                "user = \"{}:{}\"",
                r.user,
                r.password
            )?;
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8_lossy(&out.stdout) == "200"
}

#[test]
fn the_pipeline_runs_against_an_authenticated_tls_registry_and_keeps_its_secrets() {
    let Some(_) = engine() else { return };
    let Some(r) = auth_registry() else { return };
    let s = Setup::new(&r);
    let p = Project::new(Some(r.host.clone()));
    let ledger = Runner {
        p: &p,
        printed: Default::default(),
    };
    let (good, ca) = (&s.logged_in, &s.right_ca);
    let (promoted, later, unpromoted) = (p.sha(1), p.sha(2), p.sha(3));

    // Without a login, and with a wrong one, the push is refused: exit 5, the
    // registry named, `docker login` the hint.
    for stage in ["commit", "integration"] {
        assert_code(&ledger.stage(good, ca, stage, &promoted), 0);
    }
    for config in [&s.logged_out, &s.wrong_login] {
        let out = ledger.stage(config, ca, "build", &promoted);
        assert_refused_with_login_hint(&out, &r.host);
        assert!(text(&out).contains("refused to push"), "{}", text(&out));
    }

    // Logged in: the whole pipeline, twice, and a third release published only.
    for sha in [&promoted, &later, &unpromoted] {
        for stage in [
            "commit",
            "integration",
            "build",
            "publish",
            "deploy",
            "smoke",
            "decide",
        ] {
            if sha == &promoted && matches!(stage, "commit" | "integration") {
                continue;
            }
            assert_code(&ledger.stage(good, ca, stage, sha), 0);
            if sha == &unpromoted && stage == "publish" {
                break;
            }
        }
    }
    let (promoted_id, promoted_ref) = image_of(&p, &promoted);
    assert!(in_registry(&r, &promoted_ref), "{promoted_ref} was pushed");

    // Replay pulls the promoted release by digest: refused without a login, done with it.
    let engine = engine().unwrap();
    runtime()
        .block_on(engine.remove_image(&promoted_id))
        .unwrap();
    assert!(runtime()
        .block_on(engine.inspect_image(&promoted_id))
        .unwrap()
        .is_none());
    let replay = ["replay", promoted.as_str(), "--current-config"];
    let out = ledger.run(&s.logged_out, ca, &replay);
    assert_refused_with_login_hint(&out, &r.host);
    assert!(text(&out).contains("refused to pull"), "{}", text(&out));
    assert_code(&ledger.run(good, ca, &replay), 0);

    assert_prune_and_doctor_verify_the_registry(&ledger, &s, &r, &unpromoted);
    assert_code(&ledger.run(good, ca, &["verify", &promoted]), 0);
    assert_no_secret_anywhere(&p, &r, &ledger.printed.borrow());
}

/// prune and doctor refuse the registry's certificate with a wrong CA or none, ask
/// for a login without one, and with both delete the unpromoted release's manifest.
fn assert_prune_and_doctor_verify_the_registry(
    ledger: &Runner<'_>,
    s: &Setup,
    r: &AuthRegistry,
    unpromoted: &str,
) {
    let (_, gone) = image_of(ledger.p, unpromoted);
    let dry = ["prune", "--min-age-days", "0"];
    for certs in [&s.wrong_ca, &s.no_ca] {
        assert_certificate_refused(&ledger.run(&s.logged_in, certs, &dry), &r.host);
        let out = ledger.run(&s.logged_in, certs, &["doctor"]);
        assert_certificate_refused(&out, &r.host);
        assert!(text(&out).contains("FAIL registry"), "{}", text(&out));
    }
    assert_refused_with_login_hint(&ledger.run(&s.logged_out, &s.right_ca, &dry), &r.host);
    assert_refused_with_login_hint(
        &ledger.run(&s.wrong_login, &s.right_ca, &["doctor"]),
        &r.host,
    );
    assert!(in_registry(r, &gone), "nothing was deleted so far");

    let out = ledger.run(&s.logged_in, &s.right_ca, &["doctor"]);
    assert!(
        text(&out).contains(&format!("ok   registry       {}", r.host)),
        "{}",
        text(&out)
    );
    let toml = ledger.p.repo.path().join("ledger.toml");
    let mut config = std::fs::read_to_string(&toml).unwrap();
    config.push_str("\n[prune]\nthreshold = 10\n");
    std::fs::write(&toml, config).unwrap();
    let out = ledger.run(
        &s.logged_in,
        &s.right_ca,
        &["prune", "--min-age-days", "0", "--apply", "--json"],
    );
    assert_code(&out, 0);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let deleted = report.to_string();
    assert!(deleted.contains(&gone), "{deleted}");
    assert!(
        !in_registry(r, &gone),
        "{gone} was deleted from the registry"
    );
}

/// A credential helper on `PATH` (`docker-credential-NAME get`, as `credsStore` and
/// `credHelpers` name them) that answers with `answer` and exits with `code`.
fn helper(dir: &Path, name: &str, answer: &str, code: u8) {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(format!("docker-credential-{name}"));
    std::fs::write(
        &path,
        format!("#!/bin/sh\nread server\ncat <<'EOF'\n{answer}\nEOF\nexit {code}\n"),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn credential_helpers_supply_the_login_and_their_failures_stay_quiet() {
    let Some(_) = engine() else { return };
    let Some(r) = auth_registry() else { return };
    let s = Setup::new(&r);
    let p = Project::new(Some(r.host.clone()));
    let dir = tempfile::tempdir().unwrap();
    let secret = format!(
        r#"{{"ServerURL":"{}","Username":"{}","Secret":"{}"}}"#,
        r.host, r.user, r.password
    );
    helper(dir.path(), "ledger-store", &secret, 0);
    helper(dir.path(), "ledger-broken", &secret, 1);
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let doctor = |config: &str| {
        let docker_config = dir.path().join("config");
        std::fs::create_dir_all(&docker_config).unwrap();
        std::fs::write(docker_config.join("config.json"), config).unwrap();
        let (docker_config, certs) = (
            docker_config.display().to_string(),
            s.right_ca.display().to_string(),
        );
        p.repo.ledger_env(
            &["doctor"],
            &[
                ("PATH", path.as_str()),
                ("DOCKER_CONFIG", &docker_config),
                ("LEDGER_REGISTRY_CERTS_DIR", &certs),
            ],
        )
    };
    let out = doctor(r#"{"credsStore":"ledger-store"}"#);
    assert!(
        text(&out).contains(&format!("ok   registry       {}", r.host)),
        "{}",
        text(&out)
    );
    // A helper that fails is named; what it printed (here: the secret) is not shown.
    let out = doctor(&format!(
        r#"{{"credHelpers":{{"{}":"ledger-broken"}}}}"#,
        r.host
    ));
    assert_code(&out, 5);
    let shown = text(&out);
    assert!(
        shown.contains("the credential helper docker-credential-ledger-broken failed"),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("docker login {}", r.host)),
        "{shown}"
    );
    assert!(
        !shown.contains(&r.password),
        "the helper's output was shown"
    );
}
