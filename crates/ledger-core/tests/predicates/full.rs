//! A fully populated value of every predicate type (every `Option` set, every list
//! and map non-empty), the input of the types → schemas direction of these tests.

use ledger_core::predicate::{
    BuildDefinition, BuildFailure, BuildMetadata, BuildPredicate, Builder, BuiltImage, Command,
    CommandPredicate, Container, Decision, DecisionPredicate, Deleted, DeployFailure,
    DeploymentPredicate, ExternalParameters, Header, ImageLabels, ImageParameters, Input,
    InternalParameters, Isolation, Latency, Lease, ManifestPredicate, Method, Outcome, Output,
    PinnedImage, Place, Port, Predicate, Promotion, ProvenancePredicate, PrunePredicate, Reason,
    ResourceDescriptor, RunDetails, Runner, SmokeCheck, SmokePredicate, Source, StageTime,
    SwarmService, SwarmTask, TestCounts, TimingPredicate, Tree, VerificationResult, Verifier,
    VsaPredicate, BUILD_LEVEL, BUILD_TYPE, VERIFIER_ID,
};
use ledger_core::schema::Document;
use ledger_core::{ArtifactKind, EnvName, GitSha, Sha256Digest, Stage};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use time::macros::datetime;
use time::OffsetDateTime;

fn sha() -> GitSha {
    GitSha::parse("0123456789abcdef0123456789abcdef01234567").unwrap()
}

fn other_sha() -> GitSha {
    GitSha::parse("89abcdef0123456789abcdef0123456789abcdef").unwrap()
}

fn t0() -> OffsetDateTime {
    datetime!(2026-11-24 10:00 UTC)
}

fn image_digest() -> String {
    format!("sha256:{}", Sha256Digest::of(b"image"))
}

fn input(key: &str) -> Input {
    Input {
        key: key.to_owned(),
        sha256: Sha256Digest::of(key.as_bytes()),
    }
}

fn runner() -> Runner {
    Runner {
        host: "ci-runner-7".into(),
        ci_provider: "github-actions".into(),
        run_id: Some("4242".into()),
        run_url: Some("https://ci.example/runs/4242".into()),
        labels: vec!["ubuntu-24.04".into()],
    }
}

fn header(stage: Stage) -> Header {
    Header {
        stage,
        sha: sha(),
        attempt: 2,
        started_at: t0(),
        finished_at: t0() + time::Duration::milliseconds(42_125),
        result: Outcome::Fail,
        runner: runner(),
        inputs: vec![input(&format!("commit/{}/commit.json", sha()))],
        policy_sha256: Sha256Digest::of(b"policy"),
        ledger_version: "0.1.0".into(),
        log_head: Some(ledger_core::tlog::LogHead {
            size: 17,
            sha256: Sha256Digest::of(b"entry 17"),
        }),
    }
}

/// Every field of `source` set: a tree with changes (`dirty` for the wrapped stages;
/// the schema lets `other` carry a digest too, which a build never writes).
fn source(tree: Tree) -> Source {
    Source {
        head: Some(other_sha()),
        tree,
        diff_sha256: Some(Sha256Digest::of(b"diff")),
    }
}

fn replay_manifest() -> Input {
    input(&format!("release-candidate/{}/manifest.json", sha()))
}

fn full_command(stage: Stage) -> CommandPredicate {
    CommandPredicate {
        header: header(stage),
        command: Command {
            argv: vec!["cargo".into(), "test".into()],
            exit_code: Some(1),
            duration_ms: 3,
            isolation: Some(Isolation::Namespaces),
        },
        output: Output {
            key: format!("{stage}/{}/{stage}.attempt-2.log", sha()),
            sha256: Sha256Digest::of(b"log"),
            bytes: 3,
            redacted: vec!["API_TOKEN".into()],
            truncated: true,
            total_bytes: Some(300_000_000),
        },
        tests: Some(TestCounts {
            passed: 1,
            failed: 1,
            ignored: 1,
        }),
        source: Some(source(Tree::Dirty)),
    }
}

fn full_build() -> BuildPredicate {
    BuildPredicate {
        header: header(Stage::Build),
        images: vec![BuiltImage {
            name: "api".into(),
            reference: format!("ledger-demo/api:{}", sha()),
            image_id: image_digest(),
            repo_digest: Some(format!("127.0.0.1:5000/ledger-demo/api@{}", image_digest())),
            labels: ImageLabels {
                revision: sha(),
                created: "2026-11-24T10:00:00Z".into(),
                source: "https://example.com/shop".into(),
                other: BTreeMap::from([("team".to_owned(), "shop".to_owned())]),
            },
            duration_ms: 5120,
        }],
        registry: Some("127.0.0.1:5000".into()),
        failure: Some(BuildFailure {
            image: "worker".into(),
            message: "COPY failed".into(),
        }),
        source: Some(source(Tree::Other)),
        attestation: Some(input(&format!("build/{}/build.provenance.json", sha()))),
    }
}

fn digest_of(algorithm: &str, value: String) -> BTreeMap<String, String> {
    BTreeMap::from([(algorithm.to_owned(), value)])
}

fn full_provenance() -> ProvenancePredicate {
    ProvenancePredicate {
        build_definition: BuildDefinition {
            build_type: BUILD_TYPE.into(),
            external_parameters: ExternalParameters {
                source: "https://example.com/shop".into(),
                revision: sha(),
                images: vec![ImageParameters {
                    name: "api".into(),
                    context: "examples/service".into(),
                    dockerfile: "Dockerfile".into(),
                    tag: format!("ledger-demo/api:{}", sha()),
                }],
            },
            internal_parameters: InternalParameters {
                ledger_version: "0.1.0".into(),
                policy_sha256: Sha256Digest::of(b"policy"),
                registry: Some("127.0.0.1:5000".into()),
            },
            resolved_dependencies: vec![
                ResourceDescriptor::uri(
                    format!("git+https://example.com/shop@{}", sha()),
                    "gitCommit",
                    sha().to_string(),
                ),
                ResourceDescriptor {
                    name: Some("api.context".into()),
                    uri: None,
                    digest: digest_of("sha256", Sha256Digest::of(b"context").to_hex()),
                },
            ],
        },
        run_details: RunDetails {
            builder: Builder {
                id: "https://ledger.dev/builder/github-actions".into(),
                version: digest_of("ledger", "0.1.0".into()),
            },
            metadata: BuildMetadata {
                invocation_id: "https://github.com/shop/api/actions/runs/42".into(),
                started_on: t0(),
                finished_on: t0() + time::Duration::seconds(5),
            },
        },
    }
}

fn full_vsa() -> VsaPredicate {
    let policy = Sha256Digest::of(b"policy").to_hex();
    VsaPredicate {
        verifier: Verifier {
            id: VERIFIER_ID.into(),
            version: digest_of("ledger", "0.1.0".into()),
        },
        time_verified: t0(),
        resource_uri: format!("git+https://example.com/shop@{}", sha()),
        policy: ResourceDescriptor::uri(format!("policies/{policy}.json"), "sha256", policy),
        input_attestations: vec![ResourceDescriptor::uri(
            format!("build/{}/build.provenance.json", sha()),
            "sha256",
            Sha256Digest::of(b"provenance").to_hex(),
        )],
        verification_result: VerificationResult::Passed,
        verified_levels: vec![BUILD_LEVEL.into()],
        slsa_version: "1.0".into(),
    }
}

pub fn full_manifest() -> ManifestPredicate {
    ManifestPredicate {
        header: header(Stage::Publish),
        images: BTreeMap::from([(
            "api".to_owned(),
            PinnedImage {
                reference: format!("127.0.0.1:5000/ledger-demo/api@{}", image_digest()),
                digest: image_digest(),
                engine_local: false,
            },
        )]),
        registry: Some("127.0.0.1:5000".into()),
    }
}

pub fn full_deployment() -> DeploymentPredicate {
    DeploymentPredicate {
        header: header(Stage::Deploy),
        environment: "canary".into(),
        engine: Some("tcp://canary.internal:2376".into()),
        manifest: replay_manifest(),
        containers: vec![Container {
            name: "ledger-canary-api".into(),
            image: "api".into(),
            reference: image_digest(),
            digest: image_digest(),
            container_id: "f".repeat(64),
            ports: vec![Port {
                address: Some(std::net::Ipv4Addr::LOCALHOST.into()),
                container: 8080,
                host: 18080,
            }],
        }],
        services: vec![SwarmService {
            name: "shop-canary-api".into(),
            image: "api".into(),
            service_id: "s".repeat(25),
            version: 42,
            replicas: 1,
            tasks: vec![SwarmTask {
                task_id: "t".repeat(25),
                slot: Some(1),
                node_id: "n".repeat(25),
                container_id: Some("f".repeat(64)),
                state: "running".into(),
            }],
        }],
        previous_release: Some(other_sha()),
        duration_ms: 2311,
        replay: true,
        rollback_from: Some(Some(other_sha())),
        promotion: Some(Promotion {
            from: EnvName::parse("staging").unwrap(),
            deployment: input(&format!("infra/{}/deployment.staging.json", sha())),
            smoke: input(&format!("deploy/{}/api-smoke.staging.json", sha())),
        }),
        lease: Some(Lease {
            holder: "ci-runner-7/4242".into(),
            acquired_at: t0(),
            expires_at: t0() + time::Duration::minutes(15),
            takeover: true,
        }),
        failure: Some(DeployFailure {
            message: "container api did not become healthy".into(),
            restored: true,
        }),
    }
}

fn full_smoke() -> SmokePredicate {
    SmokePredicate {
        header: header(Stage::Smoke),
        environment: "canary".into(),
        checks: vec![SmokeCheck {
            name: "health".into(),
            method: Method::Get,
            url: "http://127.0.0.1:18080/health".into(),
            expected_status: 200,
            status: Some(503),
            latency_ms: 3.2,
            ok: false,
            attempts: 2,
            max_latency_ms: Some(500.0),
            error: Some("status 503".into()),
        }],
        latency_ms: Latency {
            p50: 3.2,
            p95: 3.2,
            max: 3.2,
        },
        replay: Some(true),
        manifest: Some(replay_manifest()),
        rollback_from: Some(Some(other_sha())),
    }
}

fn full_decision() -> DecisionPredicate {
    DecisionPredicate {
        header: header(Stage::Decide),
        decision: Decision::Reject,
        reasons: vec![Reason {
            rule: "/release/requires/5".into(),
            message: "smoke check health failed".into(),
            artifact: Some(format!("deploy/{}/api-smoke.json", sha())),
            found: Some(json!(false)),
            required: Some(json!(true)),
        }],
        replay: Some(true),
        rollback_from: Some(Some(other_sha())),
        manifest: Some(replay_manifest()),
        attestation: Some(input(&format!("release/{}/decision.vsa.json", sha()))),
    }
}

fn full_timing() -> TimingPredicate {
    TimingPredicate {
        header: header(Stage::Decide),
        stages: vec![StageTime {
            stage: Stage::Commit,
            attempt: 1,
            key: format!("commit/{}/commit.json", sha()),
            started_at: t0(),
            finished_at: t0() + time::Duration::seconds(42),
            duration_ms: 42_000,
        }],
        lead_time_ms: 303_000,
        total_stage_ms: 42_000,
    }
}

fn full_prune() -> PrunePredicate {
    PrunePredicate {
        pruned_at: t0(),
        runner: runner(),
        policy_sha256: Sha256Digest::of(b"policy"),
        ledger_version: "0.1.0".into(),
        threshold: 50,
        forced: true,
        min_age_days: 14,
        protected: 3,
        deleted: vec![Deleted {
            sha: sha(),
            image: "api".into(),
            place: Place::Engine,
            reference: image_digest(),
            digest: image_digest(),
            engine: Some("tcp://canary.internal:2376".into()),
            size: Some(Some(1234)),
            ok: false,
            error: Some("the engine answered 409: image is in use".into()),
        }],
    }
}

/// Serializes `p` as the predicate of each of its documents.
fn documents_of<P: Predicate>(p: &P) -> Vec<(Document, Value)> {
    P::DOCUMENTS
        .iter()
        .map(|d| (*d, serde_json::to_value(p).unwrap()))
        .collect()
}

/// A fully populated value of every type, as the JSON of every document it models.
pub fn fully_populated() -> Vec<(Document, Value)> {
    let mut out = vec![
        (
            Document::Predicate(ArtifactKind::Commit),
            serde_json::to_value(full_command(Stage::Commit)).unwrap(),
        ),
        (
            Document::Predicate(ArtifactKind::Integration),
            serde_json::to_value(full_command(Stage::Integration)).unwrap(),
        ),
    ];
    out.extend(documents_of(&full_build()));
    out.extend(documents_of(&full_manifest()));
    out.extend(documents_of(&full_deployment()));
    out.extend(documents_of(&full_smoke()));
    out.extend(documents_of(&full_decision()));
    out.extend(documents_of(&full_timing()));
    out.extend(documents_of(&full_prune()));
    out.extend(documents_of(&full_provenance()));
    out.extend(documents_of(&full_vsa()));
    out
}
