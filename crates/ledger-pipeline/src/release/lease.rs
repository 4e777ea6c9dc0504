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

/// The number of a lease object's key (`leases/<env>/<seq>.json` or `.released`).
fn number(key: &str) -> Option<u64> {
    let name = key.rsplit('/').next()?;
    let seq = name
        .strip_suffix(".json")
        .or_else(|| name.strip_suffix(".released"))?;
    seq.parse().ok()
}

async fn state(store: &Store, env: &str, now: OffsetDateTime) -> Result<State, Error> {
    // Every deploy to `env` adds two objects here: only the newest are listed.
    let keys = store
        .list_tail(&format!("leases/{env}/"), number, |n| {
            format!("leases/{env}/{n:010}")
        })
        .await?;
    let newest = keys
        .iter()
        .filter(|k| k.ends_with(".json"))
        .filter_map(|k| number(k))
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
        .and_then(|b| ledger_core::json::from_slice(&b).ok());
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
#[tracing::instrument(level = "debug", skip_all, fields(%env, %holder))]
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
    //! On both backends (the local folder, and the S3 server when configured): one
    //! holder at a time, release, takeover of an expired lease, and real processes
    //! racing for fresh and for expired leases over hundreds of rounds.

    use super::*;
    use ledger_store::testing::{self, Race, Racer};

    /// A fresh store on each backend; the temp dir lives as long as they do.
    async fn backends(label: &str) -> (tempfile::TempDir, Vec<Store>) {
        let tmp = tempfile::tempdir().unwrap();
        let stores = testing::backends(tmp.path(), label).await;
        (tmp, stores.into_iter().map(|(_, s)| s).collect())
    }

    const MINUTE: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn one_holder_at_a_time_and_release_frees_it() {
        let (_tmp, stores) = backends("lease-release").await;
        for s in stores {
            let a = acquire(&s, "production", "a", "x", MINUTE, Duration::ZERO)
                .await
                .unwrap();
            assert_eq!(a.seq, 1);
            let e = acquire(
                &s,
                "production",
                "b",
                "y",
                MINUTE,
                Duration::from_millis(300),
            )
            .await
            .unwrap_err();
            assert!(e.to_string().contains("held by a"), "{e}");
            // Another environment is independent.
            acquire(&s, "canary", "b", "y", MINUTE, Duration::ZERO)
                .await
                .unwrap();
            release(&s, &a).await.unwrap();
            let b = acquire(&s, "production", "b", "y", MINUTE, Duration::ZERO)
                .await
                .unwrap();
            assert_eq!((b.seq, b.takeover_of), (2, None), "{s:?}");
        }
    }

    #[tokio::test]
    async fn an_expired_lease_is_taken_over_and_says_so() {
        let (_tmp, stores) = backends("lease-takeover").await;
        for s in stores {
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
            let b = acquire(&s, "production", "b", "y", MINUTE, Duration::ZERO)
                .await
                .unwrap();
            assert_eq!((b.seq, b.takeover_of), (2, Some(1)), "{s:?}");
        }
    }

    /// An environment deployed to many times holds more lease objects than a bucket
    /// lists in a page; the newest is still the one found (`Store::list_tail`), held
    /// or released, across the page.
    #[tokio::test]
    async fn the_newest_lease_is_found_past_a_page_of_older_ones() {
        let (_tmp, stores) = backends("lease-many").await;
        for s in stores {
            let then = OffsetDateTime::now_utc() - MINUTE;
            futures::future::join_all((1..=700).map(|seq| {
                let s = &s;
                async move {
                    let lease = Lease {
                        environment: "production".into(),
                        seq,
                        holder: "old".into(),
                        sha: "x".into(),
                        acquired_at: then,
                        expires_at: then,
                        takeover_of: None,
                    };
                    let bytes = serde_json::to_vec(&lease).unwrap();
                    s.put_create(&key("production", seq, "json").unwrap(), bytes)
                        .await
                        .unwrap();
                    let released = key("production", seq, "released").unwrap();
                    s.put_create(&released, b"released\n".to_vec())
                        .await
                        .unwrap();
                }
            }))
            .await;
            let a = acquire(&s, "production", "a", "y", MINUTE, Duration::ZERO)
                .await
                .unwrap();
            assert_eq!((a.seq, a.takeover_of), (701, None), "{s:?}");
            let e = acquire(&s, "production", "b", "z", MINUTE, Duration::ZERO)
                .await
                .unwrap_err();
            assert!(e.to_string().contains("held by a"), "{s:?}: {e}");
        }
    }

    // --- Processes racing for leases (see `ledger_store::testing::Race`) ------------
    //
    // Odd rounds start from an expired lease, so half the rounds race to take over
    // and half to acquire a fresh environment.

    const RACE: Race = Race {
        helper: "release::lease::tests::lease_race_helper_process",
        racers: 6,
        rounds: 200,
        round_ms: 20,
    };

    fn env_of(round: u32) -> String {
        format!("env-{round}")
    }

    /// Not a test on its own: the body each racing process runs.
    #[tokio::test]
    async fn lease_race_helper_process() {
        let Some(racer) = Racer::from_env().await else {
            return;
        };
        let holder = format!("racer-{}", racer.id);
        for round in 0..RACE.rounds {
            racer.wait_for(round).await;
            let env = env_of(round);
            let got = acquire(&racer.store, &env, &holder, "x", MINUTE, Duration::ZERO);
            let word = match got.await {
                Ok(l) => format!("held {} {}", l.seq, l.takeover_of.is_some()),
                Err(Error::LeaseHeld { .. }) => "refused".to_owned(),
                Err(e) => format!("error {e}"),
            };
            racer.report(round, &word);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn processes_racing_for_a_lease_never_both_hold_it() {
        let tmp = tempfile::tempdir().unwrap();
        for (spec, store) in testing::backends(tmp.path(), "lease-race").await {
            for round in (1..RACE.rounds).step_by(2) {
                let env = env_of(round);
                let dead = acquire(&store, &env, "dead", "x", Duration::ZERO, Duration::ZERO);
                dead.await.unwrap();
            }
            for (round, outcomes) in (0..RACE.rounds).zip(RACE.run(&spec)) {
                let held: Vec<&(String, String)> = outcomes
                    .iter()
                    .filter(|(_, o)| o.starts_with("held"))
                    .collect();
                let refused = outcomes.iter().filter(|(_, o)| o == "refused").count();
                assert_eq!(held.len(), 1, "{spec} round {round}: {outcomes:?}");
                assert_eq!(
                    refused,
                    RACE.racers - 1,
                    "{spec} round {round}: {outcomes:?}"
                );
                let (winner, outcome) = held[0];
                let takeover = round % 2 == 1;
                let seq = if takeover { 2 } else { 1 };
                assert_eq!(
                    outcome,
                    &format!("held {seq} {takeover}"),
                    "{spec} round {round}"
                );
                // The stored lease names the one holder that was told it won.
                let stored = store.get(&key(&env_of(round), seq, "json").unwrap()).await;
                let lease: Lease = serde_json::from_slice(&stored.unwrap().unwrap()).unwrap();
                assert_eq!(
                    lease.holder,
                    format!("racer-{winner}"),
                    "{spec} round {round}"
                );
            }
        }
    }
}
