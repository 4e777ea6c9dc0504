//! A bucket that does not honour create-only writes (an S3-compatible server that
//! ignores `If-None-Match`, say) overwrites evidence on a racing write. `ledger doctor`
//! exists to find that out before a pipeline relies on it: its probe must fail on such
//! a store, and pass on the same store honouring them.

use super::*;
use futures::stream::BoxStream;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, PutMode,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};

/// An in-memory store whose every put overwrites, whatever mode it was asked for.
#[derive(Debug, Default)]
struct Overwriting(InMemory);

impl std::fmt::Display for Overwriting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Overwriting")
    }
}

#[async_trait::async_trait]
impl ObjectStore for Overwriting {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        mut opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        opts.mode = PutMode::Overwrite;
        self.0.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.0.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.0.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.0.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.0.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.0.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.0.copy_opts(from, to, options).await
    }
}

#[tokio::test]
async fn the_probe_fails_on_a_store_that_overwrites() {
    let lying = Store::from_object_store(Arc::new(Overwriting::default()), "memory:overwriting");
    match lying.probe("tests").await {
        Err(StoreError::CreateOnlyBroken { what, location }) => {
            assert_eq!(location, "memory:overwriting");
            assert!(what.contains("second create"), "{what}");
        }
        other => panic!("the probe passed a store that overwrites: {other:?}"),
    }
    // The same backend honouring the mode passes.
    let honest = Store::from_object_store(Arc::new(InMemory::new()), "memory:honest");
    assert!(honest.probe("tests").await.is_ok());
}
