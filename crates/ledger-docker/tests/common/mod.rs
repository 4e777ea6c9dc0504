//! What the registry attachment tests share: the engine and registries `bash .ci/run`
//! starts (skipped when absent, unless `LEDGER_REQUIRE_DOCKER=1`, where that is a
//! failure), a `FROM scratch` image of its own built and pushed for each test, DSSE
//! envelopes to attach, and plain `curl` reads of the registry.

#![allow(dead_code, reason = "each test binary uses a different part")]

pub mod proxy;

use ledger_docker::{BuildSpec, DigestRef, Engine};
use std::process::Command;

pub const PROVENANCE: &str = "https://slsa.dev/provenance/v1";
pub const VSA: &str = "https://slsa.dev/verification_summary/v1";

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn required() -> bool {
    std::env::var_os("LEDGER_REQUIRE_DOCKER").is_some()
}

/// The engine, or `None` (skip) when none answers and it is not required.
pub fn engine() -> Option<Engine> {
    match runtime().block_on(Engine::connect()) {
        Ok(e) => Some(e),
        Err(e) if !required() => {
            eprintln!(
                "no Docker engine ({e}); skipping (set LEDGER_REQUIRE_DOCKER=1 to fail instead)"
            );
            None
        }
        Err(e) => panic!("LEDGER_REQUIRE_DOCKER is set but no engine answers: {e}"),
    }
}

/// The variable `name`, or `None` (skip) when it is unset and not required.
pub fn service(name: &str) -> Option<String> {
    let value = std::env::var(name).ok().filter(|v| !v.is_empty());
    if value.is_none() {
        assert!(
            !required(),
            "LEDGER_REQUIRE_DOCKER is set but {name} is not; run `bash .ci/run`"
        );
        eprintln!("{name} not set; skipping");
    }
    value
}

/// Something no other test run uses: the process id and the time.
pub fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}-{nanos}", std::process::id())
}

/// Builds a `FROM scratch` image holding one file of its own (so its digest is new)
/// as `host/repo:tag`, pushes it with the engine, removes the local copy and returns
/// the digest reference the push reported.
pub async fn pushed_image(engine: &Engine, host: &str, repo: &str) -> DigestRef {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\nCOPY id /id\n").unwrap();
    std::fs::write(dir.path().join("id"), unique()).unwrap();
    let name = format!("{host}/{repo}");
    let tag = "t1";
    let spec = BuildSpec {
        context: ledger_docker::tar_context(dir.path()).unwrap().into(),
        context_name: "attach-test".into(),
        dockerfile: "Dockerfile".into(),
        tag: format!("{name}:{tag}"),
        labels: Default::default(),
    };
    engine.build(&spec, |_| {}).await.unwrap();
    let digest = engine.push(&name, tag, |_| {}).await.unwrap();
    engine.remove_image(&spec.tag).await.unwrap();
    DigestRef::parse(&digest).unwrap()
}

/// A DSSE envelope around an in-toto statement of `predicate_type`, told apart by
/// `marker`. Unsigned: the registry client moves bytes, it does not verify them.
pub fn envelope(marker: &str, predicate_type: &str) -> Vec<u8> {
    use base64::Engine as _;
    let statement = format!(
        r#"{{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"{predicate_type}","predicate":{{"marker":"{marker}"}}}}"#
    );
    let payload = base64::engine::general_purpose::STANDARD.encode(statement);
    format!(
        r#"{{"payloadType":"application/vnd.in-toto+json","payload":"{payload}","signatures":[{{"keyid":"{marker}","sig":"AAAA"}}]}}"#
    )
    .into_bytes()
}

/// `sha256:<hex>` of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// `GET url` with curl, accepting `accept`; the body, or `None` on a 404.
pub fn curl(url: &str, accept: &str, extra: &[&str]) -> Option<Vec<u8>> {
    let out = Command::new("curl")
        .args(["-sS", "-w", "\n%{http_code}", "-H"])
        .arg(format!("Accept: {accept}"))
        .args(extra)
        .arg(url)
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "curl {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = out.stdout;
    let split = text.iter().rposition(|b| *b == b'\n').unwrap();
    let code = String::from_utf8_lossy(&text[split + 1..]).into_owned();
    match code.as_str() {
        "200" => Some(text[..split].to_vec()),
        "404" => None,
        other => panic!(
            "curl {url}: HTTP {other}: {}",
            String::from_utf8_lossy(&text)
        ),
    }
}
