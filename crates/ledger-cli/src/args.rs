//! The command-line grammar (clap derive). Kept apart from behaviour so the whole
//! surface of `ledger` can be read in one file.

use clap::builder::TypedValueParser as _;
use clap::{Args, Parser, Subcommand};
use ledger_core::Stage;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "ledger",
    version,
    about = "Signed, tamper-evident evidence for every stage of a release pipeline",
    after_help = "Exit codes: 0 ok, 1 stage failed (evidence recorded), 2 bad input, 3 gate denied, 4 verification failed, 5 infrastructure unreachable."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// The help heading of the options every command takes, so a command's own options
/// stand apart from them in its `--help`.
const GLOBAL: &str = "Global options (every command)";

#[derive(Debug, Args)]
pub struct Global {
    /// Evidence store: a folder or a bucket URL [default: .artifacts at the repository root]
    #[arg(long, global = true, env = "LEDGER_STORE", value_name = "PATH|URL", help_heading = GLOBAL)]
    pub store: Option<String>,
    /// Policy file [default: policy/pipeline-policy.json at the repository root]
    #[arg(long, global = true, env = "LEDGER_POLICY", value_name = "FILE", help_heading = GLOBAL)]
    pub policy: Option<PathBuf>,
    /// Key ids of the policy owners this CI trusts, comma-separated; when set, the
    /// store's root of trust must name exactly these owners (set it in protected CI
    /// settings, never in the repository)
    #[arg(
        long,
        global = true,
        env = "LEDGER_POLICY_OWNERS",
        value_name = "KEYID,...",
        help_heading = GLOBAL
    )]
    pub policy_owners: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Set up ledger in this git repository: a signing key, a policy, .gitignore entries
    Init,
    /// Generate key pairs and compute key ids
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The policy's signatures and root of trust: show, sign, rotate owners
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Run a pipeline stage and record its signed evidence
    Stage(StageArgs),
    /// Verify all evidence stored for a commit (or every commit: --all), offline
    Verify(VerifyArgs),
    /// The store log's newest checkpoint, verified: save it to check the log later
    /// with `verify --checkpoint`; --genesis starts a log on a store that has none
    Checkpoint(CheckpointArgs),
    /// A commit's evidence chain as people read it: stages, results, signers, facts
    Show(ShowArgs),
    /// Commits newest first, with their furthest stage and decision
    Log(LogArgs),
    /// A release's evidence and the store's delivery metrics, as Markdown or HTML
    Report(ReportArgs),
    /// Preflight: store, policy, signing key, Docker engine, registry and clock
    Doctor(DoctorArgs),
    /// Evaluate a stage's gate without running anything
    Gate(GateArgs),
    /// Deploy, smoke and decide a published release again from its stored digest
    /// manifest, without rebuilding
    Replay(ReplayArgs),
    /// Roll an environment back to a promoted release, checking each step first
    Rollback(RollbackArgs),
    /// Deploy the digests that passed in the environment before into ENV, if the
    /// policy's promotion rule holds; never rebuilds
    Promote(PromoteArgs),
    /// What runs in each environment, the last promoted release, freshness and
    /// rejected-release alarms
    Status(StatusArgs),
    /// Delete images of never-promoted releases (dry run unless --apply)
    Prune(PruneArgs),
    /// Attach a release's SLSA provenance and verification summary, as its verified
    /// evidence names them, to its images in their registry again
    Attest(AttestArgs),
}

#[derive(Debug, Args)]
pub struct AttestArgs {
    /// Commit whose attestations to attach: a full SHA, or a revision git knows here
    /// (HEAD, a tag, an abbreviated SHA) [default: HEAD]
    #[arg(value_name = "COMMIT")]
    pub sha: Option<String>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Show only this environment
    #[arg(long = "env", value_name = "NAME")]
    pub environment: Option<String>,
    /// Also compare with the containers the Docker engine runs; exit 4 on any difference
    #[arg(long)]
    pub drift: bool,
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Delete the listed images (default: only list them)
    #[arg(long)]
    pub apply: bool,
    /// Delete even when more images than the safety threshold would go
    #[arg(long)]
    pub force: bool,
    // The help is an attribute, not a doc comment: rustdoc would read `[prune]` as a
    // link.
    #[arg(
        long,
        value_name = "DAYS",
        help = "Only SHAs built at least this many days ago [default: ledger.toml [prune] min_age_days, else 14]"
    )]
    pub min_age_days: Option<u64>,
    /// Private key that signs the prune record (with --apply)
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Print the plan (and what was deleted) as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Commit whose release to run again
    #[arg(value_name = "SHA")]
    pub sha: String,
    #[command(flatten)]
    pub run: ReleaseRunArgs,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The promoted commit to roll back to
    #[arg(long = "to", value_name = "SHA")]
    pub to: String,
    #[command(flatten)]
    pub run: ReleaseRunArgs,
}

#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// The commit to promote
    #[arg(value_name = "SHA")]
    pub sha: String,
    /// The environment to promote into (e.g. production)
    #[arg(long = "to", value_name = "ENV")]
    pub to: String,
    /// Private key file [default: $LEDGER_SIGNING_KEY, else .ledger/signing.key]
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Seconds to wait for another deploy's lease on the environment
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub lease_wait: u64,
}

/// Options shared by replay and rollback.
#[derive(Debug, Args)]
pub struct ReleaseRunArgs {
    /// Environment to deploy to
    #[arg(long = "env", value_name = "NAME", default_value = "production")]
    pub environment: String,
    /// Private key file [default: $LEDGER_SIGNING_KEY, else .ledger/signing.key]
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Seconds to wait for another deploy's lease on the environment
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub lease_wait: u64,
    /// Run the release under today's ledger.toml instead of the one in its own tree
    #[arg(long)]
    pub current_config: bool,
}

#[derive(Debug, Args)]
pub struct GateArgs {
    /// Stage whose gate to evaluate
    #[arg(value_name = "STAGE", value_parser = stage_names())]
    pub stage: Stage,
    /// Commit under test [default: git rev-parse HEAD]
    #[arg(long, value_name = "SHA")]
    pub sha: Option<String>,
    /// Print the verdict as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CheckpointArgs {
    /// Start the log of a store that has evidence but no log: one entry naming every
    /// object there now, and a checkpoint signed with --key (default: the release key)
    #[arg(long)]
    pub genesis: bool,
    /// Signing key for --genesis [default: .ledger/release.key]
    #[arg(long, value_name = "FILE", requires = "genesis")]
    pub key: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// The policy in force: its digest, who signed it, the owners, and what changed
    /// since the last policy the owners signed in the store
    Show,
    /// Sign the policy (or, with --root, the checkout's policy/root.json) with a
    /// policy owner's key; adds to the signatures already there
    Sign {
        /// Owner's private key [default: .ledger/policy-owner.key]
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
        /// Sign policy/root.json (a new root version) instead of the policy
        #[arg(long)]
        root: bool,
    },
    /// Write the next root version to policy/root.json naming new owners; it takes
    /// effect once a threshold of the current owners and of the new ones signed it
    /// (`ledger policy sign --root`)
    Rotate {
        /// The new owners' public keys
        #[arg(long = "owner", value_name = "PUBLIC KEY FILE", required = true)]
        owners: Vec<PathBuf>,
        /// How many owners must sign
        #[arg(long, default_value_t = 1)]
        threshold: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Write a new Ed25519 key pair (PKCS#8 private key, mode 0600; SPKI public key)
    Generate {
        /// Where to write the private key (refuses to overwrite; keep it out of git)
        #[arg(long, value_name = "FILE")]
        private_key: PathBuf,
        /// Where to write the public key (commit it, or give its id to whoever pins it)
        #[arg(long, value_name = "FILE")]
        public_key: PathBuf,
    },
    /// Print the key id (securesystemslib form) of a public or private PEM key
    Id {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

#[derive(Debug, Args)]
#[command(
    after_help = "The wrapped command's own exit code is recorded in the evidence (command.exit_code), not passed through: when it fails, ledger records the failure and exits 1. Exit codes: 0 passed, 1 failed (evidence recorded), 2 bad input, 3 gate denied, 4 evidence does not verify, 5 store, engine or registry unreachable."
)]
pub struct StageArgs {
    /// Stage to run
    #[arg(value_name = "STAGE", value_parser = stage_names())]
    pub stage: Stage,
    /// Commit under test [default: git rev-parse HEAD]
    #[arg(long, value_name = "SHA")]
    pub sha: Option<String>,
    /// Private key file [default: $LEDGER_SIGNING_KEY, else .ledger/signing.key]
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Environment to deploy to or smoke-test (deploy, smoke)
    #[arg(long = "env", value_name = "NAME", default_value = "production")]
    pub environment: String,
    /// Seconds to wait for another deploy's lease on the environment (deploy)
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub lease_wait: u64,
    /// Also treat this environment variable's value as secret (repeatable)
    #[arg(long = "redact-env", value_name = "NAME")]
    pub redact_env: Vec<String>,
    /// Run the wrapped command as a plain child, not in its own namespaces (recorded
    /// as isolation: none)
    #[arg(long)]
    pub no_isolation: bool,
    /// Run on a working tree with uncommitted changes, recorded as dirty (commit, integration)
    #[arg(long)]
    pub allow_dirty: bool,
    /// Run for a SHA other than HEAD, or outside a git repository, and record it (commit, integration)
    #[arg(long)]
    pub allow_other_sha: bool,
    /// Record the runs of this stage for this SHA that .ledger/spool keeps (the store
    /// was down when they finished), without running anything (commit, integration)
    #[arg(long, conflicts_with = "command")]
    pub resume: bool,
    /// The command to wrap (commit and integration)
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// Stage names as clap sees them, so a typo gets clap's "did you mean" and the list.
fn stage_names() -> impl clap::builder::TypedValueParser<Value = Stage> {
    clap::builder::PossibleValuesParser::new(Stage::ALL.map(Stage::as_str)).map(|name| {
        // Every possible value is a stage's own name.
        name.parse::<Stage>().unwrap_or(Stage::Commit)
    })
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Commit whose evidence to verify: a full SHA, or a revision git knows here (HEAD,
    /// a tag, an abbreviated SHA) [default: HEAD]
    #[arg(value_name = "COMMIT", conflicts_with = "all")]
    pub sha: Option<String>,
    /// Verify every commit in the store, on all cores, with a summary
    #[arg(long)]
    pub all: bool,
    /// Threads for --all [default: all cores; at most four per core]
    #[arg(long, value_name = "N", requires = "all")]
    pub jobs: Option<usize>,
    /// Also prove that today's log extends this checkpoint, saved earlier (`ledger
    /// checkpoint`): a log cut back or rewritten since then fails (exit 4)
    #[arg(long, value_name = "FILE", conflicts_with = "all")]
    pub checkpoint: Option<PathBuf>,
    /// Verify the SLSA attestations attached to an image in its registry
    /// (host/name:tag or host/name@sha256:...) against the policy alone, without the
    /// store: a promotion's VSA and the build's provenance must verify (exit 4 if not)
    #[arg(long, value_name = "REF", conflicts_with_all = ["sha", "all", "checkpoint"])]
    pub image: Option<String>,
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Commit whose chain to show: a full SHA, or a revision git knows here (HEAD, a
    /// tag, an abbreviated SHA) [default: HEAD]
    #[arg(value_name = "COMMIT")]
    pub sha: Option<String>,
    /// Print the chain as JSON (with each verified predicate)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Only commits deployed to this environment
    #[arg(long = "env", value_name = "NAME")]
    pub environment: Option<String>,
    /// At most this many commits
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub limit: usize,
    /// Print as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// For a CI step summary ($GITHUB_STEP_SUMMARY) or a merge-request comment
    Markdown,
    /// A self-contained page: timeline, smoke latencies, metrics; loads nothing
    Html,
    /// A status update for the release channel: Status, Changes, Tests, Deploy, Issues, Escalations
    Status,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Commit to report on: a full SHA, or a revision git knows here [default: HEAD]
    #[arg(value_name = "COMMIT")]
    pub sha: Option<String>,
    /// Output format
    #[arg(long, value_enum, default_value = "markdown")]
    pub format: ReportFormat,
    /// Write to this file instead of standard output (refuses to overwrite it
    /// unless --force)
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Replace FILE of --out if it exists
    #[arg(long, requires = "out")]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The stage whose signing key must be trusted [default: every stage the key is for]
    #[arg(long, value_name = "STAGE", value_parser = stage_names())]
    pub stage: Option<Stage>,
    /// Private key file [default: $LEDGER_SIGNING_KEY, else .ledger/signing.key]
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Print as JSON
    #[arg(long)]
    pub json: bool,
}
