//! `ledger init` and `ledger keys`: a key per trust zone, a policy that trusts each
//! for its stages, the policy owner's signature over it, and the `.gitignore` lines
//! that keep the keys and the local store out of git.

use super::create_new;
use crate::context::{
    self, DEFAULT_POLICY_PATH, OWNER_KEY_PATH, RELEASE_KEY_PATH, ROOT_PATH, TEST_KEY_PATH,
};
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

/// `ledger init`: three keys (test zone, release zone, policy owner), a policy that
/// trusts each zone key only for its stages, the owner's root of trust and the owner's
/// signature over the policy. In a repository set up before trust zones (a policy but
/// no root), it adopts the existing policy unchanged: a new owner key signs it, so the
/// evidence recorded under it keeps verifying.
pub fn init() -> Result<Code> {
    let root = context::repo_root()?;
    if !root.join(".git").exists() {
        return Err(Failure::input(format!(
            "{} is not in a git repository: ledger keys every piece of evidence by the git commit it is about",
            root.display()
        ))
        .hint("run `ledger init` at the root of the repository to set up (or `git init` first); nothing was written"));
    }
    refuse_links(&root)?;
    let policy_path = root.join(DEFAULT_POLICY_PATH);
    let root_path = root.join(ROOT_PATH);
    if root_path.exists() {
        return Err(Failure::input(format!("{} already exists; ledger is already set up here", root_path.display()))
            .hint("nothing was changed; `ledger policy show` shows the setup, `ledger policy sign` signs a changed policy"));
    }
    if policy_path.exists() {
        return adopt(&root);
    }
    for p in [TEST_KEY_PATH, RELEASE_KEY_PATH, OWNER_KEY_PATH] {
        if root.join(p).exists() {
            return Err(Failure::input(format!(
                "{} already exists; refusing to overwrite a key",
                root.join(p).display()
            ))
            .hint("nothing was changed; move .ledger/ away to start over"));
        }
    }
    let test = write_key_pair(&root, TEST_KEY_PATH)?;
    let release = write_key_pair(&root, RELEASE_KEY_PATH)?;
    let owner = write_key_pair(&root, OWNER_KEY_PATH)?;
    let policy = ledger_verify::zoned_policy_json(test.public(), release.public())
        .map_err(|e| Failure::input(format!("cannot encode the policy: {e}")))?;
    create_new(&policy_path, policy.as_bytes(), false)?;
    sign_new_root(&root, policy.as_bytes(), &owner)?;
    let added = update_gitignore(&root.join(".gitignore"))?;
    print_setup(&root, [&test, &release, &owner], &added);
    Ok(Code::Success)
}

/// Refuses to set up where `.ledger` or `.gitignore` is a symbolic link: init would
/// write the private keys, or rewrite a file, wherever the link points, and a cloned
/// repository can carry either link.
fn refuse_links(root: &Path) -> Result<()> {
    let keys = Path::new(TEST_KEY_PATH)
        .parent()
        .unwrap_or(Path::new(".ledger"));
    for name in [keys, Path::new(".gitignore")] {
        let path = root.join(name);
        let is_link = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
        if is_link {
            return Err(Failure::input(format!(
                "{} is a symbolic link; ledger init does not write through links (the keys or lines would land wherever it points)",
                path.display()
            ))
            .hint(format!(
                "nothing was written; remove the link (`rm {}`) and run `ledger init` again, or make it a real {}",
                name.display(),
                if name == keys { "folder" } else { "file" }
            )));
        }
    }
    Ok(())
}

/// Generates a key pair at `private` (mode 0600) and its `.pub` beside it.
fn write_key_pair(root: &Path, private: &str) -> Result<SigningKey> {
    let key = SigningKey::generate();
    let (private_pem, public_pem) = key_pems(&key)?;
    let path = root.join(private);
    create_new(&path, private_pem.expose().as_bytes(), true)?;
    create_new(&path.with_extension("pub"), public_pem.as_bytes(), false)?;
    Ok(key)
}

/// Writes root version 1 (owner: `owner`) and the owner's signature over `policy`.
fn sign_new_root(root: &Path, policy: &[u8], owner: &SigningKey) -> Result<()> {
    let (_, root_bytes, signature) = ledger_verify::SignedPolicy::self_signed(policy, owner)
        .map_err(|e| Failure::input(format!("cannot sign the policy: {e}")))?;
    create_new(&root.join(ROOT_PATH), &root_bytes, false)?;
    let sig_path = context::signature_path(&root.join(DEFAULT_POLICY_PATH));
    create_new(&sig_path, &signature, false)
}

/// A policy from before trust zones: an owner key signs it as it is.
fn adopt(root: &Path) -> Result<Code> {
    let policy_path = root.join(DEFAULT_POLICY_PATH);
    let bytes = context::read_limited(&policy_path, "policy")?;
    ledger_verify::Policy::parse(&bytes)
        .map_err(|e| Failure::input(format!("{}: {e}", policy_path.display())))?;
    if root.join(OWNER_KEY_PATH).exists() {
        return Err(Failure::input(format!(
            "{} exists but {ROOT_PATH} does not",
            root.join(OWNER_KEY_PATH).display()
        ))
        .hint(
            "nothing was changed; move the owner key away, or restore policy/root.json from git",
        ));
    }
    let owner = write_key_pair(root, OWNER_KEY_PATH)?;
    sign_new_root(root, &bytes, &owner)?;
    let added = update_gitignore(&root.join(".gitignore"))?;
    println!(
        "ledger: adopted the existing policy {} unchanged",
        policy_path.display()
    );
    println!("  created {OWNER_KEY_PATH}   policy owner's key, mode 0600: keep it off CI runners");
    println!(
        "  created {ROOT_PATH}   root of trust: key {} owns the policy",
        owner.key_id().short()
    );
    println!(
        "  created {}   the owner's signature over the policy",
        sig_name()
    );
    if !added.is_empty() {
        println!("  updated .gitignore   added {}", added.join(" "));
    }
    println!();
    println!("Commit them: git add policy/ .gitignore && git commit -m 'Sign the ledger policy'");
    println!("Evidence recorded under this policy keeps verifying; its keys keep their stages.");
    Ok(Code::Success)
}

fn sig_name() -> String {
    context::signature_path(Path::new(DEFAULT_POLICY_PATH))
        .display()
        .to_string()
}

fn print_setup(root: &Path, [test, release, owner]: [&SigningKey; 3], added: &[&str]) {
    println!("ledger is set up in {}", root.display());
    println!(
        "  created {TEST_KEY_PATH}         test-zone key {}: signs commit and integration",
        test.key_id().short()
    );
    println!(
        "  created {RELEASE_KEY_PATH}      release-zone key {}: signs build to decide",
        release.key_id().short()
    );
    println!(
        "  created {OWNER_KEY_PATH} policy owner's key {}: signs the policy",
        owner.key_id().short()
    );
    println!(
        "          (private keys mode 0600, ignored by git: never commit them; .pub beside each)"
    );
    println!("  created {DEFAULT_POLICY_PATH}  trusts each zone key for its stages only");
    println!(
        "  created {}  the owner's signature over the policy",
        sig_name()
    );
    println!("  created {ROOT_PATH}             root of trust: who may sign the policy");
    if !added.is_empty() {
        println!(
            "  updated .gitignore               added {}",
            added.join(" ")
        );
    }
    println!();
    println!("Commit the policy and .gitignore:");
    println!("  git add policy/ .gitignore && git commit -m 'Add ledger policy'");
    println!("In CI, give test jobs only the test key and release jobs only the release key,");
    println!("each as a secret in LEDGER_SIGNING_KEY; the owner key never goes to CI. e.g.");
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
