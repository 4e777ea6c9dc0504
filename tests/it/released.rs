//! A release runs again as it was released, on the real engine and binary: `ledger
//! replay` and `ledger rollback` use the environment of `ledger.toml` in the SHA's own
//! tree (today's only with `--current-config`); a replay whose smoke fails restores
//! what ran before and records it, and does not take the release's promoted standing
//! away; `ledger status` raises an alarm while a rejected release runs; a container
//! with a hostile `dev.ledger.sha` label stops a deploy cleanly, before anything stops.

use crate::project::{engine, Project};
use crate::source::git;
use crate::{assert_code, text};
use serde_json::Value;

/// Commits release `n`: its image says `version` (baked in, as code would) and its
/// committed `ledger.toml` smoke-checks for exactly that version. Returns the SHA.
fn release(p: &Project, n: u8, version: &str) -> String {
    let dockerfile = p.repo.path().join("service/Dockerfile");
    let base = std::fs::read_to_string(&dockerfile).unwrap();
    let base = base.split("ENV APP_VERSION").next().unwrap().to_owned();
    std::fs::write(&dockerfile, format!("{base}ENV APP_VERSION={version}\n")).unwrap();
    p.configure("");
    let path = p.repo.path().join("ledger.toml");
    let toml = std::fs::read_to_string(&path)
        .unwrap()
        .replace("APP_VERSION = \"it\"", "RELEASE_CHANNEL = \"stable\"")
        .replace("/health\"", "/\"")
        .replace(
            "body_contains = \"ok\"",
            &format!("body_contains = '\"version\":\"{version}\"'"),
        );
    std::fs::write(&path, toml).unwrap();
    git(p.repo.path(), &["add", "-f", "ledger.toml"]);
    p.sha(n)
}

/// The version the environment serves, once it listens.
fn served(p: &Project) -> String {
    for _ in 0..80 {
        if let Some(body) = p.get("/").filter(|b| b.contains("\"version\"")) {
            let at = body.find("\"version\":\"").unwrap() + 11;
            return body[at..].split('"').next().unwrap().to_owned();
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    panic!("the environment serves nothing");
}

fn running_sha(p: &Project) -> String {
    let running: Vec<_> = p.containers().into_iter().filter(|c| c.running).collect();
    assert_eq!(running.len(), 1, "{running:?}");
    running[0].labels["dev.ledger.sha"].clone()
}

fn status(p: &Project) -> (String, Value) {
    let out = p.ledger(&["status"]);
    assert_code(&out, 0);
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    let out = p.ledger(&["status", "--json"]);
    assert_code(&out, 0);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    crate::read::assert_output_schema("status", &v);
    (shown, v)
}

#[test]
fn replay_and_rollback_run_a_release_under_its_own_configuration() {
    let Some(_) = engine() else { return };
    let p = Project::new(None);
    let a = release(&p, 80, "1");
    p.run_through(&a, "decide");
    let b = release(&p, 81, "2");
    p.run_through(&b, "decide");
    assert_eq!(served(&p), "2");

    // Today's ledger.toml expects version 2; A's own expects 1, and A passes it.
    let out = p.ledger(&["replay", &a]);
    assert_code(&out, 0);
    assert!(
        text(&out).contains(&format!(
            "ok configuration: environment `production` as ledger.toml of {}",
            &a[..12]
        )),
        "{}",
        text(&out)
    );
    assert_eq!(running_sha(&p), a);
    assert_eq!(served(&p), "1");
    let smoke = p
        .repo
        .predicate(&format!("deploy/{a}/api-smoke.attempt-2.json"));
    assert_eq!(smoke["result"], "pass");
    let decision = p
        .repo
        .predicate(&format!("release/{a}/decision.attempt-2.json"));
    assert_eq!(decision["decision"], "promote");

    // B again, by rollback under its own configuration.
    assert_code(&p.ledger(&["rollback", "--to", &b]), 0);
    assert_eq!(served(&p), "2");

    // A release whose tree has no ledger.toml is refused before anything runs,
    // unless today's file is asked for.
    git(p.repo.path(), &["rm", "-q", "--cached", "ledger.toml"]);
    let bare = p.sha(82);
    let out = p.ledger(&["replay", &bare]);
    assert_code(&out, 2);
    let shown = text(&out);
    assert!(shown.contains("its tree has no ledger.toml"), "{shown}");
    assert!(shown.contains("--current-config"), "{shown}");
    assert_eq!(running_sha(&p), b, "a refusal touches nothing");
    // Likewise one that does not parse, and one without the environment.
    let toml = p.repo.path().join("ledger.toml");
    let today = std::fs::read_to_string(&toml).unwrap();
    let elsewhere = today.replace("name = \"production\"", "name = \"staging\"");
    for (n, content, why) in [
        (88, "repository = [", "is not valid TOML"),
        (89, &elsewhere, "configures no environment `production`"),
    ] {
        std::fs::write(&toml, content).unwrap();
        git(p.repo.path(), &["add", "-f", "ledger.toml"]);
        let sha = p.sha(n);
        std::fs::write(&toml, &today).unwrap();
        let out = p.ledger(&["replay", &sha]);
        assert_code(&out, 2);
        assert!(text(&out).contains(why), "{}", text(&out));
    }
    assert_eq!(running_sha(&p), b, "a refusal touches nothing");
    assert_code(&p.ledger(&["verify", &a]), 0);
}

#[test]
fn a_replay_whose_smoke_fails_restores_what_ran_and_keeps_the_release_promoted() {
    let Some(_) = engine() else { return };
    let p = Project::new(None);
    let a = release(&p, 83, "1");
    p.run_through(&a, "decide");
    let b = release(&p, 84, "2");
    p.run_through(&b, "decide");

    // Under today's file, asked for, A's smoke expects version 2: it fails.
    let out = p.ledger(&["replay", &a, "--current-config"]);
    assert_code(&out, 1);
    let shown = text(&out);
    assert!(
        shown.contains("today's ledger.toml (--current-config)"),
        "{shown}"
    );
    assert!(shown.contains(&format!("restored {b}")), "{shown}");
    let decision = p
        .repo
        .predicate(&format!("release/{a}/decision.attempt-2.json"));
    assert_eq!(decision["decision"], "reject");

    // B runs again, the same container, and the store says so.
    assert_eq!(running_sha(&p), b);
    assert_eq!(served(&p), "2");
    let restored = p
        .repo
        .predicate(&format!("infra/{b}/deployment.attempt-2.json"));
    assert_eq!(restored["result"], "pass");
    assert_eq!(restored["replay"], true);
    assert_eq!(restored["rollback_from"], a.as_str());
    assert_eq!(restored["previous_release"], a.as_str());
    let first = p.repo.predicate(&format!("infra/{b}/deployment.json"));
    assert_eq!(restored["containers"], first["containers"]);
    assert_code(&p.ledger(&["verify", &a]), 0);
    assert_code(&p.ledger(&["verify", &b]), 0);

    // A rejected release that does not run raises no alarm.
    let (shown, v) = status(&p);
    assert!(shown.contains(&format!("production   runs {b}")), "{shown}");
    assert!(!shown.contains("REJECTED RELEASE ALARM"), "{shown}");
    assert_eq!(v["environments"][0]["alarms"], serde_json::json!([]));

    every_newer_decision_must_verify(&p, &a, &b);

    // A's own run promoted it, so it is still a rollback target (its own config).
    let out = p.ledger(&["rollback", "--to", &a]);
    assert_code(&out, 0);
    assert!(
        text(&out).contains(&format!(
            "ok latest decision is promote: release/{a}/decision.json"
        )),
        "{}",
        text(&out)
    );
    assert_eq!(served(&p), "1");

    a_running_rejected_release_raises_the_alarm(&p, &b);
}

/// A rollback to `a` while a decision newer than its own does not verify: exit 4.
fn every_newer_decision_must_verify(p: &Project, a: &str, b: &str) {
    let key = format!("release/{a}/decision.attempt-2.json");
    let original = p.repo.break_signature(&key);
    assert_code(&p.ledger(&["rollback", "--to", a]), 4);
    std::fs::write(p.repo.object(&key), original).unwrap();
    assert_eq!(running_sha(p), b);
}

/// Release C deploys and its own smoke fails: the alarm while it runs, none once a
/// replay passed, and still no rollback target.
fn a_running_rejected_release_raises_the_alarm(p: &Project, b: &str) {
    // A release rejected by its own run, running: the alarm, in text and JSON.
    let c = release(p, 85, "3");
    p.run_through(&c, "deploy");
    let path = p.repo.path().join("ledger.toml");
    let toml = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, toml.replace("retries = 40", "retries = 1")).unwrap();
    std::fs::write(
        &path,
        std::fs::read_to_string(&path)
            .unwrap()
            .replace("\"version\":\"3\"", "\"version\":\"4\""),
    )
    .unwrap();
    assert_code(&p.ledger(&["stage", "smoke", "--sha", &c]), 1);
    assert_code(&p.ledger(&["stage", "decide", "--sha", &c]), 1);
    let (shown, v) = status(p);
    assert!(shown.contains("REJECTED RELEASE ALARM"), "{shown}");
    assert!(
        shown.contains(&format!("ledger rollback --to {b} --env production")),
        "{shown}"
    );
    let alarms = v["environments"][0]["alarms"].to_string();
    assert!(
        alarms.contains(&format!("runs {c}, whose latest decision")),
        "{alarms}"
    );
    assert!(alarms.contains("is reject"), "{alarms}");

    // A replay that passes (C's own configuration expects 3) ends the alarm, but does
    // not make a release its own run rejected a rollback target.
    assert_code(&p.ledger(&["replay", &c]), 0);
    let (shown, _) = status(p);
    assert!(!shown.contains("REJECTED RELEASE ALARM"), "{shown}");
    let out = p.ledger(&["rollback", "--to", &c]);
    assert_code(&out, 3);
    assert!(text(&out).contains("own run"), "{}", text(&out));
}

#[test]
fn a_container_with_a_hostile_sha_label_stops_a_deploy_before_anything_stops() {
    let Some(engine) = engine() else { return };
    let p = Project::new(None);
    let (good, next) = (p.sha(86), p.sha(87));
    p.run_through(&good, "deploy");
    p.run_through(&next, "publish");
    let ours = p.containers().into_iter().find(|c| c.running).unwrap();
    let rt = crate::project::runtime();

    // A label that is no SHA, then one whose 12th byte falls inside a character.
    for (suffix, label, shown) in [
        ("plain", "not-a-sha", "\"not-a-sha\""),
        (
            "wide",
            "aaaaaaaaaaaé€ü🙂-release",
            "aaaaaaaaaaaé€ü🙂-release",
        ),
    ] {
        let rogue = p.start_by_hand(&ours.image_id, suffix, label);
        let out = p.ledger(&["stage", "deploy", "--sha", &next, "--lease-wait", "2"]);
        assert_code(&out, 2);
        let said = text(&out);
        assert!(!said.contains("panicked"), "{said}");
        assert!(said.contains(&format!("{}-{suffix}", p.name)), "{said}");
        assert!(
            said.contains("not a commit SHA; nothing was stopped"),
            "{said}"
        );
        assert!(said.contains(shown), "{said}");
        assert!(said.contains("hint: remove"), "{said}");
        let still = p.containers();
        assert!(
            still.iter().any(|c| c.id == ours.id && c.running),
            "{still:?}"
        );
        assert!(p
            .repo
            .stored()
            .iter()
            .all(|k| !k.starts_with(&format!("infra/{next}/"))));
        rt.block_on(engine.remove(&rogue)).unwrap();
    }

    // The lease was released: the next deploy goes through at once.
    let out = p.ledger(&["stage", "deploy", "--sha", &next, "--lease-wait", "2"]);
    assert_code(&out, 0);
    assert_eq!(running_sha(&p), next);
}
