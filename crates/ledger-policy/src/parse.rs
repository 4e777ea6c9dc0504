//! Turning policy bytes into a checked [`Policy`], with errors that point at the
//! offending JSON path so an operator can fix the file.

use crate::model::PolicyDoc;
use crate::trust::{Policy, TrustedKey};
use ledger_core::schema::{self, Document, SchemaError};
use ledger_core::{PublicKey, Sha256Digest, Stage, MAX_JSON_BYTES};
use std::collections::{BTreeMap, BTreeSet};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Why a policy file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("policy is {0} bytes, over the {MAX_JSON_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("policy is not valid JSON: {0}")]
    Json(String),
    #[error("policy does not match its schema: {0}")]
    Schema(#[from] SchemaError),
    #[error("policy at /keys/{index}/public_key: {message}")]
    BadKey { index: usize, message: String },
    #[error("policy at /keys/{index}/keyid: declared {declared} but the public key's id is {computed}; run `ledger keys id <public key file>` and copy its output")]
    KeyIdMismatch {
        index: usize,
        declared: String,
        computed: String,
    },
    #[error("policy at /keys/{index}: key {keyid} is listed twice")]
    DuplicateKey { index: usize, keyid: String },
    #[error("policy at /keys/{index}/revoked_at: {value:?} is not an RFC 3339 time")]
    BadTime { index: usize, value: String },
    #[error("policy at /stages/{stage}/requires: circular requirement {cycle}; a stage cannot depend on itself")]
    Cycle { stage: Stage, cycle: String },
}

impl Policy {
    /// Parses and checks a policy file's bytes.
    pub fn parse(bytes: &[u8]) -> Result<Policy, PolicyError> {
        if bytes.len() > MAX_JSON_BYTES {
            return Err(PolicyError::TooLarge(bytes.len()));
        }
        let value: serde_json::Value =
            ledger_core::json::from_slice(bytes).map_err(|e| PolicyError::Json(e.to_string()))?;
        schema::validate(Document::Policy, &value)?;
        // The schema admits exactly what these types describe.
        let doc: PolicyDoc =
            serde_json::from_value(value).map_err(|e| PolicyError::Json(e.to_string()))?;
        let keys = check_keys(&doc)?;
        check_cycles(&doc)?;
        Ok(Policy::new(doc, keys, Sha256Digest::of(bytes)))
    }
}

fn check_keys(doc: &PolicyDoc) -> Result<Vec<TrustedKey>, PolicyError> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(doc.keys.len());
    for (index, k) in doc.keys.iter().enumerate() {
        let key = PublicKey::from_pem(&k.public_key).map_err(|e| PolicyError::BadKey {
            index,
            message: e.to_string(),
        })?;
        if key.key_id().as_str() != k.keyid {
            return Err(PolicyError::KeyIdMismatch {
                index,
                declared: k.keyid.clone(),
                computed: key.key_id().to_string(),
            });
        }
        if !seen.insert(k.keyid.clone()) {
            return Err(PolicyError::DuplicateKey {
                index,
                keyid: k.keyid.clone(),
            });
        }
        let revoked_at = match &k.revoked_at {
            None => None,
            Some(t) => Some(OffsetDateTime::parse(t, &Rfc3339).map_err(|_not_rfc3339| {
                PolicyError::BadTime {
                    index,
                    value: t.clone(),
                }
            })?),
        };
        out.push(TrustedKey {
            key,
            stages: k.stages.iter().copied().collect(),
            revoked_at,
            comment: k.comment.clone(),
        });
    }
    Ok(out)
}

/// Depth-first search over "stage requires stage" edges.
fn check_cycles(doc: &PolicyDoc) -> Result<(), PolicyError> {
    let edges: BTreeMap<Stage, Vec<Stage>> = doc
        .stages
        .iter()
        .map(|(s, g)| (*s, g.requires.iter().map(|r| r.stage).collect()))
        .collect();
    fn visit(
        s: Stage,
        edges: &BTreeMap<Stage, Vec<Stage>>,
        path: &mut Vec<Stage>,
        done: &mut BTreeSet<Stage>,
    ) -> Option<Vec<Stage>> {
        if let Some(pos) = path.iter().position(|p| *p == s) {
            let mut cycle = path[pos..].to_vec();
            cycle.push(s);
            return Some(cycle);
        }
        if done.contains(&s) {
            return None;
        }
        path.push(s);
        for next in edges.get(&s).into_iter().flatten() {
            if let Some(c) = visit(*next, edges, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(s);
        None
    }
    let mut done = BTreeSet::new();
    for s in edges.keys() {
        if let Some(cycle) = visit(*s, &edges, &mut Vec::new(), &mut done) {
            return Err(PolicyError::Cycle {
                stage: cycle[0],
                cycle: cycle
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(" -> "),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger_core::SigningKey;

    fn default_text() -> (SigningKey, String) {
        let key = SigningKey::from_seed(&[3; 32]);
        let text = crate::default_policy_json(key.public()).unwrap();
        (key, text)
    }

    #[test]
    fn the_default_policy_parses_and_trusts_its_key_everywhere() {
        let (key, text) = default_text();
        let policy = Policy::parse(text.as_bytes()).unwrap();
        for stage in Stage::ALL {
            assert!(policy.key_for(stage, key.key_id()).is_some(), "{stage}");
        }
        assert_eq!(policy.digest(), Sha256Digest::of(text.as_bytes()));
        assert_eq!(
            policy.gate(Stage::Integration).requires[0].stage,
            Stage::Commit
        );
        assert!(policy.gate(Stage::Commit).requires.is_empty());
    }

    fn edit(f: impl FnOnce(&mut serde_json::Value)) -> Result<Policy, PolicyError> {
        let (_, text) = default_text();
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        f(&mut v);
        Policy::parse(&serde_json::to_vec(&v).unwrap())
    }

    #[test]
    fn circular_requirements_are_refused_with_the_cycle() {
        let e = edit(|v| {
            v["stages"]["commit"] = serde_json::json!({"requires": [{"stage": "smoke"}]});
        })
        .unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, PolicyError::Cycle { .. }), "{msg}");
        assert!(
            msg.contains("commit -> smoke -> deploy -> publish -> build -> integration -> commit"),
            "{msg}"
        );
        let e = edit(|v| {
            v["stages"]["build"] = serde_json::json!({"requires": [{"stage": "build"}]});
        })
        .unwrap_err();
        assert!(e.to_string().contains("/stages/build/requires"), "{e}");
    }

    #[test]
    fn schema_violations_name_the_json_path() {
        let e = edit(|v| v["stages"]["comit"] = serde_json::json!({"requires": []})).unwrap_err();
        assert!(e.to_string().contains("/stages"), "{e}");
        let e = edit(|v| {
            v["release"]["requires"][0]["conditions"] =
                serde_json::json!([{"path": "x", "op": "eq"}])
        })
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("/release/requires/0/conditions/0/path"),
            "{e}"
        );
    }

    #[test]
    fn key_problems() {
        let e = edit(|v| v["keys"][0]["keyid"] = "0".repeat(64).into()).unwrap_err();
        assert!(
            matches!(e, PolicyError::KeyIdMismatch { index: 0, .. }),
            "{e}"
        );
        let e = edit(|v| {
            let k = v["keys"][0].clone();
            v["keys"].as_array_mut().unwrap().push(k);
        })
        .unwrap_err();
        assert!(
            matches!(e, PolicyError::DuplicateKey { index: 1, .. }),
            "{e}"
        );
        let e = edit(|v| {
            v["keys"][0]["public_key"] =
                "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n".into()
        })
        .unwrap_err();
        assert!(matches!(e, PolicyError::BadKey { index: 0, .. }), "{e}");
    }

    #[test]
    fn revocation_is_relative_to_the_evidence_time() {
        let (key, _) = default_text();
        let p = edit(|v| v["keys"][0]["revoked_at"] = "2026-06-01T00:00:00Z".into()).unwrap();
        let before = time::macros::datetime!(2026-05-31 23:59 UTC);
        let after = time::macros::datetime!(2026-06-01 00:00 UTC);
        assert!(p.revoked_for(key.key_id(), before).is_none());
        assert!(p.revoked_for(key.key_id(), after).is_some());
        assert!(!p.may_sign(&key, Stage::Commit, after));
    }
}
