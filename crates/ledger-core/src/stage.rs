//! Stages, the artifact kinds they write, and the object keys those artifacts live at.
//!
//! The key layout is part of the evidence format (auditors and other tools read it), so
//! it is defined in exactly one place. Keys are *built* from a validated [`GitSha`], a
//! closed [`ArtifactKind`] and an attempt number, and *parsed* back strictly; no other
//! string ever becomes a key, so no input can escape its prefix.

use crate::env::EnvName;
use crate::sha::GitSha;
use std::fmt;
use std::str::FromStr;

/// One of the seven pipeline stages, in pipeline order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    Commit,
    Integration,
    Build,
    Publish,
    Deploy,
    Smoke,
    Decide,
}

/// A string that names no stage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown stage {0:?}: expected one of commit, integration, build, publish, deploy, smoke, decide")]
pub struct UnknownStage(pub String);

impl Stage {
    /// Every stage, in pipeline order.
    pub const ALL: [Stage; 7] = [
        Stage::Commit,
        Stage::Integration,
        Stage::Build,
        Stage::Publish,
        Stage::Deploy,
        Stage::Smoke,
        Stage::Decide,
    ];

    /// Whether the stage wraps a command (`ledger stage commit -- …`): `commit` and
    /// `integration`, the stages that run the project's own code.
    pub fn wraps_command(self) -> bool {
        matches!(self, Stage::Commit | Stage::Integration)
    }

    /// The stage's name as used on the command line, in policies and in predicates.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Commit => "commit",
            Stage::Integration => "integration",
            Stage::Build => "build",
            Stage::Publish => "publish",
            Stage::Deploy => "deploy",
            Stage::Smoke => "smoke",
            Stage::Decide => "decide",
        }
    }

    /// The artifacts this stage writes; the first is its primary artifact.
    pub fn artifacts(self) -> &'static [ArtifactKind] {
        match self {
            Stage::Commit => &[ArtifactKind::Commit],
            Stage::Integration => &[ArtifactKind::Integration],
            Stage::Build => &[ArtifactKind::Build],
            Stage::Publish => &[ArtifactKind::Manifest],
            Stage::Deploy => &[ArtifactKind::Deployment],
            Stage::Smoke => &[ArtifactKind::Smoke],
            Stage::Decide => &[ArtifactKind::Decision, ArtifactKind::Timing],
        }
    }

    /// The artifact whose presence means "this stage ran".
    pub fn primary_artifact(self) -> ArtifactKind {
        self.artifacts()[0]
    }
}

impl FromStr for Stage {
    type Err = UnknownStage;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Stage::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownStage(s.chars().take(80).collect()))
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Stage {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Stage {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A kind of artifact: one predicate type, one schema, one place in the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ArtifactKind {
    Commit,
    Integration,
    Build,
    Manifest,
    Deployment,
    Smoke,
    Decision,
    Timing,
}

impl ArtifactKind {
    /// Every kind, in pipeline order.
    pub const ALL: [ArtifactKind; 8] = [
        ArtifactKind::Commit,
        ArtifactKind::Integration,
        ArtifactKind::Build,
        ArtifactKind::Manifest,
        ArtifactKind::Deployment,
        ArtifactKind::Smoke,
        ArtifactKind::Decision,
        ArtifactKind::Timing,
    ];

    /// The kind's short name (used in predicate type URIs and schema file names).
    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactKind::Commit => "commit",
            ArtifactKind::Integration => "integration",
            ArtifactKind::Build => "build",
            ArtifactKind::Manifest => "manifest",
            ArtifactKind::Deployment => "deployment",
            ArtifactKind::Smoke => "smoke",
            ArtifactKind::Decision => "decision",
            ArtifactKind::Timing => "timing",
        }
    }

    /// The stage that writes this kind.
    pub fn stage(self) -> Stage {
        match self {
            ArtifactKind::Commit => Stage::Commit,
            ArtifactKind::Integration => Stage::Integration,
            ArtifactKind::Build => Stage::Build,
            ArtifactKind::Manifest => Stage::Publish,
            ArtifactKind::Deployment => Stage::Deploy,
            ArtifactKind::Smoke => Stage::Smoke,
            ArtifactKind::Decision | ArtifactKind::Timing => Stage::Decide,
        }
    }

    /// Whether the stage stores the output of a wrapped command beside the envelope
    /// ([`ArtifactRef::log_key`]).
    pub fn has_log(self) -> bool {
        matches!(self, ArtifactKind::Commit | ArtifactKind::Integration)
    }

    /// The top-level folder of the store this kind lives under (docs/evidence-format.md
    /// says why these names).
    pub fn dir(self) -> &'static str {
        match self {
            ArtifactKind::Commit => "commit",
            ArtifactKind::Integration => "integration",
            ArtifactKind::Build => "build",
            ArtifactKind::Manifest => "release-candidate",
            ArtifactKind::Deployment => "infra",
            ArtifactKind::Smoke => "deploy",
            ArtifactKind::Decision => "release",
            ArtifactKind::Timing => "pipeline",
        }
    }

    /// The file stem inside `<dir>/<sha>/`.
    pub fn stem(self) -> &'static str {
        match self {
            ArtifactKind::Commit => "commit",
            ArtifactKind::Integration => "integration",
            ArtifactKind::Build => "build",
            ArtifactKind::Manifest => "manifest",
            ArtifactKind::Deployment => "deployment",
            ArtifactKind::Smoke => "api-smoke",
            ArtifactKind::Decision => "decision",
            ArtifactKind::Timing => "timing",
        }
    }

    /// Whether this kind's evidence is kept per environment (deploy and smoke).
    pub fn per_environment(self) -> bool {
        matches!(self, ArtifactKind::Deployment | ArtifactKind::Smoke)
    }

    /// The in-toto predicate type URI, versioned.
    pub fn predicate_type(self) -> &'static str {
        match self {
            ArtifactKind::Commit => "https://ledger.dev/predicate/commit/v1",
            ArtifactKind::Integration => "https://ledger.dev/predicate/integration/v1",
            ArtifactKind::Build => "https://ledger.dev/predicate/build/v1",
            ArtifactKind::Manifest => "https://ledger.dev/predicate/manifest/v1",
            ArtifactKind::Deployment => "https://ledger.dev/predicate/deployment/v1",
            ArtifactKind::Smoke => "https://ledger.dev/predicate/smoke/v1",
            ArtifactKind::Decision => "https://ledger.dev/predicate/decision/v1",
            ArtifactKind::Timing => "https://ledger.dev/predicate/timing/v1",
        }
    }

    /// The kind whose predicate type URI is `uri`, if any.
    pub fn from_predicate_type(uri: &str) -> Option<ArtifactKind> {
        ArtifactKind::ALL
            .into_iter()
            .find(|k| k.predicate_type() == uri)
    }

    /// The prefix under which every attempt of this kind for `sha` is stored.
    pub fn prefix(self, sha: &GitSha) -> String {
        format!("{}/{}/", self.dir(), sha)
    }
}

impl fmt::Display for ArtifactKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where one attempt of one artifact lives: kind, SHA, attempt number and, for deploy
/// and smoke evidence of an environment other than the default, that environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ArtifactRef {
    pub kind: ArtifactKind,
    pub sha: GitSha,
    pub attempt: u32,
    /// `None` for the default environment and for kinds not kept per environment.
    pub env: Option<EnvName>,
}

/// The largest attempt number `ledger` will write or parse.
pub const MAX_ATTEMPT: u32 = 9999;

impl ArtifactRef {
    /// The reference for `attempt` (1-based) of `kind` for `sha`.
    pub fn new(kind: ArtifactKind, sha: GitSha, attempt: u32) -> Self {
        debug_assert!((1..=MAX_ATTEMPT).contains(&attempt));
        ArtifactRef {
            kind,
            sha,
            attempt,
            env: None,
        }
    }

    /// The same reference in environment `env`: kept apart for deploy and smoke
    /// evidence outside the default environment, unchanged otherwise.
    pub fn in_env(mut self, env: Option<EnvName>) -> Self {
        self.env = env
            .and_then(EnvName::qualifier)
            .filter(|_| self.kind.per_environment());
        self
    }

    pub(crate) fn file(&self, ext: &str) -> String {
        let stem = self.kind.stem();
        let env = self.env.map(|e| format!(".{e}")).unwrap_or_default();
        let attempt = if self.attempt == 1 {
            String::new()
        } else {
            format!(".attempt-{}", self.attempt)
        };
        format!("{}{stem}{env}{attempt}.{ext}", self.kind.prefix(&self.sha))
    }

    /// The envelope's object key, e.g. `commit/<sha>/commit.json`.
    pub fn key(&self) -> String {
        self.file("json")
    }

    /// The key of the captured command output stored beside the envelope.
    pub fn log_key(&self) -> String {
        self.file("log")
    }

    /// Parses an envelope key written by [`ArtifactRef::key`]; anything else is `None`.
    pub fn parse_key(key: &str) -> Option<ArtifactRef> {
        let mut parts = key.split('/');
        let (dir, sha, file) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let sha = GitSha::parse(sha).ok()?;
        let base = file.strip_suffix(".json")?;
        ArtifactKind::ALL
            .into_iter()
            .filter(|k| k.dir() == dir)
            .find_map(|kind| {
                let mut rest = base.strip_prefix(kind.stem())?;
                let mut env = None;
                if kind.per_environment() {
                    if let Some(tail) = rest
                        .strip_prefix('.')
                        .filter(|t| !t.starts_with("attempt-"))
                    {
                        let (name, after) = tail.find('.').map_or((tail, ""), |i| tail.split_at(i));
                        // The default environment never appears in a key.
                        env = Some(EnvName::parse(name).ok()?.qualifier()?);
                        rest = after;
                    }
                }
                let attempt = if rest.is_empty() {
                    1
                } else {
                    let n = rest.strip_prefix(".attempt-")?;
                    if n.starts_with('0') || n.len() > 4 || !n.bytes().all(|b| b.is_ascii_digit()) {
                        return None;
                    }
                    let n: u32 = n.parse().ok()?;
                    if n < 2 {
                        return None;
                    }
                    n
                };
                Some(ArtifactRef {
                    kind,
                    sha,
                    attempt,
                    env,
                })
            })
    }
}

impl fmt::Display for ArtifactRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha() -> GitSha {
        GitSha::parse("0123456789abcdef0123456789abcdef01234567").unwrap()
    }

    #[test]
    fn seed_keys_for_attempt_one() {
        let s = sha();
        let keys: Vec<String> = ArtifactKind::ALL
            .into_iter()
            .map(|k| ArtifactRef::new(k, s, 1).key())
            .collect();
        let sha = s.as_str();
        assert_eq!(
            keys,
            vec![
                format!("commit/{sha}/commit.json"),
                format!("integration/{sha}/integration.json"),
                format!("build/{sha}/build.json"),
                format!("release-candidate/{sha}/manifest.json"),
                format!("infra/{sha}/deployment.json"),
                format!("deploy/{sha}/api-smoke.json"),
                format!("release/{sha}/decision.json"),
                format!("pipeline/{sha}/timing.json"),
            ]
        );
    }

    #[test]
    fn later_attempts_sit_beside_the_first() {
        let r = ArtifactRef::new(ArtifactKind::Commit, sha(), 3);
        assert_eq!(r.key(), format!("commit/{}/commit.attempt-3.json", sha()));
        assert_eq!(
            r.log_key(),
            format!("commit/{}/commit.attempt-3.log", sha())
        );
    }

    #[test]
    fn keys_round_trip() {
        let canary = EnvName::parse("canary").ok();
        let production = EnvName::parse("production").ok();
        for kind in ArtifactKind::ALL {
            for attempt in [1, 2, 17, MAX_ATTEMPT] {
                for env in [None, canary, production] {
                    let r = ArtifactRef::new(kind, sha(), attempt).in_env(env);
                    assert_eq!(ArtifactRef::parse_key(&r.key()), Some(r), "{r:?}");
                }
            }
        }
    }

    #[test]
    fn per_environment_keys() {
        let canary = EnvName::parse("canary").ok();
        let production = EnvName::parse("production").ok();
        let deploy = |a, env| {
            ArtifactRef::new(ArtifactKind::Deployment, sha(), a)
                .in_env(env)
                .key()
        };
        let s = sha();
        assert_eq!(deploy(1, None), format!("infra/{s}/deployment.json"));
        assert_eq!(deploy(1, production), format!("infra/{s}/deployment.json"));
        assert_eq!(
            deploy(1, canary),
            format!("infra/{s}/deployment.canary.json")
        );
        assert_eq!(
            deploy(3, canary),
            format!("infra/{s}/deployment.canary.attempt-3.json")
        );
        // Kinds not kept per environment ignore it.
        let commit = ArtifactRef::new(ArtifactKind::Commit, s, 1).in_env(canary);
        assert_eq!(commit.env, None);
        for bad in [
            format!("infra/{s}/deployment.production.json"),
            format!("infra/{s}/deployment.Canary.json"),
            format!("infra/{s}/deployment.canary.attempt-1.json"),
            format!("infra/{s}/deployment..json"),
            format!("commit/{s}/commit.canary.json"),
        ] {
            assert_eq!(ArtifactRef::parse_key(&bad), None, "{bad}");
        }
    }

    #[test]
    fn foreign_keys_do_not_parse() {
        let s = sha();
        for bad in [
            format!("commit/{s}/commit.attempt-1.json"),
            format!("commit/{s}/commit.attempt-02.json"),
            format!("commit/{s}/commit.attempt-x.json"),
            format!("commit/{s}/commit.log"),
            format!("commit/{s}/integration.json"),
            format!("commit/{s}/../commit.json"),
            format!("commit/{s}/sub/commit.json"),
            "commit/abc/commit.json".to_string(),
            format!("unknown/{s}/commit.json"),
        ] {
            assert_eq!(ArtifactRef::parse_key(&bad), None, "{bad}");
        }
    }

    #[test]
    fn stages_parse_and_print() {
        for st in Stage::ALL {
            assert_eq!(st.as_str().parse::<Stage>().unwrap(), st);
            assert_eq!(st.primary_artifact().stage(), st);
        }
        let e = "deploy2".parse::<Stage>().unwrap_err().to_string();
        assert!(e.contains("unknown stage \"deploy2\""), "{e}");
    }

    #[test]
    fn predicate_types_are_distinct_and_reversible() {
        for k in ArtifactKind::ALL {
            assert_eq!(
                ArtifactKind::from_predicate_type(k.predicate_type()),
                Some(k)
            );
        }
        assert_eq!(
            ArtifactKind::from_predicate_type("https://ledger.dev/predicate/commit/v0"),
            None
        );
    }
}
