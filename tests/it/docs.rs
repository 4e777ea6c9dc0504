//! The CI pipelines in `docs/ci/` are documentation people copy: they must be valid
//! YAML, run all seven stages, and take signing keys from the CI's secret store only,
//! one key per trust zone.

use crate::text;
use std::path::Path;

#[test]
fn ci_examples_run_the_seven_stages_with_keys_from_secrets() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/ci");
    for file in ["github-actions.yml", "gitlab-ci.yml"] {
        let path = dir.join(file);
        let body = std::fs::read_to_string(&path).unwrap();
        for stage in ledger_core::Stage::ALL {
            assert!(
                body.contains(&format!("ledger stage {stage}")),
                "{file}: no {stage} stage"
            );
        }
        assert!(body.contains("ledger doctor"), "{file}: no preflight");
        assert!(body.contains("ledger report"), "{file}: no report");
        assert!(
            !body.contains("BEGIN"),
            "{file}: key material in a pipeline file"
        );
        for line in body.lines().filter(|l| l.contains("LEDGER_SIGNING_KEY:")) {
            let value = line.split_once(':').unwrap().1.trim();
            assert!(
                value.starts_with("${{ secrets.") || value.starts_with("$LEDGER_"),
                "{file}: signing key not from the secret store: {line}"
            );
        }
        assert_zones(file, &body);
        if std::env::var_os("LEDGER_SKIP_INTEROP").is_some() {
            continue;
        }
        let out = std::process::Command::new("python3")
            .args(["-c", "import sys, yaml; yaml.safe_load(open(sys.argv[1]))"])
            .arg(&path)
            .output()
            .expect("python3");
        assert!(
            out.status.success(),
            "{file} is not valid YAML: {}",
            text(&out)
        );
    }
}

/// Each stage runs with its trust zone's key (the nearest `LEDGER_SIGNING_KEY` set
/// before it), the owners are pinned from the CI's settings, and no job sees the
/// policy owner's key.
fn assert_zones(file: &str, body: &str) {
    assert!(
        body.contains("LEDGER_POLICY_OWNERS"),
        "{file}: owners not pinned"
    );
    let lower = body.to_lowercase();
    assert!(
        !lower.contains("owner_key") && !lower.contains("policy-owner.key"),
        "{file}: the owner key must not reach CI"
    );
    let mut key = "";
    for line in body.lines() {
        if let Some((_, value)) = line.split_once("LEDGER_SIGNING_KEY:") {
            key = value.trim();
        }
        let Some((_, rest)) = line.split_once("ledger stage ") else {
            continue;
        };
        let stage = rest.split_whitespace().next().unwrap_or_default();
        let zone = if matches!(stage, "commit" | "integration") {
            "TEST"
        } else {
            "RELEASE"
        };
        assert!(
            key.contains(&format!("LEDGER_{zone}_KEY")),
            "{file}: `ledger stage {stage}` runs with {key:?}, not the {zone} zone key"
        );
    }
}

/// The jobs of a CI file: GitHub's under `jobs:` (two spaces in), GitLab's at the top.
fn jobs<'a>(file: &str, body: &'a str) -> Vec<Vec<&'a str>> {
    let (body, indent) = match file {
        "github-actions.yml" => (body.split("\njobs:\n").nth(1).unwrap(), "  "),
        _ => (body, ""),
    };
    let mut jobs: Vec<Vec<&str>> = Vec::new();
    for line in body.lines() {
        let starts_job = line
            .strip_prefix(indent)
            .is_some_and(|rest| !rest.starts_with([' ', '#']) && rest.trim_end().ends_with(':'));
        match jobs.last_mut() {
            Some(job) if !starts_job => job.push(line),
            _ => jobs.push(vec![line]),
        }
    }
    jobs
}

/// Every job that pushes or pulls images (build, deploy, and doctor's registry check
/// before a deploy) logs in to the registry first, the way docs/configuration.md
/// says ledger finds the login: GitHub with docker/login-action and a secret, GitLab
/// with `docker login` and the password on stdin, never on a command line.
#[test]
fn ci_examples_log_in_to_the_registry_before_pushing_or_pulling() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/ci");
    for file in ["github-actions.yml", "gitlab-ci.yml"] {
        let body = std::fs::read_to_string(dir.join(file)).unwrap();
        let login = |line: &str| match file {
            "github-actions.yml" => line.contains("uses: docker/login-action@"),
            _ => {
                line.contains("docker login")
                    && line.contains("--password-stdin")
                    && line.contains("\"$CI_REGISTRY_PASSWORD\" |")
            }
        };
        let mut checked = 0;
        for job in jobs(file, &body) {
            let needs = job.iter().position(|l| {
                [
                    "ledger stage build",
                    "ledger stage deploy",
                    "ledger doctor --stage deploy",
                ]
                .iter()
                .any(|c| l.contains(c))
            });
            let Some(needs) = needs else { continue };
            checked += 1;
            assert!(
                job[..needs].iter().any(|l| login(l)),
                "{file}: job {:?} uses the registry before logging in to it",
                job[0].trim()
            );
        }
        assert_eq!(checked, 2, "{file}: the build and production jobs");
        for line in body.lines().filter(|l| l.contains("docker login")) {
            assert!(
                !line.contains(" -p ")
                    && !line.contains("--password ")
                    && !line.contains("--password="),
                "{file}: a password on a command line: {line}"
            );
        }
        for line in body
            .lines()
            .filter(|l| l.trim_start().starts_with("password:"))
        {
            assert!(
                line.contains("${{ secrets."),
                "{file}: a registry password not from the secret store: {line}"
            );
        }
    }
}

/// The production job deploys to a named remote engine: before `ledger doctor` and
/// the deploy, it writes the engine's client certificate into the folder
/// `engine_certs` names, the key from the secret store and created unreadable to
/// others, never echoed.
#[test]
fn ci_examples_deploy_to_a_remote_engine_with_its_client_certificate_from_secrets() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/ci");
    for file in ["github-actions.yml", "gitlab-ci.yml"] {
        let body = std::fs::read_to_string(dir.join(file)).unwrap();
        assert!(
            body.contains("engine = \"tcp://")
                && body.contains("engine_certs = \"~/.docker/prod\""),
            "{file}: the header names the production engine as ledger.toml does"
        );
        let production = jobs(file, &body)
            .into_iter()
            .find(|j| {
                j.iter()
                    .any(|l| l.contains("ledger stage deploy --env production"))
            })
            .unwrap_or_else(|| panic!("{file}: no production deploy"));
        let at = |needle: &str| {
            production
                .iter()
                .position(|l| l.contains(needle))
                .unwrap_or_else(|| panic!("{file}: the production job lacks {needle:?}"))
        };
        let key = at("/.docker/prod/key.pem\"");
        for file_name in ["ca.pem", "cert.pem"] {
            assert!(at(&format!("/.docker/prod/{file_name}\"")) < at("ledger doctor"));
        }
        assert!(key < at("ledger doctor") && key < at("ledger stage deploy"));
        assert!(
            production[key].contains("umask 077"),
            "{file}: the key file is created private: {}",
            production[key]
        );
        let key_from_secret = match file {
            "github-actions.yml" => production
                .iter()
                .any(|l| l.contains("PROD_DOCKER_KEY: ${{ secrets.")),
            _ => body.contains("PROD_DOCKER_KEY (masked and"),
        };
        assert!(
            key_from_secret,
            "{file}: the engine key is not from the secret store"
        );
        assert!(
            !production
                .iter()
                .any(|l| l.contains("echo") && l.contains("PROD_DOCKER_KEY")),
            "{file}: the engine key is echoed"
        );
    }
}

/// The README's layout names folders of this repository: each one it lists as ours
/// exists (the folders `ledger init` makes in a user's project are named as theirs).
#[test]
fn readme_layout_lists_only_folders_that_exist() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let layout = readme
        .split("## Layout")
        .nth(1)
        .expect("a Layout section")
        .split("\n## ")
        .next()
        .unwrap();
    let ours = layout.split("A project that uses").next().unwrap();
    let folders: Vec<&str> = ours
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|t| t.ends_with('/'))
        .collect();
    assert!(folders.len() >= 5, "{folders:?}");
    for folder in folders {
        assert!(
            root.join(folder).is_dir(),
            "README lists {folder}, which does not exist"
        );
    }
}

/// Every CI job that runs `ledger` installs the `cargo xtask dist` tarball of this
/// version and checks it against a pinned SHA-256 before running it.
#[test]
fn ci_examples_install_the_dist_tarball_checked_by_a_pinned_digest() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/ci");
    let dist = format!(
        "LEDGER_DIST: ledger-{}-x86_64-unknown-linux-gnu",
        env!("CARGO_PKG_VERSION")
    );
    for file in ["github-actions.yml", "gitlab-ci.yml"] {
        let body = std::fs::read_to_string(dir.join(file)).unwrap();
        assert!(body.contains(&dist), "{file}: not {dist}");
        assert!(
            body.contains(r#"echo "$LEDGER_DIST_SHA256  $LEDGER_DIST.tar.gz" | sha256sum -c -"#),
            "{file}: the download is not checked against the pinned digest"
        );
        assert!(
            !body.contains("example.invalid"),
            "{file}: a placeholder URL"
        );
    }
    let gh = std::fs::read_to_string(dir.join("github-actions.yml")).unwrap();
    let jobs = gh.matches("    runs-on:").count();
    assert_eq!(
        gh.matches("- name: Install ledger").count(),
        jobs,
        "a job without ledger"
    );
}
