//! Who ran a stage: host, CI provider, run id and URL, runner labels.
//!
//! Read from the usual GitHub Actions and GitLab CI variables. The environment is passed
//! in as a map so that tests (and the secrets test) control exactly what is seen.

use ledger_core::predicate::Runner;
use std::collections::BTreeMap;

/// Detects the runner from `env` and the machine's host name.
pub fn detect(env: &BTreeMap<String, String>, host: &str) -> Runner {
    let get = |k: &str| env.get(k).filter(|v| !v.is_empty()).cloned();
    if get("GITHUB_ACTIONS").as_deref() == Some("true") {
        let run_id = get("GITHUB_RUN_ID");
        let run_url = match (get("GITHUB_SERVER_URL"), get("GITHUB_REPOSITORY"), &run_id) {
            (Some(server), Some(repo), Some(id)) => {
                Some(format!("{server}/{repo}/actions/runs/{id}"))
            }
            _ => None,
        };
        let mut labels: Vec<String> = [
            get("RUNNER_NAME"),
            get("RUNNER_ENVIRONMENT"),
            get("RUNNER_OS"),
        ]
        .into_iter()
        .flatten()
        .collect();
        labels.extend(own_labels(env));
        return Runner {
            host: host.to_owned(),
            ci_provider: "github-actions".into(),
            run_id,
            run_url,
            labels,
        };
    }
    if get("GITLAB_CI").as_deref() == Some("true") {
        let mut labels: Vec<String> = get("CI_RUNNER_DESCRIPTION").into_iter().collect();
        if let Some(tags) = get("CI_RUNNER_TAGS") {
            // GitLab gives a JSON array (newer) or a comma-separated list (older).
            let parsed: Option<Vec<String>> = ledger_core::json::from_slice(tags.as_bytes()).ok();
            labels.extend(parsed.unwrap_or_else(|| {
                tags.split(',')
                    .map(|t| t.trim().to_owned())
                    .filter(|t| !t.is_empty())
                    .collect()
            }));
        }
        labels.extend(own_labels(env));
        return Runner {
            host: host.to_owned(),
            ci_provider: "gitlab-ci".into(),
            run_id: get("CI_JOB_ID"),
            run_url: get("CI_JOB_URL"),
            labels,
        };
    }
    Runner {
        host: host.to_owned(),
        ci_provider: "local".into(),
        run_id: None,
        run_url: None,
        labels: own_labels(env),
    }
}

/// Labels a runner's operator gives it in `LEDGER_RUNNER_LABELS` (comma-separated),
/// on any CI: how self-hosted runners name themselves for the policy's
/// `approved_runners`.
fn own_labels(env: &BTreeMap<String, String>) -> Vec<String> {
    env.get("LEDGER_RUNNER_LABELS")
        .map(|l| {
            l.split(',')
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// This machine's host name, or `unknown`.
pub fn host_name() -> String {
    let h = gethostname::gethostname().to_string_lossy().into_owned();
    if h.is_empty() {
        "unknown".into()
    } else {
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn github_actions() {
        let r = detect(
            &env(&[
                ("GITHUB_ACTIONS", "true"),
                ("GITHUB_RUN_ID", "42"),
                ("GITHUB_SERVER_URL", "https://github.com"),
                ("GITHUB_REPOSITORY", "acme/app"),
                ("RUNNER_NAME", "runner-1"),
            ]),
            "h",
        );
        assert_eq!(r.ci_provider, "github-actions");
        assert_eq!(
            r.run_url.as_deref(),
            Some("https://github.com/acme/app/actions/runs/42")
        );
        assert_eq!(r.labels, vec!["runner-1"]);
    }

    #[test]
    fn gitlab_ci() {
        let r = detect(
            &env(&[
                ("GITLAB_CI", "true"),
                ("CI_JOB_ID", "7"),
                ("CI_JOB_URL", "https://gitlab.example/j/7"),
                ("CI_RUNNER_TAGS", "[\"docker\", \"prod\"]"),
            ]),
            "h",
        );
        assert_eq!(r.ci_provider, "gitlab-ci");
        assert_eq!(r.run_id.as_deref(), Some("7"));
        assert_eq!(r.labels, vec!["docker", "prod"]);
    }

    #[test]
    fn local_by_default() {
        let r = detect(&env(&[]), "box");
        assert_eq!(r.ci_provider, "local");
        assert_eq!(r.host, "box");
        assert!(r.run_id.is_none());
    }
}
