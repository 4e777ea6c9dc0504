//! The SLSA companions in the differential corpus: a build or decision whose predicate
//! links its standard statement (`attestation`), as written and tampered with, each
//! under a SHA of its own; `ledger verify` and `docs/audit/verify_chain.py` must
//! agree on every case (SPEC: "Verification rules for companions").

use super::Corpus;
use crate::strict::sign_raw;
use crate::{zone_key, Repo};
use base64::Engine as _;
use ledger_core::dsse::pae;
use ledger_core::{ArtifactKind, Sha256Digest, SigningKey, Stage};
use serde_json::{json, Value};
use std::path::Path;

type Seal = Box<dyn FnOnce(Value, &SigningKey) -> Vec<u8>>;
type Edit = Box<dyn FnOnce(&mut Value, &str)>;
type Tamper = Box<dyn FnOnce(&Repo, &str, &str)>;

/// One case: how the companion is sealed, how the artifact's predicate is edited
/// (given the companion's key), and what is done to the store afterwards (given the
/// companion's key and the SHA).
struct Case {
    kind: ArtifactKind,
    /// The key file that signs the companion, and whether the companion is logged.
    signer: &'static str,
    logged: bool,
    /// Whether both verifiers must accept the case (else both must refuse).
    verifies: bool,
    seal: Seal,
    edit: Edit,
    tamper: Tamper,
}

impl Case {
    /// The companion as `ledger` writes it: the zone key signs, the artifact links it.
    fn new(kind: ArtifactKind) -> Case {
        Case {
            kind,
            signer: zone_key(kind.stage()),
            logged: true,
            verifies: false,
            seal: Box::new(|st, k| sign_raw(&serde_json::to_vec(&st).unwrap(), k).to_bytes()),
            edit: Box::new(|_, _| {}),
            tamper: Box::new(|_, _, _| {}),
        }
    }

    fn signer(mut self, key_file: &'static str) -> Case {
        self.signer = key_file;
        self
    }

    /// Both verifiers must accept this case.
    fn verifies(mut self) -> Case {
        self.verifies = true;
        self
    }

    fn unlogged(mut self) -> Case {
        self.logged = false;
        self
    }

    fn seal(mut self, seal: impl FnOnce(Value, &SigningKey) -> Vec<u8> + 'static) -> Case {
        self.seal = Box::new(seal);
        self
    }

    fn edit(mut self, edit: impl FnOnce(&mut Value, &str) + 'static) -> Case {
        self.edit = Box::new(edit);
        self
    }

    fn tamper(mut self, tamper: impl FnOnce(&Repo, &str, &str) + 'static) -> Case {
        self.tamper = Box::new(tamper);
        self
    }

    /// The statement signed by `seal`.
    fn restate(mut self, change: impl FnOnce(&mut Value) + 'static) -> Case {
        let seal = std::mem::replace(&mut self.seal, Box::new(|_, _| Vec::new()));
        self.seal(move |mut st, k| {
            change(&mut st);
            seal(st, k)
        })
    }
}

fn fixture(path: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../schemas/fixtures")
        .join(path);
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn companion_key(kind: ArtifactKind, sha: &str, attempt: u32) -> String {
    let at = if attempt > 1 {
        format!(".attempt-{attempt}")
    } else {
        String::new()
    };
    match kind {
        ArtifactKind::Build => format!("build/{sha}/build{at}.provenance.json"),
        _ => format!("release/{sha}/decision{at}.vsa.json"),
    }
}

/// The statement `ledger` would write beside `kind`'s evidence for `sha`, recorded
/// from the first valid fixture with the image of [`image`].
fn statement(repo: &Repo, kind: ArtifactKind, sha: &str) -> Value {
    let (predicate_type, predicate, subject) = if kind == ArtifactKind::Build {
        let mut p = fixture("slsa-provenance/valid/minimal.json");
        let definition = &mut p["buildDefinition"];
        definition["externalParameters"]["revision"] = sha.into();
        definition["externalParameters"]["images"][0]["tag"] =
            format!("ledger-demo/api:{sha}").into();
        definition["resolvedDependencies"][0] = json!({
            "uri": format!("git+https://github.com/acme/shop@{sha}"),
            "digest": { "gitCommit": sha },
        });
        let subject = json!({ "name": "ledger-demo/api", "digest": { "sha256": "a1".repeat(32) } });
        ("https://slsa.dev/provenance/v1", p, subject)
    } else {
        let mut p = fixture("slsa-vsa/valid/passed.json");
        let policy = std::fs::read(repo.path().join("policy/pipeline-policy.json")).unwrap();
        let digest = Sha256Digest::of(&policy).to_hex();
        p["resourceUri"] = format!("git+https://github.com/acme/shop@{sha}").into();
        p["policy"] =
            json!({ "uri": format!("policies/{digest}.json"), "digest": { "sha256": digest } });
        let subject = json!({ "name": "api", "digest": { "sha256": "b2".repeat(32) } });
        ("https://slsa.dev/verification_summary/v1", p, subject)
    };
    json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [subject],
        "predicateType": predicate_type,
        "predicate": predicate,
    })
}

/// The build's one image, as the provenance's subject names it.
fn image(p: &mut Value, sha: &str) {
    let image = &mut p["images"][0];
    image["reference"] = format!("ledger-demo/api:{sha}").into();
    image["image_id"] = format!("sha256:{}", "a1".repeat(32)).into();
    image["repo_digest"] = Value::Null;
    image["labels"]["org.opencontainers.image.revision"] = sha.into();
    p["registry"] = Value::Null;
}

impl Corpus {
    /// Writes the case's companion (logged), records its artifact linking it, then
    /// tampers; compared.
    fn companion(&mut self, case: &str, c: Case) {
        let sha = self.sha();
        let repo = &self.repo;
        let pem = std::fs::read_to_string(repo.path().join(c.signer)).unwrap();
        let key = SigningKey::from_pem(&pem).unwrap();
        let companion = companion_key(c.kind, &sha, 1);
        let bytes = (c.seal)(statement(repo, c.kind, &sha), &key);
        let link = json!({ "key": companion, "sha256": Sha256Digest::of(&bytes).to_hex() });
        if c.logged {
            repo.write_logged(&companion, bytes);
        } else {
            repo.tamper_object(&companion, bytes);
        }
        let kind = c.kind;
        repo.record(kind, &sha, |p| {
            p["attestation"] = link;
            if kind == ArtifactKind::Build {
                image(p, &sha);
            } else {
                p["decision"] = "promote".into();
            }
            (c.edit)(p, &companion);
        });
        (c.tamper)(repo, &companion, &sha);
        self.expected.insert(sha.clone(), c.verifies);
        self.compare(&sha, &format!("{kind:?} companion: {case}"));
    }
}

/// An envelope over `st` of another payload type, signed by `k`.
fn other_payload_type(st: &Value, k: &SigningKey) -> Vec<u8> {
    let payload = serde_json::to_vec(st).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let sig = k.sign(&pae("application/json", &payload));
    let envelope = json!({
        "payload": b64.encode(&payload),
        "payloadType": "application/json",
        "signatures": [{ "keyid": k.key_id().to_string(), "sig": b64.encode(sig) }],
    });
    serde_json::to_vec(&envelope).unwrap()
}

fn other_kind(kind: ArtifactKind) -> ArtifactKind {
    if kind == ArtifactKind::Build {
        ArtifactKind::Decision
    } else {
        ArtifactKind::Build
    }
}

/// Cases for both companions: as written, gone, replaced, not logged.
fn placement_cases(kind: ArtifactKind) -> Vec<(&'static str, Case)> {
    let base = || Case::new(kind);
    vec![
        ("as written", base().verifies()),
        ("deleted", base().tamper(|r, c, _| r.delete_object(c))),
        (
            "replaced by other bytes",
            base().tamper(|r, c, _| r.tamper_object(c, b"{}\n".to_vec())),
        ),
        ("linked, unlogged", base().unlogged()),
    ]
}

/// Cases for both companions: who signed it, and how it reads.
fn sealing_cases(kind: ArtifactKind) -> Vec<(&'static str, Case)> {
    let other = other_kind(kind);
    let base = || Case::new(kind);
    vec![
        (
            "re-signed by an untrusted key",
            base().seal(|st, _| {
                sign_raw(
                    &serde_json::to_vec(&st).unwrap(),
                    &SigningKey::from_seed(&[9; 32]),
                )
                .to_bytes()
            }),
        ),
        (
            "signed by a key of another stage",
            base().signer(zone_key(Stage::Commit)),
        ),
        (
            "of another payload type",
            base().seal(|st, k| other_payload_type(&st, k)),
        ),
        (
            "with a member twice",
            base().seal(|st, k| {
                let text = serde_json::to_string(&st).unwrap().replacen(
                    "\"predicateType\"",
                    "\"predicateType\":\"x\",\"predicateType\"",
                    1,
                );
                sign_raw(text.as_bytes(), k).to_bytes()
            }),
        ),
        (
            "with the other companion's type",
            base().restate(move |st| {
                st["predicateType"] = statement_type(other).into();
            }),
        ),
    ]
}

/// Cases for both companions: extra ones, and links to elsewhere or to nothing.
fn log_cases(kind: ArtifactKind) -> Vec<(&'static str, Case)> {
    let other = other_kind(kind);
    let base = || Case::new(kind);
    vec![
        (
            "an unlogged companion for a missing attempt",
            base().tamper(move |r, c, sha| {
                r.tamper_object(&companion_key(kind, sha, 2), r.read_object(c));
            }),
        ),
        (
            "a logged companion for a missing attempt",
            base().tamper(move |r, c, sha| {
                r.write_logged(&companion_key(kind, sha, 2), r.read_object(c));
            }),
        ),
        (
            "linked under another key",
            base().edit(move |p, _| {
                p["attestation"]["key"] =
                    companion_key(other, p["sha"].as_str().unwrap(), 1).into();
            }),
        ),
        (
            "linked with another digest",
            base().edit(|p, _| p["attestation"]["sha256"] = "0".repeat(64).into()),
        ),
        (
            "not linked, logged (older evidence)",
            base().verifies().edit(|p, _| {
                p.as_object_mut().unwrap().remove("attestation");
            }),
        ),
        (
            "not linked, unlogged",
            base().unlogged().edit(|p, _| {
                p.as_object_mut().unwrap().remove("attestation");
            }),
        ),
    ]
}

fn statement_type(kind: ArtifactKind) -> &'static str {
    if kind == ArtifactKind::Build {
        "https://slsa.dev/provenance/v1"
    } else {
        "https://slsa.dev/verification_summary/v1"
    }
}

/// Cases of what each statement claims, held to its artifact.
fn claim_cases() -> Vec<(&'static str, Case)> {
    let (build, decision) = (
        || Case::new(ArtifactKind::Build),
        || Case::new(ArtifactKind::Decision),
    );
    let other = "f".repeat(40);
    let other2 = other.clone();
    vec![
        (
            "another image digest",
            build().restate(|st| st["subject"][0]["digest"]["sha256"] = "a2".repeat(32).into()),
        ),
        (
            "an extra subject",
            build().restate(|st| {
                let first = st["subject"][0].clone();
                st["subject"].as_array_mut().unwrap().push(first);
            }),
        ),
        (
            "the image by its tag",
            build().restate(|st| st["subject"][0]["name"] = "ledger-demo/api:x".into()),
        ),
        (
            "another commit built",
            build().restate(move |st| {
                st["predicate"]["buildDefinition"]["resolvedDependencies"][0]["digest"]
                    ["gitCommit"] = other.clone().into();
            }),
        ),
        (
            "FAILED for a promotion",
            decision().restate(|st| {
                st["predicate"]["verificationResult"] = "FAILED".into();
                st["predicate"]["verifiedLevels"] = json!(["FAILED"]);
            }),
        ),
        ("PASSED for a rejection", decision().edit(reject)),
        (
            "FAILED for a rejection",
            decision().verifies().edit(reject).restate(|st| {
                st["predicate"]["verificationResult"] = "FAILED".into();
                st["predicate"]["verifiedLevels"] = json!(["FAILED"]);
            }),
        ),
        (
            "another policy",
            decision().restate(|st| {
                st["predicate"]["policy"]["digest"]["sha256"] = "5".repeat(64).into()
            }),
        ),
        (
            "another commit's resource",
            decision().restate(move |st| {
                st["predicate"]["resourceUri"] =
                    format!("git+https://github.com/acme/shop@{other2}").into();
            }),
        ),
    ]
}

/// A rejecting decision, as the fixture has one.
fn reject(p: &mut Value, _: &str) {
    let fixture = fixture("decision/valid/reject.json");
    for field in ["decision", "reasons", "result"] {
        p[field] = fixture[field].clone();
    }
}

/// Every companion case.
pub(super) fn corpus(c: &mut Corpus) {
    for kind in [ArtifactKind::Build, ArtifactKind::Decision] {
        let cases = [placement_cases(kind), sealing_cases(kind), log_cases(kind)];
        for (what, case) in cases.into_iter().flatten() {
            c.companion(what, case);
        }
    }
    for (what, case) in claim_cases() {
        c.companion(what, case);
    }
}
