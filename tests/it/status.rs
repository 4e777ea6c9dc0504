//! `status` over recorded evidence: which release counts as the last promoted one
//! (a replay of an old release does not; a release whose newest `reject` was deleted
//! does not either) and which runs (not one whose deployment is gone or replaced),
//! with what could not be vouched for named under `ignored`.

use crate::read::{assert_output_schema, json};
use crate::{assert_code, Repo};
use ledger_core::ArtifactKind;

#[test]
fn a_replayed_old_release_does_not_become_the_last_promoted_one() {
    let repo = Repo::new();
    let (a, b) = ("a".repeat(40), "b".repeat(40));
    repo.record(ArtifactKind::Decision, &a, |_| {});
    std::thread::sleep(std::time::Duration::from_millis(20));
    repo.record(ArtifactKind::Decision, &b, |_| {});
    std::thread::sleep(std::time::Duration::from_millis(20));
    // a is replayed after b was released: a fresh promote decision, but a replay.
    repo.record(ArtifactKind::Decision, &a, |p| {
        p["replay"] = true.into();
        p["manifest"] = serde_json::json!({
            "key": format!("release-candidate/{a}/manifest.json"), "sha256": "0".repeat(64)
        });
    });
    let out = repo.ledger(&["status", "--json"]);
    assert_code(&out, 0);
    let v = json(&out);
    assert_output_schema("status", &v);
    assert_eq!(v["last_promoted"]["sha"], b.as_str(), "{v:#}");
}

/// A release promoted, then rejected by a later decision of its own run while it
/// runs, and that reject deleted from the store: `status` takes the latest decision
/// the store lists or the log names, so the release is not called the last promoted
/// one, and the deleted decision is named under `ignored` (by the last-promoted
/// search and by the rejected-release alarm, which cannot vouch for it either).
#[test]
fn a_deleted_reject_does_not_make_a_release_the_last_promoted_one() {
    let repo = Repo::new();
    let (a, b) = ("a".repeat(40), "b".repeat(40));
    repo.record(ArtifactKind::Decision, &b, |_| {});
    std::thread::sleep(std::time::Duration::from_millis(20));
    repo.record(ArtifactKind::Decision, &a, |_| {});
    repo.record(ArtifactKind::Deployment, &a, |_| {});
    std::thread::sleep(std::time::Duration::from_millis(20));
    repo.record(ArtifactKind::Decision, &a, |p| {
        p["decision"] = "reject".into();
        p["result"] = "fail".into();
        p["reasons"] =
            serde_json::json!([{"rule": "/release/requires/0", "message": "smoke failed"}]);
    });
    let reject = format!("release/{a}/decision.attempt-2.json");
    repo.delete_object(&reject);
    let out = repo.ledger(&["status", "--json"]);
    assert_code(&out, 0);
    let v = json(&out);
    assert_output_schema("status", &v);
    assert_eq!(v["last_promoted"]["sha"], b.as_str(), "{v:#}");
    let ignored = v["ignored"].as_array().unwrap();
    let naming = ignored
        .iter()
        .filter(|i| i.as_str().unwrap().starts_with(&reject))
        .count();
    assert_eq!(naming, 2, "{v:#}");
    assert_eq!(v["environments"][0]["running"]["sha"], a.as_str(), "{v:#}");
}

/// Only deployment evidence that verifies says what runs: the newest deployment of
/// an environment deleted (the log still names it), or replaced by other bytes, is
/// named under `ignored`, and `status` does not report its release as running
/// there (the one before it is).
#[test]
fn a_deleted_or_replaced_deployment_does_not_say_what_runs() {
    for replace in [false, true] {
        let repo = Repo::new();
        let (a, b) = ("a".repeat(40), "b".repeat(40));
        repo.record(ArtifactKind::Deployment, &a, |_| {});
        std::thread::sleep(std::time::Duration::from_millis(20));
        repo.record(ArtifactKind::Deployment, &b, |_| {});
        let out = repo.ledger(&["status", "--json"]);
        assert_eq!(json(&out)["environments"][0]["running"]["sha"], b.as_str());
        let newest = format!("infra/{b}/deployment.json");
        if replace {
            let other = repo.read_object(&format!("infra/{a}/deployment.json"));
            repo.tamper_object(&newest, other);
        } else {
            repo.delete_object(&newest);
        }
        let out = repo.ledger(&["status", "--json"]);
        let v = json(&out);
        assert_output_schema("status", &v);
        assert_eq!(v["environments"][0]["running"]["sha"], a.as_str(), "{v:#}");
        let ignored = v["ignored"].as_array().unwrap();
        assert!(
            ignored
                .iter()
                .any(|i| i.as_str().unwrap().starts_with(&newest)),
            "replaced: {replace}: {v:#}"
        );
    }
}
