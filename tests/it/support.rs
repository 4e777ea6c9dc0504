//! Small pieces of test support that `Repo` hands out: the in-process verifier, the
//! key of each trust zone as `ledger init` makes them, and evidence recorded as a
//! stage (or a key holder forging bytes) would record it.

use ledger_core::dsse::Envelope;
use ledger_core::{ArtifactKind, ArtifactRef, GitSha, SigningKey, Stage, Statement};
use ledger_pipeline::record::Recorder;
use ledger_store::{ObjectKey, Store};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The key `ledger init` made for `stage`'s trust zone.
pub fn zone_key(stage: Stage) -> &'static str {
    match stage {
        Stage::Commit | Stage::Integration => ".ledger/test.key",
        _ => ".ledger/release.key",
    }
}

/// The envelope `ledger` stores: the statement signed with `key`.
fn signed(statement: &Statement, key: &SigningKey) -> Vec<u8> {
    Envelope::sign(statement, key).to_bytes()
}

/// See [`Repo::in_process`].
pub struct InProcess {
    pub(crate) rt: tokio::runtime::Runtime,
    pub(crate) store: Store,
    pub(crate) policy: ledger_verify::SignedPolicy,
}

impl InProcess {
    /// Whether every artifact stored for `sha` verifies.
    pub fn chain_ok(&self, sha: &str) -> bool {
        let sha = GitSha::parse(sha).unwrap();
        let evidence = ledger_verify::Evidence::new(&self.store, &self.policy);
        self.rt
            .block_on(async move {
                let mut evidence = evidence;
                evidence.check_sha(&sha).await
            })
            .unwrap()
            .ok
    }
}

impl crate::Repo {
    /// Writes an object and logs it, as a writer with the store's credentials would
    /// through `ledger`: for attacks that are about what the object says, not about
    /// its absence from the log.
    pub fn write_logged(&self, key: &str, bytes: Vec<u8>) {
        self.tamper_object(key, bytes.clone());
        self.block_on(async {
            let store = self.open_store().await;
            store.adopt(key, ledger_core::Sha256Digest::of(&bytes));
            store.log_flush().await.unwrap();
        });
    }
}

impl crate::Repo {
    /// The private key in `file` (relative to the repository), as `ledger init` wrote it.
    pub fn signing_key(&self, file: &str) -> SigningKey {
        let pem = std::fs::read_to_string(self.path().join(file)).unwrap();
        SigningKey::from_pem(&pem).unwrap_or_else(|e| panic!("{file}: {e}"))
    }

    /// Alters the first signature of the stored envelope `key` (one base64 character
    /// changed) in place; returns the bytes it had, to put back.
    pub fn break_signature(&self, key: &str) -> Vec<u8> {
        let path = self.object(key);
        let original = std::fs::read(&path).unwrap_or_else(|e| panic!("{key}: {e}"));
        let mut envelope: Value = serde_json::from_slice(&original).unwrap();
        let sig = envelope["signatures"][0]["sig"]
            .as_str()
            .unwrap()
            .to_owned();
        let flipped = if sig.starts_with('A') { "B" } else { "A" };
        envelope["signatures"][0]["sig"] = format!("{flipped}{}", &sig[1..]).into();
        std::fs::write(&path, serde_json::to_vec(&envelope).unwrap()).unwrap();
        original
    }

    /// Writes signed evidence of `kind` for `sha` as the next attempt, the way a stage
    /// would: the predicate starts from the kind's first valid schema fixture, gets
    /// this SHA, attempt, current times and policy digest, then `edit` adjusts it.
    /// Signed with `key_file` (relative to the repository). Returns the key written.
    pub fn record_with(
        &self,
        kind: ArtifactKind,
        sha: &str,
        key_file: &str,
        edit: impl FnOnce(&mut Value),
    ) -> String {
        self.block_on(self.record_async(kind, sha, key_file, edit, signed))
    }

    /// [`Repo::record`], but the stored bytes are what `seal` makes of the statement
    /// and the zone key: for envelopes a key holder forges byte by byte (a member
    /// given twice, a byte order mark), stored and logged as `ledger` would.
    pub fn record_sealed(
        &self,
        kind: ArtifactKind,
        sha: &str,
        seal: impl FnOnce(&Statement, &SigningKey) -> Vec<u8>,
    ) -> String {
        let key_file = zone_key(kind.stage());
        self.block_on(self.record_async(kind, sha, key_file, |_| {}, seal))
    }

    /// [`Repo::record_with`] the key of the kind's trust zone, as `ledger init` made it.
    pub fn record(&self, kind: ArtifactKind, sha: &str, edit: impl FnOnce(&mut Value)) -> String {
        self.record_with(kind, sha, zone_key(kind.stage()), edit)
    }

    /// [`Repo::record`] of each `(kind, sha)` in turn, on one opened store and one
    /// reading of the policy: for a test that records hundreds of artifacts. On the S3
    /// server, opening the store and reading the policy for each one was most of the
    /// requests (and of the S3 server's CPU) of a suite run.
    pub fn record_each(&self, items: &[(ArtifactKind, String)]) {
        self.block_on(async {
            let store = self.open_store().await;
            let policy = self.signed_policy(&store).await;
            for (kind, sha) in items {
                let key_file = zone_key(kind.stage());
                self.record_in(&store, &policy, *kind, sha, key_file, |_| {}, signed)
                    .await;
            }
        });
    }

    async fn record_async(
        &self,
        kind: ArtifactKind,
        sha: &str,
        key_file: &str,
        edit: impl FnOnce(&mut Value),
        seal: impl FnOnce(&Statement, &SigningKey) -> Vec<u8>,
    ) -> String {
        let store = self.open_store().await;
        let policy = self.signed_policy(&store).await;
        self.record_in(&store, &policy, kind, sha, key_file, edit, seal)
            .await
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "test support: the store and policy a caller opened once, then what one record takes"
    )]
    async fn record_in(
        &self,
        store: &Store,
        policy: &ledger_verify::SignedPolicy,
        kind: ArtifactKind,
        sha: &str,
        key_file: &str,
        edit: impl FnOnce(&mut Value),
        seal: impl FnOnce(&Statement, &SigningKey) -> Vec<u8>,
    ) -> String {
        let sha = GitSha::parse(sha).unwrap();
        let key = self.signing_key(key_file);
        let attempt = store.next_attempt(kind, &sha).await.unwrap();
        let r = ArtifactRef::new(kind, sha, attempt);
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../schemas/fixtures")
            .join(kind.as_str())
            .join("valid");
        let mut first: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        first.sort();
        let mut p: Value = serde_json::from_slice(&std::fs::read(&first[0]).unwrap()).unwrap();
        let now = time::OffsetDateTime::now_utc();
        let fmt = |t: time::OffsetDateTime| {
            t.format(&time::format_description::well_known::Rfc3339)
                .unwrap()
        };
        p["sha"] = sha.to_string().into();
        p["attempt"] = attempt.into();
        p["result"] = "pass".into();
        p["started_at"] = fmt(now - time::Duration::seconds(2)).into();
        p["finished_at"] = fmt(now).into();
        p["policy_sha256"] = policy.digest().to_hex().into();
        p["inputs"] = serde_json::json!([]);
        if matches!(kind, ArtifactKind::Commit | ArtifactKind::Integration) {
            let log = b"1 passed, 0 failed\n".to_vec();
            p["output"]["key"] = r.log_key().into();
            p["output"]["sha256"] = ledger_core::Sha256Digest::of(&log).to_hex().into();
            p["output"]["bytes"] = log.len().into();
            store
                .put_create(&ObjectKey::from_artifact_log(&r), log)
                .await
                .unwrap();
        }
        crate::consistent::with_result(kind, &mut p, false);
        edit(&mut p);
        crate::consistent::with_result(kind, &mut p, true);
        let rec = Recorder {
            store,
            policy,
            key: &key,
        };
        rec.store_policy().await.unwrap();
        let statement = Statement::new(kind, vec![ledger_core::Subject::git(&sha)], p);
        store
            .put_create(&ObjectKey::from_artifact(&r), seal(&statement, &key))
            .await
            .unwrap();
        rec.log_and_checkpoint().await.unwrap();
        r.key()
    }
}

impl crate::Repo {
    /// Deletes an object directly, bypassing `ledger` (which never deletes): the
    /// attacker's move, with the store's write access.
    pub fn delete_object(&self, key: &str) {
        match &self.s3 {
            None => {
                std::fs::remove_file(self.object(key)).unwrap_or_else(|e| panic!("{key}: {e}"));
            }
            Some((server, prefix)) => {
                assert!(self.has_object(key), "{key}: nothing to delete");
                s3_delete(server, &format!("{prefix}/{key}"));
            }
        }
    }
}

/// `DELETE /bucket/path` on the loopback test server. `ledger_store` has no delete
/// (nothing in ledger deletes) and this test binary has no S3 client of its own, so
/// the request is written by hand: the main test server (moto) does not check
/// credentials, but it wants an `Authorization` header to treat the request as
/// signed rather than anonymous.
fn s3_delete(server: &ledger_store::testing::S3Server, path: &str) {
    use std::io::{Read as _, Write as _};
    let host = server
        .endpoint
        .strip_prefix("http://")
        .expect("the test server is plain http on loopback")
        .trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(host).expect("connect to the test server");
    write!(
        stream,
        "DELETE /{}/{path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: AWS4-HMAC-SHA256 \
         Credential={}/20240101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n",
        server.bucket, server.access_key_id
    )
    .expect("send DELETE");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response.lines().next().unwrap_or_default();
    assert!(
        status.contains(" 204") || status.contains(" 200"),
        "DELETE {path}: {response}"
    );
}

/// A small deterministic generator (xorshift64*): the same mutations on every run, so
/// a failure names a reproducible case.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n.max(1) as u64)).unwrap_or(0)
    }
}
