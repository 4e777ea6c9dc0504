//! The evidence layout as the store sees it: which attempts of a stage exist for a
//! SHA (per environment for deploy and smoke), the latest one, the next free one,
//! and which SHAs have evidence at all. Attempts are discovered by listing, so a
//! retried stage's new attempt needs no index to be found.

use crate::error::log_failure;
use crate::{Store, StoreError};
use ledger_core::{ArtifactKind, ArtifactRef, EnvName, GitSha};
use object_store::path::Path;

impl Store {
    /// The attempt numbers stored for `kind` and `sha` (default environment),
    /// ascending.
    pub async fn attempts(&self, kind: ArtifactKind, sha: &GitSha) -> Result<Vec<u32>, StoreError> {
        self.attempts_in(kind, sha, None).await
    }

    /// The attempt numbers stored for `kind` and `sha` in `env` (`None`: the default
    /// environment; ignored for kinds not kept per environment), ascending.
    #[tracing::instrument(
        level = "debug",
        name = "store.attempts",
        skip_all,
        fields(kind = kind.as_str(), sha = %sha, env = env.as_ref().map(|e| e.as_str()))
    )]
    pub async fn attempts_in(
        &self,
        kind: ArtifactKind,
        sha: &GitSha,
        env: Option<EnvName>,
    ) -> Result<Vec<u32>, StoreError> {
        let out = attempts_among(&self.list(&kind.prefix(sha)).await?, kind, sha, env);
        tracing::debug!(attempts = ?out, "found");
        Ok(out)
    }

    /// [`Store::list`] of `prefix`, also kept for the next [`Store::next_attempt_in`]
    /// under it. A stage lists its own objects at its gate; taking the attempt
    /// number from that listing saves listing them again after the work (a round
    /// trip on a bucket). It may be stale by then: an attempt another writer took
    /// meanwhile fails its create-only write, and the writer moves on to the next,
    /// as when two race for it.
    pub async fn list_for_attempts(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let listed = self.list(prefix).await?;
        self.listed_for_attempts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(prefix.to_owned(), listed.clone());
        Ok(listed)
    }

    /// The latest stored attempt of `kind` for `sha` (default environment).
    pub async fn latest(
        &self,
        kind: ArtifactKind,
        sha: &GitSha,
    ) -> Result<Option<ArtifactRef>, StoreError> {
        self.latest_in(kind, sha, None).await
    }

    /// The latest stored attempt of `kind` for `sha` in `env`.
    #[tracing::instrument(
        level = "debug",
        name = "store.latest",
        skip_all,
        fields(kind = kind.as_str(), sha = %sha, env = env.as_ref().map(|e| e.as_str()))
    )]
    pub async fn latest_in(
        &self,
        kind: ArtifactKind,
        sha: &GitSha,
        env: Option<EnvName>,
    ) -> Result<Option<ArtifactRef>, StoreError> {
        let latest = self
            .attempts_in(kind, sha, env)
            .await?
            .last()
            .map(|a| ArtifactRef::new(kind, *sha, *a).in_env(env));
        match &latest {
            Some(r) => tracing::debug!(key = %r.key(), "latest attempt"),
            None => tracing::debug!("no attempt stored"),
        }
        Ok(latest)
    }

    /// The attempt number a new run of `kind` for `sha` would take (default
    /// environment).
    pub async fn next_attempt(&self, kind: ArtifactKind, sha: &GitSha) -> Result<u32, StoreError> {
        self.next_attempt_in(kind, sha, None).await
    }

    /// The attempt number a new run of `kind` for `sha` in `env` would take. In a
    /// local folder, an attempt that is a symbolic link or a special file is refused
    /// here: a stage does not step over a planted link and record beside it.
    pub async fn next_attempt_in(
        &self,
        kind: ArtifactKind,
        sha: &GitSha,
        env: Option<EnvName>,
    ) -> Result<u32, StoreError> {
        let kept = self
            .listed_for_attempts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&kind.prefix(sha));
        let attempts = match kept {
            Some(listed) => attempts_among(&listed, kind, sha, env),
            None => self.attempts_in(kind, sha, env).await?,
        };
        // A link planted at a listed attempt is refused now, whenever it was listed.
        for attempt in &attempts {
            let key = ArtifactRef::new(kind, *sha, *attempt).in_env(env).key();
            self.check_local_path(&key, crate::local::Last::File)?;
        }
        Ok(attempts.last().map_or(1, |a| a + 1))
    }

    /// Every SHA with evidence of any kind, sorted; lists folder names only.
    #[tracing::instrument(level = "debug", name = "store.shas", skip_all)]
    pub async fn shas(&self) -> Result<Vec<GitSha>, StoreError> {
        let result = self.shas_unlogged().await;
        if let Ok(shas) = &result {
            tracing::debug!(shas = shas.len(), "listed");
        }
        log_failure(result)
    }

    async fn shas_unlogged(&self) -> Result<Vec<GitSha>, StoreError> {
        let mut dirs: Vec<&str> = ArtifactKind::ALL.iter().map(|k| k.dir()).collect();
        dirs.dedup();
        let mut out = std::collections::BTreeSet::new();
        for dir in dirs {
            let trip = self.requests.add(crate::Kind::List);
            let listing = self
                .inner
                .list_with_delimiter(Some(&Path::from(dir)))
                .await
                .map_err(|e| self.unreachable(e))?;
            drop(trip);
            for p in listing.common_prefixes {
                if let Some(sha) = p.filename().and_then(|s| GitSha::parse(s).ok()) {
                    out.insert(sha);
                }
            }
        }
        Ok(out.into_iter().collect())
    }
}

/// The attempt numbers of `kind` for `sha` in `env` among the keys `listed`,
/// ascending.
fn attempts_among(
    listed: &[String],
    kind: ArtifactKind,
    sha: &GitSha,
    env: Option<EnvName>,
) -> Vec<u32> {
    let want = ArtifactRef::new(kind, *sha, 1).in_env(env).env;
    let mut out: Vec<u32> = listed
        .iter()
        .filter_map(|k| ArtifactRef::parse_key(k))
        .filter(|r| r.kind == kind && r.sha == *sha && r.env == want)
        .map(|r| r.attempt)
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}
