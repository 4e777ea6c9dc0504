//! `ledger prune` with production on the second engine: the copies of a
//! never-promoted release are found on every engine that has one (the one it was
//! built on, the one that pulled it) and in the registry, and deleted from each; the
//! release running on the second engine is protected on all of them; the prune
//! record names the engine of every engine copy.

use super::{on_engine, remote, write_config, Remote};
use crate::assert_code;
use crate::project::environment_toml;
use serde_json::Value;

#[test]
fn prune_deletes_copies_on_every_engine_and_keeps_what_runs_on_any() {
    let Some(r) = remote(true) else {
        return;
    };
    let Remote { t, p } = &r;
    let env = environment_toml(
        "production",
        p.port,
        "127.0.0.1",
        &on_engine(t, &t.certs),
        "",
    );
    write_config(p, &[env, "\n[prune]\nthreshold = 10\n".to_owned()]);
    let (gone, kept) = (p.sha(1), p.sha(2));
    p.run_through(&gone, "deploy");
    p.run_through(&kept, "deploy");
    let image_id = |sha: &str| {
        let build = p.repo.predicate(&format!("build/{sha}/build.json"));
        build["images"][0]["image_id"].as_str().unwrap().to_owned()
    };
    let (gone_id, kept_id) = (image_id(&gone), image_id(&kept));
    let on_remote = |id: &str| {
        let out = std::process::Command::new("docker")
            .args(["-H", &t.socket, "image", "inspect", id])
            .output()
            .unwrap();
        out.status.success()
    };
    assert!(
        on_remote(&gone_id),
        "the second engine pulled the first release"
    );

    let out = p.ledger(&["prune", "--min-age-days", "0", "--apply", "--json"]);
    assert_code(&out, 0);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let deleted = report["deleted"].as_array().unwrap();
    let engines: Vec<&str> = deleted
        .iter()
        .filter(|d| d["where"] == "engine")
        .map(|d| d["engine"].as_str().unwrap())
        .collect();
    assert_eq!(engines.len(), 2, "{report}");
    assert!(engines.contains(&t.endpoint.as_str()), "{report}");
    assert!(deleted.iter().any(|d| d["where"] == "registry"), "{report}");
    assert!(deleted
        .iter()
        .all(|d| d["sha"] == gone.as_str() && d["ok"] == true));
    assert!(!on_remote(&gone_id), "deleted on the second engine");
    assert!(on_remote(&kept_id), "what runs there stays");
    let record = p.repo.predicate(report["record"].as_str().unwrap());
    let recorded = record["deleted"].to_string();
    assert!(recorded.contains(&t.endpoint), "{recorded}");
    assert!(p.get("/health").is_some_and(|r| r.contains("ok")));
}
