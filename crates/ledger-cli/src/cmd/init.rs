//! `ledger init` and `ledger keys`: a signing key, a policy that trusts it, and the
//! `.gitignore` lines that keep the key and the local store out of git.

use super::create_new;
use crate::context::{self, DEFAULT_KEY_PATH, DEFAULT_POLICY_PATH};
use crate::exit::{Code, Failure, Result};
use ledger_core::{PublicKey, SigningKey};
use std::path::Path;

const GITIGNORE_LINES: [&str; 2] = [".artifacts/", ".ledger/"];

fn key_pems(key: &SigningKey) -> Result<(ledger_core::keys::zeroize_string::Secret, String)> {
    let private = key
        .to_pkcs8_pem()
        .map_err(|e| Failure::input(format!("cannot encode the new key: {e}")))?;
    let public = key
        .public()
        .to_pem()
        .map_err(|e| Failure::input(format!("cannot encode the new key: {e}")))?;
    Ok((private, public))
}

/// `ledger keys generate PRIVATE PUBLIC`.
pub fn keys_generate(private_path: &Path, public_path: &Path) -> Result<Code> {
    for p in [private_path, public_path] {
        if p.exists() {
            return Err(Failure::input(format!(
                "{} already exists; refusing to overwrite it",
                p.display()
            )));
        }
    }
    let key = SigningKey::generate();
    let (private, public) = key_pems(&key)?;
    create_new(private_path, private.expose().as_bytes(), true)?;
    create_new(public_path, public.as_bytes(), false)?;
    println!(
        "wrote private key {} (mode 0600; keep it secret)",
        private_path.display()
    );
    println!("wrote public key  {}", public_path.display());
    println!("key id {}", key.key_id());
    Ok(Code::Success)
}

/// `ledger keys id FILE`: the key id of a private or public key.
pub fn keys_id(file: &Path) -> Result<Code> {
    let text = String::from_utf8(context::read_limited(file, "key file")?)
        .ok()
        .ok_or_else(|| Failure::input(format!("{} is not PEM text", file.display())))?;
    let id = if text.contains("PRIVATE KEY") {
        SigningKey::from_pem(&text)
            .map_err(|e| Failure::input(format!("{}: {e}", file.display())))?
            .key_id()
            .clone()
    } else {
        PublicKey::from_pem(&text)
            .map_err(|e| Failure::input(format!("{}: {e}", file.display())))?
            .key_id()
            .clone()
    };
    println!("{id}");
    Ok(Code::Success)
}

/// `ledger init`.
pub fn init() -> Result<Code> {
    let root = context::repo_root()?;
    if !root.join(".git").exists() {
        eprintln!(
            "warning: {} is not a git repository; setting up ledger here anyway",
            root.display()
        );
    }
    let key_path = root.join(DEFAULT_KEY_PATH);
    let policy_path = root.join(DEFAULT_POLICY_PATH);
    for p in [&key_path, &policy_path] {
        if p.exists() {
            return Err(Failure::input(format!("{} already exists; ledger is already set up here", p.display()))
                .hint("nothing was changed; to start over, move .ledger/ and policy/pipeline-policy.json away"));
        }
    }
    let key = SigningKey::generate();
    let (private, public) = key_pems(&key)?;
    let policy = ledger_verify::default_policy_json(key.public())
        .map_err(|e| Failure::input(format!("cannot encode the policy: {e}")))?;
    create_new(&key_path, private.expose().as_bytes(), true)?;
    create_new(&root.join(".ledger/signing.pub"), public.as_bytes(), false)?;
    create_new(&policy_path, policy.as_bytes(), false)?;
    let added = update_gitignore(&root.join(".gitignore"))?;
    print_setup(&root, &key, &added);
    Ok(Code::Success)
}

fn print_setup(root: &Path, key: &SigningKey, added: &[&str]) {
    println!("ledger is set up in {}", root.display());
    println!("  created .ledger/signing.key   private signing key, mode 0600, ignored by git: never commit it");
    println!("  created .ledger/signing.pub   its public key");
    println!(
        "  created {DEFAULT_POLICY_PATH}   trusts key {} for every stage",
        key.key_id().short()
    );
    if !added.is_empty() {
        println!("  updated .gitignore            added {}", added.join(" "));
    }
    println!();
    println!("Commit the policy and .gitignore:");
    println!("  git add {DEFAULT_POLICY_PATH} .gitignore && git commit -m 'Add ledger policy'");
    println!("In CI, pass the private key as a secret in LEDGER_SIGNING_KEY, then run e.g.");
    println!("  ledger stage commit -- cargo test");
}

fn update_gitignore(path: &Path) -> Result<Vec<&'static str>> {
    let existing = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return Err(Failure::input(format!(
                "cannot read {}: {e}",
                path.display()
            )))
        }
    };
    let present = |line: &str| {
        existing.lines().any(|l| {
            l.trim() == line
                || l.trim() == format!("/{line}")
                || l.trim() == line.trim_end_matches('/')
        })
    };
    let added: Vec<&str> = GITIGNORE_LINES
        .into_iter()
        .filter(|l| !present(l))
        .collect();
    if added.is_empty() {
        return Ok(added);
    }
    let mut text = existing.clone();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str("# ledger: local evidence store and private signing key\n");
    for l in &added {
        text.push_str(l);
        text.push('\n');
    }
    std::fs::write(path, text)
        .map_err(|e| Failure::input(format!("cannot write {}: {e}", path.display())))?;
    Ok(added)
}
