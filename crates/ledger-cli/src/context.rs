//! Resolving what a command works on: repository root, store, policy, signing key,
//! commit SHA, `ledger.toml`. Each lookup fails with a message that names the place it
//! looked and the command that fixes it. A command loads what it needs once, as a
//! [`Reader`] (reads evidence) or a [`Writer`] (signs and stores it).

use crate::args::Global;
use crate::exit::{Failure, Result};
use ledger_core::{GitSha, KeyId, SigningKey, Stage};
use ledger_pipeline::config::Config;
use ledger_verify::trust::Sources;
use ledger_verify::{SignedPolicy, Store, StoreLocation};
use std::path::{Path, PathBuf};

mod handles;
pub use handles::{Reader, Writer};

/// Environment variable holding the signing key's PEM text, or a path to it.
pub const SIGNING_KEY_ENV: &str = "LEDGER_SIGNING_KEY";

/// Where `ledger init` puts the test-zone key (commit, integration), relative to the
/// repository root.
pub const TEST_KEY_PATH: &str = ".ledger/test.key";

/// Where `ledger init` puts the release-zone key (build … decide, and the release
/// operations).
pub const RELEASE_KEY_PATH: &str = ".ledger/release.key";

/// Where `ledger init` puts the policy owner's key.
pub const OWNER_KEY_PATH: &str = ".ledger/policy-owner.key";

/// The one key of stores set up before trust zones; still used when it is the only one.
pub const LEGACY_KEY_PATH: &str = ".ledger/signing.key";

/// Where the policy lives, relative to the repository root.
pub const DEFAULT_POLICY_PATH: &str = "policy/pipeline-policy.json";

/// Where the checkout keeps the policy root of trust (the store's pinned copy wins).
pub const ROOT_PATH: &str = "policy/root.json";

/// The key zone a stage (or a release operation, `None`) signs in: test stages run
/// project code and never hold the release key.
pub fn zone_key_path(stage: Option<Stage>) -> &'static str {
    match stage {
        Some(Stage::Commit | Stage::Integration) => TEST_KEY_PATH,
        _ => RELEASE_KEY_PATH,
    }
}

/// The policy signature file beside `policy`: `x.json` → `x.sig.json`.
pub fn signature_path(policy: &Path) -> PathBuf {
    let name = policy
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name.strip_suffix(".json").unwrap_or(&name);
    policy.with_file_name(format!("{stem}.sig.json"))
}

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
    let store = Store::open(store_location(global, root)?).await?;
    Ok(opened(store))
}

/// [`open_store`], with `policy` loaded and checked against the store's trust
/// state beside a bucket's reachability listing ([`Store::open_with`]): one round
/// trip fewer for every command that writes evidence (a `Reader` opens the same
/// way, with its own first reads beside them).
async fn open_store_trusting(
    global: &Global,
    root: &Path,
    policy: (ledger_verify::Policy, &[u8]),
    code: crate::exit::Code,
) -> Result<(Store, SignedPolicy)> {
    let (store, policy) = Store::open_with(store_location(global, root)?, async |store| {
        load_signed_policy(global, root, store, policy, code).await
    })
    .await?;
    Ok((opened(store), policy))
}

/// Notes `store` among those whose writes are logged before the process exits.
fn opened(store: Store) -> Store {
    OPENED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(store.clone());
    store
}

/// Where the store is: `--store`/`LEDGER_STORE`, or `.artifacts/` at `root`.
pub fn store_location(global: &Global, root: &Path) -> Result<StoreLocation> {
    Ok(match &global.store {
        Some(s) => StoreLocation::parse(s)?,
        None => StoreLocation::default_for(root),
    })
}

/// A read command never creates a store: a folder named by `--store` or
/// `LEDGER_STORE` that does not exist is a typo (exit 2), not an empty store.
fn refuse_missing_named_folder(global: &Global, root: &Path) -> Result<()> {
    if global.store.is_none() {
        return Ok(());
    }
    if let StoreLocation::Local(dir) = store_location(global, root)? {
        if std::fs::symlink_metadata(&dir).is_err() {
            return Err(Failure::input(format!(
                "no evidence store at {}: the folder does not exist",
                dir.display()
            ))
            .hint("check --store / LEDGER_STORE for a typo; read commands never create a store, the first stage does"));
        }
    }
    Ok(())
}

/// Every store this process opened, so that what it wrote is logged before it exits.
static OPENED: std::sync::Mutex<Vec<Store>> = std::sync::Mutex::new(Vec::new());

/// Appends a log entry for whatever this process wrote that no entry names yet
/// (stages log their own writes; this catches the rest, e.g. a lease's release).
pub async fn log_what_was_written() -> Result<()> {
    let stores: Vec<Store> = std::mem::take(
        &mut *OPENED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    for store in &stores {
        store.log_flush().await?;
    }
    count_requests(&stores);
    Ok(())
}

/// With `LEDGER_COUNT_REQUESTS=FILE`, appends the requests this process made to its
/// stores (one JSON line: get, head, put, list, the gets repeated, the round trips)
/// to FILE: how `cargo xtask bench` and the tests count each stage's requests. A
/// measurement aid; it never fails the command.
fn count_requests(stores: &[Store]) {
    let Some(path) = std::env::var_os("LEDGER_COUNT_REQUESTS") else {
        return;
    };
    let Some(total) = stores.iter().map(Store::requests).reduce(|a, b| a + b) else {
        return;
    };
    let Ok(line) = serde_json::to_string(&total) else {
        return;
    };
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, format!("{line}\n").as_bytes()));
    if let Err(e) = written {
        say!(
            "warning: LEDGER_COUNT_REQUESTS: cannot append to {}: {e}",
            Path::new(&path).display()
        );
    }
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
pub fn load_policy(global: &Global, root: &Path) -> Result<(ledger_verify::Policy, Vec<u8>)> {
    let path = policy_path(global, root);
    let bytes = read_limited(&path, "policy").map_err(|f| {
        if global.policy.is_none() {
            f.hint("run `ledger init` to create one, or pass --policy FILE")
        } else {
            f
        }
    })?;
    let policy = ledger_verify::Policy::parse(&bytes)
        .map_err(|e| Failure::input(format!("{}: {e}", path.display())))?;
    Ok((policy, bytes))
}

/// The owner key ids the CI pins (`--policy-owners` / `LEDGER_POLICY_OWNERS`).
pub fn anchor(global: &Global) -> Result<Option<Vec<KeyId>>> {
    let Some(list) = global
        .policy_owners
        .as_deref()
        .filter(|l| !l.trim().is_empty())
    else {
        return Ok(None);
    };
    let mut ids = Vec::new();
    for id in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        if id.len() != 64
            || !id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(Failure::input(format!(
                "--policy-owners / LEDGER_POLICY_OWNERS: {:?} is not a key id (64 lowercase hex digits)",
                id.chars().take(80).collect::<String>()
            ))
            .hint("list the owners' key ids, comma-separated, as `ledger keys id OWNER.pub` prints them"));
        }
        ids.push(KeyId::from_envelope(id));
    }
    Ok(Some(ids))
}

/// Reads a file that may be absent.
fn read_optional(path: &Path, what: &str) -> Result<Option<Vec<u8>>> {
    if !path.exists() {
        return Ok(None);
    }
    read_limited(path, what).map(Some)
}

/// The policy in force: the policy file, checked against its owners' signatures and
/// the root of trust (the store's, else the checkout's `policy/root.json`). A policy
/// that is not trusted is exit `code`: 3 where a stage would run, 4 where evidence is
/// read.
pub async fn load_signed_policy(
    global: &Global,
    root: &Path,
    store: &Store,
    (policy, policy_bytes): (ledger_verify::Policy, &[u8]),
    code: crate::exit::Code,
) -> Result<SignedPolicy> {
    let signature = read_optional(
        &signature_path(&policy_path(global, root)),
        "policy signature",
    )?;
    let root_doc = read_optional(&root.join(ROOT_PATH), "policy root")?;
    let anchor = anchor(global)?;
    SignedPolicy::load(
        store,
        policy,
        Sources {
            policy: policy_bytes,
            signature: signature.as_deref(),
            root: root_doc.as_deref(),
            anchor: anchor.as_deref(),
        },
    )
    .await
    .map_err(|e| untrusted(e, code))
}

/// A trust failure as the exit code `code` (3 for a stage, 4 for a reader).
pub fn untrusted(e: ledger_verify::Error, code: crate::exit::Code) -> Failure {
    match e {
        ledger_verify::Error::Untrusted(t) => {
            Failure::new(code, format!("policy not trusted: {t}")).hint(t.hint())
        }
        other => other.into(),
    }
}

/// Reads a file the user gave (policy, root, signature, key, checkpoint): a regular
/// file of at most `ledger_core::MAX_JSON_BYTES`, counted while reading, so that
/// `/dev/zero` or a FIFO is refused at once instead of read until memory runs out
/// (`ledger_verify::file`).
pub fn read_limited(path: &Path, what: &str) -> Result<Vec<u8>> {
    use ledger_verify::file::{read_regular, FileError, Links};
    let limit = ledger_core::MAX_JSON_BYTES;
    read_regular(path, limit, Links::Follow).map_err(|e| {
        let failure = Failure::input(format!("cannot read {what} {}: {e}", path.display()));
        match e {
            FileError::NotRegular(_) | FileError::TooLarge { .. } => {
                failure.hint(format!("give the path of the {what} file itself"))
            }
            _ => failure,
        }
    })
}

/// Loads the signing key from `--key`, `$LEDGER_SIGNING_KEY` (PEM or path), or the
/// zone's key file (`zone_key_path`), else `.ledger/signing.key` (stores set up before
/// trust zones). Errors never include key material.
pub fn load_signing_key(explicit: Option<&Path>, root: &Path, zone: &str) -> Result<SigningKey> {
    let (pem, source) = if let Some(path) = explicit {
        (read_key_file(path)?, format!("--key {}", path.display()))
    } else if let Some(value) = crate::handoff::signing_key_env().filter(|v| !v.is_empty()) {
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
        let zone_path = root.join(zone);
        let legacy = root.join(LEGACY_KEY_PATH);
        let path = if !zone_path.exists() && legacy.exists() {
            legacy
        } else {
            zone_path
        };
        if !path.exists() {
            return Err(Failure::input(format!("no signing key: {} does not exist and ${SIGNING_KEY_ENV} is not set", path.display()))
                .hint("run `ledger init`, pass --key FILE, or set LEDGER_SIGNING_KEY to the PEM text or a path"));
        }
        (read_key_file(&path)?, path.display().to_string())
    };
    SigningKey::from_pem(&pem)
        .map_err(|e| Failure::input(format!("signing key from {source}: {e}")))
}

/// What the wrapped command must find masked: the repository's `.ledger/` (where
/// `ledger init` keeps every private key), the `--key` file and the file
/// `$LEDGER_SIGNING_KEY` names. Existing paths only, resolved, sorted, each once.
pub fn key_paths_to_mask(explicit: Option<&Path>, root: &Path) -> Vec<PathBuf> {
    let mut candidates: Vec<PathBuf> = Path::new(TEST_KEY_PATH)
        .parent()
        .map(|dir| root.join(dir))
        .into_iter()
        .chain(explicit.map(Path::to_path_buf))
        .collect();
    if let Some(value) = std::env::var_os(SIGNING_KEY_ENV) {
        let value = value.to_string_lossy();
        if !value.trim().is_empty() && !value.trim_start().starts_with("-----BEGIN") {
            candidates.push(PathBuf::from(value.trim()));
        }
    }
    let mut paths: Vec<PathBuf> = candidates
        .iter()
        .filter_map(|p| p.canonicalize().ok())
        .collect();
    paths.sort();
    paths.dedup();
    paths
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
    ledger_pipeline::source::head(root).map_err(no_head)
}

/// Why a command without `--sha` cannot run: HEAD does not read (`e` says why).
pub fn no_head(e: impl std::fmt::Display) -> Failure {
    Failure::input(format!("--sha not given and HEAD cannot be read: {e}"))
        .hint("pass --sha <40-hex commit>")
}

/// The process environment as a map (names and values that are valid UTF-8).
pub fn env_map() -> std::collections::BTreeMap<String, String> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}
