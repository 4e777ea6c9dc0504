//! Test support (feature `testing`): the S3-compatible server that `.ci/run` starts on
//! loopback, described by `LEDGER_TEST_S3_*` variables, so every crate's tests can run
//! the same cases on the local folder and on a bucket. Never part of a release build.

use crate::{Bucket, Service, Store, StoreError, StoreLocation};
use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};

/// The test S3 server: endpoint, bucket and the credentials `.ci/run` set up.
#[derive(Debug, Clone)]
pub struct S3Server {
    pub endpoint: String,
    /// A second server that checks every request's credentials (none are valid there).
    pub strict_endpoint: String,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl S3Server {
    /// The server named by `LEDGER_TEST_S3_ENDPOINT`, `_STRICT_ENDPOINT`, `_BUCKET`,
    /// `_ACCESS_KEY_ID` and `_SECRET_ACCESS_KEY` (all `LEDGER_TEST_S3_`); `None`
    /// when they are unset, unless `LEDGER_REQUIRE_S3=1` (CI), which makes that a panic
    /// so a misconfigured CI cannot silently skip the bucket half of the suite.
    pub fn from_env() -> Option<S3Server> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let server = (|| {
            Some(S3Server {
                endpoint: var("LEDGER_TEST_S3_ENDPOINT")?,
                strict_endpoint: var("LEDGER_TEST_S3_STRICT_ENDPOINT")?,
                bucket: var("LEDGER_TEST_S3_BUCKET")?,
                access_key_id: var("LEDGER_TEST_S3_ACCESS_KEY_ID")?,
                secret_access_key: var("LEDGER_TEST_S3_SECRET_ACCESS_KEY")?,
            })
        })();
        if server.is_none() && var("LEDGER_REQUIRE_S3").as_deref() == Some("1") {
            panic!("LEDGER_REQUIRE_S3=1 but LEDGER_TEST_S3_ENDPOINT/_STRICT_ENDPOINT/_BUCKET/_ACCESS_KEY_ID/_SECRET_ACCESS_KEY are not all set");
        }
        server
    }

    /// A fresh, unique prefix for one test's store.
    pub fn unique_prefix(label: &str) -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("test/{label}-{nanos}-{}", std::process::id())
    }

    /// The store URL for `prefix`.
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{}/{prefix}", self.bucket)
    }

    /// The location of `prefix`, configured in-process (no environment changes).
    pub fn location(&self, prefix: &str) -> StoreLocation {
        let StoreLocation::Bucket(b) = StoreLocation::parse(&self.url(prefix)).expect("url") else {
            unreachable!("an s3:// URL parses to a bucket")
        };
        StoreLocation::Bucket(self.configure(b))
    }

    fn configure(&self, b: Bucket) -> Bucket {
        debug_assert_eq!(b.service, Service::S3);
        b.with_option("aws_endpoint", &self.endpoint)
            .with_option("aws_allow_http", "true")
            .with_option("aws_region", "us-east-1")
            .with_option("aws_access_key_id", &self.access_key_id)
            .with_option("aws_secret_access_key", &self.secret_access_key)
    }

    /// The environment a `ledger` process needs to use `prefix` as its store.
    pub fn env(&self, prefix: &str) -> Vec<(String, String)> {
        [
            ("LEDGER_STORE", self.url(prefix)),
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", self.access_key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_access_key.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Opens the store at `prefix`.
    pub async fn open(&self, prefix: &str) -> Result<Store, StoreError> {
        Store::open(self.location(prefix)).await
    }
}

impl Store {
    /// Overwrites `key` unconditionally: how tamper tests play the attacker who
    /// bypasses `ledger` and writes to the bucket or folder directly.
    pub async fn tamper(&self, key: &str, bytes: impl Into<Bytes>) -> Result<(), StoreError> {
        self.inner
            .put(&Path::from(key), PutPayload::from(bytes.into()))
            .await
            .map(|_| ())
            .map_err(|e| self.unreachable(e))
    }

    /// Every key in the store, sorted.
    pub async fn all_keys(&self) -> Result<Vec<String>, StoreError> {
        self.list_under(None).await
    }

    /// Reads any key, however large, bypassing key validation (for assertions).
    pub async fn raw_get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        match self.inner.get(&Path::from(key)).await {
            Ok(r) => r.bytes().await.map(Some).map_err(|e| self.unreachable(e)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.unreachable(e)),
        }
    }
}

/// A fresh store on every configured backend: the local folder `dir`, and a unique
/// prefix on the S3 server when one is configured. Each comes with the `spec` a racer
/// process needs to open the same store (see [`Race`]).
pub async fn backends(dir: &std::path::Path, label: &str) -> Vec<(String, Store)> {
    let local = Store::open(StoreLocation::Local(dir.to_path_buf()))
        .await
        .expect("open the local test store");
    let mut out = vec![(format!("local:{}", dir.display()), local)];
    if let Some(s3) = S3Server::from_env() {
        let prefix = S3Server::unique_prefix(label);
        let store = s3.open(&prefix).await.expect("open the S3 test store");
        out.push((format!("s3:{prefix}"), store));
    }
    out
}

/// Races between real OS processes, the way CI machines race for the same key.
///
/// Each racer is the calling test binary re-run with one helper test selected
/// ([`Race::helper`]); the helper calls [`Racer::from_env`] and does nothing when it
/// is not a racer. All racers share a start instant and fire round `r` at
/// `start + r * round_ms`, so every round is a genuine race between processes (not
/// one process arriving first), and hundreds of rounds cost seconds.
#[derive(Debug, Clone)]
pub struct Race {
    /// The helper test's full path, e.g. `tests::race_helper_process`.
    pub helper: &'static str,
    pub racers: usize,
    pub rounds: u32,
    pub round_ms: u64,
}

const RACE_STORE: &str = "LEDGER_RACE_STORE";
const RACE_ID: &str = "LEDGER_RACE_ID";
const RACE_START: &str = "LEDGER_RACE_START_MS";
const RACE_ROUND_MS: &str = "LEDGER_RACE_ROUND_MS";

fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Race {
    /// Runs the racers against the store named by `spec` and returns, per round, each
    /// racer's `(id, outcome)` as reported with [`Racer::report`]. Panics when a racer
    /// fails or misses a round.
    pub fn run(&self, spec: &str) -> Vec<Vec<(String, String)>> {
        let exe = std::env::current_exe().expect("test binary");
        let start = epoch_ms() + 1500;
        let children: Vec<_> = (0..self.racers)
            .map(|id| {
                std::process::Command::new(&exe)
                    .args(["--exact", self.helper, "--nocapture", "--test-threads=1"])
                    .env(RACE_STORE, spec)
                    .env(RACE_ID, id.to_string())
                    .env(RACE_START, start.to_string())
                    .env(RACE_ROUND_MS, self.round_ms.to_string())
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .expect("spawn a racer")
            })
            .collect();
        let mut rounds = vec![Vec::new(); self.rounds as usize];
        for child in children {
            let out = child.wait_with_output().expect("racer output");
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "racer failed: {text}");
            let mut seen = 0;
            for line in text.lines() {
                let Some(i) = line.find("RACE-RESULT ") else {
                    continue;
                };
                let mut words = line[i..].splitn(4, ' ').skip(1);
                let (Some(round), Some(id), Some(outcome)) =
                    (words.next(), words.next(), words.next())
                else {
                    panic!("malformed racer line: {line}");
                };
                let round: usize = round.parse().expect("round number");
                rounds[round].push((id.to_owned(), outcome.to_owned()));
                seen += 1;
            }
            assert_eq!(seen, self.rounds, "{spec}: a racer missed rounds: {text}");
        }
        rounds
    }
}

/// The racer side of a [`Race`].
#[derive(Debug)]
pub struct Racer {
    pub id: String,
    pub store: Store,
    start: u64,
    round_ms: u64,
}

impl Racer {
    /// This process's racer role, if it was started as one.
    pub async fn from_env() -> Option<Racer> {
        let var = |n: &str| std::env::var(n).ok();
        let (spec, id) = (var(RACE_STORE)?, var(RACE_ID)?);
        let start = var(RACE_START)?.parse().ok()?;
        let round_ms = var(RACE_ROUND_MS)?.parse().ok()?;
        let store = match spec.split_once(':') {
            Some(("local", dir)) => Store::open(StoreLocation::Local(dir.into())).await,
            Some(("s3", prefix)) => {
                S3Server::from_env()
                    .expect("an s3 racer without a server")
                    .open(prefix)
                    .await
            }
            _ => panic!("bad {RACE_STORE} {spec}"),
        }
        .expect("racer opens the store");
        Some(Racer {
            id,
            store,
            start,
            round_ms,
        })
    }

    /// Sleeps until `round` fires.
    pub async fn wait_for(&self, round: u32) {
        let at = self.start + u64::from(round) * self.round_ms;
        let now = epoch_ms();
        if at > now {
            tokio::time::sleep(std::time::Duration::from_millis(at - now)).await;
        }
    }

    /// Reports this racer's outcome of `round` to the parent.
    pub fn report(&self, round: u32, outcome: &str) {
        println!("RACE-RESULT {round} {} {outcome}", self.id);
    }
}
