//! The subject is the code that ran: real git repositories (not the fake `.git` of
//! most cases) and the real binary, with no `--allow-…` flag unless a case is about
//! it. A wrapped stage on a tree that differs from its SHA is refused and writes
//! nothing; `--allow-dirty` and `--allow-other-sha` run it and say so in `source`,
//! which a policy can refuse; `--sha` must name a commit; a build takes the
//! committed tree, never the working tree. The git helpers here are shared with the
//! Docker fixture (`project.rs`).

use crate::project::{engine, Project};
use crate::{assert_code, text, Repo, SHA};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Output;

/// Runs `git args` in `dir` with a fixed identity and dates and no user or system
/// configuration; returns its trimmed stdout.
pub(crate) fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args([
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "ledger it")
        .env("GIT_AUTHOR_EMAIL", "it@example.invalid")
        .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
        .env("GIT_COMMITTER_NAME", "ledger it")
        .env("GIT_COMMITTER_EMAIL", "it@example.invalid")
        .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Commits everything (even nothing) in `dir`; returns the new HEAD.
pub(crate) fn commit_all(dir: &Path, message: &str) -> String {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "--allow-empty", "-m", message]);
    git(dir, &["rev-parse", "HEAD"])
}

/// Replaces the fake `.git` of `repo` with a real repository holding everything not
/// ignored in one commit; returns its SHA.
pub(crate) fn git_init(repo: &Repo) -> String {
    std::fs::remove_dir_all(repo.path().join(".git")).unwrap();
    git(repo.path(), &["init", "-q"]);
    commit_all(repo.path(), "initial")
}

/// A repository after `ledger init` with a tracked file `app.txt`, all committed.
fn checkout() -> (Repo, String) {
    let repo = Repo::new();
    std::fs::write(repo.path().join("app.txt"), "committed\n").unwrap();
    let head = git_init(&repo);
    (repo, head)
}

/// `ledger args` exactly as given (no flag added).
fn run(repo: &Repo, args: &[&str]) -> Output {
    repo.exact_command(args).output().expect("run ledger")
}

/// `ledger stage commit --allow-other-sha --sha SHA -- true`.
fn commit_other_sha(repo: &Repo, sha: &str) -> Output {
    run(
        repo,
        &[
            "stage",
            "commit",
            "--allow-other-sha",
            "--sha",
            sha,
            "--",
            "true",
        ],
    )
}

#[track_caller]
fn assert_refused(out: &Output, needles: &[&str]) {
    assert_code(out, 2);
    for needle in needles {
        assert!(text(out).contains(needle), "{needle:?} in {}", text(out));
    }
}

#[test]
fn a_clean_checkout_runs_and_is_recorded_as_clean() {
    let (repo, head) = checkout();
    assert_code(&run(&repo, &["stage", "commit", "--", "true"]), 0);
    let p = repo.predicate(&format!("commit/{head}/commit.json"));
    assert_eq!(p["source"], json!({ "head": head, "tree": "clean" }));
    // Ignored files (the store, the key) do not make a tree dirty.
    assert!(repo.path().join(".artifacts").is_dir());
    assert_code(
        &run(
            &repo,
            &["stage", "integration", "--sha", &head, "--", "true"],
        ),
        0,
    );
    assert_code(&run(&repo, &["verify", &head]), 0);
}

#[test]
fn a_dirty_tree_is_refused_and_nothing_is_written() {
    type Change = fn(&Path);
    let changes: [(&str, Change); 3] = [
        ("app.txt", |d| {
            std::fs::write(d.join("app.txt"), "edited\n").unwrap()
        }),
        ("new.txt", |d| {
            std::fs::write(d.join("new.txt"), "untracked\n").unwrap()
        }),
        ("app.txt", |d| {
            std::fs::write(d.join("app.txt"), "staged\n").unwrap();
            git(d, &["add", "app.txt"]);
        }),
    ];
    for (path, change) in changes {
        let (repo, head) = checkout();
        change(repo.path());
        for stage in ["commit", "integration"] {
            let out = run(&repo, &["stage", stage, "--", "true"]);
            assert_refused(
                &out,
                &[&format!("differs from {head}"), path, "--allow-dirty"],
            );
            let out = run(&repo, &["stage", stage, "--sha", &head, "--", "true"]);
            assert_refused(&out, &["differs from"]);
        }
        assert_eq!(repo.stored(), Vec::<String>::new(), "{path}");
    }
}

/// git is asked while the policy, key and store load (docs/performance.md); its
/// refusal still comes first, as when it was asked before them.
#[test]
fn a_dirty_tree_is_reported_before_a_missing_key() {
    let (repo, head) = checkout();
    std::fs::remove_file(repo.path().join(".ledger/test.key")).unwrap();
    std::fs::write(repo.path().join("app.txt"), "edited\n").unwrap();
    for stage in ["commit", "integration"] {
        let out = run(&repo, &["stage", stage, "--sha", &head, "--", "true"]);
        assert_refused(&out, &[&format!("differs from {head}"), "app.txt"]);
        assert!(!text(&out).contains("signing key"), "{}", text(&out));
    }
    // With the tree clean again, the key is what is missing.
    git(repo.path(), &["checkout", "--", "app.txt"]);
    let out = run(&repo, &["stage", "commit", "--sha", &head, "--", "true"]);
    assert_refused(&out, &["no signing key"]);
    assert_eq!(repo.stored(), Vec::<String>::new());
}

#[test]
fn allow_dirty_is_recorded_and_a_policy_condition_refuses_it() {
    let (repo, _) = checkout();
    repo.edit_policy(|p| {
        p["stages"]["integration"]["requires"][0]["conditions"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "path": "/source/tree", "op": "eq", "value": "clean" }));
    });
    let head = commit_all(
        repo.path(),
        "policy: integration needs clean commit evidence",
    );
    std::fs::write(repo.path().join("app.txt"), "edited\n").unwrap();
    let dirty = ["stage", "commit", "--allow-dirty", "--", "true"];
    assert_code(&run(&repo, &dirty), 0);
    let p = repo.predicate(&format!("commit/{head}/commit.json"));
    let source = &p["source"];
    assert_eq!(source["tree"], "dirty");
    assert_eq!(source["head"], head.as_str());
    let digest = source["diff_sha256"].as_str().unwrap().to_owned();
    assert_eq!(digest.len(), 64);
    assert_eq!(source.as_object().unwrap().len(), 3, "{source}");
    // The digest identifies the difference; the difference itself is not stored.
    for key in repo.stored() {
        let bytes = repo.read_object(&key);
        assert!(!String::from_utf8_lossy(&bytes).contains("edited"), "{key}");
    }
    // The digest is of the difference: the same change gives the same digest, an
    // untracked file changes it.
    assert_code(&run(&repo, &dirty), 0);
    let again = repo.predicate(&format!("commit/{head}/commit.attempt-2.json"));
    assert_eq!(again["source"]["diff_sha256"], digest.as_str());
    std::fs::write(repo.path().join("new.txt"), "untracked\n").unwrap();
    assert_code(&run(&repo, &dirty), 0);
    let third = repo.predicate(&format!("commit/{head}/commit.attempt-3.json"));
    assert_ne!(third["source"]["diff_sha256"], digest.as_str());
    assert_code(&run(&repo, &["verify", &head]), 0);

    // The next gate holds the dirty evidence against the policy: denied, nothing run.
    let out = run(
        &repo,
        &[
            "stage",
            "integration",
            "--allow-dirty",
            "--",
            "touch",
            "ran",
        ],
    );
    assert_code(&out, 3);
    assert!(text(&out).contains("/source/tree"), "{}", text(&out));
    assert!(!repo.path().join("ran").exists());

    // Committed, the same change passes: clean evidence, then integration runs.
    let head = commit_all(repo.path(), "the change");
    assert_code(&run(&repo, &["stage", "commit", "--", "true"]), 0);
    assert_code(&run(&repo, &["stage", "integration", "--", "true"]), 0);
    let p = repo.predicate(&format!("integration/{head}/integration.json"));
    assert_eq!(p["source"], json!({ "head": head, "tree": "clean" }));
}

#[test]
fn a_sha_that_is_not_a_commit_is_refused_by_every_stage() {
    let (repo, head) = checkout();
    let tree = git(repo.path(), &["rev-parse", "HEAD^{tree}"]);
    for sha in [SHA, tree.as_str()] {
        for stage in ledger_core::Stage::ALL {
            let stage = stage.as_str();
            let mut args = vec!["stage", stage, "--sha", sha];
            if matches!(stage, "commit" | "integration") {
                args.extend(["--allow-other-sha", "--allow-dirty", "--", "true"]);
            }
            let out = run(&repo, &args);
            assert_refused(&out, &[&format!("{sha} is not a commit of the repository")]);
        }
    }
    assert_eq!(repo.stored(), Vec::<String>::new());
    // HEAD itself is fine (publish then stops at its gate: no build evidence).
    assert_code(&run(&repo, &["stage", "publish", "--sha", &head]), 3);
}

#[test]
fn another_commit_than_head_needs_allow_other_sha_and_is_recorded() {
    let (repo, first) = checkout();
    std::fs::write(repo.path().join("app.txt"), "second\n").unwrap();
    let second = commit_all(repo.path(), "second");
    let args = ["stage", "commit", "--sha", &first, "--", "true"];
    let out = run(&repo, &args);
    assert_refused(
        &out,
        &[
            &format!("HEAD is {second}, not {first}"),
            "--allow-other-sha",
        ],
    );
    assert_eq!(repo.stored(), Vec::<String>::new());

    assert_code(&commit_other_sha(&repo, &first), 0);
    let p = repo.predicate(&format!("commit/{first}/commit.json"));
    assert_eq!(p["source"], json!({ "head": second, "tree": "other" }));
    assert_code(&run(&repo, &["verify", &first]), 0);
}

#[test]
fn outside_a_git_repository_nothing_can_be_checked() {
    // The fake `.git` of most cases: git finds no repository.
    let repo = Repo::new();
    let out = run(&repo, &["stage", "commit", "--sha", SHA, "--", "true"]);
    assert_refused(&out, &["is not in a git repository", "--allow-other-sha"]);
    let out = run(&repo, &["stage", "build", "--sha", SHA]);
    assert_refused(
        &out,
        &[
            "is not in a git repository",
            "hint: run ledger inside the git checkout",
        ],
    );
    assert_eq!(repo.stored(), Vec::<String>::new());

    assert_code(&commit_other_sha(&repo, SHA), 0);
    let p = repo.predicate(&format!("commit/{SHA}/commit.json"));
    assert_eq!(p["source"], json!({ "tree": "unchecked" }));
    // Stages that run no project code need no repository: publish reaches its gate.
    assert_code(&run(&repo, &["stage", "publish", "--sha", SHA]), 3);
}

#[test]
fn a_repository_without_commits_has_no_head_and_no_commit_to_name() {
    let repo = Repo::new();
    std::fs::remove_dir_all(repo.path().join(".git")).unwrap();
    git(repo.path(), &["init", "-q"]);
    let out = run(&repo, &["stage", "commit", "--", "true"]);
    assert_refused(&out, &["has no commits yet", "pass --sha"]);
    for stage in ["commit", "build", "publish"] {
        let mut args = vec!["stage", stage, "--sha", SHA];
        if stage == "commit" {
            args.extend(["--allow-other-sha", "--", "true"]);
        }
        let out = run(&repo, &args);
        assert_refused(&out, &[&format!("{SHA} is not a commit of the repository")]);
    }
    assert_eq!(repo.stored(), Vec::<String>::new());
}

/// The file `path` of image `image`, read back through a container made from it.
fn file_in_image(image: &str, path: &str) -> Option<String> {
    let docker = |args: &[&str]| {
        std::process::Command::new("docker")
            .args(args)
            .output()
            .expect("docker")
    };
    let created = docker(&["create", image]);
    assert!(created.status.success(), "{}", text(&created));
    let id = String::from_utf8_lossy(&created.stdout).trim().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy");
    let copied = docker(&["cp", &format!("{id}:{path}"), &copy.display().to_string()]);
    assert!(docker(&["rm", &id]).status.success());
    copied
        .status
        .success()
        .then(|| std::fs::read_to_string(copy).unwrap())
}

#[test]
fn a_build_takes_the_committed_tree_not_the_working_tree() {
    let Some(_) = engine() else { return };
    let p = Project::new(None);
    let service = p.repo.path().join("service");
    let write = |name: &str, text: &str| std::fs::write(service.join(name), text).unwrap();
    let dockerfile = std::fs::read_to_string(service.join("Dockerfile")).unwrap();
    let committed = format!("{dockerfile}COPY . /context/\n");
    write("Dockerfile", &committed);
    write("VERSION", "committed\n");
    write(".gitignore", "ignored.txt\n");
    let s = p.sha(1);
    p.run_through(&s, "integration");
    // Uncommitted: an edit of a file the image contains, an untracked file, an
    // ignored file and an edit of the Dockerfile.
    write("VERSION", "uncommitted\n");
    write("extra", "untracked\n");
    write("ignored.txt", "ignored\n");
    write("Dockerfile", &format!("{committed}COPY extra /extra\n"));
    assert_code(&run(&p.repo, &["stage", "build", "--sha", &s]), 0);
    let build: Value = p.repo.predicate(&format!("build/{s}/build.json"));
    assert_eq!(build["source"], json!({ "head": s, "tree": "exported" }));
    let image = build["images"][0]["image_id"].as_str().unwrap();
    let file = |path: &str| file_in_image(image, path);
    assert_eq!(file("/context/VERSION").as_deref(), Some("committed\n"));
    assert_eq!(file("/context/Dockerfile"), Some(committed));
    for absent in ["/context/extra", "/context/ignored.txt", "/extra"] {
        assert_eq!(file(absent), None, "{absent}");
    }
}

/// Without `--sha`, as CI calls it, a stage runs for HEAD, which the source check
/// reads with the tree (one `git` process): the wrapped stages and `build` record
/// HEAD, `build` exports HEAD's committed tree, and the chain goes on.
#[test]
fn without_sha_every_stage_runs_for_head() {
    let Some(_) = engine() else { return };
    let p = Project::new(None);
    let s = p.sha(1);
    for stage in ["commit", "integration"] {
        assert_code(&run(&p.repo, &["stage", stage, "--", "true"]), 0);
        let key = format!("{stage}/{s}/{stage}.json");
        assert_eq!(p.repo.predicate(&key)["source"]["head"], json!(s), "{key}");
    }
    assert_code(&run(&p.repo, &["stage", "build"]), 0);
    let build: Value = p.repo.predicate(&format!("build/{s}/build.json"));
    assert_eq!(build["source"], json!({ "head": s, "tree": "exported" }));
    assert_code(&run(&p.repo, &["stage", "publish"]), 0);
    assert!(p
        .repo
        .object(&format!("release-candidate/{s}/manifest.json"))
        .exists());
}

/// The contexts are exported while the gate runs (docs/performance.md); a denial
/// is still what a build that may not run reports, and nothing is written.
#[test]
fn a_denied_build_reports_the_denial_not_its_missing_context() {
    let Some(_) = engine() else { return };
    let p = Project::new(None);
    let s = p.sha(1);
    p.run_through(&s, "commit");
    set_context(&p.repo, "service", "absent");
    let out = run(&p.repo, &["stage", "build", "--sha", &s]);
    assert_code(&out, 3);
    assert!(text(&out).contains("gate denied `build`"), "{}", text(&out));
    assert!(!text(&out).contains("build context"), "{}", text(&out));
    assert!(!p.repo.object(&format!("build/{s}/build.json")).exists());
}

/// An engine stage reads `ledger.toml`, reaches its engine and (`build`) exports its
/// contexts beside its gate (docs/performance.md), and looks at any of it only once
/// the gate has passed: a denied `build`, `deploy` or `smoke` reports the denial,
/// never its unreachable engine or a `ledger.toml` that does not parse, and writes
/// nothing. No engine is needed: the one named does not exist.
#[test]
fn a_denied_engine_stage_reports_the_denial_not_its_engine_or_config() {
    let p = Project::new(None);
    let s = p.sha(1);
    p.run_through(&s, "commit");
    let dead = [("DOCKER_HOST", "unix:///nonexistent/docker.sock")];
    let denied = |broken: &str| {
        for stage in ["build", "deploy", "smoke"] {
            let out = p.repo.ledger_env(&["stage", stage, "--sha", &s], &dead);
            let said = text(&out);
            assert_code(&out, 3);
            assert!(said.contains(&format!("gate denied `{stage}`")), "{said}");
            assert!(!said.contains(broken), "{stage} spoke of {broken}: {said}");
        }
    };
    denied("nonexistent");
    std::fs::write(p.repo.path().join("ledger.toml"), "[[images]\n").unwrap();
    denied("ledger.toml");
    for kind in ["build", "infra", "deploy"] {
        assert!(!p.repo.store().join(kind).join(&s).exists(), "{kind}");
    }
}

#[test]
fn a_context_missing_from_the_commit_stops_the_build() {
    let Some(_) = engine() else { return };
    let p = Project::new(None);
    let s = p.sha(1);
    p.run_through(&s, "integration");
    // The folder exists in the working tree only.
    set_context(&p.repo, "service", "local");
    std::fs::create_dir(p.repo.path().join("local")).unwrap();
    std::fs::copy(
        p.repo.path().join("service/Dockerfile"),
        p.repo.path().join("local/Dockerfile"),
    )
    .unwrap();
    // A folder in the working tree only, then a committed file: neither is a
    // folder of the commit.
    for (context, next) in [("local", "service/Dockerfile"), ("service/Dockerfile", "")] {
        let out = run(&p.repo, &["stage", "build", "--sha", &s]);
        let refusal = format!("build context {context:?} is not a folder of commit {s}");
        assert_refused(&out, &[&refusal]);
        assert!(!p.repo.object(&format!("build/{s}/build.json")).exists());
        set_context(&p.repo, context, next);
    }
}

/// Points the image's build context in `ledger.toml` (working tree) from `from` to `to`.
fn set_context(repo: &Repo, from: &str, to: &str) {
    let toml = repo.path().join("ledger.toml");
    let config = std::fs::read_to_string(&toml).unwrap();
    let (from, to) = (format!("context = {from:?}"), format!("context = {to:?}"));
    assert!(config.contains(&from), "{from} in {config}");
    std::fs::write(&toml, config.replace(&from, &to)).unwrap();
}
