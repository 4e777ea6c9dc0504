//! The predicate of the `deploy` stage (`deployment.v1.schema.json`): what was
//! started, from which manifest, replacing which release, under which lease, and,
//! for a replay, rollback or promotion, what it ran again or relied on.

use super::header::{Header, Input};
use super::{present, Predicate};
use crate::env::EnvName;
use crate::schema::Document;
use crate::sha::GitSha;
use crate::stage::ArtifactKind;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// What `deploy` records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentPredicate {
    /// The shared fields; `stage` is `deploy`.
    #[serde(flatten)]
    pub header: Header,
    /// The environment deployed to. A string: the schema admits any image-style name
    /// (`.`, up to 64 characters), wider than [`EnvName`].
    pub environment: String,
    /// The engine the containers run on (`unix:///…`, `tcp://host:port`; never with
    /// credentials). `None` (absent) in evidence written before environments named
    /// their own engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    /// The manifest deployed (key and SHA-256 of its envelope).
    pub manifest: Input,
    /// The containers started (empty when the deploy failed); in a Swarm
    /// environment, the containers of the services' tasks.
    pub containers: Vec<Container>,
    /// In a Swarm environment: the services this deploy created or updated, with
    /// their versions and the tasks that ran (absent elsewhere, and when it failed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<SwarmService>,
    /// The SHA that was running before; `None` (`null`) on a first deploy.
    pub previous_release: Option<GitSha>,
    /// Wall time of the deploy's own work.
    pub duration_ms: u64,
    /// Whether this deploy is part of `ledger replay` or `ledger rollback`.
    pub replay: bool,
    /// For a rollback only: `Some(Some(sha))` the SHA running when it began,
    /// `Some(None)` (`null`) when nothing ran; `None` (absent) otherwise.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub rollback_from: Option<Option<GitSha>>,
    /// Set when `ledger promote` ran this deploy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion: Option<Promotion>,
    /// The environment's deploy lease held while deploying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Lease>,
    /// Set when the deploy failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<DeployFailure>,
}

/// One container started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    /// The container's name in the engine.
    pub name: String,
    /// The manifest image it runs.
    pub image: String,
    /// The reference it was started from (a digest reference).
    #[serde(rename = "ref")]
    pub reference: String,
    /// `sha256:<hex>`.
    pub digest: String,
    /// The engine's container id.
    pub container_id: String,
    /// Published ports.
    pub ports: Vec<Port>,
}

/// A Swarm service as a deploy left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwarmService {
    /// The service's name in the swarm.
    pub name: String,
    /// The manifest image it runs.
    pub image: String,
    /// The swarm's id of the service.
    pub service_id: String,
    /// The swarm's version of its spec after this deploy (every update raises it).
    pub version: u64,
    /// The replicas asked for.
    pub replicas: u64,
    /// The tasks that ran the new spec when it converged.
    pub tasks: Vec<SwarmTask>,
}

/// One task of a Swarm service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwarmTask {
    pub task_id: String,
    /// The replica slot.
    pub slot: Option<u64>,
    /// The node it ran on.
    pub node_id: String,
    /// Its container, once started.
    pub container_id: Option<String>,
    /// The swarm's state of it (`running`).
    pub state: String,
}

/// A published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    /// The port inside the container.
    pub container: u16,
    /// The port on the host.
    pub host: u16,
    /// The host address it is bound to (the environment's `publish_address`);
    /// absent for a Swarm task's port (bound on every address of its node) and in
    /// evidence written before the address was configurable (127.0.0.1 then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<std::net::IpAddr>,
}

/// What marks a deploy as a promotion: where from, and the evidence relied on there
/// (also among the header's `inputs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promotion {
    /// The environment promoted from.
    pub from: EnvName,
    /// The deployment there.
    pub deployment: Input,
    /// The smoke evidence there.
    pub smoke: Input,
}

/// The deploy lease held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// Who held it (runner and run).
    pub holder: String,
    /// When it was taken.
    #[serde(with = "time::serde::rfc3339")]
    pub acquired_at: OffsetDateTime,
    /// When it lapses unless renewed.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Whether it was taken over from an expired holder.
    pub takeover: bool,
}

/// Why a deploy failed, and whether the previous release was restored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployFailure {
    /// What went wrong.
    pub message: String,
    /// Whether the previous containers were started again.
    pub restored: bool,
}

impl Predicate for DeploymentPredicate {
    const DOCUMENTS: &'static [Document] = &[Document::Predicate(ArtifactKind::Deployment)];
}
