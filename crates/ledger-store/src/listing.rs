//! Listing the store: every key under a prefix, only those after a key (S3's
//! `start-after`, which makes reading a log's tail cost what the tail holds), or the
//! last keys of a numbered folder found in a few probes ([`Store::list_tail`]). A
//! local folder is listed directly (`local.rs`), a bucket through `object_store`.

use crate::error::log_failure;
use crate::{local, Kind, Listed, ObjectKey, Store, StoreError};
use futures::TryStreamExt as _;
use object_store::path::Path;

/// How many keys one probe of [`Store::list_tail`] reads at most: a page of S3's and
/// GCS's listings (Azure's holds more), so a probe is one request.
const TAIL_PAGE: usize = 1000;

impl Store {
    /// Every key under `prefix` (which must end with `/`), sorted.
    #[tracing::instrument(level = "debug", name = "store.list", skip_all, fields(prefix))]
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let listed = self.list_meta_logged(prefix, None, false).await?;
        Ok(listed.into_iter().map(|l| l.key).collect())
    }

    /// The keys under `prefix` (which must end with `/`) that sort after `after`,
    /// sorted: a bucket is asked for those alone (S3's `start-after`), so reading the
    /// tail of a folder whose keys sort in the order they were written costs what the
    /// tail holds, not what the folder holds.
    #[tracing::instrument(level = "debug", name = "store.list", skip_all, fields(prefix, after))]
    pub async fn list_after(&self, prefix: &str, after: &str) -> Result<Vec<String>, StoreError> {
        let listed = self.list_meta_logged(prefix, Some(after), false).await?;
        Ok(listed.into_iter().map(|l| l.key).collect())
    }

    /// The keys under `prefix` (which must end with `/`) near its end, sorted: all of
    /// them when it holds at most a page (1,000 keys), else a run of its last keys. For
    /// folders whose keys are numbered in the order they are written (the log's
    /// entries, an environment's leases): `number` reads a key's number (`None` for
    /// any other key), and every key numbered above `n` sorts after `key_of(n)`.
    ///
    /// A whole listing of a bucket is a request per thousand keys, so a folder that
    /// grows with the store's history would cost a stage more round trips every
    /// week. Past its first page, a bucket is instead listed only after probe keys,
    /// galloping then bisecting over the numbers, each probe one request that reads
    /// at most a page: about twice the logarithm of (keys / 1000) round trips. A
    /// local folder is read whole (one directory read).
    #[tracing::instrument(level = "debug", name = "store.list_tail", skip_all, fields(prefix))]
    pub async fn list_tail(
        &self,
        prefix: &str,
        number: impl Fn(&str) -> Option<u64>,
        key_of: impl Fn(u64) -> String,
    ) -> Result<Vec<String>, StoreError> {
        if self.local_root.is_some() {
            return self.list(prefix).await;
        }
        let checked = ObjectKey::parse_prefix(prefix)?;
        tracing::Span::current().record("prefix", checked);
        let path = Path::from(checked.trim_end_matches('/'));
        let (first, ended) = log_failure(self.page_after(&path, None).await)?;
        if ended {
            return Ok(first);
        }
        // A key numbered `low` or above exists; none numbered above `high`.
        let Some(mut low) = first.iter().filter_map(|k| number(k)).max() else {
            return self.list(prefix).await;
        };
        let mut high: Option<u64> = None;
        loop {
            let at = match high {
                None => low.saturating_mul(2).max(low.saturating_add(1)),
                // Everything from the key numbered `low` on, which the last is.
                Some(high) if high - low <= 1 => {
                    return self
                        .list_after(prefix, &key_of(low.saturating_sub(1)))
                        .await
                }
                Some(high) => low + (high - low) / 2,
            };
            let (keys, ended) = log_failure(self.page_after(&path, Some(&key_of(at))).await)?;
            match (keys.iter().filter_map(|k| number(k)).max(), ended) {
                // Nothing numbered after `at` (a stray key at most).
                (None, true) => high = Some(at),
                (Some(_), true) => {
                    tracing::debug!(objects = keys.len(), "listed the tail");
                    return Ok(keys);
                }
                (Some(highest), false) => low = highest.max(at),
                // A page of keys no number reads: not a numbered folder after all.
                (None, false) => return self.list_after(prefix, &key_of(at)).await,
            }
        }
    }

    /// Up to [`TAIL_PAGE`] keys under `prefix` (after `after`), sorted, and whether
    /// they are all there are: one request, the listing's next page never asked for.
    async fn page_after(
        &self,
        prefix: &Path,
        after: Option<&str>,
    ) -> Result<(Vec<String>, bool), StoreError> {
        let _trip = self.requests.add(Kind::List);
        let mut listing = match after {
            Some(after) => self
                .inner
                .list_with_offset(Some(prefix), &Path::from(after)),
            None => self.inner.list(Some(prefix)),
        };
        let mut keys = Vec::new();
        let mut ended = false;
        while keys.len() < TAIL_PAGE {
            match listing.try_next().await.map_err(|e| self.unreachable(e))? {
                Some(meta) => keys.push(meta.location.to_string()),
                None => {
                    ended = true;
                    break;
                }
            }
        }
        keys.sort();
        Ok((keys, ended))
    }

    /// Every object under `prefix` (which must end with `/`) with its size and time,
    /// sorted by key: one listing, however many objects.
    #[tracing::instrument(level = "debug", name = "store.list_meta", skip_all, fields(prefix))]
    pub async fn list_meta(&self, prefix: &str) -> Result<Vec<Listed>, StoreError> {
        self.list_meta_logged(prefix, None, true).await
    }

    /// `list_meta` inside the caller's span, which gets the prefix (only once it is
    /// validated) and the outcome. Without `stat` a local folder's files are not
    /// `lstat`ed: sizes and times are left out (0, the epoch) for callers that keep
    /// the keys alone.
    async fn list_meta_logged(
        &self,
        prefix: &str,
        after: Option<&str>,
        stat: bool,
    ) -> Result<Vec<Listed>, StoreError> {
        let result = match ObjectKey::parse_prefix(prefix) {
            Err(e) => Err(StoreError::from(e)),
            Ok(prefix) => {
                tracing::Span::current().record("prefix", prefix);
                let path = Path::from(prefix.trim_end_matches('/'));
                self.list_meta_under(Some(&path), after, stat).await
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
        stat: bool,
    ) -> Result<Vec<Listed>, StoreError> {
        let _trip = self.requests.add(Kind::List);
        if let Some(root) = &self.local_root {
            let prefix = prefix.map_or("", |p| p.as_ref());
            return local::list(root, &self.location, prefix, after, stat);
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
        let listed = self.list_meta_under(prefix, None, false).await?;
        Ok(listed.into_iter().map(|l| l.key).collect())
    }
}

#[cfg(test)]
mod tests;
