//! Per-environment deploy leases on the write-once store.
//!
//! The store never overwrites or deletes, so a lease is a sequence of create-only
//! objects: `leases/<env>/<n>.json` is the n-th acquisition, `<n>.released` its
//! release. Whoever creates `<n+1>.json` first holds the environment; a racing writer
//! gets "already exists" and looks again. An expired lease (its holder died) may be
//! taken over by creating the next number, marked as a takeover. Every acquisition is
//! recorded in the deploy evidence.

use crate::error::Error;
use ledger_store::{ObjectKey, Store, StoreError};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use time::OffsetDateTime;

/// A held lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub environment: String,
    pub seq: u64,
    pub holder: String,
    pub sha: String,
    #[serde(with = "time::serde::rfc3339")]
    pub acquired_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// The expired lease this one took over, if any.
    pub takeover_of: Option<u64>,
}

fn key(env: &str, seq: u64, ext: &str) -> Result<ObjectKey, Error> {
    Ok(ObjectKey::parse(&format!("leases/{env}/{seq:010}.{ext}")).map_err(StoreError::from)?)
}

/// What the newest lease object says.
enum State {
    Free { next: u64, takeover_of: Option<u64> },
    Held(Lease),
}

async fn state(store: &Store, env: &str, now: OffsetDateTime) -> Result<State, Error> {
    let keys = store.list(&format!("leases/{env}/")).await?;
    let newest = keys
        .iter()
        .filter_map(|k| {
            k.rsplit('/')
                .next()?
                .strip_suffix(".json")?
                .parse::<u64>()
                .ok()
        })
        .max();
    let Some(n) = newest else {
        return Ok(State::Free {
            next: 1,
            takeover_of: None,
        });
    };
    if store.get(&key(env, n, "released")?).await?.is_some() {
        return Ok(State::Free {
            next: n + 1,
            takeover_of: None,
        });
    }
    let lease: Option<Lease> = store
        .get(&key(env, n, "json")?)
        .await?
        .and_then(|b| serde_json::from_slice(&b).ok());
    match lease {
        Some(l) if l.expires_at > now => Ok(State::Held(l)),
        // Expired, or unreadable (treated as expired: it cannot be honoured).
        _ => Ok(State::Free {
            next: n + 1,
            takeover_of: Some(n),
        }),
    }
}

/// Acquires the lease on `env` for `sha`, waiting up to `wait` while another holder
/// has it. The lease lasts `ttl` unless released.
pub async fn acquire(
    store: &Store,
    env: &str,
    holder: &str,
    sha: &str,
    ttl: Duration,
    wait: Duration,
) -> Result<Lease, Error> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        let now = OffsetDateTime::now_utc();
        match state(store, env, now).await? {
            State::Free { next, takeover_of } => {
                let lease = Lease {
                    environment: env.to_owned(),
                    seq: next,
                    holder: holder.to_owned(),
                    sha: sha.to_owned(),
                    acquired_at: now,
                    expires_at: now + ttl,
                    takeover_of,
                };
                let bytes = serde_json::to_vec_pretty(&lease).unwrap_or_default();
                match store.put_create(&key(env, next, "json")?, bytes).await {
                    Ok(_) => return Ok(lease),
                    // Someone else took this number first: look again.
                    Err(StoreError::AlreadyExists { .. }) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            State::Held(lease) => {
                if std::time::Instant::now() >= deadline {
                    return Err(Error::LeaseHeld {
                        environment: env.to_owned(),
                        holder: lease.holder,
                        sha: lease.sha,
                        expires_at: lease.expires_at,
                    });
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Releases a lease this process holds.
pub async fn release(store: &Store, lease: &Lease) -> Result<(), Error> {
    let marker = format!(
        "released by {} at {}\n",
        lease.holder,
        OffsetDateTime::now_utc()
    );
    match store
        .put_create(
            &key(&lease.environment, lease.seq, "released")?,
            marker.into_bytes(),
        )
        .await
    {
        Ok(_) | Err(StoreError::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger_store::StoreLocation;

    async fn store(dir: &std::path::Path) -> Store {
        Store::open(StoreLocation::Local(dir.to_path_buf()))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn one_holder_at_a_time_and_release_frees_it() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path()).await;
        let ttl = Duration::from_secs(60);
        let a = acquire(&s, "production", "a", "x", ttl, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(a.seq, 1);
        let e = acquire(&s, "production", "b", "y", ttl, Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("held by a"), "{e}");
        // Another environment is independent.
        acquire(&s, "canary", "b", "y", ttl, Duration::ZERO)
            .await
            .unwrap();
        release(&s, &a).await.unwrap();
        let b = acquire(&s, "production", "b", "y", ttl, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!((b.seq, b.takeover_of), (2, None));
    }

    #[tokio::test]
    async fn an_expired_lease_is_taken_over_and_says_so() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path()).await;
        acquire(
            &s,
            "production",
            "dead",
            "x",
            Duration::ZERO,
            Duration::ZERO,
        )
        .await
        .unwrap();
        let b = acquire(
            &s,
            "production",
            "b",
            "y",
            Duration::from_secs(60),
            Duration::ZERO,
        )
        .await
        .unwrap();
        assert_eq!((b.seq, b.takeover_of), (2, Some(1)));
    }

    #[tokio::test]
    async fn racing_acquirers_never_both_hold() {
        let tmp = tempfile::tempdir().unwrap();
        for round in 0..20 {
            let env = format!("env{round}");
            let mut tasks = Vec::new();
            for i in 0..8 {
                let s = store(tmp.path()).await;
                let env = env.clone();
                tasks.push(tokio::spawn(async move {
                    acquire(
                        &s,
                        &env,
                        &format!("h{i}"),
                        "x",
                        Duration::from_secs(60),
                        Duration::ZERO,
                    )
                    .await
                }));
            }
            let mut held = 0;
            for t in tasks {
                if t.await.unwrap().is_ok() {
                    held += 1;
                }
            }
            assert_eq!(held, 1, "round {round}");
        }
    }
}
