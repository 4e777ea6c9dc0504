//! `check_image`'s rules, each held by a test that fails without it: a build key
//! and a decide key, each trusted for its own stage only, sign a provenance and a
//! VSA about one image, and every test but the first breaks one thing.

use super::*;
use ledger_core::attestation::{PROVENANCE_PREDICATE_TYPE, VSA_PREDICATE_TYPE};
use ledger_core::predicate::{ResourceDescriptor, BUILD_LEVEL};
use ledger_core::{GitSha, SigningKey, Subject};
use ledger_policy::model::{KeyDoc, PolicyDoc};
use ledger_policy::{default_policy, key_doc};
use time::macros::datetime;
use time::Duration;

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
const OTHER_SHA: &str = "89abcdef0123456789abcdef0123456789abcdef";
const IMAGE: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const OTHER_IMAGE: &str = "2222222222222222222222222222222222222222222222222222222222222222";
/// Another image of the same build, a subject beside the one checked.
const WEB_IMAGE: &str = "3333333333333333333333333333333333333333333333333333333333333333";
const PROVENANCE: &str =
    include_str!("../../../../schemas/fixtures/slsa-provenance/valid/with-registry.json");
const VSA: &str = include_str!("../../../../schemas/fixtures/slsa-vsa/valid/promoted.json");

/// Key seeds: trusted for `build` only, for `decide` only, the policy's owner
/// (trusted for no stage), and a key the policy does not know.
const BUILD: u8 = 1;
const DECIDE: u8 = 2;
const OWNER: u8 = 3;
const STRANGER: u8 = 9;

/// The test key numbered `n` (the same key every run).
fn key(n: u8) -> SigningKey {
    SigningKey::from_seed(&[n; 32])
}

fn trusted(n: u8, stage: Stage) -> KeyDoc {
    key_doc(key(n).public(), &[stage], "test key").unwrap()
}

/// The owners' policy: [`BUILD`] trusted for `build` (key 0), [`DECIDE`] for
/// `decide` (key 1), then `edit`.
fn policy_with(edit: impl FnOnce(&mut PolicyDoc)) -> SignedPolicy {
    let mut doc = default_policy(vec![
        trusted(BUILD, Stage::Build),
        trusted(DECIDE, Stage::Decide),
    ]);
    edit(&mut doc);
    let text = serde_json::to_string_pretty(&doc).unwrap();
    SignedPolicy::self_signed(text.as_bytes(), &key(OWNER))
        .unwrap()
        .0
}

fn policy() -> SignedPolicy {
    policy_with(|_| {})
}

/// A DSSE envelope over a statement of `predicate_type` about `image` (and another
/// image beside it), signed by the key of each of `seeds`.
fn signed(predicate_type: &str, predicate: &impl Serialize, image: &str, seeds: &[u8]) -> Vec<u8> {
    let subjects = vec![
        Subject::image("127.0.0.1:5000/shop/web", WEB_IMAGE),
        Subject::image("127.0.0.1:5000/shop/api", image),
    ];
    let predicate = serde_json::to_value(predicate).unwrap();
    let statement = Statement::with_type(predicate_type, subjects, predicate);
    let mut env = Envelope::sign(&statement, &key(seeds[0]));
    for seed in &seeds[1..] {
        let other = Envelope::sign(&statement, &key(*seed));
        env.signatures.extend(other.signatures);
    }
    env.to_bytes()
}

/// The fixture's provenance, of `commit`.
fn provenance_of(commit: &str) -> ProvenancePredicate {
    let mut p: ProvenancePredicate = serde_json::from_str(PROVENANCE).unwrap();
    let def = &mut p.build_definition;
    def.external_parameters.revision = GitSha::parse(commit).unwrap();
    let uri = format!("git+https://example.com/shop@{commit}");
    def.resolved_dependencies[0] = ResourceDescriptor::uri(uri, "gitCommit", commit);
    p
}

/// The provenance of `commit` about `image`, signed by `seed`'s key.
fn provenance_by(commit: &str, image: &str, seed: u8) -> Vec<u8> {
    let predicate = provenance_of(commit);
    signed(PROVENANCE_PREDICATE_TYPE, &predicate, image, &[seed])
}

/// The provenance of [`SHA`] about [`IMAGE`], signed by the build key.
fn provenance() -> Vec<u8> {
    provenance_by(SHA, IMAGE, BUILD)
}

/// The fixture's VSA of [`SHA`] under `policy`, verified at 10:`minute` with
/// `result`, naming the provenance envelope `provenance` among its inputs.
fn vsa_of(
    policy: &SignedPolicy,
    provenance: &[u8],
    result: VerificationResult,
    minute: i64,
) -> VsaPredicate {
    let mut v: VsaPredicate = serde_json::from_str(VSA).unwrap();
    v.resource_uri = format!("git+https://example.com/shop@{SHA}");
    let hex = policy.digest().to_hex();
    v.policy = ResourceDescriptor::uri(format!("policies/{hex}.json"), "sha256", hex);
    v.input_attestations[1] = ResourceDescriptor::uri(
        format!("build/{SHA}/build.provenance.json"),
        "sha256",
        Sha256Digest::of(provenance).to_hex(),
    );
    v.time_verified = datetime!(2026-11-24 10:00 UTC) + Duration::minutes(minute);
    v.verification_result = result;
    v.verified_levels = vec![match result {
        VerificationResult::Passed => BUILD_LEVEL.to_owned(),
        VerificationResult::Failed => "FAILED".to_owned(),
    }];
    v
}

/// The PASSED VSA verified at 10:05 naming `provenance`.
fn passed(policy: &SignedPolicy, provenance: &[u8]) -> VsaPredicate {
    vsa_of(policy, provenance, VerificationResult::Passed, 5)
}

/// `predicate` as a VSA about `image` signed by the keys of `seeds`.
fn vsa_by(predicate: &VsaPredicate, image: &str, seeds: &[u8]) -> Vec<u8> {
    signed(VSA_PREDICATE_TYPE, predicate, image, seeds)
}

/// `predicate` as a VSA about [`IMAGE`] signed by the decide key.
fn vsa(predicate: &VsaPredicate) -> Vec<u8> {
    vsa_by(predicate, IMAGE, &[DECIDE])
}

/// An attached envelope with the annotation `predicate_type`.
fn attached(bytes: Vec<u8>, predicate_type: Option<&str>) -> Attached {
    Attached {
        bytes,
        predicate_type: predicate_type.map(str::to_owned),
        found_in: "referrer sha256:abc".to_owned(),
    }
}

fn ours(bytes: Vec<u8>, attestation: Attestation) -> Attached {
    attached(bytes, Some(attestation.predicate_type()))
}

/// A provenance and a VSA envelope, annotated as such.
fn two(provenance: Vec<u8>, vsa: Vec<u8>) -> Vec<Attached> {
    vec![
        ours(provenance, Attestation::Provenance),
        ours(vsa, Attestation::Vsa),
    ]
}

/// The valid pair under `policy`: the provenance and the VSA naming it.
fn pair(policy: &SignedPolicy) -> Vec<Attached> {
    let p = provenance();
    let v = vsa(&passed(policy, &p));
    two(p, v)
}

fn check(policy: &SignedPolicy, attached: &[Attached]) -> ImageReport {
    check_image(policy, &format!("sha256:{IMAGE}"), attached)
}

#[track_caller]
fn assert_fails(report: &ImageReport, why: &str) {
    assert!(!report.ok, "passed, expected {why:?}: {report:#?}");
    assert!(
        report.problems.iter().any(|p| p.contains(why)),
        "no problem says {why:?}: {report:#?}"
    );
}

#[track_caller]
fn assert_passes(report: &ImageReport) {
    assert!(report.ok, "{report:#?}");
    assert!(report.problems.is_empty(), "{report:#?}");
    assert_eq!(report.commit.as_deref(), Some(SHA));
    assert_eq!(report.verdict.as_deref(), Some("PASSED"));
}

const NO_VSA: &str = "no valid SLSA verification summary (VSA)";

fn no_provenance() -> String {
    format!("no valid SLSA provenance of commit {SHA}")
}

#[test]
fn a_valid_pair_passes() {
    let policy = policy();
    let report = check(&policy, &pair(&policy));
    assert_passes(&report);
    assert_eq!(report.digest, format!("sha256:{IMAGE}"));
    assert_eq!(report.verified.len(), 2, "{report:#?}");
    assert!(report.verified[0].starts_with("provenance "), "{report:#?}");
    assert!(report.verified[1].starts_with("vsa "), "{report:#?}");
    assert!(report.verified[1].ends_with("(referrer sha256:abc)"));
    assert_eq!(report.other, 0);
    assert!(report.notes.is_empty(), "{report:#?}");
    // A bare hex digest is the same image.
    assert_passes(&check_image(&policy, IMAGE, &pair(&policy)));
}

#[test]
fn without_a_vsa_the_image_fails() {
    let policy = policy();
    let report = check(&policy, &[ours(provenance(), Attestation::Provenance)]);
    assert_fails(&report, NO_VSA);
    assert_eq!((report.verdict, report.commit), (None, None));
    assert_fails(&check(&policy, &[]), NO_VSA);
}

#[test]
fn without_the_provenance_the_image_fails() {
    let policy = policy();
    let v = vsa(&passed(&policy, &provenance()));
    let report = check(&policy, &[ours(v, Attestation::Vsa)]);
    assert_fails(&report, &no_provenance());
    assert_eq!(report.verdict.as_deref(), Some("PASSED"));
    assert_eq!(report.commit.as_deref(), Some(SHA));
}

#[test]
fn a_provenance_the_vsa_does_not_name_fails() {
    let policy = policy();
    // Another valid provenance of the same commit: it ended a second later.
    let mut later = provenance_of(SHA);
    later.run_details.metadata.finished_on += Duration::seconds(1);
    let named = signed(PROVENANCE_PREDICATE_TYPE, &later, IMAGE, &[BUILD]);
    let v = vsa(&passed(&policy, &named));
    let report = check(&policy, &two(provenance(), v.clone()));
    assert_fails(&report, &no_provenance());
    assert_eq!(report.verified.len(), 2, "both verify: {report:#?}");
    // With the named one attached too, the pair holds.
    let mut all = two(provenance(), v);
    all.push(ours(named, Attestation::Provenance));
    assert_passes(&check(&policy, &all));
}

#[test]
fn a_provenance_of_another_commit_fails() {
    let policy = policy();
    let p = provenance_by(OTHER_SHA, IMAGE, BUILD);
    let v = vsa(&passed(&policy, &p));
    let report = check(&policy, &two(p, v));
    assert_fails(&report, &no_provenance());
    assert_eq!(report.verified.len(), 2, "both verify: {report:#?}");
}

#[test]
fn a_vsa_signed_by_the_build_key_fails() {
    let policy = policy();
    let p = provenance();
    let v = vsa_by(&passed(&policy, &p), IMAGE, &[BUILD]);
    let report = check(&policy, &two(p, v));
    assert_fails(&report, "no signature by a trusted key for stage `decide`");
    assert_fails(&report, NO_VSA);
}

#[test]
fn a_provenance_signed_by_the_decide_key_fails() {
    let policy = policy();
    let p = provenance_by(SHA, IMAGE, DECIDE);
    let v = vsa(&passed(&policy, &p));
    let report = check(&policy, &two(p, v));
    assert_fails(&report, "no signature by a trusted key for stage `build`");
    assert_fails(&report, &no_provenance());
}

/// The envelope `bytes` with its payload swapped for a statement of `predicate`
/// and its signatures kept: what editing a signed attestation in place gives.
fn altered(bytes: &[u8], predicate_type: &str, predicate: &impl Serialize) -> Vec<u8> {
    let original: Envelope = serde_json::from_slice(bytes).unwrap();
    let other = signed(predicate_type, predicate, IMAGE, &[STRANGER]);
    let mut forged: Envelope = serde_json::from_slice(&other).unwrap();
    forged.signatures = original.signatures;
    forged.to_bytes()
}

#[test]
fn an_altered_envelope_fails_even_beside_a_valid_pair() {
    let policy = policy();
    let valid = pair(&policy);
    let mut other_commit = vsa_of(&policy, &valid[0].bytes, VerificationResult::Passed, 9);
    other_commit.resource_uri = format!("git+https://example.com/shop@{OTHER_SHA}");
    let other_build = provenance_of(OTHER_SHA);
    for (forged, attestation) in [
        (
            altered(&valid[1].bytes, VSA_PREDICATE_TYPE, &other_commit),
            Attestation::Vsa,
        ),
        (
            altered(&valid[0].bytes, PROVENANCE_PREDICATE_TYPE, &other_build),
            Attestation::Provenance,
        ),
    ] {
        let mut all = valid.clone();
        all.push(ours(forged.clone(), attestation));
        let report = check(&policy, &all);
        assert_fails(&report, "does not verify");
        let what = format!("{attestation} {}", Sha256Digest::of(&forged));
        assert!(report.problems[0].starts_with(&what), "{report:#?}");
        // Without its annotation it is still judged by what its statement claims.
        all.last_mut().unwrap().predicate_type = None;
        assert_fails(&check(&policy, &all), "does not verify");
    }
}

#[test]
fn statements_about_another_image_fail() {
    let policy = policy();
    let foreign = provenance_by(SHA, OTHER_IMAGE, BUILD);
    let v = vsa(&passed(&policy, &foreign));
    let report = check(&policy, &two(foreign, v));
    assert_fails(&report, &format!("no subject has sha256 {IMAGE}"));
    assert_fails(&report, &no_provenance());

    let p = provenance();
    let v = vsa_by(&passed(&policy, &p), OTHER_IMAGE, &[DECIDE]);
    let report = check(&policy, &two(p, v));
    assert_fails(&report, "it is not about this image");
    assert_fails(&report, NO_VSA);
}

#[test]
fn a_failed_vsa_fails() {
    let policy = policy();
    let p = provenance();
    let v = vsa(&vsa_of(&policy, &p, VerificationResult::Failed, 5));
    let report = check(&policy, &two(p, v));
    assert_fails(&report, "says FAILED");
    assert_eq!(report.verdict.as_deref(), Some("FAILED"));
    assert_eq!(report.problems.len(), 1, "{report:#?}");
}

/// The provenance and VSAs of the given verdicts and minutes, in every order
/// of the VSAs (two of them).
fn with_vsas(policy: &SignedPolicy, vsas: [(VerificationResult, i64); 2]) -> [Vec<Attached>; 2] {
    let p = provenance();
    let [a, b] = vsas
        .map(|(result, minute)| ours(vsa(&vsa_of(policy, &p, result, minute)), Attestation::Vsa));
    let prov = ours(p, Attestation::Provenance);
    [vec![prov.clone(), a.clone(), b.clone()], vec![prov, b, a]]
}

#[test]
fn the_latest_vsa_decides() {
    let policy = policy();
    let (pass, fail) = (VerificationResult::Passed, VerificationResult::Failed);
    for all in with_vsas(&policy, [(pass, 5), (fail, 7)]) {
        let report = check(&policy, &all);
        assert_fails(&report, "says FAILED");
        assert_eq!(report.verdict.as_deref(), Some("FAILED"));
    }
    for all in with_vsas(&policy, [(fail, 5), (pass, 7)]) {
        assert_passes(&check(&policy, &all));
    }
}

#[test]
fn a_tie_between_verdicts_fails_closed() {
    let policy = policy();
    let (pass, fail) = (VerificationResult::Passed, VerificationResult::Failed);
    for all in with_vsas(&policy, [(pass, 5), (fail, 5)]) {
        assert_fails(&check(&policy, &all), "says FAILED");
    }
}

/// Another tool's statement (an SBOM) about `image`, signed by a stranger.
fn sbom(image: &str) -> Vec<u8> {
    let predicate = serde_json::json!({"spdxVersion": "SPDX-2.3"});
    signed(SPDX, &predicate, image, &[STRANGER])
}

const SPDX: &str = "https://spdx.dev/Document";

#[test]
fn junk_annotated_as_ours_fails() {
    let policy = policy();
    for (junk, why) in [
        (
            b"not an envelope".to_vec(),
            "envelope is not valid DSSE JSON",
        ),
        (
            sbom(IMAGE),
            "annotated as this type, but its statement is of another",
        ),
    ] {
        for attestation in Attestation::ALL {
            let mut all = pair(&policy);
            all.push(ours(junk.clone(), attestation));
            let report = check(&policy, &all);
            assert_fails(&report, why);
            let named = format!("{attestation} ");
            assert!(report.problems[0].starts_with(&named), "{report:#?}");
            assert_eq!(report.other, 0);
        }
    }
}

#[test]
fn other_attestations_are_counted_not_judged() {
    let policy = policy();
    let mut all = pair(&policy);
    all.extend([
        attached(b"not an envelope".to_vec(), None),
        attached(b"{}".to_vec(), Some(SPDX)),
        attached(sbom(OTHER_IMAGE), Some(SPDX)),
        attached(sbom(IMAGE), None),
    ]);
    let report = check(&policy, &all);
    assert_passes(&report);
    assert_eq!(report.other, 4);
    assert_eq!(report.verified.len(), 2);
}

#[test]
fn a_vsa_violating_its_schema_fails() {
    let policy = policy();
    let p = provenance();
    let mut predicate = passed(&policy, &p);
    predicate.verified_levels = vec!["FAILED".to_owned()];
    let report = check(&policy, &two(p, vsa(&predicate)));
    assert_fails(&report, "slsa-vsa.v1.schema.json");
    assert_fails(&report, "/verifiedLevels");
    assert_fails(&report, NO_VSA);
}

#[test]
fn a_vsa_under_another_policy_passes_with_a_note() {
    let policy = policy();
    let p = provenance();
    let mut predicate = passed(&policy, &p);
    let earlier = "823412d1eacb67956220e532959f0104603057c88704863ca38e7cd188fda812";
    let uri = format!("policies/{earlier}.json");
    predicate.policy = ResourceDescriptor::uri(uri, "sha256", earlier);
    let report = check(&policy, &two(p, vsa(&predicate)));
    assert_passes(&report);
    assert_eq!(report.notes.len(), 1, "{report:#?}");
    assert!(report.notes[0].contains(&earlier[..12]), "{report:#?}");
    assert!(report.notes[0].contains("not the one in force"));
}

#[test]
fn the_policy_can_require_two_signatures() {
    const SECOND: u8 = 4;
    let policy = policy_with(|doc| {
        doc.keys.push(trusted(SECOND, Stage::Decide));
        doc.stages.entry(Stage::Decide).or_default().min_signatures = Some(2);
    });
    let p = provenance();
    let predicate = passed(&policy, &p);
    let report = check(&policy, &two(p.clone(), vsa(&predicate)));
    assert_fails(
        &report,
        "1 trusted signature(s) not revoked at 2026-11-24 10:05:00.0 +00:00:00, \
         the policy requires 2 for stage `decide`",
    );
    // A signature by a key not trusted for `decide` does not count.
    let v = vsa_by(&predicate, IMAGE, &[DECIDE, BUILD]);
    assert_fails(&check(&policy, &two(p.clone(), v)), "requires 2");
    let v = vsa_by(&predicate, IMAGE, &[DECIDE, SECOND]);
    assert_passes(&check(&policy, &two(p, v)));
}

/// The policy with key `index` (0: build, 1: decide) revoked at `at`.
fn revoked(index: usize, at: &str) -> SignedPolicy {
    policy_with(|doc| doc.keys[index].revoked_at = Some(at.to_owned()))
}

#[test]
fn a_key_revoked_by_the_statements_time_fails() {
    // The VSA was verified at 10:05:00, the build finished at 10:01:05.
    for (index, at) in [
        (1, "2026-11-24T10:04:59Z"),
        (1, "2026-11-24T10:05:00Z"),
        (0, "2026-11-24T10:01:00Z"),
    ] {
        let policy = revoked(index, at);
        let report = check(&policy, &pair(&policy));
        assert_fails(&report, "0 trusted signature(s) not revoked");
    }
    // Revoked later: what it signed before still holds.
    for (index, at) in [(1, "2026-11-24T10:05:01Z"), (0, "2026-11-24T10:01:06Z")] {
        let policy = revoked(index, at);
        assert_passes(&check(&policy, &pair(&policy)));
    }
}
