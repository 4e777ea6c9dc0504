//! Engines that cannot be trusted or used as written: refused with the fix named,
//! and nothing recorded or started.

use super::{configure_two_engines, on_engine, remote, write_config, Remote};
use crate::project::{environment_toml, free_port, Project};
use crate::{assert_code, text};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Client material in a folder of its own: `ca.pem` from `ca`, `cert.pem` and
/// `key.pem` from `client` (each `None`: left out).
fn certs_folder(root: &Path, name: &str, ca: Option<&Path>, client: Option<&Path>) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    if let Some(ca) = ca {
        std::fs::copy(ca.join("ca.pem"), dir.join("ca.pem")).unwrap();
    }
    if let Some(client) = client {
        std::fs::copy(client.join("cert.pem"), dir.join("cert.pem")).unwrap();
        std::fs::copy(client.join("key.pem"), dir.join("key.pem")).unwrap();
    }
    dir
}

/// A CA and a client certificate it signed, in Docker's layout, made by openssl:
/// neither is known to the second engine.
fn stranger(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "openssl {args:?}: {}", text(&out));
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &[
            "-days",
            "1",
            "-subj",
            "/CN=stranger CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
    ]
    .concat());
    run(&[
        &["req", "-new"][..],
        &ec,
        &[
            "-subj",
            "/CN=stranger",
            "-keyout",
            "key.pem",
            "-out",
            "client.csr",
        ],
    ]
    .concat());
    run(&[
        "x509",
        "-req",
        "-in",
        "client.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-out",
        "cert.pem",
    ]);
    dir.to_path_buf()
}

/// The stored keys of deployments to production.
fn production_deployments(p: &Project) -> Vec<String> {
    p.repo
        .stored()
        .into_iter()
        .filter(|k| k.starts_with("infra/") && k.contains("/deployment") && !k.contains(".canary"))
        .collect()
}

#[test]
fn an_engine_that_cannot_be_trusted_or_reached_as_written_is_refused_and_nothing_recorded() {
    let Some(r) = remote(true) else {
        return;
    };
    let Remote { t, p } = &r;
    let dirs = tempfile::tempdir().unwrap();
    let other = stranger(&dirs.path().join("stranger"));
    let wrong_ca = certs_folder(dirs.path(), "wrong-ca", Some(&other), Some(&t.certs));
    let unknown_client = certs_folder(dirs.path(), "unknown-client", Some(&t.certs), Some(&other));
    let no_key = certs_folder(dirs.path(), "no-key", Some(&t.certs), Some(&t.certs));
    std::fs::remove_file(no_key.join("key.pem")).unwrap();
    let canary_port = free_port();
    configure_two_engines(p, t, canary_port, &t.certs);
    let s = p.sha(2);
    p.run_through(&s, "publish");
    let deploy = ["stage", "deploy", "--sha", &s, "--env", "production"];

    // The engine's certificate does not verify against a CA that is not its own;
    // the engine refuses a client certificate it did not issue. Both exit 5 naming
    // the engine, the hint naming the setting.
    for (certs, says) in [(&wrong_ca, "certificate"), (&unknown_client, "")] {
        configure_two_engines(p, t, canary_port, certs);
        let out = p.ledger(&deploy);
        assert_code(&out, 5);
        let shown = text(&out);
        let unreachable = format!("Docker engine at {} is unreachable", t.endpoint);
        assert!(shown.contains(&unreachable), "{shown}");
        assert!(
            shown.contains(says) && shown.contains("engine_certs"),
            "{shown}"
        );
    }

    // Written wrong: exit 2 with the fix, before any connection.
    let toml_lines = [
        (on_engine(t, &no_key), "cannot read the client key"),
        (
            "engine = \"tcp://192.0.2.10:2376\"".to_owned(),
            "must use TLS with a client certificate",
        ),
        (
            "engine = \"ssh://deploy:secret@192.0.2.10\"".to_owned(),
            "a password in the URL",
        ),
    ];
    for (lines, says) in toml_lines {
        write_config(
            p,
            &[
                environment_toml("canary", canary_port, "127.0.0.1", "", ""),
                environment_toml("production", p.port, "127.0.0.1", &lines, ""),
            ],
        );
        let out = p.ledger(&deploy);
        assert_code(&out, 2);
        assert!(text(&out).contains(says), "{}", text(&out));
        assert!(text(&out).contains("ledger.toml"), "{}", text(&out));
    }
    assert_eq!(production_deployments(p), Vec::<String>::new());
    assert!(t.running(&p.name).is_empty());
}

/// A project without a registry cannot deploy to an engine that is not the one it
/// built on: the image is not there (exit 5), and nothing starts or is recorded.
#[test]
fn without_a_registry_another_engine_has_no_image_to_run() {
    let Some(r) = remote(false) else {
        return;
    };
    let Remote { t, p } = &r;
    configure_two_engines(p, t, free_port(), &t.certs);
    let s = p.sha(3);
    p.run_through(&s, "publish");
    let out = p.ledger(&["stage", "deploy", "--sha", &s, "--env", "production"]);
    assert_code(&out, 5);
    assert!(text(&out).contains("is not available"), "{}", text(&out));
    assert_eq!(production_deployments(p), Vec::<String>::new());
    assert!(t.running(&p.name).is_empty());
}
