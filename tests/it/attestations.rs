//! The standard attestations travel with the image: a promoted release's SLSA
//! Provenance and VSA are in the store beside the evidence and attached to the
//! image in the real test registry, found there by digest through the registry API
//! alone (plain HTTP requests, no `ledger`), and `ledger verify --image` passes for
//! them and fails (exit 4) once an attestation is removed, replaced or forged, or
//! when the release was rejected.

use crate::project::{engine, registry, Project};
use crate::{assert_code, text};
use base64::Engine as _;
use serde_json::Value;
use std::process::Command;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// An image reference split into registry host, repository and digest.
struct Image {
    host: String,
    name: String,
    digest: String,
}

impl Image {
    fn parse(reference: &str) -> Image {
        let (repo, digest) = reference.split_once('@').unwrap();
        let (host, name) = repo.split_once('/').unwrap();
        Image {
            host: host.to_owned(),
            name: name.to_owned(),
            digest: digest.to_owned(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}/v2/{}/{path}", self.host, self.name)
    }

    fn att_tag(&self) -> String {
        format!("{}.att", self.digest.replace(':', "-"))
    }

    /// The `.att` manifest, as the registry serves it.
    fn att_manifest(&self) -> Value {
        let body = curl(&[
            "-H",
            &format!("Accept: {OCI_MANIFEST}"),
            &self.url(&format!("manifests/{}", self.att_tag())),
        ]);
        serde_json::from_slice(&body).unwrap_or_else(|e| {
            panic!("{e}: {}", String::from_utf8_lossy(&body));
        })
    }

    /// Every layer of the `.att` manifest: (predicateType annotation, blob bytes).
    fn attached(&self) -> Vec<(String, Vec<u8>)> {
        let manifest = self.att_manifest();
        manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                let digest = l["digest"].as_str().unwrap();
                let bytes = curl(&["-L", &self.url(&format!("blobs/{digest}"))]);
                let kind = l["annotations"]["predicateType"].as_str().unwrap_or("");
                (kind.to_owned(), bytes)
            })
            .collect()
    }

    /// Uploads `bytes` as a blob; returns its digest.
    fn put_blob(&self, bytes: &[u8]) -> String {
        let digest = format!("sha256:{}", ledger_core::Sha256Digest::of(bytes));
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), bytes).unwrap();
        let location = String::from_utf8(curl(&[
            "-X",
            "POST",
            "-o",
            "/dev/null",
            "-w",
            "%header{location}",
            &self.url("blobs/uploads/"),
        ]))
        .unwrap();
        let sep = if location.contains('?') { '&' } else { '?' };
        let absolute = if location.starts_with('/') {
            format!("http://{}{location}", self.host)
        } else {
            location
        };
        curl(&[
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &format!("@{}", file.path().display()),
            &format!("{absolute}{sep}digest={digest}"),
        ]);
        digest
    }

    /// Deletes the manifest the `.att` tag names (and with it the tag).
    fn delete_att_manifest(&self) {
        let digest = String::from_utf8(curl(&[
            "-I",
            "-o",
            "/dev/null",
            "-w",
            "%header{docker-content-digest}",
            "-H",
            &format!("Accept: {OCI_MANIFEST}"),
            &self.url(&format!("manifests/{}", self.att_tag())),
        ]))
        .unwrap();
        assert!(digest.starts_with("sha256:"), "{digest:?}");
        curl(&["-X", "DELETE", &self.url(&format!("manifests/{digest}"))]);
    }

    /// Puts `manifest` under the `.att` tag, replacing what it named.
    fn put_att_manifest(&self, manifest: &Value) {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), serde_json::to_vec(manifest).unwrap()).unwrap();
        curl(&[
            "-X",
            "PUT",
            "-H",
            &format!("Content-Type: {OCI_MANIFEST}"),
            "--data-binary",
            &format!("@{}", file.path().display()),
            &self.url(&format!("manifests/{}", self.att_tag())),
        ]);
    }
}

/// The reference by digest of the release's `api` image, from its manifest.
fn api_reference(p: &Project, sha: &str) -> String {
    let manifest = p
        .repo
        .predicate(&format!("release-candidate/{sha}/manifest.json"));
    manifest["images"]["api"]["ref"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// `verify --image REF --json`, exiting `code`, checked against its published schema.
fn image_json(p: &Project, reference: &str, code: i32) -> Value {
    let out = p.ledger(&["verify", "--image", reference, "--json"]);
    assert_code(&out, code);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    crate::read::assert_output_schema("verify-image", &report);
    report
}

/// `verify --image` said no (exit 4), naming `why`.
fn refused(out: &std::process::Output, why: &str) {
    assert_code(out, 4);
    assert!(text(out).contains(why), "{}", text(out));
}

fn curl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("curl")
        .args(["-sS", "--fail-with-body"])
        .args(args)
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "curl {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The envelope with its payload changed by one space (the statement reads the
/// same): the signature no longer covers it.
fn forged(envelope: &[u8]) -> Vec<u8> {
    let mut e: Value = serde_json::from_slice(envelope).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let payload = b64.decode(e["payload"].as_str().unwrap()).unwrap();
    let text = String::from_utf8(payload).unwrap().replacen('{', "{ ", 1);
    e["payload"] = Value::String(b64.encode(text));
    serde_json::to_vec(&e).unwrap()
}

/// The manifest with the layers of `predicate_type` kept (`keep`) or replaced by a
/// blob of `replacement`.
fn edited(image: &Image, predicate_type: &str, replacement: Option<&[u8]>) -> Value {
    let mut manifest = image.att_manifest();
    let layers = manifest["layers"].as_array_mut().unwrap();
    match replacement {
        None => layers.retain(|l| l["annotations"]["predicateType"] != predicate_type),
        Some(bytes) => {
            let digest = image.put_blob(bytes);
            for l in layers.iter_mut() {
                if l["annotations"]["predicateType"] == predicate_type {
                    l["digest"] = Value::String(digest.clone());
                    l["size"] = Value::from(bytes.len());
                }
            }
        }
    }
    manifest
}

const PROVENANCE: &str = "https://slsa.dev/provenance/v1";
const VSA: &str = "https://slsa.dev/verification_summary/v1";

#[test]
fn a_promoted_release_carries_its_attestations_and_verify_image_checks_them() {
    let Some(_) = engine() else { return };
    let Some(registry) = registry() else {
        eprintln!("LEDGER_TEST_REGISTRY not set; skipping");
        return;
    };
    let p = Project::new(Some(registry));
    let s = p.sha(23);
    p.run_through(&s, "decide");
    let reference = api_reference(&p, &s);
    let image = Image::parse(&reference);

    // In the store: each companion, named by its artifact's hash link.
    let provenance = p
        .repo
        .read_object(&format!("build/{s}/build.provenance.json"));
    let vsa = p
        .repo
        .read_object(&format!("release/{s}/decision.vsa.json"));
    let build = p.repo.predicate(&format!("build/{s}/build.json"));
    assert_eq!(
        build["attestation"]["key"],
        format!("build/{s}/build.provenance.json")
    );
    let decision = p.repo.predicate(&format!("release/{s}/decision.json"));
    assert_eq!(
        decision["attestation"]["key"],
        format!("release/{s}/decision.vsa.json")
    );

    // In the registry, by digest, through its API alone: the same bytes.
    let attached = image.attached();
    assert!(
        attached.contains(&(PROVENANCE.to_owned(), provenance.clone())),
        "{attached:?}"
    );
    assert!(
        attached.contains(&(VSA.to_owned(), vsa.clone())),
        "{attached:?}"
    );
    let att = image.att_manifest();
    assert_eq!(att["subject"]["digest"], image.digest.as_str());

    let verify = |what: &str| p.ledger(&["verify", "--image", what]);
    let out = verify(&reference);
    assert_code(&out, 0);
    assert!(
        text(&out).contains(&format!("verified: commit {s}")),
        "{}",
        text(&out)
    );
    let report = image_json(&p, &reference, 0);
    assert_eq!(
        (report["ok"].as_bool(), report["verdict"].as_str()),
        (Some(true), Some("PASSED"))
    );
    assert_eq!(report["commit"], s.as_str());
    let by_tag = format!("{}/{}:{s}", image.host, image.name);
    assert_code(&verify(&by_tag), 0);

    edits_fail_verification(&p, &s, &image, &reference, (&provenance, &vsa));
}

/// Each edit of the attached attestations fails `verify --image` (exit 4); put back
/// as `ledger` left them, they verify again, so the failures were the edits'.
fn edits_fail_verification(
    p: &Project,
    sha: &str,
    image: &Image,
    reference: &str,
    (provenance, vsa): (&[u8], &[u8]),
) {
    let verify = |what: &str| p.ledger(&["verify", "--image", what]);
    // The VSA removed: never promoted, as far as the image shows.
    let original = image.att_manifest();
    image.put_att_manifest(&edited(image, VSA, None));
    refused(&verify(reference), "no valid SLSA verification summary");
    // The provenance removed.
    image.put_att_manifest(&original);
    image.put_att_manifest(&edited(image, PROVENANCE, None));
    refused(&verify(reference), "no valid SLSA provenance");
    // The VSA replaced by an edited one: its signature no longer holds.
    image.put_att_manifest(&original);
    image.put_att_manifest(&edited(image, VSA, Some(&forged(vsa))));
    let out = verify(reference);
    assert_code(&out, 4);
    assert!(text(&out).contains("vsa"), "{}", text(&out));
    // A valid pair with a forged extra beside it: fails closed.
    image.put_att_manifest(&original);
    let mut extra = image.att_manifest();
    let bad = forged(provenance);
    let digest = image.put_blob(&bad);
    let mut layer = extra["layers"][0].clone();
    layer["digest"] = Value::String(digest);
    layer["size"] = Value::from(bad.len());
    layer["annotations"]["predicateType"] = Value::String(PROVENANCE.into());
    extra["layers"].as_array_mut().unwrap().push(layer);
    image.put_att_manifest(&extra);
    let out = verify(reference);
    assert_code(&out, 4);
    assert!(text(&out).contains("signature"), "{}", text(&out));
    // Bytes that are no envelope at all, under a `ledger` predicate type: fail closed too.
    let mut junk = original.clone();
    let digest = image.put_blob(b"not an envelope");
    let mut layer = junk["layers"][0].clone();
    layer["digest"] = Value::String(digest);
    layer["size"] = Value::from(15);
    layer["annotations"]["predicateType"] = Value::String(VSA.into());
    junk["layers"].as_array_mut().unwrap().push(layer);
    image.put_att_manifest(&junk);
    assert_code(&verify(reference), 4);
    // Put back as ledger left it: verifies again, so the failures above were the edits.
    image.put_att_manifest(&original);
    assert_code(&verify(reference), 0);
    // Both removed; `ledger attest` attaches them again from the verified evidence.
    image.delete_att_manifest();
    assert_code(&verify(reference), 4);
    let out = p.ledger(&["attest", sha]);
    assert_code(&out, 0);
    assert!(text(&out).contains("attached to"), "{}", text(&out));
    assert_code(&verify(reference), 0);
}

#[test]
fn a_rejected_release_fails_verify_image_and_a_bad_reference_is_exit_2() {
    let Some(_) = engine() else { return };
    let Some(registry) = registry() else {
        eprintln!("LEDGER_TEST_REGISTRY not set; skipping");
        return;
    };
    let p = Project::new(Some(registry.clone()));
    let s = p.sha(24);
    p.run_through(&s, "deploy");
    let toml = std::fs::read_to_string(p.repo.path().join("ledger.toml")).unwrap();
    let toml = toml
        .replace("/health\"", "/missing\"\n  retries = 2")
        .replace("  retries = 40\n", "");
    std::fs::write(p.repo.path().join("ledger.toml"), toml).unwrap();
    assert_code(&p.ledger(&["stage", "smoke", "--sha", &s]), 1);
    let out = p.ledger(&["stage", "decide", "--sha", &s]);
    assert_code(&out, 1);
    assert!(
        text(&out).contains("VSA and provenance attached to"),
        "{}",
        text(&out)
    );
    let reference = api_reference(&p, &s);
    refused(&p.ledger(&["verify", "--image", &reference]), "says FAILED");
    let report = image_json(&p, &reference, 4);
    assert_eq!(
        (report["ok"].as_bool(), report["verdict"].as_str()),
        (Some(false), Some("FAILED"))
    );
    // The rejection's VSA is evidence too: the store's chain still verifies.
    assert_code(&p.ledger(&["verify", &s]), 0);
    for bad in [
        "not a reference",
        "ledger-demo/api",
        &format!("{registry}/x/y"),
    ] {
        let out = p.ledger(&["verify", "--image", bad]);
        assert_code(&out, 2);
    }
    // A registry that does not answer is exit 5, naming it (fails closed, not a pass).
    let dead = format!("127.0.0.1:{}", crate::dead_port());
    let digest = reference.split_once('@').unwrap().1;
    let out = p.ledger(&[
        "verify",
        "--image",
        &format!("{dead}/ledger-it/api@{digest}"),
    ]);
    assert_code(&out, 5);
    assert!(text(&out).contains(&dead), "{}", text(&out));
}

#[test]
fn attest_refuses_a_release_without_a_registry_or_a_decision() {
    let Some(_) = engine() else { return };
    let p = Project::new(None);
    let s = p.sha(25);
    p.run_through(&s, "publish");
    let out = p.ledger(&["attest", &s]);
    assert_code(&out, 2);
    assert!(
        text(&out).contains("none of its images is in a registry"),
        "{}",
        text(&out)
    );
    // Never built: nothing verified to attach.
    let other = p.sha(26);
    let out = p.ledger(&["attest", &other]);
    assert_code(&out, 2);
    assert!(
        text(&out).contains("no verified build and manifest"),
        "{}",
        text(&out)
    );
}
