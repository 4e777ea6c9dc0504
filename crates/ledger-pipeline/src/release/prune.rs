//! `ledger prune`: delete the images of SHAs that were never promoted.
//!
//! The protection invariant, checked for every candidate: no digest of a SHA that any
//! decision ever promoted, and no digest running in any environment (what each
//! environment's engine and the build engine run for this project, and what the
//! evidence says runs), is ever a candidate. Copies are looked for on every one of
//! those engines (an environment's engine holds the images it pulled) and in the
//! registry. Only
//! SHAs whose build is older than `min_age_days` are considered, so a release still on
//! its way through the pipeline is never touched. A dry run is the default; applying
//! refuses more deletions than the configured threshold unless forced, and what was
//! deleted is recorded as a signed in-toto statement (`prune/<time>-<keyid>.json`,
//! predicate type [`PRUNE_PREDICATE_TYPE`]) whose subjects are the deleted digests.

use crate::config::Config;
use crate::engines::Placement;
use crate::error::Error;
use crate::record::Recorder;
use ledger_core::predicate::{
    self, BuildPredicate, DecisionPredicate, Outcome, PrunePredicate, Runner,
};
use ledger_core::schema::{self, Document};
use ledger_core::statement::PRUNE_PREDICATE_TYPE;
use ledger_core::{ArtifactKind, ArtifactRef, Envelope, GitSha, Stage, Statement, Subject};
use ledger_docker::labels;
use ledger_docker::registry::{DigestRef, Registry};
use ledger_policy::{Reason, Verdict};
use ledger_store::ObjectKey;
use ledger_verify::evidence::Evidence;
use ledger_verify::history::latest_known;
use serde::Serialize;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use time::OffsetDateTime;

/// Where an image copy lives: the prune record's own type, so plan, output and
/// record cannot name places differently.
pub use ledger_core::predicate::Place;

/// One image copy that may be deleted.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    pub sha: GitSha,
    pub image: String,
    #[serde(rename = "where")]
    pub place: Place,
    #[serde(rename = "ref")]
    pub reference: String,
    pub digest: String,
    /// For an engine copy: the engine it is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    /// Bytes, when the engine knows it.
    pub size: Option<i64>,
}

/// A digest the protection invariant keeps, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Protected {
    pub digest: String,
    pub why: String,
}

/// What a prune would do.
#[derive(Debug, Clone, Serialize)]
pub struct PrunePlan {
    pub candidates: Vec<Candidate>,
    pub protected: Vec<Protected>,
    /// SHAs left alone because their build is younger than `min_age_days`.
    pub too_young: Vec<GitSha>,
    /// Evidence that did not verify: its SHA is left alone, never guessed about.
    pub ignored: Vec<String>,
    pub threshold: usize,
    pub min_age_days: u64,
}

impl PrunePlan {
    /// Total bytes of the candidates the engine could size.
    pub fn bytes(&self) -> i64 {
        self.candidates.iter().filter_map(|c| c.size).sum()
    }
}

/// The outcome of deleting one candidate.
#[derive(Debug, Clone, Serialize)]
pub struct Deleted {
    #[serde(flatten)]
    pub candidate: Candidate,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Deleted {
    /// The deletion as the prune record's predicate lists it.
    fn recorded(&self) -> predicate::Deleted {
        let c = &self.candidate;
        predicate::Deleted {
            sha: c.sha,
            image: c.image.clone(),
            place: c.place,
            reference: c.reference.clone(),
            digest: c.digest.clone(),
            engine: c.engine.clone(),
            size: Some(c.size.and_then(|s| u64::try_from(s).ok())),
            ok: self.ok,
            error: self.error.clone(),
        }
    }
}

fn digest_of(reference: &str) -> &str {
    reference.rsplit_once('@').map_or(reference, |(_, d)| d)
}

/// What a SHA's decisions say about pruning its images.
enum Standing {
    /// A verified decision promoted it (that decision's key): its images are kept.
    Promoted(String),
    /// Every decision verifies and none promoted it.
    Never,
    /// A decision does not verify (deleted, altered, unlogged): whether it was ever
    /// promoted cannot be told, so the SHA is left alone (the problems are `ignored`).
    Unknown,
}

/// The SHA's standing from every decision attempt up to the latest the store lists
/// or the whole log names: deleting is the one thing a prune does that cannot be
/// undone, so a deleted `promote` the log still names makes the SHA
/// [`Standing::Unknown`], never a candidate.
async fn standing(
    evidence: &mut Evidence<'_>,
    sha: &GitSha,
    ignored: &mut Vec<String>,
) -> Result<Standing, Error> {
    let last = latest_known(evidence, ArtifactKind::Decision, sha)
        .await?
        .map_or(0, |r| r.attempt);
    let mut unknown = false;
    for attempt in 1..=last {
        let r = ArtifactRef::new(ArtifactKind::Decision, *sha, attempt);
        match evidence.check(&r).await?.into_result() {
            Ok(a) if a.predicate_as::<DecisionPredicate>()?.promotes() => {
                return Ok(Standing::Promoted(r.key()))
            }
            Ok(_) => {}
            Err(problems) => {
                ignored.push(format!("{}: {}", r.key(), problems.join("; ")));
                unknown = true;
            }
        }
    }
    Ok(if unknown {
        Standing::Unknown
    } else {
        Standing::Never
    })
}

/// One built image of a SHA: its engine id and, when pushed, its registry reference.
struct Built {
    name: String,
    image_id: String,
    repo_digest: Option<String>,
}

/// Digests the protection invariant keeps, each with the reason shown to people.
type ProtectedDigests = BTreeMap<String, String>;

/// What reading every SHA's build evidence found, before anything running is known.
struct Sorted {
    /// SHAs old enough to prune whose decisions never promoted, with their images.
    unpromoted: Vec<(GitSha, Vec<Built>)>,
    too_young: Vec<GitSha>,
}

/// Works out what a prune would delete, without deleting anything.
///
/// Three steps: sort every SHA by its build and decisions (promoted ones become
/// protected), protect what runs now, then list the unprotected copies that exist.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn plan(
    evidence: &mut Evidence<'_>,
    engines: &Placement,
    registry: &Registry,
    config: &Config,
    min_age_days: u64,
    now: OffsetDateTime,
) -> Result<PrunePlan, Error> {
    let mut ignored = Vec::new();
    let mut protected = ProtectedDigests::new();
    let sorted = sort_shas(evidence, min_age_days, now, &mut protected, &mut ignored).await?;
    protect_running(evidence, engines, config, now, &mut protected).await?;
    let candidates = find_candidates(engines, registry, sorted.unpromoted, &protected).await?;
    Ok(PrunePlan {
        candidates,
        protected: protected
            .into_iter()
            .map(|(digest, why)| Protected { digest, why })
            .collect(),
        too_young: sorted.too_young,
        ignored,
        threshold: config.prune.threshold,
        min_age_days,
    })
}

/// Reads each SHA's latest verified build: a SHA any decision ever promoted has all
/// its digests protected; one built after the age cutoff (or whose build failed) is
/// too young; the rest are prune material. Evidence that does not verify is
/// `ignored`, so its SHA is left alone rather than guessed about.
async fn sort_shas(
    evidence: &mut Evidence<'_>,
    min_age_days: u64,
    now: OffsetDateTime,
    protected: &mut ProtectedDigests,
    ignored: &mut Vec<String>,
) -> Result<Sorted, Error> {
    let mut unpromoted: Vec<(GitSha, Vec<Built>)> = Vec::new();
    let mut too_young = Vec::new();
    let cutoff =
        now - time::Duration::days(i64::try_from(min_age_days).unwrap_or(i64::MAX / 86_400 / 2));

    for sha in evidence.store().shas().await? {
        let Some(r) = evidence.store().latest(ArtifactKind::Build, &sha).await? else {
            continue;
        };
        let build = match evidence.check(&r).await?.into_result() {
            Ok(a) => a,
            Err(problems) => {
                ignored.push(format!("{}: {}", r.key(), problems.join("; ")));
                continue;
            }
        };
        let images: Vec<Built> = build
            .predicate_as::<BuildPredicate>()?
            .images
            .iter()
            .map(|i| Built {
                name: i.name.clone(),
                image_id: i.image_id.clone(),
                repo_digest: i.repo_digest.clone(),
            })
            .collect();
        match standing(evidence, &sha, ignored).await? {
            Standing::Promoted(decision) => {
                for i in &images {
                    let why = format!("{} was promoted ({decision})", sha.short());
                    protected.insert(i.image_id.clone(), why.clone());
                    if let Some(rd) = &i.repo_digest {
                        protected.insert(digest_of(rd).to_owned(), why);
                    }
                }
            }
            Standing::Unknown => {}
            Standing::Never
                if build.header().finished_at > cutoff
                    || build.header().result != Outcome::Pass =>
            {
                too_young.push(sha);
            }
            Standing::Never => unpromoted.push((sha, images)),
        }
    }
    Ok(Sorted {
        unpromoted,
        too_young,
    })
}

/// Protects what runs now, by two independent accounts: the running containers of
/// this project on every engine, and what the evidence records as running in each
/// configured environment. A reason already given (promotion) is kept.
async fn protect_running(
    evidence: &mut Evidence<'_>,
    engines: &Placement,
    config: &Config,
    now: OffsetDateTime,
    protected: &mut ProtectedDigests,
) -> Result<(), Error> {
    for engine in engines.engines() {
        for c in engine
            .containers(&[(labels::PROJECT, config.repository.as_str())])
            .await?
            .into_iter()
            .filter(|c| c.running)
        {
            let env = c.labels.get(labels::ENV).cloned().unwrap_or_default();
            protected.entry(c.image_id.clone()).or_insert_with(|| {
                format!(
                    "running in {env} (container {} on {})",
                    c.name,
                    engine.endpoint()
                )
            });
        }
    }
    let configured: Vec<String> = config.environments.iter().map(|e| e.name.clone()).collect();
    let status = crate::observe::status::status(evidence, &configured, None, now).await?;
    for env in &status.environments {
        if let Some(run) = &env.running {
            for digest in run.images.values() {
                protected.entry(digest.clone()).or_insert_with(|| {
                    format!(
                        "recorded as running in {} ({})",
                        env.environment, run.deployment
                    )
                });
            }
        }
    }
    Ok(())
}

/// Lists the copies of unprotected images that still exist: the engine's image (with
/// its size) and the registry's manifest. An image is protected as a whole, so no
/// copy of it is listed when any of its digests is protected.
async fn find_candidates(
    engines: &Placement,
    registry: &Registry,
    unpromoted: Vec<(GitSha, Vec<Built>)>,
    protected: &ProtectedDigests,
) -> Result<Vec<Candidate>, Error> {
    let mut candidates = Vec::new();
    for (sha, images) in unpromoted {
        for i in images {
            let registry_digest = i.repo_digest.as_deref().map(digest_of);
            // An image is protected as a whole: all its copies stay if any is protected.
            let keep = protected.contains_key(&i.image_id)
                || registry_digest.is_some_and(|d| protected.contains_key(d));
            if keep {
                continue;
            }
            for engine in engines.engines() {
                if let Some(info) = engine.inspect_image(&i.image_id).await? {
                    candidates.push(Candidate {
                        sha,
                        image: i.name.clone(),
                        place: Place::Engine,
                        reference: i.image_id.clone(),
                        digest: i.image_id.clone(),
                        engine: Some(engine.endpoint().to_owned()),
                        size: Some(info.size),
                    });
                }
            }
            if let Some(r) = i.repo_digest.as_deref().and_then(DigestRef::parse) {
                if registry.has(&r).await? {
                    candidates.push(Candidate {
                        sha,
                        image: i.name.clone(),
                        place: Place::Registry,
                        reference: i.repo_digest.clone().unwrap_or_default(),
                        digest: r.digest.clone(),
                        engine: None,
                        size: None,
                    });
                }
            }
        }
    }
    Ok(candidates)
}

/// Refuses a plan over the threshold unless forced (exit 3: nothing was deleted).
pub fn check_threshold(plan: &PrunePlan, force: bool) -> Result<(), Error> {
    if force || plan.candidates.len() <= plan.threshold {
        return Ok(());
    }
    const RULE: &str = "prune.threshold";
    Err(Error::Denied(Box::new(ledger_verify::gate::GateReport {
        subject: "prune".into(),
        sha: plan.candidates[0].sha,
        rule: RULE.into(),
        verdict: Verdict {
            allowed: false,
            reasons: vec![Reason {
                rule: RULE.into(),
                artifact: None,
                found: Some(json!(plan.candidates.len())),
                required: Some(json!(format!("at most {}", plan.threshold))),
                message: format!(
                    "{} image copies would be deleted, more than the safety threshold of {} (ledger.toml [prune] threshold); nothing was deleted. Check the list, then rerun with --force",
                    plan.candidates.len(),
                    plan.threshold
                ),
            }],
            used: vec![],
        },
        inputs: vec![],
        artifacts: BTreeMap::new(),
    })))
}

/// Deletes every candidate, engine copies first; failures are reported, not fatal.
#[tracing::instrument(level = "debug", skip_all, fields(candidates = plan.candidates.len()))]
pub async fn apply(plan: &PrunePlan, engines: &Placement, registry: &Registry) -> Vec<Deleted> {
    let mut out = Vec::new();
    for c in &plan.candidates {
        let engine = engines
            .engines()
            .find(|e| Some(e.endpoint()) == c.engine.as_deref());
        let result = match (c.place, engine) {
            (Place::Engine, Some(engine)) => engine
                .remove_image(&c.reference)
                .await
                .map_err(|e| e.to_string()),
            (Place::Engine, None) => Err("its engine is not connected".into()),
            (Place::Registry, _) => match DigestRef::parse(&c.reference) {
                Some(r) => registry.delete(&r).await.map_err(|e| e.to_string()),
                None => Err("not a registry reference".into()),
            },
        };
        out.push(Deleted {
            candidate: c.clone(),
            ok: result.is_ok(),
            error: result.err(),
        });
    }
    out
}

/// Signs and stores the record of an applied prune; returns its key. The key must be
/// trusted for `deploy`: pruning changes what can be deployed.
pub async fn record(
    rec: &Recorder<'_>,
    runner: &Runner,
    plan: &PrunePlan,
    deleted: &[Deleted],
    forced: bool,
) -> Result<String, Error> {
    crate::run::check_signer(rec, Stage::Deploy)?;
    rec.store_policy().await?;
    let now = OffsetDateTime::now_utc();
    let predicate = PrunePredicate {
        pruned_at: now,
        runner: runner.clone(),
        policy_sha256: rec.policy.digest(),
        ledger_version: ledger_core::LEDGER_VERSION.to_owned(),
        threshold: plan.threshold as u64,
        forced,
        min_age_days: plan.min_age_days,
        protected: plan.protected.len() as u64,
        deleted: deleted.iter().map(Deleted::recorded).collect(),
    };
    let predicate = serde_json::to_value(predicate).map_err(|e| Error::OwnSchema {
        what: "prune record".into(),
        source: schema::SchemaError::Broken("serialize".into(), e.to_string()),
    })?;
    schema::validate(Document::Prune, &predicate).map_err(|source| Error::OwnSchema {
        what: "prune record".into(),
        source,
    })?;
    let subjects: BTreeSet<(String, String)> = deleted
        .iter()
        .map(|d| (d.candidate.reference.clone(), d.candidate.digest.clone()))
        .collect();
    let subjects: Vec<Subject> = subjects
        .iter()
        .map(|(name, digest)| Subject::image(name, digest))
        .collect();
    let statement = Statement::with_type(PRUNE_PREDICATE_TYPE, subjects, predicate);
    let envelope = Envelope::sign(&statement, rec.key);
    let stamp = now
        .format(time::macros::format_description!(
            "[year]-[month]-[day]-[hour][minute][second]-[subsecond digits:9]"
        ))
        .unwrap_or_default();
    let key = ObjectKey::parse(&format!("prune/{stamp}-{}.json", rec.key.key_id().short()))
        .map_err(ledger_store::StoreError::from)?;
    rec.store.put_create(&key, envelope.to_bytes()).await?;
    Ok(key.as_str().to_owned())
}
