//! The wrapped command runs where the signing key cannot be reached: a
//! command that tries every way we know (its parent's and every ancestor's and every
//! visible process's environment, the key files) gets nothing it can sign with, under
//! every way of giving ledger the key; what a command prints of the key is masked;
//! exit codes, workspace and loopback network are what they were; a policy can
//! require isolation. When this kernel refuses namespaces these tests fail, naming
//! the step, rather than pass without isolating anything.

use crate::{assert_code, text, Repo, SHA};
use base64::Engine as _;
use ledger_core::SigningKey;
use serde_json::{json, Value};
use std::path::Path;

/// The attacker: collects everything it can reach into `loot.txt` in the workspace
/// and prints it. `SPY_TARGET` names the key file, as a CI job's script would know it.
const SPY: &str = r#"
out=loot.txt
: > "$out"
grab() { echo "== $1" >> "$out"; tr '\000' '\n' < "$1" >> "$out" 2>/dev/null; echo >> "$out"; }
grab "/proc/$PPID/environ"
pid=$$
while [ -n "$pid" ] && [ "$pid" != 0 ]; do
  grab "/proc/$pid/environ"
  grab "/proc/$pid/cmdline"
  pid=$(sed -n 's/^PPid:[[:space:]]*//p' "/proc/$pid/status" 2>/dev/null)
done
for f in /proc/[0-9]*/environ; do grab "$f"; done
for f in .ledger/* .ledger/.[!.]*; do [ -f "$f" ] && grab "$f"; done
[ -n "$SPY_TARGET" ] && grab "$SPY_TARGET"
[ -n "$LEDGER_SIGNING_KEY" ] && echo "inherited: $LEDGER_SIGNING_KEY" >> "$out"
set -- /proc/[0-9]*
echo "processes: $#" >> "$out"
cat "$out"
"#;

/// The command trying to lift the masks before reading the keys.
/// Tries every way to lift the masks, says which worked, then copies what it can
/// read into the workspace (the terminal and the stored log mask key text, a file
/// the command writes does not).
const UNMASK: &str = "for m in .ledger release.pem; do \
                        umount $m 2>&1 && echo LIFTED $m; umount -l $m 2>&1 && echo LIFTED $m; \
                      done; cat .ledger/*.key release.pem > unmask-loot.txt 2>&1; \
                      echo READ $(wc -c < unmask-loot.txt)";

const COMMIT: &[&str] = &["stage", "commit", "--sha", SHA];

/// `ledger stage commit FLAGS -- SHELL -c SCRIPT` with `env`.
fn run(
    repo: &Repo,
    flags: &[&str],
    shell: &str,
    script: &str,
    env: &[(&str, &str)],
) -> std::process::Output {
    let mut args = COMMIT.to_vec();
    args.extend_from_slice(flags);
    args.extend_from_slice(&["--", shell, "-c", script]);
    repo.ledger_env(&args, env)
}

fn pem(repo: &Repo) -> String {
    std::fs::read_to_string(repo.path().join(".ledger/test.key")).unwrap()
}

/// The base64 body of a PEM key, its lines joined.
pub(crate) fn body(pem: &str) -> String {
    pem.lines().filter(|l| !l.starts_with("-----")).collect()
}

/// Every stored object, envelope payloads decoded, as text.
pub(crate) fn everything_stored(repo: &Repo) -> String {
    let mut all = String::new();
    for key in repo.stored() {
        let bytes = repo.read_object(&key);
        all.push_str(&String::from_utf8_lossy(&bytes));
        if let Ok(env) = serde_json::from_slice::<Value>(&bytes) {
            if let Some(p) = env["payload"].as_str() {
                let payload = base64::engine::general_purpose::STANDARD.decode(p);
                all.push_str(&String::from_utf8_lossy(&payload.unwrap_or_default()));
            }
        }
    }
    all
}

/// Fails if `haystack` holds the key: its base64 body, or any PEM block or
/// base64-looking token that loads as a key with the real key's id.
#[track_caller]
pub(crate) fn assert_no_key(haystack: &str, real: &SigningKey, real_pem: &str, what: &str) {
    assert!(
        !haystack.contains(&body(real_pem)),
        "{what} holds the key's base64 body:\n{haystack}"
    );
    let mut candidates: Vec<String> = haystack
        .split("-----BEGIN")
        .skip(1)
        .filter_map(|rest| {
            let end = rest.find("-----END")?;
            Some(format!(
                "-----BEGIN{}-----END PRIVATE KEY-----\n",
                &rest[..end]
            ))
        })
        .collect();
    let b64 = |c: char| c.is_ascii_alphanumeric() || "+/=".contains(c);
    for token in haystack.split(|c: char| !b64(c)).filter(|t| t.len() >= 40) {
        candidates.push(format!(
            "-----BEGIN PRIVATE KEY-----\n{token}\n-----END PRIVATE KEY-----\n"
        ));
    }
    for c in candidates {
        if let Ok(key) = SigningKey::from_pem(&c) {
            assert_ne!(key.key_id(), real.key_id(), "{what} yields the signing key");
        }
    }
}

/// Fails loudly when ledger could not isolate the command here.
#[track_caller]
fn assert_isolated(repo: &Repo, out: &std::process::Output, attempt_key: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("cannot isolate"),
        "NAMESPACES UNAVAILABLE ON THIS MACHINE: the isolation tests cannot show anything \
         here.\n{stderr}"
    );
    let p = repo.predicate(attempt_key);
    assert_eq!(p["command"]["isolation"], "namespaces", "{p}");
}

fn attempt_key(n: u32) -> String {
    match n {
        1 => format!("commit/{SHA}/commit.json"),
        _ => format!("commit/{SHA}/commit.attempt-{n}.json"),
    }
}

/// Runs the spy as the commit stage with `env`; checks what it got.
fn spy_gets_nothing(repo: &Repo, attempt: u32, extra_args: &[&str], env: &[(&str, &str)]) {
    let real_pem = pem(repo);
    let real = SigningKey::from_pem(&real_pem).unwrap();
    std::fs::write(repo.path().join("spy.sh"), SPY).unwrap();
    let mut args = COMMIT.to_vec();
    args.extend_from_slice(extra_args);
    args.extend_from_slice(&["--", "sh", "spy.sh"]);
    let out = repo.ledger_env(&args, env);
    assert_code(&out, 0);
    assert_isolated(repo, &out, &attempt_key(attempt));
    let loot = std::fs::read_to_string(repo.path().join("loot.txt")).unwrap();
    // The spy really looked: it saw its own namespace's processes, and nothing else.
    assert!(loot.contains("== /proc/1/environ"), "{loot}");
    assert!(loot.contains("processes: 2\n"), "{loot}");
    assert!(!loot.contains("inherited:"), "{loot}");
    assert_no_key(&loot, &real, &real_pem, "what the command collected");
    assert_no_key(&text(&out), &real, &real_pem, "the terminal");
    assert_no_key(&everything_stored(repo), &real, &real_pem, "the store");
    // Nor does it get the release-zone or the policy owner's key `ledger init` made.
    for other in [".ledger/release.key", ".ledger/policy-owner.key"] {
        let other_pem = std::fs::read_to_string(repo.path().join(other)).unwrap();
        let other_key = SigningKey::from_pem(&other_pem).unwrap();
        assert_no_key(&loot, &other_key, &other_pem, other);
    }
}

#[test]
fn the_command_cannot_reach_a_key_given_as_pem_text() {
    let repo = Repo::new();
    let pem = pem(&repo);
    spy_gets_nothing(&repo, 1, &[], &[("LEDGER_SIGNING_KEY", &pem)]);
}

#[test]
fn the_command_cannot_reach_a_key_named_by_path_outside_the_repository() {
    let repo = Repo::new();
    let elsewhere = tempfile::tempdir().unwrap();
    let path = elsewhere.path().join("ci-signing.pem");
    std::fs::copy(repo.path().join(".ledger/test.key"), &path).unwrap();
    let path = path.to_str().unwrap();
    let env = [("LEDGER_SIGNING_KEY", path), ("SPY_TARGET", path)];
    spy_gets_nothing(&repo, 1, &[], &env);
    let loot = std::fs::read_to_string(repo.path().join("loot.txt")).unwrap();
    assert!(loot.contains(&format!("== {path}")), "{loot}");
}

#[test]
fn the_command_cannot_reach_the_default_key_file_or_a_key_flag_file() {
    let repo = Repo::new();
    let target = [("SPY_TARGET", ".ledger/test.key")];
    spy_gets_nothing(&repo, 1, &[], &target);
    // --key names a file of its own, outside .ledger/.
    std::fs::copy(
        repo.path().join(".ledger/test.key"),
        repo.path().join("release.pem"),
    )
    .unwrap();
    let flag = [("SPY_TARGET", "release.pem")];
    spy_gets_nothing(&repo, 2, &["--key", "release.pem"], &flag);
    // The masks are locked: even root in the command's namespace cannot lift one.
    let out = run(&repo, &["--key", "release.pem"], "sh", UNMASK, &[]);
    assert_code(&out, 0);
    let shown = text(&out);
    assert!(shown.contains("READ "), "the command did not run: {shown}");
    assert!(!shown.contains("LIFTED"), "a mask was lifted: {shown}");
    let loot = std::fs::read_to_string(repo.path().join("unmask-loot.txt")).unwrap();
    for file in [
        ".ledger/test.key",
        ".ledger/release.key",
        ".ledger/policy-owner.key",
    ] {
        let key_pem = std::fs::read_to_string(repo.path().join(file)).unwrap();
        let key = SigningKey::from_pem(&key_pem).unwrap();
        assert_no_key(&loot, &key, &key_pem, &format!("{file} after umount"));
    }
}

#[test]
fn ledger_s_own_environment_holds_no_key_even_without_isolation() {
    let repo = Repo::new();
    let real_pem = pem(&repo);
    let real = SigningKey::from_pem(&real_pem).unwrap();
    // Without isolation the parent is ledger itself; its environment block is what
    // it was started with, so this shows the re-execution took the key out.
    let grab = "tr '\\000' '\\n' < /proc/$PPID/environ > parent-env.txt; grep -c LEDGER_SIGNING_KEY_FD parent-env.txt";
    let out = run(
        &repo,
        &["--no-isolation"],
        "sh",
        grab,
        &[("LEDGER_SIGNING_KEY", &real_pem)],
    );
    assert_code(&out, 0);
    let env = std::fs::read_to_string(repo.path().join("parent-env.txt")).unwrap();
    assert!(env.contains("LEDGER_SIGNING_KEY_FD="), "{env}");
    assert!(!env.contains("LEDGER_SIGNING_KEY="), "{env}");
    assert_no_key(&env, &real, &real_pem, "ledger's environment block");
    // And the key still signed: the evidence verifies.
    assert_code(&repo.ledger(&["verify", SHA]), 0);
}

#[test]
fn a_key_the_command_prints_is_masked_in_the_store_and_on_the_terminal() {
    let repo = Repo::new();
    let real_pem = pem(&repo);
    let real = SigningKey::from_pem(&real_pem).unwrap();
    let print = "cat .ledger/test.key; sed '1d;$d' .ledger/test.key | tr -d '\\n'; echo; \
                 echo \"one line: $(tr -d '\\n' < .ledger/test.key)\"";
    let out = run(&repo, &["--no-isolation"], "sh", print, &[]);
    assert_code(&out, 0);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("***"),
        "{}",
        text(&out)
    );
    assert_no_key(&text(&out), &real, &real_pem, "the terminal");
    assert_no_key(&everything_stored(&repo), &real, &real_pem, "the store");
    let p = repo.predicate(&attempt_key(1));
    assert_eq!(p["command"]["isolation"], "none", "{p}");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("warning"),
        "{}",
        text(&out)
    );
}

#[test]
fn exit_codes_workspace_and_loopback_network_are_unchanged() {
    let repo = Repo::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut got = String::new();
        std::io::Read::read_to_string(&mut conn, &mut got).unwrap();
        got
    });
    let script = format!(
        "mkdir -p out && echo made > out/file.txt && cat README.md && \
         echo hello > /dev/tcp/127.0.0.1/{port} && exit 42"
    );
    std::fs::write(repo.path().join("README.md"), "from the workspace\n").unwrap();
    let out = run(&repo, &[], "bash", &script, &[]);
    assert_code(&out, 1);
    assert_isolated(&repo, &out, &attempt_key(1));
    assert_eq!(server.join().unwrap(), "hello\n");
    let made = std::fs::read_to_string(repo.path().join("out/file.txt")).unwrap();
    assert_eq!(made, "made\n");
    assert!(String::from_utf8_lossy(&out.stdout).contains("from the workspace"));
    assert_eq!(repo.predicate(&attempt_key(1))["command"]["exit_code"], 42);

    // A command ended by a signal is recorded as today: no exit code.
    let out = run(&repo, &[], "sh", "kill -TERM $$", &[]);
    assert_code(&out, 1);
    assert!(text(&out).contains("a signal"), "{}", text(&out));
    assert_eq!(
        repo.predicate(&attempt_key(2))["command"]["exit_code"],
        Value::Null
    );
    // Passing, and a program that does not exist (exit 2, nothing recorded).
    assert_code(&run(&repo, &[], "sh", "true", &[]), 0);
    let mut missing = COMMIT.to_vec();
    missing.extend_from_slice(&["--", "no-such-program-ledger"]);
    let out = repo.ledger(&missing);
    assert_code(&out, 2);
    assert!(text(&out).contains("could not start"), "{}", text(&out));
    assert!(!repo.has_object(&attempt_key(4)));
}

/// The command holds no descriptor but its standard three, isolated or not: not
/// the store's folder, which ledger keeps open to read beneath it, not the
/// isolation's pipes, and not what ledger itself was started with: here the key
/// file, open on descriptor 7 as a job's script might leave it, which would reach
/// past every mount the isolation hides.
#[test]
fn the_command_inherits_no_descriptor_but_its_three() {
    let repo = Repo::new();
    // The second stage's gate reads the first's evidence before the command starts.
    assert_code(&run(&repo, &[], "sh", "true", &[]), 0);
    // `ls` lists what it inherited from the shell, and the folder it reads to list
    // them, left out below (a pipe, a redirection or a background job would open
    // descriptors in the shell while it lists).
    let script = "ls -l /proc/self/fd; cat /proc/self/fd/7 <&7 2>&1; true";
    let real_pem = pem(&repo);
    for flags in [&[][..], &["--no-isolation"][..]] {
        let mut args = COMMIT.to_vec();
        args.extend_from_slice(flags);
        args.extend_from_slice(&["--", "sh", "-c", script]);
        let ledger = repo.command(&args);
        // The same command started by a shell holding the key on descriptor 7.
        let mut cmd = std::process::Command::new("sh");
        cmd.args(["-c", r#"exec "$0" "$@" 7<.ledger/test.key"#])
            .arg(ledger.get_program())
            .args(ledger.get_args())
            .current_dir(repo.path());
        for (k, v) in ledger.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        let out = cmd.output().unwrap();
        assert_code(&out, 0);
        let stdout = String::from_utf8_lossy(&out.stdout);
        // `… 7 -> /path`: the number and where it leads, but `ls`'s own listing.
        let fds: Vec<(&str, &str)> = stdout
            .lines()
            .filter_map(|l| l.split_once(" -> "))
            .filter_map(|(l, to)| Some((l.rsplit(' ').next()?, to)))
            .filter(|(_, to)| !(to.starts_with("/proc/") && to.ends_with("/fd")))
            .collect();
        let numbers: Vec<&str> = fds.iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers, ["0", "1", "2"], "{flags:?}: {fds:?}");
        assert!(!stdout.contains(".artifacts"), "{flags:?}: {stdout}");
        assert!(
            !stdout.contains(&body(&real_pem)[..40]),
            "{flags:?}: {stdout}"
        );
    }
}

#[test]
fn a_policy_can_require_isolation() {
    let repo = Repo::new();
    repo.edit_policy(|p| {
        p["stages"]["integration"]["requires"][0]["conditions"]
            .as_array_mut()
            .unwrap()
            .push(json!({"path": "/command/isolation", "op": "eq", "value": "namespaces"}));
    });
    let integration = ["stage", "integration", "--sha", SHA, "--", "true"];
    assert_code(&run(&repo, &["--no-isolation"], "sh", "true", &[]), 0);
    let out = repo.ledger(&integration);
    assert_code(&out, 3);
    assert!(text(&out).contains("/command/isolation"), "{}", text(&out));
    // An isolated attempt meets it.
    let out = run(&repo, &[], "sh", "true", &[]);
    assert_code(&out, 0);
    assert_isolated(&repo, &out, &attempt_key(2));
    assert_code(&repo.ledger(&integration), 0);
}

#[test]
fn the_helper_is_not_part_of_the_grammar() {
    let out = Repo::new().ledger(&["--help"]);
    assert!(!text(&out).contains("__isolate"), "{}", text(&out));
    assert!(Path::new(env!("CARGO_BIN_EXE_ledger")).exists());
}

#[test]
fn where_namespaces_are_refused_ledger_warns_once_and_records_none() {
    // A user namespace whose own limit allows no further user namespace: the
    // helper's first step fails as it would on a host that forbids them.
    let repo = Repo::new();
    let out = std::process::Command::new("unshare")
        .args(["--user", "--map-root-user", "sh", "-c"])
        .arg("echo 0 > /proc/sys/user/max_user_namespaces && exec \"$@\"")
        .args(["sh", env!("CARGO_BIN_EXE_ledger")])
        .args(COMMIT)
        .arg("--allow-other-sha") // a scratch repository: no commit to check
        .args(["--", "sh", "-c", "echo ran"])
        .current_dir(repo.path())
        .env_remove("LEDGER_SIGNING_KEY")
        .env_remove("LEDGER_STORE")
        .env_remove("LEDGER_POLICY")
        .output()
        .expect("unshare (util-linux) is needed to simulate a host without namespaces");
    assert_code(&out, 0);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("cannot isolate").count(), 1, "{stderr}");
    assert!(
        stderr.contains("unshare(CLONE_NEWUSER|CLONE_NEWNS|CLONE_NEWPID): ENOSPC"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ran"));
    assert_eq!(
        repo.predicate(&attempt_key(1))["command"]["isolation"],
        "none"
    );
}

#[test]
fn processes_the_command_leaves_behind_end_with_it() {
    let repo = Repo::new();
    let started = std::time::Instant::now();
    let out = run(&repo, &[], "sh", "sleep 60 & echo started", &[]);
    assert_code(&out, 0);
    assert_isolated(&repo, &out, &attempt_key(1));
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

#[test]
fn files_of_other_users_are_not_open_to_root_inside() {
    // Only the caller's uid is mapped, so root's override of file permissions does
    // not reach files another user owns. Shown only where the test runs as root.
    let repo = Repo::new();
    let private = repo.path().join("other-user.txt");
    std::fs::write(&private, "theirs\n").unwrap();
    let chown = std::process::Command::new("chown")
        .args(["1000:1000", private.to_str().unwrap()])
        .status();
    if !chown.is_ok_and(|s| s.success()) {
        eprintln!("not root: files_of_other_users_are_not_open_to_root_inside shows nothing");
        return;
    }
    std::fs::set_permissions(
        &private,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let inside = run(&repo, &[], "sh", "cat other-user.txt", &[]);
    assert_code(&inside, 1);
    let outside = run(&repo, &["--no-isolation"], "sh", "cat other-user.txt", &[]);
    assert_code(&outside, 0);
}

#[test]
fn an_unprivileged_user_is_isolated_too() {
    // Where the suite runs as root, show the same as a user with no privilege.
    let repo = Repo::new();
    let chown = std::process::Command::new("chown")
        .args(["-R", "65534:65534", repo.path().to_str().unwrap()])
        .status();
    if !chown.is_ok_and(|s| s.success()) {
        eprintln!("not root: every isolation test here already ran unprivileged");
        return;
    }
    // The build's own binary may sit where that user cannot reach it (a checkout
    // under a 0700 folder): run a copy from a folder it can read.
    use std::os::unix::fs::PermissionsExt;
    let bin = tempfile::tempdir().unwrap();
    let open = std::fs::Permissions::from_mode(0o755);
    std::fs::set_permissions(bin.path(), open.clone()).unwrap();
    let ledger = bin.path().join("ledger");
    std::fs::copy(env!("CARGO_BIN_EXE_ledger"), &ledger).unwrap();
    std::fs::set_permissions(&ledger, open).unwrap();
    let spy = "set -- /proc/[0-9]*; echo \"processes: $#\"; cat .ledger/test.key; id -u";
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&ledger)
        .args(COMMIT)
        .arg("--allow-other-sha") // a scratch repository: no commit to check
        .args(["--", "sh", "-c", spy])
        .current_dir(repo.path())
        .env_remove("LEDGER_SIGNING_KEY")
        .env_remove("LEDGER_STORE")
        .env_remove("LEDGER_POLICY")
        .output()
        .expect("setpriv (util-linux)");
    assert_code(&out, 0);
    assert_isolated(&repo, &out, &attempt_key(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("processes: 2\n") && stdout.ends_with("65534\n"),
        "{stdout}"
    );
    let real_pem = pem(&repo);
    let real = SigningKey::from_pem(&real_pem).unwrap();
    assert_no_key(&text(&out), &real, &real_pem, "an unprivileged command");
}
