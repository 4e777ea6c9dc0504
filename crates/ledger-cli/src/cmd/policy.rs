//! `ledger policy show|sign|rotate`: the policy owners' side of the trust model.
//!
//! A policy gates stages only when a threshold of its owners signed its exact bytes
//! (`ledger_verify::trust`). These commands are what an owner runs on their own
//! machine, with a key that never goes to CI: review what changed since the last
//! signed policy, sign it, and hand ownership to other keys (a new root version that
//! the current owners must sign too).

use crate::args::{Global, PolicyCommand};
use crate::context::{self, OWNER_KEY_PATH, ROOT_PATH};
use crate::exit::{Code, Failure, Result};
use ledger_core::signed::{SignedDocument, POLICY_PAYLOAD_TYPE};
use ledger_core::{PublicKey, SigningKey};
use ledger_verify::read::policy_key;
use ledger_verify::trust::{self, POLICY_SIGNATURE_PREFIX};
use ledger_verify::{Store, StoreError};
use std::path::{Path, PathBuf};

/// `ledger policy …`.
pub async fn policy(global: &Global, cmd: PolicyCommand) -> Result<Code> {
    let root = context::repo_root()?;
    match cmd {
        PolicyCommand::Show => show(global, &root).await,
        PolicyCommand::Sign { key, root: false } => sign_policy(global, &root, key).await,
        PolicyCommand::Sign { key, root: true } => sign_root(global, &root, key).await,
        PolicyCommand::Rotate { owners, threshold } => {
            rotate(global, &root, &owners, threshold).await
        }
    }
}

fn owner_key(root: &Path, explicit: Option<PathBuf>) -> Result<SigningKey> {
    let path = explicit.unwrap_or_else(|| root.join(OWNER_KEY_PATH));
    context::load_signing_key(Some(&path), root, OWNER_KEY_PATH)
}

fn checkout_root(root: &Path) -> Result<Option<Vec<u8>>> {
    let path = root.join(ROOT_PATH);
    if !path.exists() {
        return Ok(None);
    }
    context::read_limited(&path, "policy root").map(Some)
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes)
        .map_err(|e| Failure::input(format!("cannot write {}: {e}", path.display())))
}

async fn chain(store: &Store, root: &Path) -> Result<trust::RootChain> {
    trust::root_chain(store, checkout_root(root)?.as_deref())
        .await
        .map_err(|e| context::untrusted(e, Code::VerificationFailed))
}

/// Adds the owner's signature over the policy file's exact bytes.
async fn sign_policy(global: &Global, root: &Path, key: Option<PathBuf>) -> Result<Code> {
    let (policy, bytes) = context::load_policy(global, root)?;
    let key = owner_key(root, key)?;
    let store = context::open_store(global, root).await?;
    let chain = chain(&store, root).await?;
    let current = chain.current();
    if !current.owners().iter().any(|k| k.key_id() == key.key_id()) {
        return Err(Failure::input(format!(
            "key {} is not a policy owner: root version {} names {}",
            key.key_id().short(),
            current.version(),
            short_ids(current.owners())
        ))
        .hint(
            "sign with an owner's key (--key FILE); changing the owners is `ledger policy rotate`",
        ));
    }
    let sig_path = context::signature_path(&context::policy_path(global, root));
    let mut doc = context::read_limited(&sig_path, "policy signature")
        .ok()
        .and_then(|b| trust::parse_policy_signature(&b).ok())
        .filter(|d| d.payload() == bytes.as_slice())
        .unwrap_or_else(|| SignedDocument::new(POLICY_PAYLOAD_TYPE, &bytes));
    doc.sign(&key);
    write(&sig_path, &doc.to_bytes())?;
    let have = doc.signers(current.owners()).map_or(0, |s| s.len());
    let need = current.doc().threshold;
    println!(
        "signed policy {} as owner {}: {have} of {need} required signature(s), in {}",
        &policy.digest().to_hex()[..12],
        key.key_id().short(),
        sig_path.display()
    );
    if u32::try_from(have).unwrap_or(u32::MAX) >= need {
        println!("the policy is in force: the next stage stores it and its signature");
    }
    Ok(Code::Success)
}

/// Adds the owner's signature to the checkout's root (a new version, or version 1).
async fn sign_root(global: &Global, root: &Path, key: Option<PathBuf>) -> Result<Code> {
    let key = owner_key(root, key)?;
    let Some(bytes) = checkout_root(root)? else {
        return Err(Failure::input(format!("{ROOT_PATH} does not exist"))
            .hint("`ledger policy rotate --owner NEW.pub` writes the next root version"));
    };
    let mut next =
        trust::Root::parse(&bytes).map_err(|e| Failure::input(format!("{ROOT_PATH}: {e}")))?;
    let store = context::open_store(global, root).await?;
    let pinned = trust::root_pinned(&store).await.map_err(Failure::from)?;
    let current = if pinned {
        Some(
            trust::root_chain(&store, None)
                .await
                .map_err(|e| context::untrusted(e, Code::VerificationFailed))?,
        )
    } else {
        None
    };
    let is_owner = |keys: &[PublicKey]| keys.iter().any(|k| k.key_id() == key.key_id());
    let current_owner = current
        .as_ref()
        .is_some_and(|c| is_owner(c.current().owners()));
    if !is_owner(next.owners()) && !current_owner {
        return Err(Failure::input(format!(
            "key {} owns neither the current root nor version {} in {ROOT_PATH}",
            key.key_id().short(),
            next.version()
        )));
    }
    next.sign(&key);
    write(&root.join(ROOT_PATH), &next.to_bytes())?;
    let verdict = match current {
        Some(mut chain) if next.version() > chain.current().version() => chain.extend(next.clone()),
        Some(_) => Ok(()),
        None => trust::RootChain::start(next.clone()).map(|_| ()),
    };
    println!(
        "signed root version {} as {}",
        next.version(),
        key.key_id().short()
    );
    match verdict {
        Ok(()) => println!(
            "root version {} is complete: the next stage pins it",
            next.version()
        ),
        Err(e) => println!("not complete yet: {e}"),
    }
    Ok(Code::Success)
}

/// Writes the next root version naming `owners`, unsigned.
async fn rotate(global: &Global, root: &Path, owners: &[PathBuf], threshold: u32) -> Result<Code> {
    let store = context::open_store(global, root).await?;
    if !trust::root_pinned(&store).await.map_err(Failure::from)? {
        return Err(Failure::input(
            "the store pins no policy root yet, so there is no version to follow",
        )
        .hint("run any stage once (it pins policy/root.json as version 1), then rotate"));
    }
    let chain = trust::root_chain(&store, None)
        .await
        .map_err(|e| context::untrusted(e, Code::VerificationFailed))?;
    let mut keys = Vec::new();
    for path in owners {
        let text = String::from_utf8(context::read_limited(path, "owner key")?)
            .map_err(|_not_utf8| Failure::input(format!("{} is not PEM text", path.display())))?;
        keys.push(
            PublicKey::from_pem(&text)
                .map_err(|e| Failure::input(format!("{}: {e}", path.display())))?,
        );
    }
    let version = chain.current().version() + 1;
    let next = trust::Root::draft(version, threshold, &keys)
        .map_err(|e| Failure::input(format!("cannot write root version {version}: {e}")))?;
    write(&root.join(ROOT_PATH), &next.to_bytes())?;
    println!(
        "wrote root version {version} to {ROOT_PATH}: owners {}, threshold {threshold}",
        short_ids(next.owners())
    );
    println!(
        "it takes effect once {} current owner(s) and {threshold} new owner(s) signed it: `ledger policy sign --root --key OWNER.key`",
        chain.current().doc().threshold
    );
    Ok(Code::Success)
}

fn short_ids(keys: &[PublicKey]) -> String {
    keys.iter()
        .map(|k| k.key_id().short().to_owned())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The policy in force, its signatures, the owners, and the diff against the newest
/// policy the owners signed in the store.
async fn show(global: &Global, root: &Path) -> Result<Code> {
    let (policy, bytes) = context::load_policy(global, root)?;
    let store = context::open_store(global, root).await?;
    let path = context::policy_path(global, root);
    println!("policy     {} (sha256 {})", path.display(), policy.digest());
    let verdict = context::load_signed_policy(
        global,
        root,
        &store,
        (policy.clone(), &bytes),
        Code::VerificationFailed,
    )
    .await;
    if let Ok(chain) = trust::root_chain(&store, checkout_root(root)?.as_deref()).await {
        let current = chain.current();
        println!(
            "owners     root version {}: {} (threshold {})",
            current.version(),
            short_ids(current.owners()),
            current.doc().threshold
        );
    }
    match &verdict {
        Ok(_) => println!("trust      in force: signed by a threshold of the owners"),
        Err(f) => println!("trust      NOT in force: {}", f.message),
    }
    if let Some(previous) = newest_signed(&store).await? {
        if previous == bytes {
            println!("diff       none: this is the newest policy the owners signed in the store");
        } else {
            println!("diff       against the newest policy the owners signed in the store:");
            let diff = similar::TextDiff::from_lines(
                String::from_utf8_lossy(&previous).as_ref(),
                String::from_utf8_lossy(&bytes).as_ref(),
            )
            .unified_diff()
            .context_radius(3)
            .header("signed", "this policy")
            .to_string();
            print!("{diff}");
        }
    } else {
        println!("diff       the store holds no signed policy yet");
    }
    Ok(if verdict.is_ok() {
        Code::Success
    } else {
        Code::VerificationFailed
    })
}

/// The bytes of the policy whose signature was stored last.
async fn newest_signed(store: &Store) -> Result<Option<Vec<u8>>> {
    let listed = store
        .list_meta(POLICY_SIGNATURE_PREFIX)
        .await
        .map_err(Failure::from)?;
    let Some(newest) = listed.iter().max_by_key(|l| l.modified) else {
        return Ok(None);
    };
    let hex = newest
        .key
        .strip_prefix(POLICY_SIGNATURE_PREFIX)
        .and_then(|k| k.strip_suffix(".json"))
        .unwrap_or_default();
    let Ok(digest) = ledger_core::Sha256Digest::parse(hex) else {
        return Ok(None);
    };
    let key = policy_key(&digest).map_err(Failure::from)?;
    Ok(store
        .get(&key)
        .await
        .map_err(|e: StoreError| Failure::from(e))?
        .map(|b| b.to_vec()))
}
