//! Bearer tokens against a real token service: Debian's docker-registry with token
//! authentication, its tokens issued by `.ci/token-server.py` (ES256 JWTs) to the
//! same user and password as the basic registry.

use super::{assert_no_secret_anywhere, assert_refused_with_login_hint, auth_registry, image_of};
use super::{AuthRegistry, Runner, Setup};
use crate::project::{engine, Project};
use crate::{assert_code, text};
use std::process::Command;

/// The token-authenticated registry `.ci/run` started beside the basic one (same CA,
/// same user and password, checked by its token service).
fn token_registry(r: &AuthRegistry) -> Option<AuthRegistry> {
    let host = std::env::var("LEDGER_TEST_TOKEN_REGISTRY").ok();
    if host.is_none() {
        assert!(
            std::env::var_os("LEDGER_REQUIRE_DOCKER").is_none(),
            "LEDGER_REQUIRE_DOCKER is set but LEDGER_TEST_TOKEN_REGISTRY is not; run `bash .ci/run`"
        );
        eprintln!("LEDGER_TEST_TOKEN_REGISTRY not set; skipping");
    }
    Some(AuthRegistry {
        host: host?,
        user: r.user.clone(),
        password: r.password.clone(),
        ca: r.ca.clone(),
    })
}

/// Whether the token registry holds the manifest, asked with curl: a pull token
/// from the realm its challenge names, then the manifest with that token.
fn in_token_registry(r: &AuthRegistry, reference: &str) -> bool {
    let (repo, digest) = reference.split_once('@').unwrap();
    let name = repo.split_once('/').unwrap().1;
    let curl = |args: &[&str], stdin: String| {
        let mut c = Command::new("curl")
            .args(["-s", "--cacert"])
            .arg(&r.ca)
            .args(["--netrc-file", "/dev/null", "-K", "-"])
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        c.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        String::from_utf8(c.wait_with_output().unwrap().stdout).unwrap()
    };
    let url = format!("https://{}/v2/{name}/manifests/{digest}", r.host);
    let headers = curl(&["-I", &url], String::new());
    let challenge = headers
        .lines()
        .find_map(|l| l.strip_prefix("www-authenticate: Bearer "))
        .expect("a bearer challenge");
    let param = |k: &str| {
        challenge
            .split(&format!("{k}=\""))
            .nth(1)
            .and_then(|v| v.split('"').next())
            .unwrap()
            .to_owned()
    };
    let token_url = format!(
        "{}?service={}&scope=repository:{name}:pull",
        param("realm"),
        param("service")
    );
    let answer = curl(
        &[&token_url],
        format!("user = \"{}:{}\"\n", r.user, r.password),
    );
    let token: serde_json::Value = serde_json::from_str(&answer).unwrap();
    let auth = format!(
        "header = \"Authorization: Bearer {}\"\n",
        token["token"].as_str().unwrap()
    );
    let code = curl(
        &[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-I",
            "-H",
            "Accept: application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json",
            &url,
        ],
        auth,
    );
    code == "200"
}

/// Bearer tokens: build pushes to a token-authenticated registry, and doctor and
/// prune (presence, then deletion, each with its own token scope) get their tokens
/// from its token service with the stored login; a wrong login or none is refused.
#[test]
fn bearer_tokens_from_a_token_service_serve_doctor_and_prune() {
    let Some(_) = engine() else { return };
    let Some(basic) = auth_registry() else { return };
    let Some(r) = token_registry(&basic) else {
        return;
    };
    let s = Setup::new(&basic);
    for dir in [&s.logged_in, &s.wrong_login] {
        // The same user and password, stored for the token registry.
        let config = std::fs::read_to_string(dir.join("config.json")).unwrap();
        std::fs::write(
            dir.join("config.json"),
            config.replace(&basic.host, &r.host),
        )
        .unwrap();
    }
    std::fs::create_dir_all(s.right_ca.join(&r.host)).unwrap();
    std::fs::copy(&r.ca, s.right_ca.join(&r.host).join("ca.crt")).unwrap();
    let p = Project::new(Some(r.host.clone()));
    let ledger = Runner {
        p: &p,
        printed: Default::default(),
    };
    let (good, ca) = (&s.logged_in, &s.right_ca);
    let sha = p.sha(1);
    for stage in ["commit", "integration", "build", "publish"] {
        assert_code(&ledger.stage(good, ca, stage, &sha), 0);
    }
    let (_, pushed) = image_of(&p, &sha);
    assert!(in_token_registry(&r, &pushed), "{pushed} was pushed");

    let out = ledger.run(good, ca, &["doctor"]);
    assert!(
        text(&out).contains(&format!("ok   registry       {}", r.host)),
        "{}",
        text(&out)
    );
    for config in [&s.wrong_login, &s.logged_out] {
        let out = ledger.run(config, ca, &["doctor"]);
        assert_refused_with_login_hint(&out, &r.host);
        assert!(text(&out).contains("token service"), "{}", text(&out));
    }

    let toml = p.repo.path().join("ledger.toml");
    let mut config = std::fs::read_to_string(&toml).unwrap();
    config.push_str("\n[prune]\nthreshold = 10\n");
    std::fs::write(&toml, config).unwrap();
    let prune = ["prune", "--min-age-days", "0", "--apply", "--json"];
    let out = ledger.run(good, ca, &prune);
    assert_code(&out, 0);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&pushed),
        "{}",
        text(&out)
    );
    assert!(!in_token_registry(&r, &pushed), "{pushed} was deleted");
    assert_no_secret_anywhere(&p, &basic, &ledger.printed.borrow());
}
