//! One verdict from two verifiers: `ledger verify` and the auditor's independent
//! `docs/audit/verify_chain.py` run over the whole tamper corpus (forged, altered,
//! stray and strictly-malformed evidence) and over every fuzz seed placed in a store
//! (as a stored envelope, as a signed payload, as a signed predicate), and over the
//! SLSA companions of build and decision evidence as written and tampered with
//! (`companions`), and must reach the same verdict on every case: both accept (0 and
//! 0) or both refuse (4 and 1).
//! Needs Python with securesystemslib, as the other interop tests do.

mod companions;

use crate::strict::{forged_payload, framing_forgeries, sign_raw, Seal};
use crate::{text, Repo};
use ledger_core::dsse::Envelope;
use ledger_core::{ArtifactKind, SigningKey, Statement};
use std::path::{Path, PathBuf};

/// The cases, each under a SHA of its own, in stores of at most [`PER_STORE`] cases
/// (every case adds a checkpoint, which every verification reads): set up first, then
/// both verifiers run over each store (the auditor's in one Python process, through
/// `tests/interop/verify_chain_batch.py`, since its imports are most of a run).
struct Corpus {
    repo: Repo,
    next: u64,
    cases: Vec<(String, String)>,
    full: Vec<(Repo, Vec<(String, String)>)>,
    /// The verdict some cases must get besides agreeing: SHA → whether both accept.
    expected: std::collections::HashMap<String, bool>,
}

const PER_STORE: usize = 40;

/// What `verify_chain_batch.py` prints for one SHA.
#[derive(serde::Deserialize)]
struct Audit {
    sha: String,
    exit: i32,
    output: String,
}

impl Corpus {
    fn new() -> Corpus {
        Corpus {
            repo: Repo::new(),
            next: 0,
            cases: Vec::new(),
            full: Vec::new(),
            expected: std::collections::HashMap::new(),
        }
    }

    /// A fresh SHA for the next case, in a fresh store when this one is full.
    fn sha(&mut self) -> String {
        if self.cases.len() >= PER_STORE {
            let repo = std::mem::replace(&mut self.repo, Repo::new());
            self.full.push((repo, std::mem::take(&mut self.cases)));
        }
        self.next += 1;
        format!("{:040x}", 0xd1ff_0000_u64 + self.next)
    }

    fn compare(&mut self, sha: &str, case: &str) {
        self.cases.push((sha.to_owned(), case.to_owned()));
    }

    /// Every case of every store: (store, cases).
    fn stores(self) -> Vec<(Repo, Vec<(String, String)>)> {
        let mut all = self.full;
        all.push((self.repo, self.cases));
        all
    }
}

/// Runs both verifiers on every case of `repo`; returns each disagreement, described.
/// A case with an expected verdict that both got otherwise counts as one too.
fn disagreements(
    repo: &Repo,
    cases: &[(String, String)],
    expected: &std::collections::HashMap<String, bool>,
) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = std::process::Command::new("python3")
        .arg(root.join("tests/interop/verify_chain_batch.py"))
        .arg(repo.store())
        .arg(repo.path().join("policy/pipeline-policy.json"))
        .args(cases.iter().map(|(sha, _)| sha))
        .output()
        .expect("python3");
    assert!(out.status.success(), "{}", text(&out));
    let audits: Vec<Audit> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(audits.len(), cases.len(), "{}", text(&out));
    let mut found = Vec::new();
    for ((sha, case), audit) in cases.iter().zip(audits) {
        assert_eq!(*sha, audit.sha);
        let ledger = repo.ledger(&["verify", sha]);
        let verdicts = (ledger.status.code(), audit.exit);
        let agreed = match expected.get(sha) {
            Some(true) => verdicts == (Some(0), 0),
            Some(false) => verdicts == (Some(4), 1),
            None => matches!(verdicts, (Some(0), 0) | (Some(4), 1)),
        };
        if !agreed {
            let must = match expected.get(sha) {
                Some(true) => " (both must accept)",
                Some(false) => " (both must refuse)",
                None => "",
            };
            found.push(format!(
                    "{case}{must} ({sha}): ledger exit {:?}, verify_chain.py exit {}\n--- ledger\n{}\n--- verify_chain.py\n{}",
                    verdicts.0,
                    verdicts.1,
                    text(&ledger),
                    audit.output
                ));
        }
    }
    found
}

impl Corpus {
    /// Commit evidence sealed by `seal` (the zone key signs), compared.
    fn sealed(&mut self, case: &str, seal: impl FnOnce(&Statement, &SigningKey) -> Vec<u8>) {
        let sha = self.sha();
        self.repo.record_sealed(ArtifactKind::Commit, &sha, seal);
        self.compare(&sha, case);
    }

    /// Good commit evidence, then `tamper` with the store (key of the envelope).
    fn tampered(&mut self, case: &str, tamper: impl FnOnce(&Repo, &str)) {
        let sha = self.sha();
        let key = self.repo.record(ArtifactKind::Commit, &sha, |_| {});
        tamper(&self.repo, &key);
        self.compare(&sha, case);
    }
}

/// The corpus of the tamper, attack and strict-JSON suites, as forgeries of one
/// commit envelope each.
fn tamper_corpus(c: &mut Corpus) {
    c.tampered("as recorded", |_, _| {});
    let sha = c.sha();
    c.repo.record(ArtifactKind::Commit, &sha, |p| {
        p["command"]["exit_code"] = 1.into();
    });
    c.compare(&sha, "a result contradicting the exit code");
    for (from, to) in [
        (
            "\"result\":\"pass\"",
            "\"result\":\"fail\",\"result\":\"pass\"",
        ),
        (
            "\"result\":\"pass\"",
            "\"result\":\"pass\",\"result\":\"pass\"",
        ),
        (
            "\"stage\":\"commit\"",
            "\"stage\":\"build\",\"stage\":\"commit\"",
        ),
        (
            "\"predicate\":{",
            "\"predicate\":{\"x\":[[[[{\"y\":1,\"y\":2}]]]],",
        ),
        ("\"predicateType\"", "\"_type\":\"x\",\"predicateType\""),
        (
            "\"name\":\"git-commit\"",
            "\"name\":\"git-commit\",\"name\":\"x\"",
        ),
        ("\"name\":\"git-commit\"", "\"name\":\"\\ud800\""),
        ("\"result\":\"pass\"", "\"result\":\"pass\",\"n\":NaN"),
        ("\"result\":\"pass\"", "\"result\":\"pass\",\"n\":1e400"),
        ("\"result\":\"pass\"", "\"result\":\"pass\"} "),
    ] {
        c.sealed(&format!("payload {from} -> {to}"), |st, k| {
            forged_payload(st, k, from, to)
        });
    }
    let depth = |n: usize| {
        format!(
            "\"predicate\":{{\"deep\":{}0{},",
            "[".repeat(n),
            "]".repeat(n)
        )
    };
    // Past serde_json's limit of 127 levels (the statement and predicate are two).
    // Nesting within it is not a case here: the predicate's schema refuses the extra
    // member, and verify_chain.py checks no schema.
    for n in [126, 127, 200] {
        c.sealed(&format!("payload nested {n} deep"), |st, k| {
            forged_payload(st, k, "\"predicate\":{", &depth(n))
        });
    }
    malformed_envelopes(c);
    stray_and_altered(c);
}

/// Envelopes and payloads that are not strict JSON, signed by the zone key.
fn malformed_envelopes(c: &mut Corpus) {
    for (word, seal) in framing_forgeries() {
        c.sealed(&format!("framing: {word}"), seal);
    }
    let seals: [(&str, Seal); 3] = [
        ("payload in UTF-16", |st, k| {
            let text = String::from_utf8(st.to_bytes()).unwrap();
            let utf16: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
            sign_raw(&utf16, k).to_bytes()
        }),
        ("envelope giving payload twice", |st, k| {
            let text = String::from_utf8(Envelope::sign(st, k).to_bytes()).unwrap();
            text.replacen('{', "{\"payload\":\"e30=\",", 1).into_bytes()
        }),
        ("envelope giving signatures twice", |st, k| {
            let text = String::from_utf8(Envelope::sign(st, k).to_bytes()).unwrap();
            text.replacen('{', "{\"signatures\":[],", 1).into_bytes()
        }),
    ];
    for (case, seal) in seals {
        c.sealed(case, seal);
    }
}

/// Objects beside the evidence, and evidence altered after it was logged.
fn stray_and_altered(c: &mut Corpus) {
    for name in [
        "extra.json",
        "commit.json.bak",
        "commit.attempt-1.json",
        "commit.attempt-02.json",
        "copy/commit.json",
        ".commit.json",
        "other.log",
        "commit.attempt-7.log",
        "commit.txt",
    ] {
        for logged in [false, true] {
            c.tampered(
                &format!("a copy as {name} (logged: {logged})"),
                |repo, key| {
                    let stray = format!("{}/{name}", key.rsplit_once('/').unwrap().0);
                    let bytes = repo.read_object(key);
                    if logged {
                        repo.write_logged(&stray, bytes);
                    } else {
                        repo.tamper_object(&stray, bytes);
                    }
                },
            );
        }
    }
    // The log head a gate recorded, signed, but not one the log holds, or not in
    // the shape the schema gives it: both refuse.
    let zeros = "0".repeat(64);
    for (case, head) in [
        (
            "log_head past the log",
            serde_json::json!({"size": 1_000_000, "sha256": zeros}),
        ),
        (
            "log_head naming entry 1 as other bytes",
            serde_json::json!({"size": 1, "sha256": zeros}),
        ),
        (
            "log_head of size 0",
            serde_json::json!({"size": 0, "sha256": zeros}),
        ),
        (
            "log_head size as text",
            serde_json::json!({"size": "1", "sha256": zeros}),
        ),
        (
            "log_head digest in capitals",
            serde_json::json!({"size": 1, "sha256": "A".repeat(64)}),
        ),
        (
            "log_head with another member",
            serde_json::json!({"size": 1, "sha256": zeros, "x": 1}),
        ),
    ] {
        let sha = c.sha();
        c.repo
            .record(ArtifactKind::Commit, &sha, |p| p["log_head"] = head);
        c.compare(&sha, case);
        c.expected.insert(sha, false);
    }
    c.tampered("the captured log altered", |repo, key| {
        let log = key.replace(".json", ".log");
        repo.tamper_object(&log, b"edited\n".to_vec());
    });
    c.tampered("truncated", |repo, key| {
        let bytes = repo.read_object(key);
        repo.tamper_object(key, bytes[..bytes.len() / 2].to_vec());
    });
    for i in 0..12 {
        c.tampered(&format!("byte flip {i}/12"), |repo, key| {
            let mut bytes = repo.read_object(key);
            let at = bytes.len() * i / 12 + 1;
            bytes[at] ^= 1;
            repo.tamper_object(key, bytes);
        });
    }
}

/// The fuzz seeds: what `cargo xtask fuzz` puts in each corpus (schema fixtures),
/// the committed seeds under `fuzz/seeds/`, and any corpus or crash input a fuzz run
/// left under `fuzz/corpus/` and `fuzz/artifacts/`.
fn fuzz_seeds() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut dirs: Vec<PathBuf> = Vec::new();
    for kind in std::fs::read_dir(root.join("schemas/fixtures")).unwrap() {
        let kind = kind.unwrap().path();
        dirs.extend([kind.join("valid"), kind.join("invalid")]);
    }
    for top in ["fuzz/seeds", "fuzz/corpus", "fuzz/artifacts"] {
        for target in std::fs::read_dir(root.join(top)).into_iter().flatten() {
            dirs.push(target.unwrap().path());
        }
    }
    let mut files: Vec<PathBuf> = dirs
        .iter()
        .flat_map(|d| std::fs::read_dir(d).into_iter().flatten())
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn fuzz_corpus(c: &mut Corpus) {
    for seed in fuzz_seeds() {
        let bytes = std::fs::read(&seed).unwrap();
        let name = seed.display().to_string();
        let as_envelope = bytes.clone();
        c.tampered(&format!("{name} as the envelope"), |repo, key| {
            repo.write_logged(&key.replace(".json", ".attempt-2.json"), as_envelope);
        });
        let payload = bytes.clone();
        c.sealed(&format!("{name} as the signed payload"), |_, k| {
            sign_raw(&payload, k).to_bytes()
        });
        c.sealed(&format!("{name} as the signed predicate"), |st, k| {
            let text = String::from_utf8(st.to_bytes()).unwrap();
            let (head, _) = text.split_once("\"predicate\":").unwrap();
            let seed = String::from_utf8_lossy(&bytes);
            sign_raw(format!("{head}\"predicate\":{seed}}}").as_bytes(), k).to_bytes()
        });
    }
}

#[test]
fn ledger_and_the_auditors_verifier_agree_on_every_tampered_and_fuzzed_case() {
    if !crate::audit_trust::python_ready() {
        return;
    }
    let mut corpus = Corpus::new();
    tamper_corpus(&mut corpus);
    companions::corpus(&mut corpus);
    fuzz_corpus(&mut corpus);
    let expected = std::mem::take(&mut corpus.expected);
    let stores = corpus.stores();
    let total: usize = stores.iter().map(|(_, cases)| cases.len()).sum();
    assert!(total > 400, "only {total} cases");
    let found: Vec<String> = stores
        .iter()
        .flat_map(|(repo, cases)| disagreements(repo, cases, &expected))
        .collect();
    assert!(
        found.is_empty(),
        "{} of {total} cases get different verdicts:\n\n{}",
        found.len(),
        found.join("\n\n")
    );
}
