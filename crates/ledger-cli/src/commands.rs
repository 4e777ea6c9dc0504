//! One function per command: resolve inputs, call the library, print, pick the code.

use crate::args::{
    Cli, Command, GateArgs, Global, KeysCommand, PruneArgs, ReleaseRunArgs, StageArgs, StatusArgs,
};
use crate::context::{self, DEFAULT_KEY_PATH, DEFAULT_POLICY_PATH};
use crate::exit::{Code, Failure, Result};
use crate::read::print_json;
use ledger_core::predicate::Outcome;
use ledger_core::{GitSha, PublicKey, SigningKey, Stage};
use ledger_pipeline::release::replay::{Mode, ReplayRequest};
use ledger_pipeline::run;
use ledger_pipeline::stages::command::{run_command_stage, CommandStage};
use ledger_pipeline::stages::decide::{run_decide, DecideOutcome, DecideRequest, Decision};
use ledger_verify::evidence::Evidence;
use serde_json::json;
use std::io::Write;
use std::path::Path;

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Result<Code> {
    match cli.command {
        Command::Init => init(),
        Command::Keys(KeysCommand::Generate {
            private_key,
            public_key,
        }) => keys_generate(&private_key, &public_key),
        Command::Keys(KeysCommand::Id { file }) => keys_id(&file),
        Command::Stage(args) => stage(&cli.global, args).await,
        Command::Verify(args) => crate::read::verify(&cli.global, args).await,
        Command::Show(args) => crate::read::show(&cli.global, args).await,
        Command::Log(args) => crate::read::log(&cli.global, args).await,
        Command::Report(args) => crate::read::report(&cli.global, args).await,
        Command::Doctor(args) => crate::doctor::doctor(&cli.global, args).await,
        Command::Gate(args) => gate(&cli.global, args).await,
        Command::Replay(args) => replay(&cli.global, &args.sha, &args.run, Mode::Replay).await,
        Command::Rollback(args) => replay(&cli.global, &args.to, &args.run, Mode::Rollback).await,
        Command::Promote(args) => promote(&cli.global, args).await,
        Command::Status(args) => status(&cli.global, args).await,
        Command::Prune(args) => prune(&cli.global, args).await,
    }
}

/// Creates `path` with `contents`, failing if it exists; `private` sets mode 0600
/// from the start, so the secret is never readable by others, not even briefly.
pub fn create_new(path: &Path, contents: &[u8], private: bool) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| Failure::input(format!("cannot create {}: {e}", parent.display())))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Failure::input(format!(
                "{} already exists; refusing to overwrite it",
                path.display()
            ))
            .hint("move it away first if you really mean to replace it")
        } else {
            Failure::input(format!("cannot create {}: {e}", path.display()))
        }
    })?;
    file.write_all(contents)
        .and_then(|_| file.sync_all())
        .map_err(|e| Failure::input(format!("cannot write {}: {e}", path.display())))
}

fn key_pems(key: &SigningKey) -> Result<(ledger_core::keys::zeroize_string::Secret, String)> {
    let private = key
        .to_pkcs8_pem()
        .map_err(|e| Failure::input(format!("cannot encode the new key: {e}")))?;
    let public = key
        .public()
        .to_pem()
        .map_err(|e| Failure::input(format!("cannot encode the new key: {e}")))?;
    Ok((private, public))
}

fn keys_generate(private_path: &Path, public_path: &Path) -> Result<Code> {
    for p in [private_path, public_path] {
        if p.exists() {
            return Err(Failure::input(format!(
                "{} already exists; refusing to overwrite it",
                p.display()
            )));
        }
    }
    let key = SigningKey::generate();
    let (private, public) = key_pems(&key)?;
    create_new(private_path, private.expose().as_bytes(), true)?;
    create_new(public_path, public.as_bytes(), false)?;
    println!(
        "wrote private key {} (mode 0600; keep it secret)",
        private_path.display()
    );
    println!("wrote public key  {}", public_path.display());
    println!("key id {}", key.key_id());
    Ok(Code::Success)
}

fn keys_id(file: &Path) -> Result<Code> {
    let text = String::from_utf8(context::read_limited(file, "key file")?)
        .map_err(|_| Failure::input(format!("{} is not PEM text", file.display())))?;
    let id = if text.contains("PRIVATE KEY") {
        SigningKey::from_pem(&text)
            .map_err(|e| Failure::input(format!("{}: {e}", file.display())))?
            .key_id()
            .clone()
    } else {
        PublicKey::from_pem(&text)
            .map_err(|e| Failure::input(format!("{}: {e}", file.display())))?
            .key_id()
            .clone()
    };
    println!("{id}");
    Ok(Code::Success)
}

const GITIGNORE_LINES: [&str; 2] = [".artifacts/", ".ledger/"];

fn init() -> Result<Code> {
    let root = context::repo_root()?;
    if !root.join(".git").exists() {
        eprintln!(
            "warning: {} is not a git repository; setting up ledger here anyway",
            root.display()
        );
    }
    let key_path = root.join(DEFAULT_KEY_PATH);
    let policy_path = root.join(DEFAULT_POLICY_PATH);
    for p in [&key_path, &policy_path] {
        if p.exists() {
            return Err(Failure::input(format!("{} already exists; ledger is already set up here", p.display()))
                .hint("nothing was changed; to start over, move .ledger/ and policy/pipeline-policy.json away"));
        }
    }
    let key = SigningKey::generate();
    let (private, public) = key_pems(&key)?;
    let policy = ledger_policy::default_policy_json(key.public())
        .map_err(|e| Failure::input(format!("cannot encode the policy: {e}")))?;
    create_new(&key_path, private.expose().as_bytes(), true)?;
    create_new(&root.join(".ledger/signing.pub"), public.as_bytes(), false)?;
    create_new(&policy_path, policy.as_bytes(), false)?;
    let added = update_gitignore(&root.join(".gitignore"))?;

    println!("ledger is set up in {}", root.display());
    println!("  created .ledger/signing.key   private signing key, mode 0600, ignored by git: never commit it");
    println!("  created .ledger/signing.pub   its public key");
    println!(
        "  created {DEFAULT_POLICY_PATH}   trusts key {} for every stage",
        key.key_id().short()
    );
    if !added.is_empty() {
        println!("  updated .gitignore            added {}", added.join(" "));
    }
    println!();
    println!("Commit the policy and .gitignore:");
    println!("  git add {DEFAULT_POLICY_PATH} .gitignore && git commit -m 'Add ledger policy'");
    println!("In CI, pass the private key as a secret in LEDGER_SIGNING_KEY, then run e.g.");
    println!("  ledger stage commit -- cargo test");
    Ok(Code::Success)
}

fn update_gitignore(path: &Path) -> Result<Vec<&'static str>> {
    let existing = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return Err(Failure::input(format!(
                "cannot read {}: {e}",
                path.display()
            )))
        }
    };
    let present = |line: &str| {
        existing.lines().any(|l| {
            l.trim() == line
                || l.trim() == format!("/{line}")
                || l.trim() == line.trim_end_matches('/')
        })
    };
    let added: Vec<&str> = GITIGNORE_LINES
        .into_iter()
        .filter(|l| !present(l))
        .collect();
    if added.is_empty() {
        return Ok(added);
    }
    let mut text = existing.clone();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str("# ledger: local evidence store and private signing key\n");
    for l in &added {
        text.push_str(l);
        text.push('\n');
    }
    std::fs::write(path, text)
        .map_err(|e| Failure::input(format!("cannot write {}: {e}", path.display())))?;
    Ok(added)
}

async fn stage(global: &Global, args: StageArgs) -> Result<Code> {
    let root = context::repo_root()?;
    let sha = context::resolve_sha(args.sha.as_deref(), &root)?;
    let wraps = matches!(args.stage, Stage::Commit | Stage::Integration);
    if wraps && args.command.is_empty() {
        return Err(Failure::input(format!(
            "stage `{}` wraps a command, and none was given",
            args.stage
        ))
        .hint(format!("ledger stage {} -- cargo test", args.stage)));
    }
    if !wraps && !args.command.is_empty() {
        return Err(Failure::input(format!(
            "stage `{}` does not wrap a command; drop everything after `--`",
            args.stage
        )));
    }
    let writer = context::Writer::load(global, &root, args.key.as_deref()).await?;
    let rec = writer.recorder();
    let (store, env, runner) = (&writer.store, writer.env.clone(), writer.runner.clone());
    let progress = |line: &str| eprintln!("ledger: {line}");
    // The one place a stage's run begins: signer, then gate, then the stored policy.
    // A denial must not depend on config or infrastructure, so this comes first.
    let env_name = matches!(args.stage, Stage::Deploy | Stage::Smoke)
        .then(|| ledger_core::EnvName::parse(&args.environment))
        .transpose()
        .map_err(ledger_pipeline::Error::from)?;
    let passed = run::begin(&rec, args.stage, &sha, env_name)
        .await
        .map_err(denied)?;
    let recorded = match args.stage {
        Stage::Commit | Stage::Integration => {
            let outcome = run_command_stage(
                &rec,
                passed,
                CommandStage {
                    stage: args.stage,
                    sha,
                    argv: args.command,
                    redact_env: args.redact_env,
                    env,
                    runner,
                    echo: true,
                },
            )
            .await
            .map_err(denied)?;
            let exit = outcome
                .exit_code
                .map_or("a signal".to_owned(), |c| format!("exit code {c}"));
            eprintln!(
                "ledger: {} {} (attempt {}, {exit}); evidence {} in {}",
                args.stage,
                outcome.result.as_str(),
                outcome.r.attempt,
                outcome.r.key(),
                store.location()
            );
            return Ok(match outcome.result {
                Outcome::Pass => Code::Success,
                Outcome::Fail => Code::StageFailed,
            });
        }
        Stage::Decide => {
            let outcome = run_decide(
                &rec,
                passed,
                DecideRequest {
                    sha,
                    runner,
                    replay: None,
                    env: None,
                },
            )
            .await
            .map_err(denied)?;
            print_decision(&outcome);
            return Ok(match outcome.decision {
                Decision::Promote => Code::Success,
                Decision::Reject => Code::StageFailed,
            });
        }
        Stage::Publish => {
            ledger_pipeline::stages::publish::run_publish(&rec, passed, sha, &runner).await
        }
        Stage::Build | Stage::Deploy | Stage::Smoke => {
            let config = ledger_pipeline::config::Config::load(&root)
                .map_err(ledger_pipeline::Error::from)?;
            match args.stage {
                Stage::Build => {
                    let engine = connect_engine().await?;
                    ledger_pipeline::stages::build::run_build(
                        &rec, &engine, &config, sha, &runner, passed, &progress,
                    )
                    .await
                }
                Stage::Deploy => {
                    let engine = connect_engine().await?;
                    let req = ledger_pipeline::stages::deploy::DeployRequest {
                        sha,
                        environment: args.environment.clone(),
                        runner: runner.clone(),
                        lease_wait: std::time::Duration::from_secs(args.lease_wait),
                        replay: None,
                        promotion: None,
                        env,
                    };
                    ledger_pipeline::stages::deploy::run_deploy(
                        &rec, &engine, &config, &req, passed, &progress,
                    )
                    .await
                }
                _ => {
                    let env_config = config
                        .environment(&args.environment)
                        .map_err(ledger_pipeline::Error::from)?;
                    ledger_pipeline::stages::smoke::run_smoke(
                        &rec, env_config, sha, &runner, passed, None, &progress,
                    )
                    .await
                }
            }
        }
    };
    let recorded = recorded.map_err(denied)?;
    eprintln!(
        "ledger: {} {} (attempt {}): {}; evidence {} in {}",
        args.stage,
        recorded.result.as_str(),
        recorded.r.attempt,
        recorded.summary,
        recorded.r.key(),
        store.location()
    );
    Ok(match recorded.result {
        Outcome::Pass => Code::Success,
        Outcome::Fail => Code::StageFailed,
    })
}

async fn connect_engine() -> Result<ledger_docker::Engine> {
    Ok(ledger_docker::Engine::connect()
        .await
        .map_err(ledger_pipeline::Error::from)?)
}

fn print_decision(outcome: &DecideOutcome) {
    match outcome.decision {
        Decision::Promote => eprintln!("ledger: decision PROMOTE; every release rule holds"),
        Decision::Reject => {
            eprintln!(
                "ledger: decision REJECT; {} release rule(s) failed:",
                outcome.reasons.len()
            );
            for r in &outcome.reasons {
                eprintln!("  x {}: {}", r.rule, r.message);
            }
        }
    }
    eprintln!(
        "ledger: evidence {} and {} (lead time {} ms)",
        outcome.decision_key, outcome.timing_key, outcome.lead_time_ms
    );
}

/// Turns a gate denial into exit code 3 with its reasons; other errors pass through.
/// `ledger promote SHA --to ENV`: the promotion rule, then the same digests deployed.
async fn promote(global: &Global, args: crate::args::PromoteArgs) -> Result<Code> {
    let root = context::repo_root()?;
    let sha = GitSha::parse(&args.sha).map_err(|e| {
        Failure::input(e)
            .hint("give the full 40-character commit SHA: ledger promote <sha> --to <env>")
    })?;
    let writer = context::Writer::load(global, &root, args.key.as_deref()).await?;
    let rec = writer.recorder();
    let config =
        ledger_pipeline::config::Config::load(&root).map_err(ledger_pipeline::Error::from)?;
    let engine = connect_engine().await?;
    let req = ledger_pipeline::release::promote::PromoteRequest {
        sha,
        to: args.to.clone(),
        runner: writer.runner.clone(),
        lease_wait: std::time::Duration::from_secs(args.lease_wait),
        env: writer.env.clone(),
    };
    let progress = |line: &str| eprintln!("ledger: {line}");
    let recorded =
        ledger_pipeline::release::promote::run_promote(&rec, &engine, &config, &req, &progress)
            .await
            .map_err(denied)?;
    eprintln!(
        "ledger: promote {} to `{}`: deploy {} ({}); evidence {} in {}",
        sha,
        args.to,
        recorded.result.as_str(),
        recorded.summary,
        recorded.r.key(),
        writer.store.location()
    );
    Ok(if recorded.result == Outcome::Pass {
        Code::Success
    } else {
        Code::StageFailed
    })
}

fn denied(e: ledger_pipeline::Error) -> Failure {
    match e {
        ledger_pipeline::Error::At { step, source } => {
            eprintln!("  x {step}");
            denied(*source)
        }
        ledger_pipeline::Error::Denied(report) => {
            let mut message = format!(
                "gate denied `{}` for {}: nothing ran, nothing was written",
                report.subject, report.sha
            );
            for r in &report.verdict.reasons {
                message.push_str(&format!("\n  x {}: {}", r.rule, r.message));
            }
            let failure = Failure::new(Code::Denied, message);
            match report.subject.parse::<Stage>() {
                Ok(_) => failure.hint(format!(
                    "`ledger gate {} --sha {} --json` shows the verdict as JSON",
                    report.subject, report.sha
                )),
                Err(_) => failure,
            }
        }
        other => other.into(),
    }
}

async fn gate(global: &Global, args: GateArgs) -> Result<Code> {
    let root = context::repo_root()?;
    let sha = context::resolve_sha(args.sha.as_deref(), &root)?;
    let (policy, _) = context::load_policy(global, &root)?;
    let store = context::open_store(global, &root).await?;
    let mut evidence = Evidence::new(&store, &policy);
    let report = ledger_verify::gate::check_stage(
        &mut evidence,
        args.stage,
        &sha,
        time::OffsetDateTime::now_utc(),
    )
    .await?;
    if args.json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| Failure::new(Code::Infrastructure, e))?;
        println!("{text}");
    } else if report.allowed() {
        println!("gate for `{}` ALLOWS {}", args.stage, sha);
        for u in &report.verdict.used {
            println!("  uses {} (attempt {})", u.key, u.attempt);
        }
    } else {
        println!("gate for `{}` DENIES {}", args.stage, sha);
        for r in &report.verdict.reasons {
            println!("  x {}: {}", r.rule, r.message);
        }
    }
    Ok(if report.allowed() {
        Code::Success
    } else {
        Code::Denied
    })
}

/// `ledger replay SHA` and `ledger rollback --to SHA`: the validation chain step by
/// step, then deploy, smoke and decide as new attempts.
async fn replay(global: &Global, sha: &str, args: &ReleaseRunArgs, mode: Mode) -> Result<Code> {
    let root = context::repo_root()?;
    let sha = GitSha::parse(sha).map_err(|e| {
        Failure::input(e).hint(match mode {
            Mode::Replay => "give the full 40-character commit SHA: ledger replay <sha>",
            Mode::Rollback => "give the full 40-character commit SHA: ledger rollback --to <sha>",
        })
    })?;
    let writer = context::Writer::load(global, &root, args.key.as_deref()).await?;
    let rec = writer.recorder();
    let config =
        ledger_pipeline::config::Config::load(&root).map_err(ledger_pipeline::Error::from)?;
    let what = match mode {
        Mode::Replay => "replay",
        Mode::Rollback => "rollback",
    };
    eprintln!(
        "ledger: {what} of {sha} to `{}`; checking each step first",
        args.environment
    );
    eprintln!("  ok SHA is a full commit SHA: {sha}");
    let engine = connect_engine().await?;
    let req = ReplayRequest {
        mode,
        sha,
        environment: args.environment.clone(),
        runner: writer.runner.clone(),
        lease_wait: std::time::Duration::from_secs(args.lease_wait),
        env: writer.env.clone(),
    };
    let step =
        |s: ledger_pipeline::release::replay::Step, detail: &str| eprintln!("  ok {s}: {detail}");
    let progress = |line: &str| eprintln!("ledger: {line}");
    let outcome =
        ledger_pipeline::release::replay::run(&rec, &engine, &config, &req, &step, &progress)
            .await
            .map_err(denied)?;
    if outcome.deploy.result != Outcome::Pass {
        eprintln!("  x deploy: {}", outcome.deploy.summary);
    }
    if let Some(smoke) = outcome.smoke.as_ref().filter(|s| s.result != Outcome::Pass) {
        eprintln!("  x smoke: {}", smoke.summary);
    }
    if let Some(decision) = &outcome.decision {
        print_decision(decision);
    }
    if mode == Mode::Rollback {
        eprintln!(
            "ledger: rolled back from {}",
            outcome
                .rollback_from
                .map_or("(nothing running)".to_owned(), |s| s.to_string())
        );
    }
    Ok(if outcome.promoted() {
        eprintln!(
            "ledger: {what} of {sha} done: the same digests run in `{}`; no image was built",
            args.environment
        );
        Code::Success
    } else {
        Code::StageFailed
    })
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn ago(since: time::OffsetDateTime) -> String {
    let d = time::OffsetDateTime::now_utc() - since;
    if d.whole_days() > 0 {
        format!("{} d ago", d.whole_days())
    } else if d.whole_hours() > 0 {
        format!("{} h ago", d.whole_hours())
    } else {
        format!("{} min ago", d.whole_minutes())
    }
}

/// `ledger status`: what the evidence says runs where.
async fn status(global: &Global, args: StatusArgs) -> Result<Code> {
    let root = context::repo_root()?;
    let (policy, _) = context::load_policy(global, &root)?;
    let store = context::open_store(global, &root).await?;
    // Environments named in ledger.toml are listed even when nothing runs there; an
    // auditor without the file still gets everything the evidence records.
    let configured: Vec<String> = ledger_pipeline::config::Config::load(&root)
        .map(|c| c.environments.into_iter().map(|e| e.name).collect())
        .unwrap_or_default();
    let mut evidence = Evidence::new(&store, &policy);
    let report = ledger_pipeline::observe::status::status(
        &mut evidence,
        &configured,
        args.environment.as_deref(),
        time::OffsetDateTime::now_utc(),
    )
    .await?;
    let drift = if args.drift {
        let config = ledger_pipeline::config::Config::load(&root)
            .map_err(ledger_pipeline::Error::from)
            .map_err(|e| {
                Failure::from(e).hint(
                    "--drift needs ledger.toml: it names the project whose containers to compare",
                )
            })?;
        let engine = connect_engine().await?;
        Some(
            ledger_pipeline::observe::drift::drift(
                &engine,
                &config.repository,
                &report,
                args.environment.as_deref(),
            )
            .await?,
        )
    } else {
        None
    };
    let drifted = drift
        .as_ref()
        .is_some_and(|d| d.iter().any(|e| !e.findings.is_empty()));
    let code = if drifted {
        Code::VerificationFailed
    } else {
        Code::Success
    };
    if args.json {
        #[derive(serde::Serialize)]
        struct Out<'a> {
            #[serde(flatten)]
            report: &'a ledger_pipeline::observe::status::StatusReport,
            #[serde(skip_serializing_if = "Option::is_none")]
            drift: Option<&'a Vec<ledger_pipeline::observe::drift::EnvironmentDrift>>,
        }
        print_json(&Out {
            report: &report,
            drift: drift.as_ref(),
        })?;
        return Ok(code);
    }
    for env in &report.environments {
        match &env.running {
            None => println!("{:<12} nothing deployed", env.environment),
            Some(r) => {
                let how = match (&r.rollback_from, r.replay) {
                    (Some(from), _) => format!(", rollback from {}", &from[..12.min(from.len())]),
                    (None, true) => ", replay".to_owned(),
                    (None, false) => String::new(),
                };
                println!(
                    "{:<12} runs {} since {} ({}; {} attempt {}{how})",
                    env.environment,
                    r.sha,
                    rfc3339(r.since),
                    ago(r.since),
                    r.deployment,
                    r.attempt
                );
                for (image, digest) in &r.images {
                    println!("{:<12}   {image} {digest}", "");
                }
            }
        }
        for alarm in &env.alarms {
            println!("{:<12}   FRESHNESS ALARM: {alarm}", "");
        }
    }
    match &report.last_promoted {
        Some(p) => println!(
            "last promoted {} at {} ({})",
            p.sha,
            rfc3339(p.decided_at),
            p.decision
        ),
        None => println!("last promoted: none yet"),
    }
    for i in &report.ignored {
        println!("ignored (does not verify): {i}");
    }
    for env in drift.iter().flatten() {
        if env.findings.is_empty() {
            println!(
                "drift {:<12} none: the engine runs what the evidence records ({} container(s))",
                env.environment,
                env.observed.len()
            );
        }
        for f in &env.findings {
            println!("DRIFT {:<12} {f}", env.environment);
        }
    }
    Ok(code)
}

/// `ledger prune`: list (or with --apply delete) images of never-promoted SHAs.
async fn prune(global: &Global, args: PruneArgs) -> Result<Code> {
    use ledger_pipeline::release::prune;
    let root = context::repo_root()?;
    let config =
        ledger_pipeline::config::Config::load(&root).map_err(ledger_pipeline::Error::from)?;
    // With --apply the key is loaded first: a missing key fails before any deletion.
    let writer = if args.apply {
        Some(context::Writer::load(global, &root, args.key.as_deref()).await?)
    } else {
        None
    };
    let (policy, _) = context::load_policy(global, &root)?;
    let store = context::open_store(global, &root).await?;
    let engine = connect_engine().await?;
    let registry = ledger_docker::Registry::new()?;
    let min_age = args.min_age_days.unwrap_or(config.prune.min_age_days);
    let mut evidence = Evidence::new(&store, &policy);
    let plan = prune::plan(
        &mut evidence,
        &engine,
        &registry,
        &config,
        min_age,
        time::OffsetDateTime::now_utc(),
    )
    .await?;
    if !args.json {
        print_prune_plan(&plan, args.apply);
    }
    let Some(writer) = writer else {
        if args.json {
            print_json(&plan)?;
        }
        return Ok(Code::Success);
    };
    prune::check_threshold(&plan, args.force).map_err(denied)?;
    if plan.candidates.is_empty() {
        if args.json {
            print_json(&json!({ "plan": plan, "deleted": [], "record": null }))?;
        }
        return Ok(Code::Success);
    }
    // Pruning changes what can be deployed: the key must be trusted for deploy.
    ledger_pipeline::run::check_signer(&writer.recorder(), ledger_core::Stage::Deploy)?;
    let deleted = prune::apply(&plan, &engine, &registry).await;
    let key = prune::record(
        &writer.recorder(),
        &writer.runner,
        &plan,
        &deleted,
        args.force,
    )
    .await?;
    let failed = deleted.iter().filter(|d| !d.ok).count();
    if args.json {
        print_json(&json!({ "plan": plan, "deleted": deleted, "record": key }))?;
    } else {
        for d in &deleted {
            let c = &d.candidate;
            match &d.error {
                None => println!("deleted {} {}", place(c.place), c.reference),
                Some(e) => println!("FAILED  {} {}: {e}", place(c.place), c.reference),
            }
        }
        println!(
            "pruned {} of {} image copies; record {key} in {}",
            deleted.len() - failed,
            deleted.len(),
            store.location()
        );
    }
    Ok(if failed == 0 {
        Code::Success
    } else {
        Code::Infrastructure
    })
}

fn place(p: ledger_pipeline::release::prune::Place) -> &'static str {
    match p {
        ledger_pipeline::release::prune::Place::Engine => "engine  ",
        ledger_pipeline::release::prune::Place::Registry => "registry",
    }
}

fn print_prune_plan(plan: &ledger_pipeline::release::prune::PrunePlan, apply: bool) {
    let shas: std::collections::BTreeSet<_> = plan.candidates.iter().map(|c| c.sha).collect();
    println!(
        "{} image copies of {} never-promoted SHA(s), {:.1} MB on the engine{}",
        plan.candidates.len(),
        shas.len(),
        plan.bytes() as f64 / 1e6,
        if apply {
            ""
        } else {
            " (dry run: nothing is deleted)"
        }
    );
    for c in &plan.candidates {
        let size = c
            .size
            .map(|s| format!(" {:.1} MB", s as f64 / 1e6))
            .unwrap_or_default();
        println!(
            "  {} {} {} {}{size}",
            c.sha.short(),
            c.image,
            place(c.place),
            c.reference
        );
    }
    println!(
        "protected (promoted or running): {} digest(s)",
        plan.protected.len()
    );
    for p in &plan.protected {
        println!("  {} {}", p.digest, p.why);
    }
    if !plan.too_young.is_empty() {
        println!(
            "left alone: {} SHA(s) built less than {} day(s) ago or whose build failed",
            plan.too_young.len(),
            plan.min_age_days
        );
    }
    for i in &plan.ignored {
        println!("left alone (does not verify): {i}");
    }
    if plan.candidates.len() > plan.threshold {
        println!(
            "more than the safety threshold of {}: --apply also needs --force",
            plan.threshold
        );
    }
    if !apply && !plan.candidates.is_empty() {
        println!("run `ledger prune --apply` to delete them");
    }
}
