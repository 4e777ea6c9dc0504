//! `verify --all` against the limit: how many envelopes per second the whole-store
//! verification gets through, beside raw Ed25519 verification of the same envelopes'
//! signatures, one by one and batched, measured in the same run on the same machine.
//!
//! `cargo bench -p ledger-pipeline --bench verify_all [-- ENVELOPES]` (default 10,000).
//! One timed pass each, not criterion: the store walk is a one-shot operation whose
//! cost is the point, and 10,000 envelopes already average out noise. Results go to
//! `docs/performance.md`.

use base64::Engine as _;
use futures::StreamExt;
use ledger_core::{ArtifactKind, ArtifactRef, GitSha, SigningKey, Subject};
use ledger_pipeline::record::Recorder;
use ledger_policy::Policy;
use ledger_store::{ObjectKey, Store, StoreLocation};
use serde_json::{json, Value};
use std::time::Instant;

const ATTEMPTS: u32 = 4;

fn predicate(r: &ArtifactRef, policy: &Policy) -> Value {
    json!({
        "stage": "commit", "sha": r.sha, "attempt": r.attempt,
        "started_at": "2026-11-24T10:00:00Z", "finished_at": "2026-11-24T10:00:01Z",
        "result": "pass", "runner": {"host": "bench", "ci_provider": "local"},
        "inputs": [], "policy_sha256": policy.digest(), "ledger_version": "bench",
        "command": {"argv": ["cargo", "test"], "exit_code": 0, "duration_ms": 1},
        "output": {"key": r.log_key(), "sha256": ledger_core::Sha256Digest::of(b"ok\n"),
                   "bytes": 3, "redacted": []},
        "tests": {"passed": 212, "failed": 0, "ignored": 2}
    })
}

fn rate(n: usize, secs: f64) -> String {
    format!("{:>10.0}", n as f64 / secs)
}

/// Timings of one run, in seconds, over `n` envelopes.
struct Timings {
    n: usize,
    cores: usize,
    /// Raw Ed25519 strict verification, one by one on one core.
    single: f64,
    /// Raw Ed25519 batch verification on one core.
    batch: f64,
    /// Listing and reading every object (the walk's read-ahead).
    read_ahead: f64,
    /// The whole `verify --all` walk per thread count.
    walk: Vec<(usize, f64)>,
    /// Strict signature checks the walk makes: every envelope's and every stored
    /// checkpoint's (one per write here).
    checks: usize,
}

/// Stores the policy and `shas` × [`ATTEMPTS`] signed commit envelopes with their logs.
fn generate(rt: &tokio::runtime::Runtime, rec: &Recorder<'_>, policy: &Policy, shas: usize) {
    eprintln!(
        "generating {} envelopes ({shas} SHAs x {ATTEMPTS} attempts)…",
        shas * ATTEMPTS as usize
    );
    let clock = Instant::now();
    rt.block_on(async {
        rec.store_policy().await.unwrap();
        let refs: Vec<ArtifactRef> = (0..shas)
            .flat_map(|n| {
                let sha = GitSha::parse(&format!("{n:040x}")).unwrap();
                (1..=ATTEMPTS).map(move |a| ArtifactRef::new(ArtifactKind::Commit, sha, a))
            })
            .collect();
        futures::stream::iter(refs)
            .for_each_concurrent(64, |r| async move {
                let log = ObjectKey::from_artifact_log(&r);
                rec.store.put_create(&log, &b"ok\n"[..]).await.unwrap();
                rec.write(&r, vec![Subject::git(&r.sha)], predicate(&r, policy))
                    .await
                    .unwrap();
            })
            .await;
    });
    eprintln!("generated in {:.1} s", clock.elapsed().as_secs_f64());
}

/// The signatures, as a verifier sees them: PAE(payloadType, payload) and sig, read
/// back from the local store folder `root`.
fn signed_messages(
    root: &std::path::Path,
    shas: usize,
) -> (Vec<Vec<u8>>, Vec<ed25519_dalek::Signature>) {
    let mut messages = Vec::new();
    let mut signatures = Vec::new();
    for n in 0..shas {
        let sha = GitSha::parse(&format!("{n:040x}")).unwrap();
        for a in 1..=ATTEMPTS {
            let r = ArtifactRef::new(ArtifactKind::Commit, sha, a);
            let bytes = std::fs::read(root.join(r.key())).unwrap();
            let env: Value = serde_json::from_slice(&bytes).unwrap();
            let b64 = base64::engine::general_purpose::STANDARD;
            let payload = b64.decode(env["payload"].as_str().unwrap()).unwrap();
            let sig = b64
                .decode(env["signatures"][0]["sig"].as_str().unwrap())
                .unwrap();
            messages.push(ledger_core::dsse::pae(
                env["payloadType"].as_str().unwrap(),
                &payload,
            ));
            signatures.push(ed25519_dalek::Signature::from_slice(&sig).unwrap());
        }
    }
    (messages, signatures)
}

/// Raw Ed25519 verification of every signature: (one by one, batched), in seconds.
fn time_raw_verify(
    vk: ed25519_dalek::VerifyingKey,
    messages: &[Vec<u8>],
    signatures: &[ed25519_dalek::Signature],
) -> (f64, f64) {
    let clock = Instant::now();
    for (m, s) in messages.iter().zip(signatures) {
        vk.verify_strict(m, s).unwrap();
    }
    let single = clock.elapsed().as_secs_f64();

    let clock = Instant::now();
    let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    ed25519_dalek::verify_batch(&refs, signatures, &vec![vk; messages.len()]).unwrap();
    let batch = clock.elapsed().as_secs_f64();
    (single, batch)
}

/// The read-ahead alone: listing and reading every object, in seconds.
fn time_read_ahead(rt: &tokio::runtime::Runtime, store: &Store) -> f64 {
    let clock = Instant::now();
    rt.block_on(async {
        let index = ledger_verify::walk::StoreIndex::build(store).await.unwrap();
        let shas: Vec<GitSha> = index.shas.keys().copied().collect();
        index.snapshot(store, &shas).await.unwrap()
    });
    clock.elapsed().as_secs_f64()
}

/// The whole `verify --all` walk on 1 and on `cores` threads, checking it verifies
/// all `n` envelopes: (threads, seconds) each.
fn time_walks(
    rt: &tokio::runtime::Runtime,
    store: &Store,
    policy: &ledger_verify::SignedPolicy,
    n: usize,
    cores: usize,
) -> Vec<(usize, f64)> {
    let mut walk = Vec::new();
    for threads in [1, cores] {
        let clock = Instant::now();
        let report = rt
            .block_on(ledger_verify::walk::verify_all(
                store,
                policy,
                threads,
                &|_, _| {},
            ))
            .unwrap();
        walk.push((threads, clock.elapsed().as_secs_f64()));
        assert!(report.ok && report.artifacts == n, "{report:?}");
    }
    walk
}

/// Prints the Markdown table for `docs/performance.md`.
fn print_table(t: &Timings) {
    let (n, cores) = (t.n, t.cores);
    println!("| measurement ({n} envelopes) | envelopes/s | share of strict verify × cores | share of batch verify × cores |");
    println!("|---|---:|---:|---:|");
    let strict = n as f64 / t.single * cores as f64;
    let limit = n as f64 / t.batch * cores as f64;
    let shares = |rate: f64| {
        format!(
            "{:.0} % | {:.0} %",
            rate / strict * 100.0,
            rate / limit * 100.0
        )
    };
    println!(
        "| raw Ed25519 verify, one core | {} | | |",
        rate(n, t.single)
    );
    println!(
        "| raw Ed25519 batch verify, one core | {} | | |",
        rate(n, t.batch)
    );
    println!("| strict verify × {cores} cores | {strict:>10.0} | 100 % | |");
    println!("| batch verify × {cores} cores | {limit:>10.0} | | 100 % |");
    println!(
        "| of which listing and reading every object (read-ahead) | {} | | |",
        rate(n, t.read_ahead)
    );
    for &(threads, secs) in &t.walk {
        println!(
            "| `verify --all` walk, {threads} thread(s), incl. listing and reads | {} | {} |",
            rate(n, secs),
            shares(n as f64 / secs)
        );
    }
    let secs = t.walk.last().map_or(f64::INFINITY, |w| w.1);
    let checks_share = t.checks as f64 / secs / strict;
    println!(
        "| the same on {cores} threads, counted in signature checks ({} for {n} envelopes: theirs and their checkpoints') | {} checks/s | {:.0} % | |",
        t.checks,
        rate(t.checks, secs),
        checks_share * 100.0
    );
    println!("\n{cores} core(s); local folder store; every envelope fully checked (signature, schema, subject, log digest, stored policy).");
    // `cargo xtask bench` reads the walk on every core back for its goals table.
    if let Some(path) = std::env::var_os("LEDGER_BENCH_SUMMARY") {
        let summary = json!({
            "share_of_strict": n as f64 / secs / strict,
            "checks_share_of_strict": checks_share,
        });
        std::fs::write(path, summary.to_string()).unwrap();
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this too, as a
    // check that it still works, on a store small enough for a debug build.
    let measuring = std::env::args().any(|a| a == "--bench");
    let envelopes: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(if measuring { 10_000 } else { 200 });
    let shas = envelopes.div_ceil(ATTEMPTS as usize);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let store = rt
        .block_on(Store::open(StoreLocation::Local(tmp.path().join("s"))))
        .unwrap();
    let key = SigningKey::from_seed(&[7; 32]);
    let text = ledger_policy::default_policy_json(key.public()).unwrap();
    let (policy, _, _) = ledger_verify::SignedPolicy::self_signed(text.as_bytes(), &key).unwrap();
    let rec = Recorder {
        store: &store,
        policy: &policy,
        key: &key,
    };
    generate(&rt, &rec, &policy, shas);

    let (messages, signatures) = signed_messages(&tmp.path().join("s"), shas);
    let n = messages.len();
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let (single, batch) = time_raw_verify(*key.public().dalek(), &messages, &signatures);
    let read_ahead = time_read_ahead(&rt, &store);
    let walk = time_walks(&rt, &store, &policy, n, cores);
    let checkpoints =
        std::fs::read_dir(tmp.path().join("s").join("checkpoints")).map_or(0, Iterator::count);
    print_table(&Timings {
        n,
        cores,
        single,
        batch,
        read_ahead,
        walk,
        checks: n + checkpoints,
    });
}
