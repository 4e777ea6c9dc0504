//! Small pieces of test support that `Repo` hands out: the in-process verifier and
//! the key of each trust zone as `ledger init` makes them.

use ledger_core::{GitSha, Stage};
use ledger_store::Store;

/// The key `ledger init` made for `stage`'s trust zone.
pub fn zone_key(stage: Stage) -> &'static str {
    match stage {
        Stage::Commit | Stage::Integration => ".ledger/test.key",
        _ => ".ledger/release.key",
    }
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
    /// Alters the first signature of the stored envelope `key` (one base64 character
    /// changed) in place; returns the bytes it had, to put back.
    pub fn break_signature(&self, key: &str) -> Vec<u8> {
        let path = self.object(key);
        let original = std::fs::read(&path).unwrap_or_else(|e| panic!("{key}: {e}"));
        let mut envelope: serde_json::Value = serde_json::from_slice(&original).unwrap();
        let sig = envelope["signatures"][0]["sig"]
            .as_str()
            .unwrap()
            .to_owned();
        let flipped = if sig.starts_with('A') { "B" } else { "A" };
        envelope["signatures"][0]["sig"] = format!("{flipped}{}", &sig[1..]).into();
        std::fs::write(&path, serde_json::to_vec(&envelope).unwrap()).unwrap();
        original
    }

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
