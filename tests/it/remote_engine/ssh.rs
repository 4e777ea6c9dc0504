//! An environment whose engine is `ssh://user@host:port`: a local `sshd` on loopback
//! (`.ci/sshd.sh`) in front of the machine's engine, reached the way `DOCKER_HOST=ssh://…`
//! reaches one, with the key in an ssh agent. The pipeline deploys, smokes and
//! decides through it and the evidence names the engine (without the user); without
//! the key the deploy is exit 5 naming the engine, and nothing is recorded; a host
//! presenting another key than the one known for it is refused.

use crate::project::{engine, environment_toml, Project};
use crate::{assert_code, text};
use std::process::Command;

/// `(endpoint, agent socket)` of the sshd `.ci/run` started.
fn ssh_engine() -> Option<(String, String)> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let found = var("LEDGER_TEST_SSH_ENGINE").zip(var("LEDGER_TEST_SSH_AUTH_SOCK"));
    if found.is_none() {
        assert!(
            std::env::var_os("LEDGER_REQUIRE_DOCKER").is_none(),
            "LEDGER_REQUIRE_DOCKER is set but LEDGER_TEST_SSH_ENGINE(_AUTH_SOCK) is not; run `bash .ci/run`"
        );
        eprintln!("LEDGER_TEST_SSH_ENGINE not set; skipping");
    }
    found
}

#[test]
fn an_engine_over_ssh_deploys_with_the_agents_key_and_refuses_without_it() {
    let Some(_) = engine() else { return };
    let Some((endpoint, agent)) = ssh_engine() else {
        return;
    };
    let p = Project::new(None);
    let env = environment_toml(
        "production",
        p.port,
        "127.0.0.1",
        &format!("engine = \"{endpoint}\""),
        "",
    );
    super::write_config(&p, &[env]);
    let s = p.sha(1);
    p.run_through(&s, "publish");

    // No key: ssh cannot log in, the deploy says which engine, nothing is recorded.
    let deploy = ["stage", "deploy", "--sha", s.as_str()];
    let out = p.repo.ledger_env(&deploy, &[("SSH_AUTH_SOCK", "")]);
    assert_code(&out, 5);
    let shown = text(&out);
    let host = endpoint
        .rsplit_once('@')
        .map_or(endpoint.as_str(), |(_, h)| h);
    assert!(
        shown.contains(&format!("Docker engine at ssh://{host}")),
        "{shown}"
    );
    assert!(!p.repo.stored().iter().any(|k| k.contains("/deployment")));

    let with_key = [("SSH_AUTH_SOCK", agent.as_str())];
    for stage in ["deploy", "smoke", "decide"] {
        let out = p.repo.ledger_env(&["stage", stage, "--sha", &s], &with_key);
        assert_code(&out, 0);
    }
    let deployment = p.repo.predicate(&format!("infra/{s}/deployment.json"));
    assert_eq!(deployment["engine"], format!("ssh://{host}"));
    assert!(p.get("/health").is_some_and(|r| r.contains("ok")));
    let out = p.repo.ledger_env(&["doctor"], &with_key);
    let ok = format!("ok   env engine     `production`: ssh://{host} answers");
    assert!(text(&out).contains(&ok), "{}", text(&out));
    assert_an_impostor_host_key_is_refused(&p, host, &with_key);
}

/// The user's known_hosts file, where ssh looks it up (ssh takes the home folder
/// from the user database, not from `HOME`).
fn known_hosts(host: &str) -> std::path::PathBuf {
    let out = Command::new("ssh").args(["-G", host]).output().unwrap();
    let config = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = config
        .lines()
        .find_map(|l| l.strip_prefix("userknownhostsfile "))
        .expect("ssh -G names the known hosts file");
    let first = line.split_whitespace().next().unwrap();
    let home = std::env::var("HOME").unwrap_or_default();
    first.replacen('~', &home, 1).into()
}

/// Puts the known hosts file back as it was, whatever happened.
struct Restore(std::path::PathBuf, Vec<u8>);

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.0, &self.1);
    }
}

/// With the host's entry in known_hosts replaced by another key, ssh refuses the
/// host and `doctor` fails the environment's engine with exit 5.
fn assert_an_impostor_host_key_is_refused(p: &Project, host: &str, with_key: &[(&str, &str)]) {
    let path = known_hosts(host);
    let original = std::fs::read(&path).unwrap();
    let _restore = Restore(path.clone(), original.clone());
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("impostor");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", text(&made));
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    // Entries may be hashed (Debian's HashKnownHosts): ssh-keygen finds them.
    let removed = Command::new("ssh-keygen")
        .args(["-R", host, "-f"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(removed.status.success(), "{}", text(&removed));
    let mut fields = public.split_whitespace();
    let (kind, body) = (fields.next().unwrap(), fields.next().unwrap());
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut file, format!("{host} {kind} {body}\n").as_bytes()).unwrap();
    let out = p.repo.ledger_env(&["doctor"], with_key);
    assert_code(&out, 5);
    assert!(text(&out).contains("FAIL env engine"), "{}", text(&out));
}
