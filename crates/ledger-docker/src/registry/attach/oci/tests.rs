//! The attachment's documents, byte for byte: what cosign writes and reads, the
//! merge of new envelopes into an existing tag, and the checks of what is read.

use super::*;

const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn layer(envelope: &str, predicate_type: &str) -> Descriptor {
    envelope_layer(envelope.as_bytes(), predicate_type)
}

#[test]
fn digests_and_the_att_tag() {
    assert_eq!(digest_of(b""), EMPTY);
    let hex = &EMPTY["sha256:".len()..];
    assert_eq!(att_tag(EMPTY).unwrap(), format!("sha256-{hex}.att"));
    assert_eq!(sha256_hex(EMPTY), Some(hex));
    for bad in [
        "sha256:abc",
        "sha512:00",
        &EMPTY.to_uppercase(),
        &format!("{EMPTY}0"),
    ] {
        assert_eq!(att_tag(bad), None, "{bad}");
    }
}

#[test]
fn an_envelope_layer_is_annotated_as_cosign_reads_it() {
    let l = layer("{}", "https://slsa.dev/provenance/v1");
    assert_eq!(
        serde_json::to_string(&l).unwrap(),
        format!(
            r#"{{"mediaType":"application/vnd.dsse.envelope.v1+json","digest":"{}","size":2,"annotations":{{"dev.cosignproject.cosign/signature":"","predicateType":"https://slsa.dev/provenance/v1"}}}}"#,
            digest_of(b"{}")
        )
    );
}

#[test]
fn merging_keeps_existing_layers_and_adds_only_new_digests() {
    let (a, b, c) = (layer("a", "p"), layer("b", "q"), layer("c", "p"));
    let (layers, added) = merge(&[], &[a.clone(), b.clone(), a.clone()]);
    assert_eq!((layers, added), (vec![a.clone(), b.clone()], 2));
    // Attaching the same envelopes again adds nothing.
    let (layers, added) = merge(&[a.clone(), b.clone()], &[b.clone(), a.clone()]);
    assert_eq!((layers, added), (vec![a.clone(), b.clone()], 0));
    // A later envelope is appended; an existing layer of another tool is kept as is,
    // and one with the same digest but other annotations is not added again.
    let mut foreign = layer("sig", "");
    foreign.media_type = "application/vnd.dev.cosign.simplesigning.v1+json".into();
    foreign.annotations.clear();
    let (layers, added) = merge(
        &[a.clone(), foreign.clone(), b.clone()],
        &[c.clone(), layer("a", "other")],
    );
    assert_eq!((layers, added), (vec![a, foreign, b, c], 1));
}

#[test]
fn the_config_blob_is_cosigns_and_deterministic() {
    let layers = [layer("a", "p"), layer("b", "q")];
    let config = config_blob(&layers);
    assert_eq!(
        String::from_utf8(config.clone()).unwrap(),
        format!(
            r#"{{"architecture":"","config":{{}},"created":"0001-01-01T00:00:00Z","history":[{{"created":"0001-01-01T00:00:00Z"}},{{"created":"0001-01-01T00:00:00Z"}}],"os":"","rootfs":{{"type":"layers","diff_ids":["{}","{}"]}}}}"#,
            digest_of(b"a"),
            digest_of(b"b")
        )
    );
    assert_eq!(config_blob(&layers), config);
    let d = config_descriptor(&config);
    assert_eq!(
        (d.media_type.as_str(), d.size),
        (OCI_CONFIG, config.len() as u64)
    );
    assert_eq!(d.digest, digest_of(&config));
}

#[test]
fn the_manifest_has_cosigns_layout_and_a_subject() {
    let layers = vec![layer("a", "p")];
    let config = config_descriptor(&config_blob(&layers));
    let subject = Descriptor {
        media_type: DOCKER_MANIFEST.into(),
        digest: EMPTY.into(),
        size: 528,
        artifact_type: None,
        annotations: BTreeMap::new(),
    };
    let m = attachment(config.clone(), layers.clone(), subject);
    let bytes = serde_json::to_vec(&m).unwrap();
    let expected = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{},"layers":[{}],"subject":{{"mediaType":"{DOCKER_MANIFEST}","digest":"{EMPTY}","size":528}}}}"#,
        serde_json::to_string(&config).unwrap(),
        serde_json::to_string(&layers[0]).unwrap()
    );
    assert_eq!(String::from_utf8(bytes.clone()).unwrap(), expected);
    assert_eq!(parse_manifest(&bytes).unwrap(), m);
}

#[test]
fn a_manifest_cosign_wrote_is_read_and_its_envelopes_found() {
    // cosign's own output (`cosign attest`): no subject, an extra annotation, and a
    // signature layer beside the envelope.
    let cosign = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":342,"digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111"},"layers":[{"mediaType":"application/vnd.dsse.envelope.v1+json","size":11022,"digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222","annotations":{"dev.cosignproject.cosign/signature":"","dev.sigstore.cosign/bundle":"{}","predicateType":"https://slsa.dev/provenance/v0.2"}},{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","size":1,"digest":"sha256:3333333333333333333333333333333333333333333333333333333333333333","urls":[]}]}"#;
    let m = parse_manifest(cosign.as_bytes()).unwrap();
    assert_eq!(m.subject, None);
    let found: Vec<_> = envelopes(&m).collect();
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].annotations.get(PREDICATE_TYPE).map(String::as_str),
        Some("https://slsa.dev/provenance/v0.2")
    );
    // A Docker manifest and one without a mediaType are image manifests too.
    let docker = cosign.replace(OCI_MANIFEST, DOCKER_MANIFEST);
    assert!(parse_manifest(docker.as_bytes()).is_ok());
    let untyped = cosign.replace(&format!(r#""mediaType":"{OCI_MANIFEST}","#), "");
    assert_eq!(parse_manifest(untyped.as_bytes()).unwrap().media_type, None);
}

#[test]
fn other_documents_are_not_manifests() {
    let index = format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[]}}"#);
    let e = parse_manifest(index.as_bytes()).unwrap_err();
    assert!(e.contains("not an image manifest"), "{e}");
    let v1 = r#"{"schemaVersion":1,"config":{"mediaType":"x","digest":"sha256:00","size":1}}"#;
    assert!(parse_manifest(v1.as_bytes())
        .unwrap_err()
        .contains("schemaVersion 1"));
    assert!(parse_manifest(b"not json").is_err());
    assert!(parse_manifest(b"{}").is_err());
    // The referrers answer parses as an index, unknown fields and all.
    let page = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{EMPTY}","size":3,"artifactType":"application/vnd.oci.image.config.v1+json","data":""}}]}}"#
    );
    let i = parse_index(page.as_bytes()).unwrap();
    assert_eq!(i.manifests[0].artifact_type.as_deref(), Some(OCI_CONFIG));
    assert!(parse_index(br#"{"schemaVersion":1}"#).is_err());
    let manifest = format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}"}}"#);
    assert!(parse_index(manifest.as_bytes())
        .unwrap_err()
        .contains("not an image index"));
}

#[test]
fn blobs_must_be_what_their_descriptor_names() {
    let d = layer("envelope", "p");
    assert_eq!(check_blob(&d, b"envelope"), Ok(()));
    let e = check_blob(&d, b"envelopE").unwrap_err();
    assert!(e.contains(&digest_of(b"envelopE")), "{e}");
    let e = check_blob(&d, b"env").unwrap_err();
    assert!(e.contains("3 bytes") && e.contains("says 8"), "{e}");
}

#[test]
fn the_next_page_of_referrers_is_the_link_marked_next() {
    assert_eq!(
        next_link(r#"</v2/a/referrers/sha256:00?n=10&last=x>; rel="next""#),
        Some("/v2/a/referrers/sha256:00?n=10&last=x")
    );
    assert_eq!(
        next_link(r#"<https://r.example/p1>; rel="prev", <https://r.example/p3>;rel=next"#),
        Some("https://r.example/p3")
    );
    assert_eq!(next_link(r#"</v2/a>; rel="prev""#), None);
    assert_eq!(next_link("garbage"), None);
}
