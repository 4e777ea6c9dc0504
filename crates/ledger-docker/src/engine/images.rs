//! Images: build from a context, push and read the digest back, pull by digest,
//! inspect, list by label, remove.

use super::{is_connection_error, logged, Engine};
use crate::DockerError;
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateImageOptionsBuilder, ListImagesOptionsBuilder,
    PushImageOptionsBuilder,
};
use futures::StreamExt;
use std::collections::{BTreeMap, HashMap};

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildSpec {
    /// The build context as a tar archive (see [`crate::tar_context`] and
    /// [`crate::normalize_tar`]): the engine sees these bytes and nothing else.
    pub context: bytes::Bytes,
    /// Where the context came from, for logs (e.g. `<sha>:services/api`).
    pub context_name: String,
    pub dockerfile: String,
    /// Local tag, e.g. `127.0.0.1:5000/demo/api:<sha>`.
    pub tag: String,
    pub labels: BTreeMap<String, String>,
}

/// A built image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    /// The engine's content-addressed image id, `sha256:…`.
    pub image_id: String,
}

/// How many times a build is tried when the engine lost a cached step under it.
const BUILD_TRIES: u32 = 3;

/// Whether a build failed because the engine's classic builder, looking for a cached
/// step, listed an image that another client removed before it was read (moby's
/// `getLocalCachedImage`: "unable to find image \"sha256:…\""). For a `FROM scratch`
/// image every other parentless image on the engine is listed, so a `ledger prune
/// --apply` or any `docker rmi` beside a build can cause it; the same build run
/// again succeeds. A missing base image is reported otherwise (by name, or as a
/// failed pull).
fn lost_a_cached_step(e: &DockerError) -> bool {
    matches!(e, DockerError::Build { message, .. } if message.contains("unable to find image \"sha256:"))
}

/// [`DockerError::Unauthorized`] when the engine's message says the registry wanted
/// credentials or refused them, else `otherwise(message)`.
fn refusal(
    host: &str,
    what: &str,
    message: String,
    otherwise: impl FnOnce(String) -> DockerError,
) -> DockerError {
    const SIGNS: &[&str] = &[
        "no basic auth credentials",
        "unauthorized",
        "authentication required",
        "denied",
        "401 unauthorized",
        "403 forbidden",
    ];
    let lower = message.to_lowercase();
    if SIGNS.iter().any(|s| lower.contains(s)) {
        DockerError::Unauthorized {
            host: host.to_owned(),
            what: what.to_owned(),
            message,
        }
    } else {
        otherwise(message)
    }
}

/// Facts about an image on the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    pub id: String,
    pub repo_digests: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub size: i64,
}

impl Engine {
    /// Builds `spec`, calling `progress` with each line of build output.
    #[tracing::instrument(
        level = "debug",
        name = "engine.build",
        skip_all,
        fields(tag = %spec.tag, context = %spec.context_name, dockerfile = %spec.dockerfile)
    )]
    pub async fn build(
        &self,
        spec: &BuildSpec,
        mut progress: impl FnMut(&str),
    ) -> Result<BuiltImage, DockerError> {
        let mut tries = 1;
        let built = loop {
            match self.build_unlogged(spec, &mut progress).await {
                Err(e) if tries < BUILD_TRIES && lost_a_cached_step(&e) => {
                    tries += 1;
                    tracing::info!(
                        image = spec.tag,
                        "an image the build's cache lookup listed was removed meanwhile; building again"
                    );
                }
                built => break built,
            }
        };
        logged(built, |b| tracing::debug!(image_id = %b.image_id, "built"))
    }

    async fn build_unlogged(
        &self,
        spec: &BuildSpec,
        mut progress: impl FnMut(&str),
    ) -> Result<BuiltImage, DockerError> {
        let labels: HashMap<String, String> = spec.labels.clone().into_iter().collect();
        let options = BuildImageOptionsBuilder::default()
            .dockerfile(&spec.dockerfile)
            .t(&spec.tag)
            .labels(&labels)
            .rm(true)
            .forcerm(true)
            .build();
        let mut stream = self.docker.build_image(
            options,
            None,
            Some(bollard::body_full(spec.context.clone())),
        );
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                        return Err(DockerError::Build {
                            image: spec.tag.clone(),
                            message: detail,
                        });
                    }
                    if let Some(line) = info
                        .stream
                        .as_deref()
                        .map(str::trim_end)
                        .filter(|l| !l.is_empty())
                    {
                        progress(line);
                    }
                }
                Err(e) if is_connection_error(&e) => return Err(self.failed("build")(e)),
                Err(e) => {
                    return Err(DockerError::Build {
                        image: spec.tag.clone(),
                        message: e.to_string(),
                    })
                }
            }
        }
        let info = self
            .inspect_image(&spec.tag)
            .await?
            .ok_or_else(|| DockerError::Build {
                image: spec.tag.clone(),
                message: "the engine reported success but has no such image".into(),
            })?;
        Ok(BuiltImage { image_id: info.id })
    }

    /// Pushes `repo:tag` and returns the `repo@sha256:…` digest the registry assigned
    /// (read from `RepoDigests`, since the push reply carries none).
    #[tracing::instrument(level = "debug", name = "engine.push", skip_all, fields(repo = repo, tag = tag))]
    pub async fn push(
        &self,
        repo: &str,
        tag: &str,
        progress: impl FnMut(&str),
    ) -> Result<String, DockerError> {
        logged(
            self.push_unlogged(repo, tag, progress).await,
            |d| tracing::debug!(digest = %d, "pushed"),
        )
    }

    async fn push_unlogged(
        &self,
        repo: &str,
        tag: &str,
        mut progress: impl FnMut(&str),
    ) -> Result<String, DockerError> {
        let reference = format!("{repo}:{tag}");
        let push_err = |message: String| DockerError::Push {
            reference: reference.clone(),
            message,
        };
        let host = crate::credentials::host_of(repo);
        let refused =
            |message: String| refusal(host, &format!("push {reference}"), message, push_err);
        let credentials = crate::credentials::lookup(host)?.map(|c| c.engine(host));
        let options = PushImageOptionsBuilder::default().tag(tag).build();
        let mut stream = self.docker.push_image(repo, Some(options), credentials);
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(msg) = info.error_detail.and_then(|d| d.message) {
                        return Err(refused(msg));
                    }
                    if let Some(status) = info.status {
                        progress(&status);
                    }
                }
                Err(e) => return Err(refused(e.to_string())),
            }
        }
        let info = self
            .inspect_image(&reference)
            .await?
            .ok_or_else(|| push_err("the image vanished after the push".into()))?;
        let prefix = format!("{repo}@");
        info.repo_digests
            .into_iter()
            .find(|d| d.starts_with(&prefix))
            .ok_or_else(|| {
                push_err("the engine recorded no digest for the pushed repository".into())
            })
    }

    /// Facts about an image, or `None` if the engine does not have it.
    #[tracing::instrument(level = "debug", name = "engine.inspect_image", skip_all, fields(reference = reference))]
    pub async fn inspect_image(&self, reference: &str) -> Result<Option<ImageInfo>, DockerError> {
        logged(self.inspect_image_unlogged(reference).await, |i| match i {
            Some(i) => tracing::debug!(id = %i.id, "found"),
            None => tracing::debug!("absent"),
        })
    }

    async fn inspect_image_unlogged(
        &self,
        reference: &str,
    ) -> Result<Option<ImageInfo>, DockerError> {
        match self.docker.inspect_image(reference).await {
            Ok(i) => Ok(Some(ImageInfo {
                id: i.id.unwrap_or_default(),
                repo_digests: i.repo_digests.unwrap_or_default(),
                labels: i
                    .config
                    .and_then(|c| c.labels)
                    .unwrap_or_default()
                    .into_iter()
                    .collect(),
                size: i.size.unwrap_or(0),
            })),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(self.failed(format!("inspect image {reference}"))(e)),
        }
    }

    /// Pulls `repo@sha256:…` from its registry.
    #[tracing::instrument(level = "debug", name = "engine.pull", skip_all, fields(reference = reference))]
    pub async fn pull(&self, reference: &str) -> Result<(), DockerError> {
        logged(self.pull_unlogged(reference).await, |_| {
            tracing::debug!("pulled")
        })
    }

    async fn pull_unlogged(&self, reference: &str) -> Result<(), DockerError> {
        let host = crate::credentials::host_of(reference);
        let credentials = crate::credentials::lookup(host)?.map(|c| c.engine(host));
        let options = CreateImageOptionsBuilder::default()
            .from_image(reference)
            .build();
        let mut stream = self.docker.create_image(Some(options), None, credentials);
        while let Some(item) = stream.next().await {
            let missing = |message: String| {
                refusal(host, &format!("pull {reference}"), message, |message| {
                    DockerError::Missing {
                        reference: reference.to_owned(),
                        message,
                    }
                })
            };
            match item {
                Ok(info) => {
                    if let Some(msg) = info.error_detail.and_then(|d| d.message) {
                        return Err(missing(msg));
                    }
                }
                Err(e) if is_connection_error(&e) => return Err(self.failed("pull")(e)),
                Err(e) => return Err(missing(e.to_string())),
            }
        }
        Ok(())
    }

    /// Removes an image (forcefully, with its tags).
    #[tracing::instrument(level = "debug", name = "engine.remove_image", skip_all, fields(reference = reference))]
    pub async fn remove_image(&self, reference: &str) -> Result<(), DockerError> {
        let options = bollard::query_parameters::RemoveImageOptionsBuilder::default()
            .force(true)
            .build();
        let result = match self
            .docker
            .remove_image(reference, Some(options), None)
            .await
        {
            Ok(_) => Ok("removed"),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok("absent already"),
            Err(e) => Err(self.failed(format!("remove image {reference}"))(e)),
        };
        logged(result, |outcome| tracing::debug!("{outcome}")).map(|_| ())
    }

    /// Images carrying every label in `labels` (e.g. a revision), as the engine lists
    /// them: id, repository digests, labels and size.
    #[tracing::instrument(level = "debug", name = "engine.images", skip_all, fields(labels = ?labels))]
    pub async fn images(&self, labels: &[(&str, &str)]) -> Result<Vec<ImageInfo>, DockerError> {
        logged(self.images_unlogged(labels).await, |list| {
            tracing::debug!(images = list.len(), "listed")
        })
    }

    async fn images_unlogged(
        &self,
        labels: &[(&str, &str)],
    ) -> Result<Vec<ImageInfo>, DockerError> {
        let filters: HashMap<&str, Vec<String>> = HashMap::from([(
            "label",
            labels.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        )]);
        let options = ListImagesOptionsBuilder::default()
            .all(false)
            .filters(&filters)
            .build();
        let list = self
            .docker
            .list_images(Some(options))
            .await
            .map_err(self.failed("list images"))?;
        Ok(list
            .into_iter()
            .map(|i| ImageInfo {
                id: i.id,
                repo_digests: i.repo_digests,
                labels: i.labels.into_iter().collect(),
                size: i.size,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build_error(message: &str) -> DockerError {
        DockerError::Build {
            image: "127.0.0.1:5000/app:t1".into(),
            message: message.into(),
        }
    }

    /// Only the engine's lost cached step is tried again: the message moby gives
    /// when an image its cache lookup listed is gone by the time it is read. A
    /// missing base image, a failed step or a refused engine fail the first time.
    #[test]
    fn a_build_is_tried_again_only_when_the_engine_lost_a_cached_step() {
        let lost = "Docker stream error: unable to find image \"sha256:c5691e5e99dbf20ff74d555036892c0ee349894d2979f873292a12156f5fd5e5\"";
        assert!(lost_a_cached_step(&build_error(lost)));
        for other in [
            "pull access denied for nosuch, repository does not exist",
            "No such image: nosuch:latest",
            "COPY failed: file not found in build context",
            "unable to find image \"nosuch:latest\" locally",
        ] {
            assert!(!lost_a_cached_step(&build_error(other)), "{other}");
        }
        let other_kind = DockerError::Push {
            reference: "127.0.0.1:5000/app:t1".into(),
            message: "unable to find image \"sha256:00\"".into(),
        };
        assert!(!lost_a_cached_step(&other_kind));
    }
}
