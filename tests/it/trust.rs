//! The trust model as an attacker meets it: a pull request can edit the checkout
//! (policy, its signature, the root of trust) but holds no owner key, and the test
//! stages' key cannot sign release stages. Each case runs the real binary and shows the
//! edit refused: a stage exits 3 with nothing written, `verify` exits 4.

use crate::{assert_code, text, Backend, Repo, SHA};
use ledger_core::{ArtifactKind, Stage};
use serde_json::json;

const POLICY: &str = "policy/pipeline-policy.json";
const SIGNATURE: &str = "policy/pipeline-policy.sig.json";
const ROOT: &str = "policy/root.json";

/// A repository whose first commit stage ran, so the store pins the root.
fn pinned(backend: &Backend) -> Repo {
    let repo = Repo::on(backend);
    assert_code(
        &repo.ledger(&["stage", "commit", "--sha", SHA, "--", "true"]),
        0,
    );
    assert!(repo.has_object("trust/root/1.json"));
    repo
}

/// The stage after commit is refused (exit 3): its command not run, nothing at all
/// written (no evidence, no policy copy, nothing pinned); `verify` fails (exit 4);
/// both say `needle`.
#[track_caller]
fn assert_untrusted(repo: &Repo, needle: &str) {
    let before = repo.stored();
    let args = ["stage", "integration", "--sha", SHA, "--", "echo", "RAN-IT"];
    let out = repo.ledger(&args);
    assert_code(&out, 3);
    assert!(text(&out).contains(needle), "{}", text(&out));
    assert!(!text(&out).contains("RAN-IT"), "{}", text(&out));
    assert_eq!(repo.stored(), before, "nothing may be written");
    let out = repo.ledger(&["verify", SHA]);
    assert_code(&out, 4);
    assert!(text(&out).contains(needle), "{}", text(&out));
}

/// [`assert_untrusted`] for a policy that is not in force, and `show`, `report` and
/// `status` refuse too (exit 4), naming `needle` and `ledger policy sign`.
#[track_caller]
fn assert_policy_refused(repo: &Repo, needle: &str) {
    assert_untrusted(repo, needle);
    for args in [&["show", SHA][..], &["report", SHA], &["status"]] {
        let out = repo.ledger(args);
        assert_code(&out, 4);
        let shown = text(&out);
        assert!(shown.contains(needle), "{args:?}: {shown}");
        assert!(shown.contains("ledger policy sign"), "{args:?}: {shown}");
    }
}

fn a_policy_edited_in_the_checkout_is_refused_until_an_owner_signs_it(backend: Backend) {
    let repo = pinned(&backend);
    // The pull request drops the integration gate's conditions.
    repo.edit_policy_unsigned(|p| p["stages"]["integration"] = json!({"requires": []}));
    assert_policy_refused(&repo, "edited after it was signed");
    let out = repo.ledger(&["stage", "integration", "--sha", SHA, "--", "true"]);
    assert!(text(&out).contains("ledger policy sign"), "{}", text(&out));
    // `policy show` names the change and says it is not in force.
    let out = repo.ledger(&["policy", "show"]);
    assert_code(&out, 4);
    assert!(text(&out).contains("NOT in force"), "{}", text(&out));
    assert!(
        text(&out).contains("-      \"requires\": ["),
        "{}",
        text(&out)
    );
    // The owner signs it: now it gates.
    assert_code(&repo.ledger(&["policy", "sign"]), 0);
    assert_code(
        &repo.ledger(&["stage", "integration", "--sha", SHA, "--", "true"]),
        0,
    );
    assert_code(&repo.ledger(&["verify", SHA]), 0);
}

fn a_checkout_that_brings_its_own_owners_gains_nothing(backend: Backend) {
    let repo = pinned(&backend);
    // The attacker sets up ledger elsewhere (their own owner key, root and
    // signature) over a weakened copy of this policy, and commits all three.
    let attacker = Repo::new();
    assert_code(
        &attacker.ledger(&["stage", "commit", "--sha", SHA, "--", "true"]),
        0,
    );
    repo.edit_policy_unsigned(|p| p["stages"]["integration"] = json!({"requires": []}));
    std::fs::copy(repo.path().join(POLICY), attacker.path().join(POLICY)).unwrap();
    assert_code(&attacker.ledger(&["policy", "sign"]), 0);
    let bring = |files: &[&str]| {
        for f in files {
            std::fs::copy(attacker.path().join(f), repo.path().join(f)).unwrap();
        }
    };
    bring(&[ROOT, SIGNATURE]);
    // The store's pinned root wins over the checkout's version 1.
    assert_untrusted(&repo, "not signed by the policy owners");
    // A root version 2 naming the attacker, signed by the attacker: refused too.
    assert_code(
        &attacker.ledger(&["policy", "rotate", "--owner", ".ledger/policy-owner.pub"]),
        0,
    );
    assert_code(&attacker.ledger(&["policy", "sign", "--root"]), 0);
    bring(&[ROOT]);
    assert_untrusted(&repo, "from the owners of version 1");
}

/// The pull request drops the signature file along with its edit: a policy nobody
/// signed is refused the same way.
fn a_policy_without_any_signature_is_refused(backend: Backend) {
    let repo = pinned(&backend);
    repo.edit_policy_unsigned(|p| p["stages"]["integration"] = json!({"requires": []}));
    std::fs::remove_file(repo.path().join(SIGNATURE)).unwrap();
    assert_policy_refused(&repo, "is not signed by the policy owners");
}

fn evidence_gated_by_an_unsigned_policy_is_refused_by_the_next_gate(backend: Backend) {
    let repo = Repo::on(&backend);
    // Commit evidence recorded under a weakened policy nobody signed: its copy is in
    // the store, as a stage would have stored it, and the envelope is validly signed
    // by the test key.
    let weak = br#"{"version": 1, "keys": []}"#.to_vec();
    let digest = ledger_core::Sha256Digest::of(&weak).to_hex();
    repo.tamper_object(&format!("policies/{digest}.json"), weak);
    repo.record(ArtifactKind::Commit, SHA, |p| {
        p["policy_sha256"] = digest.clone().into();
    });
    let out = repo.ledger(&["gate", "integration", "--sha", SHA]);
    assert_code(&out, 3);
    assert!(text(&out).contains("never signed"), "{}", text(&out));
    assert_untrusted(&repo, "never signed");
}

fn each_zone_key_signs_only_its_own_stages(backend: Backend) {
    let repo = Repo::on(&backend);
    // The release key cannot sign a test stage …
    let out = repo.ledger(&[
        "stage",
        "commit",
        "--sha",
        SHA,
        "--key",
        ".ledger/release.key",
        "--",
        "true",
    ]);
    assert_code(&out, 2);
    assert!(text(&out).contains("not trusted"), "{}", text(&out));
    // … and the test key cannot sign a release stage, even with every gate open.
    // (`build` first needs the commit in a git repository, which this one is not; the
    // signer check is the same code for every stage.)
    repo.chain_before(Stage::Decide, SHA);
    for stage in ["publish", "deploy", "smoke", "decide"] {
        let out = repo.ledger(&["stage", stage, "--sha", SHA, "--key", ".ledger/test.key"]);
        assert_code(&out, 2);
        assert!(
            text(&out).contains("not trusted"),
            "{stage}: {}",
            text(&out)
        );
    }
    // Nor can the owner key sign evidence at all.
    let out = repo.ledger(&[
        "stage",
        "commit",
        "--sha",
        SHA,
        "--key",
        ".ledger/policy-owner.key",
        "--",
        "true",
    ]);
    assert_code(&out, 2);
}

fn rotating_the_owners_needs_the_old_owners(backend: Backend) {
    let repo = pinned(&backend);
    repo.generate_key("new-owner");
    assert_code(
        &repo.ledger(&["policy", "rotate", "--owner", "new-owner.pub"]),
        0,
    );
    // Signed by the new owner alone: the chain refuses it.
    assert_code(
        &repo.ledger(&["policy", "sign", "--root", "--key", "new-owner.key"]),
        0,
    );
    assert_untrusted(
        &repo,
        "root version 2 has 0 valid signature(s) from the owners of version 1",
    );
    // With the old owner's signature too, the next stage pins version 2 …
    assert_code(&repo.ledger(&["policy", "sign", "--root"]), 0);
    let out = repo.ledger(&["stage", "integration", "--sha", SHA, "--", "true"]);
    // … but the policy is signed by the old owner only, who no longer owns it.
    assert_code(&out, 3);
    assert!(text(&out).contains("root version 2"), "{}", text(&out));
    assert_code(
        &repo.ledger(&["policy", "sign", "--key", "new-owner.key"]),
        0,
    );
    assert_code(
        &repo.ledger(&["stage", "integration", "--sha", SHA, "--", "true"]),
        0,
    );
    assert!(repo.has_object("trust/root/2.json"));
    // The commit evidence, gated by the policy the old owner signed, still verifies.
    assert_code(&repo.ledger(&["verify", SHA]), 0);
    // The old owner can no longer sign policies.
    assert_code(&repo.ledger(&["policy", "sign"]), 2);
}

fn the_ci_pinned_owners_win_over_the_store(backend: Backend) {
    let repo = pinned(&backend);
    let owner = repo.key_id(".ledger/policy-owner.pub");
    let other = repo.generate_key("other");
    let run = |owners: &str| {
        repo.ledger_env(
            &["stage", "integration", "--sha", SHA, "--", "true"],
            &[("LEDGER_POLICY_OWNERS", owners)],
        )
    };
    let out = run(&other);
    assert_code(&out, 3);
    assert!(
        text(&out).contains("LEDGER_POLICY_OWNERS"),
        "{}",
        text(&out)
    );
    let out = repo.ledger_env(&["verify", SHA], &[("LEDGER_POLICY_OWNERS", &other)]);
    assert_code(&out, 4);
    assert_code(&run(&owner), 0);
    let out = run("not-a-key-id");
    assert_code(&out, 2);
}

on_both_backends!(
    a_policy_edited_in_the_checkout_is_refused_until_an_owner_signs_it,
    a_checkout_that_brings_its_own_owners_gains_nothing,
    evidence_gated_by_an_unsigned_policy_is_refused_by_the_next_gate,
    a_policy_without_any_signature_is_refused,
    each_zone_key_signs_only_its_own_stages,
    rotating_the_owners_needs_the_old_owners,
    the_ci_pinned_owners_win_over_the_store,
);

/// `LEDGER_POLICY_OWNERS` closes the first-use window and holds against the bucket:
/// an empty store and a checkout bringing the attacker's owners, root and signature
/// (nothing run, nothing pinned); a store root replaced behind `ledger`'s back; and
/// the setting names exactly the owners (one more is not the same set).
#[test]
fn the_ci_owners_close_the_first_use_window_and_name_exactly_the_owners() {
    let repo = Repo::new();
    let owner = repo.key_id(".ledger/policy-owner.pub");
    let owners = [("LEDGER_POLICY_OWNERS", owner.as_str())];
    let attacker = Repo::new();
    attacker.edit_policy(|p| p["stages"]["commit"] = json!({"requires": []}));
    for f in [POLICY, SIGNATURE, ROOT] {
        std::fs::copy(attacker.path().join(f), repo.path().join(f)).unwrap();
    }
    assert!(repo.stored().is_empty(), "{:?}", repo.stored());
    let commit = ["stage", "commit", "--sha", SHA, "--", "echo", "RAN-IT"];
    let out = repo.ledger_env(&commit, &owners);
    assert_code(&out, 3);
    assert!(!text(&out).contains("RAN-IT"), "{}", text(&out));
    assert!(
        text(&out).contains("LEDGER_POLICY_OWNERS"),
        "{}",
        text(&out)
    );
    assert!(repo.stored().is_empty(), "pinned: {:?}", repo.stored());

    // With its own owners' files, a first stage runs and pins their root.
    let fresh = Repo::new();
    let owner = fresh.key_id(".ledger/policy-owner.pub");
    let owners = [("LEDGER_POLICY_OWNERS", owner.as_str())];
    assert_code(&fresh.ledger_env(&commit, &owners), 0);
    let both = format!("{owner},{}", fresh.generate_key("other"));
    let out = fresh.ledger_env(&["verify", SHA], &[("LEDGER_POLICY_OWNERS", &both)]);
    assert_code(&out, 4);
    assert!(
        text(&out).contains("LEDGER_POLICY_OWNERS"),
        "{}",
        text(&out)
    );

    // A bucket writer swaps the pinned root for the attacker's version 1.
    let theirs = std::fs::read(attacker.path().join(ROOT)).unwrap();
    fresh.tamper_object("trust/root/1.json", theirs);
    let integration = ["stage", "integration", "--sha", SHA, "--", "echo", "RAN-IT"];
    let out = fresh.ledger_env(&integration, &owners);
    assert_code(&out, 3);
    assert!(!text(&out).contains("RAN-IT"), "{}", text(&out));
    let out = fresh.ledger_env(&["verify", SHA], &owners);
    assert_code(&out, 4);
}

#[test]
fn a_store_set_up_before_trust_zones_keeps_verifying_after_adoption() {
    let repo = Repo::bare();
    // The layout an older `ledger init` left: one key for every stage, an unsigned
    // policy, evidence recorded under it.
    let key = ledger_core::SigningKey::generate();
    let pem = key.to_pkcs8_pem().unwrap();
    std::fs::create_dir_all(repo.path().join(".ledger")).unwrap();
    std::fs::write(repo.path().join(".ledger/signing.key"), pem.expose()).unwrap();
    std::fs::create_dir_all(repo.path().join("policy")).unwrap();
    let policy = ledger_verify::default_policy_json(key.public()).unwrap();
    std::fs::write(repo.path().join(POLICY), &policy).unwrap();
    let out = repo.ledger(&["stage", "commit", "--sha", SHA, "--", "true"]);
    assert_code(&out, 3);
    assert!(text(&out).contains("policy/root.json"), "{}", text(&out));
    // Adopting signs the same bytes with a new owner key; nothing else changes.
    let out = repo.ledger(&["init"]);
    assert_code(&out, 0);
    assert!(text(&out).contains("adopted"), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(repo.path().join(POLICY)).unwrap(),
        policy
    );
    for stage in ["commit", "integration"] {
        assert_code(
            &repo.ledger(&["stage", stage, "--sha", SHA, "--", "true"]),
            0,
        );
    }
    assert_code(&repo.ledger(&["verify", SHA]), 0);
    let out = repo.ledger(&["init"]);
    assert_code(&out, 2);
}

/// The README's "Using it in a repository", word for word, in a real git repository:
/// `ledger init`, commit the policy, wrap the checks, verify. No flags: three keys and
/// a signed policy need nothing more from a new user, and the evidence says the
/// command ran isolated, on the commit's clean tree, signed by the test-zone key.
#[test]
fn the_readme_walkthrough_needs_no_extra_flags() {
    use crate::source::git;
    let repo = Repo::bare();
    std::fs::remove_dir_all(repo.path().join(".git")).unwrap();
    git(repo.path(), &["init", "-q"]);
    std::fs::write(repo.path().join("app.txt"), "hello\n").unwrap();
    git(repo.path(), &["add", "app.txt"]);
    git(repo.path(), &["commit", "-q", "-m", "app"]);
    let run = |args: &[&str]| repo.exact_command(args).output().unwrap();
    assert_code(&run(&["init"]), 0);
    git(repo.path(), &["add", "policy/", ".gitignore"]);
    git(repo.path(), &["commit", "-q", "-m", "Add ledger policy"]);
    let sha = git(repo.path(), &["rev-parse", "HEAD"]);
    assert_code(
        &run(&["stage", "commit", "--", "sh", "-c", "echo 3 passed"]),
        0,
    );
    assert_code(&run(&["stage", "integration", "--", "true"]), 0);
    assert_code(&run(&["verify", &sha]), 0);
    let p = repo.predicate(&format!("commit/{sha}/commit.json"));
    assert_eq!(p["command"]["isolation"], "namespaces", "{p}");
    assert_eq!(p["source"]["tree"], "clean", "{p}");
    let shown = text(&run(&["show", &sha]));
    let test_key = repo.key_id(".ledger/test.pub");
    assert!(shown.contains(&test_key[..12]), "{shown}");
    // Read commands take what `git log --oneline` prints, and default to HEAD.
    assert_code(&run(&["verify"]), 0);
    assert_code(&run(&["verify", "HEAD"]), 0);
    let out = run(&["show", &sha[..7], "--json"]);
    assert_code(&out, 0);
    assert!(text(&out).contains(&sha), "{}", text(&out));
    assert_code(&run(&["report"]), 0);
    for bad in ["no-such-revision", "--output=/tmp/x", "HEAD~5"] {
        let out = run(&["verify", "--", bad]);
        assert_code(&out, 2);
        assert!(
            text(&out).contains("neither a full commit SHA nor a revision"),
            "{}",
            text(&out)
        );
    }
}
