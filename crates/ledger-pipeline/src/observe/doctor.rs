//! The probes behind `ledger doctor`: can this machine reach the store, the engine
//! and the registry, and does its clock agree with the store's? Each probe returns
//! what it found as a value; the command decides what is a failure and how to say it.

use crate::error::Error;
use ledger_docker::{Engine, Registry};
use ledger_store::{ObjectKey, Store};
use std::time::{Duration, SystemTime};

/// Writes a probe object (create-only) to the store and returns its key: the store
/// is reachable, the credentials work and create-only writes are honoured.
pub async fn probe_store(store: &Store) -> Result<ObjectKey, Error> {
    let who = crate::ci::host_name();
    Ok(store.probe(&format!("ledger doctor on {who}")).await?)
}

/// How far this machine's clock is from the time the store recorded for `probe`
/// (in either direction); `None` when the store does not report that time.
pub async fn clock_skew(store: &Store, probe: &ObjectKey) -> Result<Option<Duration>, Error> {
    let now = SystemTime::now();
    let Some(stored) = store.modified(probe).await? else {
        return Ok(None);
    };
    let skew = now.duration_since(stored).unwrap_or_else(|e| e.duration());
    Ok(Some(skew))
}

/// What the container engine said when asked for its version.
#[derive(Debug, Clone)]
pub struct EngineProbe {
    /// Where the engine was reached (socket or URL).
    pub endpoint: String,
    /// The version it reports.
    pub version: String,
}

/// Connects to the engine `target` names and asks its version.
pub async fn probe_engine(target: &ledger_docker::EngineTarget) -> Result<EngineProbe, Error> {
    let engine = Engine::connect_to(target).await?;
    let version = engine.version().await?;
    Ok(EngineProbe {
        endpoint: engine.endpoint().to_owned(),
        version,
    })
}

/// Whether the registry at `host` answers the OCI distribution API over verified
/// TLS (or plain HTTP on loopback) and accepts the stored credential, if it asks
/// for one. The error names the host and carries its hint (`docker login HOST`, the
/// CA's place).
pub async fn probe_registry(host: &str) -> Result<(), Error> {
    Ok(Registry::new().ping(host).await?)
}
