//! Resolving what a command works on: repository root, store, policy, signing key,
//! commit SHA, `ledger.toml`. Each lookup fails with a message that names the place it
//! looked and the command that fixes it. A command loads what it needs once, as a
//! [`Reader`] (reads evidence) or a [`Writer`] (signs and stores it).

use crate::args::Global;
use crate::exit::{Failure, Result};
use ledger_core::{GitSha, SigningKey};
use ledger_pipeline::config::Config;
use ledger_verify::evidence::Evidence;
use ledger_verify::{Policy, Store, StoreLocation};
use std::path::{Path, PathBuf};

/// Environment variable holding the signing key's PEM text, or a path to it.
pub const SIGNING_KEY_ENV: &str = "LEDGER_SIGNING_KEY";

/// Where `ledger init` puts the private key, relative to the repository root.
pub const DEFAULT_KEY_PATH: &str = ".ledger/signing.key";

/// Where the policy lives, relative to the repository root.
pub const DEFAULT_POLICY_PATH: &str = "policy/pipeline-policy.json";

/// The repository root: the nearest ancestor of the working directory holding `.git`,
/// else the working directory itself.
pub fn repo_root() -> Result<PathBuf> {
    let cwd = std::env::current_dir()
        .map_err(|e| Failure::input(format!("cannot read the working directory: {e}")))?;
    Ok(cwd
        .ancestors()
        .find(|d| d.join(".git").exists())
        .unwrap_or(&cwd)
        .to_path_buf())
}

/// Opens the evidence store chosen by `--store`/`LEDGER_STORE`, or `.artifacts/`.
pub async fn open_store(global: &Global, root: &Path) -> Result<Store> {
    let location = match &global.store {
        Some(s) => StoreLocation::parse(s)?,
        None => StoreLocation::default_for(root),
    };
    Ok(Store::open(location).await?)
}

/// `ledger.toml` at the repository root, its errors classed like every pipeline error.
pub fn load_config(root: &Path) -> Result<Config> {
    Config::load(root).map_err(|e| ledger_pipeline::Error::from(e).into())
}

/// The policy file's path.
pub fn policy_path(global: &Global, root: &Path) -> PathBuf {
    global
        .policy
        .clone()
        .unwrap_or_else(|| root.join(DEFAULT_POLICY_PATH))
}

/// Reads and checks the policy; returns it with the exact bytes read.
pub fn load_policy(global: &Global, root: &Path) -> Result<(Policy, Vec<u8>)> {
    let path = policy_path(global, root);
    let bytes = read_limited(&path, "policy").map_err(|f| {
        if global.policy.is_none() {
            f.hint("run `ledger init` to create one, or pass --policy FILE")
        } else {
            f
        }
    })?;
    let policy =
        Policy::parse(&bytes).map_err(|e| Failure::input(format!("{}: {e}", path.display())))?;
    Ok((policy, bytes))
}

/// Reads a file of at most `ledger_core::MAX_JSON_BYTES`.
pub fn read_limited(path: &Path, what: &str) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path)
        .map_err(|e| Failure::input(format!("cannot read {what} {}: {e}", path.display())))?;
    if meta.len() > ledger_core::MAX_JSON_BYTES as u64 {
        return Err(Failure::input(format!(
            "{what} {} is {} bytes, over the {}-byte limit",
            path.display(),
            meta.len(),
            ledger_core::MAX_JSON_BYTES
        )));
    }
    std::fs::read(path)
        .map_err(|e| Failure::input(format!("cannot read {what} {}: {e}", path.display())))
}

/// Loads the signing key from `--key`, `$LEDGER_SIGNING_KEY` (PEM or path), or
/// `.ledger/signing.key`. Errors never include key material.
pub fn load_signing_key(explicit: Option<&Path>, root: &Path) -> Result<SigningKey> {
    let (pem, source) = if let Some(path) = explicit {
        (read_key_file(path)?, format!("--key {}", path.display()))
    } else if let Some(value) = std::env::var_os(SIGNING_KEY_ENV).filter(|v| !v.is_empty()) {
        let value = value.to_string_lossy().into_owned();
        if value.trim_start().starts_with("-----BEGIN") {
            (value, format!("${SIGNING_KEY_ENV}"))
        } else {
            // Not PEM text, so a path; but a mistyped secret is not a path either,
            // and must not be echoed: name the variable, never its value.
            let path = PathBuf::from(value.trim());
            if !path.is_file() {
                return Err(Failure::input(format!(
                    "${SIGNING_KEY_ENV} holds neither PEM text nor the path of a key file (its value is not shown)"
                ))
                .hint("set it to the private key's PEM text or to the path of a PEM file, e.g. from `ledger keys generate`"));
            }
            (
                read_key_file(&path)?,
                format!("${SIGNING_KEY_ENV} ({})", path.display()),
            )
        }
    } else {
        let path = root.join(DEFAULT_KEY_PATH);
        if !path.exists() {
            return Err(Failure::input(format!("no signing key: {} does not exist and ${SIGNING_KEY_ENV} is not set", path.display()))
                .hint("run `ledger init`, pass --key FILE, or set LEDGER_SIGNING_KEY to the PEM text or a path"));
        }
        (read_key_file(&path)?, path.display().to_string())
    };
    SigningKey::from_pem(&pem)
        .map_err(|e| Failure::input(format!("signing key from {source}: {e}")))
}

fn read_key_file(path: &Path) -> Result<String> {
    let bytes = read_limited(path, "key file")?;
    String::from_utf8(bytes)
        .ok()
        .ok_or_else(|| Failure::input(format!("key file {} is not PEM text", path.display())))
}

/// The SHA from `--sha`, else `git rev-parse HEAD` (asked through
/// `ledger_pipeline::source`, the one place git is asked anything).
pub fn resolve_sha(explicit: Option<&str>, root: &Path) -> Result<GitSha> {
    if let Some(s) = explicit {
        return GitSha::parse(s).map_err(Failure::input);
    }
    ledger_pipeline::source::head(root).map_err(|e| {
        Failure::input(format!("--sha not given and HEAD cannot be read: {e}"))
            .hint("pass --sha <40-hex commit>")
    })
}

/// The process environment as a map (names and values that are valid UTF-8).
pub fn env_map() -> std::collections::BTreeMap<String, String> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// What every command that writes evidence loads first: the policy, the signing key,
/// the store, the process environment and the runner it describes.
pub struct Writer {
    pub policy: Policy,
    pub policy_bytes: Vec<u8>,
    pub key: SigningKey,
    pub store: Store,
    pub env: std::collections::BTreeMap<String, String>,
    pub runner: ledger_core::predicate::Runner,
}

impl Writer {
    /// Loads policy, key (`explicit` or the default places) and store, in that order,
    /// so a bad policy or key is reported before the store is touched.
    pub async fn load(global: &Global, root: &Path, explicit_key: Option<&Path>) -> Result<Writer> {
        let (policy, policy_bytes) = load_policy(global, root)?;
        let key = load_signing_key(explicit_key, root)?;
        let store = open_store(global, root).await?;
        let env = env_map();
        let runner = ledger_pipeline::ci::detect(&env, &ledger_pipeline::ci::host_name());
        Ok(Writer {
            policy,
            policy_bytes,
            key,
            store,
            env,
            runner,
        })
    }

    /// The recorder that signs and stores with this writer's key and policy.
    pub fn recorder(&self) -> ledger_pipeline::record::Recorder<'_> {
        ledger_pipeline::record::Recorder {
            store: &self.store,
            policy: &self.policy,
            policy_bytes: &self.policy_bytes,
            key: &self.key,
        }
    }
}

/// What every command that reads evidence loads first: the repository root, the
/// policy and the store, in that order.
pub struct Reader {
    pub root: PathBuf,
    pub policy: Policy,
    pub store: Store,
}

impl Reader {
    /// Finds the root, then loads the policy and opens the store.
    pub async fn load(global: &Global) -> Result<Reader> {
        Reader::open(global, repo_root()?).await
    }

    /// Loads the policy and opens the store of the repository at `root`.
    pub async fn open(global: &Global, root: PathBuf) -> Result<Reader> {
        let (policy, _) = load_policy(global, &root)?;
        let store = open_store(global, &root).await?;
        Ok(Reader {
            root,
            policy,
            store,
        })
    }

    /// A verifier of this store's evidence under this policy.
    pub fn evidence(&self) -> Evidence<'_> {
        Evidence::new(&self.store, &self.policy)
    }
}
