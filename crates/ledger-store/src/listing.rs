//! Listing the store: every key under a prefix, or only those after a key (S3's
//! `start-after`, which makes reading a log's tail cost what the tail holds). A local
//! folder is listed directly (`local.rs`), a bucket through `object_store`.

use crate::error::log_failure;
use crate::{local, Kind, Listed, ObjectKey, Store, StoreError};
use futures::TryStreamExt as _;
use object_store::path::Path;

impl Store {
    /// Every key under `prefix` (which must end with `/`), sorted.
    #[tracing::instrument(level = "debug", name = "store.list", skip_all, fields(prefix))]
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let listed = self.list_meta_logged(prefix, None).await?;
        Ok(listed.into_iter().map(|l| l.key).collect())
    }

    /// The keys under `prefix` (which must end with `/`) that sort after `after`,
    /// sorted: a bucket is asked for those alone (S3's `start-after`), so reading the
    /// tail of a folder whose keys sort in the order they were written costs what the
    /// tail holds, not what the folder holds.
    #[tracing::instrument(level = "debug", name = "store.list", skip_all, fields(prefix, after))]
    pub async fn list_after(&self, prefix: &str, after: &str) -> Result<Vec<String>, StoreError> {
        let listed = self.list_meta_logged(prefix, Some(after)).await?;
        Ok(listed.into_iter().map(|l| l.key).collect())
    }

    /// Every object under `prefix` (which must end with `/`) with its size and time,
    /// sorted by key: one listing, however many objects.
    #[tracing::instrument(level = "debug", name = "store.list_meta", skip_all, fields(prefix))]
    pub async fn list_meta(&self, prefix: &str) -> Result<Vec<Listed>, StoreError> {
        self.list_meta_logged(prefix, None).await
    }

    /// `list_meta` inside the caller's span, which gets the prefix (only once it is
    /// validated) and the outcome.
    async fn list_meta_logged(
        &self,
        prefix: &str,
        after: Option<&str>,
    ) -> Result<Vec<Listed>, StoreError> {
        let result = match ObjectKey::parse_prefix(prefix) {
            Err(e) => Err(StoreError::from(e)),
            Ok(prefix) => {
                tracing::Span::current().record("prefix", prefix);
                self.list_meta_under(Some(&Path::from(prefix.trim_end_matches('/'))), after)
                    .await
            }
        };
        if let Ok(listed) = &result {
            tracing::debug!(objects = listed.len(), "listed");
        }
        log_failure(result)
    }

    async fn list_meta_under(
        &self,
        prefix: Option<&Path>,
        after: Option<&str>,
    ) -> Result<Vec<Listed>, StoreError> {
        let _trip = self.requests.add(Kind::List);
        if let Some(root) = &self.local_root {
            let prefix = prefix.map_or(String::new(), |p| p.as_ref().to_owned());
            let after = after.map(str::to_owned);
            return self
                .on_local_folder(root, move |root, location| {
                    local::list(root, location, &prefix, after.as_deref())
                })
                .await;
        }
        let listing = match after {
            Some(after) => self.inner.list_with_offset(prefix, &Path::from(after)),
            None => self.inner.list(prefix),
        };
        let metas: Vec<_> = listing
            .try_collect()
            .await
            .map_err(|e| self.unreachable(e))?;
        let mut out: Vec<Listed> = metas
            .into_iter()
            .map(|m| Listed {
                key: m.location.to_string(),
                size: m.size,
                modified: m.last_modified.into(),
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// Every key under `prefix` (all keys for `None`), sorted.
    #[cfg(any(test, feature = "testing"))]
    pub(crate) async fn list_under(
        &self,
        prefix: Option<&Path>,
    ) -> Result<Vec<String>, StoreError> {
        let listed = self.list_meta_under(prefix, None).await?;
        Ok(listed.into_iter().map(|l| l.key).collect())
    }
}
