//! Recorded test evidence as `ledger` writes it: a predicate's fields agree with its
//! `result`, since verification refuses a result its own fields contradict.

use ledger_core::ArtifactKind;
use serde_json::Value;

/// Makes a predicate's own fields agree with its `result`, as `ledger` writes them
/// (verification refuses a result its fields contradict): a fixture is first made a
/// passing one; after a test's edit, a `fail` the fields do not explain gets the
/// matching failure (exit code 1, a failed check, a recorded failure). A test that
/// wants a contradiction edits the fields and leaves `pass`.
pub fn with_result(kind: ArtifactKind, p: &mut Value, after_edit: bool) {
    let fail = after_edit && p["result"] == "fail";
    if !after_edit {
        p["result"] = "pass".into();
    }
    if after_edit && !fail {
        return;
    }
    let obj = p.as_object_mut().expect("a predicate is an object");
    match kind {
        ArtifactKind::Commit | ArtifactKind::Integration => {
            let exit = if fail { 1 } else { 0 };
            if !after_edit || obj["command"]["exit_code"] == 0 {
                obj["command"]["exit_code"] = exit.into();
            }
        }
        ArtifactKind::Smoke => {
            let checks = obj.get_mut("checks").and_then(Value::as_array_mut);
            let checks = checks.expect("a smoke predicate has checks");
            if !after_edit {
                checks.iter_mut().for_each(|c| c["ok"] = true.into());
            } else if checks.iter().all(|c| c["ok"] == true) {
                if let Some(first) = checks.first_mut() {
                    first["ok"] = false.into();
                }
            }
        }
        ArtifactKind::Build | ArtifactKind::Deployment if !fail => {
            obj.remove("failure");
        }
        ArtifactKind::Build if !obj.contains_key("failure") => {
            obj.insert(
                "failure".into(),
                serde_json::json!({"image": "api", "message": "failed in a test"}),
            );
        }
        ArtifactKind::Deployment if !obj.contains_key("failure") => {
            obj.insert(
                "failure".into(),
                serde_json::json!({"message": "failed in a test", "restored": true}),
            );
        }
        _ => {}
    }
}
