//! `ledger promote SHA --to ENV`: the same digests, from the environment before into
//! this one, only on the evidence that they passed there.
//!
//! Nothing is rebuilt or re-published: the deploy runs the release-candidate manifest
//! the earlier environment ran, through the normal deploy (gate, lease, revision-label
//! checks, restore on failure). Before anything runs, the policy's promotion rule for
//! the target (`environments.<to>.promotion`, else "from the environment before it in
//! `ledger.toml`, no soak time") must hold, each failure a reason (exit 3):
//!
//! - the SHA's latest deployment to `from` exists, verifies and passed;
//! - its latest smoke there verifies, passed, and is not older than that deployment
//!   (no newer failure, nothing unsmoked);
//! - it ran the same manifest the target deploy would run;
//! - the passing smoke is at least `min_soak_seconds` old.
//!
//! The runner must be approved for the target and its environment contract met. The
//! deploy evidence names the promotion and hash-links the deployment and smoke it
//! relied on, so the chain shows why the release was allowed in.

use crate::config::Config;
use crate::error::Error;
use crate::record::Recorded;
use crate::record::Recorder;
use crate::run;
use crate::stages::deploy::{self, DeployRequest};
use crate::trigger::PromotionOf;
use ledger_core::predicate::{DeploymentPredicate, Input, Outcome, Runner};
use ledger_core::{EnvName, GitSha, Stage};
use ledger_docker::Engine;
use ledger_policy::Reason;
use ledger_verify::evidence::{Artifact, Evidence};
use ledger_verify::gate;
use std::collections::BTreeMap;
use std::time::Duration;
use time::OffsetDateTime;

/// A promotion to run.
#[derive(Debug, Clone)]
pub struct PromoteRequest {
    pub sha: GitSha,
    pub to: String,
    pub runner: Runner,
    pub lease_wait: Duration,
    /// The process environment, for the contract check (values never recorded).
    pub env: BTreeMap<String, String>,
}

/// The rule that applies to a promotion into `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub from: String,
    pub min_soak_seconds: u64,
    /// JSON path of the rule in the policy, or where the default came from.
    pub source: String,
}

/// The promotion rule into `to`: the policy's, else the environment before `to` in
/// `ledger.toml` with no soak time.
pub fn rule(rec: &Recorder<'_>, config: &Config, to: &str) -> Result<Rule, Error> {
    config.environment(to)?;
    if let Some(p) = rec.policy.promotion(to) {
        config.environment(&p.from)?;
        return Ok(Rule {
            from: p.from.clone(),
            min_soak_seconds: p.min_soak_seconds,
            source: format!("/environments/{to}/promotion"),
        });
    }
    let at = config.environments.iter().position(|e| e.name == to);
    match at.and_then(|i| i.checked_sub(1)) {
        Some(i) => Ok(Rule {
            from: config.environments[i].name.clone(),
            min_soak_seconds: 0,
            source: "ledger.toml environment order".into(),
        }),
        None => Err(Error::Config(crate::config::ConfigError::Invalid {
            path: crate::config::CONFIG_FILE.into(),
            message: format!(
                "`{to}` is the first environment in ledger.toml and the policy names no `environments.{to}.promotion.from`: there is nothing to promote from; deploy to it with `ledger stage deploy --env {to}`"
            ),
        })),
    }
}

fn reason(rule: &Rule, artifact: Option<String>, message: String) -> Reason {
    Reason {
        rule: rule.source.clone(),
        artifact,
        found: None,
        required: None,
        message,
    }
}

/// Checks the promotion rule; on success, the evidence relied on in `from`.
///
/// Every failing condition becomes a reason, so one refusal lists all that is wrong;
/// only a missing or unverifiable deployment or smoke stops the checks early, since
/// the later conditions need its contents.
pub async fn check(
    rec: &Recorder<'_>,
    rule: &Rule,
    sha: &GitSha,
    manifest: &Artifact,
    now: OffsetDateTime,
) -> Result<Result<PromotionOf, Vec<Reason>>, Error> {
    let from = EnvName::parse(&rule.from)?;
    let mut evidence = Evidence::new(rec.store, rec.policy).in_env(Some(from));
    let mut reasons = Vec::new();
    // The latest attempts the log names, as a gate takes them: deleting the newest
    // (failed) smoke leaves the log naming it, so an earlier pass is not promoted.
    let (mut verified, mut invalid) =
        gate::gather(&mut evidence, sha, [Stage::Deploy, Stage::Smoke]).await?;
    let mut found = |stage: Stage| match verified.remove(&stage) {
        Some(a) => Some(Ok(a)),
        None => invalid.remove(&stage).map(Err),
    };
    let (deployment, smoke) = (found(Stage::Deploy), found(Stage::Smoke));
    let Some(deployed) = check_deployment(rule, sha, from, deployment, manifest, &mut reasons)?
    else {
        return Ok(Err(reasons));
    };
    let Some(smoked) = verified_smoke(rule, sha, from, smoke, &mut reasons) else {
        return Ok(Err(reasons));
    };
    check_smoke(rule, from, &smoked, &deployed, now, &mut reasons);
    if !reasons.is_empty() {
        return Ok(Err(reasons));
    }
    Ok(Ok(PromotionOf {
        from: rule.from.clone(),
        deployment: Input {
            key: deployed.r().key(),
            sha256: deployed.digest(),
        },
        smoke: Input {
            key: smoked.r().key(),
            sha256: smoked.digest(),
        },
    }))
}

/// The SHA's latest deployment to `from` must exist and verify (else `None`, with its
/// reason); it must also have passed and run the manifest the target deploy would run,
/// so only what ran there is promoted.
fn check_deployment(
    rule: &Rule,
    sha: &GitSha,
    from: EnvName,
    deployment: Option<Found>,
    manifest: &Artifact,
    reasons: &mut Vec<Reason>,
) -> Result<Option<Artifact>, Error> {
    let deployed = match deployment {
        None => {
            reasons.push(reason(rule, None, format!("{sha} never reached `{from}`: there is no deployment of it there; deploy it to `{from}` first")));
            return Ok(None);
        }
        Some(Err((key, problems))) => {
            reasons.push(reason(
                rule,
                Some(key),
                format!(
                    "its latest deployment to `{from}` does not verify: {}",
                    problems.join("; ")
                ),
            ));
            return Ok(None);
        }
        Some(Ok(a)) => a,
    };
    if deployed.header().result != Outcome::Pass {
        reasons.push(reason(
            rule,
            Some(deployed.key()),
            format!(
                "its latest deployment to `{from}` (attempt {}) failed",
                deployed.r().attempt
            ),
        ));
    }
    if deployed
        .predicate_as::<DeploymentPredicate>()?
        .manifest
        .sha256
        != manifest.digest()
    {
        reasons.push(reason(
            rule,
            Some(deployed.key()),
            format!(
                "`{from}` ran another manifest than {} now holds; promote only what ran there",
                manifest.r().key()
            ),
        ));
    }
    Ok(Some(deployed))
}

/// The SHA's latest smoke in `from`, when it exists and verifies; otherwise `None`
/// with the reason.
fn verified_smoke(
    rule: &Rule,
    sha: &GitSha,
    from: EnvName,
    smoke: Option<Found>,
    reasons: &mut Vec<Reason>,
) -> Option<Artifact> {
    match smoke {
        None => {
            reasons.push(reason(rule, None, format!("no smoke evidence of {sha} in `{from}`: run `ledger stage smoke --env {from}` first")));
            None
        }
        Some(Err((key, problems))) => {
            reasons.push(reason(
                rule,
                Some(key),
                format!(
                    "its latest smoke in `{from}` does not verify: {}",
                    problems.join("; ")
                ),
            ));
            None
        }
        Some(Ok(a)) => Some(a),
    }
}

/// A stage's latest attempt as [`gate::gather`] found it: verified, or its key and
/// problems.
type Found = Result<Artifact, (String, Vec<String>)>;

/// The smoke must have passed, be no older than the deployment it vouches for (no
/// newer deploy left unsmoked) and have soaked for the rule's minimum time.
fn check_smoke(
    rule: &Rule,
    from: EnvName,
    smoked: &Artifact,
    deployed: &Artifact,
    now: OffsetDateTime,
    reasons: &mut Vec<Reason>,
) {
    if smoked.header().result != Outcome::Pass {
        reasons.push(reason(
            rule,
            Some(smoked.r().key()),
            format!(
                "its latest smoke in `{from}` (attempt {}) failed",
                smoked.r().attempt
            ),
        ));
    }
    if smoked.header().finished_at < deployed.header().finished_at {
        reasons.push(reason(rule, Some(smoked.r().key()), format!("it was deployed to `{from}` again after its last smoke there; smoke it again first")));
    }
    let soaked = u64::try_from((now - smoked.header().finished_at).whole_seconds()).unwrap_or(0);
    if soaked < rule.min_soak_seconds {
        reasons.push(reason(rule, Some(smoked.r().key()), format!(
            "it has soaked in `{from}` for {soaked} s of the {} s the policy requires; promote after {}",
            rule.min_soak_seconds,
            (smoked.header().finished_at + time::Duration::seconds(i64::try_from(rule.min_soak_seconds).unwrap_or(i64::MAX)))
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        )));
    }
}

/// Promotes `req.sha` into `req.to`: runner, contract and promotion rule first (a
/// denial is [`Error::Denied`], nothing touched), then the normal deploy.
#[tracing::instrument(level = "debug", skip_all, fields(sha = %req.sha, to = %req.to))]
pub async fn run_promote(
    rec: &Recorder<'_>,
    engine: &Engine,
    config: &Config,
    req: &PromoteRequest,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Recorded, Error> {
    let to = EnvName::parse(&req.to)?;
    let rule = rule(rec, config, &req.to)?;
    deploy::check_runner(rec.policy, &req.to, &req.runner)?;
    deploy::check_contract(config.environment(&req.to)?, &req.env)?;
    let passed = run::begin(rec, Stage::Deploy, &req.sha, Some(to)).await?;
    let manifest = passed
        .relied_on(Stage::Publish, "there is no manifest to promote")?
        .clone();
    let promotion = match check(rec, &rule, &req.sha, &manifest, OffsetDateTime::now_utc()).await? {
        Ok(p) => p,
        Err(reasons) => {
            return Err(Error::denied(
                format!("promote to {}", req.to),
                req.sha,
                rule.source.clone(),
                reasons,
            ));
        }
    };
    progress(&format!(
        "promotion rule holds: {} passed deploy and smoke in `{}` ({}); deploying the same digests to `{}`",
        req.sha, promotion.from, promotion.smoke.key, req.to
    ));
    let deploy_req = DeployRequest {
        sha: req.sha,
        environment: req.to.clone(),
        runner: req.runner.clone(),
        lease_wait: req.lease_wait,
        replay: None,
        promotion: Some(promotion),
        env: req.env.clone(),
    };
    deploy::run_deploy(rec, engine, config, &deploy_req, passed, progress).await
}
