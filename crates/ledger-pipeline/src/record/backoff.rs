//! Pausing between tries: of a contended attempt, and of a store call that failed.

use ledger_store::StoreError;
use std::time::{Duration, Instant};

/// How long a store call that keeps failing is retried before the store counts as
/// down.
pub const STORE_RETRY_BUDGET: Duration = Duration::from_secs(6);

/// Jittered exponential pauses: between tries of a contended attempt (short, so a
/// writer that lost a race tries the next number soon, but not in step with the
/// others), and between retries of a failing store call (longer, within
/// [`STORE_RETRY_BUDGET`]).
#[derive(Debug)]
pub struct Backoff {
    contended: u32,
    failed: u32,
    since: Instant,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            contended: 0,
            failed: 0,
            since: Instant::now(),
        }
    }
}

impl Backoff {
    /// Pauses after losing a race for an attempt: up to 2^n ms, at most 200 ms.
    pub async fn contended(&mut self) {
        self.contended = self.contended.saturating_add(1);
        let cap = 1u64 << self.contended.min(8);
        tokio::time::sleep(jitter(cap.min(200))).await;
    }

    /// Pauses before retrying a store call that failed; `false` (no pause) once
    /// [`STORE_RETRY_BUDGET`] is spent: the store is down.
    pub async fn failed(&mut self) -> bool {
        if self.since.elapsed() >= STORE_RETRY_BUDGET {
            return false;
        }
        self.failed = self.failed.saturating_add(1);
        let cap = 50u64 << self.failed.min(5);
        tokio::time::sleep(jitter(cap.min(1000))).await;
        true
    }
}

/// A random pause between `cap / 2` and `cap` milliseconds.
fn jitter(cap: u64) -> Duration {
    use rand_core::RngCore;
    let half = cap / 2;
    let extra = u64::from(rand_core::OsRng.next_u32()) % (cap - half).max(1);
    Duration::from_millis(half + extra)
}

/// Whether a store error is worth retrying: a failure of the infrastructure (not a
/// refusal of what was asked, which fails the same way again).
pub fn transient(e: &StoreError) -> bool {
    ledger_verify::ErrorClass::of_store(e) == ledger_verify::ErrorClass::Infrastructure
        && !matches!(e, StoreError::AlreadyExists { .. })
}
