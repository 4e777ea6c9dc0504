//! The labels `ledger` puts on images and containers, and reads back.
//!
//! They are the engine's half of the record: the revision label ties an image to the
//! commit it was built from (deploy refuses an image whose label names another SHA),
//! and the `dev.ledger.*` container labels let `status --drift`, replay and prune find
//! what `ledger` runs without trusting anything else the engine holds. One list, so
//! that writers and readers cannot disagree on a name.

/// The OCI label naming the commit an image was built from.
pub const REVISION: &str = "org.opencontainers.image.revision";
/// The SHA a container runs.
pub const SHA: &str = "dev.ledger.sha";
/// The environment a container was deployed to.
pub const ENV: &str = "dev.ledger.environment";
/// The image name (from `ledger.toml`) a container runs.
pub const IMAGE: &str = "dev.ledger.image";
/// The deploy attempt that started a container.
pub const ATTEMPT: &str = "dev.ledger.attempt";
/// The key of the deployment evidence that started a container.
pub const EVIDENCE: &str = "dev.ledger.evidence";
/// Set on every container `ledger` manages.
pub const MANAGED: &str = "dev.ledger.managed";
/// The `repository` of `ledger.toml`: environments are per project.
pub const PROJECT: &str = "dev.ledger.project";
