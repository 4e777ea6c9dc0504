//! Attestations attached to an image in the anonymous test registry (Debian's
//! docker-registry 2.8 on `LEDGER_TEST_REGISTRY`, which has no referrers API) and
//! read back: byte for byte with their predicate types, idempotently (attaching
//! again writes nothing, a later envelope is appended), in cosign's layout with the
//! OCI 1.1 subject as a plain HTTP client sees it; references resolved by tag and by
//! digest; a missing image and a registry serving other bytes refused by name.
//! Each test pushes a `FROM scratch` image of its own; without an engine or registry
//! they skip, unless `LEDGER_REQUIRE_DOCKER=1`.

mod common;

use common::proxy::Proxy;
use common::{
    curl, digest, engine, envelope, pushed_image, runtime, service, unique, PROVENANCE, VSA,
};
use ledger_docker::{Attached, AttachedEnvelope, Attestation, DigestRef, DockerError, Registry};
use serde_json::Value;

/// The engine, the anonymous registry, and a pushed image in a repository of its
/// own (`attach-it/<test>`).
fn image_for(test: &str) -> Option<(DigestRef, tokio::runtime::Runtime)> {
    let engine = engine()?;
    let registry = service("LEDGER_TEST_REGISTRY")?;
    let rt = runtime();
    let repo = format!("attach-it/{test}-{}", unique());
    let image = rt.block_on(pushed_image(&engine, &registry, &repo));
    Some((image, rt))
}

fn at(image: &DigestRef, host: &str) -> DigestRef {
    DigestRef {
        host: host.to_owned(),
        ..image.clone()
    }
}

fn found(bytes: &[u8], predicate_type: &str, tag: &str) -> AttachedEnvelope {
    AttachedEnvelope {
        bytes: bytes.to_vec(),
        predicate_type: Some(predicate_type.to_owned()),
        found_in: format!("tag {tag}"),
    }
}

fn att<'a>(envelope: &'a [u8], predicate_type: &'a str) -> Attestation<'a> {
    Attestation {
        envelope,
        predicate_type,
    }
}

/// The three envelopes of the round trip, and the image's `.att` tag.
struct Three {
    one: Vec<u8>,
    two: Vec<u8>,
    three: Vec<u8>,
    tag: String,
}

#[test]
fn envelopes_are_read_back_byte_for_byte_and_attaching_is_idempotent() {
    let Some((image, rt)) = image_for("round-trip") else {
        return;
    };
    rt.block_on(async {
        // Through a proxy that notes every request, to see what is written.
        let proxy = Proxy::start(&image.host).await;
        let image = at(&image, &proxy.host);
        let e = Three {
            one: envelope("one", PROVENANCE),
            two: envelope("two", VSA),
            three: envelope("three", PROVENANCE),
            tag: format!("sha256-{}.att", &image.digest["sha256:".len()..]),
        };
        let first = attach_two(&image, &proxy, &e).await;
        attach_them_again(&image, &proxy, &e, &first).await;
        append_a_third(&image, &proxy, &e, &first).await;
    });
}

/// Two envelopes attached: both uploaded with the config, read back as they were.
async fn attach_two(image: &DigestRef, proxy: &Proxy, e: &Three) -> Attached {
    let registry = Registry::new();
    let both = [att(&e.one, PROVENANCE), att(&e.two, VSA)];
    let first = registry.attach(image, &both).await.unwrap();
    assert_eq!((first.tag.as_str(), first.added), (e.tag.as_str(), 2));
    assert!(!first.referrer_indexed, "registry 2.8 has no referrers API");
    let seen = proxy.take();
    let uploads = seen
        .iter()
        .filter(|r| r.starts_with("PUT ") && r.contains("/blobs/uploads/"));
    assert_eq!(uploads.count(), 3, "two envelopes and the config: {seen:?}");
    let read = registry.attestations(image).await.unwrap();
    assert_eq!(
        read,
        vec![
            found(&e.one, PROVENANCE, &e.tag),
            found(&e.two, VSA, &e.tag)
        ]
    );
    first
}

/// The same envelopes again (in another order, one twice): nothing added, nothing
/// written.
async fn attach_them_again(image: &DigestRef, proxy: &Proxy, e: &Three, first: &Attached) {
    proxy.take();
    let (one, two) = (att(&e.one, PROVENANCE), att(&e.two, VSA));
    let again = Registry::new()
        .attach(image, &[two, one, two])
        .await
        .unwrap();
    assert_eq!(
        (again.added, &again.manifest_digest, &again.tag),
        (0, &first.manifest_digest, &first.tag)
    );
    let writes: Vec<_> = proxy
        .take()
        .into_iter()
        .filter(|r| !r.starts_with("GET ") && !r.starts_with("HEAD "))
        .collect();
    assert!(writes.is_empty(), "attaching again wrote {writes:?}");
}

/// A third envelope later is appended (only it and the new config uploaded); the
/// first two stay, in order.
async fn append_a_third(image: &DigestRef, proxy: &Proxy, e: &Three, first: &Attached) {
    let later = [att(&e.three, PROVENANCE), att(&e.one, PROVENANCE)];
    let third = Registry::new().attach(image, &later).await.unwrap();
    assert_eq!(third.added, 1);
    assert_ne!(third.manifest_digest, first.manifest_digest);
    let uploads: Vec<_> = proxy
        .take()
        .into_iter()
        .filter(|r| r.starts_with("POST "))
        .collect();
    assert_eq!(uploads.len(), 2, "the new envelope and config: {uploads:?}");
    let read = Registry::new().attestations(image).await.unwrap();
    assert_eq!(
        read,
        vec![
            found(&e.one, PROVENANCE, &e.tag),
            found(&e.two, VSA, &e.tag),
            found(&e.three, PROVENANCE, &e.tag)
        ]
    );
}

#[test]
fn a_plain_http_client_sees_cosigns_layout_and_the_subject() {
    let Some((image, rt)) = image_for("layout") else {
        return;
    };
    let one = envelope("one", PROVENANCE);
    let attached = rt
        .block_on(Registry::new().attach(&image, &[att(&one, PROVENANCE)]))
        .unwrap();
    let base = format!("http://{}/v2/{}", image.host, image.name);
    let oci = "application/vnd.oci.image.manifest.v1+json";
    let bytes = curl(&format!("{base}/manifests/{}", attached.tag), oci, &[]).unwrap();
    assert_eq!(digest(&bytes), attached.manifest_digest);
    let m: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(m["schemaVersion"], 2);
    assert_eq!(m["mediaType"], oci);
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    assert_eq!(
        layers[0]["mediaType"],
        "application/vnd.dsse.envelope.v1+json"
    );
    assert_eq!(layers[0]["digest"], digest(&one));
    assert_eq!(layers[0]["size"], one.len());
    assert_eq!(
        layers[0]["annotations"],
        serde_json::json!({"dev.cosignproject.cosign/signature": "", "predicateType": PROVENANCE})
    );
    // The subject is the image manifest's own descriptor, as the registry serves it.
    let docker = "application/vnd.docker.distribution.manifest.v2+json";
    let image_manifest = curl(&format!("{base}/manifests/{}", image.digest), docker, &[]).unwrap();
    assert_eq!(
        m["subject"],
        serde_json::json!({"mediaType": docker, "digest": image.digest, "size": image_manifest.len()})
    );
    // The config is cosign's: zero time, empty platform, the layer as its diff id.
    let config = curl(
        &format!("{base}/blobs/{}", m["config"]["digest"].as_str().unwrap()),
        "*/*",
        &["-L"],
    )
    .unwrap();
    assert_eq!(
        String::from_utf8(config).unwrap(),
        format!(
            r#"{{"architecture":"","config":{{}},"created":"0001-01-01T00:00:00Z","history":[{{"created":"0001-01-01T00:00:00Z"}}],"os":"","rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
            digest(&one)
        )
    );
    // The envelope blob is the envelope.
    let blob = curl(&format!("{base}/blobs/{}", digest(&one)), "*/*", &["-L"]).unwrap();
    assert_eq!(blob, one);
    // Registry 2.8 has no referrers API: a 404, which the reader takes as "none".
    assert_eq!(
        curl(
            &format!("{base}/referrers/{}", image.digest),
            "application/vnd.oci.image.index.v1+json",
            &[]
        ),
        None
    );
}

#[test]
fn references_resolve_by_tag_and_by_digest() {
    let Some((image, rt)) = image_for("resolve") else {
        return;
    };
    rt.block_on(async {
        let registry = Registry::new();
        let repo = format!("{}/{}", image.host, image.name);
        assert_eq!(
            registry.resolve(&format!("{repo}:t1")).await.unwrap(),
            image
        );
        assert_eq!(
            registry
                .resolve(&format!("{repo}@{}", image.digest))
                .await
                .unwrap(),
            image
        );
        let e = registry
            .resolve(&format!("{repo}:absent"))
            .await
            .unwrap_err();
        assert!(matches!(e, DockerError::Missing { .. }), "{e}");
        assert!(e.to_string().contains(&format!("{repo}:absent")), "{e}");
        let absent = format!("{repo}@sha256:{}", "0".repeat(64));
        let e = registry.resolve(&absent).await.unwrap_err();
        assert!(
            matches!(e, DockerError::Missing { .. }) && e.to_string().contains(&absent),
            "{e}"
        );
        for bad in [repo.clone(), format!("{repo}@sha256:00"), "api:1".into()] {
            let e = registry.resolve(&bad).await.unwrap_err();
            assert!(matches!(e, DockerError::Reference { .. }), "{bad}: {e}");
            assert!(e.hint().unwrap().contains("host[:port]/name:tag"), "{e}");
        }
    });
}

#[test]
fn attaching_to_a_missing_image_is_a_clear_error() {
    let Some((image, rt)) = image_for("missing") else {
        return;
    };
    rt.block_on(async {
        let registry = Registry::new();
        // A fresh image has nothing attached.
        assert_eq!(registry.attestations(&image).await.unwrap(), vec![]);
        let absent = DigestRef {
            digest: format!("sha256:{}", "e".repeat(64)),
            ..image.clone()
        };
        let one = envelope("one", PROVENANCE);
        let e = registry
            .attach(&absent, &[att(&one, PROVENANCE)])
            .await
            .unwrap_err();
        let shown = e.to_string();
        assert!(matches!(e, DockerError::Missing { .. }), "{shown}");
        assert!(
            shown.contains(&image.host) && shown.contains(&absent.digest),
            "{shown}"
        );
        assert!(e.hint().is_some(), "{shown}");
        // Nothing was attached to it.
        assert_eq!(registry.attestations(&absent).await.unwrap(), vec![]);
        // An envelope over the size limit is refused before any request.
        let huge = vec![b' '; (4 << 20) + 1];
        let e = registry
            .attach(&image, &[att(&huge, PROVENANCE)])
            .await
            .unwrap_err();
        assert!(e.to_string().contains("at most 4194304 bytes"), "{e}");
    });
}

#[test]
fn a_registry_serving_other_bytes_is_an_error_naming_the_blob() {
    let Some((image, rt)) = image_for("tampered") else {
        return;
    };
    rt.block_on(async {
        let one = envelope(&format!("tampered-{}", unique()), PROVENANCE);
        let attestation = att(&one, PROVENANCE);
        Registry::new()
            .attach(&image, &[attestation])
            .await
            .unwrap();
        let proxy = Proxy::start(&image.host).await;
        let through = at(&image, &proxy.host);
        assert_eq!(
            Registry::new().attestations(&through).await.unwrap().len(),
            1
        );
        proxy.tamper();
        let e = Registry::new().attestations(&through).await.unwrap_err();
        let shown = e.to_string();
        assert!(matches!(e, DockerError::Integrity { .. }), "{shown}");
        assert!(shown.contains(&digest(&one)), "{shown}");
        assert!(shown.contains("other bytes"), "{shown}");
    });
}
