//! Gate evaluation: (policy gate, verified evidence, now) → [`Verdict`].
//!
//! A pure function. The caller gathers the latest attempt of every required stage and
//! says for each whether it verified; this module applies the policy's rules and
//! explains every failure with the rule's JSON path in the policy, the artifact it
//! looked at, and what it found against what was required. A denial is a value.

use crate::model::{Condition, Gate, Op, Requirement};
use ledger_core::Stage;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// What the caller found for a required stage: its latest attempt, checked.
#[derive(Debug, Clone)]
pub enum Found<'a> {
    /// No evidence of the stage for this SHA.
    Missing,
    /// The latest attempt exists but does not verify.
    Invalid { key: String, problems: Vec<String> },
    /// The latest attempt verified.
    Verified {
        key: String,
        attempt: u32,
        finished_at: OffsetDateTime,
        predicate: &'a Value,
    },
}

/// Why a rule failed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reason {
    /// JSON pointer of the rule in the policy file, e.g. `/stages/build/requires/0`.
    pub rule: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required: Option<Value>,
    pub message: String,
}

/// Which evidence a verdict relied on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Used {
    pub stage: Stage,
    pub key: String,
    pub attempt: u32,
}

/// The outcome of a gate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub allowed: bool,
    pub reasons: Vec<Reason>,
    pub used: Vec<Used>,
}

/// Evaluates `gate` (found at JSON path `rule_base` in the policy) over `found`.
pub fn evaluate(
    gate: &Gate,
    rule_base: &str,
    found: &BTreeMap<Stage, Found<'_>>,
    now: OffsetDateTime,
) -> Verdict {
    let mut reasons = Vec::new();
    let mut used = Vec::new();
    for (i, req) in gate.requires.iter().enumerate() {
        let rule = format!("{rule_base}/requires/{i}");
        check_requirement(
            req,
            &rule,
            found.get(&req.stage),
            now,
            &mut reasons,
            &mut used,
        );
    }
    Verdict {
        allowed: reasons.is_empty(),
        reasons,
        used,
    }
}

fn check_requirement(
    req: &Requirement,
    rule: &str,
    found: Option<&Found<'_>>,
    now: OffsetDateTime,
    reasons: &mut Vec<Reason>,
    used: &mut Vec<Used>,
) {
    let stage = req.stage;
    match found.unwrap_or(&Found::Missing) {
        Found::Missing => reasons.push(Reason {
            rule: rule.to_owned(),
            artifact: None,
            found: None,
            required: Some(Value::from(format!("{stage} evidence"))),
            message: format!("required evidence of stage `{stage}` is missing; run `ledger stage {stage}` for this SHA first"),
        }),
        Found::Invalid { key, problems } => reasons.push(Reason {
            rule: rule.to_owned(),
            artifact: Some(key.clone()),
            found: Some(Value::from(problems.join("; "))),
            required: Some(Value::from("evidence that verifies")),
            message: format!("latest `{stage}` evidence {key} does not verify: {}", problems.join("; ")),
        }),
        Found::Verified {
            key,
            attempt,
            finished_at,
            predicate,
        } => {
            used.push(Used {
                stage,
                key: key.clone(),
                attempt: *attempt,
            });
            if let Some(max) = req.max_age_seconds {
                let age = (now - *finished_at).whole_seconds();
                if age > i64::try_from(max).unwrap_or(i64::MAX) {
                    reasons.push(Reason {
                        rule: format!("{rule}/max_age_seconds"),
                        artifact: Some(key.clone()),
                        found: Some(Value::from(age)),
                        required: Some(Value::from(max)),
                        message: format!("`{stage}` evidence {key} (attempt {attempt}) is {age} s old, older than the {max} s allowed; run the stage again"),
                    });
                }
            }
            for (j, c) in req.conditions.iter().enumerate() {
                if let Err((found, message)) = check_condition(c, predicate) {
                    let what = match &c.description {
                        Some(d) => format!("\"{d}\" ({})", describe(c)),
                        None => describe(c),
                    };
                    reasons.push(Reason {
                        rule: format!("{rule}/conditions/{j}"),
                        artifact: Some(key.clone()),
                        found,
                        required: Some(Value::from(describe(c))),
                        message: format!("`{stage}` evidence {key} (attempt {attempt}) fails {what}: {message}"),
                    });
                }
            }
        }
    }
}

/// `path op value` as a person reads it.
pub fn describe(c: &Condition) -> String {
    let op = match c.op {
        Op::Eq => "==",
        Op::Ne => "!=",
        Op::Lt => "<",
        Op::Le => "<=",
        Op::Gt => ">",
        Op::Ge => ">=",
        Op::Exists => return format!("{} exists", c.path),
    };
    let v = c.value.as_ref().map(|v| v.to_string()).unwrap_or_default();
    format!("{} {op} {v}", c.path)
}

/// Resolves a JSON pointer where a `*` segment means "every element of the array".
/// Returns one entry per reached leaf (`None` where a segment was absent).
fn resolve<'v>(value: &'v Value, segments: &[String]) -> Result<Vec<Option<&'v Value>>, String> {
    let Some((first, rest)) = segments.split_first() else {
        return Ok(vec![Some(value)]);
    };
    if first == "*" {
        let Some(items) = value.as_array() else {
            return Err(format!(
                "expected an array where `*` stands, found {}",
                kind_of(value)
            ));
        };
        if items.is_empty() {
            return Err("the array is empty, so no element can satisfy the rule".into());
        }
        let mut out = Vec::new();
        for item in items {
            out.extend(resolve(item, rest)?);
        }
        return Ok(out);
    }
    let next = match value {
        Value::Object(m) => m.get(first.as_str()),
        Value::Array(a) => first.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    };
    match next {
        Some(v) => resolve(v, rest),
        None => Ok(vec![None]),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn segments(path: &str) -> Vec<String> {
    path.split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect()
}

type Failure = (Option<Value>, String);

fn check_condition(c: &Condition, predicate: &Value) -> Result<(), Failure> {
    let leaves = resolve(predicate, &segments(&c.path)).map_err(|m| (None, m))?;
    for leaf in leaves {
        compare(c, leaf)?;
    }
    Ok(())
}

fn compare(c: &Condition, leaf: Option<&Value>) -> Result<(), Failure> {
    let Some(found) = leaf.filter(|v| !v.is_null()) else {
        return Err((None, format!("{} is absent", c.path)));
    };
    let required = c.value.as_ref().unwrap_or(&Value::Null);
    let ok = match c.op {
        Op::Exists => true,
        Op::Eq => json_eq(found, required),
        Op::Ne => !json_eq(found, required),
        Op::Lt | Op::Le | Op::Gt | Op::Ge => match order(found, required) {
            Some(ord) => match c.op {
                Op::Lt => ord.is_lt(),
                Op::Le => ord.is_le(),
                Op::Gt => ord.is_gt(),
                _ => ord.is_ge(),
            },
            None => {
                return Err((
                    Some(found.clone()),
                    format!(
                        "cannot order {} against {}",
                        kind_of(found),
                        kind_of(required)
                    ),
                ))
            }
        },
    };
    if ok {
        Ok(())
    } else {
        Err((Some(found.clone()), format!("found {found}")))
    }
}

fn json_eq(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn order(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => a.as_f64()?.partial_cmp(&b.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    fn cond(path: &str, op: Op, value: Value) -> Condition {
        Condition {
            path: path.into(),
            op,
            value: Some(value),
            description: None,
        }
    }

    fn gate(stage: Stage, conditions: Vec<Condition>, max_age: Option<u64>) -> Gate {
        Gate {
            requires: vec![Requirement {
                stage,
                conditions,
                max_age_seconds: max_age,
                description: None,
            }],
            min_signatures: None,
        }
    }

    const NOW: OffsetDateTime = datetime!(2026-11-24 12:00 UTC);

    fn verified(p: &Value) -> BTreeMap<Stage, Found<'_>> {
        BTreeMap::from([(
            Stage::Smoke,
            Found::Verified {
                key: "deploy/x/api-smoke.json".into(),
                attempt: 2,
                finished_at: datetime!(2026-11-24 11:00 UTC),
                predicate: p,
            },
        )])
    }

    #[test]
    fn passes_when_every_condition_holds() {
        let p = json!({"result": "pass", "checks": [{"ok": true}, {"ok": true}], "latency_ms": {"p95": 80.5}});
        let g = gate(
            Stage::Smoke,
            vec![
                cond("/result", Op::Eq, json!("pass")),
                cond("/checks/*/ok", Op::Eq, json!(true)),
                cond("/latency_ms/p95", Op::Le, json!(100)),
            ],
            Some(7200),
        );
        let v = evaluate(&g, "/release", &verified(&p), NOW);
        assert!(v.allowed, "{v:?}");
        assert_eq!(v.used[0].attempt, 2);
    }

    #[test]
    fn each_failure_is_a_reason_with_its_rule_path() {
        let p = json!({"result": "fail", "checks": [{"ok": true}, {"ok": false}], "latency_ms": {"p95": 180}});
        let g = gate(
            Stage::Smoke,
            vec![
                cond("/result", Op::Eq, json!("pass")),
                cond("/checks/*/ok", Op::Eq, json!(true)),
                cond("/latency_ms/p95", Op::Le, json!(100)),
                cond("/missing", Op::Exists, Value::Null),
            ],
            Some(60),
        );
        let v = evaluate(&g, "/release", &verified(&p), NOW);
        assert!(!v.allowed);
        let rules: Vec<&str> = v.reasons.iter().map(|r| r.rule.as_str()).collect();
        assert_eq!(
            rules,
            [
                "/release/requires/0/max_age_seconds",
                "/release/requires/0/conditions/0",
                "/release/requires/0/conditions/1",
                "/release/requires/0/conditions/2",
                "/release/requires/0/conditions/3",
            ]
        );
        assert_eq!(v.reasons[1].found, Some(json!("fail")));
        assert_eq!(v.reasons[3].found, Some(json!(180)));
    }

    #[test]
    fn empty_arrays_fail_closed() {
        let p = json!({"checks": []});
        let g = gate(
            Stage::Smoke,
            vec![cond("/checks/*/ok", Op::Eq, json!(true))],
            None,
        );
        assert!(!evaluate(&g, "/x", &verified(&p), NOW).allowed);
    }

    #[test]
    fn missing_and_invalid_evidence_deny() {
        let g = gate(Stage::Commit, vec![], None);
        let v = evaluate(&g, "/stages/integration", &BTreeMap::new(), NOW);
        assert!(!v.allowed);
        assert!(v.reasons[0].message.contains("missing"), "{:?}", v.reasons);
        let found = BTreeMap::from([(
            Stage::Commit,
            Found::Invalid {
                key: "commit/x/commit.json".into(),
                problems: vec!["bad signature".into()],
            },
        )]);
        let v = evaluate(&g, "/stages/integration", &found, NOW);
        assert!(v.reasons[0]
            .message
            .contains("does not verify: bad signature"));
    }

    #[test]
    fn numbers_compare_numerically() {
        let p = json!({"tests": {"failed": 0}, "n": 1.0});
        for (c, ok) in [
            (cond("/tests/failed", Op::Eq, json!(0)), true),
            (cond("/tests/failed", Op::Eq, json!(0.0)), true),
            (cond("/tests/failed", Op::Gt, json!(0)), false),
            (cond("/n", Op::Ge, json!(1)), true),
            (cond("/n", Op::Lt, json!("1")), false),
            (cond("/n", Op::Ne, json!(2)), true),
        ] {
            let g = gate(Stage::Smoke, vec![c.clone()], None);
            assert_eq!(evaluate(&g, "/x", &verified(&p), NOW).allowed, ok, "{c:?}");
        }
    }

    /// Strings compare lexically, byte by byte (so "10" sorts before "9", and
    /// RFC 3339 times of one offset in time order); a string never orders against
    /// a number.
    #[test]
    fn strings_compare_lexically() {
        let p = json!({"version": "10", "finished_at": "2026-11-24T11:00:00Z"});
        for (c, ok) in [
            (cond("/version", Op::Lt, json!("9")), true),
            (cond("/version", Op::Gt, json!("9")), false),
            (cond("/version", Op::Ge, json!("10")), true),
            (cond("/version", Op::Eq, json!(10)), false),
            (cond("/version", Op::Gt, json!(9)), false),
            (
                cond("/finished_at", Op::Gt, json!("2026-11-24T10:59:59Z")),
                true,
            ),
            (
                cond("/finished_at", Op::Le, json!("2026-11-24T10:59:59Z")),
                false,
            ),
        ] {
            let g = gate(Stage::Smoke, vec![c.clone()], None);
            assert_eq!(evaluate(&g, "/x", &verified(&p), NOW).allowed, ok, "{c:?}");
        }
    }
}
