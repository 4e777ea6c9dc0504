//! Attestations attached and read back on registries that want a login and serve TLS
//! from their own CA (`.ci/auth-registry.sh`: Debian's docker-registry behind
//! htpasswd, and one behind a token service): with the credential `docker login`
//! stored, the round trip works (the push scope included); without one, every call
//! is `DockerError::Unauthorized` naming the registry and `docker login`, and no
//! error shows the password.
//!
//! One test, run in a binary of its own: it points `DOCKER_CONFIG` and
//! `LEDGER_REGISTRY_CERTS_DIR` (read by the process, as `ledger` reads them) at the
//! login and the CA it sets up. Skipped when `LEDGER_TEST_AUTH_REGISTRY` is not set,
//! unless `LEDGER_REQUIRE_DOCKER=1`.

mod common;

use common::{engine, envelope, pushed_image, runtime, service, unique, PROVENANCE, VSA};
use ledger_docker::{Attestation, DigestRef, DockerError, Registry};
use std::path::Path;
use std::process::{Command, Stdio};

struct Login {
    user: String,
    password: String,
    ca: String,
}

/// `docker login` to `host` in the Docker configuration `dir`, as a user does.
fn docker_login(dir: &Path, host: &str, login: &Login) {
    let mut child = Command::new("docker")
        .env("DOCKER_CONFIG", dir)
        .args(["login", "--username", &login.user, "--password-stdin", host])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(login.password.as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "docker login {host}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn attestations_round_trip_with_a_login_and_are_refused_without_one() {
    let Some(engine) = engine() else { return };
    let Some(basic) = service("LEDGER_TEST_AUTH_REGISTRY") else {
        return;
    };
    let Some(token) = service("LEDGER_TEST_TOKEN_REGISTRY") else {
        return;
    };
    let login = Login {
        user: service("LEDGER_TEST_AUTH_REGISTRY_USER").unwrap(),
        password: service("LEDGER_TEST_AUTH_REGISTRY_PASSWORD").unwrap(),
        ca: service("LEDGER_TEST_AUTH_REGISTRY_CA").unwrap(),
    };
    let dirs = tempfile::tempdir().unwrap();
    let (logged_in, logged_out, certs) = (
        dirs.path().join("login"),
        dirs.path().join("no-login"),
        dirs.path().join("certs"),
    );
    for host in [&basic, &token] {
        std::fs::create_dir_all(certs.join(host)).unwrap();
        std::fs::copy(&login.ca, certs.join(host).join("ca.crt")).unwrap();
        docker_login(&logged_in, host, &login);
    }
    std::fs::create_dir_all(&logged_out).unwrap();
    std::env::set_var("LEDGER_REGISTRY_CERTS_DIR", &certs);
    std::env::set_var("DOCKER_CONFIG", &logged_in);
    let rt = runtime();
    let images: Vec<DigestRef> = [&basic, &token]
        .iter()
        .map(|host| {
            let repo = format!("attach-it/auth-{}", unique());
            let image = rt.block_on(pushed_image(&engine, host, &repo));
            rt.block_on(round_trip(&image));
            image
        })
        .collect();
    std::env::set_var("DOCKER_CONFIG", &logged_out);
    for image in &images {
        rt.block_on(refused_without_login(image, &login.password));
    }
}

/// Two envelopes attached and read back byte for byte; attaching again adds nothing.
async fn round_trip(image: &DigestRef) {
    let registry = Registry::new();
    let (one, two) = (envelope("one", PROVENANCE), envelope("two", VSA));
    let both = [
        Attestation {
            envelope: &one,
            predicate_type: PROVENANCE,
        },
        Attestation {
            envelope: &two,
            predicate_type: VSA,
        },
    ];
    let attached = registry.attach(image, &both).await.unwrap();
    assert_eq!(attached.added, 2, "{}", image.host);
    let read = registry.attestations(image).await.unwrap();
    let got: Vec<_> = read
        .iter()
        .map(|e| (e.bytes.as_slice(), e.predicate_type.as_deref()))
        .collect();
    assert_eq!(
        got,
        vec![
            (one.as_slice(), Some(PROVENANCE)),
            (two.as_slice(), Some(VSA))
        ],
        "{}",
        image.host
    );
    let again = Registry::new().attach(image, &both).await.unwrap();
    assert_eq!(
        (again.added, again.manifest_digest),
        (0, attached.manifest_digest)
    );
    let by_tag = format!("{}/{}:t1", image.host, image.name);
    assert_eq!(&registry.resolve(&by_tag).await.unwrap(), image);
}

/// Without a login every call is refused, naming the registry and `docker login`.
async fn refused_without_login(image: &DigestRef, password: &str) {
    let registry = Registry::new();
    let one = envelope("one", PROVENANCE);
    let attestation = Attestation {
        envelope: &one,
        predicate_type: PROVENANCE,
    };
    let errors = [
        registry.attach(image, &[attestation]).await.unwrap_err(),
        registry.attestations(image).await.unwrap_err(),
        registry
            .resolve(&format!("{}/{}:t1", image.host, image.name))
            .await
            .unwrap_err(),
    ];
    for e in errors {
        let shown = format!("{e} {:?} {}", e, e.hint().unwrap_or_default());
        assert!(
            matches!(&e, DockerError::Unauthorized { host, .. } if *host == image.host),
            "{shown}"
        );
        assert!(
            shown.contains(&format!("registry {}", image.host)),
            "{shown}"
        );
        assert!(
            shown.contains(&format!("docker login {}", image.host)),
            "{shown}"
        );
        assert!(!shown.contains(password), "an error shows the password");
    }
}
