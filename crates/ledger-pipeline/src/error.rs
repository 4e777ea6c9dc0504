//! The pipeline's typed errors and the class each belongs to.
//!
//! The class is what the binary turns into an exit code (DESIGN.md): bad input 2,
//! denied 3, verification 4, infrastructure 5. Deciding the class here, next to the
//! error, keeps the CLI a thin mapping and keeps the classes consistent.

use crate::config::ConfigError;
use crate::release::step::Step;
use crate::source::SourceError;
use crate::stages::exec::CommandError;
use ledger_core::schema::SchemaError;
use ledger_core::{GitSha, Stage};
use ledger_store::StoreError;
pub use ledger_verify::ErrorClass;
use ledger_verify::GateReport;

/// Everything that can stop a pipeline operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error("signing key {keyid} is not trusted by the policy to sign stage `{stage}`{revoked}")]
    KeyNotTrusted {
        keyid: String,
        stage: Stage,
        revoked: String,
    },
    /// The policy in force is not signed by a threshold of its owners (or the root
    /// of trust does not hold): no stage runs under rules nobody vouched for.
    #[error("policy not trusted: {0}")]
    PolicyUntrusted(ledger_policy::TrustError),
    #[error("stage `{0}` does not wrap a command")]
    NotAWrapperStage(Stage),
    #[error("internal error: the {what} ledger built does not match its own schema: {source}")]
    OwnSchema { what: String, source: SchemaError },
    #[error("stored policy object {key} does not hash to its name: the store was altered")]
    PolicyObjectAltered { key: String },
    #[error("gate denied: {} of the policy's rules for `{}` do not hold for {}", .0.verdict.reasons.len(), .0.subject, .0.sha)]
    Denied(Box<GateReport>),
    #[error("environment `{environment}` is being deployed by {holder} (SHA {sha}); its lease is held by {holder} until {expires_at}")]
    LeaseHeld {
        environment: String,
        holder: String,
        sha: String,
        expires_at: time::OffsetDateTime,
    },
    #[error(transparent)]
    Docker(#[from] ledger_docker::DockerError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The code a stage would run cannot be tied to its SHA.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The policy's gate for a stage does not require the evidence the stage works
    /// from (a policy shape problem: bad input).
    #[error("the policy's gate for {gate} does not require {needs} evidence, so {consequence}")]
    GateLacksEvidence {
        gate: Stage,
        needs: Stage,
        consequence: &'static str,
    },
    /// A gate's pass token was presented to another stage or SHA (a bug in ledger).
    #[error(
        "internal error: a gate passed for {issued} {issued_sha} was presented to {stage} {sha}"
    )]
    GateTokenMismatch {
        issued: Stage,
        issued_sha: GitSha,
        stage: Stage,
        sha: GitSha,
    },
    /// A manifest names an image by tag: deploy runs digests only.
    #[error("manifest {manifest} names image {image} by {reference:?}, not by digest; deploy runs digests only")]
    ManifestByTag {
        manifest: String,
        image: String,
        reference: String,
    },
    /// An image's revision label is not the SHA being deployed.
    #[error("image {image} ({reference}) has revision label {}, not {sha}; refusing to deploy an image built from another commit", .found.as_ref().map_or("(none)".to_owned(), |r| format!("{r:?}")))]
    RevisionMismatch {
        image: String,
        reference: String,
        sha: GitSha,
        found: Option<String>,
    },
    /// A running container of the environment carries a `dev.ledger.sha` label that
    /// is not a commit SHA (shown escaped, cut at 64 characters).
    #[error("container {container} in environment `{environment}` carries label dev.ledger.sha = {label:?}, which is not a commit SHA; nothing was stopped")]
    ForeignContainer {
        container: String,
        environment: String,
        label: String,
    },
    /// A replay or rollback cannot run a release under its own configuration.
    #[error("cannot replay {sha} as it was released: {why}")]
    NoReleasedConfig {
        sha: GitSha,
        environment: String,
        why: String,
    },
    /// The HTTP client for smoke checks could not be created.
    #[error("cannot create an HTTP client: {0}")]
    HttpClient(String),
    #[error("{key} does not verify: {}", problems.join("; "))]
    EvidenceInvalid { key: String, problems: Vec<String> },
    /// A step of a replay or rollback failed; `source` says why.
    #[error("{step}: {source}")]
    At { step: Step, source: Box<Error> },
    #[error(
        "no attempt number is left for {stage}: attempts go up to {tries}, and every one is taken"
    )]
    AttemptContention { stage: Stage, tries: u32 },
    /// The wrapped command finished, the store could not record it, and its result
    /// is kept in the local spool.
    #[error("the store could not record {stage} for {sha} ({source}); the command's result is kept in {spooled}")]
    Spooled {
        stage: Stage,
        sha: GitSha,
        spooled: String,
        source: Box<Error>,
    },
    /// The wrapped command finished, the store could not record it, and neither could
    /// the local spool: the result is lost, and this says so.
    #[error("the store could not record {stage} for {sha} ({source}), and the local spool could not keep it either ({spool_error}): this run's result is lost")]
    SpoolFailed {
        stage: Stage,
        sha: GitSha,
        spool_error: String,
        source: Box<Error>,
    },
    /// A spooled run does not hold together (its log does not hash to what its record
    /// says, or it is not the stage and SHA asked for): it is left where it is.
    #[error("spooled run {path} cannot be recorded: {why}")]
    SpoolDamaged { path: String, why: String },
    #[error(transparent)]
    InvalidEnv(#[from] ledger_core::env::InvalidEnvName),
    /// Required environment variables are not set (only names are ever shown).
    #[error("environment `{environment}` requires {}, not set in this job's environment", .names.join(", "))]
    MissingVariable {
        environment: String,
        names: Vec<String>,
    },
    /// `ledger attest` has nothing it could attach.
    #[error("nothing to attach for {sha}: {why}")]
    NothingToAttest { sha: GitSha, why: String },
    /// The policy does not let this runner run stages in the environment.
    #[error("runner {runner} is not approved for environment `{environment}` (the policy approves {})", .approved.join(", "))]
    RunnerNotApproved {
        runner: String,
        environment: String,
        approved: Vec<String>,
    },
}

impl Error {
    /// The class that decides the exit code.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Store(e) => ErrorClass::of_store(e),
            Error::Command(_) | Error::KeyNotTrusted { .. } | Error::NotAWrapperStage(_) => {
                ErrorClass::Input
            }
            Error::OwnSchema { .. } | Error::NothingToAttest { .. } => ErrorClass::Input,
            Error::PolicyObjectAltered { .. } => ErrorClass::Verification,
            // A spooled run keeps the class of what stopped the store: down is 5, a
            // store that refuses (a planted link) is 4.
            Error::Spooled { source, .. } | Error::SpoolFailed { source, .. } => source.class(),
            Error::AttemptContention { .. } => ErrorClass::Infrastructure,
            Error::SpoolDamaged { .. } => ErrorClass::Verification,
            Error::Denied(_) | Error::RunnerNotApproved { .. } | Error::PolicyUntrusted(_) => {
                ErrorClass::Denied
            }
            Error::LeaseHeld { .. } => ErrorClass::Infrastructure,
            // An engine endpoint or an image reference written wrong is the input's fault.
            Error::Docker(
                ledger_docker::DockerError::Endpoint { .. }
                | ledger_docker::DockerError::Reference { .. },
            ) => ErrorClass::Input,
            // A registry that serves other bytes than their digest names: tampering.
            Error::Docker(ledger_docker::DockerError::Integrity { .. }) => ErrorClass::Verification,
            Error::Docker(_) => ErrorClass::Infrastructure,
            Error::Config(_)
            | Error::Source(_)
            | Error::InvalidEnv(_)
            | Error::MissingVariable { .. }
            | Error::ForeignContainer { .. }
            | Error::NoReleasedConfig { .. } => ErrorClass::Input,
            Error::GateLacksEvidence { .. } => ErrorClass::Input,
            Error::HttpClient(_) => ErrorClass::Infrastructure,
            Error::GateTokenMismatch { .. }
            | Error::ManifestByTag { .. }
            | Error::RevisionMismatch { .. }
            | Error::EvidenceInvalid { .. } => ErrorClass::Verification,
            Error::At { source, .. } => source.class(),
        }
    }

    /// A denial by a rule outside the stage gates (promotion, runner, …).
    pub fn denied(
        subject: String,
        sha: GitSha,
        rule: String,
        reasons: Vec<ledger_policy::Reason>,
    ) -> Error {
        Error::Denied(Box::new(GateReport::denial(subject, sha, rule, reasons)))
    }

    /// What to do about it, shown apart from the message (`hint: …`); `None` when
    /// the message says all there is.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Error::KeyNotTrusted { .. } => {
                "add the key to the stage's `stages` in the policy, or sign with a key the policy trusts for it".into()
            }
            Error::NotAWrapperStage(_) => "run it without `-- CMD`".into(),
            Error::PolicyUntrusted(e) => e.hint().to_owned(),
            Error::LeaseHeld { .. } => {
                "wait for that deploy to finish, or retry after the lease expires".into()
            }
            Error::GateLacksEvidence { gate, needs, .. } => {
                format!("add a {needs} requirement to /stages/{gate} in the policy")
            }
            Error::EvidenceInvalid { .. } => "`ledger verify` shows the whole chain".into(),
            Error::AttemptContention { .. } => "use a new SHA for further runs".into(),
            Error::Spooled { stage, sha, .. } => format!(
                "once the store is reachable, record it without running the command again: `ledger stage {stage} --sha {sha} --resume` (the next `ledger stage {stage}` run for this SHA records it first by itself)"
            ),
            Error::SpoolDamaged { path, .. } => format!(
                "inspect {path}; remove it to stop ledger from trying to record it"
            ),
            Error::MissingVariable { names, .. } => format!(
                "set {} before deploying (values are never printed or recorded)",
                if names.len() == 1 { "it" } else { "them" }
            ),
            Error::RunnerNotApproved { .. } => "run this job on an approved runner".into(),
            Error::NoReleasedConfig { sha, environment, .. } => format!(
                "commit ledger.toml (with environment `{environment}`) in each release; or pass --current-config to run {sha} under today's ledger.toml instead, knowing its checks may expect another release"
            ),
            Error::ForeignContainer { container, .. } => format!(
                "remove {container} or give it the SHA of the release it runs: ledger replaces only containers labelled with a commit SHA"
            ),
            Error::Docker(e) => return e.hint(),
            Error::Source(e) => return e.hint(),
            Error::At { source, .. } => return source.hint(),
            _ => return None,
        })
    }

    /// Marks the error as the failure of `step` (of a replay or rollback).
    pub fn at(self, step: Step) -> Error {
        match self {
            already @ Error::At { .. } => already,
            other => Error::At {
                step,
                source: Box::new(other),
            },
        }
    }
}

impl From<ledger_verify::Error> for Error {
    fn from(e: ledger_verify::Error) -> Error {
        match e {
            ledger_verify::Error::Store(e) => Error::Store(e),
            ledger_verify::Error::EvidenceInvalid { key, problems } => {
                Error::EvidenceInvalid { key, problems }
            }
            ledger_verify::Error::Untrusted(e) => Error::PolicyUntrusted(e),
        }
    }
}
