//! The one sequence every stage runs through: signer → gate → stored policy → work.
//!
//! Each stage checks that the signing key may sign it (an untrusted key must not
//! produce evidence no one can verify), evaluates its gate before anything else is
//! touched, and stores the policy that gated it, in that order. [`begin`] does all
//! three and hands out a [`Passed`] token; every stage's work takes that token, so no
//! stage can run without its gate, and the gate is evaluated in exactly one place.
//! [`gate()`] (reads) and [`Gated::pass`] (writes) are its two halves, for a caller
//! that holds the writes until another check has answered.

use crate::error::Error;
use crate::record::Recorder;
use ledger_core::{EnvName, GitSha, Stage};
use ledger_verify::gate::{self, Gathered};
use ledger_verify::{Artifact, Evidence, GateReport};
use time::OffsetDateTime;

/// Checks that the recorder's key may sign `stage` now.
pub fn check_signer(rec: &Recorder<'_>, stage: Stage) -> Result<(), Error> {
    let now = OffsetDateTime::now_utc();
    if rec.policy.may_sign(rec.key, stage, now) {
        return Ok(());
    }
    let revoked = rec
        .policy
        .revoked_for(rec.key.key_id(), now)
        .map(|t| format!(" (it was revoked at {t})"))
        .unwrap_or_default();
    Err(Error::KeyNotTrusted {
        keyid: rec.key.key_id().to_string(),
        stage,
        revoked,
    })
}

/// Proof that a stage's gate passed: only [`begin`] (or [`Gated::pass`]) makes one,
/// and the stages that need infrastructure take it as an argument, so the gate is
/// always evaluated before any engine, registry or config is touched.
#[derive(Debug, Clone)]
pub struct Passed {
    report: GateReport,
    stage: Stage,
    /// Everything the gate gathered: the stages it requires and those the stage's
    /// work reads besides ([`read_by_work`]).
    gathered: Gathered,
}

impl Passed {
    /// The gate's report: the evidence it used and the hash links to record.
    pub fn report(&self) -> &GateReport {
        &self.report
    }

    /// The verified `needs` evidence the gate relied on: what the stage works from (a
    /// manifest to deploy, a build to publish). A gate that does not require it is a
    /// policy-shape problem, [`Error::GateLacksEvidence`], saying what follows
    /// (`consequence`).
    pub fn relied_on(&self, needs: Stage, consequence: &'static str) -> Result<&Artifact, Error> {
        self.report
            .artifacts
            .get(&needs)
            .ok_or(Error::GateLacksEvidence {
                gate: self.stage,
                needs,
                consequence,
            })
    }

    /// Checks the token was issued for `stage` and `sha`.
    pub fn expect(self, stage: Stage, sha: &GitSha) -> Result<GateReport, Error> {
        if self.stage != stage || self.report.sha != *sha {
            return Err(Error::GateTokenMismatch {
                issued: self.stage,
                issued_sha: self.report.sha,
                stage,
                sha: *sha,
            });
        }
        Ok(self.report)
    }

    /// [`Passed::expect`], with every stage's latest attempt the gate gathered
    /// (verified, or the key and problems of one that is not): a stage that works
    /// from more evidence than its gate requires works from what its gate saw,
    /// without reading the store again.
    pub fn expect_gathered(
        mut self,
        stage: Stage,
        sha: &GitSha,
    ) -> Result<(GateReport, Gathered), Error> {
        let gathered = std::mem::take(&mut self.gathered);
        Ok((self.expect(stage, sha)?, gathered))
    }
}

/// What a stage's work reads beyond the stages its gate requires, gathered by the
/// gate in the same reads: `decide` judges the policy's release rules over the
/// latest attempt of every other stage.
fn read_by_work(rec: &Recorder<'_>, stage: Stage) -> Vec<Stage> {
    match stage {
        Stage::Decide => Stage::ALL
            .into_iter()
            .filter(|s| *s != Stage::Decide)
            .chain(rec.policy.release().requires.iter().map(|r| r.stage))
            .collect(),
        _ => Vec::new(),
    }
}

/// Starts a run of `stage` for `sha`: checks that the recorder's key may sign it,
/// evaluates its gate (for deploy and smoke, against `env`'s evidence; for `build`,
/// with the build-once rule) and stores the policy that gated it. A denial is
/// [`Error::Denied`] and nothing has run or been written. [`gate()`] then
/// [`Gated::pass`].
pub async fn begin(
    rec: &Recorder<'_>,
    stage: Stage,
    sha: &GitSha,
    env: Option<EnvName>,
) -> Result<Passed, Error> {
    gate(rec, stage, sha, env).await?.pass().await
}

/// A gate that allowed its stage, before anything was written: [`gate()`] reads, this
/// writes. Held apart so a caller can evaluate the gate beside another check whose
/// refusal must win (`ledger stage --sha` asks git whether the SHA is a commit of
/// the repository while the gate reads), and write only once both said yes.
#[derive(Debug)]
pub struct Gated<'a> {
    /// The recorder the gate read with, which writes the rest.
    rec: Recorder<'a>,
    evidence: Evidence<'a>,
    report: GateReport,
    gathered: Gathered,
    stage: Stage,
    /// The stage's own objects, listed beside the gate's reads.
    own: Vec<String>,
}

/// The reading half of [`begin`]: checks the signer and evaluates the gate, writing
/// nothing. A denial is [`Error::Denied`].
#[tracing::instrument(level = "debug", skip_all, fields(%stage, %sha, env = ?env.map(|e| e.to_string())))]
pub async fn gate<'a>(
    rec: &Recorder<'a>,
    stage: Stage,
    sha: &GitSha,
    env: Option<EnvName>,
) -> Result<Gated<'a>, Error> {
    check_signer(rec, stage)?;
    let mut evidence = Evidence::new(rec.store, rec.policy).in_env(env);
    let now = OffsetDateTime::now_utc();
    let also = read_by_work(rec, stage);
    // The stage's own objects are listed beside the gate's reads, not after them:
    // independent requests, one round trip instead of two.
    let gate = async {
        gate::check_stage_gathering(&mut evidence, stage, sha, now, also)
            .await
            .map_err(Error::from)
    };
    let ((report, gathered), own) =
        futures::future::try_join(gate, own_objects(rec, stage, sha)).await?;
    if !report.allowed() {
        return Err(Error::Denied(Box::new(report)));
    }
    Ok(Gated {
        rec: *rec,
        evidence,
        report,
        gathered,
        stage,
        own,
    })
}

impl Gated<'_> {
    /// The writing half of [`begin`]: names in this run's log entry the stage's
    /// objects a killed run left unlogged, stores the policy that gated the stage, and
    /// hands out the [`Passed`] token, with the recorder the gate read with.
    pub async fn pass(mut self) -> Result<Passed, Error> {
        adopt_unlogged(&mut self.evidence, self.own).await?;
        self.rec
            .store_policy_unless_read(Some(&self.evidence))
            .await?;
        Ok(Passed {
            report: self.report,
            stage: self.stage,
            gathered: self.gathered,
        })
    }
}

/// Every object stored under the prefixes of `stage`'s kinds for `sha`, listed
/// concurrently.
async fn own_objects(rec: &Recorder<'_>, stage: Stage, sha: &GitSha) -> Result<Vec<String>, Error> {
    let mut prefixes: Vec<String> = ledger_core::ArtifactKind::ALL
        .into_iter()
        .filter(|k| k.stage() == stage)
        .map(|k| k.prefix(sha))
        .collect();
    // Kinds may share a folder (a smoke run is stored beside its deployment).
    prefixes.sort();
    prefixes.dedup();
    // Kept for the attempt the stage writes after its work (`list_for_attempts`).
    let listed =
        futures::future::try_join_all(prefixes.iter().map(|p| rec.store.list_for_attempts(p)))
            .await?;
    Ok(listed.into_iter().flatten().collect())
}

/// Objects of the stage (`listed`, by [`own_objects`]) that exist but the log does
/// not name: what a `ledger` killed between writing them and logging them left. This
/// run's log entry names them too, so a crash costs an attempt, never the log's
/// completeness.
async fn adopt_unlogged(evidence: &mut Evidence<'_>, listed: Vec<String>) -> Result<(), Error> {
    let store = evidence.store();
    let index = evidence.log_index().await?;
    if index.is_empty() || listed.iter().all(|k| index.get(k).is_some()) {
        return Ok(());
    }
    // The gate read the log from the heads its inputs recorded; these objects'
    // evidence may be older than that. Read it from the oldest head their evidence
    // recorded (whole, for an object without readable evidence), so that only what
    // no entry names is adopted.
    let owners: Option<Vec<ledger_core::ArtifactRef>> = listed
        .iter()
        .filter(|k| index.get(k).is_none())
        .map(|k| evidence_of(k))
        .collect();
    match owners {
        Some(owners) => evidence.read_log_for(&owners).await?,
        None => evidence.read_log_covering(None).await?,
    }
    let index = evidence.log_index().await?;
    for key in listed {
        if index.get(&key).is_some() {
            continue;
        }
        // A name no writer makes, a link or a special file is never evidence:
        // `verify` reports it; it is not adopted.
        let Ok(object) = ledger_store::ObjectKey::parse(&key) else {
            continue;
        };
        let read = store
            .get_limited(&object, ledger_verify::read::MAX_LOG_BYTES)
            .await;
        if let Some(bytes) = read.or_else(|e| {
            if e.is_object_problem() {
                Ok(None)
            } else {
                Err(e)
            }
        })? {
            tracing::info!(key, "adopting an object no log entry names");
            store.adopt(&key, ledger_core::Sha256Digest::of(&bytes));
        }
    }
    Ok(())
}

/// The evidence an object of a SHA's folders belongs to: itself, or the artifact
/// whose captured output or companion statement it is.
fn evidence_of(key: &str) -> Option<ledger_core::ArtifactRef> {
    ledger_core::ArtifactRef::parse_key(key)
        .or_else(|| ledger_core::Attestation::parse_key(key).map(|(r, _)| r))
        .or_else(|| {
            let base = key.strip_suffix(".log")?;
            ledger_core::ArtifactRef::parse_key(&format!("{base}.json"))
        })
}
