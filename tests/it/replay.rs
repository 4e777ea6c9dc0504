//! Replay and rollback on the real engine: a stored release runs again from its
//! digest manifest with no build (image sets and build evidence are compared before
//! and after), rollback goes only to promoted releases, and every refusal names its
//! step with the documented exit code before anything running is touched.

use crate::project::{engine, runtime, Project};
use crate::{assert_code, text};
use ledger_docker::Engine;
use std::collections::BTreeSet;

/// Ids of the images the engine holds that were built from any of `shas`.
fn images_of(engine: &Engine, shas: &[&str]) -> BTreeSet<String> {
    let rt = runtime();
    shas.iter()
        .flat_map(|s| {
            rt.block_on(engine.images(&[("org.opencontainers.image.revision", s)]))
                .unwrap()
        })
        .map(|i| i.id)
        .collect()
}

/// The SHA of the one running container of the project.
fn running(p: &Project) -> String {
    let running: Vec<_> = p.containers().into_iter().filter(|c| c.running).collect();
    assert_eq!(running.len(), 1, "{running:?}");
    running[0].labels["dev.ledger.sha"].clone()
}

fn stored_under(p: &Project, prefix: &str) -> Vec<String> {
    p.repo
        .stored()
        .into_iter()
        .filter(|k| k.starts_with(prefix))
        .collect()
}

fn sha256_of(path: &std::path::Path) -> String {
    ledger_core::Sha256Digest::of(&std::fs::read(path).unwrap()).to_string()
}

#[test]
fn replay_runs_an_earlier_release_again_without_building() {
    let Some(engine) = engine() else { return };
    let p = Project::new(None);
    let (first, second) = (p.sha(20), p.sha(21));
    p.run_through(&first, "decide");
    p.run_through(&second, "decide");
    assert_eq!(running(&p), second, "the environment moved on");
    let images_before = images_of(&engine, &[&first, &second]);
    let manifest_key = format!("release-candidate/{first}/manifest.json");
    let digest = p.repo.predicate(&manifest_key)["images"]["api"]["digest"]
        .as_str()
        .unwrap()
        .to_owned();

    // The fixture's ledger.toml is not committed: run under today's file, on request.
    let out = p.ledger(&["replay", &first, "--current-config"]);
    assert_code(&out, 0);
    let shown = text(&out);
    for line in [
        "ok stored chain verifies",
        "ok every digest of the manifest is present",
        "ok revision labels equal the SHA",
        "no image was built",
    ] {
        assert!(shown.contains(line), "missing {line:?} in\n{shown}");
    }

    // The same digests run; nothing was built.
    assert_eq!(running(&p), first);
    let container = p.containers().into_iter().find(|c| c.running).unwrap();
    assert_eq!(container.image_id, digest);
    assert_eq!(images_of(&engine, &[&first, &second]), images_before);
    assert_eq!(
        stored_under(&p, &format!("build/{first}/")),
        vec![
            format!("build/{first}/build.json"),
            format!("build/{first}/build.provenance.json")
        ]
    );

    // New attempts, each naming the replayed manifest.
    let manifest_sha256 = sha256_of(&p.repo.object(&manifest_key));
    for key in [
        format!("infra/{first}/deployment.attempt-2.json"),
        format!("deploy/{first}/api-smoke.attempt-2.json"),
        format!("release/{first}/decision.attempt-2.json"),
    ] {
        let pred = p.repo.predicate(&key);
        assert_eq!(pred["replay"], true, "{key}");
        assert_eq!(pred["manifest"]["key"], manifest_key.as_str(), "{key}");
        assert_eq!(
            pred["manifest"]["sha256"],
            manifest_sha256.as_str(),
            "{key}"
        );
        assert!(pred.get("rollback_from").is_none(), "{key}");
    }
    let decision = p
        .repo
        .predicate(&format!("release/{first}/decision.attempt-2.json"));
    assert_eq!(decision["decision"], "promote");
    assert_code(&p.ledger(&["verify", &first]), 0);
    assert!(p.get("/health").unwrap().contains("200"));
}

#[test]
fn rollback_goes_only_to_promoted_releases_and_says_which_step_refused() {
    let Some(_) = engine() else { return };
    let p = Project::new(None);
    let (good, rejected, undecided) = (p.sha(22), p.sha(23), p.sha(24));
    p.run_through(&good, "decide");
    // `rejected` deploys, but its smoke check fails: the decision is reject.
    p.run_through(&rejected, "deploy");
    p.configure_with("", "/missing");
    assert_code(&p.ledger(&["stage", "smoke", "--sha", &rejected]), 1);
    assert_code(&p.ledger(&["stage", "decide", "--sha", &rejected]), 1);
    p.configure("");
    p.run_through(&undecided, "publish");
    assert_eq!(running(&p), rejected);

    let out = p.ledger(&["rollback", "--to", "abc123"]);
    assert_code(&out, 2);
    assert!(text(&out).contains("40"), "{}", text(&out));

    let out = p.ledger(&["rollback", "--to", &rejected, "--current-config"]);
    assert_code(&out, 3);
    let shown = text(&out);
    assert!(shown.contains("x latest decision is promote"), "{shown}");
    assert!(shown.contains("/rollback/require_decision"), "{shown}");
    assert!(shown.contains("is reject"), "{shown}");

    let out = p.ledger(&["rollback", "--to", &undecided, "--current-config"]);
    assert_code(&out, 3);
    assert!(text(&out).contains("was never decided"), "{}", text(&out));
    assert_eq!(running(&p), rejected, "refusals touch nothing");

    let out = p.ledger(&["rollback", "--to", &good, "--current-config"]);
    assert_code(&out, 0);
    assert!(
        text(&out).contains(&format!("rolled back from {rejected}")),
        "{}",
        text(&out)
    );
    assert_eq!(running(&p), good);
    for key in [
        format!("infra/{good}/deployment.attempt-2.json"),
        format!("deploy/{good}/api-smoke.attempt-2.json"),
        format!("release/{good}/decision.attempt-2.json"),
    ] {
        let pred = p.repo.predicate(&key);
        assert_eq!(pred["rollback_from"], rejected.as_str(), "{key}");
        assert_eq!(pred["replay"], true, "{key}");
    }
    assert_code(&p.ledger(&["verify", &good]), 0);
}

#[test]
fn rollback_to_a_pruned_or_tampered_release_fails_before_anything_stops() {
    let Some(engine) = engine() else { return };
    let p = Project::new(None);
    let (old, current) = (p.sha(25), p.sha(26));
    p.run_through(&old, "decide");
    p.run_through(&current, "decide");

    // The old release's image is gone from the engine (pruned): exit 5, digest named.
    let digest = p
        .repo
        .predicate(&format!("release-candidate/{old}/manifest.json"))["images"]["api"]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    runtime().block_on(engine.remove_image(&digest)).unwrap();
    let out = p.ledger(&["rollback", "--to", &old, "--current-config"]);
    assert_code(&out, 5);
    let shown = text(&out);
    assert!(shown.contains(&digest), "{shown}");
    assert!(shown.contains("pruned"), "{shown}");
    assert!(
        shown.contains("x every digest of the manifest is present"),
        "{shown}"
    );
    assert_eq!(running(&p), current);
    assert!(stored_under(&p, &format!("infra/{old}/deployment.attempt-2")).is_empty());

    // The current release's manifest altered after the fact: exit 4.
    p.repo
        .break_signature(&format!("release-candidate/{current}/manifest.json"));
    let out = p.ledger(&["rollback", "--to", &current, "--current-config"]);
    assert_code(&out, 4);
    assert!(text(&out).contains("does not verify"), "{}", text(&out));
    assert_eq!(running(&p), current);
}

/// A release promoted, then rejected by a later decision of its own run, and that
/// reject deleted from the store by an attacker with write access: rollback walks
/// from the latest decision the log names, finds it missing and rolls nothing back.
#[test]
fn rollback_refuses_a_release_whose_later_reject_was_deleted() {
    let Some(_) = engine() else { return };
    let p = Project::new(None);
    let (good, current) = (p.sha(27), p.sha(28));
    p.run_through(&good, "decide");
    // Its smoke fails now; decided again in its own run: reject (attempt 2).
    p.configure_with("", "/missing");
    assert_code(&p.ledger(&["stage", "smoke", "--sha", &good]), 1);
    assert_code(&p.ledger(&["stage", "decide", "--sha", &good]), 1);
    p.configure("");
    p.run_through(&current, "decide");
    let reject = format!("release/{good}/decision.attempt-2");
    let hidden = stored_under(&p, &reject);
    assert!(!hidden.is_empty(), "{:?}", p.repo.stored());
    for key in &hidden {
        p.repo.delete_object(key);
    }
    let out = p.ledger(&["rollback", "--to", &good, "--current-config"]);
    assert_code(&out, 4);
    assert!(text(&out).contains(&reject), "{}", text(&out));
    assert_eq!(running(&p), current, "a refused rollback touched what runs");
}

/// A release that was only ever decided by a replay (published, never decided in a
/// run of its own, then replayed: the replay's decision promotes) is no rollback
/// target, and the rule holds with the policy's `rollback` section removed.
#[test]
fn a_release_decided_only_by_a_replay_is_no_rollback_target() {
    let Some(_) = engine() else { return };
    let p = Project::new(None);
    let (good, replayed) = (p.sha(26), p.sha(27));
    p.run_through(&good, "decide");
    p.run_through(&replayed, "publish");
    assert_code(&p.ledger(&["replay", &replayed, "--current-config"]), 0);
    let decision = p
        .repo
        .predicate(&format!("release/{replayed}/decision.json"));
    assert_eq!(decision["replay"], true, "{decision}");
    assert_eq!(running(&p), replayed);
    let never = "was never decided outside a replay";
    let out = p.ledger(&["rollback", "--to", &replayed, "--current-config"]);
    assert_code(&out, 3);
    assert!(text(&out).contains(never), "{}", text(&out));
    p.repo.edit_policy(|policy| {
        policy.as_object_mut().unwrap().remove("rollback");
    });
    let out = p.ledger(&["rollback", "--to", &replayed, "--current-config"]);
    assert_code(&out, 3);
    assert!(text(&out).contains(never), "{}", text(&out));
    assert_eq!(running(&p), replayed, "refusals touch nothing");
    // The rehearsal docs/replay-and-rollback.md suggests: a SHA no commit has.
    let nowhere = "0000000000000000000000000000000000000001";
    let out = p.ledger(&["rollback", "--to", nowhere]);
    assert_code(&out, 2);
    assert!(text(&out).contains("x configuration"), "{}", text(&out));
    let out = p.ledger(&["rollback", "--to", nowhere, "--current-config"]);
    assert_code(&out, 3);
    assert!(text(&out).contains("never decided"), "{}", text(&out));
}

/// A replay runs only a release whose chain passes the `replay` gate, not one that
/// merely verifies: with its latest integration attempt failed since it was
/// published, a replay is denied naming the gate and runs nothing; with the policy's
/// `replay` gate removed, the default gate denies it the same way.
#[test]
fn a_replay_is_denied_when_the_chain_no_longer_passes_its_gate() {
    let Some(_) = engine() else { return };
    let p = Project::new(None);
    let s = p.sha(28);
    p.run_through(&s, "publish");
    let failed = ["stage", "integration", "--sha", &s, "--", "false"];
    assert_code(&p.ledger(&failed), 1);
    assert_code(&p.ledger(&["verify", &s]), 0);
    let denied = || {
        let out = p.ledger(&["replay", &s, "--current-config"]);
        assert_code(&out, 3);
        assert!(text(&out).contains("/replay"), "{}", text(&out));
        assert!(text(&out).contains("integration"), "{}", text(&out));
        assert!(
            p.containers().is_empty(),
            "a denied replay started something"
        );
    };
    denied();
    p.repo.edit_policy(|policy| {
        assert!(policy.as_object_mut().unwrap().remove("replay").is_some());
    });
    denied();
}

/// A rollback whose redeploy is not healthy (today's configuration makes it start
/// unhealthy) restores what ran, records the failure (exit 1), and leaves the
/// target a valid rollback target: its own run's decision is unchanged.
#[test]
fn a_rollback_whose_redeploy_is_unhealthy_restores_what_ran() {
    let Some(_) = engine() else { return };
    let p = Project::new(None);
    let (good, current) = (p.sha(29), p.sha(30));
    p.run_through(&good, "decide");
    p.run_through(&current, "decide");
    p.configure(", UNHEALTHY = \"1\"");
    let out = p.ledger(&["rollback", "--to", &good, "--current-config"]);
    assert_code(&out, 1);
    assert_eq!(running(&p), current, "what ran was not restored");
    let d = p
        .repo
        .predicate(&format!("infra/{good}/deployment.attempt-2.json"));
    assert_eq!(d["result"], "fail", "{d}");
    assert_eq!(d["failure"]["restored"], true, "{d}");
    assert_eq!(d["rollback_from"], current.as_str(), "{d}");
    assert_code(&p.ledger(&["verify", &good]), 0);
    p.configure("");
    assert_code(
        &p.ledger(&["rollback", "--to", &good, "--current-config"]),
        0,
    );
    assert_eq!(running(&p), good);
    let out = p.ledger(&["status"]);
    assert_code(&out, 0);
    let rolled = format!("rollback from {}", &current[..12]);
    assert!(text(&out).contains(&rolled), "{}", text(&out));
}

/// When nothing ran in the environment before a replay whose smoke fails, there is
/// nothing to restore: the replayed release keeps running (exit 1, its decision a
/// reject), and `status` raises the rejected-release alarm until someone acts
/// (docs/replay-and-rollback.md, the limitation).
#[test]
fn a_failed_replay_into_an_empty_environment_runs_on_under_the_alarm() {
    let Some(_) = engine() else { return };
    let p = Project::new(None);
    let s = p.sha(31);
    p.run_through(&s, "publish");
    assert!(p.containers().is_empty());
    p.configure_with("", "/missing");
    assert_code(&p.ledger(&["replay", &s, "--current-config"]), 1);
    let decision = p.repo.predicate(&format!("release/{s}/decision.json"));
    assert_eq!(decision["decision"], "reject", "{decision}");
    assert_eq!(running(&p), s);
    let out = p.ledger(&["status"]);
    assert!(
        text(&out).contains("REJECTED RELEASE ALARM"),
        "{}",
        text(&out)
    );
}
