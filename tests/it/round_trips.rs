//! A stage waits on a bucket's latency once per round trip, not once per request:
//! requests that do not depend on each other go out together. The binary counts its
//! round trips (`round_trips` in `LEDGER_COUNT_REQUESTS`: the longest run of requests
//! each begun after the one before ended); these cases hold stages to a bound on it.
//!
//! Read off the clock, that count needs requests sent together to end together. The
//! test server answers one request at a time in a few milliseconds each, so two
//! independent runs of requests could chain by chance. In front of it sits
//! [`Delayed`], a loopback proxy that holds every byte the server sends for a fixed
//! time, as a bucket's network does: requests sent together then overlap by far more
//! than the server's own jitter, and the count is the same on every run.

use crate::history::repo_with;
use crate::{assert_code, Backend, Repo, SHA};
use ledger_core::Stage;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// How long the proxy holds the server's bytes: well above what the test server
/// takes for a burst of requests (a few milliseconds each, one at a time), also on
/// a loaded CI machine. The three commands wait through 24 round trips of it. At
/// 250 ms, `verify` once counted 4 round trips for its 3 in a full suite run: a
/// burst of a dozen listings answered one at a time by a server slowed by the
/// suite's other tests outlasted the delay, so a request of the next round
/// started after one of the same burst ended.
const LATENCY: Duration = Duration::from_millis(500);

/// A loopback TCP proxy to `upstream` that delivers what the server sends
/// [`LATENCY`] after it arrived. Stops accepting when dropped.
struct Delayed {
    endpoint: String,
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Delayed {
    fn to(upstream: &str) -> Delayed {
        let target: SocketAddr = upstream
            .strip_prefix("http://")
            .and_then(|a| a.trim_end_matches('/').parse().ok())
            .unwrap_or_else(|| panic!("not a loopback http:// endpoint: {upstream}"));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stopped.load(Ordering::Relaxed) {
                    break;
                }
                let (Ok(client), Ok(server)) = (client, TcpStream::connect(target)) else {
                    continue;
                };
                let (Ok(client2), Ok(server2)) = (client.try_clone(), server.try_clone()) else {
                    continue;
                };
                pipe(client, server, Duration::ZERO);
                pipe(server2, client2, LATENCY);
            }
        });
        Delayed {
            endpoint: format!("http://{addr}"),
            addr,
            stop,
        }
    }
}

impl Drop for Delayed {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the accepting thread so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Copies `from` to `to`, each chunk written `delay` after it was read (a reader and
/// a writer thread, so a later chunk waits for its own time, not behind the one
/// before); the end of `from` ends `to`'s sending side.
fn pipe(mut from: TcpStream, mut to: TcpStream, delay: Duration) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n @ 1..) = from.read(&mut buf) {
            if tx
                .send((Instant::now() + delay, buf[..n].to_vec()))
                .is_err()
            {
                break;
            }
        }
    });
    std::thread::spawn(move || {
        for (due, bytes) in rx {
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            if to.write_all(&bytes).is_err() {
                return;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}

/// The round trips `ledger args` waited through, talking to the bucket through `proxy`.
fn round_trips(repo: &Repo, proxy: &Delayed, args: &[&str]) -> u64 {
    #[derive(serde::Deserialize)]
    struct Counted {
        round_trips: u64,
    }
    let file = repo.path().join("round-trips.jsonl");
    let _ = std::fs::remove_file(&file);
    let env = [
        ("LEDGER_COUNT_REQUESTS", file.to_str().unwrap()),
        ("AWS_ENDPOINT_URL", proxy.endpoint.as_str()),
    ];
    let out = repo.ledger_env(args, &env);
    assert_code(&out, 0);
    let line = std::fs::read_to_string(&file).unwrap();
    serde_json::from_str::<Counted>(line.trim())
        .unwrap()
        .round_trips
}

/// On a bucket, `integration` and `decide` wait through no more round trips than
/// their reads need one after another. `integration`: the policy's trust state
/// (listed with the bucket's reachability listing, then read), the inputs' attempts
/// with the stage's own, the newest commit envelope with its output, then the log's
/// tail, the newest checkpoint and the stored policy (listed, then read, together),
/// and four writes in their order (output, envelope, log entry, checkpoint), the
/// attempt taken from the gate's listing of the stage's own objects: 10 (11 when the
/// attempts were listed again after the work). `decide` reads the six other stages
/// in the same round trips, then writes its VSA, the decision and the timing record
/// (their attempts also from that listing) and appends one entry and its checkpoint
/// for all three: 11 (13 with both attempts listed again, 15 before that when the
/// decision and the timing had an entry and a checkpoint each).
/// `verify` of the whole chain reads beside the trust state: its listing with the
/// SHA's eight prefixes and the checkpoints', then the trust state's objects with
/// the listed objects, the stored policy, the checkpoints and the log's listing,
/// then the log's entries: 3 (16 when each listing and read waited for the one
/// before, 5 when the chain's reads waited for the trust state).
#[test]
fn a_stage_sends_independent_requests_together() {
    let Some(backend) = Backend::s3() else {
        return;
    };
    let Backend::S3(server) = &backend else {
        unreachable!()
    };
    let proxy = Delayed::to(&server.endpoint);
    let repo = repo_with(&backend, &[true]);
    let integration = ["stage", "integration", "--sha", SHA, "--", "true"];
    assert_eq!(round_trips(&repo, &proxy, &integration), 10);
    repo.chain_before(Stage::Decide, SHA);
    assert_eq!(
        round_trips(&repo, &proxy, &["stage", "decide", "--sha", SHA]),
        11
    );
    assert_eq!(round_trips(&repo, &proxy, &["verify", SHA]), 3);
}
