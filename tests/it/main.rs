//! The cross-crate suite: runs the real `ledger` binary on real files, the way CI jobs
//! and auditors do. One test binary; each module is one area, and `Repo` makes each
//! case a few lines. A `Repo` keeps its evidence in a local folder or, for the cases
//! declared with [`on_both_backends!`], also under a fresh prefix of the loopback S3
//! server `.ci/run` starts.

#![allow(
    missing_debug_implementations,
    clippy::cast_possible_truncation,
    reason = "test support, not an API; casts index small in-memory buffers"
)]

/// Declares each listed `fn name(backend: Backend)` as two tests, `on_local::name`
/// and `on_s3::name`. The S3 one passes without running when no server is
/// configured, except under `LEDGER_REQUIRE_S3=1` (CI), where that is a failure.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod on_local {
            $( #[test] fn $name() { super::$name($crate::Backend::Local) } )*
        }
        mod on_s3 {
            $( #[test] fn $name() {
                if let Some(b) = $crate::Backend::s3() { super::$name(b) }
            } )*
        }
    };
}

mod attacks;
mod attestations;
mod audit_trust;
mod auth_registry;
mod bad_input;
mod bucket;
mod cli_output;
mod consistent;
mod differential;
mod docker;
mod docs;
mod environments;
mod faults;
mod foundation;
mod fuzz_bodies;
mod gates;
mod history;
pub mod interop;
mod isolation;
mod log_forgery;
mod log_tail;
#[cfg(target_os = "linux")]
mod no_openat2;
mod project;
mod prune;
mod read;
mod released;
mod remote_engine;
mod replay;
mod report;
mod robust_store;
mod round_trips;
mod runs;
mod secrets;
mod slsa_interop;
mod source;
mod status;
mod strict;
mod support;
mod tamper;
mod trust;

pub use support::{zone_key, InProcess};

use ledger_core::Stage;
use ledger_store::testing::S3Server;
use ledger_store::{Store, StoreLocation};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;

/// A commit SHA used throughout.
pub const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

/// Where a [`Repo`] keeps its evidence.
#[derive(Debug, Clone)]
pub enum Backend {
    /// `.artifacts/` in the repository.
    Local,
    /// A fresh prefix in the test bucket.
    S3(S3Server),
}

impl Backend {
    /// The S3 backend when a test server is configured.
    pub fn s3() -> Option<Backend> {
        S3Server::from_env().map(Backend::S3)
    }
}

/// A throwaway git repository with `ledger` set up in it.
pub struct Repo {
    pub dir: tempfile::TempDir,
    /// The bucket server and this repository's prefix in it, when not local.
    s3: Option<(S3Server, String)>,
}

impl Repo {
    /// An empty repository (git initialised, no ledger yet).
    pub fn bare() -> Repo {
        Repo::bare_on(&Backend::Local)
    }

    /// An empty repository whose evidence goes to `backend`.
    pub fn bare_on(backend: &Backend) -> Repo {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join(".git")).expect(".git");
        let s3 = match backend {
            Backend::Local => None,
            Backend::S3(server) => Some((server.clone(), S3Server::unique_prefix("it"))),
        };
        Repo { dir, s3 }
    }

    /// A repository after `ledger init`.
    #[allow(
        clippy::new_without_default,
        reason = "a Repo is made on purpose, never by Default"
    )]
    pub fn new() -> Repo {
        Repo::on(&Backend::Local)
    }

    /// A repository after `ledger init`, its evidence on `backend`.
    pub fn on(backend: &Backend) -> Repo {
        let repo = Repo::bare_on(backend);
        let out = repo.ledger(&["init"]);
        assert_code(&out, 0);
        repo
    }

    /// Opens this repository's store in-process.
    pub async fn open_store(&self) -> Store {
        match &self.s3 {
            None => Store::open(StoreLocation::Local(self.store())).await,
            Some((server, prefix)) => server.open(prefix).await,
        }
        .expect("open the test store")
    }

    #[allow(
        clippy::unused_self,
        reason = "a method, so that test code reads `repo.block_on(…)`"
    )]
    fn block_on<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    /// The bytes of a stored object.
    pub fn read_object(&self, key: &str) -> Vec<u8> {
        match &self.s3 {
            None => std::fs::read(self.object(key)).unwrap_or_else(|e| panic!("{key}: {e}")),
            Some(_) => self.block_on(async {
                let store = self.open_store().await;
                store.raw_get(key).await.unwrap().expect(key).to_vec()
            }),
        }
    }

    /// Whether an object exists.
    pub fn has_object(&self, key: &str) -> bool {
        match &self.s3 {
            None => self.object(key).exists(),
            Some(_) => self.block_on(async {
                let store = self.open_store().await;
                store.raw_get(key).await.unwrap().is_some()
            }),
        }
    }

    /// Writes an object directly, bypassing `ledger`: the attacker's move.
    pub fn tamper_object(&self, key: &str, bytes: Vec<u8>) {
        match &self.s3 {
            None => {
                let path = self.object(key);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, bytes).unwrap();
            }
            Some(_) => self.block_on(async {
                let store = self.open_store().await;
                store.tamper(key, bytes).await.unwrap()
            }),
        }
    }

    /// Starts the store's log afresh over what it holds now (`ledger checkpoint
    /// --genesis`), so that a case is about how an object reads, not about the log
    /// noticing that it changed. Local stores only.
    pub fn relog(&self) {
        for dir in ["log", "checkpoints"] {
            let _ = std::fs::remove_dir_all(self.store().join(dir));
        }
        assert_code(&self.ledger(&["checkpoint", "--genesis"]), 0);
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn store(&self) -> PathBuf {
        self.path().join(".artifacts")
    }

    /// Runs `ledger` in the repository with a clean, predictable environment.
    pub fn ledger(&self, args: &[&str]) -> Output {
        self.ledger_env(args, &[])
    }

    pub fn ledger_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.command(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run ledger")
    }

    /// The `ledger` command with this repository's directory and store environment,
    /// not yet started. A wrapped stage given `--sha` also gets `--allow-other-sha`:
    /// most cases run arbitrary SHAs outside a real git repository, and are not about
    /// the source checks (`source.rs` is, through [`Repo::exact_command`]).
    pub fn command(&self, args: &[&str]) -> std::process::Command {
        let mut args = args.to_vec();
        let end = args.iter().position(|a| *a == "--").unwrap_or(args.len());
        let wrapped = args[..end]
            .windows(2)
            .position(|w| w[0] == "stage" && matches!(w[1], "commit" | "integration"));
        let sha_given = args[..end].iter().any(|a| a.starts_with("--sha"));
        if let (Some(i), true) = (wrapped, sha_given) {
            args.insert(i + 2, "--allow-other-sha");
        }
        self.exact_command(&args)
    }

    /// [`Repo::command`] with exactly `args`.
    pub fn exact_command(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ledger"));
        cmd.args(args).current_dir(self.path());
        for var in [
            "LEDGER_STORE",
            "LEDGER_POLICY",
            "LEDGER_SIGNING_KEY",
            "GITHUB_ACTIONS",
            "GITLAB_CI",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("NO_COLOR", "1");
        if let Some((server, prefix)) = &self.s3 {
            for (k, v) in server.env(prefix) {
                cmd.env(k, v);
            }
        }
        cmd
    }

    /// Every file under the store, relative, sorted.
    pub fn stored(&self) -> Vec<String> {
        if self.s3.is_some() {
            return self.block_on(async { self.open_store().await.all_keys().await.unwrap() });
        }
        let mut out = Vec::new();
        walk(&self.store(), &self.store(), &mut out);
        out.sort();
        out
    }

    /// Path of a stored object.
    pub fn object(&self, key: &str) -> PathBuf {
        assert!(
            self.s3.is_none(),
            "object() is a local path; use read_object"
        );
        self.store().join(key)
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(root, &p, out);
        } else if let Ok(rel) = p.strip_prefix(root) {
            out.push(rel.display().to_string());
        }
    }
}

impl Repo {
    /// The policy in force here, loaded and checked the way `ledger` loads it.
    pub async fn signed_policy(&self, store: &Store) -> ledger_verify::SignedPolicy {
        let read = |p: &str| std::fs::read(self.path().join(p)).ok();
        let policy = read("policy/pipeline-policy.json").unwrap();
        let signature = read("policy/pipeline-policy.sig.json");
        let root = read("policy/root.json");
        ledger_verify::SignedPolicy::load(
            store,
            ledger_policy::Policy::parse(&policy).unwrap(),
            ledger_verify::trust::Sources {
                policy: &policy,
                signature: signature.as_deref(),
                root: root.as_deref(),
                anchor: None,
            },
        )
        .await
        .expect("the test repository's policy is signed")
    }

    /// Rewrites the policy file through `edit`, then signs it with the owner's key
    /// (`ledger policy sign`), as a policy owner would.
    pub fn edit_policy(&self, edit: impl FnOnce(&mut Value)) {
        self.edit_policy_unsigned(edit);
        assert_code(&self.ledger(&["policy", "sign"]), 0);
    }

    /// Rewrites the policy file through `edit` and leaves it unsigned: the attacker's
    /// edit in a pull request.
    pub fn edit_policy_unsigned(&self, edit: impl FnOnce(&mut Value)) {
        let path = self.path().join("policy/pipeline-policy.json");
        let mut policy: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        edit(&mut policy);
        std::fs::write(&path, serde_json::to_vec_pretty(&policy).unwrap()).unwrap();
    }

    /// Generates `<name>.key`/`<name>.pub` with `ledger keys generate`; returns the key id.
    pub fn generate_key(&self, name: &str) -> String {
        let (private, public) = (format!("{name}.key"), format!("{name}.pub"));
        let out = self.ledger(&[
            "keys",
            "generate",
            "--private-key",
            &private,
            "--public-key",
            &public,
        ]);
        assert_code(&out, 0);
        self.key_id(&public)
    }

    /// `ledger keys id FILE`.
    pub fn key_id(&self, file: &str) -> String {
        let out = self.ledger(&["keys", "id", file]);
        assert_code(&out, 0);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Adds the public key `<name>.pub` to the policy, trusted for `stages`.
    pub fn trust_key(&self, name: &str, id: &str, stages: &[&str]) {
        let pem = std::fs::read_to_string(self.path().join(format!("{name}.pub"))).unwrap();
        self.edit_policy(|p| {
            p["keys"].as_array_mut().unwrap().push(serde_json::json!({
                "keyid": id, "public_key": pem, "stages": stages,
            }))
        });
    }

    /// Records passing evidence of every stage before `stage`, in order.
    pub fn chain_before(&self, stage: Stage, sha: &str) {
        for s in Stage::ALL.into_iter().take_while(|s| *s != stage) {
            self.record(s.primary_artifact(), sha, |_| {});
        }
    }

    /// A verifier of this repository's evidence in this process (the library, not the
    /// binary): for the tests that check thousands of mutations.
    pub fn in_process(&self) -> InProcess {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let store = rt.block_on(self.open_store());
        let policy = rt.block_on(self.signed_policy(&store));
        InProcess { policy, store, rt }
    }

    /// `ledger verify SHA` exits 4 and its output contains `needle`.
    #[track_caller]
    pub fn assert_verify_fails_with(&self, needle: &str) {
        let out = self.ledger(&["verify", SHA]);
        assert_code(&out, 4);
        assert!(text(&out).contains(needle), "{}", text(&out));
    }

    /// The predicate of a stored envelope.
    pub fn predicate(&self, key: &str) -> Value {
        use base64::Engine as _;
        let env: Value = serde_json::from_slice(&self.read_object(key)).unwrap();
        let payload = base64::engine::general_purpose::STANDARD
            .decode(env["payload"].as_str().unwrap())
            .unwrap();
        let st: Value = serde_json::from_slice(&payload).unwrap();
        st["predicate"].clone()
    }
}

/// A loopback port nothing listens on (bound, read, released).
pub fn dead_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// stdout and stderr of a run, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "--- stdout\n{}--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts the exit code, showing the output when it differs.
#[track_caller]
pub fn assert_code(out: &Output, code: i32) {
    assert_eq!(out.status.code(), Some(code), "{}", text(out));
}

/// The stderr of a run with the machine-specific temp path replaced, for snapshots.
pub fn stderr_of(out: &Output, repo: &Repo) -> String {
    String::from_utf8_lossy(&out.stderr).replace(&repo.path().display().to_string(), "[REPO]")
}
