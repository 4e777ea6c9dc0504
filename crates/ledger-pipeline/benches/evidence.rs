//! What one piece of evidence costs: Ed25519 sign + create-only store of an envelope,
//! raw envelope verification, and a full artifact check (signature, schema, subject,
//! hash links, stored policy) against the local store. `cargo bench -p ledger-pipeline`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use ledger_core::dsse::Envelope;
use ledger_core::{ArtifactKind, ArtifactRef, GitSha, SigningKey, Subject};
use ledger_pipeline::record::Recorder;
use ledger_policy::Policy;
use ledger_store::{Store, StoreLocation};
use ledger_verify::Evidence;
use serde_json::json;

fn predicate(sha: &GitSha, attempt: u32, policy: &Policy) -> serde_json::Value {
    json!({
        "stage": "commit", "sha": sha, "attempt": attempt,
        "started_at": "2026-11-24T10:00:00Z", "finished_at": "2026-11-24T10:00:01Z",
        "result": "pass", "runner": {"host": "bench", "ci_provider": "local"},
        "inputs": [], "policy_sha256": policy.digest(), "ledger_version": "bench",
        "command": {"argv": ["true"], "exit_code": 0, "duration_ms": 1},
        "output": {"key": ArtifactRef::new(ArtifactKind::Commit, *sha, attempt).log_key(),
                   "sha256": ledger_core::Sha256Digest::of(b""), "bytes": 0, "redacted": []}
    })
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let store = rt
        .block_on(Store::open(StoreLocation::Local(tmp.path().join("s"))))
        .unwrap();
    let key = SigningKey::from_seed(&[9; 32]);
    let text = ledger_policy::default_policy_json(key.public()).unwrap();
    let (policy, _, _) = ledger_verify::SignedPolicy::self_signed(text.as_bytes(), &key).unwrap();
    let rec = Recorder {
        store: &store,
        policy: &policy,
        key: &key,
    };
    rt.block_on(rec.store_policy()).unwrap();

    let mut n = 0u64;
    c.bench_function("sign_and_store_envelope", |b| {
        b.iter_batched(
            || {
                n += 1;
                let sha = GitSha::parse(&format!("{n:040x}")).unwrap();
                (sha, predicate(&sha, 1, &policy))
            },
            |(sha, p)| {
                let r = ArtifactRef::new(ArtifactKind::Commit, sha, 1);
                rt.block_on(rec.write(&r, vec![Subject::git(&sha)], p))
                    .unwrap()
            },
            BatchSize::SmallInput,
        )
    });

    let sha = GitSha::parse(&"f".repeat(40)).unwrap();
    let r = ArtifactRef::new(ArtifactKind::Commit, sha, 1);
    rt.block_on(async {
        store
            .put_create(&ledger_store::ObjectKey::from_artifact_log(&r), Vec::new())
            .await
            .unwrap();
        rec.write(&r, vec![Subject::git(&sha)], predicate(&sha, 1, &policy))
            .await
            .unwrap();
    });
    let bytes = std::fs::read(tmp.path().join("s").join(r.key())).unwrap();
    c.bench_function("verify_envelope_signature", |b| {
        b.iter(|| {
            Envelope::verify(
                &bytes,
                |id| policy.key_for(ledger_core::Stage::Commit, id),
                "",
            )
            .unwrap()
        })
    });
    c.bench_function("check_artifact_full", |b| {
        b.iter(|| {
            let mut ev = Evidence::new(&store, &policy);
            rt.block_on(ev.check(&r)).unwrap().verified().unwrap()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
